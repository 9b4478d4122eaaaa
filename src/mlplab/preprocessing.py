"""What turns raw rows into the network's inputs, fitted on the training split and kept as JSON.

:class:`Preprocessing` is fitted once, in the prepare stage, with scikit-learn (``SimpleImputer``
for the fill values, ``StandardScaler`` for the statistics), and applied everywhere else with a
few lines of NumPy and pandas: to every split, in the evaluate stage, and by the served model.
Applying it needs neither scikit-learn nor pickle, so a model file carries it as JSON.

In order, for a frame of raw rows (the target column absent or ignored):

1. columns are picked by name (in the training order); a missing one is an error, an extra one
   is ignored with a note;
2. a number column is read as numbers (text in it is an error naming the column); its missing
   values are filled with the training statistic (``data.missing``), or refused (``error``);
3. a category column (text or booleans) becomes one 0/1 column per category seen in the training
   split, plus ``<column>_nan`` for missing values when ``data.missing`` imputes. **A category the
   training split never saw encodes as all zeros** (scikit-learn's ``handle_unknown="ignore"``),
   with a note saying how many rows had one;
4. the encoded matrix is standardised with the training split's mean and scale.

The target is part of it: the class labels (as in the data: strings stay strings) or the
regression target's mean and scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class InputError(ValueError):
    """Rows that do not fit the model; the message names the column and what it expects."""


def _label(value):
    """A JSON-safe label: NumPy scalars become Python ones, everything else stays as it is."""
    return value.item() if hasattr(value, "item") else value


def _some(names: list[str], n: int = 6) -> str:
    return ", ".join(names) if len(names) <= n else f"{', '.join(names[:n])}, … ({len(names)} columns)"


def is_category(column) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


@dataclass
class Preprocessing:
    """``columns``: ``[{"name", "kind": "number" | "category", "categories"?}]`` in training order;
    ``fill``: the value each number column's gaps get (``None``: gaps are refused);
    ``mean``/``scale``: standardisation of the encoded features (``None``: none);
    ``target``: ``{"name", "task", "classes"}`` or ``{"name", "task", "mean", "scale"}``."""

    columns: list[dict]
    target: dict
    missing: str = "error"
    fill: dict[str, float] | None = None
    mean: list[float] | None = None
    scale: list[float] | None = None
    feature_names: list[str] = field(init=False)

    def __post_init__(self):
        names = [c["name"] for c in self.columns if c["kind"] == "number"]
        for c in self.columns:
            if c["kind"] == "category":
                names += [f"{c['name']}_{v}" for v in c["categories"]]
                names += [f"{c['name']}_nan"] if c.get("missing_category") else []
        self.feature_names = names

    # -- fitting (prepare stage) ---------------------------------------------------------------
    @classmethod
    def fit(cls, features, target, task: str, *, missing: str, standardise: bool, classes=None) -> Preprocessing:
        """Fit on the training split's raw ``features`` (DataFrame) and ``target`` (Series);
        ``classes`` are the labels of the whole table (so every split's labels are known)."""
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        columns = []
        for name in features.columns:
            col = features[name]
            if is_category(col):
                seen = sorted({str(v) for v in col.dropna()})
                columns.append({"name": str(name), "kind": "category", "categories": seen,
                                "missing_category": missing != "error" and bool(features[name].isna().any())})
            else:
                columns.append({"name": str(name), "kind": "number"})
        if task == "classification":
            tgt = {"name": str(target.name), "task": task, "classes": [_label(c) for c in classes]}
        else:
            y = target.to_numpy(dtype=float)
            tgt = {"name": str(target.name), "task": task, "mean": float(y.mean()) if standardise else 0.0,
                   "scale": float(y.std() or 1.0) if standardise else 1.0}
        pre = cls(columns, tgt, missing)
        numbers = [c["name"] for c in columns if c["kind"] == "number"]
        if missing != "error" and numbers:
            imputer = SimpleImputer(strategy=missing, keep_empty_features=True)
            imputer.fit(features[numbers].to_numpy(dtype=float))
            pre.fill = dict(zip(numbers, imputer.statistics_.tolist()))
        if standardise:
            scaler = StandardScaler().fit(pre.transform(features))
            pre.mean, pre.scale = scaler.mean_.tolist(), scaler.scale_.tolist()
        return pre

    # -- applying (every split, evaluation, serving) -----------------------------------------
    def transform(self, rows, notes: list[str] | None = None) -> np.ndarray:
        """``X`` of shape ``(n_rows, n_features)`` (float64) for a DataFrame of raw rows; what is
        worth telling but not an error is appended to ``notes``."""
        if len(rows) == 0:
            raise InputError("no rows to predict")
        wanted = [c["name"] for c in self.columns]
        absent = [n for n in wanted if n not in rows.columns]
        if absent:
            raise InputError(f"missing column{'s' * (len(absent) > 1)} {', '.join(map(repr, absent))}; "
                             f"the model reads {_some(wanted)}")
        extra = [str(n) for n in rows.columns if n not in wanted and n != self.target["name"]]
        if extra and notes is not None:
            notes.append(f"ignored column{'s' * (len(extra) > 1)} the model does not read: {', '.join(extra)}")
        numbers, onehots = [], []
        for c in self.columns:
            col = rows[c["name"]]
            if c["kind"] == "number":
                numbers.append(self._number(c["name"], col))
                continue
            gaps = col.isna()
            if gaps.any() and self.missing == "error":
                raise InputError(f"column {c['name']!r}: {int(gaps.sum())} missing values, and the model was trained "
                                 "with data.missing=error (set data.missing to give them a category of their own)")
            text = col.astype(str).where(~gaps, "nan")  # a gap is the category "nan" when training had one
            cats = c["categories"] + (["nan"] if c.get("missing_category") else [])
            unknown = ~text.isin(cats)
            if unknown.any() and notes is not None:
                examples = ", ".join(map(repr, sorted(set(text[unknown]))[:3]))
                notes.append(f"column {c['name']!r}: {int(unknown.sum())} rows with a category the training split "
                             f"never saw ({examples}), encoded as none of its categories")
            onehots.append((text.to_numpy()[:, None] == np.array(cats, dtype=object)[None, :]).astype(float))
        X = np.column_stack([*numbers, *onehots]).astype(float, copy=False)
        if self.mean is not None:
            X -= np.asarray(self.mean)
            X /= np.asarray(self.scale)
        return X

    def _number(self, name: str, col) -> np.ndarray:
        import pandas as pd

        values = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_bool_dtype(col) else col.astype(float)
        bad = values.isna() & col.notna()
        if bad.any():
            raise InputError(f"column {name!r} holds numbers, got {col[bad].iloc[0]!r}")
        values = values.to_numpy(dtype=float)
        gaps = np.isnan(values)
        if gaps.any():
            if self.fill is None:
                raise InputError(f"column {name!r}: {int(gaps.sum())} missing values, and the model was trained with "
                                 "data.missing=error (set data.missing to impute them)")
            values = np.where(gaps, self.fill[name], values)
        return values

    # -- the target ------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.target["task"]

    @property
    def classes(self) -> list | None:
        return self.target.get("classes")

    def encode_target(self, target) -> np.ndarray:
        """``y`` of shape ``(n_rows,)``: class indices, or the standardised regression target."""
        if self.task == "regression":
            return (np.asarray(target, dtype=float) - self.target["mean"]) / self.target["scale"]
        index = {str(c): i for i, c in enumerate(self.classes)}
        try:
            return np.array([index[str(v)] for v in target], dtype=np.int64)
        except KeyError as exc:
            raise InputError(f"target {self.target['name']!r}: unknown class {exc.args[0]!r}") from None

    def decode_target(self, y: np.ndarray) -> np.ndarray:
        """Class indices → the labels as in the data; standardised values → original units."""
        if self.task == "regression":
            return np.asarray(y, dtype=float) * self.target["scale"] + self.target["mean"]
        return np.array(self.classes, dtype=object if any(isinstance(c, str) for c in self.classes) else None)[y]

    # -- storage -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"columns": self.columns, "target": self.target, "missing": self.missing, "fill": self.fill,
                "mean": self.mean, "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict) -> Preprocessing:
        return cls(d["columns"], d["target"], d["missing"], d["fill"], d["mean"], d["scale"])
