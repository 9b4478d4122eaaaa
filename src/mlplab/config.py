"""Compose and validate a run's config, once, at the edge, before anything heavy happens.

The config comes from Hydra (``conf/``) or from DVC's ``params.yaml``; both are plain mappings
here. :func:`validate` returns a resolved plain ``dict`` with defaults filled in, or raises
:class:`ConfigError` with one line: the dotted key, what is wrong, and what is allowed.

The rules are one declarative table (:func:`table`). Its fixed part is written here; the keys of
the parameterised sections and their bounds come from the code they configure — the
``constraints`` of the chosen optimiser, schedule, nonlinearity and dataset loader, and the
training loop's :data:`~mlplab.core.FIT_CONSTRAINTS` — so a bound is written once. Validation
imports NumPy, the core and OmegaConf only: it answers in a fraction of a second.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlplab.core import COSTS, FIT_CONSTRAINTS, INITIALISERS, NONLINEARITIES, OPTIMISERS, SCHEDULES, Network, fit
from mlplab.core.constraints import Boolean, Constraint, Interval, ListOf, Options, Text, constraints_of
from mlplab.core.network import DTYPES
from mlplab.data import COMMON, DATASETS, task_of

CONF = "conf"
#: The ``conf/`` of the project this package was installed from (an editable install).
CONF_DIR = Path(__file__).resolve().parents[2] / CONF
PARAMS_FILE = "params.yaml"
REQUIRED = inspect.Parameter.empty
PATHS = ("prepared", "model", "train_metrics", "test_metrics", "report", "history", "predictions", "figures", "run")

#: The fixed part of the table. Section → key → constraint; every key here is required.
FIXED: dict[str, dict[str, Constraint]] = {
    "": {"seed": Interval(int, 0, 2**32 - 1), "dtype": Options(DTYPES)},
    "architecture": {
        "hidden_sizes": ListOf(Interval(int, 1)),
        "init": Options(INITIALISERS),
        "input_size": Interval(int, 1, optional=True),
        "output_size": Interval(int, 1, optional=True),
    },
    "nonlinearity": {
        "hidden": Options(n for n, c in NONLINEARITIES.items() if c.hidden_ok),
        "output": Options([*NONLINEARITIES, "auto"]),
    },
    "cost": {"name": Options([*COSTS, "auto"])},
    "training": FIT_CONSTRAINTS,
    "tracking": {
        "enabled": Boolean(),
        "uri": Text(optional=True),
        "experiment": Text(),
        "log_model": Boolean(),
        "flush_every_s": Interval(float, 0),
        "stale_after_s": Interval(float, 0, closed="neither"),
        "objective": Text(),
        "objective_mode": Options(("max", "min")),
        "register": Text(optional=True),
        "child_artifacts": Options(("best", "all")),
    },
    "paths": {k: Text() for k in PATHS},
}


class _Section(Constraint):
    def accepts(self, v) -> bool:
        return v is None or isinstance(v, Mapping)

    def describe(self) -> str:
        return "a mapping with a name"


_MAPPING = _Section()
SECTIONS = ("data", "architecture", "nonlinearity", "cost", "optimiser", "training", "tracking", "paths")


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


# -- where a run's project is -----------------------------------------------------------------
def project_root(conf_dir: str | Path) -> Path:
    """The project a run belongs to: the folder holding the ``conf/`` that composed it. DVC runs
    a queued experiment in a temporary copy of the project and names the project in ``DVC_ROOT``."""
    return Path(os.environ.get("DVC_ROOT") or Path(conf_dir).parent).resolve()


def override_key(override: str) -> str:
    """The key an override sets: ``+optimiser.lr=0.1`` → ``optimiser.lr``."""
    return override.split("=", 1)[0].lstrip("+~")


# -- composing --------------------------------------------------------------------------------
def compose(overrides: list[str] = (), conf_dir: str | Path | None = None) -> dict:
    """The composed config as a plain dict, without the ``hydra`` node (as DVC writes it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    conf_dir = Path(conf_dir or CONF_DIR)
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides))
    return to_plain(cfg)


