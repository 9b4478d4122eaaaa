"""The multi-layer perceptron and its backpropagation.

Notation follows the textbook derivation, layers ``m = 1 … L``:

    zᵐ = Wᵐ aᵐ⁻¹ + bᵐ,    aᵐ = σᵐ(zᵐ),    a⁰ = x

with ``Wᵐ`` of shape ``(Nᵐ, Nᵐ⁻¹)`` and ``bᵐ`` of shape ``(Nᵐ,)``. Arrays are batch-first, so a
batch of activations ``aᵐ`` has shape ``(n_samples, Nᵐ)`` and the forward step is computed as
``zᵐ = aᵐ⁻¹ Wᵐᵀ + bᵐ``. Backward:

    δᴸ = ∂C/∂aᴸ ∘ σᴸ'(zᴸ)                (owned by the cost; fused when stable)
    δᵐ = (δᵐ⁺¹ Wᵐ⁺¹) ∘ σᵐ'(zᵐ)           (batch-first form of (Wᵐ⁺¹ᵀ δᵐ⁺¹) ∘ σ')
    ∂C/∂Wᵐ = δᵐᵀ aᵐ⁻¹,   ∂C/∂bᵐ = Σ_samples δᵐ

The ``1/n_samples`` of the batch mean is inside δᴸ (see :mod:`mlplab.core.costs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlplab.core.costs import Cost, get_cost
from mlplab.core.initialisers import get_initialiser
from mlplab.core.nonlinearities import Nonlinearity, get_nonlinearity

Weights = list[tuple[np.ndarray, np.ndarray]]

DTYPES = ("float32", "float64")


def as_generator(rng: np.random.Generator | int) -> np.random.Generator:
    """Accept a ``Generator`` (used as is) or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}")


