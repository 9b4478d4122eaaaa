"""Datasets and the ``prepare`` stage: load, encode, split, standardise, write.

A dataset loader takes the seed (positional) and its own keyword parameters — which are exactly
the keys its ``conf/data/<name>.yaml`` may set — and returns a :class:`Table`. Everything after
loading is shared: categorical features one-hot encoded, missing values refused or imputed,
a seeded stratified train/validation/test split, and standardisation fitted on the training
split only.

Prepared data is written as one ``.npz`` per split (``X``, ``y``; no pickle), the test split's
raw rows as ``test_rows.csv`` (what the evaluate stage predicts from, as a served model would),
and ``schema.json`` (feature names, classes, sizes and the fitted preprocessing).

pandas and scikit-learn are imported where data is loaded, not when this module is: the config
validation reads the registry and its constraints, and must answer in well under a second.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlplab.core.constraints import Boolean, Constraint, Interval, Options, Text
from mlplab.core.serialisation import savez

SPLITS = ("train", "val", "test")
TEST_ROWS = "test_rows.csv"
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
    #: The raw rows, target column included (the test split only: what the evaluate stage predicts from).
    rows: pd.DataFrame | None = None


DATASETS: dict[str, Callable[..., Table]] = {}
#: The keys every ``conf/data/<name>.yaml`` has besides the loader's own, with their bounds.
COMMON = {
    "name": Options(DATASETS),
    "test_size": Interval(float, 0, 1, closed="left"),
    "val_size": Interval(float, 0, 1, closed="left"),
    "standardise": Boolean(),
}
_BY_DEFAULT = {bool: Boolean(), int: Interval(int), float: Interval(float), str: Text()}


def dataset(fn=None, /, loads: str = "classification", **constraints: Constraint):
    """Register a loader under its name; ``loads`` is its task (a loader with a ``task`` parameter,
    like ``csv``, is told instead); ``constraints`` bound its keyword parameters (those not named
    are checked against the type of their default)."""

    def register(fn):
        fn.task = loads
        fn.constraints = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
                required = p.default is inspect.Parameter.empty
                fn.constraints[p.name] = constraints.get(p.name) or (Text() if required else _BY_DEFAULT[type(p.default)])
        DATASETS[fn.__name__] = fn
        return fn

    return register(fn) if fn is not None else register


def _frame(X: np.ndarray, y, task="classification", names=None) -> Table:
    import pandas as pd

    names = names or [f"x{i}" for i in range(X.shape[1])]
    return Table(pd.DataFrame(X, columns=names), pd.Series(y, name="target"), task)


SAMPLES, NOISE = Interval(int, 1), Interval(float, 0)


@dataset(n_samples=SAMPLES, noise=NOISE)
def xor(seed: int, /, n_samples: int = 200, noise: float = 0.1) -> Table:
    """The XOR truth table repeated to ``n_samples`` points, with Gaussian noise of std ``noise``."""
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    X = corners[np.arange(n_samples) % 4]
    y = np.array([0, 1, 1, 0])[np.arange(n_samples) % 4]
    if noise:
        X = X + np.random.default_rng(seed).normal(scale=noise, size=X.shape)
    return _frame(X, y)


@dataset(n_samples=Interval(int, 2), noise=NOISE)
def moons(seed: int, /, n_samples: int = 500, noise: float = 0.2) -> Table:
    from sklearn import datasets as skd

    return _frame(*skd.make_moons(n_samples=n_samples, noise=noise, random_state=seed))


@dataset(n_samples=Interval(int, 2), noise=NOISE, factor=Interval(float, 0, 1, closed="left"))
def circles(seed: int, /, n_samples: int = 500, noise: float = 0.1, factor: float = 0.5) -> Table:
    from sklearn import datasets as skd

    return _frame(*skd.make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed))


@dataset(n_samples=SAMPLES, n_classes=Interval(int, 2), noise=NOISE)
def spirals(seed: int, /, n_samples: int = 600, n_classes: int = 3, noise: float = 0.2) -> Table:
    """``n_classes`` interleaved spiral arms (one class each), radius 0 → 1 over one turn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    r = rng.uniform(0.0, 1.0, n_samples)
    theta = 2 * np.pi * (r + y / n_classes) + rng.normal(scale=noise, size=n_samples)
    return _frame(np.column_stack([r * np.cos(theta), r * np.sin(theta)]), y)


@dataset(n_samples=SAMPLES, n_classes=Interval(int, 2), n_features=Interval(int, 1),
         cluster_std=Interval(float, 0, closed="neither"))
