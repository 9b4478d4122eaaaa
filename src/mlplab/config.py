"""Validate a composed experiment config once, at the edge, with errors that name the key.

The config comes from Hydra (``conf/``) or from DVC's ``params.yaml``; both are plain
mappings here. :func:`validate` returns a resolved, plain ``dict`` or raises
:class:`ConfigError` with one line: the dotted key, what is wrong, and what is allowed.

The allowed keys of the parameterised sections come from the code they configure (the
optimiser's, schedule's, nonlinearity's and dataset loader's keyword arguments), so there is
no second table to keep in step.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlplab.core import COSTS, INITIALISERS, NONLINEARITIES, OPTIMISERS, SCHEDULES
from mlplab.core.network import DTYPES

SECTIONS = ("data", "architecture", "nonlinearity", "cost", "optimiser", "training", "tracking", "paths")
TOP_LEVEL = {"seed", "dtype", *SECTIONS}


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


def _choices(options) -> str:
    return ", ".join(sorted(options))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _check(key: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(key, f"must be {expected}, got {value!r}")


def _int(key, v, *, low=None, optional=False):
    if optional and v is None:
        return None
    what = "an integer" + (f" >= {low}" if low is not None else "") + (" or null" if optional else "")
    _check(key, v, _is_int(v) and (low is None or v >= low), what)
    return v


def _number(key, v, *, low=None, high=None, strict_low=False, optional=False):
    if optional and v is None:
        return None
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if strict_low else '>='} {low}")
    if high is not None:
        bounds.append(f"<= {high}")
    what = "a number" + (" " + " and ".join(bounds) if bounds else "") + (" or null" if optional else "")
    ok = _is_number(v) and (low is None or (v > low if strict_low else v >= low)) and (high is None or v <= high)
    _check(key, v, ok, what)
    return float(v)


def _name(key, v, registry) -> str:
    if v not in registry:
        raise ConfigError(key, f"unknown {key.rsplit('.', 1)[-1] if '.' in key else key} {v!r}; valid: {_choices(registry)}")
    return v


def _keys(section: str, cfg: Mapping, allowed) -> None:
    for k in cfg:
        if k not in allowed:
            raise ConfigError(f"{section}.{k}", f"unknown key; valid: {_choices(allowed)}")


def keyword_params(fn: Callable) -> dict[str, Any]:
    """The keyword arguments of ``fn`` (or a class's ``__init__``) with their defaults."""
    params = {}
    for cls in fn.__mro__ if isinstance(fn, type) else (fn,):
        target = cls.__init__ if isinstance(fn, type) else cls
        if isinstance(fn, type) and "__init__" not in cls.__dict__:
            continue
        for p in inspect.signature(target).parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "lr"):
                params.setdefault(p.name, p.default)
    return params


def _typed_like(key: str, value, default):
    """Check ``value`` against the type of the code's default for it."""
    if isinstance(default, bool):
        _check(key, value, isinstance(value, bool), "true or false")
    elif _is_int(default):
        _check(key, value, _is_int(value), "an integer")
    elif isinstance(default, float):
        _check(key, value, _is_number(value), "a number")
        return float(value)
    elif isinstance(default, str):
        _check(key, value, isinstance(value, str), "a string")
    return value


def _data(cfg: Mapping) -> dict:
    from mlplab.data import DATASETS  # pandas and scikit-learn: only where data is validated

    name = _name("data.name", cfg.get("name"), DATASETS)
    loader = DATASETS[name]
    own = keyword_params(loader)
    common = {"name", "test_size", "val_size", "standardise"}
    _keys("data", cfg, common | set(own))
    out = {"name": name}
    out["test_size"] = _number("data.test_size", cfg.get("test_size"), low=0, high=0.9)
    out["val_size"] = _number("data.val_size", cfg.get("val_size"), low=0, high=0.9)
    if out["test_size"] + out["val_size"] >= 1:
        raise ConfigError("data.val_size", "test_size + val_size must be < 1")
    _check("data.standardise", cfg.get("standardise"), isinstance(cfg.get("standardise"), bool), "true or false")
    out["standardise"] = cfg["standardise"]
    for k, default in own.items():
        if k not in cfg:
            if default is inspect.Parameter.empty:
                raise ConfigError(f"data.{k}", f"is required for data {name!r}")
            continue
        out[k] = _typed_like(f"data.{k}", cfg[k], default)
    for k in ("n_samples", "n_classes", "n_features"):
        if k in out:
            _int(f"data.{k}", out[k], low=1)
    for k in ("noise", "cluster_std"):
        if k in out:
            _number(f"data.{k}", out[k], low=0)
    return out


