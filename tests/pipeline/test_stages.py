"""The stages on tiny configs: outputs, figures, reproducibility, the classic XOR run."""

import json

import numpy as np
import pytest

from mlplab.core import load
from mlplab.run import execute
from mlplab.stages import evaluate, prepare, train
from tests.conftest import REPO, untracked


def run_all(cfg, out_dir):
    """All three stages through the one life cycle, untracked; the test metrics."""
    return execute(cfg, out_dir, REPO).metrics


def test_run_all_writes_every_output(smoke, tmp_path):
    metrics = run_all(smoke, tmp_path)
    p = smoke["paths"]
    for key in ("model", "train_metrics", "test_metrics", "history", "predictions"):
        assert (tmp_path / p[key]).is_file(), key
    figures = sorted(f.name for f in (tmp_path / p["figures"]).iterdir())
    assert figures == ["confusion_matrix.png", "decision_boundary.png", "grad_norms.png", "loss.png"]
    assert set(metrics) >= {"test/loss", "test/accuracy", "test/macro_f1", "train/loss", "val/loss", "val/accuracy",
                            "train/epochs"}
    # the DVC metrics file holds scalars only; per-class scores and the confusion matrix are the report
    test = json.loads((tmp_path / p["test_metrics"]).read_text())
    assert test == {k: metrics[k] for k in ("test/loss", "test/accuracy", "test/macro_f1")}
    report = json.loads((tmp_path / p["report"]).read_text())
    assert {"test/f1/0", "test/recall/1", "test/precision/0"} <= set(report) and report["classes"] == ["0", "1"]
    assert np.sum(report["confusion_matrix"]) == 24 and report["test_is_train"] is False
    history = (tmp_path / p["history"]).read_text().splitlines()
    assert history[0].startswith("epoch,step,train/loss,val/loss,val/accuracy,lr,grad_norm/W1,grad_norm/W2")
    assert len(history) == 1 + smoke["training"]["epochs"]


def test_stages_one_by_one_equal_run_all(smoke, tmp_path):
    run_all(smoke, tmp_path / "a")
    prepare(smoke, tmp_path / "b")
    train(smoke, tmp_path / "b")
    evaluate(smoke, tmp_path / "b")
    for key in ("model", "train_metrics", "test_metrics", "history", "predictions"):
        assert (tmp_path / "a" / smoke["paths"][key]).read_bytes() == (tmp_path / "b" / smoke["paths"][key]).read_bytes(), key


def test_same_config_and_seed_give_identical_files(smoke, tmp_path):
    run_all(smoke, tmp_path / "1")
    run_all(smoke, tmp_path / "2")
    for f in sorted((tmp_path / "1").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "2" / f.relative_to(tmp_path / "1")).read_bytes(), f


def test_xor_preset_learns_xor(tmp_path):
    cfg = untracked("experiment=xor")
    metrics = run_all(cfg, tmp_path)
    assert metrics["test/accuracy"] == 1.0 and metrics["test/is_train"]
    net = load(tmp_path / cfg["paths"]["model"])
    assert net.predict(np.array([[0, 0], [0, 1], [1, 0], [1, 1]])).tolist() == [0, 1, 1, 0]


def test_validation_and_test_accuracy_mean_the_same(tmp_path):
    """Iris with binary cross-entropy: three sigmoid outputs, one rule for labels everywhere."""
    from mlplab import data
    from mlplab.network import targets

    cfg = untracked("data=iris", "cost=binary_cross_entropy", "data.val_size=0.2", "data.test_size=0.2",
                    "training.epochs=5")
    metrics = run_all(cfg, tmp_path)
    net = load(tmp_path / cfg["paths"]["model"])
    splits, schema = data.read(tmp_path / cfg["paths"]["prepared"])
    assert net.layer_sizes[-1] == 3
    for name, key in (("val", "val/accuracy"), ("test", "test/accuracy")):
        split = splits[name]
        assert metrics[key] == pytest.approx(net.score(split.X, targets(split, schema["task"], net))[1], abs=1e-12), name
        assert metrics[key] == pytest.approx(np.mean(net.predict(split.X) == split.y), abs=1e-12), name


def test_regression_matches_least_squares(tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from mlplab.data import prepare as split

    cfg = untracked("data=diabetes", "cost=squared_error", "architecture=linear", "optimiser=sgd",
                 "optimiser.lr=0.01", "training.epochs=100")
    metrics = run_all(cfg, tmp_path)
    assert {k for k in metrics if k.startswith("test/")} == {"test/loss", "test/mse", "test/mae", "test/r2", "test/is_train"}
    splits, schema = split(cfg["data"], cfg["seed"])
    ts = schema["preprocessing"]["target"]
    ols = LinearRegression().fit(splits["train"].X, splits["train"].y)
    r2_ols = r2_score(splits["test"].y * ts["scale"] + ts["mean"], ols.predict(splits["test"].X) * ts["scale"] + ts["mean"])
    assert metrics["test/r2"] == pytest.approx(r2_ols, abs=0.02)  # a linear net with squared error is least squares
    assert not (tmp_path / cfg["paths"]["figures"] / "confusion_matrix.png").exists()


def test_evaluate_without_a_model_says_so(smoke, tmp_path):
    from mlplab.core import ModelFileError

    prepare(smoke, tmp_path)
    with pytest.raises(ModelFileError, match="no such model file"):
        evaluate(smoke, tmp_path)
