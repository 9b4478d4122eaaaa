"""Search on digits with the same 30-trial budget and seed: TPE with and without median pruning,
and random search, as a user runs them (``hydra/sweeper=optuna``, full tracking, basic launcher).

    python benchmarks/bench_search.py            # from the repository root; ~10 minutes on 2 cores
    python benchmarks/bench_search.py --trials 6 # a quick look

Reports, for each: wall time, epochs trained over all trials (pruned trials stop early), the
counts of complete and pruned trials, and the best validation accuracy (the objective).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = ["optimiser.lr=tag(log, interval(1e-4, 1e-1))", "architecture.hidden_sizes=choice([32],[64],[64,64])",
         "nonlinearity.hidden=choice(relu,tanh)"]
VARIANTS = {
    "TPE, median pruning": ["hydra.sweeper.pruner=median"],
    "TPE, no pruning": ["hydra.sweeper.pruner=none"],
    "random search, no pruning": ["hydra/sweeper/sampler=random", "hydra.sweeper.pruner=none"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    print(f"digits, {args.trials} trials of up to {args.epochs} epochs, seed 0, objective val/accuracy")
    print(f"{'search':<28} {'wall (s)':>9} {'epochs':>7} {'complete':>9} {'pruned':>7} {'best val acc':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        for i, (name, extra) in enumerate(VARIANTS.items()):
            folder = Path(tmp) / f"search{i}"
            cmd = [sys.executable, "pipelines/train.py", "-m", "hydra/sweeper=optuna", *SPACE, *extra,
                   f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.study_name=bench{i}",
                   f"hydra.sweeper.storage=sqlite:///{tmp}/optuna.db", f"training.epochs={args.epochs}",
                   "tracking.objective=val/accuracy", f"hydra.sweep.dir={folder}"]
            t = time.perf_counter()
            res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            assert res.returncode == 0, res.stderr[-2000:]
            records = [json.loads(p.read_text()) for p in folder.glob("*/result.json")]
            epochs = sum(r["metrics"].get("train/epochs", 0) for r in records)
            pruned = sum(r["status"] == "pruned" for r in records)
            complete = sum(r["status"] == "ok" for r in records)
            best = max(r["metrics"].get("val/accuracy", 0) for r in records if r["status"] == "ok")
            print(f"{name:<28} {wall:>9.1f} {epochs:>7.0f} {complete:>9} {pruned:>7} {best:>13.4f}")


if __name__ == "__main__":
    main()
