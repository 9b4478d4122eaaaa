"""Nothing lost, nothing left RUNNING: real processes, real signals, real SQLite files."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import BIN, PYTHON, REPO, ctrl_c_works, run
from tests.tracking.conftest import runs

pytestmark = pytest.mark.slow
TRAIN = str(REPO / "pipelines/train.py")
LONG = ["data=digits", "training.epochs=100000", "tracking.flush_every_s=0.2", "tracking.log_model=false"]


def start(uri: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen([PYTHON, TRAIN, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=ctrl_c_works)


def wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended before {what}: {proc.stderr.read()}")
        time.sleep(0.1)
    if proc is not None:
        os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"timed out waiting for {what}")


def training(uri: str, n: int = 1):
    """The ids of ``n`` runs that are RUNNING and have logged an epoch, once there are that many."""
    def check():
        table = runs(uri)
        if not len(table) or "metrics.train/loss" not in table:
            return None
        live = table[(table.status == "RUNNING") & table["metrics.train/loss"].notna()]
        if "tags.mlplab.sweep" in live:
            live = live[live["tags.mlplab.sweep"] != "true"]
        return list(live.run_id) if len(live) >= n else None
    return check


def status(uri: str) -> dict[str, tuple[str, str]]:
    table = runs(uri)
    failure = table.get("tags.mlplab.failure", [None] * len(table))
    return {r: (s, f) for r, s, f in zip(table.run_id, table.status, failure)}


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupt_while_the_store_is_created_leaves_no_broken_store(tmp_path, sig, code, said):
    db = tmp_path / "mlflow.db"
    proc = start(f"sqlite:///{db}", "experiment=smoke", f"hydra.run.dir={tmp_path}/run")
    wait_for(lambda: list(tmp_path.glob(".mlflow.db.creating-*")), "the store's creation", proc)
    time.sleep(0.5)  # inside MLflow's migrations
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.strip()) == (code, f"mlplab: interrupted ({said})")
    assert not db.exists() and not list(tmp_path.glob(".mlflow.db.creating-*"))
    again = run([PYTHON, TRAIN, "experiment=smoke", f"hydra.run.dir={tmp_path}/again"], REPO,
                env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    assert again.returncode == 0, again.stderr
    assert status(f"sqlite:///{db}") and all(s == "FINISHED" for s, _ in status(f"sqlite:///{db}").values())


def test_ctrl_c_on_a_run_is_one_line_and_the_run_is_killed(store, tmp_path):
    proc = start(store, *LONG, f"hydra.run.dir={tmp_path}/run")
    [run_id] = wait_for(training(store), "the first epoch", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.strip()) == (130, "mlplab: interrupted (Ctrl-C)")
    assert status(store)[run_id] == ("KILLED", "interrupted (Ctrl-C)")
    epochs = [m.step for m in MlflowClient(store).get_metric_history(run_id, "train/loss")]
    assert epochs and epochs == list(range(1, len(epochs) + 1))  # every epoch once: nothing lost, nothing twice


def test_a_store_that_breaks_mid_run_costs_no_result(store, tmp_path):
    out = tmp_path / "run"
    proc = start(store, "data=digits", "training.epochs=400", "tracking.flush_every_s=0.2",
                 "architecture.hidden_sizes=[128,128]", f"hydra.run.dir={out}")
    [run_id] = wait_for(training(store), "the first epoch", proc)
    with sqlite3.connect(store.removeprefix("sqlite:///"), timeout=30) as db:
        db.execute("ALTER TABLE metrics RENAME TO metrics_gone")  # every later metric write fails
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("mlplab: tracking stopped (writing metrics failed: ")
    assert lines[-1].startswith("mlplab: tracking failed (writing metrics failed: ")
    for path in ("models/model.npz", "metrics/train.json", "metrics/test.json", "plots/predictions.csv"):
        assert (out / path).is_file(), path
    assert len((out / "plots/history.csv").read_text().splitlines()) == 1 + 400
    state, reason = status(store)[run_id]
    assert state == "FAILED" and reason.startswith("tracking: writing metrics failed: ")


def test_a_killed_run_is_closed_by_the_next_one(store, tmp_path):
    proc = start(store, *LONG, f"hydra.run.dir={tmp_path}/run")
    [run_id] = wait_for(training(store), "the first epoch", proc)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert status(store)[run_id][0] == "RUNNING"  # nobody said anything
    logged = len(MlflowClient(store).get_metric_history(run_id, "train/loss"))
    res = run([PYTHON, TRAIN, "experiment=smoke", f"hydra.run.dir={tmp_path}/next"], REPO, env={"MLFLOW_TRACKING_URI": store})
    assert res.returncode == 0, res.stderr
    state, reason = status(store)[run_id]
    assert state == "FAILED"
    assert reason.startswith(f"its process {proc.pid} on {os.uname().nodename} ended without closing the run")
    assert logged >= 1 and len(MlflowClient(store).get_metric_history(run_id, "train/loss")) == logged


def test_a_run_of_a_lost_machine_is_closed_after_its_heartbeat_stops(store, tmp_path):
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("mlplab") or client.get_experiment(client.create_experiment("mlplab"))
    stale = client.create_run(exp.experiment_id, tags={"mlplab.host": "node-7", "mlplab.pid": "4242",
                                                       "mlplab.pid_start": "0", "mlplab.heartbeat": f"{time.time() - 3600:.0f}"})
    fresh = client.create_run(exp.experiment_id, tags={"mlplab.host": "node-8", "mlplab.pid": "4242",
                                                       "mlplab.pid_start": "0", "mlplab.heartbeat": f"{time.time():.0f}"})
    res = run([PYTHON, TRAIN, "experiment=smoke", f"hydra.run.dir={tmp_path}/run"], REPO, env={"MLFLOW_TRACKING_URI": store})
    assert res.returncode == 0, res.stderr
    state, reason = status(store)[stale.info.run_id]
    assert state == "FAILED" and reason.startswith("no heartbeat from node-7 since ")
    assert status(store)[fresh.info.run_id][0] == "RUNNING"  # still beating: left alone


def _joblib_sweep(store, tmp_path):
    return start(store, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *LONG, "seed=0,1,2",
                 f"hydra.sweep.dir={tmp_path}/sweep")


def _family(store):
    table = runs(store)
    parent = table[table["tags.mlplab.sweep"] == "true"].iloc[0]
    children = table[table["tags.mlflow.parentRunId"] == parent.run_id]
    return parent, children


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_parallel_sweep_closes_every_run(store, tmp_path, how):
    proc = _joblib_sweep(store, tmp_path)
    wait_for(training(store, 2), "two jobs training", proc, timeout=180)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    else:
        proc.send_signal(signal.SIGTERM)  # a scheduler's SIGTERM reaches the parent only
    out, err = proc.communicate(timeout=120)
    said = "Ctrl-C" if how == "ctrl-c" else "SIGTERM"
    assert (proc.returncode, err.strip().splitlines()[-1]) == ((130, 143)[how == "sigterm"], f"mlplab: interrupted ({said})")
    parent, children = _family(store)
    assert (parent.status, parent["tags.mlplab.failure"]) == ("KILLED", f"interrupted ({said})")
    assert len(children) == 2 and (children.status == "KILLED").all()
    assert "   2  never ran" in out and "sweep: 3 jobs, 0 failed, 2 cut short, 1 never ran" in out


def test_a_dead_worker_fails_the_sweep_and_its_run(store, tmp_path):
    proc = _joblib_sweep(store, tmp_path)
    ids = wait_for(training(store, 2), "two jobs training", proc, timeout=180)
    victim = MlflowClient(store).get_run(ids[0])
    os.kill(int(victim.data.tags["mlplab.pid"]), signal.SIGKILL)  # as the out-of-memory killer would
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("mlplab: error: TerminatedWorkerError: ")
    parent, children = _family(store)
    assert parent.status == "FAILED" and parent["tags.mlplab.failure"] == "a job's worker process died"
    assert not (children.status == "RUNNING").any()
    assert status(store)[ids[0]][0] == "FAILED"
    assert "never ran" in out
