"""`dvc repro` and `dvc exp run` in a fresh copy of the repository: caching is exact."""

import json
import re
import time

import pytest
import yaml

from tests.conftest import run
from tests.tracking.conftest import runs

pytestmark = pytest.mark.slow


def dvc(repo, *args, ok=True, env=None):
    res = run(["dvc", *args], repo, env=env)
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def set_param(repo, section, key, value):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_caches_exactly(repo_copy):
    repo = repo_copy
    # a clone has no DVC cache: prepare and train run; evaluate runs too unless the retrained
    # model equals the one in dvc.lock, whose evaluation outputs are committed
    assert ran(dvc(repo, "repro").stdout)[:2] == ["prepare", "train"]
    assert "up to date" in dvc(repo, "status").stdout
    assert ran(dvc(repo, "repro").stdout) == []  # a no-op repro runs nothing

    set_param(repo, "optimiser", "lr", 0.002)
    status = dvc(repo, "status").stdout
    assert "train" in status and "prepare" not in status
    assert ran(dvc(repo, "repro").stdout) == ["train", "evaluate"]

    set_param(repo, "data", "test_size", 0.25)
    assert ran(dvc(repo, "repro").stdout) == ["prepare", "train", "evaluate"]

    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    test = metrics[""]["data"]["metrics/test.json"]["data"]  # "" is the workspace
    assert test["test/accuracy"] > 0.9


def test_forced_repro_twice_gives_identical_files(repo_copy):
    repo = repo_copy
    outputs = ["models/model.npz", "metrics/train.json", "metrics/test.json", "plots/history.csv",
               "plots/predictions.csv", "data/prepared/train.npz"]
    dvc(repo, "repro", "--force")
    first = {p: (repo / p).read_bytes() for p in outputs}
    dvc(repo, "repro", "--force")
    assert {p: (repo / p).read_bytes() for p in outputs} == first


def test_exp_run_composes_overrides_with_hydra(repo_copy):
    repo = repo_copy
    res = dvc(repo, "exp", "run", "-S", "optimiser=sgd", "-S", "optimiser.lr=0.05", "-S", "training.epochs=2")
    assert ran(res.stdout)[-2:] == ["train", "evaluate"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["optimiser"] == {"name": "sgd", "lr": 0.05, "weight_decay": 0.0, "clip_norm": None,
                                   "schedule": {"name": "constant"}}
    assert json.loads((repo / "metrics/train.json").read_text())["train/epochs"] == 2
    name = re.search(r"Ran experiment\(s\): (\S+)", res.stdout).group(1)
    assert name in dvc(repo, "exp", "list", "--name-only").stdout.split()


def test_plots_and_metrics_are_declared(repo_copy, tmp_path):
    repo = repo_copy
    dvc(repo, "repro")
    out = tmp_path / "plots"
    dvc(repo, "plots", "show", "-o", str(out))
    html = (out / "index.html").read_text()
    for title in ("Loss per epoch", "Confusion matrix (test)"):
        assert title in html
    assert {p.name for p in (out / "static").iterdir()} >= {
        "workspace_plots_figures_loss.png", "workspace_plots_figures_grad_norms.png",
        "workspace_plots_figures_confusion_matrix.png"}


def test_queued_sweep_runs_every_experiment(repo_copy):
    repo, default_store = repo_copy, {"MLFLOW_TRACKING_URI": ""}
    dvc(repo, "exp", "run", "--queue", "-S", "nonlinearity=sigmoid,tanh", "-S", "training.epochs=2", env=default_store)
    dvc(repo, "queue", "start", env=default_store)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status and "Success" in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = [e for entry in shown for e in entry.get("experiments") or []]
    hidden = [e["revs"][0]["data"]["params"]["params.yaml"]["data"]["nonlinearity"]["hidden"] for e in experiments]
    assert sorted(hidden) == ["sigmoid", "tanh"], json.dumps(shown)[:2000]
    # each ran in a temporary copy of the project, but its MLflow run is in the project's store
    names = [e["revs"][0]["name"] for e in experiments]
    table = runs(f"sqlite:///{repo / 'mlflow.db'}")
    assert sorted(table["tags.mlflow.runName"]) == sorted(  # named by DVC's name and what -S changed
        f"dvc exp {n}: nonlinearity.hidden={h} training.epochs=2" for n, h in zip(names, hidden))
    assert (table.status == "FINISHED").all()
