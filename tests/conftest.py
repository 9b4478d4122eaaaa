"""Shared helpers: the real config, composed with Hydra's compose API and shrunk for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.config import CONF_DIR, compose, validate

REPO = CONF_DIR.parent

PYTHON = sys.executable
#: The virtual environment's bin folder, where `dvc` lives next to the Python running the tests.
BIN = str(Path(sys.executable).parent)


def ctrl_c_works() -> None:
    """``preexec_fn`` of a process the tests interrupt: SIGINT as a terminal delivers it. Run as a
    shell's background job (``make test &``, ``nohup``), the tests and their children start with
    SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True, scope="session")
def _no_test_writes_the_project_store(tmp_path_factory):
    """Runs that name no store of their own go to one for the session, never the project's mlflow.db
    (a test that wants the default store passes ``MLFLOW_TRACKING_URI=""``)."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path_factory.mktemp('session-store') / 'mlflow.db'}"


def config(*overrides: str) -> dict:
    """The real composition of conf/ with overrides, validated."""
    return validate(compose(list(overrides)))


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command the way a user would, with the project's virtual environment on PATH."""
    full_env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    full_env.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def committed_params() -> str:
    """The committed ``params.yaml``: ``dvc exp run`` rewrites the working tree's, and following the
    README must not turn the tests red."""
    res = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else (REPO / "params.yaml").read_text()


def untracked(*overrides: str) -> dict:
    """:func:`config` with tracking off."""
    return config(*overrides, "tracking=off")


@pytest.fixture
def smoke() -> dict:
    return untracked("experiment=smoke")


def copy_repo(dest: Path) -> Path:
    """A fresh git + DVC repository at ``dest`` holding the project's tracked files (as a clone would)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")
