"""The trained model: the preprocessing fitted on the training split and the network, from raw
rows to labels. The evaluate stage, ``python -m mlplab predict`` and the MLflow model all call it,
so the tested predictions and the served ones are the same code.

>>> model = Model.load("models/model.npz")
>>> model.predict(rows)                       # labels as in the data (strings stay strings), or values
>>> model.predict_proba(rows)                 # one column per class label

Saved as one ``.npz``: the network's arrays (see :mod:`mlplab.core.serialisation`) plus
``preprocessing``, a JSON string. Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlplab.core import ModelFileError, Network
from mlplab.core.serialisation import network_from, read, save
from mlplab.preprocessing import InputError, Preprocessing

__all__ = ["InputError", "Model", "ModelFileError"]


class Model:
    def __init__(self, preprocessing: Preprocessing, network: Network):
        self.preprocessing, self.network = preprocessing, network

    @property
    def task(self) -> str:
        return self.preprocessing.task

    @property
    def classes(self) -> list | None:
        return self.preprocessing.classes

    def inputs(self, rows, notes: list[str] | None = None) -> np.ndarray:
        """``X`` of shape ``(n_rows, n_features)``: what the network reads for raw ``rows``."""
        return self.preprocessing.transform(rows, notes)

    def outputs(self, rows, notes: list[str] | None = None) -> np.ndarray:
        """The network's output activations ``aᴸ`` of shape ``(n_rows, Nᴸ)``."""
        return self.network.forward(self.inputs(rows, notes))

    def predict(self, rows, notes: list[str] | None = None) -> np.ndarray:
        """``(n_rows,)``: the class labels of the data for classification, values in the target's
        units for regression."""
        return self.decode(self.outputs(rows, notes))

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Output activations → labels (by the cost's rule) or values."""
        if self.task == "classification":
            return self.preprocessing.decode_target(self.network.cost.labels(outputs))
        return self.preprocessing.decode_target(outputs[:, 0])

    def predict_proba(self, rows, notes: list[str] | None = None):
        """A DataFrame of shape ``(n_rows, n_classes)``, columns named after the labels: the softmax
        outputs, or each sigmoid output (one unit: ``1 - a`` and ``a``), or the one-hot targets'
        squared-error fit, as the network gives them."""
        import pandas as pd

        if self.task != "classification":
            raise InputError("probabilities are for classification; this model is a regression")
        a = self.outputs(rows, notes)
        if a.shape[1] == 1:
            a = np.column_stack([1 - a[:, 0], a[:, 0]])
        return pd.DataFrame(a.astype(float), columns=[str(c) for c in self.classes], index=rows.index)

    # -- the file ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        return save(self.network, path, preprocessing=np.array(json.dumps(self.preprocessing.to_json(), sort_keys=True)))

    @classmethod
    def load(cls, path: str | Path) -> Model:
        entries = read(path)
        if "preprocessing" not in entries:
            raise ModelFileError(f"{path}: a network without its preprocessing (saved by mlplab.core.save, not by "
                                 "the pipeline): load it with mlplab.core.load")
        try:
            pre = Preprocessing.from_json(json.loads(str(entries["preprocessing"])))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: invalid preprocessing record ({exc})") from None
        return cls(pre, network_from(entries, path))

    def __repr__(self) -> str:
        return f"Model({self.task}, {len(self.preprocessing.columns)} columns → {self.network!r})"
