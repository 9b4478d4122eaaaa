"""Test metrics for a trained network, computed with scikit-learn's metrics."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from mlplab.core import Network
from mlplab.data import Split
from mlplab.experiment import targets


def predictions(network: Network, split: Split, schema: dict) -> np.ndarray:
    """Class indices ``(n_samples,)`` for classification; target values in original units otherwise."""
    if schema["task"] == "regression":
        y = network.forward(split.X)[:, 0].astype(float)
        if schema.get("target_scaler"):
            y = y * schema["target_scaler"]["scale"] + schema["target_scaler"]["mean"]
        return y
    out = network.forward(split.X)
    return (out[:, 0] >= 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)


def original_target(split: Split, schema: dict) -> np.ndarray:
    ts = schema.get("target_scaler")
    return split.y * ts["scale"] + ts["mean"] if ts else split.y


def evaluate(network: Network, split: Split, schema: dict, pred: np.ndarray | None = None) -> dict:
    """Loss plus accuracy, per-class precision/recall/F1 and the confusion matrix, or MSE/MAE/R².

    ``pred``: :func:`predictions` for ``split`` if the caller already has them.
    """
    loss = network.loss(split.X, targets(split, schema, network.cost.name))
    if pred is None:
        pred = predictions(network, split, schema)
    if schema["task"] == "regression":
        y = original_target(split, schema)
        return {"loss": loss, "mse": float(skm.mean_squared_error(y, pred)),
                "mae": float(skm.mean_absolute_error(y, pred)), "r2": float(skm.r2_score(y, pred))}
    classes = [str(c) for c in schema["classes"]]
    labels = list(range(len(classes)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(split.y, pred, labels=labels, zero_division=0)
    return {
        "loss": loss,
        "accuracy": float(skm.accuracy_score(split.y, pred)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(split.y, pred, labels=labels).tolist(),
    }
