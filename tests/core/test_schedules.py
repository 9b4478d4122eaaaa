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


@pytest.mark.parametrize("spec, message", [
    ({"name": "step", "gamma": 0.0}, r"schedule gamma must be a number in \(0, 1\], got 0.0"),
    ({"name": "exponential", "gamma": -0.5}, r"schedule gamma must be a number in \(0, 1\], got -0.5"),
    ({"name": "cosine", "lr_min": -0.1}, "schedule lr_min must be a number >= 0, got -0.1"),
    ({"name": "step", "step_size": 0}, "schedule step_size must be an integer >= 1, got 0"),
])
def test_schedules_refuse_rates_that_flip_or_vanish(spec, message):
    with pytest.raises(ValueError, match=message):
        get_schedule(spec)
