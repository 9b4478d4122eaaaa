import numpy as np
import pandas as pd
import pytest

from mlplab.data import DATASETS, DataError, prepare, read, write

BASE = {"test_size": 0.2, "val_size": 0.2, "standardise": True}
BUILTIN = sorted(set(DATASETS) - {"csv", "parquet"})


def test_registry():
    assert set(BUILTIN) == {"xor", "moons", "circles", "spirals", "blobs", "digits", "iris", "wine",
                            "breast_cancer", "diabetes"}


@pytest.mark.parametrize("name", BUILTIN)
def test_split_is_seeded_stratified_and_standardised_on_train_only(name):
    splits, schema = prepare({"name": name, **BASE}, seed=3)
    again, _ = prepare({"name": name, **BASE}, seed=3)
    assert all(splits[s].X.tobytes() == again[s].X.tobytes() for s in ("train", "val", "test"))
    n = sum(schema["sizes"][s] for s in ("train", "val", "test"))
    assert schema["sizes"]["test"] == round(0.2 * n)
    train = splits["train"].X
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-9)
    # the test split was scaled with the training statistics, so it is not exactly standard
    assert not np.allclose(splits["test"].X.mean(axis=0), 0, atol=1e-9)
    if schema["task"] == "classification":
        for s in ("train", "test"):
            freq = np.bincount(splits[s].y) / len(splits[s].y)
            full = np.bincount(np.concatenate([splits[k].y for k in ("train", "val", "test")])) / n
            np.testing.assert_allclose(freq, full, atol=0.05)
    else:
        assert schema["preprocessing"]["target"]["scale"] != 1 and abs(splits["train"].y.mean()) < 1e-9


def test_xor_truth_table_without_split():
    splits, schema = prepare({"name": "xor", "n_samples": 4, "noise": 0.0, "test_size": 0.0, "val_size": 0.0,
                              "standardise": False}, seed=0)
    assert splits["train"].X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert splits["train"].y.tolist() == [0, 1, 1, 0]
    assert schema["test_is_train"] and "val" not in splits and splits["test"] is splits["train"]


def _table(tmp_path, fmt, with_missing=False):
    frame = pd.DataFrame({
        "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0] * 2,
        "colour": ["red", "green", "blue", "red", "green"] * 4,
        "label": ["yes", "no"] * 10,
    })
    if with_missing:
        frame.loc[3, "size"] = np.nan
    path = tmp_path / f"table.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_own_table_one_hot_encodes_categorical_features(tmp_path, fmt):
    path = _table(tmp_path, fmt)
    splits, schema = prepare({"name": fmt, "path": str(path), "target": "label", "task": "classification",
                              "missing": "error", **BASE}, seed=0)
    assert schema["feature_names"] == ["size", "colour_blue", "colour_green", "colour_red"]
    assert schema["classes"] == ["no", "yes"]
    assert sum(schema["sizes"][s] for s in ("train", "val", "test")) == 20


def test_missing_values_are_refused_or_imputed(tmp_path):
    path = _table(tmp_path, "csv", with_missing=True)
    cfg = {"name": "csv", "path": str(path), "target": "label", "task": "classification", **BASE}
    with pytest.raises(DataError, match=r"missing values in size \(1\); set data.missing to one of mean"):
        prepare({**cfg, "missing": "error"}, seed=0)
    splits, schema = prepare({**cfg, "missing": "median"}, seed=0)
    pre = schema["preprocessing"]
    assert pre["missing"] == "median" and pre["fill"]["size"] == 7.0  # the median of the (seeded) training split
    assert all(np.isfinite(s.X).all() for s in splits.values())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"path": "nowhere.csv"}, "data.path: no such file 'nowhere.csv'"),
        ({"target": "colour_name"}, "data.target: no column 'colour_name' in .*; columns: size, colour, label"),
        ({"task": "regression"}, "data.target: column 'label' in .* holds text \\(e.g. 'yes'\\), but data.task is "
                                 "regression: a regression target must be numbers"),
        ({"test_size": 0.01}, "data.test_size: 0.01 of 20 rows is no rows; use at least 0.05, or 0 for no such split"),
        ({"val_size": 0.02}, "data.val_size: 0.02 of 20 rows is no rows"),
    ],
)
def test_bad_table_settings(tmp_path, change, message):
    cfg = {"name": "csv", "path": str(_table(tmp_path, "csv")), "target": "label", "task": "classification",
           "missing": "error", **BASE, **change}
    with pytest.raises(DataError, match=message):
        prepare(cfg, seed=0)


def test_write_and_read_round_trip(tmp_path):
    splits, schema = prepare({"name": "iris", **BASE}, seed=0)
    write(splits, schema, tmp_path)
    back, schema2 = read(tmp_path)
    assert schema2 == schema
    assert all(back[s].X.tobytes() == splits[s].X.tobytes() for s in splits)
    with pytest.raises(DataError, match="run the prepare stage first"):
        read(tmp_path / "empty")


def test_missing_categories_are_refused_or_become_a_category(tmp_path):
    frame = pd.DataFrame({"size": np.arange(20.0), "colour": ["red", None, "blue", "red", "green"] * 4,
                          "label": ["yes", "no"] * 10})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    cfg = {"name": "csv", "path": str(path), "target": "label", "task": "classification", **BASE}
    with pytest.raises(DataError, match=r"missing values in the categorical columns colour \(4\); set data.missing"):
        prepare({**cfg, "missing": "error"}, seed=0)
    splits, schema = prepare({**cfg, "missing": "most_frequent"}, seed=0)
    assert schema["feature_names"] == ["size", "colour_blue", "colour_green", "colour_red", "colour_nan"]
    assert all((s.X[:, 1:].sum(axis=1) != 0).all() for s in splits.values())  # no all-zero one-hot rows


def test_data_validation_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys\nfrom mlplab.config import compose, validate\nvalidate(compose(['data=csv', 'data.path=x',"
            " 'data.target=y']))\nheavy = [m for m in ('pandas', 'sklearn', 'mlflow', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_a_float_target_is_not_taken_for_classes(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "prices.csv"
    pd.DataFrame({"x": rng.normal(size=60), "price": rng.uniform(1, 100, size=60)}).to_csv(path, index=False)
    cfg = {"name": "csv", "path": str(path), "target": "price", "missing": "error", **BASE}
    with pytest.raises(DataError, match="the target holds 60 distinct fractional numbers, not classes: for a "
                                        "regression set data.task=regression"):
        prepare({**cfg, "task": "classification"}, seed=0)
    splits, schema = prepare({**cfg, "task": "regression"}, seed=0)
    assert schema["task"] == "regression" and schema["preprocessing"]["target"]["name"] == "price"
