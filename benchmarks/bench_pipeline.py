"""Wall times of the pipeline's everyday commands, run as a user runs them.

    python benchmarks/bench_pipeline.py             # from the repository root, after `make repro`
    python benchmarks/bench_pipeline.py overhead    # only the per-job overhead of a sequential sweep
    python benchmarks/bench_pipeline.py crossover   # only the basic against the joblib launcher

The per-job overhead is what each job of a sequential (basic launcher) sweep adds beyond its own
training, with full tracking: a 24-job grid of smoke jobs (a few milliseconds of training each)
against a 1-job sweep, (T₂₄ − T₁) / 23. The crossover runs the same 4-job sweep on digits (seeds
0–3) with the basic launcher and with joblib (one process per core), for longer and longer jobs.
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


def timed(cmd: list[str], repeats: int, code: int = 0) -> list[float]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        assert res.returncode == code, (cmd, res.returncode, res.stderr)
    return times


GRID = ["seed=0,1,2,3,4,5", "nonlinearity=tanh,relu", "optimiser=sgd,adam"]  # 24 jobs


def overhead(tmp: str, repeats: int = 2) -> None:
    sweep = [sys.executable, "pipelines/train.py", "-m", "experiment=smoke"]
    for extra in ([], ["tracking.child_artifacts=all"]):
        one = min(timed([*sweep, *extra, f"hydra.sweep.dir={tmp}/one-{i}"], 1)[0] for i in range(repeats))
        grid = min(timed([*sweep, *GRID, *extra, f"hydra.sweep.dir={tmp}/grid-{i}"], 1)[0] for i in range(repeats))
        print(f"per-job overhead, sequential, tracked{' (' + extra[0] + ')' if extra else ''}: "
              f"{(grid - one) / 23:.2f} s  (1 job {one:.1f} s, 24 jobs {grid:.1f} s; best of {repeats})")


def crossover(tmp: str) -> None:
    """``training (s)``: what each job's training adds, against the 1-epoch sweep."""
    sweep = [sys.executable, "pipelines/train.py", "-m", "seed=0,1,2,3"]
    print(f"{'epochs':>6} {'training (s)':>13} {'basic (s)':>10} {'joblib (s)':>11} {'joblib/basic':>13}")
    base = None
    for epochs in (1, 100, 300, 1000):
        basic = timed([*sweep, f"training.epochs={epochs}", f"hydra.sweep.dir={tmp}/basic-{epochs}"], 1)[0]
        joblib = timed([*sweep, f"training.epochs={epochs}", "hydra/launcher=joblib",
                        f"hydra.sweep.dir={tmp}/joblib-{epochs}"], 1)[0]
        base = basic if base is None else base
        print(f"{epochs:>6} {(basic - base) / 4:>13.1f} {basic:>10.1f} {joblib:>11.1f} {joblib / basic:>13.2f}")


def main() -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        if sys.argv[1:] in (["overhead"], ["crossover"]):
            {"overhead": overhead, "crossover": crossover}[sys.argv[1]](tmp)
            return
        train = [py, "pipelines/train.py"]
        cases = {
            "dvc repro (no-op)": (["dvc", "repro"], 5),
            "python pipelines/train.py --help": ([*train, "--help"], 5),
            "a bad value: optimiser.lr=-1 (exit 2)": ([*train, "optimiser.lr=-1"], 5, 2),
            "a bad option: optimiser=lbfgs (exit 2)": ([*train, "optimiser=lbfgs"], 5, 2),
            "an unknown key: +optimiser.betas=1 (exit 2)": ([*train, "+optimiser.betas=1"], 5, 2),
            "a bad store: tracking.uri=file:///x (exit 2)": ([*train, "tracking.uri=file:///x"], 5, 2),
            "experiment=smoke, one run, tracked": ([*train, "experiment=smoke", f"hydra.run.dir={tmp}/smoke"], 3),
            "6-job smoke multirun, basic launcher": (
                [py, "pipelines/train.py", "-m", "experiment=smoke", *SWEEP, f"hydra.sweep.dir={tmp}/basic"], 3),
            "6-job smoke multirun, joblib launcher": (
                [py, "pipelines/train.py", "-m", "experiment=smoke", *SWEEP, "hydra/launcher=joblib",
                 f"hydra.sweep.dir={tmp}/joblib"], 3),
        }
        print(f"{'command':<46} {'median':>8} {'max':>8}  (seconds, n runs)")
        for name, (cmd, n, *code) in cases.items():
            t = timed(cmd, n, *code)
            print(f"{name:<46} {statistics.median(t):>8.2f} {max(t):>8.2f}  (n={n})")
        overhead(tmp)
        crossover(tmp)


if __name__ == "__main__":
    main()
