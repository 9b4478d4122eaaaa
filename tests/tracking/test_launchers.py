"""Sweeps on submitit's launchers: the jobs as local processes, and as jobs of a real one-node SLURM
cluster (:mod:`tests.slurm`), one of them diverging, one cancelled with ``scancel``."""

import json
import os
import subprocess
import warnings

import pytest

from tests import slurm
from tests.conftest import BIN, PYTHON, REPO, run
from tests.tracking.conftest import first_child_logs, runs
from tests.tracking.test_sweeps import family

pytestmark = pytest.mark.slow

#: The second rate diverges once training runs: a job that fails at run time, not at validation.
RATES = ("experiment=smoke", "optimiser=sgd", "optimiser.lr=0.1,1e30,0.2")
#: What the SLURM jobs ask for, and what sbatch is told.
RESOURCES = {f"hydra.launcher.partition={slurm.PARTITION}": f"#SBATCH --partition={slurm.PARTITION}",
             "hydra.launcher.timeout_min=10": "#SBATCH --time=10",
             "hydra.launcher.cpus_per_task=1": "#SBATCH --cpus-per-task=1",
             "hydra.launcher.mem_gb=1": "#SBATCH --mem=1GB"}


@pytest.fixture(scope="module")
def cluster():
    reason = slurm.missing()
    if reason:
        pytest.skip(reason)
    with slurm.cluster() as env:
        yield env


def command(tmp_path, launcher: str, *overrides: str) -> list[str]:
    return [PYTHON, str(REPO / "pipelines/train.py"), "-m", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]


def assert_one_diverged(res, uri) -> None:
    assert res.returncode == 1, res.stderr
    parent, children = family(uri)
    assert parent.status == "FAILED" and parent["tags.mlplab.failure"] == "1 of 3 jobs failed or never ran"
    status = dict(zip(children["tags.mlflow.runName"], children.status))
    assert status == {"optimiser.lr=0.1": "FINISHED", "optimiser.lr=1e+30": "FAILED", "optimiser.lr=0.2": "FINISHED"}
    failed = children[children.status == "FAILED"].iloc[0]
    assert failed["tags.mlplab.failure"].startswith("error: training diverged: non-finite")
    assert "   1  failed" in res.stdout and "sweep: 3 jobs, 1 failed" in res.stdout


@pytest.mark.parametrize("launcher", ["submitit_slurm", "submitit_local"])
def test_our_launcher_and_defaults_replace_the_official_ones(launcher):
    from hydra import compose, initialize_config_dir

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Hydra warns when a conf/ file shadows a plugin's node
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", [f"hydra/launcher={launcher}"], return_hydra_config=True).hydra.launcher
    assert cfg._target_.startswith("hydra_plugins.mlplab_submitit.")
    assert cfg.submitit_folder.endswith("/submitit/%j")  # conf/hydra/launcher/<launcher>.yaml


def test_submitit_local_runs_the_jobs_and_records_a_failing_one(store, tmp_path):
    res = run(command(tmp_path, "submitit_local", *RATES), REPO)
    assert_one_diverged(res, store)
    assert len(list((tmp_path / "sweep/submitit").glob("*/*_0_log.out"))) == 3


@pytest.mark.parametrize("launcher, setting, problem", [
    ("submitit_local", "+hydra.launcher.partition=debug", "Unknown argument 'partition' for executor 'local'"),
    ("submitit_slurm", "hydra.launcher.partition=nosuch", "sbatch: error: invalid partition specified: nosuch"),
], ids=["local-key", "slurm-partition"])
def test_a_submission_refused_is_one_line(request, store, tmp_path, launcher, setting, problem):
    env = request.getfixturevalue("cluster") if launcher == "submitit_slurm" else {}
    res = run(command(tmp_path, launcher, "experiment=smoke", "seed=1,2", setting), REPO, env=env)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"mlplab: invalid config: hydra.launcher: the jobs were not submitted: {problem}")
    table = runs(store)  # the parent alone, closed, naming the cause
    assert len(table) == 1 and table.status[0] == "FAILED" and problem in table["tags.mlplab.failure"][0]


def test_submitit_slurm_runs_each_job_as_a_slurm_job(cluster, store, tmp_path):
    res = run(command(tmp_path, "submitit_slurm", *RESOURCES, *RATES), REPO, env=cluster)
    assert_one_diverged(res, store)
    array = next((tmp_path / "sweep/submitit").glob("*/*_submission.sh"))
    assert set(RESOURCES.values()) <= set(array.read_text().splitlines())
    array_id = array.parent.name
    for job in range(3):  # submitit took each job's identity from the environment SLURM gave it
        log = tmp_path / f"sweep/submitit/{array_id}_{job}/{array_id}_{job}_0_log.out"
        assert f"JobEnvironment(job_id={array_id}_{job}," in log.read_text()


def test_scancel_kills_a_running_and_a_waiting_job_and_the_sweep_goes_on(cluster, store, tmp_path):
    """One job at a time: the first trains until cancelled, the second is cancelled while it
    waits (it never ran, so the launcher records it), the third runs after them."""
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], **cluster}
    proc = subprocess.Popen(
        command(tmp_path, "submitit_slurm", "hydra.launcher.array_parallelism=1", "hydra.launcher.mem_gb=1",
                "experiment=smoke", "training.epochs=100000,1,2", "tracking.flush_every_s=0.2"),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not first_child_logs(store):
        proc.kill()
        pytest.fail(f"the first job logged no metrics in time: {slurm.queue(cluster)}")
    array_id = next(j for j, state in slurm.queue(cluster).items() if state == "RUNNING").split("_")[0]
    for job in (1, 0):
        slurm.cancel(f"{array_id}_{job}", cluster)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 1, err
    parent, children = family(store)
    assert parent.status == "FAILED" and parent["tags.mlplab.failure"] == "2 of 3 jobs failed or never ran"
    status = dict(zip(children["tags.mlflow.runName"], children.status))
    assert status == {"training.epochs=100000": "KILLED", "training.epochs=2": "FINISHED"}  # the waiting job: no run
    killed = children[children.status == "KILLED"].iloc[0]
    assert killed["tags.mlplab.failure"] == "interrupted (SIGTERM)"
    results = [json.loads((tmp_path / f"sweep/{job}/result.json").read_text()) for job in range(3)]
    assert [(r["status"], r["error"]) for r in results] == [
        ("killed", "interrupted"),
        ("failed", f"SLURM job {array_id}_1 ended unrecorded (SLURM no longer knows the job and keeps no accounting)"),
        ("ok", None)]
    assert "sweep: 3 jobs, 1 failed, 1 cut short" in out
