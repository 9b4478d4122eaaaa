"""Wall times of the pipeline's everyday commands, run as a user runs them.

    python benchmarks/bench_pipeline.py        # from the repository root, after `make repro`
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SWEEP = ["nonlinearity=sigmoid,tanh,relu", "optimiser=sgd,adam"]


def timed(cmd: list[str], repeats: int) -> list[float]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "dvc repro (no-op)": (["dvc", "repro"], 5),
            "python pipelines/train.py --help": ([py, "pipelines/train.py", "--help"], 5),
            "6-job smoke multirun, basic launcher": (
                [py, "pipelines/train.py", "-m", "experiment=smoke", *SWEEP, f"hydra.sweep.dir={tmp}/basic"], 3),
            "6-job smoke multirun, joblib launcher": (
                [py, "pipelines/train.py", "-m", "experiment=smoke", *SWEEP, "hydra/launcher=joblib",
                 f"hydra.sweep.dir={tmp}/joblib"], 3),
        }
        print(f"{'command':<42} {'median':>8} {'min':>8}  (seconds, n runs)")
        for name, (cmd, n) in cases.items():
            t = timed(cmd, n)
            print(f"{name:<42} {statistics.median(t):>8.2f} {min(t):>8.2f}  (n={n})")


if __name__ == "__main__":
    main()