def _architecture(cfg: Mapping) -> dict:
    _keys("architecture", cfg, {"hidden_sizes", "init", "input_size", "output_size"})
    sizes = cfg.get("hidden_sizes")
    _check("architecture.hidden_sizes", sizes, isinstance(sizes, (list, tuple)), "a list of layer sizes (may be empty)")
    for i, n in enumerate(sizes):
        _int(f"architecture.hidden_sizes[{i}]", n, low=1)
    return {
        "hidden_sizes": list(sizes),
        "init": _name("architecture.init", cfg.get("init"), INITIALISERS),
        "input_size": _int("architecture.input_size", cfg.get("input_size"), low=1, optional=True),
        "output_size": _int("architecture.output_size", cfg.get("output_size"), low=1, optional=True),
    }


def _nonlinearity(cfg: Mapping) -> dict:
    hidden = _name("nonlinearity.hidden", cfg.get("hidden"), NONLINEARITIES)
    if not NONLINEARITIES[hidden].hidden_ok:
        hidden_ok = [n for n, c in NONLINEARITIES.items() if c.hidden_ok]
        raise ConfigError("nonlinearity.hidden", f"{hidden!r} is for the output layer only; valid: {_choices(hidden_ok)}")
    output = cfg.get("output")
    if output != "auto":
        _name("nonlinearity.output", output, {*NONLINEARITIES, "auto"})
    own = keyword_params(NONLINEARITIES[hidden])
    _keys("nonlinearity", cfg, {"hidden", "output", *own})
    out = {"hidden": hidden, "output": output}
    for k in own:
        if k in cfg:
            out[k] = _typed_like(f"nonlinearity.{k}", cfg[k], own[k])
    return out


def _cost(cfg: Mapping) -> dict:
    _keys("cost", cfg, {"name"})
    return {"name": _name("cost.name", cfg.get("name"), COSTS)}


def _optimiser(cfg: Mapping) -> dict:
    name = _name("optimiser.name", cfg.get("name"), OPTIMISERS)
    own = keyword_params(OPTIMISERS[name])
    _keys("optimiser", cfg, {"name", "lr", *own})
    out = {"name": name, "lr": _number("optimiser.lr", cfg.get("lr"), low=0, strict_low=True)}
    out["weight_decay"] = _number("optimiser.weight_decay", cfg.get("weight_decay", 0.0), low=0)
    out["clip_norm"] = _number("optimiser.clip_norm", cfg.get("clip_norm"), low=0, strict_low=True, optional=True)
    for k in ("momentum", "beta1", "beta2", "rho"):
        if k in cfg:
            _number(f"optimiser.{k}", cfg[k], low=0, high=0.999999)
            out[k] = float(cfg[k])
    if "eps" in cfg:
        out["eps"] = _number("optimiser.eps", cfg["eps"], low=0, strict_low=True)
    schedule = cfg.get("schedule") or {"name": "constant"}
    _check("optimiser.schedule", schedule, isinstance(schedule, Mapping), "a mapping with a name")
    sname = _name("optimiser.schedule.name", schedule.get("name"), SCHEDULES)
    sown = keyword_params(SCHEDULES[sname])
    _keys("optimiser.schedule", schedule, {"name", *sown})
    out["schedule"] = {"name": sname}
    for k in sown:
        if k in schedule:
            value = _typed_like(f"optimiser.schedule.{k}", schedule[k], sown[k])
            if k in ("step_size", "t_max"):
                _int(f"optimiser.schedule.{k}", value, low=1)
            out["schedule"][k] = value
    return out


def _training(cfg: Mapping) -> dict:
    _keys("training", cfg, {"epochs", "batch_size", "patience", "min_delta", "stats_every"})
    return {
        "epochs": _int("training.epochs", cfg.get("epochs"), low=1),
        "batch_size": _int("training.batch_size", cfg.get("batch_size"), low=1, optional=True),
        "patience": _int("training.patience", cfg.get("patience"), low=1, optional=True),
        "min_delta": _number("training.min_delta", cfg.get("min_delta", 0.0), low=0),
        "stats_every": _int("training.stats_every", cfg.get("stats_every"), low=1, optional=True),
    }


