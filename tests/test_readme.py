"""The README is true: its commands run as written, in order, in a fresh copy of the project.

The commands are read from the README's ```bash blocks, so one added there is run here too. Each is
made tiny by a rule for its kind; only the commands in ``SKIP`` are not run, each for the reason given.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
import warnings

import pytest

from tests import slurm
from tests.conftest import BIN, PYTHON, REPO, run
from tests.services import free_port

README = (REPO / "README.md").read_text()

SKIP = {"make test": "it is this test suite: it would run itself (and takes minutes)"}

#: Commands that serve until stopped, by how they begin: the pattern that sets their port and its
#: replacement, and the path where they answer 200. Each is started on a free port and stopped.
SERVERS = {
    "make ui": (r"^", "PORT={port} ", "/"),
    "mlflow models serve": (r"-p \d+", "-p {port}", "/ping"),
}

#: (pattern, replacement) for each simple command, so that it finishes in seconds: a run trains
#: for 2 epochs on the same data (later commands use its model) unless it sets an experiment or
#: the epochs itself; a search runs 3 trials; make must not build a venv (the one running these tests is it).
#: ``make server`` serves on a free port, and the commands that name its address use that port.
SERVER_PORT = free_port()
RULES = [
    (r"^make ", "make -o .venv/installed "),
    (r"^make (.*\bserver(-stop)?)$", rf"PORT={SERVER_PORT} make \1"),
    (r"127\.0\.0\.1:5000\b", f"127.0.0.1:{SERVER_PORT}"),
    (r"^(\w+=\S+ )*python pipelines/train\.py(?!.*(experiment|training\.epochs)=).*", r"\g<0> training.epochs=2"),
    (r"^dvc exp run(?!.*(experiment|training\.epochs)=).*", r"\g<0> -S training.epochs=2"),
    (r"hydra\.sweeper\.n_trials=\d+", "hydra.sweeper.n_trials=3"),
]

#: MLflow's store as a user has it: none named, so mlflow.db in the project (here the copy).
DEFAULT_STORE = {"MLFLOW_TRACKING_URI": ""}


def commands() -> list[str]:
    """Every command line of the README's bash blocks, in order, without comments."""
    lines = [line for block in re.findall(r"```bash\n(.*?)```", README, re.S) for line in block.splitlines()]
    return [c for c in (re.sub(r"(^|\s)#.*", "", line).strip() for line in lines) if c]


def tiny(command: str) -> str:
    """``command`` with :data:`RULES` applied to each simple command in it; the README spaces the
    ``&&``, ``|`` and ``;`` between them, unlike a ``|`` in a quoted regex."""
    parts = re.split(r"(\s+(?:&&|\|\|?|;)\s+)", command)
    for pattern, replacement in RULES:
        parts = [re.sub(pattern, replacement, part) for part in parts]
    return "".join(parts)


def shell(command: str, repo, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` as a user's shell would, and require it to succeed."""
    res = run(["bash", "-c", command], repo, env={**DEFAULT_STORE, **(env or {})})
    assert res.returncode == 0, f"{command!r} exited {res.returncode}:\n{(res.stdout + res.stderr)[-3000:]}"
    return res


def wait_for_queue(repo, timeout: float = 300) -> None:
    """``dvc queue start`` leaves its experiments to a worker: they must all succeed."""
    deadline = time.monotonic() + timeout
    while re.search(r"Queued|Running", status := shell("dvc queue status", repo).stdout):
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert "Failed" not in status, status


def server(command: str) -> tuple | None:
    """How a README command that serves is put on a free port; None for one that ends."""
    return next((how for start, how in SERVERS.items() if command.startswith(start)), None)


def answers(command: str, repo, timeout: float = 180) -> None:
    """Start a README server command, made tiny and put on a free port, and stop it once it answers."""
    pattern, replacement, path = server(command)
    port = free_port()
    command = re.sub(pattern, replacement.format(port=port), tiny(command), count=1)
    env = {**os.environ, **DEFAULT_STORE, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(["bash", "-c", command], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"{command!r} exited {proc.returncode}"
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status == 200:
                    return
            except OSError:
                assert time.monotonic() < deadline, f"{command!r} did not answer within {timeout} s"
                time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_exceptions_are_readme_commands():
    assert set(SKIP) <= set(commands())
    assert all(any(c.startswith(start) for c in commands()) for start in SERVERS)


def test_the_rules_make_commands_tiny():
    assert tiny("dvc exp run --queue -S 'a=1,2' && dvc queue start") == (
        "dvc exp run --queue -S 'a=1,2' -S training.epochs=2 && dvc queue start")
    assert tiny("python pipelines/train.py experiment=xor") == "python pipelines/train.py experiment=xor"
    assert tiny("python pipelines/train.py -m seed=0,1") == "python pipelines/train.py -m seed=0,1 training.epochs=2"
    assert tiny("make repro") == "make -o .venv/installed repro"
    assert tiny("make server") == f"PORT={SERVER_PORT} make -o .venv/installed server"
    assert tiny("MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python pipelines/train.py seed=1") == (
        f"MLFLOW_TRACKING_URI=http://127.0.0.1:{SERVER_PORT} python pipelines/train.py seed=1 training.epochs=2")


def test_a_bad_value_is_the_line_the_readme_shows(tmp_path):
    status, line, key, value = re.search(
        r"exit status (\d+)[^`]*`(mlplab: invalid config: ([\w.]+): [^`]*, got (\S+))`", README).groups()
    res = run([PYTHON, str(REPO / "pipelines/train.py"), f"{key}={value}"], tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (int(status), "", line + "\n")


@pytest.mark.slow
def test_the_readme_commands_run_in_order(repo_copy):
    repo = repo_copy
    with contextlib.ExitStack() as stack:
        # the SLURM sweep needs a cluster: a one-node one, as a user's login node would have
        cluster = None if slurm.missing() else stack.enter_context(slurm.cluster())
        stack.callback(run, ["make", "-o", ".venv/installed", "server-stop", f"PORT={SERVER_PORT}"], repo)
        for command in commands():
            if command in SKIP:
                continue
            if server(command):
                answers(command, repo)
                continue
            if "submitit_slurm" in command and cluster is None:
                warnings.warn(f"not run: {command!r}: {slurm.missing()}")
                continue
            shell(tiny(command), repo, cluster)
            if "dvc queue start" in command:
                wait_for_queue(repo)

    # A non-queued `dvc exp run` changed only what the README names, and its command undoes that.
    # Its `dvc checkout` fails ("Is your cache up to date?") if the committed dvc.lock is not what
    # the committed code makes: `make repro` then made other outputs. Reproduce and commit.
    back = re.search(r"`(git checkout -- ([^`&]+)&&[^`]*)`", README)
    named = back[2].split()
    changed = [line[3:] for line in shell("git status --porcelain", repo).stdout.splitlines()]
    assert changed and all(any(p == n or p.startswith(n + "/") for n in named) for p in changed), changed
    shell(back[1], repo)
    assert shell("git status --porcelain", repo).stdout == ""
    assert "changed outs" not in shell("dvc status", repo).stdout  # the committed outputs are back
