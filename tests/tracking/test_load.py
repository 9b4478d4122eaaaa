"""Load: a 32-job parallel sweep (8 joblib workers) into each store — ``make server`` (PostgreSQL)
and a SQLite file — with every metric point counted in the store's own database and compared, run
by run and key by key, with what that job's own output files say it logged.

The run of a job is the ``run_id`` in the job's ``result.json``; the parent's id is in the sweep
folder's ``mlflow_parent_run_id``. What a job's run must hold, per key (checked against real runs):

- one point per finite value of each ``plots/history.csv`` column but ``epoch`` and ``step``;
- ``step/loss`` and ``step/grad_norm/<W and b of each layer>`` (the history's ``grad_norm/``
  columns) at every global step ``s`` with ``s % training.stats_every == 0``: ``step`` of the last
  history row (the global step at the last epoch's end) ``// stats_every`` points each;
- one point per numeric leaf of ``metrics/test.json`` and of ``metrics/report.json`` (the per-class
  ``test/precision|recall|f1/<class>``; not ``classes``, the confusion matrix or ``test_is_train``).

The parent holds ``sweep/jobs``, ``sweep/failed`` and ``sweep/best/test/accuracy``, once each.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from mlplab.sweep import PARENT_FILE, RESULT_FILE
from tests.conftest import PYTHON, REPO, run, untracked
from tests.services import tracking_server

pytestmark = pytest.mark.slow

JOBS, WORKERS, EPOCHS, STATS_EVERY = 32, 8, 8, 1  # smoke: 5 steps an epoch, 305 points a job
SWEEP = ["-m", "experiment=smoke", f"seed=range(0,{JOBS})", f"training.epochs={EPOCHS}",
         f"training.stats_every={STATS_EVERY}", "tracking.log_model=false", "hydra/launcher=joblib",
         f"hydra.launcher.n_jobs={WORKERS}"]
PARENT_POINTS = Counter({"sweep/jobs": 1, "sweep/failed": 1, "sweep/best/test/accuracy": 1})
RUNS = ("SELECT r.run_uuid, r.status, t.value FROM runs r "
        "LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId'")
POINTS = "SELECT run_uuid, key, count(*), count(DISTINCT step) FROM metrics GROUP BY run_uuid, key"


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected(job: Path, paths: dict) -> Counter:
    """Points per key that the run of the job in ``job`` must hold, from the job's own outputs."""
    with open(job / paths["history"]) as f:
        rows = list(csv.DictReader(f))
    points = Counter(k for row in rows for k, v in row.items()
                     if k not in ("epoch", "step") and v != "" and math.isfinite(float(v)))
    steps = int(rows[-1]["step"]) // STATS_EVERY
    for key in ["loss", *(k for k in rows[0] if k.startswith("grad_norm/"))]:
        points[f"step/{key}"] = steps
    for name in ("test_metrics", "report"):
        points.update(k for k, v in json.loads((job / paths[name]).read_text()).items() if _numeric(v))
    return points


def tally(db) -> tuple[dict[str, tuple[str, str | None]], dict[str, Counter]]:
    """``({run: (status, parent)}, {run: Counter(key → points)})`` read from the store's tables (any
    DB-API connection); a key logged twice at one step would be a duplicate and fails here."""
    cursor = db.cursor()
    cursor.execute(RUNS)
    runs = {run_id: (status, parent) for run_id, status, parent in cursor.fetchall()}
    cursor.execute(POINTS)
    points: dict[str, Counter] = {}
    for run_id, key, n, steps in cursor.fetchall():
        assert n == steps, f"run {run_id}: {key} has {n} points at {steps} steps"
        points.setdefault(run_id, Counter())[key] = n
    return runs, points


def sweep(project: Path, uri: str, folder: Path) -> None:
    res = run([PYTHON, "pipelines/train.py", *SWEEP, f"hydra.sweep.dir={folder}"], project,
              env={"MLFLOW_TRACKING_URI": uri}, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"sweep: {JOBS} jobs, 0 failed" in res.stdout


def check(folder: Path, runs: dict, points: dict) -> None:
    """1 parent and ``JOBS`` children, all FINISHED, each holding exactly its job's points."""
    parent = (folder / PARENT_FILE).read_text().strip()
    jobs = {p.parent: json.loads(p.read_text()) for p in folder.glob(f"*/{RESULT_FILE}")}
    assert len(jobs) == JOBS and all(r["status"] == "ok" and not r["error"] for r in jobs.values())
    assert sorted(runs) == sorted([parent, *(r["run_id"] for r in jobs.values())])
    assert runs[parent] == ("FINISHED", None)
    assert Counter(runs.values()) == {("FINISHED", None): 1, ("FINISHED", parent): JOBS}
    assert points[parent] == PARENT_POINTS
    paths, wrong = untracked("experiment=smoke")["paths"], {}
    for job, record in jobs.items():
        want, got = expected(job, paths), points.get(record["run_id"], Counter())
        if got != want:
            wrong[job.name] = {k: got[k] - want[k] for k in want.keys() | got.keys() if got[k] != want[k]}
    assert not wrong, f"jobs whose run holds other points than it logged (job: {{key: stored - logged}}): {wrong}"


def test_a_parallel_sweep_into_the_tracking_server_loses_no_point(repo_copy, tmp_path):
    from mlplab.server import Server

    with tracking_server(repo_copy) as uri:
        sweep(repo_copy, uri, tmp_path / "sweep")
        server = Server(repo_copy, int(uri.rsplit(":", 1)[1]))
        with closing(server.connect()) as db:
            runs, points = tally(db)
        log = server.log.read_text(errors="replace")
    check(tmp_path / "sweep", runs, points)
    assert "Traceback" not in log, log[-3000:]


def test_a_parallel_sweep_into_a_sqlite_store_loses_no_point(store, tmp_path):
    sweep(REPO, store, tmp_path / "sweep")
    with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as db:
        runs, points = tally(db)
    check(tmp_path / "sweep", runs, points)