class Network:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int, ``[N⁰, N¹, …, Nᴸ]``
        Input size, hidden sizes, output size. ``[N⁰, Nᴸ]`` is a linear model.
    nonlinearities : sequence of str or Nonlinearity
        One per layer (``L`` entries), or a ``(hidden, output)`` pair.
    cost : str or Cost
        ``squared_error``, ``binary_cross_entropy`` or ``categorical_cross_entropy``.
    init : str
        Initialiser name, see :mod:`mlplab.core.initialisers`.
    dtype : ``"float32"`` or ``"float64"``
    rng : numpy.random.Generator or int
        Source of the initial weights.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        nonlinearities: Sequence[str | Nonlinearity],
        cost: str | Cost,
        *,
        init: str = "xavier_uniform",
        dtype: str = "float32",
        rng: np.random.Generator | int,
    ):
        sizes = [int(n) for n in layer_sizes]
        if len(sizes) < 2 or any(n < 1 for n in sizes):
            raise ValueError(f"layer_sizes must be at least two sizes >= 1, got {list(layer_sizes)}")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        n_layers = len(sizes) - 1
        if isinstance(nonlinearities, (str, Nonlinearity)):
            nonlinearities = [nonlinearities]
        sigmas = [get_nonlinearity(s) for s in nonlinearities]
        if len(sigmas) == 2 and n_layers != 2:
            sigmas = [sigmas[0]] * (n_layers - 1) + [sigmas[1]]
        elif len(sigmas) == 1 and n_layers == 1:
            pass
        elif len(sigmas) != n_layers:
            raise ValueError(
                f"nonlinearities needs one name per layer ({n_layers}) or a (hidden, output) "
                f"pair, got {len(sigmas)}"
            )
        for m, s in enumerate(sigmas[:-1], start=1):
            if not s.hidden_ok:
                raise ValueError(f"nonlinearity {s.name!r} is for the output layer only (layer {m})")
        self.cost = get_cost(cost)
        self.cost.check_output(sigmas[-1])
        if sigmas[-1].name == "softmax" and sizes[-1] == 1:
            raise ValueError("a softmax over one output unit is always 1: use sigmoid for one unit, or more units")
        self.layer_sizes = sizes
        self.nonlinearities = sigmas
        self.init = init
        self.dtype = np.dtype(dtype)
        draw = get_initialiser(init)
        rng = as_generator(rng)
        self._weights: Weights = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            W, b = draw(n_in, n_out, rng)
            self._weights.append((W.astype(self.dtype), b.astype(self.dtype)))

    # -- weights ----------------------------------------------------------------------------
    @staticmethod
    def n_weights(layer_sizes: Sequence[int]) -> int:
        """``Σₘ Nᵐ(Nᵐ⁻¹ + 1)``: the number of weights and biases of these layer sizes."""
        return sum(n_out * (n_in + 1) for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]))

    @property
    def n_layers(self) -> int:
        return len(self._weights)

    @property
    def weights(self) -> Weights:
        """``[(W¹, b¹), …, (Wᴸ, bᴸ)]``, the live arrays (optimisers update them in place)."""
        return self._weights

    @weights.setter
    def weights(self, new: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        new = list(new)
        if len(new) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} (W, b) pairs, got {len(new)}")
        checked = []
        for m, ((W, b), (W0, b0)) in enumerate(zip(new, self._weights), start=1):
            W, b = np.asarray(W), np.asarray(b)
            if W.shape != W0.shape or b.shape != b0.shape:
                raise ValueError(
                    f"layer {m}: expected W{W0.shape} and b{b0.shape}, got W{W.shape} and b{b.shape}"
                )
            checked.append((np.array(W, dtype=self.dtype), np.array(b, dtype=self.dtype)))
        self._weights = checked

    def architecture(self) -> dict:
        """Everything but the weights needed to rebuild this network (JSON-serialisable)."""
        return {
            "layer_sizes": self.layer_sizes,
            "nonlinearities": [{"name": s.name, **s.hyper_parameters()} for s in self.nonlinearities],
            "cost": self.cost.name,
            "init": self.init,
            "dtype": self.dtype.name,
        }

    # -- forward ----------------------------------------------------------------------------
    def as_input(self, X: np.ndarray) -> np.ndarray:
        """``X`` as an array of the network's dtype, checked to be ``(n_samples, N⁰)``."""
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X must have shape (n_samples, {self.layer_sizes[0]}), got {X.shape}")
        return X

    def _forward(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return ``zs = [z¹ … zᴸ]`` and ``activations = [a⁰ … aᴸ]``."""
        zs, activations = [], [X]
        a = X
        for (W, b), sigma in zip(self._weights, self.nonlinearities):
            z = a @ W.T
            z += b
            a = sigma.forward(z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Return the output ``aᴸ``, shape ``(n_samples, Nᴸ)``."""
        return self._forward(self.as_input(X))[1][-1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices ``(n_samples,)`` for the cross-entropy costs (the cost's
        :meth:`~mlplab.core.costs.Cost.labels`); the outputs ``aᴸ`` for squared error."""
        a = self.forward(X)
        return a if self.cost.name == "squared_error" else self.cost.labels(a)

    def score(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, float | None]:
        """The loss and the cost's accuracy (``None`` for a regression) from one forward pass."""
        X = self.as_input(X)
        Y = self.as_target(Y, len(X))
        zs, activations = self._forward(X)
        loss = self.cost.loss(zs[-1], activations[-1], Y, self.nonlinearities[-1])
        return loss, self.cost.accuracy(activations[-1], Y)

    def as_target(self, Y: np.ndarray, n: int) -> np.ndarray:
        """``Y`` as an array of the network's dtype, checked to be ``(n, Nᴸ)`` (a vector for one unit)."""
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.ndim == 1 and self.layer_sizes[-1] == 1:
            Y = Y[:, None]
        if Y.shape != (n, self.layer_sizes[-1]):
            raise ValueError(f"Y must have shape ({n}, {self.layer_sizes[-1]}), got {Y.shape}")
        return Y

    def loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Return the loss ``C``, the batch mean of the per-sample cost."""
        X = self.as_input(X)
        Y = self.as_target(Y, len(X))
        zs, activations = self._forward(X)
        return self.cost.loss(zs[-1], activations[-1], Y, self.nonlinearities[-1])

    # -- backward ---------------------------------------------------------------------------
    def gradients(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, Weights]:
        """Return ``(C, grads)`` with ``grads[m-1] = (∂C/∂Wᵐ, ∂C/∂bᵐ)`` shaped like ``(Wᵐ, bᵐ)``."""
        X = self.as_input(X)
        Y = self.as_target(Y, len(X))
        return self.backprop(X, Y)

    def backprop(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, Weights]:
        """:meth:`gradients` for a batch already checked by :meth:`as_input` and :meth:`as_target`
        (the training loop's fast path: no conversion, no copy)."""
        zs, activations = self._forward(X)
        output = self.nonlinearities[-1]
        loss = self.cost.loss(zs[-1], activations[-1], Y, output)
        delta = self.cost.delta(zs[-1], activations[-1], Y, output)
        grads: Weights = [None] * self.n_layers  # type: ignore[list-item]
        for m in range(self.n_layers - 1, -1, -1):
            grads[m] = (delta.T @ activations[m], delta.sum(axis=0))
            if m:
                grad_a = delta @ self._weights[m][0]
                delta = self.nonlinearities[m - 1].backward(zs[m - 1], activations[m], grad_a)
        return loss, grads

    def __repr__(self) -> str:
        sigmas = ", ".join(s.name for s in self.nonlinearities)
        return (
            f"Network({'-'.join(map(str, self.layer_sizes))}, [{sigmas}], "
            f"cost={self.cost.name!r}, init={self.init!r}, dtype={self.dtype.name!r})"
        )
