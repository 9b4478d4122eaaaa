"""A shared MLflow tracking server on PostgreSQL, for runs from many processes or machines.

    python -m mlplab server start --port 5000      # make server (PORT=5001 make server)
    python -m mlplab server stop --port 5000       # make server-stop

Both engines are the real ones: PostgreSQL (the machine's ``initdb``/``pg_ctl``) holds the runs, and
``mlflow server`` (the MLflow this project pins, so server and clients agree) serves them on
127.0.0.1 and proxies the artefacts to ``--artifacts`` (a folder, or ``s3://bucket/prefix`` with
the usual ``AWS_*`` and ``MLFLOW_S3_ENDPOINT_URL`` variables). Everything lives in the project's
git-ignored ``server/`` folder, created on first use::

    server/postgres/data     the database cluster (database ``mlflow``)
    server/postgres/log      PostgreSQL's log; it listens on a Unix socket only, in server/postgres
    server/artifacts/        the default artefact destination
    server/mlflow-<port>.*   each MLflow server's process id and log

PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user. ``start``
returns once the server answers; ``stop`` stops that port's server by its process id, and
PostgreSQL with the last of them.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlplab.tracking.store import STORE_REQUEST, StoreError

FOLDER = "server"
DATABASE = "mlflow"
PG_PORT = 5432  # only names the socket file: PostgreSQL listens on no TCP port
PG_USER = "postgres"
#: The longest Unix socket path the kernel takes (``sun_path``), less PostgreSQL's file name.
SOCKET_PATH_MAX = 107 - len(f"/.s.PGSQL.{PG_PORT}")
#: Seconds ``mlflow server`` gets to answer (migrations on the first start take ~10 s here).
START_TIMEOUT_S = 180


class ServerError(StoreError):
    """The server cannot be started or stopped; the message says why and where to look."""


@dataclass(frozen=True)
class Server:
    """The server of the project at ``root`` on ``port``."""

    root: Path
    port: int = 5000

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    @property
    def pgdata(self) -> Path:
        return self.folder / "postgres" / "data"

    @property
    def socket_dir(self) -> Path:
        folder = self.folder / "postgres"
        if len(str(folder)) <= SOCKET_PATH_MAX:
            return folder
        digest = hashlib.sha1(str(folder).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mlplab-pg-{digest}"

    @property
    def backend_uri(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@/{DATABASE}?host={self.socket_dir}&port={PG_PORT}"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.folder / f"mlflow-{self.port}.pid"

    @property
    def log(self) -> Path:
        return self.folder / f"mlflow-{self.port}.log"

    # -- PostgreSQL ---------------------------------------------------------------------------
    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        """Run a PostgreSQL tool as the ``postgres`` user if we are root (it refuses root)."""
        binary = pg_bin(cmd[0])
        argv = [binary, *cmd[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    def postgres_running(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file() and self._as_postgres("pg_ctl", "status", "-D",
                                                                            str(self.pgdata)).returncode == 0

    def start_postgres(self) -> bool:
        """Create the cluster and database if need be and start PostgreSQL; ``True`` if it was not running."""
        home = self.pgdata.parent
        home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            for path in (home, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            _traversable(home)
        if not (self.pgdata / "PG_VERSION").is_file():
            done = self._as_postgres("initdb", "-D", str(self.pgdata), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                                     "--no-sync")
            if done.returncode:
                raise ServerError(f"initdb {self.pgdata} failed: {_last_line(done.stderr)}")
        started = not self.postgres_running()
        if started:
            options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -c port={PG_PORT}"
            done = self._as_postgres("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata),
                                     "-l", str(home / "log"), "-o", options)
            if done.returncode:
                raise ServerError(f"PostgreSQL did not start: {_last_line(_tail(home / 'log') or done.stderr)} "
                                  f"(log: {home / 'log'})")
        self._create_database()
        return started

    def connect(self, dbname: str = DATABASE):
        """A psycopg2 connection to the project's PostgreSQL (by default, to MLflow's database)."""
        import psycopg2

        return psycopg2.connect(dbname=dbname, user=PG_USER, host=str(self.socket_dir), port=PG_PORT,
                                connect_timeout=10)

    def _create_database(self) -> None:
        import psycopg2

        try:
            db = self.connect("postgres")
        except psycopg2.OperationalError as exc:
            raise ServerError(f"cannot connect to PostgreSQL in {self.socket_dir}: {_last_line(str(exc))}") from None
        try:
            db.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with db.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            db.close()

    def stop_postgres(self) -> bool:
        if not self.postgres_running():
            return False
        done = self._as_postgres("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.pgdata))
        if done.returncode:
            raise ServerError(f"PostgreSQL did not stop: {_last_line(done.stderr)}")
        return True

    # -- MLflow -------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The process id of this port's MLflow server, if it is running."""
        try:
            pid = int(self.pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def answers(self) -> bool:
        """The server answers a request that reads its store."""
        try:
            with urllib.request.urlopen(self.uri + STORE_REQUEST, timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    def taken(self) -> bool:
        """Something listens on the port."""
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self, artifacts: str | None = None, workers: int | None = None) -> str:
        """Start PostgreSQL and the MLflow server unless they run; return what was done, in a line.
        A start that fails leaves nothing running that it started."""
        running = self.pid()
        if running is None and self.taken():
            raise ServerError(f"port {self.port} is taken by another program; choose another: PORT=<port> make server")
        postgres = self.start_postgres()
        try:
            if running is not None and postgres:  # its workers lost the database and back off for a while
                destination = self.pid_file.read_text().split("\n")[1] or None
                _stop_group(running)
                return f"restarted PostgreSQL; {self._start_mlflow(artifacts or destination, workers)}"
            if running is not None and self._wait(running):
                return f"the MLflow server on {self.uri} is already running (process {running})"
            return self._start_mlflow(artifacts, workers)
        except BaseException:
            if postgres and not self._others():
                self.stop_postgres()
            raise

    def _start_mlflow(self, artifacts: str | None, workers: int | None) -> str:
        destination = artifacts or str(self.folder / "artifacts")
        cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", self.backend_uri,
               "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(self.port)]
        if workers:
            cmd += ["--workers", str(workers)]
        # MLflow's job runner (GenAI evaluations, trace roll-ups: ~6 processes) serves no model training
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        with open(self.log, "w") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)  # its own group: stopped as one
        self.pid_file.write_text(f"{process.pid}\n{destination}\n")  # a restart keeps the destination
        try:
            self._wait(process)
        except BaseException:
            _stop_group(process.pid)
            self.pid_file.unlink(missing_ok=True)
            raise
        return f"started MLflow {_mlflow_version()} on {self.uri} (process {process.pid}), runs in PostgreSQL " \
               f"({self.pgdata}), artefacts in {destination}"

    def _wait(self, process: subprocess.Popen | int) -> bool:
        """Until the server answers from its store (``True``); ``False`` if the process (an earlier
        server's id, which may be stopping) ended first; a new server that ends or never answers is an error."""
        pid = process if isinstance(process, int) else process.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            ended = process.poll() is not None if isinstance(process, subprocess.Popen) else not _alive(pid)
            if ended and isinstance(process, int):
                return False
            if ended:
                raise ServerError(f"mlflow server exited ({process.returncode}): {_last_line(_tail(self.log))} "
                                  f"(log: {self.log})")
            if time.monotonic() > deadline:
                raise ServerError(f"mlflow server did not answer on {self.uri} within {START_TIMEOUT_S} s "
                                  f"(log: {self.log})")
            time.sleep(0.3)
        return True

    def _others(self) -> list[int]:
        """The ports of this project's other running MLflow servers."""
        ports = [int(p.stem.removeprefix("mlflow-")) for p in self.folder.glob("mlflow-*.pid")]
        return [port for port in ports if port != self.port and Server(self.root, port).pid()]

    def stop(self) -> list[str]:
        """Stop this port's MLflow server, and PostgreSQL if no other server of the project runs."""
        done = []
        pid = self.pid()
        if pid is not None:
            _stop_group(pid)
            done.append(f"stopped the MLflow server on {self.uri} (process {pid})")
        self.pid_file.unlink(missing_ok=True)
        if not self._others() and self.stop_postgres():
            done.append(f"stopped PostgreSQL ({self.pgdata})")
        return done or [f"no MLflow server of this project runs on port {self.port}"]


def pg_bin(tool: str) -> str:
    """A PostgreSQL program: on PATH, else the newest of Debian's ``/usr/lib/postgresql/<v>/bin``."""
    found = shutil.which(tool)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / tool).is_file():
            return str(folder / tool)
    raise ServerError(f"PostgreSQL's {tool} was not found (on PATH or in /usr/lib/postgresql/*/bin); "
                      "install PostgreSQL (Debian: apt-get install postgresql)")


def _traversable(path: Path) -> None:
    """The ``postgres`` user must reach its folder: let others through (not read) every parent."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(pid: int, seconds: float = 20) -> None:
    """SIGTERM the server's process group (its workers included), SIGKILL what lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def _mlflow_version() -> str:
    from importlib.metadata import version

    return version("mlflow")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
