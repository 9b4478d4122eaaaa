"""The README is true: its commands run as written, in order, in a fresh copy of the project.

The commands are read from the README's ```bash blocks, so one added there is run here too. Each is
made tiny by a rule for its kind; only the commands in ``SKIP`` are not run, each for the reason given.
"""

import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import BIN, PYTHON, REPO, run
from tests.tracking.test_ui import _free_port

README = (REPO / "README.md").read_text()

SKIP = {"make test": "it is this test suite: it would run itself (and takes minutes)"}

#: Commands that serve until stopped, and the variable that names their port.
SERVERS = {"make ui": "PORT"}

#: (pattern, replacement) for each simple command, so that it finishes in seconds. A run keeps
#: an experiment or epochs it sets itself; make must not build a venv (the one running us is it).
RULES = [
    (r"^make ", "make -o .venv/installed "),
    (r"^python pipelines/train\.py(?!.*experiment=).*", r"\g<0> experiment=smoke"),
    (r"^dvc exp run(?!.*training\.epochs=).*", r"\g<0> -S training.epochs=2"),
]

#: MLflow's default store, as a user has it: mlflow.db in the project.
DEFAULT_STORE = {"MLFLOW_TRACKING_URI": ""}


def commands() -> list[str]:
    """Every command line of the README's bash blocks, in order, without comments."""
    lines = [line for block in re.findall(r"```bash\n(.*?)```", README, re.S) for line in block.splitlines()]
    return [c for c in (re.sub(r"(^|\s)#.*", "", line).strip() for line in lines) if c]


def tiny(command: str) -> str:
    """``command`` with :data:`RULES` applied to each simple command between ``&&``, ``|``, ``;``."""
    parts = re.split(r"(\s*(?:&&|\|\|?|;)\s*)", command)
    for pattern, replacement in RULES:
        parts = [re.sub(pattern, replacement, part) for part in parts]
    return "".join(parts)


def shell(command: str, repo, **env) -> subprocess.CompletedProcess:
    res = run(["bash", "-c", command], repo, env={**DEFAULT_STORE, **env})
    assert res.returncode == 0, f"{command!r} exited {res.returncode}:\n{(res.stdout + res.stderr)[-3000:]}"
    return res


def wait_for_queue(repo, timeout: float = 300) -> None:
    """``dvc queue start`` returns at once; its experiments must all succeed."""
    deadline = time.monotonic() + timeout
    while (status := shell("dvc queue status", repo).stdout) and re.search(r"Queued|Running", status):
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert "Failed" not in status, status


def answers(command: str, repo, port_variable: str, timeout: float = 180) -> None:
    """Start a server as written, on a free port, and stop it once it answers."""
    port = _free_port()
    env = {**os.environ, **DEFAULT_STORE, port_variable: str(port), "PATH": BIN + os.pathsep + os.environ["PATH"]}
    proc = subprocess.Popen(["bash", "-c", command], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"{command!r} exited {proc.returncode}"
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5).status == 200:
                    return
            except OSError:
                assert time.monotonic() < deadline, f"{command!r} did not answer within {timeout} s"
                time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_exceptions_are_readme_commands():
    assert set(SKIP) | set(SERVERS) <= set(commands())


def test_the_rules_make_commands_tiny():
    assert tiny("dvc exp run --queue -S 'a=1,2' && dvc queue start") == (
        "dvc exp run --queue -S 'a=1,2' -S training.epochs=2 && dvc queue start")
    assert tiny("python pipelines/train.py experiment=xor") == "python pipelines/train.py experiment=xor"
    assert tiny("make repro") == "make -o .venv/installed repro"


def test_a_bad_value_is_the_line_the_readme_shows(tmp_path):
    status, line, key, value = re.search(
        r"exit status (\d+)[^`]*`(mlplab: invalid config: ([\w.]+): [^`]*, got (\S+))`", README).groups()
    res = run([PYTHON, str(REPO / "pipelines/train.py"), f"{key}={value}"], tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (int(status), "", line + "\n")


@pytest.mark.slow
def test_the_readme_commands_run_in_order(repo_copy):
    repo = repo_copy
    for command in commands():
        if command in SKIP:
            continue
        if command in SERVERS:
            answers(tiny(command), repo, SERVERS[command])
            continue
        shell(tiny(command), repo)
        if "dvc queue start" in command:
            wait_for_queue(repo)

    # a non-queued `dvc exp run` changed what the README says it does, and its command undoes that
    back = re.search(r"`(git checkout -- ([^`&]+)&& dvc checkout)`", README)
    named = back[2].split()
    changed = [line[3:] for line in shell("git status --porcelain", repo).stdout.splitlines()]
    assert changed and all(any(p == n or p.startswith(n + "/") for n in named) for p in changed), changed
    shell(back[1], repo)
    assert shell("git status --porcelain", repo).stdout == ""
    assert "up to date" in shell("dvc status", repo).stdout
