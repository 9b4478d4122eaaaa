"""The tracking server of ``make server``: real PostgreSQL, a real ``mlflow server``, real runs of
every kind against it, its faults, and artefacts kept on S3 (moto's server). Each service is
started here and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import BIN, PYTHON, copy_repo, ctrl_c_works, run
from tests.services import free_port, make, moto_s3, tracking_server

pytestmark = pytest.mark.slow

SMOKE = ["experiment=smoke", "training.epochs=2"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("server") / "repo")


@pytest.fixture(scope="module")
def server(project):
    with tracking_server(project) as uri:
        yield uri


def _where(project: Path, uri: str):
    """The :class:`~mlplab.server.Server` that ``make server`` started at ``uri``."""
    from mlplab.server import Server

    return Server(project, int(uri.rsplit(":", 1)[1]))


def _train(project: Path, uri: str | None, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {"MLFLOW_TRACKING_URI": uri or ""}
    return run([PYTHON, "pipelines/train.py", *args], project, env=env, timeout=timeout)


def _started(project: Path, uri: str, *args: str) -> subprocess.Popen:
    """``python pipelines/train.py *args`` against ``uri``, left running."""
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "MLFLOW_TRACKING_URI": uri, "MPLBACKEND": "Agg"}
    return subprocess.Popen([PYTHON, "pipelines/train.py", *args], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_works)


def _runs(uri: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(experiments, max_results=1000)


def test_make_server_prints_the_address_and_keeps_its_data_out_of_git(project, server):
    where = _where(project, server)
    again = make(project, "server", where.port)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"export MLFLOW_TRACKING_URI={server}" in again.stdout
    assert (where.pgdata / "PG_VERSION").is_file() and where.postgres_running()
    assert run(["git", "status", "--porcelain"], project).stdout == ""  # server/ is git-ignored
    with closing(where.connect()) as db, db.cursor() as cursor:  # the runs are in PostgreSQL, not beside the server
        cursor.execute("SELECT count(*) FROM experiments")
        assert cursor.fetchone()[0] >= 1


def test_every_way_of_running_lands_in_the_server(project, server):
    single = _train(project, server, *SMOKE, "tracking.register=smk")
    assert single.returncode == 0, single.stderr
    assert "registered models:/smk/1 as models:/smk@champion" in single.stdout + single.stderr
    by_key = _train(project, None, *SMOKE, f"tracking.uri={server}")
    assert by_key.returncode == 0, by_key.stderr
    sweep = _train(project, server, "-m", *SMOKE, "seed=1,2")
    assert sweep.returncode == 0, sweep.stderr
    search = _train(project, server, "-m", *SMOKE, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                    "optimiser.lr=interval(0.01,0.1)")
    assert search.returncode == 0, search.stderr
    dvc = run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "training.epochs=2"], project,
              env={"MLFLOW_TRACKING_URI": server}, timeout=600)
    assert dvc.returncode == 0, dvc.stderr
    predict = run([PYTHON, "-m", "mlplab", "predict", "models:/smk@champion", "data/prepared/test_rows.csv"],
                  project, env={"MLFLOW_TRACKING_URI": server})
    assert predict.returncode == 0 and predict.stdout.startswith("prediction\n"), predict.stderr

    client, runs = _runs(server)
    assert {r.info.status for r in runs} == {"FINISHED"}
    parents = [r for r in runs if r.data.tags.get("mlplab.sweep") == "true"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 2 and len(children) == 4
    assert any(r.data.tags.get("mlplab.dvc_exp_name") for r in runs)
    assert all("test/accuracy" in r.data.metrics for r in children)
    weights = client.download_artifacts(children[0].info.run_id, "weights/final.npz")
    assert Path(weights).stat().st_size > 0  # artefacts go through the server's proxy


def test_postgres_down_is_one_line_at_start_up(project, server):
    where = _where(project, server)
    where.stop_postgres()
    try:
        for uri, expected in ((server, "is its database running? (make server starts both)"),
                              (where.backend_uri, "cannot connect to PostgreSQL")):
            start = time.monotonic()
            res = _train(project, uri, *SMOKE)
            assert res.returncode == 2, res.stderr
            assert len(res.stderr.strip().splitlines()) == 1 and expected in res.stderr, res.stderr
            assert time.monotonic() - start < 30
    finally:
        back = make(project, "server", where.port)
    assert back.returncode == 0 and "restarted PostgreSQL; started MLflow" in back.stdout
    res = _train(project, server, *SMOKE)  # make server returned once the server reads its store again
    assert res.returncode == 0, res.stderr


def test_a_server_restarted_mid_sweep_loses_no_run(project, server):
    """The server goes away while the second job trains and comes back ~10 s later: every job's run
    is there and FINISHED, with all its metrics."""
    where = _where(project, server)
    client, before = _runs(server)
    sweep = _started(project, server, "-m", "experiment=smoke", "training.epochs=150", "tracking.flush_every_s=0.5",
                     "seed=1,2,3,4")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the second child runs
            _, now = _runs(server)
            if sum("mlflow.parentRunId" in r.data.tags for r in now) - sum(
                    "mlflow.parentRunId" in r.data.tags for r in before) >= 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the sweep's second job never started")
        # a restart of the MLflow server alone (PostgreSQL stays): server-stop would stop both
        pid = where.pid()
        os.killpg(pid, signal.SIGTERM)
        while where.pid() == pid:
            time.sleep(0.1)
        assert make(project, "server", where.port).returncode == 0
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    _, after = _runs(server)
    new = [r for r in after if r.info.run_id not in {b.info.run_id for b in before}]
    assert len(new) == 5, (out, err)  # the parent and 4 children: none lost
    # the client's retries (2 + 4 + 8 + 16 s) outlast a restart (~10 s here): every run carried on,
    # and the job in flight lost no epoch's metrics
    assert [r.info.status for r in new] == ["FINISHED"] * 5, [(r.info.status, r.data.tags.get("mlplab.failure"))
                                                                for r in new]
    for child in (r for r in new if "mlflow.parentRunId" in r.data.tags):
        assert len(client.get_metric_history(child.info.run_id, "train/loss")) == 150
    assert sweep.returncode == 0, err


def test_artefacts_on_s3_are_read_back_byte_for_byte(project, server, tmp_path):
    with moto_s3(tmp_path / "moto.log", buckets=("mlplab",)) as (endpoint, s3_env):
        with tracking_server(project, s3_env, ARTIFACTS="s3://mlplab/mlflow") as uri:
            res = _train(project, uri, *SMOKE, "hydra.run.dir=outputs/s3-run")
            assert res.returncode == 0, res.stderr
            client, runs = _runs(uri)
            newest = max(runs, key=lambda r: r.info.start_time)
            local = project / "outputs/s3-run/models/model.npz"
            copy = client.download_artifacts(newest.info.run_id, "weights/final.npz", str(tmp_path))
            assert Path(copy).read_bytes() == local.read_bytes()
            import boto3

            s3 = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in s3_env.items()
                                                               if k.startswith("AWS_") and "REGION" not in k})
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlplab", Prefix="mlflow/")["Contents"]]
            assert any(k.endswith(f"{newest.info.run_id}/artifacts/weights/final.npz") for k in keys)


def test_a_taken_port_and_a_stopped_server_are_one_line(project, server, tmp_path):
    import http.server
    import threading


    other = http.server.HTTPServer(("127.0.0.1", free_port()), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        res = make(project, "server", other.server_address[1])
    finally:
        other.shutdown()
    assert res.returncode == 2 and res.stdout == ""
    assert [line for line in res.stderr.splitlines() if not line.startswith("make")] == [res.stderr.splitlines()[0]]
    assert res.stderr.startswith(f"mlplab server: error: port {other.server_address[1]} is taken by another program")
    for port in ("0", "99999", "abc"):
        res = make(project, "server", port)
        assert res.returncode == 2 and res.stderr.splitlines()[0] == (
            f"python -m mlplab server: error: argument --port: must be a number from 1 to 65535, got '{port}' "
            "(see --help)")
    idle = make(project, "server-stop", free_port())
    assert idle.returncode == 0 and "no MLflow server of this project runs on port" in idle.stdout


def test_a_run_whose_server_stays_away_keeps_its_outputs_and_is_closed_failed(project, server):
    """The server goes away for longer than the client's retries: training finishes and writes its
    outputs, the command says so (exit 1), and the next run against the server closes the run FAILED."""
    where = _where(project, server)
    job = _started(project, server, "experiment=smoke", "training.epochs=400", "tracking.flush_every_s=0.5",
                   "hydra.run.dir=outputs/away")
    try:
        deadline = time.monotonic() + 120
        while not list(project.glob("outputs/away/**/train.log")) or not _running(server):
            assert time.monotonic() < deadline and job.poll() is None, "the run never started"
            time.sleep(0.3)
        run_id = _running(server)[0]
        os.killpg(where.pid(), signal.SIGTERM)  # away for good, until the job has ended
        out, err = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 1 and "tracking failed" in err and "the outputs are written" in err, err
    assert (project / "outputs/away/models/model.npz").is_file()
    assert make(project, "server", where.port).returncode == 0
    assert _train(project, server, *SMOKE).returncode == 0  # opening the store closes what nobody will
    client, _ = _runs(server)
    closed = client.get_run(run_id)
    assert closed.info.status == "FAILED" and "its store was out of reach" in closed.data.tags["mlplab.failure"]


def _running(uri: str) -> list[str]:
    return [r.info.run_id for r in _runs(uri)[1] if r.info.status == "RUNNING"]
