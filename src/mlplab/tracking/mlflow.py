"""MLflow tracking: the only module that talks to MLflow.

One run per training run, written through ``MlflowClient`` (no global "active run", so
in-process Hydra jobs cannot trip over each other). Metrics are buffered and written with
``log_batch`` at most every ``tracking.flush_every_s`` seconds and when the run ends; each write
also refreshes the run's heartbeat, so a SIGKILL loses at most one flush interval of metrics.

Every run is tagged with its host, process id and heartbeat. Opening a store closes, as FAILED
with the reason, the RUNNING runs whose process is gone (same host) or whose heartbeat is older
than ``tracking.stale_after_s`` (another host): a run killed without a word does not stay
RUNNING. A fresh SQLite store is built in a temporary file and renamed into place, so an
interrupted creation never leaves a half-built store behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # our summary line says where the run is

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from filelock import FileLock  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402

from mlplab.tracking import Tracker  # noqa: E402
from mlplab.tracking.store import StoreError, needs_creation, sqlite_path  # noqa: E402

# Creating a store prints several INFO lines that would bury our one-line messages on stderr.
for _logger in ("mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.pyfunc", "mlflow.models",
                "mlflow.tracking._model_registry.client"):
    logging.getLogger(_logger).setLevel(logging.WARNING)
# A server restarting: each retry would be a multi-line warning; a write that fails for good is reported by us.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
# A failed write is reported once, by the tracker, in one line; MLflow would log it again at length.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

PARENT_TAG = "mlflow.parentRunId"
FAILURE_TAG = "mlplab.failure"
HOST_TAG, PID_TAG, PID_START_TAG, HEARTBEAT_TAG = "mlplab.host", "mlplab.pid", "mlplab.pid_start", "mlplab.heartbeat"
PACKAGE = Path(__file__).resolve().parents[1]
#: Metric points buffered before a write even inside ``tracking.flush_every_s``: SQLite writes about
#: 4,000 a second here, so an interrupted run's last write stays around a second.
MAX_BUFFER = 4000
#: The alias of the best registered version of a model (``tracking.register``).
CHAMPION = "champion"
#: Where ``make ui`` serves a local store.
UI_ADDRESS = "http://127.0.0.1:5000"


# -- the store --------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def open_store(uri: str, key: str) -> MlflowClient:
    """A client of a working store; a new SQLite store is created first, atomically."""
    path = sqlite_path(uri)
    try:
        if path is not None and needs_creation(path):
            create_sqlite(path)
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)
    except StoreError:
        raise
    except Exception as exc:  # MLflow and its database drivers raise many kinds
        raise StoreError(f"{key}: cannot open the tracking store {uri} ({_first_line(exc)})") from None
    return client


def create_sqlite(path: Path) -> None:
    """Build MLflow's tables in a temporary file beside ``path`` and rename it into place, under a
    lock: concurrent first runs wait for one creation, and an interrupted one leaves no store."""
    with FileLock(f"{path}.lock"):
        if not needs_creation(path):
            return  # another process created it while this one waited
        for stale in path.parent.glob(f".{path.name}.creating-*"):  # left by a killed creation
            if not psutil.pid_exists(int(stale.name.rsplit("-", 1)[1])):
                stale.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            # An interrupt raised inside SQLAlchemy can be swallowed (in a garbage-collection callback)
            # or come out as another error; held until the migrations end, it is raised here, before
            # the rename: the temporary file is removed and the store never appears.
            with _uninterrupted():
                SqlAlchemyStore(f"sqlite:///{tmp}", str(path.parent / "mlartifacts")).engine.dispose()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def artifact_location(uri: str, experiment: str) -> str | None:
    """Beside a SQLite store, in ``mlartifacts/<experiment>``; MLflow's own default is relative
    to whatever folder the first run happened to start in."""
    path = sqlite_path(uri)
    return None if path is None else str(path.parent / "mlartifacts" / experiment)


#: MLflow 3 opens an experiment of this kind on its runs table, not on the GenAI overview.
KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri, name), tags=KIND)
        except mlflow.exceptions.MlflowException:  # created by a parallel job meanwhile
            exp = client.get_experiment_by_name(name)
    for k, v in KIND.items():
        if exp.tags.get(k) != v:
            client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def close_stale_runs(client: MlflowClient, experiment: str, stale_after_s: float) -> list[str]:
    """Mark FAILED, with the reason, the RUNNING runs nobody will ever close; return their ids."""
    here, now, closed = socket.gethostname(), time.time(), []
    for run in client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if HOST_TAG not in tags:
            continue  # not ours to judge
        beat = float(tags.get(HEARTBEAT_TAG, run.info.start_time / 1000))
        if tags[HOST_TAG] == here:
            start = _process_start(int(tags[PID_TAG]))
            if start is not None and abs(start - float(tags[PID_START_TAG])) < 1.0:
                continue
            reason = (f"its process {tags[PID_TAG]} on {here} ended without closing the run (killed, out of "
                      f"memory, crashed, or its store was out of reach); last heartbeat {_when(beat)}")
        elif now - beat > stale_after_s:
            reason = (f"no heartbeat from {tags[HOST_TAG]} since {_when(beat)} (more than tracking.stale_after_s = "
                      f"{stale_after_s:g} s): the machine or its process was lost")
        else:
            continue
        client.set_tag(run.info.run_id, FAILURE_TAG, reason)
        client.set_terminated(run.info.run_id, "FAILED", end_time=int(beat * 1000))
        closed.append(run.info.run_id)
    return closed


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
                handler = self.saved[self.pending]
                if callable(handler):
                    handler(self.pending, None)  # the entry point's handler raises the interrupt
                elif handler == signal.SIG_DFL:
                    raise KeyboardInterrupt
        return False


def signature(trained, example):
    """The raw columns the model reads (numbers as doubles, so whole numbers and gaps both pass),
    what it returns, and its one parameter, ``probabilities``."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inferred = {c.name: c for c in infer_signature(example).inputs.inputs}
    inputs = Schema([ColSpec("double", c["name"]) if c["kind"] == "number" else inferred[c["name"]]
                     for c in trained.preprocessing.columns])
    outputs = infer_signature(example, trained.predict(example)).outputs
    return ModelSignature(inputs, outputs, ParamSchema([ParamSpec("probabilities", "boolean", False)]))


