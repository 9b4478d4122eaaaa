"""Build the network a validated config describes for the prepared data, and train it."""

from __future__ import annotations

import numpy as np

from mlplab import metrics
from mlplab.config import ConfigError, check_memory, optimiser_kwargs
from mlplab.core import Callback, EpochEvent, History, Network, StepEvent, fit, get_cost, get_optimiser
from mlplab.data import Split


def n_outputs(cfg: dict, schema: dict) -> int:
    """``Nᴸ``, as the cost says for the data's task and classes."""
    try:
        return get_cost(cfg["cost"]["name"]).n_outputs(schema["task"], len(schema["classes"] or ()))
    except ValueError as exc:
        raise ConfigError("cost.name", f"{exc}; data {schema['name']!r} is a {schema['task']} task"
                          + (": use cost=squared_error" if schema["task"] == "regression" else "")) from None


def targets(split: Split, task: str, network: Network) -> np.ndarray:
    """``Y`` of shape ``(n_samples, Nᴸ)``: the cost's encoding of the classes, or the regression target."""
    if task == "regression":
        return split.y.reshape(-1, 1)
    return network.cost.targets(split.y, network.layer_sizes[-1])


def build_network(cfg: dict, schema: dict) -> Network:
    """The network for this config and data; sizes that do not fit the data are a ConfigError."""
    arch, sigma = cfg["architecture"], cfg["nonlinearity"]
    n_in, n_out = len(schema["feature_names"]), n_outputs(cfg, schema)
    for key, given, actual in (("input_size", arch["input_size"], n_in), ("output_size", arch["output_size"], n_out)):
        if given is not None and given != actual:
            raise ConfigError(
                f"architecture.{key}", f"is {given}, but data {schema['name']!r} with cost {cfg['cost']['name']!r} "
                f"needs {actual} (leave it null to take it from the data)"
            )
    sizes = [n_in, *arch["hidden_sizes"], n_out]
    check_memory(sizes, cfg["dtype"], cfg["optimiser"]["name"])
    hidden = {"name": sigma["hidden"], **{k: v for k, v in sigma.items() if k not in ("hidden", "output")}}
    try:
        return Network(sizes, [hidden] * (len(sizes) - 2) + [sigma["output"]], cfg["cost"]["name"],
                       init=arch["init"], dtype=cfg["dtype"], rng=np.random.default_rng(cfg["seed"]))
    except ValueError as exc:
        raise ConfigError("nonlinearity.output", str(exc)) from None


class Recorder(Callback):
    """Keeps each epoch's metrics (the history table) and the weights of the best epoch."""

    def __init__(self):
        self.rows: list[dict] = []
        self.best: list | None = None
        self.network: Network | None = None

    def on_fit_start(self, network) -> None:
        self.network = network

    def on_epoch_end(self, event: EpochEvent) -> None:
        self.rows.append({"epoch": event.epoch, "step": event.step, **metrics.epoch(event)})
        if event.improved:
            self.best = [(W.copy(), b.copy()) for W, b in self.network.weights]


class Reporter(Callback):
    """Hands the metrics of every epoch and every statistics step to ``log(values, step)``."""

    def __init__(self, log):
        self.log = log

    def on_step_end(self, event: StepEvent) -> None:
        if event.stats is not None:
            self.log(metrics.step(event), event.step)

    def on_epoch_end(self, event: EpochEvent) -> None:
        self.log(metrics.epoch(event), event.epoch)


def train(cfg: dict, splits: dict[str, Split], schema: dict, callbacks=()) -> tuple[Network, History, Recorder]:
    """Train the configured network on the training split, validating on ``val`` if present."""
    network = build_network(cfg, schema)
    t = cfg["training"]
    optimiser = get_optimiser(cfg["optimiser"]["name"], **optimiser_kwargs(cfg["optimiser"]))
    validation = None
    if "val" in splits:
        validation = (splits["val"].X, targets(splits["val"], schema["task"], network))
    recorder = Recorder()
    history = fit(
        network, splits["train"].X, targets(splits["train"], schema["task"], network), optimiser=optimiser,
        epochs=t["epochs"], rng=np.random.default_rng(cfg["seed"]), batch_size=t["batch_size"],
        validation=validation, patience=t["patience"], min_delta=t["min_delta"],
        callbacks=[recorder, *callbacks], stats_every=t["stats_every"],
    )
    return network, history, recorder