def blobs(seed: int, /, n_samples: int = 500, n_classes: int = 3, n_features: int = 2, cluster_std: float = 1.0) -> Table:
    from sklearn import datasets as skd

    X, y = skd.make_blobs(n_samples=n_samples, centers=n_classes, n_features=n_features,
                          cluster_std=cluster_std, random_state=seed)
    return _frame(X, y)


def _bundled(name: str, task: str):
    def load(seed: int, /) -> Table:
        import pandas as pd
        from sklearn import datasets as skd

        bunch = getattr(skd, f"load_{name}")(as_frame=True)
        target = bunch.target
        if task == "classification" and getattr(bunch, "target_names", None) is not None:
            target = pd.Series(np.asarray(bunch.target_names)[target.to_numpy()], name="target")
        return Table(bunch.data, target, task)

    load.__name__ = name
    load.__doc__ = f"scikit-learn's bundled {name} data ({task})."
    return dataset(load, loads=task)


for _name, _task in [("digits", "classification"), ("iris", "classification"), ("wine", "classification"),
                     ("breast_cancer", "classification"), ("diabetes", "regression")]:
    _bundled(_name, _task)


def _read_table(reader: str, seed, path, target, task, missing) -> Table:
    import pandas as pd

    try:
        frame = getattr(pd, reader)(path)
    except FileNotFoundError:
        raise DataError(f"data.path: no such file {path!r}") from None
    except Exception as exc:  # pandas raises many kinds for unreadable files
        raise DataError(f"data.path: cannot read {path!r} ({type(exc).__name__}: {exc})") from None
    if target not in frame.columns:
        raise DataError(f"data.target: no column {target!r} in {path}; columns: {', '.join(map(str, frame.columns))}")
    y = frame.pop(target)
    if y.isna().any():
        raise DataError(f"data.target: column {target!r} in {path} has {int(y.isna().sum())} missing values")
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        example = y[pd.to_numeric(y, errors="coerce").isna()].iloc[0]
        raise DataError(f"data.target: column {target!r} in {path} holds text (e.g. {example!r}), but data.task is "
                        "regression: a regression target must be numbers (or set data.task=classification)")
    return Table(frame, y, task)


_OWN_TABLE = {"task": Options(TASKS), "missing": Options(MISSING)}


@dataset(**_OWN_TABLE)
def csv(seed: int, /, path: str, target: str, task: str = "classification", missing: str = "error") -> Table:
    """Your own CSV file: ``target`` names the label column."""
    return _read_table("read_csv", seed, path, target, task, missing)


@dataset(**_OWN_TABLE)
def parquet(seed: int, /, path: str, target: str, task: str = "classification", missing: str = "error") -> Table:
    """Your own Parquet file: ``target`` names the label column."""
    return _read_table("read_parquet", seed, path, target, task, missing)


def task_of(cfg: dict) -> str:
    """``classification`` or ``regression``: the ``data.task`` of your own table, else the loader's."""
    return cfg.get("task") or DATASETS[cfg["name"]].task


#: A float target with more distinct values than this is not taken for classes.
MAX_FLOAT_CLASSES = 20


def load_table(cfg: dict, seed: int) -> Table:
    """Call the configured loader with its own keys from the validated ``data`` section."""
    loader = DATASETS[cfg["name"]]
    own = {k: v for k, v in cfg.items() if k not in COMMON}
    return loader(seed, **own)


def check_categories(table: Table, where: str, missing: str) -> None:
    """Missing values in a text or boolean column are refused (``data.missing: error``) or become
    a category of their own (any imputation)."""
    from mlplab.preprocessing import is_category

    frame = table.features
    gaps = {c: int(frame[c].isna().sum()) for c in frame.columns if is_category(frame[c]) and frame[c].isna().any()}
    if gaps and missing == "error":
        cols = ", ".join(f"{c} ({n})" for c, n in gaps.items())
        raise DataError(f"{where}: missing values in the categorical columns {cols}; set data.missing to one of "
                        "mean, median, most_frequent to give them a category of their own")
    if frame.shape[1] == 0:
        raise DataError(f"{where}: no feature columns left besides the target")


