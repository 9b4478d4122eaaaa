"""The training loop: minibatches, validation, early stopping, events and divergence checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlplab.core.events import Callback, EpochEvent, History, LayerStats, StepEvent
from mlplab.core.constraints import Interval, check_all
from mlplab.core.network import Network, Weights, as_generator
from mlplab.core.optimisers import Optimiser


class DivergenceError(FloatingPointError):
    """Raised when the loss or a gradient stops being finite.

    Attributes ``epoch`` (from 1), ``step`` (from 1, over the whole fit) and ``what`` (``"loss"``
    or the parameter, e.g. ``"W2"``) say where it happened.
    """

    def __init__(self, epoch: int, step: int, what: str):
        self.epoch, self.step, self.what = epoch, step, what
        super().__init__(f"training diverged: non-finite {what} at epoch {epoch}, step {step}")


def _grad_norms(grads: Weights, epoch: int, step: int) -> tuple[list[float], list[float]]:
    """Norms of every gradient; a non-finite one raises :class:`DivergenceError`.

    One dot product per array costs ``1/(2·n_samples)`` of the matrix product that made it.
    """
    sq_W = [float(np.vdot(dW, dW)) for dW, _ in grads]
    sq_b = [float(np.vdot(db, db)) for _, db in grads]
    if not math.isfinite(sum(sq_W) + sum(sq_b)):
        for m, (w, b) in enumerate(zip(sq_W, sq_b), start=1):
            if not math.isfinite(w + b):
                raise DivergenceError(epoch, step, f"gradient of {'b' if math.isfinite(w) else 'W'}{m}")
    return [math.sqrt(x) for x in sq_W], [math.sqrt(x) for x in sq_b]


#: Bounds of :func:`fit`'s keyword arguments, read by it and by the config validation.
FIT_CONSTRAINTS = {
    "epochs": Interval(int, 1),
    "batch_size": Interval(int, 1, optional=True),
    "patience": Interval(int, 1, optional=True),
    "min_delta": Interval(float, 0),
    "stats_every": Interval(int, 1, optional=True),
}


def fit(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    optimiser: Optimiser,
    epochs: int,
    rng: np.random.Generator | int,
    batch_size: int | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    callbacks: Sequence[Callback] = (),
    stats_every: int | None = None,
) -> History:
    """Train ``network`` in place by minibatch gradient descent.

    Parameters
    ----------
    X : array, shape ``(n_samples, N⁰)``
    Y : array, shape ``(n_samples, Nᴸ)``
    batch_size : int or None
        ``None`` means full batch. The last minibatch of an epoch may be smaller.
    rng : Generator or int
        Source of the per-epoch shuffling (full batch does not shuffle).
    validation : ``(X_val, Y_val)`` or None
        Evaluated after every epoch; it is what early stopping watches (else the train loss).
    patience : int or None
        Stop after this many epochs without an improvement larger than ``min_delta``, and
        restore the best weights. ``None`` trains all epochs and keeps the last weights.
    stats_every : int or None
        Attach :class:`LayerStats` to every ``stats_every``-th :class:`StepEvent`. Epoch events
        always carry the stats of the epoch's last step.

    Raises
    ------
    DivergenceError
        When the loss or a gradient becomes NaN or infinite. NumPy's overflow and invalid-value
        warnings are silenced while training: every step is checked, and this error says where.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _fit(network, X, Y, optimiser, epochs, rng, batch_size, validation, patience, min_delta,
                    callbacks, stats_every)


def _fit(network, X, Y, optimiser, epochs, rng, batch_size, validation, patience, min_delta, callbacks,
         stats_every) -> History:
    check_all(FIT_CONSTRAINTS, {"epochs": epochs, "batch_size": batch_size, "patience": patience,
                                "min_delta": min_delta, "stats_every": stats_every})
    rng = as_generator(rng)
    X = network.as_input(X)
    Y = network.as_target(Y, len(X))
    if validation is not None:
        X_val = network.as_input(validation[0])
        Y_val = network.as_target(validation[1], len(X_val))
    n = len(X)
    batch = n if batch_size is None else min(int(batch_size), n)
    history = History()
    best_weights = None
    waited = 0
    step = 0
    for cb in callbacks:
        cb.on_fit_start(network)
    for epoch in range(1, int(epochs) + 1):
        lr = optimiser.start_epoch(epoch - 1)
        if batch < n:
            order = rng.permutation(n)
            Xs, Ys = X[order], Y[order]
        else:
            Xs, Ys = X, Y
        total = 0.0
        for start in range(0, n, batch):
            step += 1
            xb, yb = Xs[start : start + batch], Ys[start : start + batch]
            loss, grads = network.backprop(xb, yb)
            if not math.isfinite(loss):
                raise DivergenceError(epoch, step, "loss")
            norms_W, norms_b = _grad_norms(grads, epoch, step)
            step_stats = bool(stats_every) and step % stats_every == 0
            want_stats = bool(callbacks) and (step_stats or start + batch >= n)
            if want_stats:
                before = [W.copy() for W, _ in network.weights]
            optimiser.step(network.weights, grads)
            stats = None
            if want_stats:
                stats = _layer_stats(network, before, norms_W, norms_b)
            total += loss * len(xb)
            if callbacks:
                event = StepEvent(epoch, step, loss, lr, stats if step_stats else None)
                for cb in callbacks:
                    cb.on_step_end(event)
        train_loss = total / n
        history.train_loss.append(train_loss)
        history.lr.append(lr)
        val_loss = val_acc = None
        if validation is not None:
            val_loss, val_acc = network.score(X_val, Y_val)
            history.val_loss.append(val_loss)
            if val_acc is not None:
                history.val_accuracy.append(val_acc)
        monitored = train_loss if val_loss is None else val_loss
        if not math.isfinite(monitored):
            raise DivergenceError(epoch, step, "validation loss" if val_loss is not None else "loss")
        improved = monitored < history.best_loss - min_delta
        if improved:
            history.best_loss, history.best_epoch, waited = monitored, epoch, 0
            if patience is not None:
                best_weights = [(W.copy(), b.copy()) for W, b in network.weights]
        else:
            waited += 1
        event = EpochEvent(epoch, step, train_loss, lr, stats, val_loss, val_acc, improved)
        for cb in callbacks:
            cb.on_epoch_end(event)
        if any(cb.stop_training for cb in callbacks) or patience is not None and waited >= patience:
            history.stopped_early = True
            break
    history.steps = step
    for m, (W, b) in enumerate(network.weights, start=1):  # the last update is checked by no later step
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise DivergenceError(epoch, step, f"weights of layer {m}")
    if best_weights is not None:
        network.weights = best_weights
    for cb in callbacks:
        cb.on_fit_end(history)
    return history


def _norm(a: np.ndarray) -> float:
    return math.sqrt(float(np.vdot(a, a)))


def _layer_stats(network: Network, before: list[np.ndarray], norms_W, norms_b) -> LayerStats:
    weight_norms, ratios = [], []
    for (W, _), W0 in zip(network.weights, before):
        weight_norms.append(_norm(W))
        old = _norm(W0)
        W0 -= W  # the update, negated; W0 is a scratch copy
        ratios.append(_norm(W0) / old if old else math.inf)
    return LayerStats(tuple(norms_W), tuple(norms_b), tuple(weight_norms), tuple(ratios))
