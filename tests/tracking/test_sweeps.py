"""Hydra sweeps as parent and child runs; interrupted runs; parallel jobs into a fresh store."""

import os
import signal
import subprocess
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import BIN, PYTHON, REPO, ctrl_c_works, run
from tests.tracking.conftest import first_child_logs, runs

pytestmark = pytest.mark.slow


def sweep(tmp_path, *overrides):
    return run([PYTHON, str(REPO / "pipelines/train.py"), "-m", "experiment=smoke",
                f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides], REPO)


def family(uri):
    table = runs(uri)
    parents = table[table["tags.mlplab.sweep"] == "true"]
    assert len(parents) == 1
    parent = parents.iloc[0]
    children = table[table["tags.mlflow.parentRunId"] == parent.run_id]
    return parent, children


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweep_is_one_parent_with_a_child_per_job(store, tmp_path, launcher):
    res = sweep(tmp_path, "nonlinearity=sigmoid,relu", "optimiser=sgd,adam", f"hydra/launcher={launcher}")
    assert res.returncode == 0, res.stderr
    parent, children = family(store)
    assert parent["tags.mlflow.runName"] == "experiment=smoke nonlinearity=sigmoid,relu optimiser=sgd,adam"
    assert parent.status == "FINISHED"
    assert sorted(children["tags.mlflow.runName"]) == sorted(  # a child is named by what the sweep varies
        f"nonlinearity={n} optimiser={o}" for n in ("sigmoid", "relu") for o in ("sgd", "adam"))
    assert (children.status == "FINISHED").all()
    assert parent["metrics.sweep/jobs"] == 4 and parent["metrics.sweep/failed"] == 0
    assert parent["metrics.sweep/best/test/accuracy"] == children["metrics.test/accuracy"].max()
    client = MlflowClient(store)
    table = client.download_artifacts(parent.run_id, "sweep/children.csv", str(tmp_path / "dl"))
    lines = open(table).read().splitlines()
    assert len(lines) == 5 and "params.nonlinearity.hidden" in lines[0] and "metrics.test/accuracy" in lines[0]


def test_a_failing_job_fails_the_parent_not_its_siblings(store, tmp_path):
    res = sweep(tmp_path, "optimiser=sgd", "optimiser.lr=0.1,-1,0.2")
    assert res.returncode == 1
    parent, children = family(store)
    assert parent.status == "FAILED" and parent["tags.mlplab.failure"] == "1 of 3 jobs failed or never ran"
    status = dict(zip(children["tags.mlflow.runName"], children.status))
    assert status == {"optimiser.lr=0.1": "FINISHED",  # lr=-1 is refused before
                      "optimiser.lr=0.2": "FINISHED"}  # its run would start
    assert "invalid config: optimiser.lr: must be a number > 0, got -1" in res.stdout


def test_eight_parallel_jobs_into_a_fresh_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"  # not migrated: the parent creates it before the jobs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    res = sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3,4,5,6,7",
                "tracking.log_model=false")
    assert res.returncode == 0, res.stderr
    parent, children = family(uri)
    assert len(children) == 8 and (children.status == "FINISHED").all()
    client = MlflowClient(uri)
    for run_id in children.run_id:
        assert len(client.get_metric_history(run_id, "train/loss")) == 3
        assert len(client.get_metric_history(run_id, "grad_norm/W2")) == 3
        assert len(client.get_metric_history(run_id, "step/loss")) == 7  # 3 epochs × 5 steps, every 2nd


def test_a_terminated_run_is_killed_and_keeps_its_metrics(store, tmp_path):
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(
        [PYTHON, str(REPO / "pipelines/train.py"), "data=digits", "training.epochs=100000",
         "tracking.flush_every_s=0.2", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(store)
    deadline = time.monotonic() + 120
    run_id = None
    while time.monotonic() < deadline:
        table = runs(store)
        if len(table) and client.get_metric_history(table.run_id[0], "train/loss"):
            run_id = table.run_id[0]
            break
        time.sleep(0.5)
    assert run_id, "no metrics were logged in time"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.strip()) == (143, "mlplab: interrupted (SIGTERM)")
    r = client.get_run(run_id)
    assert r.info.status == "KILLED"
    assert r.data.tags["mlplab.failure"] == "interrupted (SIGTERM)"
    assert len(client.get_metric_history(run_id, "train/loss")) >= 1


def test_an_interrupted_sweep_kills_the_parent_and_the_running_child(store, tmp_path):
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(
        [PYTHON, str(REPO / "pipelines/train.py"), "-m", "data=digits", "training.epochs=100000",
         "tracking.flush_every_s=0.2", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_works)
    if not first_child_logs(store):
        proc.kill()
        pytest.fail("the first job logged no metrics in time")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.strip().splitlines()[-1]) == (130, "mlplab: interrupted (Ctrl-C)")
    parent, children = family(store)
    assert parent.status == "KILLED" and parent["tags.mlplab.failure"] == "interrupted (Ctrl-C)"
    assert children.status.tolist() == ["KILLED"]  # the second job never started
    assert "   1  never ran" in out and "1 cut short, 1 never ran" in out
