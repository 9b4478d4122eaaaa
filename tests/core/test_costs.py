import numpy as np
import pytest

from mlplab.core import COSTS, get_cost, get_nonlinearity


def test_squared_error_gradient_is_a_minus_y():
    # C = ½‖y − a‖² ⇒ ∂C/∂a = a − y (not y − a); one sample, so no 1/n.
    cost = get_cost("squared_error")
    a, y = np.array([[0.35, 2.0]]), np.array([[1.0, 0.5]])
    assert cost.value(a, y) == pytest.approx(0.5 * (0.65**2 + 1.5**2))
    np.testing.assert_allclose(cost.gradient(a, y), [[-0.65, 1.5]])


def test_binary_cross_entropy_gradient_and_fused_delta():
    # ∂C/∂a = (a − y)/(a(1 − a)): a = 0.8, y = 1 ⇒ −0.2/0.16 = −1.25
    cost = get_cost("binary_cross_entropy")
    np.testing.assert_allclose(cost.gradient(np.array([[0.8]]), np.array([[1.0]])), [[-1.25]])
    # with a sigmoid output the chain rule collapses to δ = a − y
    sigmoid = get_nonlinearity("sigmoid")
    z = np.array([[1.3, -0.4], [0.2, 2.5]])
    a, y = sigmoid.forward(z), np.array([[1.0, 0.0], [0.0, 1.0]])
    fused = cost.delta(z, a, y, sigmoid)
    chain = sigmoid.backward(z, a, cost.gradient(a, y))
    np.testing.assert_allclose(fused, (a - y) / 2, rtol=1e-15)
    np.testing.assert_allclose(fused, chain, rtol=1e-12)
    assert cost.fused_value(z, y) == pytest.approx(cost.value(a, y), rel=1e-12)


def test_categorical_fused_delta_equals_chain_rule():
    cost, softmax = get_cost("categorical_cross_entropy"), get_nonlinearity("softmax")
    z = np.random.default_rng(0).normal(size=(4, 3))
    a, y = softmax.forward(z), np.eye(3)[[0, 2, 1, 2]]
    np.testing.assert_allclose(
        cost.delta(z, a, y, softmax), softmax.backward(z, a, cost.gradient(a, y)), rtol=1e-12
    )
    assert cost.fused_value(z, y) == pytest.approx(cost.value(a, y), rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_values_are_stable_at_extreme_logits(dtype):
    z = np.array([[1000.0, -1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        bce = get_cost("binary_cross_entropy").fused_value(z, np.array([[0.0, 1.0]], dtype=dtype))
        cce = get_cost("categorical_cross_entropy").fused_value(z, np.array([[0.0, 1.0]], dtype=dtype))
    assert bce == pytest.approx(2000.0)
    assert cce == pytest.approx(2000.0)


def test_cost_is_the_batch_mean():
    cost = get_cost("squared_error")
    a, y = np.array([[1.0], [3.0]]), np.zeros((2, 1))
    assert cost.value(a, y) == pytest.approx((0.5 + 4.5) / 2)
    np.testing.assert_allclose(cost.gradient(a, y), [[0.5], [1.5]])


@pytest.mark.parametrize(
    "cost, output",
    [
        ("categorical_cross_entropy", "relu"),
        ("categorical_cross_entropy", "sigmoid"),
        ("binary_cross_entropy", "identity"),
        ("binary_cross_entropy", "tanh"),
        ("binary_cross_entropy", "softplus"),
    ],
)
def test_pairs_that_make_no_sense_are_refused(cost, output):
    with pytest.raises(ValueError, match=f"cost '{cost}' cannot follow a '{output}' output"):
        get_cost(cost).check_output(get_nonlinearity(output))


def test_unknown_cost():
    with pytest.raises(ValueError, match="unknown cost 'hinge'; valid: binary_cross_entropy"):
        get_cost("hinge")
    assert set(COSTS) == {"squared_error", "binary_cross_entropy", "categorical_cross_entropy"}
