"""Initialisers: draw a layer's ``(W, b)`` from an explicit ``numpy.random.Generator``.

Each takes ``fan_in = Nᵐ⁻¹`` and ``fan_out = Nᵐ`` and returns ``W`` of shape
``(fan_out, fan_in)`` and ``b`` of shape ``(fan_out,)`` in float64 (the network casts).

=================  ====================================  ============
name               W                                     b
=================  ====================================  ============
``normal``         N(0, 1), the classic textbook draw    N(0, 1)
``xavier_uniform`` U(−r, r), r = √(6 / (fan_in+fan_out))  0
``xavier_normal``  N(0, 2 / (fan_in + fan_out))          0
``he_uniform``     U(−r, r), r = √(6 / fan_in)           0
``he_normal``      N(0, 2 / fan_in)                      0
=================  ====================================  ============
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initialiser = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    return rng.standard_normal((fan_out, fan_in)), rng.standard_normal(fan_out)


def xavier_uniform(fan_in: int, fan_out: int, rng: np.random.Generator):
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, (fan_out, fan_in)), np.zeros(fan_out)


def xavier_normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, (fan_out, fan_in)), np.zeros(fan_out)


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator):
    r = np.sqrt(6.0 / fan_in)
    return rng.uniform(-r, r, (fan_out, fan_in)), np.zeros(fan_out)


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator):
    std = np.sqrt(2.0 / fan_in)
    return rng.normal(0.0, std, (fan_out, fan_in)), np.zeros(fan_out)


INITIALISERS: dict[str, Initialiser] = {
    f.__name__: f for f in (normal, xavier_uniform, xavier_normal, he_uniform, he_normal)
}


def get_initialiser(name: str) -> Initialiser:
    try:
        return INITIALISERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown initialiser {name!r}; valid: {', '.join(sorted(INITIALISERS))}"
        ) from None
