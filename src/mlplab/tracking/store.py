"""Where runs are stored, and whether that store can be used — answered before MLflow is imported.

The URI is ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else the SQLite file ``mlflow.db`` at
the project's root. :func:`check` refuses, in one line and within seconds, what would otherwise
end in a long traceback or minutes of retries: an unknown scheme, a file store, a folder that
cannot be created, a SQLite file that is not a (complete) MLflow store or cannot be written, a
PostgreSQL database that does not answer, and a tracking server that does not answer or runs
another MLflow than this client.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

DB_FILE = "mlflow.db"
SQLITE = "sqlite:///"
#: Database and server schemes MLflow can track into.
SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
#: Seconds a tracking server gets to answer each probe before the run refuses to start.
PROBE_TIMEOUT_S = 5.0
#: A request that a tracking server answers only from its store (``/health`` answers without one).
STORE_REQUEST = "/api/2.0/mlflow/experiments/search?max_results=1"
#: MLflow's HTTP client retries for minutes by default. A run rides out a restarting server (it
#: answers again ~10 s after a restart here) with waits of 2, 4, 8 and 16 s, and no longer.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_HEADER = b"SQLite format 3\x00"


class StoreError(ValueError):
    """The tracking store cannot be used; the message names the setting and what to do."""


def resolve_uri(configured: str | None, root: Path) -> tuple[str, str]:
    """``(uri, where it came from)``: ``tracking.uri``, ``MLFLOW_TRACKING_URI`` or the default."""
    if configured:
        return configured, "tracking.uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    return f"{SQLITE}{Path(root) / DB_FILE}", "tracking.uri (default)"


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix(SQLITE)) if uri.startswith(SQLITE) else None


def check(uri: str, key: str) -> None:
    """Raise :class:`StoreError` if ``uri`` cannot be a working store."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme in ("", "file"):
        raise StoreError(f"{key}: {uri!r} is a file store, which MLflow 3 no longer writes by default; "
                         f"use a SQLite file ({SQLITE}<folder>/{DB_FILE}) or a server (http://host:port)")
    if scheme not in SCHEMES:
        raise StoreError(f"{key}: unknown scheme {scheme!r} in {uri!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "sqlite":
        if not uri.startswith(SQLITE) or uri == SQLITE:
            raise StoreError(f"{key}: {uri!r} names no file; write {SQLITE}<path>/{DB_FILE}")
        check_sqlite(sqlite_path(uri), key)
    elif scheme == "postgresql":
        check_postgres(uri, key)
    elif scheme in ("http", "https"):
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
        probe(uri, key)


def check_sqlite(path: Path, key: str) -> None:
    """The folder can be created and written; an existing file is a complete MLflow store."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{key}: cannot create the folder {folder} for the store ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"{key}: the folder {folder} is read-only; SQLite needs to write its journal there")
    if not path.exists() or path.stat().st_size == 0:
        return  # created (atomically) when the store is opened
    if path.is_dir():
        raise StoreError(f"{key}: {path} is a folder, not an SQLite file")
    with open(path, "rb") as f:
        header = f.read(len(_HEADER))
    if header != _HEADER:
        raise StoreError(f"{key}: {path} is not an SQLite database (corrupt or another kind of file); "
                         "move it away to start a new store, or point tracking.uri elsewhere")
    if not os.access(path, os.W_OK):
        raise StoreError(f"{key}: {path} is read-only; make it writable or point tracking.uri elsewhere")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = db.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in tables else None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{key}: {path} is a damaged SQLite database ({exc}); restore a backup or move it away "
                         "to start a new store") from None
    if not tables:
        return  # an empty database: replaced by a new store when opened
    if version is None or not {"experiments", "runs", "metrics"} <= tables:
        raise StoreError(f"{key}: {path} is a half-built MLflow store (its creation was interrupted); it holds "
                         "no runs: delete it and run again")


def needs_creation(path: Path) -> bool:
    """No store yet: no file, an empty file, or an SQLite database without tables."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def check_postgres(uri: str, key: str) -> None:
    """Connect once, for at most :data:`PROBE_TIMEOUT_S` seconds (SQLAlchemy would retry for a minute)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        engine_url = make_url(uri)
        dialect = engine_url.get_dialect()()
        driver = dialect.import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"{key}: cannot use {uri!r} ({exc}); write postgresql+psycopg2://user@host/database") from None
    args, kwargs = dialect.create_connect_args(engine_url)
    try:
        driver.connect(*args, **{**kwargs, "connect_timeout": int(PROBE_TIMEOUT_S)}).close()
    except driver.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"{key}: cannot connect to PostgreSQL at {engine_url.render_as_string(hide_password=True)} "
                         f"({reason}); start it (make server starts the project's) or check the address") from None


def probe(uri: str, key: str) -> None:
    """Ask the server's ``/version`` and :data:`STORE_REQUEST` once, for at most :data:`PROBE_TIMEOUT_S`
    seconds each: it answers, runs the MLflow of this client (constraints.txt pins both), and reads its store."""
    import urllib.error
    import urllib.request
    from importlib.metadata import version

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/version", timeout=PROBE_TIMEOUT_S) as reply:
            server = reply.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise StoreError(f"{key}: the tracking server at {uri} answers with an error ({exc.code} {exc.reason})") from None
        return  # a server without these endpoints (e.g. behind a proxy): MLflow will tell
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"{key}: cannot reach the tracking server at {uri} ({reason}); start it "
                         "(make server) or check the address") from None
    client = version("mlflow")
    if server.split(".")[:2] != client.split(".")[:2]:
        raise StoreError(f"{key}: the tracking server at {uri} runs MLflow {server}, this client {client}; "
                         "run both from the same pins (constraints.txt)")
    try:  # a server whose database is down still answers /version, and fails or hangs on every request
        with urllib.request.urlopen(uri.rstrip("/") + STORE_REQUEST, timeout=PROBE_TIMEOUT_S) as reply:
            reply.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise StoreError(f"{key}: the tracking server at {uri} cannot read its store ({exc.code} {exc.reason}); "
                             "is its database running? (make server starts both)") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreError(f"{key}: the tracking server at {uri} answers, but not from its store within "
                         f"{PROBE_TIMEOUT_S:g} s ({getattr(exc, 'reason', exc)}); is its database running? "
                         "(make server starts both)") from None