PATHS = ("prepared", "model", "train_metrics", "test_metrics", "history", "predictions", "figures", "run")


def _paths(cfg: Mapping) -> dict:
    _keys("paths", cfg, set(PATHS))
    for k in PATHS:
        _check(f"paths.{k}", cfg.get(k), isinstance(cfg.get(k), str) and bool(cfg.get(k)), "a relative path")
    return dict(cfg)


def tracking_section(cfg: Mapping) -> dict:
    """Validate the ``tracking`` section alone: a run can be recorded even if the rest is bad."""
    cfg = cfg.get("tracking")
    if not isinstance(cfg, Mapping):
        raise ConfigError("tracking", "missing section (a mapping)")
    keys = {"enabled", "uri", "experiment", "log_model", "flush_every_s", "objective", "objective_mode"}
    _keys("tracking", cfg, keys)
    for k in ("enabled", "log_model"):
        _check(f"tracking.{k}", cfg.get(k), isinstance(cfg.get(k), bool), "true or false")
    uri = cfg.get("uri")
    _check("tracking.uri", uri, uri is None or (isinstance(uri, str) and uri), "a tracking URI or null")
    for k in ("experiment", "objective"):
        _check(f"tracking.{k}", cfg.get(k), isinstance(cfg.get(k), str) and bool(cfg.get(k)), "a non-empty string")
    mode = cfg.get("objective_mode")
    _check("tracking.objective_mode", mode, mode in ("max", "min"), "max or min")
    return {**{k: cfg[k] for k in keys},
            "flush_every_s": _number("tracking.flush_every_s", cfg.get("flush_every_s"), low=0)}


def to_plain(cfg) -> dict:
    """A resolved plain ``dict`` from a DictConfig (interpolations resolved) or a mapping."""
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra-core
        return dict(cfg)
    if isinstance(cfg, DictConfig):
        from omegaconf.errors import MissingMandatoryValue

        try:
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except MissingMandatoryValue as exc:
            raise ConfigError(str(exc.full_key), "is required (it is ??? in the config)") from None
    return dict(cfg)


def _no_missing(node, prefix: str = "") -> None:
    """OmegaConf's mandatory marker ``???`` survives in DVC's params.yaml as a plain string."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        key = f"{prefix}[{k}]" if isinstance(k, int) else f"{prefix}.{k}" if prefix else str(k)
        if v == "???":
            raise ConfigError(key, "is required (it is ??? in the config)")
        _no_missing(v, key)


def validate(cfg) -> dict:
    """Check every section; return a plain, resolved config dict with defaults filled in."""
    cfg = to_plain(cfg)
    cfg.pop("hydra", None)
    _no_missing(cfg)
    for k in cfg:
        if k not in TOP_LEVEL:
            raise ConfigError(k, f"unknown key; valid: {_choices(TOP_LEVEL)}")
    for k in SECTIONS:
        if not isinstance(cfg.get(k), Mapping):
            raise ConfigError(k, "missing section (a mapping)")
    out = {}
    out["seed"] = _int("seed", cfg.get("seed"), low=0)
    dtype = cfg.get("dtype")
    _check("dtype", dtype, dtype in DTYPES, f"one of {', '.join(DTYPES)}")
    out["dtype"] = dtype
    out["data"] = _data(cfg["data"])
    out["architecture"] = _architecture(cfg["architecture"])
    out["nonlinearity"] = _nonlinearity(cfg["nonlinearity"])
    out["cost"] = _cost(cfg["cost"])
    out["optimiser"] = _optimiser(cfg["optimiser"])
    out["training"] = _training(cfg["training"])
    out["tracking"] = tracking_section(cfg)
    out["paths"] = _paths(cfg["paths"])
    return out


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


def optimiser_kwargs(cfg: Mapping) -> dict:
    """The keyword arguments of :func:`mlplab.core.get_optimiser` from a validated section."""
    return {k: v for k, v in cfg.items() if k != "name"}

