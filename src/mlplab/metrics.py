"""Metric names, made in one place. The history table's columns, DVC's metrics files and MLflow's
keys are these names, so a value is found under the same name everywhere:

- per epoch (``step`` = epoch): ``train/loss``, ``val/loss``, ``val/accuracy``, ``lr``, and per layer
  ``m`` the core's :meth:`~mlplab.core.LayerStats.as_dict` names ``grad_norm/W{m}``, ``grad_norm/b{m}``,
  ``weight_norm/W{m}``, ``update_ratio/W{m}``;
- per step (every ``training.stats_every`` steps, ``step`` = global step): ``step/loss`` and
  ``step/grad_norm/…``;
- after training: ``train/epochs``, ``train/best_epoch``, ``train/stopped_early``, ``val/best_loss``;
- after evaluation: ``test/loss``, ``test/accuracy``, ``test/macro_f1``, ``test/f1/<class>``, … or
  ``test/mse``, ``test/mae``, ``test/r2``.
"""

from __future__ import annotations

from mlplab.core import EpochEvent, History, StepEvent

TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY, LR = "train/loss", "val/loss", "val/accuracy", "lr"


def _kept(values: dict) -> dict[str, float]:
    return {k: v for k, v in values.items() if v is not None}


def epoch(event: EpochEvent) -> dict[str, float]:
    """What an epoch reports; the history table has one row of these per epoch."""
    return _kept({TRAIN_LOSS: event.train_loss, VAL_LOSS: event.val_loss, VAL_ACCURACY: event.val_accuracy,
                  LR: event.lr, **event.stats.as_dict()})


def step(event: StepEvent) -> dict[str, float]:
    """The per-step stream: the loss and the gradient norms (empty on steps without statistics)."""
    if event.stats is None:
        return {}
    norms = {f"step/{k}": v for k, v in event.stats.as_dict().items() if k.startswith("grad_norm/")}
    return {"step/loss": event.loss, **norms}


def training(history: History) -> dict:
    """What the train stage reports: the last losses, the best epoch, whether it stopped early."""
    out = {TRAIN_LOSS: history.train_loss[-1], "train/epochs": len(history.train_loss),
           "train/best_epoch": history.best_epoch, "train/stopped_early": history.stopped_early}
    if history.val_loss:
        out.update({VAL_LOSS: history.val_loss[-1], "val/best_loss": history.best_loss})
    if history.val_accuracy:
        out[VAL_ACCURACY] = history.val_accuracy[-1]
    return out


def test(scores: dict, per_class: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    """``test/<score>`` for each score, and ``test/<score>/<class>`` for each class's scores."""
    out = {f"test/{k}": v for k, v in scores.items()}
    for cls, values in (per_class or {}).items():
        out.update({f"test/{k}/{cls}": v for k, v in values.items()})
    return out


def numeric(values: dict) -> dict[str, float]:
    """The entries MLflow can hold as metrics (numbers, not flags or tables)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
