"""Real services for the tests that go beyond one machine, each started here and stopped by PID.

- :func:`moto_s3`: moto's S3 server on a free loopback port (DVC remotes, MLflow artefacts).
- :func:`tracking_server`: ``make server`` (PostgreSQL and ``mlflow server``) in a project, on a
  free port; ``make server-stop`` at the end, and SIGKILL by PID for anything it left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import BIN, run

#: moto accepts any credentials; boto3, DVC and MLflow read these from the environment.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    """Until ``url`` answers (any HTTP status), or fail naming it; stop early if ``process`` died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen, seconds: float = 10) -> None:
    """SIGTERM by PID, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def moto_s3(log: Path, buckets: tuple[str, ...] = ("mlplab",)):
    """moto's S3 server: yields ``(endpoint_url, environment)``, the environment holding the
    credentials and ``MLFLOW_S3_ENDPOINT_URL``; ``buckets`` are created first."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(endpoint, 30, process)
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        yield endpoint, {**S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    finally:
        stop(process)


def make(project: Path, target: str, port: int, env: dict | None = None, **variables: str):
    """``make <target> PORT=<port>`` in ``project`` as a user types it (the venv is the tests')."""
    args = [f"{k}={v}" for k, v in variables.items()]
    return run(["make", "-s", "-o", ".venv/installed", target, f"PORT={port}", *args], project, env=env)


@contextmanager
def tracking_server(project: Path, env: dict | None = None, **variables: str):
    """``make server`` on a free port: yields its ``MLFLOW_TRACKING_URI``."""
    from mlplab.server import Server

    port = free_port()
    started = make(project, "server", port, env, **variables)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if make(project, "server-stop", port, env).returncode != 0:
            Server(project, port).stop()  # the same, by PID, with a traceback to read
