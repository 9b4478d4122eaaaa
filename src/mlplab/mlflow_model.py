"""The pipeline's model as an MLflow pyfunc model, logged "from code": MLflow runs this file
instead of unpickling an object, and the model comes from the run's ``.npz`` (network and
preprocessing; see :mod:`mlplab.model`). Loading a logged model therefore runs this file and the
``mlplab`` package shipped beside it: trust a model as you would trust its code.

``predict`` takes raw rows (a DataFrame shaped like the training data without the target) and
returns the labels or values; ``params={"probabilities": True}`` returns one column per class.
"""

from __future__ import annotations

import logging

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class MLPModel(PythonModel):
    def load_context(self, context) -> None:
        from mlplab.model import Model

        self.model = Model.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        notes: list[str] = []
        if (params or {}).get("probabilities"):
            out = self.model.predict_proba(model_input, notes)
        else:
            out = self.model.predict(model_input, notes)  # an array: the server answers {"predictions": [...]}
        for note in notes:
            logging.getLogger("mlplab").warning("mlplab: %s", note)
        return out


mlflow.models.set_model(MLPModel())
