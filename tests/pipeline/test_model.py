"""The model: preprocessing fitted on the training split + network, from raw rows to labels.

What it predicts from raw rows must be exactly what the evaluate stage predicted, for bundled data,
for a CSV with a categorical column and missing values, and for a regression; and bad rows get
one line naming the column.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlplab.core import ModelFileError, load, save
from mlplab.data import DataError, read_rows
from mlplab.model import InputError, Model
from mlplab.run import execute
from tests.conftest import REPO, untracked


def _csv(tmp_path, task="classification", gaps=True):
    """A table with a number column and a text column (both with gaps), and a text or number target."""
    rng = np.random.default_rng(0)
    n = 120
    size = rng.normal(10, 3, n).round(2)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    if gaps:
        size[::7] = np.nan
        colour[::11] = None
    signal = np.nan_to_num(size, nan=10) + (colour == "red") * 4
    target = np.where(signal > 11, "big", "small") if task == "classification" else signal * 2 + rng.normal(0, .1, n)
    path = tmp_path / "table.csv"
    pd.DataFrame({"size": size, "colour": colour, "label": target}).to_csv(path, index=False)
    return path


def _trained(tmp_path, *overrides):
    cfg = untracked(*overrides, "training.epochs=5", "training.stats_every=null")
    execute(cfg, tmp_path, REPO)
    p = cfg["paths"]
    rows = read_rows(tmp_path / p["prepared"] / "test_rows.csv")
    return Model.load(tmp_path / p["model"]), rows, pd.read_csv(tmp_path / p["predictions"])


CASES = {
    "digits": ("data=digits",),
    "csv-categorical-missing": ("data=csv", "data.target=label", "data.missing=median"),
    "csv-regression": ("data=csv", "data.target=label", "data.task=regression", "data.missing=mean"),
}


@pytest.mark.parametrize("case", CASES)
def test_raw_rows_predict_exactly_what_evaluate_predicted(tmp_path, case):
    overrides = CASES[case]
    if "data=csv" in overrides:
        task = "regression" if "data.task=regression" in overrides else "classification"
        overrides = (*overrides, f"data.path={_csv(tmp_path, task)}")
    model, rows, evaluated = _trained(tmp_path / "run", *overrides)
    target = model.preprocessing.target["name"]
    predicted = model.predict(rows.drop(columns=[target]))
    if model.task == "classification":
        assert predicted.tolist() == evaluated["predicted"].tolist()
        assert set(predicted) <= set(model.classes)
    else:
        assert np.array_equal(predicted, evaluated["predicted"].to_numpy())  # bit for bit, through the CSV
    if case == "csv-categorical-missing":
        assert model.classes == ["big", "small"] and predicted.dtype == object  # strings stay strings
        assert model.preprocessing.feature_names == ["size", "colour_blue", "colour_green", "colour_red", "colour_nan"]
    if model.task == "classification":  # probabilities: one column per label, rows summing to one (softmax)
        proba = model.predict_proba(rows)
        assert list(proba.columns) == [str(c) for c in model.classes]
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
        assert (proba.columns[proba.to_numpy().argmax(axis=1)] == pd.Series(predicted).astype(str)).all()


def test_the_model_file_round_trips(tmp_path):
    model, rows, _ = _trained(tmp_path / "run", "experiment=smoke")
    again = Model.load(model.save(tmp_path / "again.npz"))
    assert again.preprocessing == model.preprocessing
    assert np.array_equal(again.outputs(rows), model.outputs(rows))
    with np.load(tmp_path / "again.npz", allow_pickle=False) as f:  # no pickle anywhere
        assert "preprocessing" in f.files
    assert np.array_equal(load(tmp_path / "again.npz").forward(model.inputs(rows)), model.outputs(rows))  # the core reads it too
    save(model.network, tmp_path / "bare.npz")
    with pytest.raises(ModelFileError, match="a network without its preprocessing"):
        Model.load(tmp_path / "bare.npz")


def test_preprocessing_is_fitted_on_the_training_split_only(tmp_path):
    model, rows, _ = _trained(tmp_path / "run", "data=csv", f"data.path={_csv(tmp_path)}", "data.target=label",
                              "data.missing=median")
    pre = model.preprocessing
    table = pd.read_csv(_csv(tmp_path))
    assert pre.fill["size"] != table["size"].median()  # the training split's median, not the whole table's
    X = model.inputs(rows)
    assert np.isfinite(X).all() and X.shape == (len(rows), len(pre.feature_names))


# -- bad rows -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def categorical(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("categorical")
    model, rows, _ = _trained(tmp / "run", "data=csv", f"data.path={_csv(tmp, gaps=False)}", "data.target=label",
                               "data.missing=error")
    return model, rows.drop(columns=["label"])


def test_a_missing_column_is_named(categorical):
    model, rows = categorical
    with pytest.raises(InputError, match="missing column 'colour'; the model reads size, colour"):
        model.predict(rows.drop(columns=["colour"]))


def test_an_extra_column_is_ignored_with_a_note(categorical):
    model, rows = categorical
    notes = []
    assert model.predict(rows.assign(extra=1), notes).tolist() == model.predict(rows).tolist()
    assert notes == ["ignored column the model does not read: extra"]


def test_text_in_a_number_column_is_named(categorical):
    model, rows = categorical
    bad = rows.astype({"size": object})
    bad.iloc[2, bad.columns.get_loc("size")] = "ten"
    with pytest.raises(InputError, match="column 'size' holds numbers, got 'ten'"):
        model.predict(bad)


def test_an_unknown_category_encodes_as_none_with_a_note(categorical):
    model, rows = categorical
    notes = []
    odd = rows.assign(colour=["purple"] * len(rows))
    X = model.inputs(odd, notes)
    names = model.preprocessing.feature_names
    mean, scale = np.array(model.preprocessing.mean), np.array(model.preprocessing.scale)
    onehot = [i for i, n in enumerate(names) if n.startswith("colour_")]
    np.testing.assert_allclose(X[:, onehot] * scale[onehot] + mean[onehot], 0, atol=1e-12)  # all zeros before scaling
    assert notes == [f"column 'colour': {len(rows)} rows with a category the training split never saw ('purple'), "
                     "encoded as none of its categories"]


def test_gaps_are_refused_when_training_refused_them(categorical):
    model, rows = categorical
    with pytest.raises(InputError, match="column 'size': 1 missing values, and the model was trained with data.missing=error"):
        model.predict(rows.assign(size=[np.nan] + [1.0] * (len(rows) - 1)))


def test_empty_rows_are_refused(categorical, tmp_path):
    model, rows = categorical
    with pytest.raises(InputError, match="no rows to predict"):
        model.predict(rows.iloc[:0])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: empty file, no rows"):
        read_rows(tmp_path / "empty.csv")


# -- from the shell ---------------------------------------------------------------------------------
def _predict(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "mlplab", "predict", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_predict_from_the_shell_writes_labels_and_probabilities(categorical, tmp_path):
    model, rows = categorical
    model_file = model.save(tmp_path / "model.npz")
    rows.assign(note="x").to_parquet(tmp_path / "rows.parquet")
    res = _predict(model_file, tmp_path / "rows.parquet", "-o", tmp_path / "out.csv", "--probabilities")
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["prediction", "big", "small"] and out["prediction"].tolist() == model.predict(rows).tolist()
    assert res.stderr.splitlines() == ["mlplab predict: note: ignored column the model does not read: note",
                                       f"mlplab predict: {len(rows)} predictions in {tmp_path / 'out.csv'}"]


@pytest.mark.parametrize("problem, message", [
    ("missing column", "missing column 'colour'"),
    ("wrong type", "column 'size' holds numbers, got 'ten'"),
    ("empty file", "empty file, no rows"),
    ("no such file", "no such file"),
    ("not a model", "not a readable mlplab model file"),
])
def test_bad_input_from_the_shell_is_one_line_and_status_2(categorical, tmp_path, problem, message):
    model, rows = categorical
    model_file, data = model.save(tmp_path / "model.npz"), tmp_path / "rows.csv"
    {"missing column": lambda: rows.drop(columns=["colour"]).to_csv(data, index=False),
     "wrong type": lambda: rows.astype({"size": object}).assign(size="ten").to_csv(data, index=False),
     "empty file": lambda: data.write_text(""),
     "no such file": lambda: None,
     "not a model": lambda: (rows.to_csv(data, index=False), model_file.write_text("nonsense"))}[problem]()
    res = _predict(model_file, data)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("mlplab predict: error: ") and message in res.stderr


def test_help_lists_what_mlplab_does():
    res = subprocess.run([sys.executable, "-m", "mlplab", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "predict" in res.stdout


def test_an_mlflow_uri_is_looked_up_in_the_project_of_the_current_folder(tmp_path, monkeypatch):
    """As for training: a clone sharing another clone's environment reads its own mlflow.db."""
    from mlplab.__main__ import project

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/config.yaml").write_text("")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    assert project() == tmp_path.resolve()