def prepare(cfg: dict, seed: int) -> tuple[dict[str, Split], dict]:
    """Load and split the configured data, fit the preprocessing on the training split, apply it
    to every split; return the splits and their schema (``schema["preprocessing"]``: the fitted
    :class:`~mlplab.preprocessing.Preprocessing` as JSON).

    ``test_size`` and ``val_size`` are fractions of the whole; a size of 0 means no such split,
    in which case the test split *is* the training split (``schema["test_is_train"]``). The test
    split keeps its raw rows (``Split.rows``): the evaluate stage predicts from them, as a served
    model would.
    """
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from mlplab.preprocessing import Preprocessing

    table = load_table(cfg, seed)
    where = f"data.path ({cfg['path']})" if "path" in cfg else f"data {cfg['name']!r}"
    missing = cfg.get("missing", "error")
    check_categories(table, where, missing)
    n_missing = table.features.isna().sum()
    if n_missing.any() and missing == "error":
        cols = ", ".join(f"{c} ({n})" for c, n in n_missing[n_missing > 0].items())
        raise DataError(f"{where}: missing values in {cols}; set data.missing to one of mean, median, most_frequent to impute them")
    n_rows = len(table.features)
    classes = stratify = None
    if table.task == "classification":
        target = table.target
        if pd.api.types.is_float_dtype(target) and target.nunique() > MAX_FLOAT_CLASSES and (target % 1 != 0).any():
            raise DataError(f"{where}: the target holds {target.nunique()} distinct fractional numbers, not classes: "
                            "for a regression set data.task=regression")
        classes, stratify = np.unique(target.astype(str) if target.dtype == object else target, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{where}: the target has one class only ({classes[0]!r})")
    idx = np.arange(n_rows)
    n_test, n_val = (split_size(cfg, key, n_rows) for key in ("test_size", "val_size"))
    if n_rows - n_test - n_val < 1:
        raise DataError(f"data.test_size/val_size: {cfg['test_size']} + {cfg['val_size']} of {n_rows} rows leaves no "
                        "training rows")
    splits_idx = {}
    rest = idx
    try:
        if n_test:
            rest, splits_idx["test"] = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
        if n_val:
            strat = None if stratify is None else stratify[rest]
            rest, splits_idx["val"] = train_test_split(rest, test_size=n_val, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(f"data.test_size/val_size: cannot split {n_rows} samples that way ({exc})") from None
    splits_idx["train"] = rest
    train_rows = table.features.iloc[rest]
    pre = Preprocessing.fit(train_rows, table.target.iloc[rest], table.task, missing=missing,
                            standardise=cfg["standardise"], classes=classes)
    splits = {}
    for name, i in splits_idx.items():
        rows = table.features.iloc[i]
        splits[name] = Split(pre.transform(rows), pre.encode_target(table.target.iloc[i]))
    if "test" not in splits:
        splits["test"] = splits["train"]
    test_i = splits_idx.get("test", rest)
    splits["test"].rows = table.features.iloc[test_i].assign(**{pre.target["name"]: table.target.iloc[test_i]})
    schema: dict = {
        "name": cfg["name"], "task": table.task, "feature_names": pre.feature_names, "classes": pre.classes,
        "test_is_train": "test" not in splits_idx, "preprocessing": pre.to_json(),
        "sizes": {name: len(s.X) for name, s in splits.items()},
    }
    return splits, schema


def split_size(cfg: dict, key: str, n_rows: int) -> int:
    """Rows in the split that ``data.<key>`` asks for; a fraction that rounds to no rows is refused
    (0 itself means no such split: without a test split the training split is tested)."""
    n = round(cfg[key] * n_rows)
    if cfg[key] > 0 and n == 0:
        raise DataError(f"data.{key}: {cfg[key]} of {n_rows} rows is no rows; use at least {1 / n_rows:.3g}, "
                        "or 0 for no such split")
    return n


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
    splits["test"].rows.to_csv(out / TEST_ROWS, index=False)
    (out / "schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


def data_hash(folder: str | Path) -> str:
    """SHA-256 over the prepared files (byte-reproducible, so equal data ⇒ equal hash)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
    splits["test"].rows = read_rows(out / TEST_ROWS)
    return splits, schema


def read_rows(path: str | Path) -> pd.DataFrame:
    """Raw rows from a CSV or Parquet file, numbers read back exactly as they were written;
    a missing, unreadable or empty file raises :class:`DataError`."""
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)  # pandas ≥ 3 reads numbers back exactly
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file, no rows") from None
    except Exception as exc:  # pandas and pyarrow raise many kinds for unreadable files
        raise DataError(f"{path}: cannot read it as {'Parquet' if path.suffix.lower() in ('.parquet', '.pq') else 'CSV'} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
