"""Figures: loss curves, per-layer gradient norms, confusion matrix, 2-D decision boundary."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.inspection import DecisionBoundaryDisplay  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from mlplab import metrics  # noqa: E402
from mlplab.core import Network  # noqa: E402
from mlplab.data import Split  # noqa: E402

#: No timestamps or versions in the files, so reruns write identical bytes.
_METADATA = {"Software": None}


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, metadata=_METADATA)
    plt.close(fig)
    return path


def loss_curves(history: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for col in (metrics.TRAIN_LOSS, metrics.VAL_LOSS):
        if col in history:
            ax.plot(history["epoch"], history[col], label=col)
    ax.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log" if (history[metrics.TRAIN_LOSS] > 0).all() else "linear")
    ax.legend()
    return _save(fig, path)


def gradient_norms(history: pd.DataFrame, path: Path) -> Path:
    cols = [c for c in history if c.startswith("grad_norm/")]
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in cols:
        ax.plot(history["epoch"], history[c], label=c.removeprefix("grad_norm/"), linestyle="-" if "/W" in c else ":")
    ax.set(xlabel="epoch", ylabel="‖∂C/∂p‖₂ (last step of the epoch)", title="Gradient norm per layer", yscale="log")
    ax.legend(ncol=2, fontsize="small")
    return _save(fig, path)


def confusion(cm: list[list[int]], classes: list, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=[str(c) for c in classes]).plot(ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (test)")
    return _save(fig, path)


def decision_boundary(network: Network, split: Split, preprocessing, path: Path, resolution: int = 200) -> Path:
    """Only for two input features: the predicted class over the plane, with the points on top."""
    X = split.X
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    xx0, xx1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    response = network.cost.labels(network.forward(np.column_stack([xx0.ravel(), xx1.ravel()]))).reshape(xx0.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    n_classes = len(preprocessing.classes)
    display = DecisionBoundaryDisplay(xx0=xx0, xx1=xx1, n_classes=n_classes, response=response,
                                      xlabel=preprocessing.feature_names[0], ylabel=preprocessing.feature_names[1])
    display.plot(ax=ax, alpha=0.4, **({"cmap": "coolwarm"} if n_classes == 2 else {}))
    ax.scatter(X[:, 0], X[:, 1], c=split.y, cmap="coolwarm", edgecolor="k", s=15)
    ax.set_title("Decision boundary (test points)")
    return _save(fig, path)
