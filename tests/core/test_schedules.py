import math

import pytest

from mlplab.core import SCHEDULES, get_optimiser, get_schedule


def test_registry():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine"}


def test_step():
    s = get_schedule({"name": "step", "step_size": 2, "gamma": 0.5})
    assert [s(1.0, e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_exponential():
    s = get_schedule({"name": "exponential", "gamma": 0.9})
    assert s(1.0, 2) == pytest.approx(0.81)


def test_cosine():
    s = get_schedule({"name": "cosine", "t_max": 10, "lr_min": 0.0})
    assert [s(1.0, e) for e in (0, 5, 10, 20)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert s(1.0, 2) == pytest.approx((1 + math.cos(math.pi / 5)) / 2)


def test_optimiser_follows_its_schedule():
    opt = get_optimiser("sgd", lr=0.1, schedule={"name": "step", "step_size": 1, "gamma": 0.1})
    assert [opt.start_epoch(e) for e in range(3)] == pytest.approx([0.1, 0.01, 0.001])
    assert get_optimiser("sgd", lr=0.1).start_epoch(7) == 0.1
