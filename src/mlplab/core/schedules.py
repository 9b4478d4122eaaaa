"""Learning-rate schedules: ``lr(epoch) = schedule(base_lr, epoch)``, epochs counted from 0."""

from __future__ import annotations

import math
from typing import ClassVar

SCHEDULES: dict[str, type[Schedule]] = {}


class Schedule:
    name: ClassVar[str]

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

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        if int(step_size) < 1:
            raise ValueError(f"schedule step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """``lr = base_lr · gamma^epoch``."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95):
        self.gamma = float(gamma)

    def __call__(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class Cosine(Schedule):
    """``lr = lr_min + (base_lr − lr_min)(1 + cos(π · min(epoch, t_max) / t_max)) / 2``."""

    name = "cosine"

    def __init__(self, t_max: int = 50, lr_min: float = 0.0):
        if int(t_max) < 1:
            raise ValueError(f"schedule t_max must be >= 1, got {t_max}")
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
    params = {}
    if isinstance(spec, dict):
        params = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name", "constant")
    try:
        cls = SCHEDULES[spec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {spec!r}; valid: {', '.join(sorted(SCHEDULES))}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"schedule {spec!r}: {exc}") from None
