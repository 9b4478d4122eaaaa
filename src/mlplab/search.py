"""Search with Optuna: the study, its search space, and a trial's side of pruning.

The sweeper (``src/hydra_plugins/mlplab_optuna``) asks the study for trials and launches each as
a Hydra job with Hydra's launcher; the job trains with a :class:`Pruner` that reports the
validation metric of every epoch to the trial and stops training when the study's pruner says so.
The job finds its trial through ``MLPLAB_OPTUNA_TRIAL_ID`` (set per job with Hydra's
``hydra.job.env_set``) and the study through ``optuna.json`` in the sweep's folder, so the same
works in-process (basic launcher) and in worker processes (joblib, SLURM).

A study lives in a storage that outlives the command: by default Optuna's journal file
``optuna.journal`` beside the project's MLflow store (safe for many processes on one machine),
or any database URL (``postgresql+psycopg2://…``, ``sqlite:///…``) for many machines. Creating
the same new study from several workers at once is safe: creation is create-or-load, retried
when another worker won the race.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlplab.core import Callback, EpochEvent

TRIAL_ENV = "MLPLAB_OPTUNA_TRIAL_ID"  # Optuna's id of the trial in its storage (not its number in the study)
STUDY_FILE = "optuna.json"
JOURNAL = "optuna.journal"
PRUNERS = ("none", "median", "hyperband")


# -- the study ----------------------------------------------------------------------------------
def storage(url: str | None, root: Path):
    """Optuna's storage for ``url``; ``None``: the journal file beside the project's MLflow store.
    A storage that cannot be used is a :class:`~mlplab.config.ConfigError` on ``hydra.sweeper.storage``."""
    from mlplab.config import ConfigError

    try:
        return _storage(url, root)
    except Exception as exc:  # Optuna and SQLAlchemy raise many kinds
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError("hydra.sweeper.storage", f"cannot use {url or Path(root) / JOURNAL!s} "
                          f"({type(exc).__name__}: {text})") from None


def _storage(url: str | None, root: Path):
    import optuna

    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(Path(root) / JOURNAL)))
    if url.startswith("sqlite:///"):  # its tables are created on first use: one process at a time
        from filelock import FileLock

        with FileLock(url.removeprefix("sqlite:///") + ".lock"):
            return optuna.storages.RDBStorage(url)
    for attempt in range(5):  # a server: another worker may be creating the tables right now
        try:
            return optuna.storages.RDBStorage(url)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))


def pruner(name: str):
    import optuna

    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[name]()


def open_study(name: str | None, store, direction: str, sampler=None, prune: str = "none"):
    """Create the study, or load it if it exists (several workers may race to create it)."""
    import optuna

    for attempt in range(5):
        try:
            return optuna.create_study(study_name=name, storage=store, sampler=sampler, pruner=pruner(prune),
                                       direction=direction, load_if_exists=True)
        except Exception:  # another worker created it between the check and the insert
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def distribution(override):
    """The Optuna distribution of a sweep override, as the official Hydra Optuna sweeper reads it:
    ``choice(a,b)`` categorical; ``range(a,b,step)`` stepped; ``interval(a,b)`` uniform;
    ``tag(log, interval(a,b))`` log-uniform (ints stay ints)."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        if value.shuffle:
            return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if override.is_interval_sweep():
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(value.start, value.end, log=log)
    raise ValueError(f"{override.input_line}: not a search space")


# -- a trial, inside its job ----------------------------------------------------------------------
def monitored(objective: str) -> str:
    """The per-epoch validation metric a trial reports: ``val/accuracy`` for an accuracy objective,
    else ``val/loss``."""
    return "val/accuracy" if objective.endswith("accuracy") else "val/loss"


