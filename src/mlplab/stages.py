"""The pipeline's stages as plain functions of a validated config and a root folder.

``prepare → train → evaluate``: DVC runs them one per stage with ``root`` the repository, and a
Hydra job runs all three in one process with ``root`` its output folder. Every path is
``root / cfg["paths"][...]``, declared once in ``conf/config.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlplab import data
from mlplab.core import load, save


def _path(root: Path, cfg: dict, key: str, *, is_dir: bool = False) -> Path:
    """``root / paths.<key>``, with its folder created."""
    path = Path(root) / cfg["paths"][key]
    (path if is_dir else path.parent).mkdir(parents=True, exist_ok=True)
    return path


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def prepare(cfg: dict, root: Path = Path(".")) -> tuple[dict, dict]:
    """Load, split and standardise the configured data; write it under ``paths.prepared``."""
    splits, schema = data.prepare(cfg["data"], cfg["seed"])
    data.write(splits, schema, _path(root, cfg, "prepared", is_dir=True))
    return splits, schema


def train(cfg: dict, root: Path = Path("."), prepared=None, callbacks=()):
    """Train on the prepared splits; write the model, its metrics and the epoch history."""
    from mlplab.experiment import train as fit_network
    from mlplab.experiment import train_metrics

    splits, schema = prepared or data.read(_path(root, cfg, "prepared", is_dir=True))
    network, history, table = fit_network(cfg, splits, schema, callbacks=callbacks)
    save(network, _path(root, cfg, "model"))
    _write_json(_path(root, cfg, "train_metrics"), train_metrics(history))
    table.to_csv(_path(root, cfg, "history"), index=False, float_format="%.10g")
    return network, history, table


def evaluate(cfg: dict, root: Path = Path("."), prepared=None, network=None) -> dict:
    """Test metrics, predictions and figures (``paths.test_metrics``, ``.predictions``, ``.figures``)."""
    import pandas as pd

    from mlplab import plots
    from mlplab.evaluation import evaluate as test_metrics
    from mlplab.evaluation import original_target, predictions

    splits, schema = prepared or data.read(_path(root, cfg, "prepared", is_dir=True))
    network = network or load(_path(root, cfg, "model"))
    test = splits["test"]
    pred = predictions(network, test, schema)
    metrics = test_metrics(network, test, schema, pred)
    metrics["test_is_train"] = bool(schema["test_is_train"])
    _write_json(_path(root, cfg, "test_metrics"), metrics)
    figures = _path(root, cfg, "figures", is_dir=True)
    for old in figures.glob("*.png"):  # a figure that no longer applies must not linger
        old.unlink()
    if schema["task"] == "classification":
        classes = [str(c) for c in schema["classes"]]
        table = pd.DataFrame({"actual": [classes[i] for i in test.y], "predicted": [classes[i] for i in pred]})
        plots.confusion(metrics["confusion_matrix"], classes, figures / "confusion_matrix.png")
        if test.X.shape[1] == 2:
            plots.decision_boundary(network, test, schema, figures / "decision_boundary.png")
    else:
        table = pd.DataFrame({"actual": original_target(test, schema), "predicted": pred})
    table.to_csv(_path(root, cfg, "predictions"), index=False, float_format="%.10g")
    history = pd.read_csv(_path(root, cfg, "history"))
    plots.loss_curves(history, figures / "loss.png")
    plots.gradient_norms(history, figures / "grad_norms.png")
    return metrics


def run_all(cfg: dict, root: Path, callbacks=()) -> dict:
    """All three stages in one process, untracked (a notebook's or a test's way in); returns the
    test metrics. A Hydra job runs the same with its MLflow run around it: :func:`mlplab.runs.hydra_job`."""
    prepared = prepare(cfg, root)
    network, _, _ = train(cfg, root, prepared, callbacks=callbacks)
    return evaluate(cfg, root, prepared, network)
