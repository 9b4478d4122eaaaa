import numpy as np
import pytest

from mlplab.core import INITIALISERS, get_initialiser


@pytest.mark.parametrize("name", sorted(INITIALISERS))
def test_shapes_and_explicit_generator(name):
    W, b = get_initialiser(name)(300, 200, np.random.default_rng(0))
    assert W.shape == (200, 300) and b.shape == (200,)
    W2, _ = get_initialiser(name)(300, 200, np.random.default_rng(0))
    assert W.tobytes() == W2.tobytes()


@pytest.mark.parametrize(
    "name, std",
    [
        ("normal", 1.0),
        ("xavier_uniform", np.sqrt(2 / 500)),  # U(−r, r) has variance r²/3 = 2/(fan_in + fan_out)
        ("xavier_normal", np.sqrt(2 / 500)),
        ("he_uniform", np.sqrt(2 / 300)),
        ("he_normal", np.sqrt(2 / 300)),
    ],
)
def test_scale(name, std):
    W, b = get_initialiser(name)(300, 200, np.random.default_rng(0))
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 0.01 * std * 10
    if name == "normal":
        assert b.std() == pytest.approx(1.0, rel=0.2)
    else:
        assert not b.any()