def to_plain(cfg) -> dict:
    """A resolved plain ``dict`` from a DictConfig or a mapping; a ``???`` or an unresolvable
    ``${…}`` is a :class:`ConfigError` naming its key."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        raise ConfigError(str(exc.full_key), "is required (it is ??? in the config)") from None
    except InterpolationResolutionError as exc:
        raise ConfigError(str(exc.full_key), f"cannot be resolved: {str(exc).splitlines()[0]}") from None
    plain.pop("hydra", None)
    return plain


def read_params(path: str | Path) -> dict:
    """Read DVC's ``params.yaml`` (the composed config) as a plain mapping, unvalidated."""
    import yaml

    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "no such params file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, Mapping):
        raise ConfigError(str(path), "must hold a mapping of config sections")
    return cfg


# -- the table --------------------------------------------------------------------------------
def defaults_of(fn) -> dict[str, Any]:
    """Keyword defaults of a function, or of a class's ``__init__`` along its bases."""
    out = {}
    targets = [k.__dict__["__init__"] for k in fn.__mro__ if "__init__" in k.__dict__] if isinstance(fn, type) else [fn]
    for target in targets:
        for p in inspect.signature(target).parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                out.setdefault(p.name, p.default)
    return out


def _spec(constraints: Mapping[str, Constraint], defaults: Mapping[str, Any] | None = None) -> dict:
    return {k: (c, REQUIRED if defaults is None else defaults.get(k, REQUIRED)) for k, c in constraints.items()}


def table(cfg: Mapping) -> dict[str, dict[str, tuple[Constraint, Any]]]:
    """Section → key → (constraint, default) for this config: the fixed rules plus those of the
    optimiser, schedule, hidden nonlinearity and dataset it names (names are checked first)."""
    data, sigma, opt = (cfg.get(k) if isinstance(cfg.get(k), Mapping) else {} for k in ("data", "nonlinearity", "optimiser"))
    schedule = opt.get("schedule") if isinstance(opt.get("schedule"), Mapping) else {}
    loader = DATASETS[_check("data.name", COMMON["name"], data.get("name"))]
    hidden = NONLINEARITIES[_check("nonlinearity.hidden", FIXED["nonlinearity"]["hidden"], sigma.get("hidden"))]
    optimiser = OPTIMISERS[_check("optimiser.name", Options(OPTIMISERS), opt.get("name"))]
    sched = SCHEDULES[_check("optimiser.schedule.name", Options(SCHEDULES), schedule.get("name", "constant"))]
    out = {k: _spec(v) for k, v in FIXED.items()}
    out["data"] = {**_spec(COMMON), **_spec(loader.constraints, defaults_of(loader))}
    out["nonlinearity"].update(_spec(hidden.constraints, defaults_of(hidden)))
    out["optimiser"] = {"name": (Options(OPTIMISERS), REQUIRED),
                        **_spec(constraints_of(optimiser), defaults_of(optimiser))}
    out["optimiser"]["lr"] = (out["optimiser"]["lr"][0], REQUIRED)
    out["optimiser"]["schedule"] = (_MAPPING, {"name": "constant"})  # its own section, below
    out["optimiser.schedule"] = {"name": (Options(SCHEDULES), "constant"), **_spec(sched.constraints, defaults_of(sched))}
    out["training"] = _spec(FIT_CONSTRAINTS, defaults_of(fit))
    return out


def _check(key: str, constraint: Constraint, value):
    try:
        return constraint.check(key, value)
    except ValueError as exc:
        raise ConfigError(key, str(exc).removeprefix(f"{key} ")) from None


