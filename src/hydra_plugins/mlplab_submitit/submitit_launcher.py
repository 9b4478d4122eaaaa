"""Hydra's official submitit launchers, changed in one respect: a sweep waits for every job, and a
job that ends without a result never takes the sweep down.

    python pipelines/train.py -m hydra/launcher=submitit_slurm hydra.launcher.partition=debug \\
        hydra.launcher.timeout_min=10 hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=1 seed=0,1,2

The official ``launch`` waits for the jobs one by one with ``job.results()``, which raises for the
first job that ended without a result (``scancel``, its time limit, its node lost) while the later
jobs still run, and the sweep's parent run would close before them. Here such a job is a
COMPLETED job whose value is its record (:func:`mlplab.sweep.ended`): "killed" if it was cancelled,
else "failed" with the state SLURM gave it. A job's success is never read from SLURM, which calls a
job COMPLETED whatever our code made of it (Hydra #1928): the job's own record says.

``conf/hydra/launcher/submitit_{slurm,local}.yaml`` extend the nodes stored here with our defaults.
"""

# no `from __future__ import annotations`: Hydra imports plugins outside sys.modules

import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as official
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

POLL_S = 1.0  # as often as submitit's own wait looks for a result
#: The states of a job that ended (squeue's names): any other is still to come or running.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}
#: States of a job stopped from outside: ``scancel``, or a local job's process stopped by a signal.
STOPPED = ("CANCELLED", "INTERRUPTED")


class Ending:
    """A submitted job whose ``results()`` waits until it ends and never raises."""

    def __init__(self, launcher, job, overrides, num) -> None:
        self.launcher, self.job, self.overrides, self.num = launcher, job, list(overrides), num

    def __repr__(self) -> str:
        return f"Ending({self.job!r}, job {self.num})"

    def results(self) -> list:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        while (state := self.launcher.end_state(self.job)) is None:
            time.sleep(POLL_S)
        name = f"{self.launcher.KIND} job {self.job.job_id}"
        reason = f"{name} ended {state}"
        if self.job.done():  # its result is there (or submitit knows it never will be)
            try:
                return self.job.results()
            except FailedJobError:  # raised outside Hydra's task, which records its own errors
                reason = f"{name} raised an error; see {self.job.paths.stderr}"
            except UncompletedJobError:
                pass
        from mlplab.sweep import ended

        # a job's folder is named by its number (Hydra's default hydra.sweep.subdir, which mlplab.sweep reads too)
        out_dir = Path(str(self.launcher.config.hydra.sweep.dir)) / str(self.num)
        status = "killed" if state.startswith(STOPPED) else "failed"
        ret = JobReturn(overrides=self.overrides, working_dir=str(out_dir), status=JobStatus.COMPLETED)
        ret.return_value = ended(out_dir, self.overrides, status, reason)
        return [ret]


class Settling:
    """The official ``launch`` as it is, with jobs that settle: see :class:`Ending`."""

    KIND = "local"

    def end_state(self, job) -> str | None:
        """The state a job ended in, ``None`` while it is waiting or running."""
        return job.state if job.done() else None

    def launch(self, job_overrides, initial_job_idx):
        import submitit

        submitted = submitit.AutoExecutor

        class Executor(submitted):
            def update_parameters(self, **kwargs):
                try:
                    super().update_parameters(**kwargs)
                except (NameError, ValueError) as exc:  # a key this executor does not take, a bad value
                    raise refused(exc) from None

            def map_array(self, launcher, overrides, dir_keys, nums, *rest):
                from submitit.core.utils import FailedJobError

                said = io.StringIO()  # submitit echoes a refusing sbatch's lines: the refusal says them once
                try:
                    with contextlib.redirect_stderr(said):
                        jobs = super().map_array(launcher, overrides, dir_keys, nums, *rest)
                except FailedJobError as exc:  # sbatch said no: a partition, a limit, no cluster
                    raise refused(exc, every=True) from None
                sys.stderr.write(said.getvalue())
                return [Ending(launcher, job, o, n) for job, o, n in zip(jobs, overrides, nums)]

        # the official launch builds this executor (reading every hydra.launcher key) and submits
        # through it; the jobs it returns are the ones it then waits for
        submitit.AutoExecutor = Executor
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            submitit.AutoExecutor = submitted


def refused(exc: Exception, every: bool = False):
    """The submission's refusal as a one-line config error on ``hydra.launcher``: the first line of
    submitit's (its further lines list every valid key), or ``every`` line of sbatch's."""
    from mlplab.config import ConfigError

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    return ConfigError("hydra.launcher", f"the jobs were not submitted: {'; '.join(lines) if every else lines[0]}")


class LocalLauncher(Settling, official.LocalLauncher):
    pass


class SlurmLauncher(Settling, official.SlurmLauncher):
    KIND = "SLURM"

    def end_state(self, job) -> str | None:
        if job.done():
            return job.state
        if job.state != "UNKNOWN":  # sacct answered: pending or running
            return None
        # no job accounting on this cluster, so submitit cannot tell a job that ended without a
        # result from one that runs: ask the controller, which knows an ended job for MinJobAge
        # (300 s by default), and forgets at once a task of an array cancelled before it started
        res = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job.job_id}"],
                             capture_output=True, text=True)
        state = res.stdout.strip()
        if state in ENDED:
            return state
        forgotten = not state if res.returncode == 0 else "Invalid job id" in res.stderr
        return "unrecorded (SLURM no longer knows the job and keeps no accounting)" if forgotten else None


_store = ConfigStore.instance()
for _name, _node in (("submitit_slurm", SlurmQueueConf(_target_=f"{__name__}.SlurmLauncher")),
                     ("submitit_local", LocalQueueConf(_target_=f"{__name__}.LocalLauncher"))):
    _store.store(group="hydra/launcher", name=f"mlplab_{_name}", node=_node, provider="mlplab")
    # Hydra would match conf/hydra/launcher/<name>.yaml against the official node of that name
    # ("automatic schema matching", deprecated: a warning on every run, and the official _target_
    # wins); the official plugin is scanned before this one, so its nodes are there to retire
    _store.repo["hydra"]["launcher"].pop(f"{_name}.yaml", None)
