"""The MLflow UI on the project's store, driven by headless Chromium: a sweep reads as one unit.

Screenshots are kept in test-artefacts/ (the runs table and a grad_norm/W1 chart).
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.conftest import BIN, PYTHON, REPO, run
from tests.services import free_port
from tests.tracking.conftest import runs

pytestmark = pytest.mark.slow
ARTEFACTS = REPO / "test-artefacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000", "--window-size=1400,900"]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture
def ui(store, tmp_path):
    port = free_port()
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(["mlflow", "ui", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # the first request takes ~30 s here
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(base, timeout=5).status == 200:
                break
        except OSError:
            time.sleep(1)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("mlflow ui did not answer within 180 s")
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _page(chromium, url, tmp_path, name):
    profile = tmp_path / f"chrome-{name}"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120).stdout
    ARTEFACTS.mkdir(exist_ok=True)
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={ARTEFACTS / name}.png", url],
                   capture_output=True, timeout=120)
    return dom


def test_the_ui_lists_the_sweep_and_charts_gradient_norms(store, ui, tmp_path):
    chromium = _chromium()
    res = run([PYTHON, str(REPO / "pipelines/train.py"), "-m", "experiment=smoke", "nonlinearity=sigmoid,relu",
               "tracking.log_model=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"], REPO)
    assert res.returncode == 0, res.stderr
    table = runs(store)
    parent = table[table["tags.mlplab.sweep"] == "true"].iloc[0]
    children = table[table["tags.mlflow.parentRunId"] == parent.run_id]
    exp = parent.experiment_id

    dom = _page(chromium, f"{ui}/#/experiments/{exp}/runs", tmp_path, "mlflow_ui_runs")
    assert parent["tags.mlflow.runName"] in dom
    assert "<strong>3</strong> matching runs" in dom  # the parent and its two children

    dom = _page(chromium, f"{ui}/#/experiments/{exp}/runs/{parent.run_id}", tmp_path, "mlflow_ui_parent")
    assert "Child runs" in dom
    for name in children["tags.mlflow.runName"]:
        assert name in dom

    metric = "grad_norm/W1"
    q = lambda v: urllib.parse.quote(json.dumps(v), safe="")  # noqa: E731
    url = (f"{ui}/#/metric?runs={json.dumps([children.run_id.iloc[0]])}&metric={q(metric)}&experiments={json.dumps([exp])}"
           f"&plot_metric_keys={q([metric])}&plot_layout={{}}&x_axis=step&y_axis_scale=linear&line_smoothness=1"
           "&show_point=false&deselected_curves=[]&last_linear_y_axis_range=[]")
    dom = _page(chromium, url, tmp_path, "mlflow_ui_grad_norm_W1")
    assert "Error" not in dom
    assert metric in dom and "js-plotly-plot" in dom  # the chart rendered
