"""MLflow tracking: the only module that talks to MLflow.

One :class:`Run` per training run, written through ``MlflowClient`` (no global "active run", so
in-process Hydra jobs cannot trip over each other). It logs

- the whole resolved config as params with dotted keys (``optimiser.lr``),
- per-epoch metrics with ``step = epoch`` (``train/loss``, ``val/loss``, ``val/accuracy``, ``lr``,
  and per layer ``grad_norm/W{m}``, ``grad_norm/b{m}``, ``weight_norm/W{m}``,
  ``update_ratio/W{m}``), a per-step stream of ``step/loss`` and ``step/grad_norm/…`` every
  ``training.stats_every`` steps with ``step`` = global step, and the test metrics ``test/…``,
- artefacts: the config, the weights (final and best), the figures and tables, and the network as
  a pyfunc model whose weights travel as the ``.npz`` file (never pickled),
- lineage tags: git commit and dirtiness, the prepared data's hash, the Hydra overrides, the DVC
  stage and experiment.

Metrics are buffered and written with ``log_batch`` at most every ``tracking.flush_every_s``
seconds and whenever the run ends, so tracking costs little on a long run and nothing logged
before a failure is lost. A run always ends: FINISHED, FAILED (reason in ``mlplab.failure``) or
KILLED. Importing this module imports MLflow (seconds): callers import it only when tracking is on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import threading
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag

from mlplab.core import Callback, EpochEvent, History, StepEvent

# Creating a store prints several INFO lines that would bury our one-line messages on stderr.
for _logger in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_logger).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

DB_FILE = "mlflow.db"
PARENT_TAG = "mlflow.parentRunId"
FAILURE_TAG = "mlplab.failure"


# -- where ------------------------------------------------------------------------------------
def project_root() -> Path:
    """The repository: ``DVC_ROOT`` (the original one, also inside a queued experiment's copy),
    else the nearest folder upwards holding ``dvc.yaml``, else the current folder."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "dvc.yaml").is_file()), here)


def tracking_uri(cfg: dict) -> str:
    """``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else the SQLite store at the repository root."""
    return cfg["uri"] or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / DB_FILE}"


def ensure_store(uri: str) -> MlflowClient:
    """Open the store, creating it once: concurrent first use of a fresh SQLite file breaks
    MLflow's migrations, so the creation is serialised with a lock file beside the database."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)
        return client
    return MlflowClient(uri)


def artifact_location(uri: str, experiment: str) -> str | None:
    """Beside a SQLite store, in ``mlartifacts/<experiment>``; MLflow's own default is relative
    to whatever folder the first run happened to start in."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts" / experiment)
    return None


def experiment_id(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri, name))
    except mlflow.exceptions.MlflowException:  # created by a parallel job meanwhile
        return client.get_experiment_by_name(name).experiment_id


# -- what -------------------------------------------------------------------------------------
def flatten(cfg: dict, prefix: str = "") -> dict[str, str]:
    """``{"optimiser": {"lr": 0.1}}`` → ``{"optimiser.lr": "0.1"}``; lists stay whole."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)
    return out


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def lineage_tags(overrides: list[str]) -> dict[str, str]:
    """Git commit and dirtiness, the overrides, and DVC's stage and experiment when DVC runs us."""
    tags = {"mlplab.overrides": " ".join(overrides)}
    commit = _git("rev-parse", "HEAD")
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        tags.update({"mlplab.git_commit": commit, "mlflow.source.git.commit": commit,
                     "mlplab.git_dirty": str(bool(status)).lower()})
    for env, tag in (("DVC_STAGE", "mlplab.dvc_stage"), ("DVC_EXP_NAME", "mlplab.dvc_exp_name")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def data_hash(folder: Path) -> str:
    """SHA-256 over the prepared files (byte-reproducible, so equal data ⇒ equal hash)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_metrics(metrics: dict) -> dict[str, float]:
    """Evaluation results as flat ``test/…`` metrics (per class: ``test/f1/<class>``, …)."""
    out = {f"test/{k}": float(v) for k, v in metrics.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for cls, scores in metrics.get("per_class", {}).items():
        for k in ("precision", "recall", "f1"):
            out[f"test/{k}/{cls}"] = scores[k]
    return out


class _uninterrupted:
    """Hold Ctrl-C/SIGTERM until a write to the store is complete, then raise it.

    An interrupt inside SQLAlchemy's transaction can leave the SQLite connection unusable, and
    then the run could not be closed as KILLED."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.pending = None
        self.saved = None
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.getsignal(s) for s in self.SIGNALS}
            for s in self.SIGNALS:
                signal.signal(s, self._hold)
        return self

    def _hold(self, signum, frame):
        self.pending = signum

    def __exit__(self, *exc):
        if self.saved is not None:
            for s, handler in self.saved.items():
                signal.signal(s, handler)
        if self.pending is not None and exc[0] is None:
            raise KeyboardInterrupt(f"signal {self.pending}")
        return False


