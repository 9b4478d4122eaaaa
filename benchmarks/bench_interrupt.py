"""How long Ctrl-C takes to end a long tracked run, and whether every epoch was written once.

    python benchmarks/bench_interrupt.py      # ~2 minutes

Starts `pipelines/train.py data=digits training.epochs=100000` into a fresh SQLite store four
times, sends SIGINT after 8, 12, 15 and 20 s, and reports the time from the signal to the exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        cmd = [sys.executable, str(REPO / "pipelines/train.py"), "data=digits", "training.epochs=100000"]
        subprocess.run([*cmd[:2], "experiment=smoke", f"hydra.run.dir={tmp}/warm"], env=env, check=True,
                       capture_output=True)  # the store is created outside the timed runs
        for after in (8, 12, 15, 20):
            started = int(time.time() * 1000)
            proc = subprocess.Popen([*cmd, f"hydra.run.dir={tmp}/run{after}"], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # Ctrl-C as from a terminal:
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            time.sleep(after)
            t = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate()
            took = time.monotonic() - t
            mlflow.set_tracking_uri(uri)
            found = mlflow.search_runs(search_all_experiments=True, filter_string=f"attributes.start_time > {started}")
            if not len(found):
                print(f"SIGINT after {after:>2} s: exit {proc.returncode} in {took:.2f} s, before its run started")
                continue
            last = found.iloc[0]
            epochs = [m.step for m in mlflow.MlflowClient(uri).get_metric_history(last.run_id, "train/loss")]
            once = epochs == list(range(1, len(epochs) + 1))
            print(f"SIGINT after {after:>2} s: exit {proc.returncode} in {took:.2f} s, {last.status}, "
                  f"{len(epochs)} epochs logged, each once: {once}; stderr: {err.strip()!r}")


if __name__ == "__main__":
    main()
