"""Hydra jobs that never take the sweep down, and the sweep's parent run and summary.

Each job records ``result.json`` in its output folder (status, error, overrides, test metrics);
:class:`SweepSummary` reads them all when the sweep ends — they are files, so this works with
the joblib launcher, whose jobs run in other processes — prints a table, and keeps the count
of failures for the command's exit status.

With tracking on, :class:`SweepSummary` also opens the sweep's MLflow parent run before any job
starts (which creates the store once, before parallel jobs could race to), leaves its id in
the sweep folder for the jobs to nest under, and closes it with a summary when the sweep ends.
Hydra skips ``on_multirun_end`` when the sweep is interrupted, so the entry point calls
:func:`abort_open_sweep` then: the parent never stays RUNNING.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from hydra.experimental.callback import Callback

RESULT_FILE = "result.json"
#: Outcome of the last job or sweep run in this process, and the exit status it calls for:
#: 0, 2 for a single run with a bad config or data, 1 for any other failure.
outcome = {"jobs": 0, "failed": 0, "exit": 0}
PARENT_FILE = "mlflow_parent_run_id"
#: The parent run of the sweep in progress in this process, if tracking is on.
open_parent = None


def run_job(cfg, out_dir: Path, overrides: list[str], sweep_dir: Path | None = None) -> dict:
    """Run all stages (inside an MLflow run); on any error record it and return instead of raising."""
    from mlplab.cli import exit_code, report, user_errors
    from mlplab.config import to_plain
    from mlplab.runs import hydra_job

    result = {"overrides": overrides, "status": "ok", "error": None, "metrics": {}}
    code = 0
    parent_file = None if sweep_dir is None else sweep_dir / PARENT_FILE
    parent = parent_file.read_text().strip() if parent_file and parent_file.is_file() else None
    try:
        raw = to_plain(cfg)
        raw.pop("hydra", None)
        metrics = hydra_job(raw, out_dir, overrides, parent)
        result["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    except user_errors() as exc:
        result.update(status="failed", error=report("mlplab job " + " ".join(overrides), exc))
        code = exit_code(exc)
    except Exception as exc:  # a bug: keep the traceback in the job's log, keep the sweep going
        traceback.print_exc()
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        code = 1
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    outcome.update(jobs=1, failed=int(result["status"] != "ok"), exit=code)
    return result


def abort_open_sweep(status: str = "KILLED", reason: str = "sweep interrupted") -> None:
    """Close the parent run of a sweep that did not reach ``on_multirun_end``."""
    global open_parent
    if open_parent is not None:
        open_parent.end(status, reason)
        open_parent = None


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
    """Hydra callback: the parent run, the printed table, the failures for the exit status."""

    def on_multirun_start(self, config, **kwargs) -> None:
        global open_parent
        from omegaconf import OmegaConf

        from mlplab.config import tracking_section

        settings = tracking_section({"tracking": OmegaConf.to_container(config.tracking, resolve=True)})
        if not settings["enabled"]:
            return
        from mlplab import tracking

        overrides = list(config.hydra.overrides.task)
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        open_parent = tracking.start_sweep(settings, " ".join(overrides) or "sweep", tracking.lineage_tags(overrides))
        (sweep_dir / PARENT_FILE).write_text(open_parent.run_id + "\n")
        self.settings = settings

    def on_multirun_end(self, config, **kwargs) -> None:
        global open_parent
        jobs, failed, table = summarise(Path(config.hydra.sweep.dir))
        outcome.update(jobs=jobs, failed=failed, exit=1 if failed else 0)
        print(table, flush=True)
        if open_parent is not None:
            from mlplab import tracking

            parent, open_parent = open_parent, None
            parent.text(table, "sweep/summary.txt")
            tracking.end_sweep(parent, self.settings["objective"], self.settings["objective_mode"], failed)
