"""The network as an MLflow pyfunc model, logged "from code": MLflow reads this file instead of
unpickling an object, and the weights come from the run's ``weights`` artefact (an ``.npz``)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class MLPModel(PythonModel):
    def load_context(self, context) -> None:
        from mlplab.core import load

        self.network = load(context.artifacts["weights"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        """Outputs ``aᴸ`` of shape ``(n_samples, Nᴸ)`` for rows of features."""
        return self.network.forward(np.asarray(model_input, dtype=self.network.dtype))


mlflow.models.set_model(MLPModel())
