"""Learning-rate schedules: ``lr(epoch) = schedule(base_lr, epoch)``, epochs counted from 0."""

from __future__ import annotations

import math
from typing import ClassVar

from mlplab.core.constraints import Interval, check_all

#: A decay factor: 1 keeps the rate, below 1 shrinks it; 0 or less would zero or flip its sign.
GAMMA = Interval(float, 0, 1, closed="right")

SCHEDULES: dict[str, type[Schedule]] = {}


class Schedule:
    name: ClassVar[str]
    #: Bounds of the keyword arguments, read by the constructor and by the config validation.
    constraints: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            SCHEDULES[cls.name] = cls

    def __call__(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """``lr = base_lr``."""

    name = "constant"

    def __call__(self, base_lr, epoch):
        return base_lr


class Step(Schedule):
    """``lr = base_lr · gamma^⌊epoch / step_size⌋``."""

    name = "step"
    constraints = {"step_size": Interval(int, 1), "gamma": GAMMA}

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        check_all(self.constraints, {"step_size": step_size, "gamma": gamma}, "schedule ")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """``lr = base_lr · gamma^epoch``."""

    name = "exponential"
    constraints = {"gamma": GAMMA}

    def __init__(self, gamma: float = 0.95):
        check_all(self.constraints, {"gamma": gamma}, "schedule ")
        self.gamma = float(gamma)

    def __call__(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class Cosine(Schedule):
    """``lr = lr_min + (base_lr − lr_min)(1 + cos(π · min(epoch, t_max) / t_max)) / 2``."""

    name = "cosine"
    #: ``lr_min`` must also stay below the optimiser's ``lr``, which the schedule does not see.
    constraints = {"t_max": Interval(int, 1), "lr_min": Interval(float, 0)}

    def __init__(self, t_max: int = 50, lr_min: float = 0.0):
        check_all(self.constraints, {"t_max": t_max, "lr_min": lr_min}, "schedule ")
        self.t_max, self.lr_min = int(t_max), float(lr_min)

    def __call__(self, base_lr, epoch):
        progress = min(epoch, self.t_max) / self.t_max
        return self.lr_min + (base_lr - self.lr_min) * (1 + math.cos(math.pi * progress)) / 2


def get_schedule(spec: Schedule | str | dict | None) -> Schedule:
    """Resolve ``None`` (constant), a name, or ``{"name": ..., **hyper_parameters}``."""
    if isinstance(spec, Schedule):
        return spec
    if spec is None:
        return Constant()
    hyper_parameters = {}
    if isinstance(spec, dict):
        hyper_parameters = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name", "constant")
    try:
        cls = SCHEDULES[spec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {spec!r}; valid: {', '.join(sorted(SCHEDULES))}") from None
    try:
        return cls(**hyper_parameters)
    except TypeError as exc:
        raise ValueError(f"schedule {spec!r}: {exc}") from None
