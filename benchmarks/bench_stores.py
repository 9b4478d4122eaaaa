"""Metric points per second that each tracking store sustains with 1, 4 and 8 concurrent writers.

    python benchmarks/bench_stores.py            # from the repository root; ~4 minutes on 2 cores
    python benchmarks/bench_stores.py --quick    # a smoke check, ~2.5 minutes (process start-ups dominate)

The stores: the project's SQLite store (a fresh file in a temporary folder, created once before
any writer starts) and ``make server``'s (PostgreSQL behind ``mlflow server``, started here with
:class:`mlplab.server.Server` on a free port and stopped at the end). Each writer is a process of
its own with its own run, writing as our tracker does: ``MlflowClient().log_batch`` of ``--batch``
points (``step/loss`` and the ``step/grad_norm/`` of a 2-layer net at consecutive steps) plus the
heartbeat tag, ``--points`` points in all. Writers import MLflow and open their run first, then
start together, after untimed warm-up writes to each store; the wall time runs from the first
writer's first write to the last writer's last. Sizes are interleaved (1 writer on SQLite, then
on the server, then 4, ...) so that the machine's drift hits both stores alike. Afterwards the
points are counted in each store's own database (SQLite, PostgreSQL's ``metrics`` table).

Then one typical job is run as a user runs it (``python pipelines/train.py``: the default digits
config, and ``experiment=smoke``), and its rate is its metric points ÷ its MLflow run's duration;
the estimate of how many such jobs one server sustains is the server's rate at 8 writers ÷ that.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS = ["step/loss", "step/grad_norm/W1", "step/grad_norm/b1", "step/grad_norm/W2", "step/grad_norm/b2"]
#: Typical jobs, measured one at a time as a user runs them: (label, overrides).
JOBS = [("default (digits, 30 epochs, stats_every 10)", []), ("experiment=smoke", ["experiment=smoke"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def writer(uri: str, experiment: str, points: int, batch: int, barrier, results) -> None:
    """One writer process: its own run, ``points`` points in ``log_batch`` calls of ``batch``."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    client = MlflowClient(uri)
    run_id = client.create_run(experiment).info.run_id
    stream = [(k, s + 1) for s in range(-(-points // len(KEYS))) for k in KEYS][:points]  # (key, step)
    barrier.wait()
    started, failed, first_error = time.monotonic(), 0, None
    for i in range(0, points, batch):
        now = int(time.time() * 1000)
        chunk = [Metric(k, 1.0 / step, now, step) for k, step in stream[i:i + batch]]
        try:
            client.log_batch(run_id, metrics=chunk, tags=[RunTag("mlplab.heartbeat", f"{time.time():.0f}")])
        except Exception as exc:  # counted and reported: a store that refuses writes loses points
            failed += len(chunk)
            first_error = first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    ended = time.monotonic()
    client.set_terminated(run_id)
    results.put((run_id, started, ended, failed, first_error))


def warm_up(client, experiment: str, batch: int, calls: int = 16) -> None:
    """Untimed writes first: the server's workers open their database connections, SQLite its pages."""
    from mlflow.entities import Metric

    run_id = client.create_run(experiment).info.run_id
    for i in range(calls):
        client.log_batch(run_id, metrics=[Metric("warm-up", 0.0, 0, i * batch + j) for j in range(batch)])
    client.set_terminated(run_id)


def measure(uri: str, experiment: str, writers: int, points: int, batch: int) -> dict:
    ctx = mp.get_context("spawn")  # no SQLAlchemy engine or HTTP session inherited from this process
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(uri, experiment, points, batch, barrier, results))
             for _ in range(writers)]
    for p in procs:
        p.start()
    done = []
    while len(done) < writers:
        try:
            done.append(results.get(timeout=5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode]
            if dead:
                raise RuntimeError(f"{len(dead)} writer(s) died (exit codes {dead}); see their traceback above")
    for p in procs:
        p.join()
    wall = max(d[2] for d in done) - min(d[1] for d in done)
    errors = sorted({d[4] for d in done if d[4]})
    return {"runs": [d[0] for d in done], "wall": wall, "sent": points * writers, "failed": sum(d[3] for d in done),
            "errors": errors, "per_writer": [points / (d[2] - d[1]) for d in done]}


def count_sqlite(path: Path, runs: list[str]) -> int:
    with closing(sqlite3.connect(path)) as db:
        marks = ",".join("?" * len(runs))
        return db.execute(f"SELECT count(*) FROM metrics WHERE run_uuid IN ({marks})", runs).fetchone()[0]


def count_postgres(server, runs: list[str]) -> int:
    with closing(server.connect()) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics WHERE run_uuid = ANY(%s)", (runs,))
        return cursor.fetchone()[0]


def job_rate(db: Path, label: str, overrides: list[str]) -> dict:
    """One job as a user runs it, into a fresh SQLite store ``db``: its points, run duration and rate."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-c", "import sys; from mlplab.tracking.mlflow import open_store; "
                    "open_store(sys.argv[1], 'uri')", env["MLFLOW_TRACKING_URI"]], env=env, check=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "pipelines/train.py"), *overrides, f"hydra.run.dir={db}.out"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    process = time.perf_counter() - t
    with closing(sqlite3.connect(db)) as con:
        (run_id, start, end), = con.execute("SELECT run_uuid, start_time, end_time FROM runs").fetchall()
        points = con.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[0]
    run = (end - start) / 1000
    return {"label": label, "points": points, "run": run, "process": process, "rate": points / run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 points a writer, one typical job")
    parser.add_argument("--points", type=int, default=None, help="points each writer writes (default 20,000)")
    parser.add_argument("--batch", type=int, default=500, help="points per log_batch call (one tracker flush)")
    parser.add_argument("--writers", default="1,4,8", help="numbers of concurrent writer processes")
    args = parser.parse_args()
    points = args.points or (2000 if args.quick else 20000)
    sizes = [int(n) for n in args.writers.split(",")]

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlplab.tracking.store import HTTP_LIMITS

    for name, value in HTTP_LIMITS.items():  # the retries our runs use against a server
        os.environ.setdefault(name, value)
    from mlplab.server import Server
    from mlplab.tracking.mlflow import experiment_id, open_store

    rows, jobs = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sqlite_db = tmp / "mlflow.db"
        server = Server(tmp, free_port())
        try:
            print(server.start(), flush=True)
            print(f"  [{time.perf_counter() - started:4.0f} s] server started", flush=True)
            stores = {"sqlite": (f"sqlite:///{sqlite_db}", lambda runs: count_sqlite(sqlite_db, runs)),
                      "server": (server.uri, lambda runs: count_postgres(server, runs))}
            experiments = {}
            for name, (uri, _) in stores.items():
                client = open_store(uri, "uri")
                experiments[name] = experiment_id(client, "bench")
                warm_up(client, experiments[name], args.batch)
            for n in sizes:
                for name, (uri, count) in stores.items():
                    m = measure(uri, experiments[name], n, points, args.batch)
                    m.update(store=name, writers=n, stored=count(m["runs"]))
                    rows.append(m)
                    print(f"  [{time.perf_counter() - started:4.0f} s] {name} × {n}: {m['wall']:.1f} s", flush=True)
            server_errors = [line for line in server.log.read_text(errors="replace").splitlines()
                             if "Traceback" in line or re.search(r'" 5\d\d ', line)]
        finally:
            server.stop()
        for i, (label, overrides) in enumerate(JOBS[:1] if args.quick else JOBS):
            jobs.append(job_rate(tmp / f"job{i}.db", label, overrides))
    print(f"\n{points:,} points per writer in log_batch calls of {args.batch}; "
          f"benchmark took {time.perf_counter() - started:.0f} s\n")
    print("| store | writers | wall | points/s, total | points/s per writer (median) | stored / sent |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in rows:
        print(f"| {m['store']} | {m['writers']} | {m['wall']:.1f} s | {m['sent'] / m['wall']:,.0f} | "
              f"{statistics.median(m['per_writer']):,.0f} | {m['stored']:,} / {m['sent']:,} |")
    for m in rows:
        if m["failed"] or m["errors"] or m["stored"] != m["sent"]:
            print(f"{m['store']} × {m['writers']}: {m['failed']} points refused; {'; '.join(m['errors'])}")
    print(f"server log: {len(server_errors)} error lines" + "".join(f"\n  {line}" for line in server_errors[:5]))
    best = max((m for m in rows if m["store"] == "server"), key=lambda m: m["writers"])
    rate = best["sent"] / best["wall"]
    print("\n| job | metric points | run duration | process wall | points/s over the run |")
    print("|---|---:|---:|---:|---:|")
    for j in jobs:
        print(f"| {j['label']} | {j['points']:,} | {j['run']:.1f} s | {j['process']:.1f} s | {j['rate']:,.0f} |")
    for j in jobs:
        print(f"one server sustains ≈ {rate / j['rate']:,.0f} concurrent jobs like \"{j['label']}\" "
              f"({rate:,.0f} points/s at {best['writers']} writers ÷ {j['rate']:,.0f} points/s per job; "
              "assumes a job writes at its run's average rate, and the server's rate at "
              f"{best['writers']} writers holds for more writers)")


if __name__ == "__main__":
    main()
