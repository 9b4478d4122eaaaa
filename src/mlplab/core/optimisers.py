"""Optimisers: each writes one update rule, updates parameters in place and keeps its own state.

Shared by all of them (in :meth:`Optimiser.step`, in this order):

1. gradient clipping by global norm: if ``‖g‖₂ > clip_norm`` over all arrays, every gradient is
   scaled by ``clip_norm / ‖g‖₂``;
2. L2 weight decay on the weights (not the biases): ``g_W ← g_W + weight_decay · W``
   (AdamW instead decays the weights directly, decoupled from the adaptive step);
3. the learning rate of the current epoch from the schedule.

State (velocities, moments) is kept per parameter array, in the order ``W¹, b¹, W², b², …``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from mlplab.core.constraints import Interval, check_all, constraints_of
from mlplab.core.schedules import Schedule, get_schedule

OPTIMISERS: dict[str, type[Optimiser]] = {}


class Optimiser:
    """Base class: subclasses set ``name`` and implement :meth:`update`."""

    name: ClassVar[str]
    decoupled_weight_decay: ClassVar[bool] = False
    #: Arrays of state kept per parameter array (moments, velocities, scratch): for memory estimates.
    state_arrays: ClassVar[int] = 0
    #: Bounds of the keyword arguments, read by the constructor and by the config validation.
    constraints = {
        "lr": Interval(float, 0, None, closed="neither"),
        "weight_decay": Interval(float, 0, None),
        "clip_norm": Interval(float, 0, None, closed="neither", optional=True),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            OPTIMISERS[cls.name] = cls

    def __init__(
        self,
        lr: float,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | str | dict | None = None,
    ):
        check_all(Optimiser.constraints, {"lr": lr, "weight_decay": weight_decay, "clip_norm": clip_norm})
        self.base_lr = float(lr)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.schedule = get_schedule(schedule)
        self.t = 0  # number of steps taken
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def start_epoch(self, epoch: int) -> float:
        """Set and return the learning rate for ``epoch`` (0-based) from the schedule."""
        self.lr = float(self.schedule(self.base_lr, epoch))
        return self.lr

    def step(self, weights, grads) -> None:
        """Update ``weights = [(W, b), …]`` in place from ``grads`` of the same shapes."""
        self.t += 1
        if self.clip_norm is not None:
            total = math.sqrt(sum(float(np.vdot(g, g)) for pair in grads for g in pair))
            if total > self.clip_norm:
                scale = self.clip_norm / total
                grads = [(dW * scale, db * scale) for dW, db in grads]
        state, wd = self.state, self.weight_decay
        for m, ((W, b), (dW, db)) in enumerate(zip(weights, grads)):
            if wd:
                if self.decoupled_weight_decay:
                    W *= 1.0 - self.lr * wd
                else:
                    dW = dW + wd * W
            self.update(W, dW, state.setdefault(2 * m, {}))
            self.update(b, db, state.setdefault(2 * m + 1, {}))

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Apply the rule to one array ``p`` in place, given its gradient ``g``."""
        raise NotImplementedError

    def hyper_parameters(self) -> dict:
        return {}

    def __repr__(self) -> str:
        hp = {"lr": self.base_lr, **self.hyper_parameters()}
        if self.weight_decay:
            hp["weight_decay"] = self.weight_decay
        if self.clip_norm is not None:
            hp["clip_norm"] = self.clip_norm
        args = ", ".join(f"{k}={v!r}" for k, v in hp.items())
        return f"{type(self).__name__}({args}, schedule={self.schedule!r})"


class SGD(Optimiser):
    """``p ← p − lr · g``."""

    name = "sgd"

    def update(self, p, g, state):
        p -= self.lr * g


