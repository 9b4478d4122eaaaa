"""Runs in a temporary SQLite store: params, metric histories, artefacts, lineage, failures."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlplab.config import compose, validate
from mlplab.core import DivergenceError, load
from mlplab.run import dvc_stage, execute
from mlplab.tracking.mlflow import flatten
from tests.conftest import PYTHON, REPO, committed_params, run
from tests.tracking.conftest import runs


def _cfg(*overrides):
    return validate(compose(["experiment=smoke", *overrides]))


def hydra_job(cfg, out_dir, overrides, parent=None):
    return execute(cfg, out_dir, REPO, name=" ".join(overrides), overrides=overrides, parent_id=parent).metrics


def _only_run(uri):
    table = runs(uri)
    assert len(table) == 1
    return MlflowClient(uri).get_run(table.run_id[0])


def test_a_job_logs_everything(store, tmp_path):
    cfg = _cfg()
    metrics = hydra_job(cfg, tmp_path, ["experiment=smoke"])
    r = _only_run(store)
    client = MlflowClient(store)
    assert r.info.status == "FINISHED"
    # params: the whole resolved config with dotted keys
    assert r.data.params["optimiser.lr"] == "0.001"
    assert r.data.params["architecture.hidden_sizes"] == "[8]"
    assert r.data.params["nonlinearity.hidden"] == "relu"
    assert r.data.params["nonlinearity.output"] == "softmax"  # `auto` resolved by the cost
    assert len(r.data.params) == len(flatten(cfg))
    assert {"mlplab.host", "mlplab.pid", "mlplab.heartbeat"} <= set(r.data.tags)
    # metrics: epoch histories with step = epoch, the step stream every stats_every steps, test metrics
    epochs, steps_per_epoch = 3, -(-72 // 16)  # 120 samples, 60 % for training, batch 16
    for key in ("train/loss", "val/loss", "val/accuracy", "lr", "grad_norm/W1", "grad_norm/b1",
                "grad_norm/W2", "weight_norm/W1", "update_ratio/W2"):
        assert [m.step for m in client.get_metric_history(r.info.run_id, key)] == [1, 2, 3], key
    stream = client.get_metric_history(r.info.run_id, "step/grad_norm/W1")
    assert [m.step for m in stream] == list(range(2, epochs * steps_per_epoch + 1, 2))
    assert r.data.metrics["test/accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert {"test/f1/0", "test/precision/1", "test/recall/0", "test/loss"} <= set(r.data.metrics)
    # lineage
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert r.data.tags["mlplab.git_commit"] == commit
    assert r.data.tags["mlplab.git_dirty"] in ("true", "false")
    assert r.data.tags["mlplab.overrides"] == "experiment=smoke"
    assert len(r.data.tags["mlplab.data_hash"]) == 64
    # artefacts: config, weights (no pickle) equal to the model file, figures, model
    paths = {a.path for folder in ("", "weights", "figures", "config") for a in client.list_artifacts(r.info.run_id, folder)}
    assert {"weights/final.npz", "weights/best.npz", "config/config.yaml", "figures/loss.png",
            "figures/grad_norms.png", "figures/confusion_matrix.png", "figures/decision_boundary.png"} <= paths
    local = client.download_artifacts(r.info.run_id, "weights/final.npz", str(tmp_path / "dl"))
    with np.load(local, allow_pickle=False) as logged, np.load(tmp_path / cfg["paths"]["model"], allow_pickle=False) as saved:
        assert sorted(logged.files) == sorted(saved.files)
        assert all(np.array_equal(logged[k], saved[k]) for k in saved.files)


def test_the_logged_model_is_the_saved_model(store, tmp_path):
    """Listed among the run's logged models, loaded by runs:/ and models:/, predicting from raw rows
    what the model file predicts; logged from code, with no pickle anywhere."""
    import mlflow

    from mlplab.model import Model

    hydra_job(_cfg(), tmp_path, ["experiment=smoke"])
    r = _only_run(store)
    mlflow.set_tracking_uri(store)
    [logged] = mlflow.search_logged_models(experiment_ids=[r.info.experiment_id], output_format="list")
    assert logged.source_run_id == r.info.run_id and logged.name == "model"
    saved = Model.load(tmp_path / "models/model.npz")
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(7, 2)), columns=["x0", "x1"])
    for uri in (f"runs:/{r.info.run_id}/model", f"models:/{logged.model_id}"):
        model = mlflow.pyfunc.load_model(uri)
        assert model.predict(rows).tolist() == saved.predict(rows).tolist()
        proba = model.predict(rows, params={"probabilities": True})
        assert list(proba.columns) == ["0", "1"] and np.array_equal(proba.to_numpy(), saved.predict_proba(rows).to_numpy())
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["x0", "x1"] and model.metadata.saved_input_example_info is not None
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{logged.model_id}", dst_path=str(tmp_path / "dl")))
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in (folder / "MLmodel").read_text()  # from code
    assert not [p for p in folder.rglob("*") if p.suffix in (".pkl", ".pickle")]


def test_dvc_stages_share_one_run(store, tmp_path):
    (tmp_path / "params.yaml").write_text(committed_params()
                                          .replace("name: digits", "name: moons").replace("epochs: 30", "epochs: 2"))
    dvc_stage("prepare", tmp_path, REPO)
    assert len(runs(store)) == 0  # preparing is not a run
    train = dvc_stage("train", tmp_path, REPO)
    record = json.loads((tmp_path / "metrics/mlflow_run.json").read_text())
    assert record == {"run_id": train.run_id} and runs(store).status.tolist() == ["FINISHED"]
    dvc_stage("evaluate", tmp_path, REPO)
    r = _only_run(store)
    assert r.info.run_id == record["run_id"] and r.info.status == "FINISHED"
    assert "test/accuracy" in r.data.metrics and "train/loss" in r.data.metrics
    assert r.data.tags["mlflow.runName"] == "dvc repro: data.name=moons training.epochs=2"
    assert r.data.tags["mlplab.overrides"] == "data.name=moons training.epochs=2"


def test_a_diverging_run_is_failed_and_keeps_its_metrics(store, tmp_path):
    cfg = _cfg("optimiser=sgd", "optimiser.lr=1e30", "training.stats_every=1")
    with pytest.raises(DivergenceError):
        hydra_job(cfg, tmp_path, ["optimiser.lr=1e30"])
    r = _only_run(store)
    assert r.info.status == "FAILED"
    assert r.data.tags["mlplab.failure"].startswith("error: training diverged: non-finite")
    assert "step/loss" in r.data.metrics  # what was logged before the failure is kept


def test_tracking_off_touches_no_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    (tmp_path / "params.yaml").write_text(committed_params().replace("enabled: true", "enabled: false")
                                          .replace("name: digits", "name: moons").replace("epochs: 30", "epochs: 2"))
    for stage in ("prepare", "train", "evaluate"):
        dvc_stage(stage, tmp_path, REPO)
    assert json.loads((tmp_path / "metrics/mlflow_run.json").read_text()) == {"run_id": None}
    assert not (tmp_path / "never.db").exists()


def test_quiet_paths_never_import_mlflow():
    code = ("import sys\nimport mlplab.core, mlplab.config, mlplab.stages, mlplab.run, mlplab.sweep, mlplab.tracking\n"
            "from mlplab.config import compose, validate\n"
            "validate(compose(['experiment=smoke']))\nassert 'mlflow' not in sys.modules")
    res = run([PYTHON, "-c", code], REPO)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_the_store_belongs_to_the_project_not_the_current_folder(repo_copy, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"MLFLOW_TRACKING_URI": ""}  # the default store
    res = run([PYTHON, str(repo_copy / "pipelines/train.py"), "experiment=smoke", "tracking.log_model=false",
               f"hydra.run.dir={tmp_path}/run"], elsewhere, env=env)
    assert res.returncode == 0, res.stderr
    assert (repo_copy / "mlflow.db").is_file() and not (elsewhere / "mlflow.db").exists()
    assert runs(f"sqlite:///{repo_copy / 'mlflow.db'}").status.tolist() == ["FINISHED"]


@pytest.mark.slow
def test_a_run_ends_with_one_summary_line(store, tmp_path):
    res = run([PYTHON, str(REPO / "pipelines/train.py"), "experiment=smoke", "tracking.log_model=false",
               f"hydra.run.dir={tmp_path}/run"], REPO, env={"MLFLOW_TRACKING_URI": store})
    assert res.returncode == 0, res.stderr
    run_id = _only_run(store).info.run_id
    [line] = [line for line in res.stdout.splitlines() if line.startswith("mlplab: done")]
    assert f"test/accuracy " in line and f"outputs in {tmp_path}/run" in line
    assert line.endswith(f"MLflow run {run_id} at http://127.0.0.1:5000/#/experiments/1/runs/{run_id}")
    log = (tmp_path / "run/train.log").read_text()
    assert line in log and "epoch 3: train/loss " in log  # the same lines in Hydra's job log
