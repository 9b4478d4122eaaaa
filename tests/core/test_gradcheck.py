"""Every nonlinearity × cost × initialiser, gradient-checked in float64."""

import zlib

import numpy as np
import pytest

from mlplab.core import COSTS, INITIALISERS, NONLINEARITIES, Network, get_cost, get_nonlinearity, gradcheck


def _valid(cost: str, output: str) -> bool:
    try:
        get_cost(cost).check_output(get_nonlinearity(output))
    except ValueError:
        return False
    return True


HIDDEN = sorted(n for n, cls in NONLINEARITIES.items() if cls.hidden_ok)
PAIRS = [(c, o) for c in sorted(COSTS) for o in sorted(NONLINEARITIES) if _valid(c, o)]


def _targets(cost: str, rng, n: int, k: int) -> np.ndarray:
    if cost == "categorical_cross_entropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if cost == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def test_every_nonlinearity_reaches_the_output_of_some_cost():
    assert {o for _, o in PAIRS} == set(NONLINEARITIES)


@pytest.mark.parametrize("init", sorted(INITIALISERS))
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("cost, output", PAIRS, ids=[f"{c}-{o}" for c, o in PAIRS])
def testbackprop_matches_finite_differences(cost, output, hidden, init):
    rng = np.random.default_rng(zlib.crc32(f"{cost}{output}{hidden}{init}".encode()))
    net = Network([3, 4, 3, 2], [hidden, output], cost, init=init, dtype="float64", rng=rng)
    # Zero biases put every sample whose relu inputs are all dead exactly on the next kink,
    # where finite differences are meaningless: shift the biases off zero.
    net.weights = [(W, b + rng.normal(scale=0.1, size=b.shape)) for W, b in net.weights]
    # Finite differences are meaningless across a kink: draw inputs until every pre-activation
    # stays 10·(2ε) clear of zero. Small inputs keep N(0, 1) weights from saturating the outputs.
    for _ in range(100):
        X = rng.normal(scale=0.3, size=(5, 3))
        zs, _ = net._forward(X)
        if min(np.abs(z).min() for z in zs) > 2e-3:
            break
    Y = _targets(cost, rng, 5, 2)
    errors = gradcheck(net, X, Y)
    assert set(errors) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_detects_a_wrong_gradient():
    net = Network([2, 3, 1], ["tanh", "identity"], "squared_error", dtype="float64", rng=0)
    X, Y = np.ones((4, 2)), np.zeros((4, 1))
    original = net.backprop

    def off_by_factor(X, Y):
        loss, grads = original(X, Y)
        return loss, [(2 * dW, db) for dW, db in grads]

    net.backprop = off_by_factor
    errors = gradcheck(net, X, Y)
    assert errors["W1"] > 0.1 and errors["b1"] < 1e-6
