"""Hydra multirun from the shell, as a user types it: every job trains and evaluates."""

import json

import pytest

from mlplab.sweep import RESULT_FILE
from tests.conftest import PYTHON, REPO, run

pytestmark = pytest.mark.slow


def sweep(tmp_path, *overrides):
    res = run([PYTHON, str(REPO / "pipelines/train.py"), "-m", "experiment=smoke",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides], tmp_path)
    results = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "sweep").glob(f"*/{RESULT_FILE}")}
    return res, results


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_six_job_sweep(tmp_path, launcher):
    res, results = sweep(tmp_path, "nonlinearity=sigmoid,tanh,relu", "optimiser=sgd,adam", f"hydra/launcher={launcher}")
    assert res.returncode == 0, res.stderr
    assert sorted(results) == [str(i) for i in range(6)]
    assert all(r["status"] == "ok" and 0 <= r["metrics"]["test/accuracy"] <= 1 for r in results.values())
    assert {tuple(sorted(r["overrides"])) for r in results.values()} == {
        tuple(sorted(["experiment=smoke", f"nonlinearity={n}", f"optimiser={o}"]))
        for n in ("sigmoid", "tanh", "relu") for o in ("sgd", "adam")}
    assert "sweep: 6 jobs, 0 failed" in res.stdout
    for num in results:  # each job wrote its own model and figures
        assert (tmp_path / "sweep" / num / "models/model.npz").is_file()


def test_sweep_over_data(tmp_path):
    res, results = sweep(tmp_path, "data=moons,circles,spirals", "data.n_samples=90")
    assert res.returncode == 0, res.stderr
    assert [[o for o in results[str(i)]["overrides"] if o.startswith("data=")] for i in range(3)] == [
        ["data=moons"], ["data=circles"], ["data=spirals"]]


def test_failing_and_diverging_jobs_do_not_stop_the_sweep(tmp_path):
    res, results = sweep(tmp_path, "optimiser=sgd", "optimiser.lr=0.1,-1,1e30")
    assert res.returncode == 1
    assert [results[str(i)]["status"] for i in range(3)] == ["ok", "failed", "failed"]
    assert results["1"]["error"] == "invalid config: optimiser.lr: must be a number > 0, got -1"
    assert "training diverged: non-finite" in results["2"]["error"]
    assert "sweep: 3 jobs, 2 failed" in res.stdout


def test_a_sweep_over_seeds_reports_mean_and_spread(tmp_path):
    res, results = sweep(tmp_path, "seed=0,1", "nonlinearity=relu,tanh", "tracking=off")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    at = lines.index("test/accuracy across seeds (mean ± sd, n):")
    groups = lines[at + 1:at + 3]
    import numpy as np

    for sigma in ("relu", "tanh"):
        [line] = [g for g in groups if g.endswith(f"experiment=smoke nonlinearity={sigma} tracking=off")]
        scores = [r["metrics"]["test/accuracy"] for r in results.values() if f"nonlinearity={sigma}" in r["overrides"]]
        assert line.strip().startswith(f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}  n=2")
    means = [float(g.split()[0]) for g in groups]
    assert means == sorted(means, reverse=True)  # best configuration first
