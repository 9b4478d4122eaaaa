import numpy as np
import pytest

from mlplab.core import Network, get_optimiser


def test_one_sgd_step_on_a_3_2_1_net_by_hand():
    net = Network([3, 2, 1], ["relu", "identity"], "squared_error", dtype="float64", rng=0)
    net.weights = [
        (np.array([[0.1, 0.2, 0.3], [-0.2, 0.1, 0.4]]), np.array([0.1, -0.1])),
        (np.array([[0.5, -1.0]]), np.array([0.2])),
    ]
    x, y = np.array([[1.0, 2.0, -1.0]]), np.array([[1.0]])
    # z¹ = W¹x + b¹ = [0.1 + 0.4 − 0.3 + 0.1, −0.2 + 0.2 − 0.4 − 0.1] = [0.3, −0.5]
    # a¹ = relu(z¹) = [0.3, 0];  z² = 0.5·0.3 − 1·0 + 0.2 = 0.35 = a²
    # C = ½(0.35 − 1)² = 0.21125
    # δ² = a² − y = −0.65;  ∂C/∂W² = δ² a¹ᵀ = [[−0.195, 0]];  ∂C/∂b² = −0.65
    # δ¹ = (W²ᵀ δ²) ∘ relu'(z¹) = [−0.325, 0.65] ∘ [1, 0] = [−0.325, 0]
    # ∂C/∂W¹ = δ¹ xᵀ = [[−0.325, −0.65, 0.325], [0, 0, 0]];  ∂C/∂b¹ = [−0.325, 0]
    loss, grads = net.gradients(x, y)
    assert loss == pytest.approx(0.21125, abs=1e-15)
    np.testing.assert_allclose(grads[1][0], [[-0.195, 0.0]], atol=1e-15)
    np.testing.assert_allclose(grads[1][1], [-0.65], atol=1e-15)
    np.testing.assert_allclose(grads[0][0], [[-0.325, -0.65, 0.325], [0, 0, 0]], atol=1e-15)
    np.testing.assert_allclose(grads[0][1], [-0.325, 0.0], atol=1e-15)
    # SGD, lr = 0.1: p ← p − 0.1 · ∂C/∂p
    get_optimiser("sgd", lr=0.1).step(net.weights, grads)
    np.testing.assert_allclose(net.weights[0][0], [[0.1325, 0.265, 0.2675], [-0.2, 0.1, 0.4]], atol=1e-15)
    np.testing.assert_allclose(net.weights[0][1], [0.1325, -0.1], atol=1e-15)
    np.testing.assert_allclose(net.weights[1][0], [[0.5195, -1.0]], atol=1e-15)
    np.testing.assert_allclose(net.weights[1][1], [0.265], atol=1e-15)


def test_shapes_follow_the_derivation():
    net = Network([4, 5, 3], ["tanh", "softmax"], "categorical_cross_entropy", rng=0)
    assert [(W.shape, b.shape) for W, b in net.weights] == [((5, 4), (5,)), ((3, 5), (3,))]
    X, Y = np.zeros((7, 4)), np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]
    assert net.forward(X).shape == (7, 3)
    assert net.predict(X).shape == (7,)
    _, grads = net.gradients(X, Y)
    assert [(dW.shape, db.shape) for dW, db in grads] == [((5, 4), (5,)), ((3, 5), (3,))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_through_a_step(dtype):
    net = Network([3, 4, 2], ["sigmoid", "sigmoid"], "binary_cross_entropy", dtype=dtype, rng=0)
    X = np.random.default_rng(0).normal(size=(5, 3))  # float64 input is cast once, at the edge
    _, grads = net.gradients(X, np.ones((5, 2)))
    assert net.forward(X).dtype == dtype
    assert all(g.dtype == dtype for pair in grads for g in pair)
    assert all(p.dtype == dtype for pair in net.weights for p in pair)


def test_nonlinearities_per_layer_or_as_a_pair():
    per_layer = Network([2, 3, 3, 1], ["relu", "tanh", "sigmoid"], "binary_cross_entropy", rng=0)
    assert [s.name for s in per_layer.nonlinearities] == ["relu", "tanh", "sigmoid"]
    pair = Network([2, 3, 3, 1], ["relu", "sigmoid"], "binary_cross_entropy", rng=0)
    assert [s.name for s in pair.nonlinearities] == ["relu", "relu", "sigmoid"]
    linear = Network([2, 1], ["identity"], "squared_error", rng=0)
    assert linear.n_layers == 1


def test_repr():
    net = Network([2, 2, 1], ["sigmoid", "sigmoid"], "binary_cross_entropy", init="normal", rng=0)
    assert repr(net) == (
        "Network(2-2-1, [sigmoid, sigmoid], cost='binary_cross_entropy', init='normal', dtype='float32')"
    )


def test_same_seed_same_weights():
    a = Network([5, 8, 3], ["relu", "softmax"], "categorical_cross_entropy", rng=7)
    b = Network([5, 8, 3], ["relu", "softmax"], "categorical_cross_entropy", rng=np.random.default_rng(7))
    assert all(x.tobytes() == y.tobytes() for p, q in zip(a.weights, b.weights) for x, y in zip(p, q))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([2, 0, 1], ["relu", "sigmoid"], "binary_cross_entropy"), {}, "layer_sizes must be"),
        (([2, 3, 1], ["relu", "relu"], "categorical_cross_entropy"), {}, "cannot follow a 'relu' output"),
        (([2, 3, 3, 1], ["softmax", "softmax", "sigmoid"], "squared_error"), {}, "output layer only"),
        (([2, 3, 3, 1], ["relu"] * 4, "squared_error"), {}, "one name per layer"),
        (([2, 3, 1], ["relu", "sigmoid"], "squared_error"), {"dtype": "float16"}, "dtype must be"),
        (([2, 3, 1], ["relu", "sigmoid"], "squared_error"), {"init": "zeros"}, "unknown initialiser"),
    ],
)
def test_bad_arguments_are_clear(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network(*args, rng=0, **kwargs)


def test_bad_shapes_are_clear():
    net = Network([3, 2, 1], ["relu", "identity"], "squared_error", rng=0)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 3\)"):
        net.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"Y must have shape \(4, 1\)"):
        net.loss(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"layer 2: expected W\(1, 2\)"):
        net.weights = [net.weights[0], (np.zeros((2, 2)), np.zeros(1))]


def test_score_is_loss_and_accuracy_from_one_pass():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    net = Network([4, 5, 3], ["tanh", "softmax"], "categorical_cross_entropy", rng=0)
    loss, acc = net.score(X, np.eye(3)[y])
    assert loss == net.loss(X, np.eye(3)[y])
    assert acc == np.mean(net.predict(X) == y)
    regression = Network([4, 1], ["identity"], "squared_error", rng=0)
    assert regression.score(X, np.zeros((30, 1)))[1] is None


def test_softmax_over_one_unit_is_refused():
    with pytest.raises(ValueError, match="a softmax over one output unit is always 1"):
        Network([4, 1], ["tanh", "softmax"], "categorical_cross_entropy", rng=0)
