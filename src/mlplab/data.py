"""Datasets and the ``prepare`` stage: load, encode, split, standardise, write.

A dataset loader takes the seed (positional) and its own keyword parameters — which are exactly
the keys its ``conf/data/<name>.yaml`` may set — and returns a :class:`Table`. Everything after
loading is shared: categorical features one-hot encoded, missing values refused or imputed,
a seeded stratified train/validation/test split, and standardisation fitted on the training
split only.

Prepared data is written as one ``.npz`` per split (``X``, ``y``; no pickle) plus
``schema.json`` (feature names, classes, scaler statistics, sizes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as skd
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from mlplab.core.serialisation import savez

SPLITS = ("train", "val", "test")
TASKS = ("classification", "regression")
MISSING = ("error", "mean", "median", "most_frequent")


class DataError(ValueError):
    """The data cannot be used as configured; the message names the file or column."""


@dataclass
class Table:
    features: pd.DataFrame
    target: pd.Series
    task: str


@dataclass
class Split:
    """One split: ``X`` of shape ``(n_samples, n_features)``, ``y`` of shape ``(n_samples,)``
    (class indices for classification, standardised values for regression)."""

    X: np.ndarray
    y: np.ndarray


DATASETS: dict[str, Callable[..., Table]] = {}


def dataset(fn):
    DATASETS[fn.__name__] = fn
    return fn


def _frame(X: np.ndarray, y, task="classification", names=None) -> Table:
    names = names or [f"x{i}" for i in range(X.shape[1])]
    return Table(pd.DataFrame(X, columns=names), pd.Series(y, name="target"), task)


@dataset
def xor(seed: int, /, n_samples: int = 200, noise: float = 0.1) -> Table:
    """The XOR truth table repeated to ``n_samples`` points, with Gaussian noise of std ``noise``."""
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    X = corners[np.arange(n_samples) % 4]
    y = np.array([0, 1, 1, 0])[np.arange(n_samples) % 4]
    if noise:
        X = X + np.random.default_rng(seed).normal(scale=noise, size=X.shape)
    return _frame(X, y)


@dataset
def moons(seed: int, /, n_samples: int = 500, noise: float = 0.2) -> Table:
    return _frame(*skd.make_moons(n_samples=n_samples, noise=noise, random_state=seed))


@dataset
def circles(seed: int, /, n_samples: int = 500, noise: float = 0.1, factor: float = 0.5) -> Table:
    return _frame(*skd.make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed))


@dataset
def spirals(seed: int, /, n_samples: int = 600, n_classes: int = 3, noise: float = 0.2) -> Table:
    """``n_classes`` interleaved spiral arms (one class each), radius 0 → 1 over one turn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    r = rng.uniform(0.0, 1.0, n_samples)
    theta = 2 * np.pi * (r + y / n_classes) + rng.normal(scale=noise, size=n_samples)
    return _frame(np.column_stack([r * np.cos(theta), r * np.sin(theta)]), y)


@dataset
def blobs(seed: int, /, n_samples: int = 500, n_classes: int = 3, n_features: int = 2, cluster_std: float = 1.0) -> Table:
    X, y = skd.make_blobs(n_samples=n_samples, centers=n_classes, n_features=n_features,
                          cluster_std=cluster_std, random_state=seed)
    return _frame(X, y)


def _bundled(name: str, task: str):
    loader = getattr(skd, f"load_{name}")

    def load(seed: int, /) -> Table:
        bunch = loader(as_frame=True)
        target = bunch.target
        if task == "classification" and getattr(bunch, "target_names", None) is not None:
            target = pd.Series(np.asarray(bunch.target_names)[target.to_numpy()], name="target")
        return Table(bunch.data, target, task)

    load.__name__ = name
    load.__doc__ = f"scikit-learn's bundled {name} data ({task})."
    return dataset(load)


for _name, _task in [("digits", "classification"), ("iris", "classification"), ("wine", "classification"),
                     ("breast_cancer", "classification"), ("diabetes", "regression")]:
    _bundled(_name, _task)


def _read_table(reader, seed, path, target, task, missing) -> Table:
    if task not in TASKS:
        raise DataError(f"data.task: {task!r} is not one of {', '.join(TASKS)}")
    if missing not in MISSING:
        raise DataError(f"data.missing: {missing!r} is not one of {', '.join(MISSING)}")
    try:
        frame = reader(path)
    except FileNotFoundError:
        raise DataError(f"data.path: no such file {path!r}") from None
    except Exception as exc:  # pandas raises many kinds for unreadable files
        raise DataError(f"data.path: cannot read {path!r} ({type(exc).__name__}: {exc})") from None
    if target not in frame.columns:
        raise DataError(f"data.target: no column {target!r} in {path}; columns: {', '.join(map(str, frame.columns))}")
    y = frame.pop(target)
    if y.isna().any():
        raise DataError(f"data.target: column {target!r} in {path} has {int(y.isna().sum())} missing values")
    return Table(frame, y, task)


@dataset
def csv(seed: int, /, path: str, target: str, task: str = "classification", missing: str = "error") -> Table:
    """Your own CSV file: ``target`` names the label column."""
    return _read_table(pd.read_csv, seed, path, target, task, missing)