class Pruner(Callback):
    """Reports the monitored validation metric to the trial after every epoch and stops training
    when the study prunes the trial; ``pruned_at`` is that epoch."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric, self.pruned_at = trial, metric, None

    @classmethod
    def for_job(cls, sweep_dir: Path) -> Pruner | None:
        """The pruner of the trial this job runs, or ``None`` outside a search."""
        trial_id = os.environ.get(TRIAL_ENV)
        info = Path(sweep_dir) / STUDY_FILE
        if not trial_id or not info.is_file():
            return None
        import optuna

        meta = json.loads(info.read_text())
        study = optuna.load_study(study_name=meta["study"], storage=storage(meta["storage"], Path(meta["root"])),
                                  pruner=pruner(meta["pruner"]))
        return cls(optuna.trial.Trial(study, int(trial_id)), meta["monitor"])

    def on_epoch_end(self, event: EpochEvent) -> None:
        value = event.val_accuracy if self.metric == "val/accuracy" else event.val_loss
        if value is None:
            return
        self.trial.report(float(value), event.epoch)
        if self.trial.should_prune():
            self.pruned_at, self.stop_training = event.epoch, True

    @property
    def tags(self) -> dict[str, str]:
        return {"mlplab.pruned_at_epoch": str(self.pruned_at)} if self.pruned_at else {}


# -- the sweeper's side ---------------------------------------------------------------------------
def tell(study, trial, ret, objective: str) -> None:
    """Close ``trial`` from its job's return (``None``: the job never finished): COMPLETE with the
    objective, PRUNED, or FAIL (a failing or diverging job is a failed trial, and the search goes on)."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    record = ret.return_value if ret is not None and ret.status == JobStatus.COMPLETED else None
    record = record if isinstance(record, dict) else {}
    value = record.get("metrics", {}).get(objective)
    if record.get("status") == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    elif record.get("status") == "ok" and value is not None:
        study.tell(trial, value)
    else:
        study.tell(trial, state=TrialState.FAIL)


def story(study, parent, objective: str) -> str:
    """The search in a few lines (printed), and in the parent run: best value and parameters,
    counts, the trials table and Optuna's plots (matplotlib: no browser needed)."""
    import tempfile

    from optuna.trial import TrialState

    states = {s: sum(t.state == s for t in study.trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    counts = ", ".join(f"{n} {s.name.lower()}" for s, n in states.items())
    running = sum(t.state == TrialState.RUNNING for t in study.trials)
    counts += f", {running} running in other workers" if running else ""
    lines = [f"study {study.study_name!r}: {len(study.trials)} trials ({counts})"]
    if states[TrialState.COMPLETE]:
        best = study.best_trial
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        lines.append(f"best {objective} {best.value:.4g} (trial {best.number}): {params}")
    text = "\n".join(lines)
    print(text, flush=True)
    if parent is None or parent.run_id is None:
        return text
    parent.log_metrics({f"search/{s.name.lower()}": float(n) for s, n in states.items()}, 0)
    parent.set_tags({"mlplab.search.study": study.study_name})
    if states[TrialState.COMPLETE]:
        parent.log_metrics({f"search/best/{objective}": float(study.best_value)}, 0)
        parent.set_tags({f"mlplab.search.best.{k}": str(v) for k, v in study.best_params.items()})
    table = study.trials_dataframe(attrs=("number", "value", "params", "state", "duration"))
    parent.log_text(table.to_csv(index=False), "search/trials.csv")
    parent.log_text(text + "\n", "search/summary.txt")
    with tempfile.TemporaryDirectory() as tmp:
        for path in plots(study, Path(tmp)).values():
            parent.log_artifact(path, "search")
    return text


def plots(study, folder: Path) -> dict[str, Path]:
    """Optimisation history, parameter importances and parallel coordinates as PNGs; a plot that
    needs more complete trials than there are is left out."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out = {}
    for name, draw in (("history", ovm.plot_optimization_history), ("importances", ovm.plot_param_importances),
                       ("parallel_coordinates", ovm.plot_parallel_coordinate)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = draw(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            out[name] = folder / f"{name}.png"
            fig.savefig(out[name], dpi=100, bbox_inches="tight")
            plt.close(fig)
        except Exception:  # too few complete trials, or a single parameter for importances
            continue
    return out
