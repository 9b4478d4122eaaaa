"""Nonlinearities σ: each class holds its value and its derivative side by side.

Every nonlinearity maps ``z`` of shape ``(n_samples, N)`` to ``a = σ(z)`` of the same shape.
Elementwise nonlinearities share one backward rule, ``∂C/∂z = ∂C/∂a ∘ σ'(z)``; softmax is not
elementwise and supplies its own vector-Jacobian product. All of them are stable for any finite
input: no ``exp`` is ever evaluated at a large positive argument.

The registry :data:`NONLINEARITIES` is built from the classes themselves, so a name resolves in
exactly one place.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlplab.core.constraints import Interval, check_all

NONLINEARITIES: dict[str, type[Nonlinearity]] = {}


class Nonlinearity:
    """Base class. Subclasses set ``name`` and define ``forward`` and ``derivative``."""

    name: ClassVar[str]
    #: Open interval the outputs lie in; costs use it to refuse pairs that make no sense.
    output_range: ClassVar[tuple[float, float]] = (-np.inf, np.inf)
    #: Whether the function may be used in a hidden layer.
    hidden_ok: ClassVar[bool] = True
    #: Bounds of the keyword arguments, read by the constructor and by the config validation.
    constraints: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            NONLINEARITIES[cls.name] = cls

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``a = σ(z)``, shape of ``z``."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Return ``σ'(z)`` elementwise, given ``z`` and ``a = σ(z)``."""
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """Return ``∂C/∂z = grad_a ∘ σ'(z)``. May overwrite ``grad_a`` to save memory."""
        grad_a *= self.derivative(z, a)
        return grad_a

    def hyper_parameters(self) -> dict[str, float]:
        """Hyper-parameters of the function (empty for most)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.hyper_parameters() == other.hyper_parameters()


class Identity(Nonlinearity):
    """σ(z) = z, σ'(z) = 1."""

    name = "identity"

    def forward(self, z):
        return z

    def derivative(self, z, a):
        return np.ones_like(z)

    def backward(self, z, a, grad_a):
        return grad_a


class Sigmoid(Nonlinearity):
    """σ(z) = 1 / (1 + e^(−z)), σ'(z) = σ(z) (1 − σ(z)).

    No ``exp`` overflows and tiny outputs keep their relative precision. Large arrays use
    ``e^(−|z|)`` over ``1 + e^(−|z|)`` on the negative side; small ones, where NumPy's per-call
    overhead dominates, use the equivalent ``exp(−log(1 + e^(−z)))`` in three calls. The two
    agree to a few ulps (3.7e-15 relative in float64 over |z| ≤ 745).
    """

    name = "sigmoid"
    output_range = (0.0, 1.0)
    #: Below this many elements the three-call form is faster.
    small = 2048

    def forward(self, z):
        if z.size < self.small:
            return np.exp(-np.logaddexp(0, -z))
        e = np.exp(-np.abs(z))
        denom = 1.0 + e
        return np.where(z >= 0, 1.0, e) / denom

    def derivative(self, z, a):
        return a * (1.0 - a)


class Tanh(Nonlinearity):
    """σ(z) = tanh z, σ'(z) = 1 − tanh² z."""

    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z, a):
        return 1.0 - a * a


class ReLU(Nonlinearity):
    """σ(z) = max(z, 0), σ'(z) = 1 for z > 0 else 0."""

    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    def backward(self, z, a, grad_a):
        grad_a *= z > 0
        return grad_a


class LeakyReLU(Nonlinearity):
    """σ(z) = z for z > 0 else slope·z; σ'(z) = 1 or slope."""

    name = "leaky_relu"
    constraints = {"slope": Interval(float, 0, 1, closed="left")}

    def __init__(self, slope: float = 0.01):
        check_all(self.constraints, {"slope": slope})
        self.slope = float(slope)

    def hyper_parameters(self):
        return {"slope": self.slope}

    def forward(self, z):
        return np.where(z > 0, z, self.slope * z)

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)


class ELU(Nonlinearity):
    """σ(z) = z for z > 0 else α(e^z − 1); σ'(z) = 1 or σ(z) + α."""

    name = "elu"
    constraints = {"alpha": Interval(float, 0, None, closed="neither")}

    def __init__(self, alpha: float = 1.0):
        check_all(self.constraints, {"alpha": alpha})
        self.alpha = float(alpha)

    def hyper_parameters(self):
        return {"alpha": self.alpha}

    def forward(self, z):
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype)


class Softplus(Nonlinearity):
    """σ(z) = log(1 + e^z), σ'(z) = 1 / (1 + e^(−z)), the sigmoid."""

    name = "softplus"
    output_range = (0.0, np.inf)

    def forward(self, z):
        return np.logaddexp(0, z).astype(z.dtype, copy=False)

    def derivative(self, z, a):
        return Sigmoid().forward(z)


class Softmax(Nonlinearity):
    """a_i = e^(z_i) / Σ_j e^(z_j) over each row; output layer only.

    Not elementwise: its Jacobian is ``diag(a) − a aᵀ`` per sample, so the backward pass is the
    vector-Jacobian product ``∂C/∂z = a ∘ (g − (g · a))`` with ``g = ∂C/∂a``.
    """

    name = "softmax"
    output_range = (0.0, 1.0)
    hidden_ok = False

    def forward(self, z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e

    def derivative(self, z, a):
        raise TypeError("softmax has no elementwise derivative; use backward()")

    def backward(self, z, a, grad_a):
        dot = np.einsum("ij,ij->i", grad_a, a)[:, None]
        grad_a -= dot
        grad_a *= a
        return grad_a


def get_nonlinearity(spec: str | dict | Nonlinearity, **hyper_parameters) -> Nonlinearity:
    """Resolve a name, or a mapping ``{"name": ..., **hyper_parameters}``, or pass an instance."""
    if isinstance(spec, Nonlinearity):
        return spec
    if isinstance(spec, dict):
        hyper_parameters = {**{k: v for k, v in spec.items() if k != "name"}, **hyper_parameters}
        spec = spec.get("name")
    try:
        cls = NONLINEARITIES[spec]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown nonlinearity {spec!r}; valid: {', '.join(sorted(NONLINEARITIES))}"
        ) from None
    try:
        return cls(**hyper_parameters)
    except TypeError:
        raise ValueError(
            f"nonlinearity {spec!r} takes {list(cls().hyper_parameters()) or 'no parameters'}, got {hyper_parameters}"
        ) from None