@dataset
def parquet(seed: int, /, path: str, target: str, task: str = "classification", missing: str = "error") -> Table:
    """Your own Parquet file: ``target`` names the label column."""
    return _read_table(pd.read_parquet, seed, path, target, task, missing)


def load_table(cfg: dict, seed: int) -> Table:
    """Call the configured loader with its own keys from the validated ``data`` section."""
    loader = DATASETS[cfg["name"]]
    own = {k: v for k, v in cfg.items() if k not in ("name", "test_size", "val_size", "standardise")}
    return loader(seed, **own)


def encode_features(table: Table, where: str) -> pd.DataFrame:
    """One-hot encode non-numeric columns; booleans become 0/1."""
    frame = table.features
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    if categorical:
        frame = pd.get_dummies(frame, columns=categorical, dummy_na=False, dtype=float)
    if frame.shape[1] == 0:
        raise DataError(f"{where}: no feature columns left besides the target")
    return frame.astype(float)


def prepare(cfg: dict, seed: int) -> tuple[dict[str, Split], dict]:
    """Load and split the configured data; return the splits and their schema.

    ``test_size`` and ``val_size`` are fractions of the whole; a size of 0 means no such split,
    in which case the test split *is* the training split (``schema["test_is_train"]``).
    """
    table = load_table(cfg, seed)
    where = f"data.path ({cfg['path']})" if "path" in cfg else f"data {cfg['name']!r}"
    features = encode_features(table, where)
    missing = cfg.get("missing", "error")
    n_missing = features.isna().sum()
    if n_missing.any() and missing == "error":
        cols = ", ".join(f"{c} ({n})" for c, n in n_missing[n_missing > 0].items())
        raise DataError(f"{where}: missing values in {cols}; set data.missing to one of mean, median, most_frequent to impute them")
    X = features.to_numpy(dtype=float)
    if table.task == "classification":
        classes, y = np.unique(table.target.astype(str) if table.target.dtype == object else table.target, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{where}: the target has one class only ({classes[0]!r})")
        stratify = y
    else:
        classes, y, stratify = None, table.target.to_numpy(dtype=float), None
    idx = np.arange(len(X))
    n_test = round(cfg["test_size"] * len(X))
    n_val = round(cfg["val_size"] * len(X))
    splits_idx = {}
    rest = idx
    try:
        if n_test:
            rest, splits_idx["test"] = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
        if n_val:
            strat = None if stratify is None else stratify[rest]
            rest, splits_idx["val"] = train_test_split(rest, test_size=n_val, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(f"data.test_size/val_size: cannot split {len(X)} samples that way ({exc})") from None
    splits_idx["train"] = rest
    train_idx = splits_idx["train"]
    schema: dict = {
        "name": cfg["name"], "task": table.task, "feature_names": list(map(str, features.columns)),
        "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes],
        "test_is_train": "test" not in splits_idx, "imputer": None, "scaler": None, "target_scaler": None,
    }
    if n_missing.any():
        imputer = SimpleImputer(strategy=missing).fit(X[train_idx])
        X = imputer.transform(X)
        schema["imputer"] = {"strategy": missing, "statistics": imputer.statistics_.tolist()}
    if cfg["standardise"]:
        scaler = StandardScaler().fit(X[train_idx])
        X = scaler.transform(X)
        schema["scaler"] = {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
        if table.task == "regression":
            mean, scale = float(y[train_idx].mean()), float(y[train_idx].std() or 1.0)
            y = (y - mean) / scale
            schema["target_scaler"] = {"mean": mean, "scale": scale}
    splits = {name: Split(X[i], y[i]) for name, i in splits_idx.items()}
    if "test" not in splits:
        splits["test"] = splits["train"]
    schema["sizes"] = {name: len(s.X) for name, s in splits.items()}
    return splits, schema


def write(splits: dict[str, Split], schema: dict, out_dir: str | Path) -> None:
    """Write ``<split>.npz`` for each split present and ``schema.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        target = out / f"{name}.npz"
        if name in splits and not (name == "test" and schema["test_is_train"]):
            savez(target, X=splits[name].X, y=splits[name].y)
        elif target.exists():
            target.unlink()
    (out / "schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


def read(out_dir: str | Path) -> tuple[dict[str, Split], dict]:
    """Read what :func:`write` wrote; a missing or unreadable file raises :class:`DataError`."""
    out = Path(out_dir)
    try:
        schema = json.loads((out / "schema.json").read_text())
    except FileNotFoundError:
        raise DataError(f"{out / 'schema.json'}: not found; run the prepare stage first (dvc repro prepare)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{out / 'schema.json'}: not valid JSON ({exc})") from None
    splits = {}
    for name in SPLITS:
        path = out / f"{name}.npz"
        if not path.exists():
            continue
        try:
            with np.load(path, allow_pickle=False) as f:
                splits[name] = Split(f["X"], f["y"])
        except Exception as exc:
            raise DataError(f"{path}: unreadable prepared split ({exc})") from None
    if "train" not in splits:
        raise DataError(f"{out / 'train.npz'}: not found; run the prepare stage first (dvc repro prepare)")
    if schema.get("test_is_train"):
        splits["test"] = splits["train"]
    return splits, schema
