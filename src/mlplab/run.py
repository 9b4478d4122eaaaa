"""One run's life cycle, the same for every way a run starts (a DVC stage, a single run, a job of
any sweep or launcher):

    compose → validate → open the tracker → prepare / train / evaluate → write → log → close

The config arrives validated (:func:`mlplab.config.validate` is pure and fast, so a bad value is
reported before the store, MLflow or scikit-learn are touched). :func:`execute` opens the tracker,
runs the stages it is given and always closes the run: FINISHED, FAILED with the reason, or
KILLED on an interrupt. It returns a :class:`Result`; errors propagate to the entry point, which
turns them into one line and an exit status (:mod:`mlplab.cli`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlplab import stages as stage
from mlplab.cli import describe
from mlplab.config import override_key, read_params, validate
from mlplab.tracking import open_tracker

STAGES = ("prepare", "train", "evaluate")


@dataclass(frozen=True)
class Result:
    """What a run leaves: its outputs' folder, its metrics, its MLflow run, a tracking failure."""

    out_dir: Path
    metrics: dict = field(default_factory=dict)
    run_id: str | None = None
    tracking_failure: str | None = None
    url: str | None = None
    seconds: float = 0.0
    #: What ``tracking.register`` did, in a line.
    registered: str | None = None

    def summary(self) -> str:
        """One line: the main metrics, the outputs' folder, the MLflow run and where to see it."""
        shown = [k for k in ("test/accuracy", "test/r2", "test/loss", "val/accuracy", "train/loss") if k in self.metrics][:3]
        scores = ", ".join(f"{k} {self.metrics[k]:.4g}" for k in shown)
        run = f"; MLflow run {self.run_id}" + (f" at {self.url}" if self.url else "") if self.run_id else ""
        return f"mlplab: done in {self.seconds:.1f} s{': ' + scores if scores else ''}; outputs in {self.out_dir}{run}"


def _git(root: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def lineage(root: Path, overrides: list[str] = ()) -> dict[str, str]:
    """Git commit and dirtiness of the project, the overrides, DVC's stage and experiment."""
    tags = {"mlplab.overrides": " ".join(overrides)}
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
        tags.update({"mlplab.git_commit": commit, "mlflow.source.git.commit": commit, "mlplab.git_dirty": str(dirty).lower()})
    for env, tag in (("DVC_STAGE", "mlplab.dvc_stage"), ("DVC_EXP_NAME", "mlplab.dvc_exp_name")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def run_name(overrides: list[str], keep: set[str] | None = None) -> str:
    """A run's name from its overrides (those whose key is in ``keep``, if given), a path shortened
    to its file name: ``nonlinearity=tanh data.path=sales.csv``."""
    parts = []
    for o in overrides:
        key, _, value = o.partition("=")
        if keep is not None and override_key(o) not in keep:
            continue
        if "/" in value and not value.startswith(("[", "{")):
            value = Path(value).name
        parts.append(f"{key}={value}")
    return " ".join(parts) or "defaults"


def changed(cfg: dict, default: dict, prefix: str = "") -> list[str]:
    """``key=value`` for every value of ``cfg`` that differs from ``default`` (what ``-S`` changed)."""
    out = []
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(default.get(k), dict):
            out += changed(v, default[k], key + ".")
        elif default.get(k, object()) != v:
            out.append(f"{key}={json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v}")
    return out


def execute(cfg: dict, out_dir: Path, root: Path, *, stages=STAGES, name: str = "run", overrides: list[str] = (),
            parent_id: str | None = None, resume_id: str | None = None, callbacks=()) -> Result:
    """Run ``stages`` of the validated ``cfg`` into ``out_dir``, tracked as configured;
    ``callbacks`` join the training's (a search's pruner)."""
    started = time.monotonic()
    tracker = open_tracker(cfg["tracking"], root)
    tracker.start(name, lineage(root, overrides), parent_id=parent_id, resume_id=resume_id)
    try:
        if resume_id is None:
            tracker.log_config(cfg)
        prepared = None
        results: dict = {}
        t = cfg["tracking"]
        whole = parent_id is None or t["child_artifacts"] == "all"  # else the sweep adds them to its best child
        if "prepare" in stages:
            prepared = stage.prepare(cfg, out_dir, tracker)
        if "train" in stages:
            _, results = stage.train(cfg, out_dir, tracker, prepared, log_model=whole, callbacks=callbacks)
        if "evaluate" in stages:
            results = {**results, **stage.evaluate(cfg, out_dir, tracker, prepared, figures=whole)}
        registered = (tracker.register(t["register"], t["objective"], t["objective_mode"])
                      if t["register"] and "evaluate" in stages and parent_id is None else None)  # a sweep registers its best
    except KeyboardInterrupt as exc:
        tracker.end("KILLED", describe(exc))
        raise
    except BaseException as exc:
        tracker.end("FAILED", describe(exc))
        raise
    tracker.end("FINISHED")
    return Result(Path(out_dir), results, tracker.run_id, tracker.failure, tracker.url, time.monotonic() - started,
                  registered)


# -- DVC: one stage per process; train opens the run, evaluate completes it --------------------
def dvc_stage(name: str, out_dir: Path, root: Path) -> Result:
    """The DVC stage ``name`` on ``params.yaml`` in ``out_dir`` (DVC's workspace). The run's id passes
    from train to evaluate in ``paths.run``, a file DVC does not track (a new id each time would
    change ``dvc.lock`` on every reproduction)."""
    cfg = validate(read_params(out_dir / "params.yaml"))
    run_file = out_dir / cfg["paths"]["run"]
    if name == "prepare":  # the run starts with training; preparing is cached data work
        return execute({**cfg, "tracking": {**cfg["tracking"], "enabled": False}}, out_dir, root, stages=("prepare",))
    if name == "train":
        from mlplab.config import compose

        run_file.unlink(missing_ok=True)
        exp = os.environ.get("DVC_EXP_NAME")
        overrides = changed(read_params(out_dir / "params.yaml"), compose(conf_dir=root / "conf"))
        label = f"dvc exp {exp}" if exp else "dvc repro"
        result = execute(cfg, out_dir, root, stages=("train",), overrides=overrides,
                         name=f"{label}: {run_name(overrides)}" if overrides else label)
        run_file.parent.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps({"run_id": result.run_id}, indent=2) + "\n")
        return result
    try:
        run_id = json.loads(run_file.read_text())["run_id"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        run_id = False  # training came from DVC's cache, not from this workspace: a run of its own
    if run_id is None:  # the train stage ran with tracking off
        cfg = {**cfg, "tracking": {**cfg["tracking"], "enabled": False}}
    if run_id is False:
        return execute(cfg, out_dir, root, stages=("evaluate",), name="dvc repro: evaluate")
    return execute(cfg, out_dir, root, stages=("evaluate",), resume_id=run_id)
