"""What MLflow tracking costs: the fixed start-up, and the overhead on a long training run.

Trains the same run (digits, 64-512-512-10 relu, Adam, batch 32, per-step gradient norms every
10 steps) with `tracking=mlflow` and `tracking=off`, interleaved, in this process, into a fresh
SQLite store; reports wall times and the overhead ratio. Start-up (importing MLflow, creating
and opening the store) is measured in fresh processes, since it is paid once per process.

    python benchmarks/bench_tracking.py [--epochs 600] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_UP = """
import time, sys
t0 = time.perf_counter(); import mlflow; t1 = time.perf_counter()
from mlplab.tracking.mlflow import open_store
open_store(sys.argv[1], "uri"); t2 = time.perf_counter()
open_store(sys.argv[1], "uri"); t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def start_up(tmp: Path) -> tuple[float, float, float]:
    uri = f"sqlite:///{tmp / 'startup.db'}"
    out = subprocess.run([sys.executable, "-c", START_UP, uri], capture_output=True, text=True, check=True)
    first = [float(x) for x in out.stdout.split()]
    again = [float(x) for x in subprocess.run([sys.executable, "-c", START_UP, uri], capture_output=True,
                                               text=True, check=True).stdout.split()]
    return first[0], first[1], again[1]  # import, create a fresh store, open an existing one


class Stopwatch:
    """Wraps methods to add up the wall time spent inside them (not counting nested calls twice)."""

    def __init__(self):
        self.total, self.depth = 0.0, 0

    def wrap(self, owner, name):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            self.depth += 1
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.depth -= 1
                if not self.depth:
                    self.total += time.perf_counter() - t

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from mlplab.config import CONF_DIR, compose, validate
    from mlplab.run import execute

    def job(overrides, out):
        return execute(validate(compose(overrides)), out, CONF_DIR.parent, overrides=overrides)

    overrides = ["data=digits", "architecture.hidden_sizes=[512,512]", f"training.epochs={args.epochs}",
                 "training.batch_size=32", "training.stats_every=10"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        imp, create, reopen = start_up(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        from mlplab import network, run  # start-up paid here, outside the timed runs
        from mlplab.tracking.mlflow import MlflowTracker, open_store

        watch = Stopwatch()
        for name in ("__init__", "start", "log_config", "log_metrics", "flush", "set_tags", "log_artifact",
                     "log_text", "log_model", "end"):
            watch.wrap(MlflowTracker, name)
        for name in ("on_step_end", "on_epoch_end"):
            watch.wrap(network.Reporter, name)
        watch.wrap(run, "lineage")

        open_store(os.environ["MLFLOW_TRACKING_URI"], "uri")
        job([*overrides[:-3], "training.epochs=2", "tracking=mlflow"], tmp / "warm-up")
        times = {"off": [], "mlflow": []}
        inside = []
        for i in range(args.repeats):
            for mode in times:
                watch.total = 0.0
                t = time.perf_counter()
                job([*overrides, f"tracking={mode}"], tmp / f"{mode}{i}")
                times[mode].append(time.perf_counter() - t)
                if mode == "mlflow":
                    inside.append(watch.total)
    off, on = statistics.median(times["off"]), statistics.median(times["mlflow"])
    print(f"start-up, once per process: import mlflow {imp:.2f} s, create a fresh SQLite store {create:.2f} s, "
          f"open an existing one {reopen:.2f} s")
    print(f"run ({' '.join(overrides)}), median of {args.repeats}:")
    print(f"  tracking off    {off:7.2f} s   {['%.2f' % t for t in times['off']]}")
    print(f"  tracking mlflow {on:7.2f} s   {['%.2f' % t for t in times['mlflow']]}")
    print(f"  difference      {on - off:7.2f} s = {100 * (on - off) / off:.1f} %  (end to end; machine noise included)")
    spent = statistics.median(inside)
    print(f"  inside tracking {spent:7.2f} s = {100 * spent / off:.1f} % of the untracked run  {['%.2f' % t for t in inside]}")
    print("  (time measured inside every tracking call: buffering, writes, artefacts, the model)")


if __name__ == "__main__":
    main()
