"""Hydra jobs that never take the sweep down, and the summary printed when a sweep ends.

Each job records ``result.json`` in its output folder (status, error, overrides, test metrics);
:class:`SweepSummary` reads them all when the sweep ends — they are files, so this works with
the joblib launcher, whose jobs run in other processes — prints a table, and keeps the count
of failures for the command's exit status.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from hydra.experimental.callback import Callback

RESULT_FILE = "result.json"
#: Outcome of the last job or sweep run in this process: {"jobs": n, "failed": k}.
outcome = {"jobs": 0, "failed": 0}


def run_job(cfg, out_dir: Path, overrides: list[str]) -> dict:
    """Validate and run all stages; on any error record it and return instead of raising."""
    from mlplab.cli import report, user_errors
    from mlplab.config import validate
    from mlplab.stages import run_all

    result = {"overrides": overrides, "status": "ok", "error": None, "metrics": {}}
    try:
        plain = validate(cfg)
        metrics = run_all(plain, out_dir)
        result["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    except user_errors() as exc:
        result.update(status="failed", error=report("mlplab job " + " ".join(overrides), exc).split(": ", 1)[1])
    except Exception as exc:  # a bug: keep the traceback in the job folder, keep the sweep going
        traceback.print_exc()
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    outcome.update(jobs=1, failed=int(result["status"] != "ok"))
    return result


def summarise(sweep_dir: Path) -> tuple[int, int, str]:
    """Count jobs and failures under ``sweep_dir`` and format a table of them."""
    results = []
    for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0):
        results.append((path.parent.name, json.loads(path.read_text())))
    lines = [f"{'job':>4}  {'status':<7} {'accuracy/r2':>11} {'loss':>10}  overrides"]
    for num, r in results:
        m = r["metrics"]
        score = m.get("accuracy", m.get("r2"))
        loss = m.get("loss")
        lines.append(
            f"{num:>4}  {r['status']:<7} {'' if score is None else f'{score:.4f}':>11} "
            f"{'' if loss is None else f'{loss:.4g}':>10}  {' '.join(r['overrides'])}"
            + (f"\n      {r['error']}" if r["error"] else "")
        )
    failed = sum(r["status"] != "ok" for _, r in results)
    lines.append(f"sweep: {len(results)} jobs, {failed} failed ({sweep_dir})")
    return len(results), failed, "\n".join(lines)


class SweepSummary(Callback):
    """Hydra callback: print the sweep's table and remember its failures for the exit status."""

    def on_multirun_end(self, config, **kwargs) -> None:
        jobs, failed, table = summarise(Path(config.hydra.sweep.dir))
        outcome.update(jobs=jobs, failed=failed)
        print(table, flush=True)
