"""A temporary MLflow store per test, copied from one migrated once per session (~3 s saved each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    from mlplab.tracking.mlflow import open_store

    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    open_store(f"sqlite:///{db}", "test")
    return db


@pytest.fixture
def store(migrated_store, tmp_path, monkeypatch) -> str:
    """``MLFLOW_TRACKING_URI`` of a fresh copy of the migrated store; artefacts go beside it."""
    db = tmp_path / "mlflow.db"
    shutil.copy(migrated_store, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def runs(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True, output_format="pandas")


def first_child_logs(uri: str, seconds: float = 120) -> bool:
    """Wait until a sweep's first child run has logged a ``train/loss``; ``False`` if it never did."""
    import time

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        table = runs(uri)
        key = "tags.mlflow.parentRunId"
        children = table[table[key].notna()] if key in table else table.iloc[:0]
        if len(children) and client.get_metric_history(children.run_id.iloc[0], "train/loss"):
            return True
        time.sleep(0.5)
    return False
