import numpy as np
import pytest

from mlplab.core import NONLINEARITIES, get_nonlinearity

NAMES = sorted(NONLINEARITIES)
ELEMENTWISE = [n for n in NAMES if n != "softmax"]


def test_registry_holds_the_documented_names():
    assert set(NAMES) == {
        "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "softmax"
    }


def test_sigmoid_has_the_minus_sign():
    # σ(z) = 1/(1 + e^(−z)): σ(2) = 0.8807970779778823; the e^(+z) typo would give 0.1192...
    s = get_nonlinearity("sigmoid").forward(np.array([[2.0, 0.0, -2.0]]))
    np.testing.assert_allclose(s, [[0.8807970779778823, 0.5, 0.11920292202211755]], rtol=1e-15)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(name):
    sigma = get_nonlinearity(name)
    z = np.random.default_rng(0).normal(size=(5, 4)) * 3
    z[np.abs(z) < 1e-3] = 0.5  # keep clear of the kinks of relu and friends
    eps = 1e-6
    numeric = (sigma.forward(z + eps) - sigma.forward(z - eps)) / (2 * eps)
    np.testing.assert_allclose(sigma.derivative(z, sigma.forward(z)), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_backward_is_the_jacobian_product():
    sigma = get_nonlinearity("softmax")
    rng = np.random.default_rng(1)
    z, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    a = sigma.forward(z)
    for i in range(3):
        jacobian = np.diag(a[i]) - np.outer(a[i], a[i])
        expected = jacobian.T @ g[i]
        np.testing.assert_allclose(sigma.backward(z, a, g.copy())[i], expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_stable_and_finite_at_extreme_inputs(name, dtype):
    sigma = get_nonlinearity(name)
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = sigma.forward(z)
        grad = sigma.backward(z, a, np.ones_like(z))
    assert a.dtype == z.dtype and grad.dtype == z.dtype
    assert np.isfinite(a).all() and np.isfinite(grad).all()


def test_known_values_at_extremes():
    z = np.array([[-1000.0, 1000.0]])
    assert get_nonlinearity("sigmoid").forward(z).tolist() == [[0.0, 1.0]]
    assert get_nonlinearity("softplus").forward(z).tolist() == [[0.0, 1000.0]]
    assert get_nonlinearity("elu").forward(z).tolist() == [[-1.0, 1000.0]]
    assert get_nonlinearity("softmax").forward(z).tolist() == [[0.0, 1.0]]


def test_hyper_parameters_and_defaults():
    assert get_nonlinearity("leaky_relu").slope == 0.01
    assert get_nonlinearity("elu").alpha == 1.0
    leaky = get_nonlinearity({"name": "leaky_relu", "slope": 0.2})
    assert leaky.forward(np.array([[-1.0, 1.0]])).tolist() == [[-0.2, 1.0]]
    assert repr(leaky) == "LeakyReLU(slope=0.2)"


def test_unknown_name_and_bad_parameter_are_clear():
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'; valid: elu, identity"):
        get_nonlinearity("swish")
    with pytest.raises(ValueError, match="'relu' takes no parameters"):
        get_nonlinearity("relu", slope=1)