class Momentum(Optimiser):
    """Classical momentum: ``v ← μ v − lr · g``, ``p ← p + v``."""

    name = "momentum"
    state_arrays = 2
    constraints = {"momentum": Interval(float, 0, 1, closed="left")}

    def __init__(self, lr, *, momentum: float = 0.9, **kw):
        super().__init__(lr, **kw)
        check_all(Momentum.constraints, {"momentum": momentum})
        self.momentum = float(momentum)

    def hyper_parameters(self):
        return {"momentum": self.momentum}

    def _velocity(self, p, g, state):
        if "v" not in state:
            state["v"], state["scratch"] = np.zeros_like(p), np.empty_like(p)
        v, tmp = state["v"], state["scratch"]
        v *= self.momentum
        np.multiply(g, self.lr, out=tmp)
        v -= tmp
        return v, tmp

    def update(self, p, g, state):
        p += self._velocity(p, g, state)[0]


class Nesterov(Momentum):
    """Nesterov momentum (Sutskever et al.): ``v ← μ v − lr · g``, ``p ← p + μ v − lr · g``."""

    name = "nesterov"

    def update(self, p, g, state):
        v, lr_g = self._velocity(p, g, state)
        p -= lr_g
        np.multiply(v, self.momentum, out=lr_g)
        p += lr_g


class Adam(Optimiser):
    """Adam (Kingma & Ba): ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
    ``p ← p − lr · m̂ / (√v̂ + ε)`` with ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``."""

    name = "adam"
    state_arrays = 3
    constraints = {"beta1": Interval(float, 0, 1, closed="left"), "beta2": Interval(float, 0, 1, closed="left"),
                   "eps": Interval(float, 0, None, closed="neither")}

    def __init__(self, lr, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **kw):
        super().__init__(lr, **kw)
        check_all(Adam.constraints, {"beta1": beta1, "beta2": beta2, "eps": eps})
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def hyper_parameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def update(self, p, g, state):
        if "m" not in state:
            state["m"], state["v"], state["scratch"] = (np.zeros_like(p), np.zeros_like(p), np.empty_like(p))
        m, v, tmp = state["m"], state["v"], state["scratch"]
        # In place, through one scratch array: large temporaries cost more than the arithmetic.
        np.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta1
        m += tmp  # m ← m + (1 − β₁)(g − m) = β₁m + (1 − β₁)g
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.beta2
        v *= self.beta2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(1 - self.beta2**self.t)
        tmp += self.eps  # √v̂ + ε
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - self.beta1**self.t)  # lr · m̂ / (√v̂ + ε)
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``W ← W (1 − lr · λ)`` first."""

    name = "adamw"
    decoupled_weight_decay = True


class RMSprop(Optimiser):
    """RMSprop: ``s ← ρ s + (1−ρ) g²``, ``p ← p − lr · g / (√s + ε)``."""

    name = "rmsprop"
    state_arrays = 2
    constraints = {"rho": Interval(float, 0, 1, closed="left"), "eps": Interval(float, 0, None, closed="neither")}

    def __init__(self, lr, *, rho: float = 0.9, eps: float = 1e-8, **kw):
        super().__init__(lr, **kw)
        check_all(RMSprop.constraints, {"rho": rho, "eps": eps})
        self.rho, self.eps = float(rho), float(eps)

    def hyper_parameters(self):
        return {"rho": self.rho, "eps": self.eps}

    def update(self, p, g, state):
        if "s" not in state:
            state["s"], state["scratch"] = np.zeros_like(p), np.empty_like(p)
        s, tmp = state["s"], state["scratch"]
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.rho
        s *= self.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp


def get_optimiser(name: str, lr: float, **hyper_parameters) -> Optimiser:
    """Build an optimiser by name; unknown names and hyper-parameters get a clear error."""
    try:
        cls = OPTIMISERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimiser {name!r}; valid: {', '.join(sorted(OPTIMISERS))}") from None
    try:
        return cls(lr, **hyper_parameters)
    except TypeError as exc:
        raise ValueError(f"optimiser {name!r}: {exc}") from None
