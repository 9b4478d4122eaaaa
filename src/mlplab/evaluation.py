"""Test scores for a trained network, computed with scikit-learn's metrics.

Labels come from the cost (:meth:`mlplab.core.Cost.labels`), the same rule that gives
``val/accuracy`` while training, so validation and test accuracy mean the same thing.
"""

from __future__ import annotations

import numpy as np

from mlplab import metrics
from mlplab.core import Network
from mlplab.data import Split
from mlplab.model import targets


def predictions(network: Network, split: Split, schema: dict) -> np.ndarray:
    """Class indices ``(n_samples,)`` for classification; target values in original units otherwise."""
    out = network.forward(split.X)
    if schema["task"] == "classification":
        return network.cost.labels(out)
    y = out[:, 0].astype(float)
    ts = schema.get("target_scaler")
    return y * ts["scale"] + ts["mean"] if ts else y


def original_target(split: Split, schema: dict) -> np.ndarray:
    ts = schema.get("target_scaler")
    return split.y * ts["scale"] + ts["mean"] if ts else split.y


def evaluate(network: Network, split: Split, schema: dict, pred: np.ndarray) -> tuple[dict, dict]:
    """``(scores, report)`` for ``pred`` = :func:`predictions`: the scalar ``test/…`` scores (loss plus
    accuracy and macro F1, or MSE/MAE/R²), and the per-class precision/recall/F1 (``test/f1/<class>``, …)
    with the confusion matrix (empty for a regression)."""
    from sklearn import metrics as skm

    loss = network.loss(split.X, targets(split, schema, network))
    if schema["task"] == "regression":
        y = original_target(split, schema)
        return metrics.test({"loss": loss, "mse": float(skm.mean_squared_error(y, pred)),
                             "mae": float(skm.mean_absolute_error(y, pred)), "r2": float(skm.r2_score(y, pred))}), {}
    classes = [str(c) for c in schema["classes"]]
    labels = list(range(len(classes)))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(split.y, pred, labels=labels, zero_division=0)
    scores = {"loss": loss, "accuracy": float(skm.accuracy_score(split.y, pred)), "macro_f1": float(np.mean(f1))}
    per_class = {c: {"precision": float(p), "recall": float(r), "f1": float(f)}
                 for c, p, r, f in zip(classes, precision, recall, f1)}
    report = {**metrics.test({}, per_class), "classes": classes,
              "confusion_matrix": skm.confusion_matrix(split.y, pred, labels=labels).tolist()}
    return metrics.test(scores), report
