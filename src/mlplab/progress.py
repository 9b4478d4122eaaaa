"""What a run shows while it trains: one live line (tqdm, on a terminal only) and, in the job's
log, an epoch line at most every few seconds and at the end."""

from __future__ import annotations

import logging
import time

from mlplab import metrics
from mlplab.core import Callback, EpochEvent, History

LOG = logging.getLogger("mlplab.progress")
SHOWN = (metrics.TRAIN_LOSS, metrics.VAL_LOSS, metrics.VAL_ACCURACY)


class Progress(Callback):
    """A tqdm bar over the epochs with the latest losses and accuracy; quiet when stderr is not a
    terminal. ``every_s``: seconds between two epoch lines in the log."""

    def __init__(self, epochs: int, name: str = "", every_s: float = 5.0):
        from tqdm import tqdm

        self.bar = tqdm(total=epochs, desc=name or None, unit="epoch", leave=False, disable=None, dynamic_ncols=True)
        self.every_s, self.logged, self.line = every_s, time.monotonic(), ""

    def on_epoch_end(self, event: EpochEvent) -> None:
        values = metrics.epoch(event)
        self.line = f"epoch {event.epoch}: " + ", ".join(f"{k} {values[k]:.4g}" for k in SHOWN if k in values)
        self.bar.set_postfix_str(self.line.split(": ", 1)[1], refresh=False)
        self.bar.update()
        if time.monotonic() - self.logged >= self.every_s:
            LOG.info(self.line)
            self.logged = time.monotonic()

    def on_fit_end(self, history: History) -> None:
        self.close()
        LOG.info(self.line + (" (stopped early)" if history.stopped_early else ""))

    def close(self) -> None:
        self.bar.close()
