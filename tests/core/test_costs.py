import numpy as np
import pytest

from mlplab.core import COSTS, get_cost, get_nonlinearity


def test_squared_error_gradient_is_a_minus_y():
    # C = ½‖y − a‖² ⇒ ∂C/∂a = a − y (not y − a); one sample, so no 1/n.
    cost = get_cost("squared_error")
    a, y = np.array([[0.35, 2.0]]), np.array([[1.0, 0.5]])
    assert cost.plain_loss(a, y) == pytest.approx(0.5 * (0.65**2 + 1.5**2))
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
    assert cost.fused_loss(z, y) == pytest.approx(cost.plain_loss(a, y), rel=1e-12)


def test_categorical_fused_delta_equals_chain_rule():
    cost, softmax = get_cost("categorical_cross_entropy"), get_nonlinearity("softmax")
    z = np.random.default_rng(0).normal(size=(4, 3))
    a, y = softmax.forward(z), np.eye(3)[[0, 2, 1, 2]]
    np.testing.assert_allclose(
        cost.delta(z, a, y, softmax), softmax.backward(z, a, cost.gradient(a, y)), rtol=1e-12
    )
    assert cost.fused_loss(z, y) == pytest.approx(cost.plain_loss(a, y), rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_losss_are_stable_at_extreme_logits(dtype):
    z = np.array([[1000.0, -1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        bce = get_cost("binary_cross_entropy").fused_loss(z, np.array([[0.0, 1.0]], dtype=dtype))
        cce = get_cost("categorical_cross_entropy").fused_loss(z, np.array([[0.0, 1.0]], dtype=dtype))
    assert bce == pytest.approx(2000.0)
    assert cce == pytest.approx(2000.0)


def test_cost_is_the_batch_mean():
    cost = get_cost("squared_error")
    a, y = np.array([[1.0], [3.0]]), np.zeros((2, 1))
    assert cost.plain_loss(a, y) == pytest.approx((0.5 + 4.5) / 2)
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


# -- what the outputs mean: one rule for every cost ------------------------------------------
@pytest.mark.parametrize("name", sorted(COSTS))
def test_labels_invert_targets(name):
    cost, y = get_cost(name), np.array([0, 2, 1, 2])
    assert cost.labels(cost.targets(y, 3)).tolist() == y.tolist()
    assert cost.labels(cost.targets(np.array([1, 0, 1]), 1)).tolist() == [1, 0, 1]


def test_one_unit_is_a_threshold_and_several_are_the_largest():
    a1 = np.array([[0.5], [0.49], [0.9]])
    assert get_cost("binary_cross_entropy").labels(a1).tolist() == [1, 0, 1]  # a ≥ 0.5 is class 1
    a3 = np.array([[0.6, 0.7, 0.1], [0.2, 0.1, 0.3]])  # several units above 0.5: still the largest
    assert get_cost("binary_cross_entropy").labels(a3).tolist() == [1, 2]


def test_multi_unit_binary_cross_entropy_accuracy_is_per_sample():
    # two of three samples have the largest output at their class: 2/3, not a per-element 5/9
    a = np.array([[0.6, 0.7, 0.1], [0.9, 0.2, 0.3], [0.1, 0.2, 0.8]])
    Y = np.eye(3)[[1, 1, 2]]
    assert get_cost("binary_cross_entropy").accuracy(a, Y) == pytest.approx(2 / 3)


@pytest.mark.parametrize("name, task, n_classes, expected", [
    ("categorical_cross_entropy", "classification", 2, 2),
    ("categorical_cross_entropy", "classification", 10, 10),
    ("binary_cross_entropy", "classification", 2, 1),
    ("binary_cross_entropy", "classification", 3, 3),
    ("squared_error", "classification", 2, 2),
    ("squared_error", "regression", None, 1),
])
def test_output_width_for_a_task(name, task, n_classes, expected):
    assert get_cost(name).n_outputs(task, n_classes) == expected


@pytest.mark.parametrize("name", ["categorical_cross_entropy", "binary_cross_entropy"])
def test_cross_entropies_cannot_learn_a_regression(name):
    with pytest.raises(ValueError, match=f"cost '{name}' cannot learn a regression task"):
        get_cost(name).n_outputs("regression")


def test_default_outputs():
    assert {n: c.default_output for n, c in COSTS.items()} == {
        "squared_error": "identity", "binary_cross_entropy": "sigmoid", "categorical_cross_entropy": "softmax"}
