"""What training tells its callbacks. Layers are numbered ``m = 1 … L`` as in the maths."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayerStats:
    """Per-layer norms for one optimiser step; each tuple has one entry per layer ``m``.

    ``grad_norm_W[m-1] = ‖∂C/∂Wᵐ‖₂`` (Frobenius) and ``grad_norm_b[m-1] = ‖∂C/∂bᵐ‖₂`` before
    clipping; ``weight_norm[m-1] = ‖Wᵐ‖₂`` after the step; ``update_ratio[m-1] = ‖ΔWᵐ‖₂ / ‖Wᵐ‖₂``
    with ``‖Wᵐ‖₂`` taken before the step.
    """

    grad_norm_W: tuple[float, ...]
    grad_norm_b: tuple[float, ...]
    weight_norm: tuple[float, ...] = ()
    update_ratio: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, float]:
        """Flat ``{"grad_norm/W1": …, "grad_norm/b1": …, "weight_norm/W1": …, …}``."""
        out = {}
        for key, values in (
            ("grad_norm/W", self.grad_norm_W),
            ("grad_norm/b", self.grad_norm_b),
            ("weight_norm/W", self.weight_norm),
            ("update_ratio/W", self.update_ratio),
        ):
            out.update({f"{key}{m}": v for m, v in enumerate(values, start=1)})
        return out


@dataclass(frozen=True)
class StepEvent:
    """After each optimiser step. ``step`` counts steps from 1 over the whole fit."""

    epoch: int
    step: int
    loss: float
    lr: float
    stats: LayerStats | None = None


@dataclass(frozen=True)
class EpochEvent:
    """After each epoch (counted from 1). ``stats`` are those of the epoch's last step."""

    epoch: int
    step: int
    train_loss: float
    lr: float
    stats: LayerStats
    val_loss: float | None = None
    val_accuracy: float | None = None
    improved: bool = False


@dataclass
class History:
    """Per-epoch record of a fit, returned by :func:`mlplab.core.fit`."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = float("inf")
    stopped_early: bool = False
    steps: int = 0

    def __repr__(self) -> str:
        """One line, however long the fit: the lists are summarised, not printed."""
        last = [f"{name}={values[-1]:.4g}" for name, values in
                (("train_loss", self.train_loss), ("val_loss", self.val_loss), ("val_accuracy", self.val_accuracy))
                if values]
        return (f"History(epochs={len(self.train_loss)}, steps={self.steps}, {', '.join(last)}"
                f"{', ' if last else ''}best_epoch={self.best_epoch}, stopped_early={self.stopped_early})")


class Callback:
    """Receives training events; override what you need. Setting ``stop_training`` in
    :meth:`on_epoch_end` ends the fit after that epoch, as early stopping would (a search's
    pruner does)."""

    stop_training: bool = False

    def on_fit_start(self, network) -> None:
        pass

    def on_step_end(self, event: StepEvent) -> None:
        pass

    def on_epoch_end(self, event: EpochEvent) -> None:
        pass

    def on_fit_end(self, history: History) -> None:
        pass
