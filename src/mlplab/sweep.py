"""Hydra jobs and sweeps: the task every ``python pipelines/train.py`` runs, and a sweep's parent run.

A single run reports a bad value in one line and exits (see :mod:`mlplab.cli`). A job of a sweep
never takes the sweep down: it records ``result.json`` in its folder (status, error, overrides,
metrics) and the sweep goes on. :class:`SweepSummary`, a Hydra callback, checks the sweep's syntax
and opens the parent run before any job starts (which also creates the store once, before
parallel jobs could race to), plans the jobs, and when the sweep ends prints a table of them —
including the jobs that never ran — and closes the parent with a summary.

Hydra skips ``on_multirun_end`` when a sweep is interrupted or a worker dies, so the entry point
calls :func:`abort`: the parent and every child still RUNNING are closed with the real cause.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback

RESULT_FILE = "result.json"
PARENT_FILE = "mlflow_parent_run_id"
PRUNED_TAG = "tags.mlplab.pruned_at_epoch"  # a search's pruned trial: not a candidate for the best
JOBS_FILE = "jobs.json"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
LOG = logging.getLogger("mlplab")  # Hydra sends it to the console and to the job's log


def task_overrides(hydra_cfg) -> list[str]:
    """The overrides as typed (an unresolvable ``${…}`` in one is reported by the validation)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)


def conf_dir(hydra_cfg) -> Path:
    """The ``conf/`` folder that composed this run (Hydra's primary config source)."""
    return Path(next(s.path for s in hydra_cfg.runtime.config_sources if s.provider == "main"))


