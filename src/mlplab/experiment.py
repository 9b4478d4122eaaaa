"""Build the network and optimiser a validated config describes, and train it on prepared data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlplab.config import ConfigError, optimiser_kwargs
from mlplab.core import Callback, EpochEvent, History, Network, fit, get_optimiser
from mlplab.data import Split

#: The output nonlinearity that ``nonlinearity.output: auto`` picks for each cost.
AUTO_OUTPUT = {
    "categorical_cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "squared_error": "identity",
}


def n_outputs(schema: dict, cost: str) -> int:
    """``Nᴸ``: one unit per class, one sigmoid for a two-class binary cross-entropy, one per target."""
    if schema["task"] == "regression":
        if cost != "squared_error":
            raise ConfigError(
                "cost.name", f"{cost!r} needs a classification dataset; data {schema['name']!r} is "
                "regression: use cost=squared_error"
            )
        return 1
    n_classes = len(schema["classes"])
    return 1 if cost == "binary_cross_entropy" and n_classes == 2 else n_classes


def targets(split: Split, schema: dict, cost: str) -> np.ndarray:
    """``Y`` of shape ``(n_samples, Nᴸ)``: one-hot rows, a 0/1 column, or the regression target."""
    k = n_outputs(schema, cost)
    if k == 1:  # a regression target, or 0/1 labels for one sigmoid output
        return split.y.reshape(-1, 1).astype(float)
    return np.eye(k)[split.y]


def build_network(cfg: dict, schema: dict) -> Network:
    """The network for this config and data; sizes that do not fit the data are a ConfigError."""
    arch, sigma, cost = cfg["architecture"], cfg["nonlinearity"], cfg["cost"]["name"]
    n_in, n_out = len(schema["feature_names"]), n_outputs(schema, cost)
    for key, given, actual in (("input_size", arch["input_size"], n_in), ("output_size", arch["output_size"], n_out)):
        if given is not None and given != actual:
            raise ConfigError(
                f"architecture.{key}", f"is {given}, but data {schema['name']!r} with cost {cost!r} needs {actual} "
                "(leave it null to take it from the data)"
            )
    hidden = {"name": sigma["hidden"], **{k: v for k, v in sigma.items() if k not in ("hidden", "output")}}
    output = AUTO_OUTPUT[cost] if sigma["output"] == "auto" else sigma["output"]
    n_layers = len(arch["hidden_sizes"]) + 1
    try:
        return Network(
            [n_in, *arch["hidden_sizes"], n_out], [hidden] * (n_layers - 1) + [output], cost,
            init=arch["init"], dtype=cfg["dtype"], rng=np.random.default_rng(cfg["seed"]),
        )
    except ValueError as exc:
        raise ConfigError("nonlinearity.output", str(exc)) from None


class HistoryRecorder(Callback):
    """Keeps every epoch's losses and per-layer norms, for the history table and its plots."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_epoch_end(self, event: EpochEvent) -> None:
        row = {"epoch": event.epoch, "step": event.step, "lr": event.lr, "train_loss": event.train_loss}
        if event.val_loss is not None:
            row["val_loss"] = event.val_loss
        if event.val_accuracy is not None:
            row["val_accuracy"] = event.val_accuracy
        row.update({k.replace("/", "_"): v for k, v in event.stats.as_dict().items()})
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def train(cfg: dict, splits: dict[str, Split], schema: dict, callbacks=()) -> tuple[Network, History, pd.DataFrame]:
    """Train the configured network on the training split, validating on ``val`` if present."""
    network = build_network(cfg, schema)
    cost, t = cfg["cost"]["name"], cfg["training"]
    optimiser = get_optimiser(cfg["optimiser"]["name"], **optimiser_kwargs(cfg["optimiser"]))
    validation = None
    if "val" in splits:
        validation = (splits["val"].X, targets(splits["val"], schema, cost))
    recorder = HistoryRecorder()
    history = fit(
        network, splits["train"].X, targets(splits["train"], schema, cost), optimiser=optimiser,
        epochs=t["epochs"], rng=np.random.default_rng(cfg["seed"]), batch_size=t["batch_size"],
        validation=validation, patience=t["patience"], min_delta=t["min_delta"],
        callbacks=[recorder, *callbacks], stats_every=t["stats_every"],
    )
    return network, history, recorder.frame()


def train_metrics(history: History) -> dict:
    """What the train stage reports: final losses, the best epoch and whether it stopped early."""
    out = {"train_loss": history.train_loss[-1], "epochs": len(history.train_loss),
           "best_epoch": history.best_epoch, "stopped_early": history.stopped_early}
    if history.val_loss:
        out["val_loss"] = history.val_loss[-1]
        out["best_val_loss"] = history.best_loss
    if history.val_accuracy:
        out["val_accuracy"] = history.val_accuracy[-1]
    return out
