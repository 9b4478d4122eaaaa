"""Test scores for a trained model, computed with scikit-learn's metrics.

The model predicts from the test split's raw rows, exactly as it does when served, and the labels
come from the cost (:meth:`mlplab.core.Cost.labels`), the same rule that gives ``val/accuracy``
while training, so validation and test accuracy mean the same thing.
"""

from __future__ import annotations

import numpy as np

from mlplab import metrics
from mlplab.data import Split
from mlplab.model import Model
from mlplab.network import targets


def evaluate(model: Model, rows) -> tuple[dict, dict, Split, object]:
    """``(scores, report, split, table)`` for the raw ``rows`` (target column included): the scalar
    ``test/…`` scores (loss plus accuracy and macro F1, or MSE/MAE/R²); the per-class
    precision/recall/F1 (``test/f1/<class>``, …) with the confusion matrix (empty for a regression);
    the rows as the network saw them; and the ``actual``/``predicted`` table, in the data's labels
    or units."""
    import pandas as pd
    from sklearn import metrics as skm

    pre, network = model.preprocessing, model.network
    actual = rows[pre.target["name"]].to_numpy()
    split = Split(model.inputs(rows), pre.encode_target(actual))
    a = network.forward(split.X)
    loss = network.loss(split.X, targets(split, model.task, network))
    table = pd.DataFrame({"actual": actual, "predicted": model.decode(a)})
    if model.task == "regression":
        y, pred = table["actual"].to_numpy(dtype=float), table["predicted"].to_numpy(dtype=float)
        scores = {"loss": loss, "mse": float(skm.mean_squared_error(y, pred)),
                  "mae": float(skm.mean_absolute_error(y, pred)), "r2": float(skm.r2_score(y, pred))}
        return metrics.test(scores), {}, split, table
    pred = network.cost.labels(a)
    classes = [str(c) for c in model.classes]
    labels = list(range(len(classes)))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(split.y, pred, labels=labels, zero_division=0)
    scores = {"loss": loss, "accuracy": float(skm.accuracy_score(split.y, pred)), "macro_f1": float(np.mean(f1))}
    per_class = {c: {"precision": float(p), "recall": float(r), "f1": float(f)}
                 for c, p, r, f in zip(classes, precision, recall, f1)}
    report = {**metrics.test({}, per_class), "classes": classes,
              "confusion_matrix": skm.confusion_matrix(split.y, pred, labels=labels).tolist()}
    return metrics.test(scores), report, split, table
