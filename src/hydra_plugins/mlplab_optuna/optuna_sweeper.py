"""A Hydra sweeper that searches with Optuna ≥ 5, keeping the official plugin's keys and syntax.

    python pipelines/train.py -m hydra/sweeper=optuna hydra.sweeper.n_trials=30 \\
        'optimiser.lr=tag(log, interval(1e-4, 1e-1))' 'nonlinearity.hidden=choice(relu,tanh)'

Keys (``hydra.sweeper.…``): ``sampler`` (``_target_`` and its arguments; its seed defaults to the
config's ``seed``), ``direction`` (default: from ``tracking.objective_mode``), ``study_name``,
``storage`` (default: the journal file ``optuna.journal`` in the project), ``n_trials`` (this
command's trials; workers add theirs), ``n_jobs`` (trials asked and launched together),
``pruner`` (``none``, ``median``, ``hyperband``) and ``params`` (search space as overrides).
What to maximise or minimise is ``tracking.objective``. Each trial is one Hydra job, so one MLflow
child run of the sweep's parent; the parent gets the study's story when the search ends.
"""

# no `from __future__ import annotations`: Hydra imports plugins outside sys.modules, and dataclasses
# would then fail to resolve string annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any  # noqa: F401 (the dataclass fields)

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.mlplab_optuna.optuna_sweeper.OptunaSweeper"
    defaults: list = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}])  # hydra/sweeper/sampler=random
    _recursive_: bool = False  # the sampler is built in sweep(), seeded from the config's seed
    sampler: Any = None
    direction: Any = None
    study_name: Any = None
    storage: Any = None
    n_trials: int = 20
    n_jobs: int = 1
    pruner: str = "none"
    params: Any = None


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="mlplab")
for _name, _target in (("tpe", "optuna.samplers.TPESampler"), ("random", "optuna.samplers.RandomSampler")):
    ConfigStore.instance().store(group="hydra/sweeper/sampler", name=_name, node={"_target_": _target, "seed": None},
                                 provider="mlplab")


def first(distribution):
    """A point of the search space: the first choice, or the low end."""
    return distribution.choices[0] if hasattr(distribution, "choices") else distribution.low


class OptunaSweeper(Sweeper):
    def __init__(self, sampler, direction, study_name, storage, n_trials, n_jobs, pruner, params):
        from mlplab.config import ConfigError
        from mlplab.search import PRUNERS

        if pruner not in PRUNERS:
            raise ConfigError("hydra.sweeper.pruner", f"must be one of {', '.join(PRUNERS)}, got {pruner!r}")
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"hydra.sweeper.{key}", f"must be an integer >= 1, got {value!r}")
        self.sampler_conf, self.direction, self.study_name = sampler, direction, study_name
        self.storage_url, self.n_trials, self.n_jobs, self.pruner = storage, n_trials, n_jobs, pruner
        self.params = dict(params or {})

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def check(self, overrides: list) -> None:
        """A config error shared by every trial is one line before the study starts, not a
        failure per trial: the search space's first point must validate."""
        from hydra.types import RunMode
        from omegaconf import open_dict

        from mlplab.config import to_plain, validate

        cfg = self.hydra_context.config_loader.load_configuration(self.config.hydra.job.config_name, overrides,
                                                                  run_mode=RunMode.RUN)
        with open_dict(cfg):
            cfg.pop("hydra")
        validate(to_plain(cfg))

    def sweep(self, arguments):
        import json

        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from mlplab import search, sweep
        from mlplab.config import ConfigError, project_root

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        given = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space, fixed = {}, []
        for o in parser.parse_overrides(given):
            key = o.get_key_element()
            if o.is_sweep_override():
                try:
                    space[key] = search.distribution(o)
                except ValueError as exc:
                    raise ConfigError(key, str(exc)) from None
            else:
                fixed.append(o.input_line)
        if not space:
            raise ConfigError("hydra.sweeper.params", "no search space: give e.g. 'optimiser.lr=interval(1e-4,1e-1)'")
        self.check([*fixed, *(f"{k}={first(d)}" for k, d in space.items())])
        tracking = self.config.tracking
        direction = self.direction or ("maximize" if tracking.objective_mode == "max" else "minimize")
        root = project_root(sweep.conf_dir(self.config.hydra))
        store = search.storage(self.storage_url, root)
        study = search.open_study(self.study_name, store, direction, None, self.pruner)
        # Seeded by `seed` (or the sampler's own seed), moved on by the trials the study already has:
        # a resumed study proposes new points. Workers started together: give each a sampler.seed.
        sampler_conf = OmegaConf.to_container(OmegaConf.create(self.sampler_conf), resolve=True)
        if "seed" in sampler_conf:
            sampler_conf["seed"] = int(self.config.seed if sampler_conf["seed"] is None else sampler_conf["seed"])
            sampler_conf["seed"] += len(study.trials)
        study.sampler = instantiate(sampler_conf)
        folder = Path(self.config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, folder / "multirun.yaml")
        (folder / search.STUDY_FILE).write_text(json.dumps({
            "study": study.study_name, "storage": self.storage_url, "root": str(root), "pruner": self.pruner,
            "monitor": search.monitored(tracking.objective), "space": sorted(space)}, indent=1) + "\n")
        objective = tracking.objective
        done = 0
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [[*fixed, *(f"{k}={t.params[k]}" for k in space),
                      f"++hydra.job.env_set.{search.TRIAL_ENV}={t._trial_id}"] for t in trials]
            told = set()
            try:
                for t, ret in zip(trials, self.launcher.launch(batch, initial_job_idx=done)):
                    search.tell(study, t, ret, objective)
                    told.add(t.number)
            finally:  # an interrupt: the trials in flight are failed, not left running in the study
                for t in trials:
                    if t.number not in told:
                        search.tell(study, t, None, objective)
            done += len(trials)
        search.story(study, sweep.OPEN[-1].parent if sweep.OPEN else None, objective)
