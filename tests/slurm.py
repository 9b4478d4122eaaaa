"""A real single-node SLURM cluster for the tests: Debian's slurmctld, slurmd and munge (``.ci/run``
installs them), configured in a temporary folder and stopped by PID.

Nothing under /etc or /run is written: every SLURM program (the daemons, ``sbatch``, ``squeue``,
``scancel``, ``sinfo``, and ``srun`` inside a job) reads the ``slurm.conf`` named by ``SLURM_CONF``,
which names our own munge socket (munged with a key of its own). The node is this machine, with
its CPUs and most of its memory. There is no job accounting (no ``sacct``), as on some small clusters.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.services import free_port, stop

PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
MEMORY_MARGIN_MB = 1024  # left to the system when the node offers this machine's memory
PARTITION = "debug"


def missing() -> str | None:
    """Why a cluster cannot start here, or ``None``."""
    absent = [p for p in PROGRAMS if shutil.which(p) is None]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} missing): "
                ".ci/run installs slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        return "a SLURM cluster needs root (the daemons run as root, munged as the munge user)"
    return None


def _memory_mb() -> int:
    kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
              if line.startswith("MemTotal:"))
    return kb // 1024 - MEMORY_MARGIN_MB


def _conf(folder: Path, munge_socket: Path) -> str:
    host = socket.gethostname()
    settings = {
        "ClusterName": "mlplab",
        "SlurmctldHost": f"{host}(127.0.0.1)",
        "SlurmctldPort": free_port(),
        "SlurmdPort": free_port(),
        "SlurmUser": "root",
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        "AuthInfo": f"socket={munge_socket}",
        "StateSaveLocation": folder / "state",
        "SlurmdSpoolDir": folder / "spool",
        "SlurmctldPidFile": folder / "slurmctld.pid",
        "SlurmdPidFile": folder / "slurmd.pid",
        "SlurmctldLogFile": folder / "slurmctld.log",
        "SlurmdLogFile": folder / "slurmd.log",
        "ProctrackType": "proctrack/linuxproc",  # no cgroups in a container
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_CPU_Memory",  # jobs ask for CPUs and memory, as on a real cluster
        "MpiDefault": "none",
        "ReturnToService": 2,
    }
    lines = [f"{k}={v}" for k, v in settings.items()]
    lines += [f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN",
              f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP"]
    return "\n".join(lines) + "\n"


def _logs(folder: Path, lines: int = 15) -> str:
    """The end of every log of the cluster, for an error that must be understood after its folder is gone."""
    return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                     for log in sorted(folder.rglob("*.log")))


def _wait_until_idle(env: dict, processes: list[subprocess.Popen], folder: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for p in processes:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited with {p.returncode}:\n{_logs(folder)}")
        res = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=env, capture_output=True, text=True)
        if res.stdout.strip() == "idle":
            return
        time.sleep(0.3)
    raise TimeoutError(f"the SLURM node was not idle within {seconds} s:\n{_logs(folder)}")


def _drain(env: dict, seconds: float = 45) -> None:
    """Cancel the jobs a failed test left and wait until they are gone: their ``slurmstepd`` would
    outlive slurmd (SLURM sends SIGKILL ``KillWait``, 30 s, after SIGTERM)."""
    subprocess.run(["scancel", f"--partition={PARTITION}"], env=env, capture_output=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        res = subprocess.run(["squeue", "--noheader"], env=env, capture_output=True, text=True)
        if res.returncode != 0 or not res.stdout.strip():
            return
        time.sleep(0.5)


@contextmanager
def cluster():
    """Start munged, slurmctld and slurmd; once the node is idle, yield the environment that
    points SLURM's programs to this cluster (``{"SLURM_CONF": …}``). Stopped by PID at the end."""
    folder = Path(tempfile.mkdtemp(prefix="mlplab-slurm-"))
    munge = folder / "munge"
    munge.mkdir()
    for path in (folder, munge):
        path.chmod(0o755)  # munged runs as munge, and every user must reach its socket
    shutil.chown(munge, "munge", "munge")
    munge_socket, key = munge / "munge.socket", munge / "munge.key"
    subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
    shutil.chown(key, "munge", "munge")
    (folder / "slurm.conf").write_text(_conf(folder, munge_socket))
    cluster_env = {"SLURM_CONF": str(folder / "slurm.conf")}
    env = {**os.environ, **cluster_env}
    processes: list[subprocess.Popen] = []
    try:
        with open(folder / "daemons.log", "w") as log:
            processes.append(subprocess.Popen(
                ["munged", "-F", f"--socket={munge_socket}", f"--key-file={key}",
                 f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
                 f"--seed-file={munge / 'munged.seed'}"],
                user="munge", group="munge", extra_groups=[], stdout=log, stderr=log))
            deadline = time.monotonic() + 10
            while not munge_socket.exists() and time.monotonic() < deadline and processes[0].poll() is None:
                time.sleep(0.1)
            for daemon in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
                processes.append(subprocess.Popen(daemon, env=env, stdout=log, stderr=log))
        _wait_until_idle(env, processes, folder)
        yield cluster_env
    finally:
        if len(processes) == 3:
            _drain(env)
        for p in reversed(processes):  # slurmd first, munged last
            stop(p, seconds=15)
        shutil.rmtree(folder, ignore_errors=True)


def queue(cluster_env: dict) -> dict[str, str]:
    """Every job the controller knows, ended ones too: ``{job id: state}``, a task of an array as
    ``<array id>_<task>``."""
    res = subprocess.run(["squeue", "--noheader", "--states=all", "--array", "--format=%i %T"],
                         env={**os.environ, **cluster_env}, check=True, capture_output=True, text=True)
    return dict(line.split() for line in res.stdout.splitlines())


def cancel(job_id: str, cluster_env: dict) -> None:
    """``scancel`` a job."""
    subprocess.run(["scancel", job_id], env={**os.environ, **cluster_env}, check=True, capture_output=True)
