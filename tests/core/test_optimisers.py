"""Exact update rules, checked against numbers worked out by hand (lr = 0.1, p = 1, g = 0.5)."""

import numpy as np
import pytest

from mlplab.core import OPTIMISERS, get_optimiser


def _run(name, grads, p=1.0, b=0.0, **hp):
    opt = get_optimiser(name, **{"lr": 0.1, **hp})
    W, bias = np.array([[p]]), np.array([b])
    out = []
    for g in grads:
        opt.step([(W, bias)], [(np.array([[g]]), np.array([g]))])
        out.append((W[0, 0], bias[0]))
    return out


def test_registry():
    assert set(OPTIMISERS) == {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"}


def test_sgd():
    # p ← 1 − 0.1·0.5 = 0.95
    assert _run("sgd", [0.5])[0][0] == pytest.approx(0.95, abs=1e-15)


def test_momentum():
    # v₁ = −0.1·0.5 = −0.05, p₁ = 0.95; v₂ = 0.9·(−0.05) − 0.05 = −0.095, p₂ = 0.855
    steps = _run("momentum", [0.5, 0.5], momentum=0.9)
    assert [s[0] for s in steps] == pytest.approx([0.95, 0.855], abs=1e-15)


def test_nesterov():
    # v₁ = −0.05, p₁ = 1 + 0.9·(−0.05) − 0.05 = 0.905
    # v₂ = −0.095, p₂ = 0.905 + 0.9·(−0.095) − 0.05 = 0.7695
    steps = _run("nesterov", [0.5, 0.5], momentum=0.9)
    assert [s[0] for s in steps] == pytest.approx([0.905, 0.7695], abs=1e-15)


def test_adam():
    # t=1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 ⇒ p = 1 − 0.1·0.5/(0.5 + 1e-8) = 0.900000002
    # t=2, g = −1: m = 0.045 − 0.1 = −0.055, v = 0.00024975 + 0.001 = 0.00124975
    #   m̂ = −0.055/0.19 = −0.2894736842, v̂ = 0.00124975/0.001999 = 0.6251875938, √v̂ = 0.7906880509
    #   p = 0.900000002 + 0.1·0.2894736842/(0.7906880509 + 1e-8) = 0.9366103542
    steps = _run("adam", [0.5, -1.0])
    assert steps[0][0] == pytest.approx(0.900000002, abs=1e-12)
    assert steps[1][0] == pytest.approx(0.9366103542, abs=1e-10)


def test_adamw_decays_weights_not_biases():
    # W ← 1·(1 − 0.1·0.1) = 0.99, then the Adam step −0.1 ⇒ 0.890000002; b: 0 − 0.1 = −0.099999998
    (W, b), = _run("adamw", [0.5], weight_decay=0.1)
    assert W == pytest.approx(0.890000002, abs=1e-12)
    assert b == pytest.approx(-0.099999998, abs=1e-12)


def test_rmsprop():
    # s = 0.1·0.25 = 0.025, √s = 0.1581138830 ⇒ p = 1 − 0.1·0.5/(0.1581138830 + 1e-8) = 0.6837722540
    assert _run("rmsprop", [0.5], rho=0.9)[0][0] == pytest.approx(0.6837722540, abs=1e-10)


def test_l2_weight_decay_is_coupled_and_skips_biases():
    # g_W = 0.5 + 0.1·1 = 0.6 ⇒ W = 0.94; b = 0 − 0.05
    (W, b), = _run("sgd", [0.5], weight_decay=0.1)
    assert (W, b) == pytest.approx((0.94, -0.05), abs=1e-15)


def test_clipping_by_global_norm():
    # ‖(3, 0, 4)‖ = 5 > 1 ⇒ every gradient × 1/5; sgd with lr 1
    opt = get_optimiser("sgd", lr=1.0, clip_norm=1.0)
    W, b = np.zeros((1, 2)), np.zeros(1)
    opt.step([(W, b)], [(np.array([[3.0, 0.0]]), np.array([4.0]))])
    np.testing.assert_allclose(W, [[-0.6, 0.0]])
    np.testing.assert_allclose(b, [-0.8])
    # below the threshold nothing changes
    opt.step([(W, b)], [(np.array([[0.3, 0.0]]), np.array([0.4]))])
    np.testing.assert_allclose(W, [[-0.9, 0.0]])


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_float32_stays_float32(name):
    opt = get_optimiser(name, lr=0.01, weight_decay=0.01, clip_norm=1.0)
    W, b = np.ones((2, 3), np.float32), np.ones(2, np.float32)
    opt.step([(W, b)], [(np.ones((2, 3), np.float32), np.ones(2, np.float32))])
    assert W.dtype == b.dtype == np.float32
    assert all(a.dtype == np.float32 for s in opt.state.values() for a in s.values())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "lbfgs", "lr": 0.1}, "unknown optimiser 'lbfgs'; valid: adam, adamw"),
        ({"name": "sgd", "lr": -1.0}, "lr must be a number > 0, got -1.0"),
        ({"name": "adam", "lr": 0.1, "beta1": 1.0}, r"beta1 must be a number in \[0, 1\), got 1.0"),
        ({"name": "sgd", "lr": 0.1, "momentum": 0.9}, "optimiser 'sgd': .*momentum"),
        ({"name": "sgd", "lr": 0.1, "schedule": "warmup"}, "unknown schedule 'warmup'"),
    ],
)
def test_bad_hyper_parameters_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_optimiser(**kwargs)
