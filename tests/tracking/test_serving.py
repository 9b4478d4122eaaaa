"""The logged model served: MLflow's own scoring server and CLI on raw rows, and the registry's
``@champion`` alias. Real processes against a temporary store."""

import json
import os
import signal
import subprocess
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlplab.config import compose, validate
from mlplab.data import read_rows
from mlplab.model import Model
from mlplab.run import execute
from tests.conftest import BIN, PYTHON, REPO, run
from tests.services import free_port

TINY = ["data=iris", "architecture.hidden_sizes=[8]", "training.epochs=3", "training.batch_size=16"]  # string labels


def _execute(tmp_path, *overrides):
    cfg = validate(compose([*TINY, *overrides]))
    return execute(cfg, tmp_path, REPO, name=" ".join(overrides), overrides=list(overrides))


@pytest.fixture
def trained(store, tmp_path):
    result = _execute(tmp_path / "run")
    rows = read_rows(tmp_path / "run/data/prepared/test_rows.csv").drop(columns=["target"])
    return result.run_id, Model.load(tmp_path / "run/models/model.npz"), rows


@pytest.mark.slow
def test_mlflow_serves_the_labels_over_http(trained, tmp_path):
    run_id, model, rows = trained
    port = free_port()
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(["mlflow", "models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/ping", timeout=5).status == 200:
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.5)
        else:
            pytest.fail("mlflow models serve did not answer within 120 s")

        def invoke(payload):
            request = urllib.request.Request(f"{base}/invocations", data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]

        split = json.loads(rows.to_json(orient="split", index=False))
        assert invoke({"dataframe_split": split}) == model.predict(rows).tolist()
        assert all(isinstance(label, str) for label in invoke({"dataframe_split": split}))
        proba = pd.DataFrame(invoke({"dataframe_split": split, "params": {"probabilities": True}}))
        assert list(proba.columns) == model.classes
        np.testing.assert_allclose(proba.to_numpy(), model.predict_proba(rows).to_numpy(), rtol=1e-6)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_mlflow_models_predict_gives_the_same_labels(trained, tmp_path):
    run_id, model, rows = trained
    rows.to_csv(tmp_path / "rows.csv", index=False)
    res = run([os.path.join(BIN, "mlflow"), "models", "predict", "-m", f"runs:/{run_id}/model", "-i", str(tmp_path / "rows.csv"),
               "-t", "csv", "--env-manager", "local", "-o", str(tmp_path / "out.json")], REPO)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "out.json").read_text())["predictions"] == model.predict(rows).tolist()


@pytest.mark.slow
def test_predict_from_the_shell_reads_an_mlflow_uri(trained, tmp_path):
    run_id, model, rows = trained
    rows.to_csv(tmp_path / "rows.csv", index=False)
    res = run([PYTHON, "-m", "mlplab", "predict", f"runs:/{run_id}/model", str(tmp_path / "rows.csv")], REPO)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["prediction", *model.predict(rows).tolist()]
    res = run([PYTHON, "-m", "mlplab", "predict", "models:/nobody@champion", str(tmp_path / "rows.csv")], REPO)
    assert res.returncode == 2 and res.stderr.startswith("mlplab predict: error: models:/nobody@champion: no such model")


def test_the_best_model_is_the_champion(store, tmp_path):
    """A registered run becomes a version; the alias moves only to a better one."""
    client = MlflowClient(store)
    good = _execute(tmp_path / "good", "training.epochs=40", "tracking.register=iris")
    assert good.registered == f"registered models:/iris/1 as models:/iris@champion (test/accuracy {good.metrics['test/accuracy']:.4g})"
    worse = _execute(tmp_path / "worse", "training.epochs=1", "tracking.register=iris")
    assert worse.metrics["test/accuracy"] < good.metrics["test/accuracy"]
    assert "models:/iris/2;" in worse.registered and "stays models:/iris@champion (version 1)" in worse.registered
    champion = client.get_model_version_by_alias("iris", "champion")
    assert champion.run_id == good.run_id and str(champion.version) == "1"


@pytest.mark.slow
def test_a_sweep_registers_its_best_child(store, tmp_path):
    res = run([PYTHON, str(REPO / "pipelines/train.py"), "-m", *TINY, "training.epochs=1,40",
               "tracking.register=iris", f"hydra.sweep.dir={tmp_path / 'sweep'}"], REPO)
    assert res.returncode == 0, res.stderr
    client = MlflowClient(store)
    champion = client.get_model_version_by_alias("iris", "champion")
    parent = client.search_runs([champion_experiment(client)], filter_string="tags.`mlplab.sweep.jobs` = '2'")[0]
    assert champion.run_id == parent.data.tags["mlplab.sweep.best_run"]
    assert "mlplab: registered models:/iris/1 as models:/iris@champion" in res.stdout
    assert len(client.search_model_versions("name = 'iris'")) == 1  # the best child only
    # tracking.child_artifacts: best: figures and a logged model for the best child only
    children = client.search_runs([champion_experiment(client)], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2
    for child in children:
        figures = {a.path for a in client.list_artifacts(child.info.run_id, "figures")}
        models = client.search_logged_models([champion_experiment(client)], filter_string=f"source_run_id = '{child.info.run_id}'")
        best = child.info.run_id == champion.run_id
        assert (figures == {"figures/confusion_matrix.png", "figures/loss.png", "figures/grad_norms.png"}) == best
        assert len(models) == int(best)


def champion_experiment(client):
    return client.get_experiment_by_name("mlplab").experiment_id