# -- a job ------------------------------------------------------------------------------------
def job(cfg) -> dict | None:
    """The task of ``@hydra.main``: validate, then run every stage in the job's output folder. A job
    of a sweep returns its record (status, metrics, run id), which a searching sweeper reads."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlplab.cli import fail, finish, interrupt_on_sigterm, user_errors
    from mlplab.config import project_root

    hc = HydraConfig.get()
    out_dir, overrides = Path(hc.runtime.output_dir), task_overrides(hc)
    root = project_root(conf_dir(hc))
    if hc.mode != RunMode.MULTIRUN:
        try:
            result = _run(cfg, out_dir, root, overrides)
        except user_errors() as exc:
            fail("mlplab", exc)
        finish("mlplab", result, LOG.info)
        return
    if os.environ.get("SUBMITIT_EXECUTOR"):  # submitit's job process ignores SIGTERM: scancel must close the run
        interrupt_on_sigterm()
    sweep_dir = Path(hc.sweep.dir)
    parent = (sweep_dir / PARENT_FILE).read_text().strip() if (sweep_dir / PARENT_FILE).is_file() else None
    record = running(overrides)
    _write(out_dir, record)  # still "running" when the sweep ends: its process was stopped or lost
    record["status"] = "ok"
    try:
        from mlplab.search import Pruner

        pruner = Pruner.for_job(sweep_dir)
        result = _run(cfg, out_dir, root, overrides, parent, swept(sweep_dir), () if pruner is None else (pruner,))
        from mlplab.metrics import numeric

        LOG.info(result.summary())
        record["metrics"], record["run_id"] = numeric(result.metrics), result.run_id
        if pruner is not None and pruner.pruned_at:
            record["status"], record["pruned_at"] = "pruned", pruner.pruned_at
        if result.tracking_failure:
            record["error"] = f"tracking failed ({result.tracking_failure})"
    except KeyboardInterrupt:
        _write(out_dir, {**record, "status": "killed", "error": "interrupted"})
        raise
    except Exception as exc:  # recorded with its reason; the sweep goes on
        from mlplab.cli import describe

        record.update(status="failed", error=describe(exc))
        print(f"mlplab job {' '.join(overrides)}: {record['error']}", file=sys.stderr, flush=True)
        if not isinstance(exc, user_errors()):
            import traceback

            traceback.print_exc()  # a bug: keep the traceback in the job's log
    _write(out_dir, record)
    return record


def _run(cfg, out_dir: Path, root: Path, overrides: list[str], parent: str | None = None,
         varied: set[str] | None = None, callbacks=()):
    from mlplab.config import validate

    cfg = validate(cfg)  # before anything else is imported or opened
    from mlplab.run import execute, run_name

    return execute(cfg, out_dir, root, name=run_name(overrides, varied), overrides=overrides, parent_id=parent,
                   callbacks=callbacks)


def swept(folder: Path) -> set[str] | None:
    """The keys a sweep varies (a child's name needs no more): from its planned jobs, or the
    search space of a search (:data:`mlplab.search.STUDY_FILE`), if known."""
    from mlplab.search import STUDY_FILE

    try:
        return set(json.loads((folder / STUDY_FILE).read_text())["space"]) or None
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        pass
    try:
        jobs = json.loads((folder / JOBS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    from mlplab.config import override_key

    values: dict[str, set[str]] = {}
    for job in jobs:
        for o in job:
            values.setdefault(override_key(o), set()).add(o.partition("=")[2])
    return {k for k, v in values.items() if len(v) > 1} or None


def running(overrides: list[str]) -> dict:
    """A job's record as it starts."""
    return {"overrides": overrides, "status": "running", "error": None, "metrics": {}}


def ended(out_dir: Path, overrides: list[str], status: str, reason: str) -> dict:
    """The record of a job whose process ended without returning (cancelled, out of time, lost with
    its node): the job's own if it wrote a final status, else marked ``status`` for ``reason``."""
    try:
        record = json.loads((out_dir / RESULT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        record = running(overrides)
    if record["status"] == "running":
        record.update(status=status, error=reason)
        _write(out_dir, record)
    return record


def _write(out_dir: Path, record: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


# -- the sweep --------------------------------------------------------------------------------
def planned_jobs(hydra_cfg) -> list[list[str]] | None:
    """Every job's overrides, in launch order, for the grid sweeper; a sweep syntax it cannot run
    is a :class:`~mlplab.config.ConfigError` before anything starts. ``None`` for other sweepers."""
    if hydra_cfg.sweeper._target_ != BASIC_SWEEPER:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from mlplab.config import ConfigError

    overrides = OverridesParser.create().parse_overrides(task_overrides(hydra_cfg))
    for o in overrides:
        if o.is_sweep_override() and not o.is_discrete_sweep():
            raise ConfigError(o.get_key_element(), f"{o.input_line.split('=', 1)[1]} is a search space, which the grid "
                              "sweeper cannot run; it takes a list (a,b,c), range(start,stop,step) or choice(…)")
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


@dataclass
class Sweep:
    """A sweep in progress in this process: its folder, planned jobs and parent run."""

    folder: Path
    jobs: list[list[str]] | None
    parent: object
    settings: dict
    paths: dict

    def results(self) -> dict[str, dict]:
        """Each job's ``result.json``, by its folder's name (the job's number)."""
        return {p.parent.name: json.loads(p.read_text()) for p in self.folder.glob(f"*/{RESULT_FILE}")}

    def table(self, results: dict[str, dict]) -> tuple[int, int, str]:
        """``(jobs, failed, table)``: one line per job, in order, the jobs that never ran included."""
        n = max([len(self.jobs or ()), *(int(k) + 1 for k in results if k.isdigit())])
        lines = [f"{'job':>4}  {'status':<9} {'test acc/r2':>11} {'test loss':>10}  overrides"]
        counts = {"failed": 0, "cut short": 0, "never ran": 0}
        for i in range(n):
            r = results.get(str(i))
            if r is None:
                overrides = self.jobs[i] if self.jobs and i < len(self.jobs) else []
                r = {"status": "never ran", "overrides": overrides, "metrics": {}, "error": None}
            state = {"running": "cut short", "killed": "cut short"}.get(r["status"], r["status"])
            if state in counts:
                counts[state] += 1
            m = r["metrics"]
            score, loss = m.get("test/accuracy", m.get("test/r2")), m.get("test/loss")
            lines.append(f"{i:>4}  {state:<9} {'' if score is None else f'{score:.4f}':>11} "
                         f"{'' if loss is None else f'{loss:.4g}':>10}  {' '.join(r['overrides'])}"
                         + (f"\n      {r['error']}" if r["error"] else ""))
        lines.append(f"sweep: {n} jobs, " + ", ".join(f"{v} {k}" for k, v in counts.items() if v or k == "failed")
                     + f" ({self.folder})")
        return n, sum(counts.values()), "\n".join(lines)

    def across_seeds(self, results: dict[str, dict]) -> str | None:
        """Mean ± standard deviation and n of the objective for each configuration, across the
        ``seed=…`` values of the sweep (``None`` when the sweep does not vary the seed)."""
        import pandas as pd

        from mlplab.config import override_key

        objective = self.settings["objective"]
        rows = []
        for r in results.values():
            seeds = [o for o in r["overrides"] if override_key(o) == "seed"]
            if seeds and r["status"] == "ok" and objective in r["metrics"]:
                rows.append({"configuration": " ".join(o for o in r["overrides"] if o not in seeds) or "(defaults)",
                             objective: r["metrics"][objective]})
        if not rows:
            return None
        table = pd.DataFrame(rows).groupby("configuration", sort=False)[objective].agg(["mean", "std", "count"])
        table = table.sort_values("mean", ascending=self.settings["objective_mode"] == "min")
        lines = [f"{objective} across seeds (mean ± sd, n):"]
        lines += [f"  {row['mean']:.4f} ± {0.0 if pd.isna(row['std']) else row['std']:.4f}  n={int(row['count'])}  {c}"
                  for c, row in table.iterrows()]
        return "\n".join(lines)

    def complete(self, run_id: str, results: dict[str, dict]) -> None:
        """Draw the figures of the best child and log them and its model into its run (the children
        skipped both: ``tracking.child_artifacts: best``)."""
        from mlplab import stages
        from mlplab.evaluation import evaluate
        from mlplab.model import Model

        job = next((name for name, r in results.items() if r.get("run_id") == run_id), None)
        if job is None:
            return
        folder, cfg = self.folder / job, {"paths": self.paths}
        model_file = stages.path(folder, cfg, "model")
        model = Model.load(model_file)
        rows = stages.data.read_rows(stages.path(folder, cfg, "prepared", is_dir=True) / stages.data.TEST_ROWS)
        _, report, test, _ = evaluate(model, rows)
        self.parent.log_artifact(stages.draw(cfg, folder, model, report, test), "figures", run_id=run_id)
        self.parent.log_model(model_file, stages.example(rows, model), run_id=run_id)

    def close(self, status: str | None = None, reason: str | None = None) -> int:
        """Print the table, summarise the children into the parent and close it; return the
        number of jobs that failed or never ran. ``status``: the sweep was cut short."""
        results = self.results()
        n, failed, table = self.table(results)
        seeds = self.across_seeds(results)
        if seeds:
            table = f"{table}\n{seeds}"
        if n:  # a sweep stopped before any job (a config error) has no table to show
            print(table, flush=True)
        parent = self.parent
        if status is not None:
            parent.close_children(status, f"the sweep was cut short: {reason}")
        parent.log_text(table, "sweep/summary.txt")
        parent.set_tags({"mlflow.note.content": f"```\n{table}\n```"})  # the run's description in the UI
        summary = {"sweep/jobs": n, "sweep/failed": failed}
        children = parent.children()
        if children is not None and len(children):
            objective, mode = self.settings["objective"], self.settings["objective_mode"]
            column = f"metrics.{objective}"
            ranked = children[children[PRUNED_TAG].isna()] if PRUNED_TAG in children else children  # not pruned
            if column in ranked and ranked[column].notna().any():
                best = ranked[column].max() if mode == "max" else ranked[column].min()
                summary[f"sweep/best/{objective}"] = float(best)
                best_run = ranked.loc[ranked[column] == best, "run_id"].iloc[0]
                parent.set_tags({"mlplab.sweep.best_run": best_run})
                if self.settings["child_artifacts"] == "best" and status is None:
                    try:
                        self.complete(best_run, results)
                    except Exception as exc:  # the sweep's results stand; its parent must still close
                        from mlplab.cli import describe

                        print(f"mlplab: the best child's figures and model were not added ({describe(exc)})",
                              file=sys.stderr, flush=True)
                if self.settings["register"]:
                    registered = parent.register(self.settings["register"], objective, mode, best_run)
                    if registered:
                        print(f"mlplab: {registered}", flush=True)
            keep = ["run_id", "tags.mlflow.runName", "status"] + sorted(
                c for c in children if c.startswith(("params.", "metrics.test/", "metrics.val/")) and
                (not c.startswith("params.") or children[c].nunique(dropna=False) > 1))
            ordered = children[[c for c in keep if c in children]]
            ordered = (ordered.sort_values([column, "tags.mlflow.runName"], ascending=[mode == "min", True])
                       if column in ordered else ordered.sort_values("tags.mlflow.runName"))  # best first
            parent.log_text(ordered.to_csv(index=False), "sweep/children.csv")
            parent.log_text(ordered.to_markdown(index=False), "sweep/children.md")
        parent.log_metrics(summary, 0)
        parent.set_tags({"mlplab.sweep.jobs": n, "mlplab.sweep.failed": failed})
        if status is None:
            status = "FAILED" if failed else "FINISHED"
            reason = f"{failed} of {n} jobs failed or never ran" if failed else None
        parent.end(status, reason)
        return failed


#: Sweeps whose parent run is open in this process, for :func:`abort` to close.
OPEN: list[Sweep] = []


class SweepSummary(Callback):
    """Hydra callback: checks and plans the sweep, opens and closes its parent run, prints the table."""

    def on_multirun_start(self, config, **kwargs) -> None:
        from mlplab.cli import fail, user_errors

        try:  # Hydra turns a callback's exception into a warning and goes on; this must stop the sweep
            self._start(config)
        except user_errors() as exc:
            fail("mlplab", exc)

    def _start(self, config) -> None:
        from omegaconf import OmegaConf

        from mlplab.config import project_root, tracking_section
        from mlplab.run import lineage, run_name
        from mlplab.tracking import open_tracker

        jobs = planned_jobs(config.hydra)
        folder = Path(config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        if jobs is not None:
            (folder / JOBS_FILE).write_text(json.dumps(jobs, indent=1) + "\n")
        settings = tracking_section({"tracking": OmegaConf.to_container(config.tracking, resolve=True)})
        root = project_root(conf_dir(config.hydra))
        overrides = task_overrides(config.hydra)
        parent = open_tracker(settings, root)
        parent.start(run_name(overrides), {"mlplab.sweep": "true", **lineage(root, overrides)})
        if parent.run_id:
            (folder / PARENT_FILE).write_text(parent.run_id + "\n")
        OPEN.append(Sweep(folder, jobs, parent, settings, OmegaConf.to_container(config.paths, resolve=True)))

    def on_multirun_end(self, config, **kwargs) -> None:
        if OPEN and OPEN.pop().close():
            raise SystemExit(1)


def is_lost_worker(exc: BaseException) -> bool:
    """A job's worker process died (killed, out of memory): joblib's ``TerminatedWorkerError``."""
    return type(exc).__name__ == "TerminatedWorkerError"


def abort(exc: BaseException) -> None:
    """Close the sweeps that never reached ``on_multirun_end``, naming what stopped them."""
    from mlplab.cli import describe

    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    reason = "a job's worker process died" if is_lost_worker(exc) else describe(exc)
    while OPEN:
        OPEN.pop().close(status, reason)
