"""Declarative constraints on hyper-parameters, in the spirit of scikit-learn's
``_parameter_constraints``: a bound is written once, as a class attribute next to the code it
guards, and both the constructor and the config validation (:mod:`mlplab.config`) read it.

>>> Interval(float, 0, None, closed="neither").describe()
'a number > 0'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class Constraint:
    """What a value may be: :meth:`accepts` decides, :meth:`describe` says it for people."""

    optional: bool = False

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, key: str, value: Any) -> Any:
        """Return ``value`` (a float as ``float``) or raise ``ValueError("<key> must be …, got …")``."""
        if value is None and self.optional:
            return None
        if not self.accepts(value):
            raise ValueError(f"{key} must be {self.describe()}{' or null' if self.optional else ''}, got {value!r}")
        return self.convert(value)

    def convert(self, value: Any) -> Any:
        return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Interval(Constraint):
    """A finite number of type ``kind`` (``int`` or ``float``) between ``low`` and ``high``;
    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` is unbounded."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    optional: bool = False

    def accepts(self, v) -> bool:
        if self.kind is int:
            if not _is_int(v):
                return False
        elif not (_is_int(v) or isinstance(v, float)) or not math.isfinite(v):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and not (v >= self.low if left else v > self.low):
            return False
        return self.high is None or (v <= self.high if right else v < self.high)

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return f"{what} in {'[' if left else '('}{self.low}, {self.high}{']' if right else ')'}"
        if self.low is not None:
            return f"{what} {'>=' if left else '>'} {self.low}"
        if self.high is not None:
            return f"{what} {'<=' if right else '<'} {self.high}"
        return what

    def convert(self, v):
        return float(v) if self.kind is float else v


class Options(Constraint):
    """One of a set of values. A registry (a dict) is kept by reference, so names registered
    after the constraint was written are valid too."""

    def __init__(self, values: Iterable, optional: bool = False):
        self.values = values if isinstance(values, Mapping) else tuple(values)
        self.optional = optional

    def accepts(self, v) -> bool:
        return isinstance(v, (str, int, float, bool)) and v in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(sorted(map(str, self.values)))


@dataclass(frozen=True)
class Boolean(Constraint):
    optional: bool = False

    def accepts(self, v) -> bool:
        return isinstance(v, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string."""

    optional: bool = False

    def accepts(self, v) -> bool:
        return isinstance(v, str) and bool(v)

    def describe(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list (possibly empty) whose items meet ``item``."""

    item: Constraint
    optional: bool = False

    def accepts(self, v) -> bool:
        return isinstance(v, (list, tuple)) and all(self.item.accepts(x) for x in v)

    def describe(self) -> str:
        return f"a list (may be empty) of {self.item.describe().removeprefix('a ').removeprefix('an ')}s"

    def convert(self, v):
        return [self.item.convert(x) for x in v]


def constraints_of(cls: type) -> dict[str, Constraint]:
    """The ``constraints`` declared by ``cls`` and its bases (a subclass's entry wins)."""
    out: dict[str, Constraint] = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("constraints", {}))
    return out


def check_all(constraints: Mapping[str, Constraint], values: Mapping[str, Any], prefix: str = "") -> dict:
    """Check every value that has a constraint; return them converted. Raises ``ValueError``."""
    return {k: constraints[k].check(prefix + k, v) if k in constraints else v for k, v in values.items()}
