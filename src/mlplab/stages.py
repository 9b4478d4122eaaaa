"""The pipeline's stages as plain functions of a validated config, an output folder and a tracker.

``prepare → train → evaluate``: DVC runs them one per process with ``out_dir`` its workspace, and
a Hydra job runs all three in one process with ``out_dir`` its output folder. Every path is
``out_dir / cfg["paths"][...]``, declared once in ``conf/config.yaml``. Each stage writes its
outputs first and then hands them to the tracker, which never stops a stage (see
:mod:`mlplab.tracking`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlplab import data, metrics
from mlplab.model import Model
from mlplab.preprocessing import Preprocessing
from mlplab.tracking import Tracker


def path(out_dir: Path, cfg: dict, key: str, *, is_dir: bool = False) -> Path:
    """``out_dir / paths.<key>``, with its folder created."""
    p = Path(out_dir) / cfg["paths"][key]
    (p if is_dir else p.parent).mkdir(parents=True, exist_ok=True)
    return p


def _write_json(p: Path, obj: dict) -> None:
    p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def prepare(cfg: dict, out_dir: Path, tracker: Tracker = Tracker()) -> tuple[dict, dict]:
    """Load, split and standardise the configured data; write it under ``paths.prepared``."""
    splits, schema = data.prepare(cfg["data"], cfg["seed"])
    data.write(splits, schema, path(out_dir, cfg, "prepared", is_dir=True))
    return splits, schema


def train(cfg: dict, out_dir: Path, tracker: Tracker = Tracker(), prepared=None, log_model: bool = True,
          callbacks=()):
    """Train on the prepared splits; write the model, its metrics and the epoch history.
    ``log_model=False``: the model is not logged as an MLflow model (a sweep's child);
    ``callbacks``: more training callbacks (a search's pruner); their ``tags``, if any, are logged."""
    import pandas as pd

    from mlplab.network import Reporter
    from mlplab.network import train as fit_network
    from mlplab.progress import Progress

    folder = path(out_dir, cfg, "prepared", is_dir=True)
    splits, schema = prepared or data.read(folder)
    tracker.set_tags({"mlplab.data_hash": data.data_hash(folder)})
    progress = Progress(cfg["training"]["epochs"])
    try:
        network, history, recorder = fit_network(cfg, splits, schema,
                                                 callbacks=(Reporter(tracker.log_metrics), progress, *callbacks))
    finally:
        progress.close()
    for cb in callbacks:
        if getattr(cb, "tags", None):
            tracker.set_tags(cb.tags)
    model = Model(Preprocessing.from_json(schema["preprocessing"]), network)
    model_file = model.save(path(out_dir, cfg, "model"))
    summary = metrics.training(history)
    _write_json(path(out_dir, cfg, "train_metrics"), summary)
    pd.DataFrame(recorder.rows).to_csv(path(out_dir, cfg, "history"), index=False, float_format="%.10g")
    with tempfile.TemporaryDirectory() as tmp:
        tracker.log_artifact(model.save(Path(tmp) / "final.npz"), "weights")
        if recorder.best is not None:
            final, network.weights = network.weights, recorder.best
            tracker.log_artifact(model.save(Path(tmp) / "best.npz"), "weights")
            network.weights = final
    tracker.log_artifact(path(out_dir, cfg, "history"), "tables")
    if log_model:
        tracker.log_model(model_file, example(splits["test"].rows, model))
    return network, summary


def example(rows, model: Model):
    """A few raw rows without the target: the logged model's input example."""
    return rows.drop(columns=[model.preprocessing.target["name"]]).head(5)


def evaluate(cfg: dict, out_dir: Path, tracker: Tracker = Tracker(), prepared=None, figures: bool = True) -> dict:
    """Test metrics, predictions and figures (``paths.test_metrics``, ``.predictions``, ``.figures``),
    from the saved model (``paths.model``) on the test split's raw rows, as a served model predicts.
    ``figures=False``: no figures (a sweep's child; see ``tracking.child_artifacts``)."""
    from mlplab.evaluation import evaluate as test_scores

    splits, schema = prepared or data.read(path(out_dir, cfg, "prepared", is_dir=True))
    model = Model.load(path(out_dir, cfg, "model"))
    scores, report, test, table = test_scores(model, splits["test"].rows)
    report["test_is_train"] = bool(schema["test_is_train"])
    _write_json(path(out_dir, cfg, "test_metrics"), scores)  # scalars only: what `dvc metrics show` lists
    _write_json(path(out_dir, cfg, "report"), report)
    table.to_csv(path(out_dir, cfg, "predictions"), index=False)  # numbers in full: they read back exactly
    if figures:
        tracker.log_artifact(draw(cfg, out_dir, model, report, test), "figures")
    tracker.log_metrics(metrics.numeric({**scores, **report}), 0)
    tracker.log_artifact(path(out_dir, cfg, "predictions"), "tables")
    tracker.log_artifact(path(out_dir, cfg, "test_metrics"), "tables")
    tracker.log_artifact(path(out_dir, cfg, "report"), "tables")
    return {**scores, "test/is_train": report["test_is_train"]}


def draw(cfg: dict, out_dir: Path, model: Model, report: dict, test) -> Path:
    """The figures of an evaluated run into ``paths.figures``: ``report`` and ``test`` (the rows as
    the network saw them) are what :func:`mlplab.evaluation.evaluate` returned."""
    import pandas as pd

    from mlplab import plots

    figures = path(out_dir, cfg, "figures", is_dir=True)
    for old in figures.glob("*.png"):  # a figure that no longer applies must not linger
        old.unlink()
    if model.task == "classification":
        plots.confusion(report["confusion_matrix"], report["classes"], figures / "confusion_matrix.png")
        if test.X.shape[1] == 2:
            plots.decision_boundary(model.network, test, model.preprocessing, figures / "decision_boundary.png")
    history = pd.read_csv(path(out_dir, cfg, "history"))
    plots.loss_curves(history, figures / "loss.png")
    plots.gradient_norms(history, figures / "grad_norms.png")
    return figures
