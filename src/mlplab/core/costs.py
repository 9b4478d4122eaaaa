"""Costs C: each owns its value, its gradient with respect to the output, and the output delta.

One reduction convention everywhere: ``C`` is the mean over the batch of the per-sample cost,
and the per-sample cost sums over the output units. Hence :meth:`Cost.gradient` returns
``∂C/∂aᴸ`` *including* the ``1/n_samples`` factor, and the weight gradients downstream are plain
sums ``∂C/∂Wᵐ = δᵐᵀ aᵐ⁻¹`` over the batch.

Shapes: ``a``, ``z`` and ``y`` are ``(n_samples, Nᴸ)``.

A cost also owns what its outputs *mean*: the output nonlinearity it goes with by default, how
many output units a task needs (:meth:`Cost.n_outputs`), how class indices become targets
(:meth:`Cost.targets`) and outputs become class indices again (:meth:`Cost.labels`), and so the
accuracy. One rule for every cost: with one output unit the class is ``a ≥ 0.5``, with several it
is the largest output. The cost's value is called the *loss* everywhere.

Stable fused forms: with a sigmoid output, binary cross-entropy gives ``δᴸ = (a − y)/n`` and its
value ``softplus(z) − y z``; with a softmax output, categorical cross-entropy gives
``δᴸ = (a − y)/n`` and its value ``logsumexp(z) − y·z`` (rows of ``y`` sum to one). Both are
computed from ``z``, so they never take the log of a rounded-to-zero output.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlplab.core.nonlinearities import Nonlinearity

COSTS: dict[str, type[Cost]] = {}


class Cost:
    """Base class. Subclasses set ``name`` and define ``value`` and ``gradient``."""

    name: ClassVar[str]
    #: Name of the output nonlinearity with which a fused, stable delta exists.
    fuses_with: ClassVar[str | None] = None
    #: The output nonlinearity this cost goes with unless told otherwise.
    default_output: ClassVar[str]
    #: The tasks this cost can learn: ``"classification"``, ``"regression"``.
    tasks: ClassVar[tuple[str, ...]] = ("classification",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            COSTS[cls.name] = cls

    def plain_loss(self, a: np.ndarray, y: np.ndarray) -> float:
        """Return the loss ``C`` from the outputs alone: the batch mean of the per-sample cost."""
        raise NotImplementedError

    def gradient(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return ``∂C/∂a``, shape ``(n_samples, Nᴸ)``, including the 1/n_samples factor."""
        raise NotImplementedError

    def check_output(self, output: Nonlinearity) -> None:
        """Raise ``ValueError`` if ``output`` cannot feed this cost."""

    def fused(self, output: Nonlinearity) -> bool:
        """Whether the stable fused forms apply to this output nonlinearity."""
        return self.fuses_with is not None and output.name == self.fuses_with

    def fused_loss(self, z: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def loss(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output: Nonlinearity) -> float:
        """Return the loss ``C``, from ``z`` by the fused form when it applies."""
        if self.fused(output):
            return self.fused_loss(z, y)
        return self.plain_loss(a, y)

    def delta(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, output: Nonlinearity) -> np.ndarray:
        """Return ``δᴸ = ∂C/∂zᴸ``: ``(a − y)/n`` when fused, else ``∂C/∂a`` through ``σ'``."""
        if self.fused(output):
            return (a - y) / a.dtype.type(len(a))
        return output.backward(z, a, self.gradient(a, y))

    # -- what the outputs mean ---------------------------------------------------------------
    def n_outputs(self, task: str, n_classes: int | None = None) -> int:
        """``Nᴸ`` for ``task``: one unit per class (one for two classes, where the cost allows it),
        one for a regression target. Raises ``ValueError`` for a task this cost cannot learn."""
        if task not in self.tasks:
            raise ValueError(f"cost {self.name!r} cannot learn a {task} task; it learns {' or '.join(self.tasks)}")
        return 1 if task == "regression" else int(n_classes)

    @staticmethod
    def targets(y: np.ndarray, n_outputs: int, dtype="float64") -> np.ndarray:
        """``Y`` of shape ``(n_samples, Nᴸ)`` for class indices ``y`` of shape ``(n_samples,)``:
        a 0/1 column for one output unit, one-hot rows otherwise."""
        y = np.asarray(y)
        return y.reshape(-1, 1).astype(dtype) if n_outputs == 1 else np.eye(n_outputs, dtype=dtype)[y]

    @staticmethod
    def labels(a: np.ndarray) -> np.ndarray:
        """Class indices ``(n_samples,)`` from outputs or targets ``(n_samples, Nᴸ)``: ``a ≥ 0.5``
        for one unit, the largest entry otherwise (the inverse of :meth:`targets`)."""
        return (a[:, 0] >= 0.5).astype(np.int64) if a.shape[1] == 1 else a.argmax(axis=1)

    def accuracy(self, a: np.ndarray, Y: np.ndarray) -> float | None:
        """The fraction of samples whose label from ``a`` equals the label from ``Y``; ``None``
        when the outputs are not classes (a one-unit squared-error output is a regression)."""
        return float(np.mean(self.labels(a) == self.labels(Y)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)


def _eps(a: np.ndarray) -> float:
    return float(np.finfo(a.dtype).eps)


def _require_range(cost: Cost, output: Nonlinearity, lo: float, hi: float, why: str) -> None:
    out_lo, out_hi = output.output_range
    if out_lo < lo or out_hi > hi:
        raise ValueError(
            f"cost {cost.name!r} cannot follow a {output.name!r} output: {why}"
        )


class SquaredError(Cost):
    """Per sample ``½‖y − a‖²``; ``∂C/∂a = (a − y)/n`` (note the sign: a − y, not y − a)."""

    name = "squared_error"
    default_output = "identity"
    tasks = ("regression", "classification")

    def accuracy(self, a, Y):
        """Defined when ``Y`` holds one-hot rows (squared error on classes); ``None`` for values."""
        one_hot = Y.shape[1] > 1 and np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1)
        return super().accuracy(a, Y) if one_hot else None

    def plain_loss(self, a, y):
        d = a - y
        return 0.5 * float(np.vdot(d, d)) / len(a)

    def gradient(self, a, y):
        return (a - y) / a.dtype.type(len(a))


class BinaryCrossEntropy(Cost):
    """Per sample ``−Σ_k [y log a + (1 − y) log(1 − a)]``; ``∂C/∂a = (a − y) / (a(1 − a)) / n``.

    Targets may be any values in [0, 1]. The unfused path clips ``a`` to ``[eps, 1 − eps]``.
    """

    name = "binary_cross_entropy"
    fuses_with = "sigmoid"
    default_output = "sigmoid"

    def n_outputs(self, task, n_classes=None):
        """One sigmoid for two classes; one per class (one-vs-rest) for more."""
        n = super().n_outputs(task, n_classes)
        return 1 if n == 2 else n

    def check_output(self, output):
        _require_range(self, output, 0.0, 1.0, "outputs must lie in (0, 1); use sigmoid")

    def plain_loss(self, a, y):
        eps = _eps(a)
        a = np.clip(a, eps, 1 - eps)
        return -float(np.sum(y * np.log(a) + (1 - y) * np.log1p(-a))) / len(a)

    def gradient(self, a, y):
        eps = _eps(a)
        a = np.clip(a, eps, 1 - eps)
        return (a - y) / (a * (1 - a)) / a.dtype.type(len(a))

    def fused_loss(self, z, y):
        # −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z
        return float(np.sum(np.logaddexp(0, z) - y * z)) / len(z)


class CategoricalCrossEntropy(Cost):
    """Per sample ``−Σ_k y_k log a_k`` with one-hot (or probability) rows ``y``.

    ``∂C/∂a = −y / a / n``. Only a softmax output makes sense: its outputs are a distribution.
    """

    name = "categorical_cross_entropy"
    fuses_with = "softmax"
    default_output = "softmax"

    def check_output(self, output):
        if output.name != "softmax":
            raise ValueError(
                f"cost {self.name!r} cannot follow a {output.name!r} output: "
                "it needs a probability distribution per sample; use softmax"
            )

    def plain_loss(self, a, y):
        return -float(np.sum(y * np.log(np.maximum(a, _eps(a))))) / len(a)

    def gradient(self, a, y):
        return -y / np.maximum(a, _eps(a)) / a.dtype.type(len(a))

    def fused_loss(self, z, y):
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        return float(np.sum(lse * y.sum(axis=1)) - np.vdot(y, z)) / len(z)


def get_cost(spec: str | Cost) -> Cost:
    """Resolve a cost by name, or pass an instance through."""
    if isinstance(spec, Cost):
        return spec
    try:
        return COSTS[spec]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown cost {spec!r}; valid: {', '.join(sorted(COSTS))}") from None
