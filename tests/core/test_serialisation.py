import numpy as np
import pytest

from mlplab.core import ModelFileError, Network, fit, get_optimiser, load, save


@pytest.fixture(params=["float32", "float64"])
def trained(request):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 4)), np.eye(3)[rng.integers(0, 3, 40)]
    net = Network([4, 6, 3], [{"name": "leaky_relu", "slope": 0.1}, "softmax"],
                  "categorical_cross_entropy", dtype=request.param, rng=1)
    fit(net, X, Y, optimiser=get_optimiser("adam", lr=0.01), epochs=3, batch_size=8, rng=2)
    return net, X


def test_round_trip_predicts_bit_for_bit(trained, tmp_path):
    net, X = trained
    path = save(net, tmp_path / "model.npz")
    loaded = load(path)
    assert loaded.forward(X).tobytes() == net.forward(X).tobytes()
    assert loaded.architecture() == net.architecture()
    assert repr(loaded) == repr(net)
    with np.load(path, allow_pickle=False) as data:  # no pickle anywhere in the file
        assert sorted(data.files) == ["W1", "W2", "architecture", "b1", "b2"]


def test_truncated_file(trained, tmp_path):
    path = save(trained[0], tmp_path / "model.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="model.npz: not a readable mlplab model file"):
        load(path)


def test_corrupted_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(ModelFileError, match="not a readable mlplab model file"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "absent.npz")


def test_mismatched_arrays(trained, tmp_path):
    path = save(trained[0], tmp_path / "model.npz")
    with np.load(path) as data:
        contents = dict(data)
    contents["W2"] = np.zeros((3, 5), dtype=contents["W2"].dtype)
    np.savez(path, **contents)
    with pytest.raises(ModelFileError, match=r"layer 2: expected W\(3, 6\)"):
        load(path)
    del contents["W2"]
    np.savez(path, **contents)
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        load(path)