def requirements() -> dict[str, str]:
    """What a served model imports, pinned to the versions it was trained with."""
    import pandas as pd

    return {"mlflow": mlflow.__version__, "numpy": np.__version__, "pandas": pd.__version__}


def download_model(uri: str, root: Path) -> Path:
    """The ``.npz`` of the MLflow model at ``uri`` (``runs:/…``, ``models:/…``), downloaded from the
    store of ``MLFLOW_TRACKING_URI``, else the project's; one line naming the URI if it cannot be."""
    from mlplab.tracking.store import check, resolve_uri

    store, key = resolve_uri(None, root)
    check(store, key)
    mlflow.set_tracking_uri(store)
    try:
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tempfile.mkdtemp(prefix="mlplab-model-")))
    except Exception as exc:  # MLflow raises many kinds for unknown runs, names and aliases
        raise StoreError(f"{uri}: no such model in {store} ({_first_line(exc)})") from None
    found = sorted((folder / "artifacts").glob("*.npz"))
    if not found:
        raise StoreError(f"{uri}: not an mlplab model (no .npz among its artifacts)")
    return found[0]


# -- a run ------------------------------------------------------------------------------------
class MlflowTracker(Tracker):
    """One MLflow run in the configured store and experiment."""

    def __init__(self, settings: dict, uri: str, key: str = "tracking.uri"):
        self.uri, self.settings = uri, settings
        self.client = open_store(uri, key)
        try:
            self.experiment_id = experiment_id(self.client, settings["experiment"])
            self.closed_stale = close_stale_runs(self.client, self.experiment_id, settings["stale_after_s"])
        except Exception as exc:
            raise StoreError(f"{key}: cannot use the tracking store {uri} ({_first_line(exc)})") from None
        self.key = key
        self._buffer: list[Metric] = []
        self._last_flush = time.monotonic()
        self.ended = False

    # the seam's promise: a store failure while the run goes on never stops it
    @contextmanager
    def _guard(self, what: str):
        if self.failure is not None or self.run_id is None:
            yield False
            return
        try:
            with _uninterrupted():
                yield True
        except Exception as exc:
            self.failure = f"{what} failed: {_first_line(exc)}"
            print(f"mlplab: tracking stopped ({self.failure}); training goes on and its outputs are written",
                  file=sys.stderr, flush=True)

    def _heartbeat(self) -> list[RunTag]:
        return [RunTag(HEARTBEAT_TAG, f"{time.time():.0f}")]

    def start(self, name, tags, *, parent_id=None, resume_id=None) -> None:
        me = psutil.Process()
        own = {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), PID_START_TAG: f"{me.create_time():.3f}",
               HEARTBEAT_TAG: f"{time.time():.0f}"}
        try:
            with _uninterrupted():
                if resume_id is None:
                    tags = {**tags, **own, **({PARENT_TAG: parent_id} if parent_id else {})}
                    run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
                else:
                    run = self.client.get_run(resume_id)
                    self.client.update_run(resume_id, status="RUNNING")
                    new = {k: v for k, v in tags.items() if k not in run.data.tags}  # keep the start's lineage
                    self.client.log_batch(resume_id, tags=[RunTag(k, v) for k, v in {**new, **own}.items()])
        except Exception as exc:
            raise StoreError(f"{self.key}: cannot start a run in {self.uri} ({_first_line(exc)})") from None
        self.run_id = run.info.run_id

    def log_config(self, cfg: dict) -> None:
        with self._guard("logging the config") as ok:
            if ok:
                params = [Param(k, v[:6000]) for k, v in flatten(cfg).items()]
                self.client.log_batch(self.run_id, params=params)
                import yaml

                self.client.log_text(self.run_id, yaml.safe_dump(cfg, sort_keys=False), "config/config.yaml")

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(v))
        if time.monotonic() - self._last_flush >= self.settings["flush_every_s"] or len(self._buffer) >= MAX_BUFFER:
            self.flush()

    def flush(self) -> None:
        batch, self._buffer = self._buffer, []  # taken first: an interrupt held during the write must not resend it
        self._last_flush = time.monotonic()
        with self._guard("writing metrics") as ok:
            if ok:
                self.client.log_batch(self.run_id, metrics=batch, tags=self._heartbeat())  # chunks by itself

    def set_tags(self, tags: dict[str, str]) -> None:
        with self._guard("writing tags") as ok:
            if ok:
                self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, folder: str | None = None, run_id: str | None = None) -> None:
        with self._guard(f"logging {Path(path).name}") as ok:
            if ok:
                if Path(path).is_dir():
                    self.client.log_artifacts(run_id or self.run_id, str(path), folder)
                else:
                    self.client.log_artifact(run_id or self.run_id, str(path), folder)

    def log_text(self, text: str, name: str) -> None:
        with self._guard(f"logging {name}") as ok:
            if ok:
                self.client.log_text(self.run_id, text, name)

    def log_model(self, model_file: Path, example, run_id: str | None = None) -> None:
        """The model (:class:`mlplab.model.Model`) as an MLflow 3 logged model named ``model``,
        linked to the run (``runs:/<id>/model``, ``mlflow.search_logged_models``), with a signature
        of the raw columns and ``example`` (raw rows) as its input example.

        Logged "from code" (``mlflow_model.py``) with the ``.npz`` as its artefact: nothing is
        pickled; the ``mlplab`` package travels in the model's ``code`` folder.
        """
        if not self.settings["log_model"]:
            return
        with self._guard("logging the model") as ok:
            if ok:
                from mlflow.models import Model

                from mlplab.model import Model as Trained

                trained, run_id = Trained.load(model_file), run_id or self.run_id
                logged = self.client.create_logged_model(  # in this run's experiment, whatever is "active"
                    self.experiment_id, name="model", source_run_id=run_id,
                    params=self.client.get_run(run_id).data.params)
                mlflow.set_tracking_uri(self.uri)  # where Model.log writes
                Model.log(
                    artifact_path=None, name="model", flavor=mlflow.pyfunc, run_id=run_id, model_id=logged.model_id,
                    python_model=str(PACKAGE / "mlflow_model.py"), artifacts={"model": str(model_file)},
                    code_paths=[str(PACKAGE)], signature=signature(trained, example), input_example=example,
                    pip_requirements=[f"{p}=={v}" for p, v in requirements().items()],
                )

    def register(self, name: str, objective: str, mode: str, run_id: str | None = None) -> str | None:
        self.flush()  # this run's objective, if it is the one registered, must be in the store
        run_id = run_id or self.run_id
        with self._guard(f"registering the model as {name!r}") as ok:
            if not ok:
                return None
            found = self.client.search_logged_models([self.experiment_id], filter_string=f"source_run_id = '{run_id}'",
                                                     max_results=1)
            if not found:
                return f"nothing registered: run {run_id} logged no model (tracking.log_model is false?)"
            model_id = found[0].model_id
            try:
                self.client.create_registered_model(name)
            except mlflow.exceptions.MlflowException:
                pass  # it exists (or a parallel job just created it)
            version = self.client.create_model_version(name, f"models:/{model_id}", run_id=run_id, model_id=model_id)
            value = self.client.get_run(run_id).data.metrics.get(objective)
            try:
                champion = self.client.get_model_version_by_alias(name, CHAMPION)
                held = self.client.get_run(champion.run_id).data.metrics.get(objective)
            except mlflow.exceptions.MlflowException:
                champion = held = None
            better = (held is None or value is not None and (value > held if mode == "max" else value < held))
            where = f"models:/{name}/{version.version}"
            if not better:
                return (f"registered {where}; {objective} {value:.4g} does not beat the champion's {held:.4g}, which "
                        f"stays models:/{name}@{CHAMPION} (version {champion.version})")
            self.client.set_registered_model_alias(name, CHAMPION, version.version)
            return f"registered {where} as models:/{name}@{CHAMPION}" + (f" ({objective} {value:.4g})" if value is not None else "")

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        if self.ended or self.run_id is None:
            return
        self.ended = True
        self.flush()
        if self.failure is not None:
            status, reason = "FAILED", "; ".join(filter(None, [f"tracking: {self.failure}", reason]))
        try:
            with _uninterrupted():
                if reason:
                    self.client.set_tag(self.run_id, FAILURE_TAG, reason[:5000])
                self.client.set_terminated(self.run_id, status)
        except Exception as exc:
            self.failure = self.failure or f"closing the run failed: {_first_line(exc)}"

    @property
    def url(self) -> str | None:
        """The run's page in the MLflow UI: the tracking server's, or ``make ui``'s for a SQLite store."""
        if self.run_id is None:
            return None
        base = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else UI_ADDRESS
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    # -- a sweep's parent ------------------------------------------------------------------
    def children(self):
        """The child runs of this (parent) run, as MLflow's runs table (a pandas DataFrame)."""
        mlflow.set_tracking_uri(self.uri)
        return mlflow.search_runs(experiment_ids=[self.experiment_id], output_format="pandas",
                                  filter_string=f"tags.`{PARENT_TAG}` = '{self.run_id}'")

    def close_children(self, status: str, reason: str) -> int:
        """Close the children still RUNNING (their process was stopped or lost); return how many."""
        n = 0
        with self._guard("closing the sweep's runs") as ok:
            if ok:
                for run in self.client.search_runs(
                        [self.experiment_id], max_results=10000,
                        filter_string=f"tags.`{PARENT_TAG}` = '{self.run_id}' and attributes.status = 'RUNNING'"):
                    self.client.set_tag(run.info.run_id, FAILURE_TAG, reason)
                    self.client.set_terminated(run.info.run_id, status)
                    n += 1
        return n