def _section(name: str, given, spec: dict) -> dict:
    if not isinstance(given, Mapping):
        raise ConfigError(name, "missing section (a mapping)")
    prefix = f"{name}." if name else ""
    valid = {*spec, *(SECTIONS if not name else ())}
    for k in given:
        if k not in valid:
            raise ConfigError(f"{prefix}{k}", f"unknown key; valid: {', '.join(sorted(valid))}")
    out = {}
    for k, (constraint, default) in spec.items():
        if k in given:
            out[k] = _check(prefix + k, constraint, given[k])
        elif default is REQUIRED:
            raise ConfigError(prefix + k, "is required")
        else:
            out[k] = default
    return out


# -- validating -------------------------------------------------------------------------------
def validate(cfg) -> dict:
    """Check every key against :func:`table`; return a plain, resolved config with defaults filled
    in, ``cost.name: auto`` replaced by the cost for the data's task and ``nonlinearity.output: auto``
    by the cost's own output nonlinearity."""
    cfg = to_plain(cfg)
    cfg.pop("hydra", None)
    _no_missing(cfg)
    rules = table(cfg)
    top = {k: v for k, v in cfg.items() if k not in SECTIONS}
    out = _section("", top, rules[""])
    for name in SECTIONS:
        out[name] = _section(name, cfg.get(name), rules[name])
    out["optimiser"]["schedule"] = _section("optimiser.schedule", out["optimiser"]["schedule"] or {"name": "constant"},
                                            rules["optimiser.schedule"])
    _across(out)
    return out


def _across(cfg: dict) -> None:
    """The rules that tie two keys together."""
    data, opt = cfg["data"], cfg["optimiser"]
    if data["test_size"] + data["val_size"] >= 1:
        raise ConfigError("data.val_size", f"test_size + val_size must be < 1, got {data['test_size']} + {data['val_size']}")
    lr_min = opt["schedule"].get("lr_min")
    if lr_min is not None and lr_min >= opt["lr"]:
        raise ConfigError("optimiser.schedule.lr_min", f"must be below optimiser.lr ({opt['lr']}), got {lr_min}")
    if cfg["cost"]["name"] == "auto":  # the data's task decides
        cfg["cost"]["name"] = "squared_error" if task_of(data) == "regression" else "categorical_cross_entropy"
    if cfg["nonlinearity"]["output"] == "auto":
        cfg["nonlinearity"]["output"] = COSTS[cfg["cost"]["name"]].default_output
    arch = cfg["architecture"]
    sizes = [n for n in (arch["input_size"], *arch["hidden_sizes"], arch["output_size"]) if n is not None]
    check_memory(sizes, cfg["dtype"], opt["name"])


def tracking_section(cfg: Mapping) -> dict:
    """The ``tracking`` section alone, validated: what a sweep needs to open its parent run."""
    return _section("tracking", cfg.get("tracking"), _spec(FIXED["tracking"]))


def _no_missing(node, prefix: str = "") -> None:
    """OmegaConf's mandatory marker ``???`` survives in DVC's params.yaml as a plain string."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        key = f"{prefix}[{k}]" if isinstance(k, int) else f"{prefix}.{k}" if prefix else str(k)
        if v == "???":
            raise ConfigError(key, "is required (it is ??? in the config)")
        _no_missing(v, key)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``), else the total."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(layer_sizes: list[int], dtype: str, optimiser: str) -> None:
    """Refuse layer sizes whose weights, gradients, optimiser state and statistics copy cannot fit
    in memory, before anything is allocated (a ``MemoryError`` mid-run helps nobody)."""
    import numpy as np

    arrays = 3 + OPTIMISERS[optimiser].state_arrays  # weights, gradients, the statistics' copy, state
    need = Network.n_weights(layer_sizes) * np.dtype(dtype).itemsize * arrays
    have = available_memory()
    if need > have:
        raise ConfigError("architecture.hidden_sizes",
                          f"{layer_sizes} needs about {need / 2**30:.1f} GiB for weights, gradients and {optimiser} "
                          f"state, more than the {have / 2**30:.1f} GiB of memory available")


def optimiser_kwargs(cfg: Mapping) -> dict:
    """The keyword arguments of :func:`mlplab.core.get_optimiser` from a validated section."""
    return {k: v for k, v in cfg.items() if k != "name"}
