"""Stores that cannot be used are refused in one line, exit 2, before anything runs — real files,
real processes, no MLflow import on the way."""

import http.server
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, REPO, run

pytestmark = pytest.mark.slow  # a real process per case
TRAIN = str(REPO / "pipelines/train.py")


def train(tmp_path: Path, uri: str, *args: str, prefix: list[str] = ()):
    """A smoke run against ``uri``, as a user types it; returns the process and its wall time."""
    t = time.monotonic()
    res = run([*prefix, PYTHON, TRAIN, "experiment=smoke", f"hydra.run.dir={tmp_path}/run", *args], tmp_path,
              env={"MLFLOW_TRACKING_URI": uri})
    return res, time.monotonic() - t


def one_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and res.returncode == 2, (res.returncode, res.stderr)
    return lines[0]


def test_corrupt_file(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database, just some bytes" * 100)
    res, _ = train(tmp_path, f"sqlite:///{db}")
    assert one_line(res) == (f"mlplab: error: MLFLOW_TRACKING_URI: {db} is not an SQLite database (corrupt or another "
                             "kind of file); move it away to start a new store, or point tracking.uri elsewhere")


def test_damaged_database(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")
        con.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 50)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, overwritten
    db.write_bytes(bytes(data))
    res, _ = train(tmp_path, f"sqlite:///{db}")
    assert f"{db} is a damaged SQLite database" in one_line(res)


def test_half_built_store(tmp_path, migrated_store):
    db = tmp_path / "mlflow.db"
    shutil.copy(migrated_store, db)
    with sqlite3.connect(db) as con:  # as if the creation had stopped half-way
        con.execute("DROP TABLE alembic_version")
        con.execute("DROP TABLE metrics")
    res, _ = train(tmp_path, f"sqlite:///{db}")
    assert one_line(res) == (f"mlplab: error: MLFLOW_TRACKING_URI: {db} is a half-built MLflow store (its creation "
                             "was interrupted); it holds no runs: delete it and run again")


@pytest.mark.parametrize("uri, message", [
    ("file:///tmp/mlruns", "'file:///tmp/mlruns' is a file store, which MLflow 3 no longer writes by default"),
    ("mlruns", "'mlruns' is a file store"),
    ("s3a://bucket/x", "unknown scheme 's3a' in 's3a://bucket/x'; valid: sqlite, postgresql"),
    ("sqlite://", "'sqlite://' names no file; write sqlite:///<path>/mlflow.db"),
    ("sqlite:////proc/1/nowhere/mlflow.db", "cannot create the folder /proc/1/nowhere for the store"),
    ("http://127.0.0.1:9", "cannot reach the tracking server at http://127.0.0.1:9 ([Errno 111] Connection refused)"),
], ids=["file-uri", "bare-folder", "unknown-scheme", "no-file", "uncreatable", "refused"])
def test_unusable_uri(tmp_path, uri, message):
    res, seconds = train(tmp_path, uri)
    assert one_line(res).startswith(f"mlplab: error: MLFLOW_TRACKING_URI: {message}")
    assert seconds < 15


def test_the_uri_setting_is_named(tmp_path):
    res, _ = train(tmp_path, "sqlite:///unused.db", "tracking.uri=file:///x")
    assert one_line(res).startswith("mlplab: error: tracking.uri: 'file:///x' is a file store")


def test_a_server_that_never_answers_is_given_up_within_15_s(tmp_path):
    with socket.socket() as silent:  # accepts connections, never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        res, seconds = train(tmp_path, f"http://127.0.0.1:{port}")
    assert one_line(res).startswith(f"mlplab: error: MLFLOW_TRACKING_URI: cannot reach the tracking server at "
                                    f"http://127.0.0.1:{port} (timed out)")
    assert seconds < 15


class _Pretender(http.server.BaseHTTPRequestHandler):
    """A server that answers like ``mlflow server``'s health and version endpoints and fails the rest."""

    version, api_status = "3.17.2", 200

    def do_GET(self):
        status, body = {"/health": (200, "OK"), "/version": (200, self.version)}.get(self.path, (self.api_status, "{}"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("version, api_status, message", [
    ("2.9.0", 200, "the tracking server at {uri} runs MLflow 2.9.0, this client 3."),
    (None, 503, "the tracking server at {uri} cannot read its store (503 Service Unavailable); is its database "
                "running? (make server starts both)"),
], ids=["another-mlflow", "database-down"])
def test_a_server_of_another_mlflow_or_without_its_database_is_refused(tmp_path, version, api_status, message):
    handler = type("Handler", (_Pretender,), {"version": version or _Pretender.version, "api_status": api_status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        res, seconds = train(tmp_path, uri)
    finally:
        server.shutdown()
    assert one_line(res).startswith(f"mlplab: error: MLFLOW_TRACKING_URI: {message.format(uri=uri)}")
    assert seconds < 15


@pytest.mark.parametrize("uri, message", [
    ("postgresql+psycopg2://nobody@127.0.0.1:9/mlflow", "cannot connect to PostgreSQL at "
                                                        "postgresql+psycopg2://nobody@127.0.0.1:9/mlflow (connection to"),
    ("postgresql+nodriver://nobody@127.0.0.1:9/mlflow", "cannot use 'postgresql+nodriver://nobody@127.0.0.1:9/mlflow'"),
], ids=["not-running", "unknown-driver"])
def test_a_postgresql_store_that_cannot_be_used_is_one_line(tmp_path, uri, message):
    res, seconds = train(tmp_path, uri)
    assert one_line(res).startswith(f"mlplab: error: MLFLOW_TRACKING_URI: {message}")
    assert seconds < 15


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the command as the user nobody, which needs root")
def test_read_only_store(migrated_store):
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's folders are private to root
    try:
        folder.chmod(0o755)
        db = folder / "mlflow.db"
        shutil.copy(migrated_store, db)
        db.chmod(0o644)  # root's file: read-only for nobody
        out = folder / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        res, _ = train(out, f"sqlite:///{db}", prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        assert one_line(res) == (f"mlplab: error: MLFLOW_TRACKING_URI: the folder {folder} is read-only; SQLite "
                                 "needs to write its journal there")
        folder.chmod(0o777)  # the folder is writable now, the file still is not
        res, _ = train(out, f"sqlite:///{db}", prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        assert one_line(res) == (f"mlplab: error: MLFLOW_TRACKING_URI: {db} is read-only; make it writable or point "
                                 "tracking.uri elsewhere")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
