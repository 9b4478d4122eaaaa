"""The stages with their MLflow run around them: what a DVC stage or a Hydra job executes.

Each function takes the *raw* composed config, so that a run is opened first and a config
error is recorded in it as a failure too. With ``tracking.enabled: false`` nothing here imports
MLflow. The run is always closed: FINISHED, FAILED with the reason, or KILLED on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlplab import stages
from mlplab.config import tracking_section, validate


@contextmanager
def recorded_run(raw: dict, *, run_name: str | None = None, run_id: str | None = None,
                 parent_run_id: str | None = None, overrides: list[str] = ()) -> Iterator:
    """Yield an open ``tracking.Run`` (or ``None`` when tracking is off) and always close it."""
    settings = tracking_section(raw)
    if not settings["enabled"]:
        yield None
        return
    from mlplab import tracking

    run = tracking.Run(settings, run_name=run_name, run_id=run_id, parent_run_id=parent_run_id,
                       tags=tracking.lineage_tags(list(overrides)))
    try:
        yield run
    except KeyboardInterrupt:
        run.end("KILLED", "interrupted (Ctrl-C or SIGTERM)")
        raise
    except BaseException as exc:
        run.end("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    run.end("FINISHED")


def _train_tracked(run, cfg: dict, root: Path, prepared=None):
    if run is None:
        return stages.train(cfg, root, prepared)[0]
    from mlplab.tracking import TrackingCallback, log_training

    run.params(cfg)
    callback = TrackingCallback(run)
    network = stages.train(cfg, root, prepared, callbacks=(callback,))[0]
    log_training(run, cfg, root, network, callback)
    return network


def _evaluate_tracked(run, cfg: dict, root: Path, prepared=None, network=None) -> dict:
    metrics = stages.evaluate(cfg, root, prepared, network)
    if run:
        from mlplab.tracking import log_evaluation

        log_evaluation(run, cfg, root, metrics)
    return metrics


# -- DVC stages: one process per stage; train opens the run, evaluate completes it ------------
def dvc_prepare(raw: dict, root: Path) -> None:
    stages.prepare(validate(raw), root)


def dvc_train(raw: dict, root: Path) -> None:
    with recorded_run(raw, run_name="dvc: train + evaluate") as run:
        cfg = validate(raw)  # inside the run, so a bad config is recorded as its failure
        run_file = root / cfg["paths"]["run"]
        run_file.parent.mkdir(parents=True, exist_ok=True)
        run_file.unlink(missing_ok=True)
        _train_tracked(run, cfg, root)
        record = {"run_id": run.run_id, "experiment_id": run.experiment_id} if run else {"run_id": None}
        run_file.write_text(json.dumps(record, indent=2) + "\n")


def dvc_evaluate(raw: dict, root: Path) -> None:
    cfg = validate(raw)  # the run to complete is named in a file whose path is in the config
    run_file = root / cfg["paths"]["run"]
    try:
        run_id = json.loads(run_file.read_text())["run_id"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        from mlplab.config import ConfigError

        raise ConfigError("paths.run", f"{run_file} is missing or unreadable: run the train stage first") from None
    if run_id is None:  # the train stage ran with tracking off
        raw = {**raw, "tracking": {**raw["tracking"], "enabled": False}}
    with recorded_run(raw, run_id=run_id) as run:
        _evaluate_tracked(run, cfg, root)


# -- a Hydra job: all three stages in one process, a child run when part of a sweep -----------
def hydra_job(raw: dict, out_dir: Path, overrides: list[str], parent_run_id: str | None) -> dict:
    with recorded_run(raw, run_name=" ".join(overrides) or "run", parent_run_id=parent_run_id,
                      overrides=overrides) as run:
        cfg = validate(raw)
        prepared = stages.prepare(cfg, out_dir)
        network = _train_tracked(run, cfg, out_dir, prepared)
        return _evaluate_tracked(run, cfg, out_dir, prepared, network)
