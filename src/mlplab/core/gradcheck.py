"""Finite-difference check of :meth:`Network.gradients`."""

from __future__ import annotations

import numpy as np

from mlplab.core.network import Network


def gradcheck(
    network: Network, X: np.ndarray, Y: np.ndarray, *, eps: float = 1e-4, floor: float = 1e-4
) -> dict[str, float]:
    """Compare backpropagation against fourth-order central differences.

    Each partial derivative is estimated as
    ``(−C(θ+2ε) + 8C(θ+ε) − 8C(θ−ε) + C(θ−2ε)) / 12ε``, whose truncation error is ``O(ε⁴)``
    and whose rounding error is about ``1e-16·|C|/ε``. Returns, for every parameter array
    (``"W1"``, ``"b1"``, …), the worst error over its entries relative to the array's largest
    gradient::

        max|num − bp| / max(max|num|, max|bp|, floor·max(1, |C|))

    The ``floor`` keeps an array whose gradients are (nearly) zero — a dead relu layer, a
    saturated output — from dividing rounding noise by nothing. Use a float64 network, and
    inputs that keep every pre-activation clear of the kinks of relu-like nonlinearities.
    """
    loss, grads = network.gradients(X, Y)
    tiny = floor * max(1.0, abs(loss))
    errors = {}
    for m, ((W, b), (dW, db)) in enumerate(zip(network.weights, grads), start=1):
        for name, p, g in ((f"W{m}", W, dW), (f"b{m}", b, db)):
            numeric = np.empty_like(p)
            flat, out = p.reshape(-1), numeric.reshape(-1)
            for i in range(flat.size):
                keep = flat[i]
                c = []
                for step in (2 * eps, eps, -eps, -2 * eps):
                    flat[i] = keep + step
                    c.append(network.loss(X, Y))
                flat[i] = keep
                out[i] = (-c[0] + 8 * c[1] - 8 * c[2] + c[3]) / (12 * eps)
            scale = max(np.abs(numeric).max(), np.abs(g).max(), tiny)
            errors[name] = float(np.abs(numeric - g).max() / scale)
    return errors