# -- a run ------------------------------------------------------------------------------------
class Run:
    """One MLflow run, created (or resumed by id) in the configured store and experiment."""

    def __init__(self, tracking: dict, *, run_name: str | None = None, run_id: str | None = None,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None):
        self.uri = tracking_uri(tracking)
        self.client = ensure_store(self.uri)
        self.flush_every_s = tracking["flush_every_s"]
        self.log_model_enabled = tracking["log_model"]
        if run_id is None:
            tags = dict(tags or {})
            if parent_run_id:
                tags[PARENT_TAG] = parent_run_id
            run = self.client.create_run(experiment_id(self.client, tracking["experiment"]),
                                         run_name=run_name, tags=tags)
        else:
            run = self.client.get_run(run_id)
            self.client.update_run(run_id, status="RUNNING")
            new = {k: v for k, v in (tags or {}).items() if k not in run.data.tags}  # keep the lineage of the run's start
            if new:
                self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in new.items()])
        self.run_id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        self._buffer: list[Metric] = []
        self._last_flush = time.monotonic()
        self.ended = False

    # metrics
    def metrics(self, values: dict[str, float], step: int) -> None:
        """Buffer metrics; write them if the last write is older than ``flush_every_s``."""
        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, float(v), now, step) for k, v in values.items()
                            if v is not None and math.isfinite(v))
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            with _uninterrupted():
                self.client.log_batch(self.run_id, metrics=self._buffer)  # chunks by itself
                self._buffer = []
        self._last_flush = time.monotonic()

    def params(self, cfg: dict) -> None:
        with _uninterrupted():
            self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in flatten(cfg).items()])

    def tags(self, tags: dict[str, str]) -> None:
        with _uninterrupted():
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    # artefacts
    def artifact(self, path: Path, folder: str | None = None) -> None:
        with _uninterrupted():
            self.client.log_artifact(self.run_id, str(path), folder)

    def artifacts(self, folder: Path, into: str | None = None) -> None:
        with _uninterrupted():
            self.client.log_artifacts(self.run_id, str(folder), into)

    def text(self, text: str, name: str) -> None:
        with _uninterrupted():
            self.client.log_text(self.run_id, text, name)

    def model(self, weights: Path, X_example: np.ndarray, feature_names: list[str]) -> None:
        """Log the network as a pyfunc model (``runs:/<id>/model``) with signature and input example.

        Saved "from code" (``mlflow_model.py``, nothing pickled) with ``save_model`` and logged as
        artefacts, so no active run is needed; the package travels in the model's ``code`` folder.
        """
        import pandas as pd
        from mlflow.models import infer_signature

        from mlplab.core import load

        net = load(weights)
        example = pd.DataFrame(np.asarray(X_example[:5], dtype=float), columns=feature_names)
        signature = infer_signature(example, net.forward(example.to_numpy()))
        here = Path(__file__).resolve().parent
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.pyfunc.save_model(
                path=Path(tmp) / "model", python_model=str(here / "mlflow_model.py"),
                artifacts={"weights": str(weights)},
                signature=signature, input_example=example, code_paths=[str(here)],
                pip_requirements=[f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
            )
            self.artifacts(Path(tmp) / "model", "model")

    # the end
    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush what is buffered and close the run; a reason goes into ``mlplab.failure``."""
        if self.ended:
            return
        self.ended = True
        with _uninterrupted():
            try:
                self.flush()
            finally:
                if reason:
                    self.client.set_tag(self.run_id, FAILURE_TAG, reason[:5000])
                self.client.set_terminated(self.run_id, status)


class TrackingCallback(Callback):
    """Turns the core's training events into MLflow metrics, and keeps the best weights."""

    def __init__(self, run: Run):
        self.run = run
        self.network = None
        self.best: list | None = None

    def on_fit_start(self, network) -> None:
        self.network = network

    def on_step_end(self, event: StepEvent) -> None:
        # The step stream is the loss and the gradient norms; weight norms and update ratios move
        # slowly and are logged per epoch, which keeps the volume (and the cost) down.
        if event.stats is not None:
            values = {f"step/grad_norm/{p}{m}": v for p, norms in (("W", event.stats.grad_norm_W), ("b", event.stats.grad_norm_b))
                      for m, v in enumerate(norms, start=1)}
            values["step/loss"] = event.loss
            self.run.metrics(values, event.step)

    def on_epoch_end(self, event: EpochEvent) -> None:
        values = {"train/loss": event.train_loss, "val/loss": event.val_loss,
                  "val/accuracy": event.val_accuracy, "lr": event.lr}
        values.update(event.stats.as_dict())
        self.run.metrics(values, event.epoch)
        if event.improved:
            self.best = [(W.copy(), b.copy()) for W, b in self.network.params]

    def on_fit_end(self, history: History) -> None:
        self.run.flush()


# -- a whole training run, as the stages and jobs use it --------------------------------------
def log_training(run: Run, cfg: dict, root: Path, network, callback: TrackingCallback) -> None:
    """After training: config, weights (final and best), history, data hash, model."""
    from mlplab.core import save

    paths = cfg["paths"]
    run.tags({"mlplab.data_hash": data_hash(root / paths["prepared"])})
    import yaml

    run.text(yaml.safe_dump(cfg, sort_keys=False), "config/config.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        final = save(network, Path(tmp) / "final.npz")
        run.artifact(final, "weights")
        if callback.best is not None:
            keep = network.params
            network.params = callback.best
            run.artifact(save(network, Path(tmp) / "best.npz"), "weights")
            network.params = keep
        if run.log_model_enabled:
            from mlplab import data

            splits, schema = data.read(root / paths["prepared"])
            run.model(final, splits["train"].X, schema["feature_names"])
    run.artifact(root / paths["history"], "tables")


def log_evaluation(run: Run, cfg: dict, root: Path, metrics: dict) -> None:
    """After evaluation: ``test/…`` metrics, the figures and the prediction table."""
    run.metrics(test_metrics(metrics), 0)
    run.flush()
    run.artifacts(root / cfg["paths"]["figures"], "figures")
    run.artifact(root / cfg["paths"]["predictions"], "tables")
    run.artifact(root / cfg["paths"]["test_metrics"], "tables")


# -- sweeps -----------------------------------------------------------------------------------
def start_sweep(tracking: dict, name: str, tags: dict[str, str]) -> Run:
    """The parent run of a Hydra multirun, created before any job starts."""
    return Run(tracking, run_name=name, tags={"mlplab.sweep": "true", **tags})


def end_sweep(parent: Run, objective: str, mode: str, failed_jobs: int) -> dict:
    """Summarise the children into the parent (counts, best objective, a table) and close it."""
    mlflow.set_tracking_uri(parent.uri)
    children = mlflow.search_runs(experiment_ids=[parent.experiment_id], output_format="pandas",
                                  filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'")
    n = len(children)
    # a job that failed before its run existed (bad tracking settings) counts too
    failed = max(failed_jobs, int((children["status"] != "FINISHED").sum()) if n else 0)
    summary = {"sweep/jobs": n, "sweep/failed": failed}
    column = f"metrics.{objective}"
    if n and column in children and children[column].notna().any():
        best = children[column].max() if mode == "max" else children[column].min()
        summary[f"sweep/best/{objective}"] = float(best)
        parent.tags({"mlplab.sweep.best_run": children.loc[children[column] == best, "run_id"].iloc[0]})
    parent.metrics(summary, 0)
    parent.tags({"mlplab.sweep.jobs": n, "mlplab.sweep.failed": failed})
    if n:
        keep = ["run_id", "tags.mlflow.runName", "status"] + sorted(
            c for c in children if c.startswith(("params.", "metrics.test/", "metrics.val/")) and
            (not c.startswith("params.") or children[c].nunique(dropna=False) > 1))
        table = children[[c for c in keep if c in children]].sort_values("tags.mlflow.runName")
        parent.text(table.to_csv(index=False), "sweep/children.csv")
        parent.text(table.to_markdown(index=False), "sweep/children.md")
    parent.end("FAILED" if failed else "FINISHED", f"{failed} of {n} jobs failed" if failed else None)
    return summary
