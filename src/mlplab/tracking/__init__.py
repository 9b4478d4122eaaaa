"""Tracking, as a small seam: the stages call a :class:`Tracker` unconditionally, and whether
anything is recorded — and where — is decided once, by :func:`open_tracker`.

:class:`Tracker` itself records nothing (``tracking.enabled: false``); :class:`~mlplab.tracking.mlflow.MlflowTracker`
records into MLflow and is the only code that talks to it. A second backend would be one more
module here.

A tracker never loses a run: a store that fails *while* training (corrupt, locked, a server that
stops answering) is remembered in :attr:`Tracker.failure`, later writes are skipped, training
and its outputs go on, and :meth:`Tracker.end` marks the run FAILED wherever it still can.
Only problems found *before* the run starts (:class:`StoreError`) stop the command.
"""

from __future__ import annotations

from pathlib import Path

from mlplab.tracking.store import StoreError, check, resolve_uri

__all__ = ["StoreError", "Tracker", "open_tracker"]


class Tracker:
    """The few things a run tells its tracker. This base class records nothing."""

    #: The run's id in the store, once started.
    run_id: str | None = None
    #: What went wrong with the store while the run was going on, if anything.
    failure: str | None = None

    def start(self, name: str, tags: dict[str, str], *, parent_id: str | None = None,
              resume_id: str | None = None) -> None:
        """Create the run (a child of ``parent_id``), or continue the run ``resume_id``."""

    def log_config(self, cfg: dict) -> None:
        """The whole validated config, as parameters with dotted keys."""

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Metric values at ``step``; a backend may buffer them (see ``tracking.flush_every_s``)."""

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_artifact(self, path: Path, folder: str | None = None, run_id: str | None = None) -> None:
        """A file, or a folder's contents, under ``folder`` of the run's artefacts (or of the
        finished run ``run_id``: a sweep's parent completes its best child)."""

    def log_text(self, text: str, name: str) -> None:
        pass

    def log_model(self, model_file: Path, example, run_id: str | None = None) -> None:
        """The trained model (``paths.model``) as a servable model of this run (or of ``run_id``);
        ``example``: a few raw rows."""

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush and close the run: FINISHED, FAILED or KILLED, with ``reason`` if not FINISHED."""

    def register(self, name: str, objective: str, mode: str, run_id: str | None = None) -> str | None:
        """Make the model of ``run_id`` (default: this run) a new version of the registered model
        ``name``; it becomes ``@champion`` unless the champion's ``objective`` is better. Return
        what happened, in a line (``None``: nothing is recorded)."""
        return None

    @property
    def url(self) -> str | None:
        """Where to look at the run, if anywhere."""
        return None

    # a sweep's parent run
    def children(self):
        """The child runs, as a table (``None``: nothing is recorded)."""
        return None

    def close_children(self, status: str, reason: str) -> int:
        """Close the children still RUNNING; return how many."""
        return 0


def open_tracker(settings: dict, root: Path) -> Tracker:
    """The tracker the validated ``tracking`` section asks for; the store is checked (quickly,
    before MLflow is imported) and opened here, so a bad store is a :class:`StoreError` before
    anything runs."""
    if not settings["enabled"]:
        return Tracker()
    uri, key = resolve_uri(settings["uri"], root)
    check(uri, key)
    from mlplab.tracking.mlflow import MlflowTracker

    return MlflowTracker(settings, uri, key)
