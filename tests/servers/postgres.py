"""A throwaway PostgreSQL cluster: initdb into a temp dir, postgres on a free 127.0.0.1 port.

Started as a direct child (``postgres -D ...``, no ``pg_ctl`` daemonizing), so it is stopped
by its PID: SIGINT (fast shutdown) to the postmaster, bounded wait, then SIGKILL of its
process group. When the tests run as root the cluster runs as the ``postgres`` system user
(initdb refuses root); the temp dir is handed to that user. Durability is off (fsync,
synchronous_commit, full_page_writes) because the data is thrown away.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import time
from pathlib import Path

from ._util import (
    ProcessServer,
    LOOPBACK,
    MissingBinaryError,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    run,
    wait_until,
)

__all__ = ["PostgresServer"]

PG_LIB = Path("/usr/lib/postgresql")


def _pg_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb and postgres."""
    majors = sorted(
        (p for p in PG_LIB.glob("*/bin") if (p / "initdb").exists() and (p / "postgres").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if not majors:
        found = shutil.which("initdb")
        if found:
            return Path(found).parent
        raise MissingBinaryError("initdb", "postgresql")
    return majors[-1]


class PostgresServer(ProcessServer):
    """PostgreSQL for tests. ``with PostgresServer() as pg: create_engine(pg.url)``.

    Properties: ``url`` (SQLAlchemy, psycopg2), ``dsn`` (libpq keywords), ``host``,
    ``port``, ``user``, ``password``, ``database``, ``socket_dir``.
    """

    stop_timeout = 20.0  # a fast shutdown of the postmaster and its backends

    superuser = "postgres"

    def __init__(
        self,
        database: str = "profile_sync",
        user: str = "profile_sync",
        password: str = "profile-sync-pw",
        *,
        workdir: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.database = database
        self.user = user
        self.password = password
        self.start_timeout = start_timeout
        self.bin_dir = _pg_bin_dir()
        self.os_user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServerError(
                    "running as root needs the 'postgres' system user (package postgresql-common)"
                ) from exc
            self.os_user = "postgres"
        self._own_workdir = workdir is None
        self.workdir = workdir or make_temp_dir("postgres")
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self.host = LOOPBACK
        self._port: int | None = None
        self._proc: ServerProcess | None = None
        self.timings: dict[str, float] = {}
        self._initialized = False

    # ----------------------------------------------------------------- identity

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("PostgreSQL has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+psycopg2://user:pw@127.0.0.1:PORT/db``."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return (f"host={self.host} port={self.port} dbname={self.database} "
                f"user={self.user} password={self.password}")

    # ----------------------------------------------------------------- lifecycle

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise MissingBinaryError(name, "postgresql")
        return str(path)

    def initdb(self) -> None:
        if self._initialized:
            return
        t0 = time.monotonic()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.workdir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        run(
            [self._bin("initdb"), "-D", str(self.data_dir), "-U", self.superuser,
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            timeout=120, user=self.os_user, cwd=self.workdir, what="initdb",
        )
        self._initialized = True
        self.timings["initdb"] = time.monotonic() - t0

    def start(self) -> PostgresServer:
        if self.running:
            return self
        fresh = not self._initialized
        self.initdb()
        fresh_port = self._port is None
        for attempt in range(3):
            if fresh_port:
                self._port = free_port()  # can race with another process: new port on retry
            try:
                self._start_once(create_database=fresh)
                return self
            except ServerError as exc:
                if not (fresh_port and "already in use" in str(exc) and attempt < 2):
                    if fresh_port:
                        self._port = None
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, *, create_database: bool) -> None:
        t0 = time.monotonic()
        log_path = self.workdir / "postgres.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        self._proc = ServerProcess(
            [self._bin("postgres"), "-D", str(self.data_dir),
             "-h", LOOPBACK, "-p", str(self._port), "-k", str(self.socket_dir),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=50", "-c", "shared_buffers=64MB",
             "-c", "logging_collector=off", "-c", "log_min_messages=warning"],
            log_path=log_path,
            user=self.os_user,
            cwd=self.workdir,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would be "smart" (waits for clients)
            signal_group=False,  # backends and helpers are the postmaster's to stop
        )
        try:
            wait_until(self._ready, self.start_timeout, f"PostgreSQL on {self.host}:{self._port}",
                       interval=0.05, alive=self._proc.alive)
            if create_database:
                self._create_database()
        except ServerError as exc:
            tail = log_path.read_text(errors="replace")[log_start:][-3000:]
            self.stop()
            raise ServerError(f"{exc}\n--- postgres log ---\n{tail}") from exc
        self.timings["start"] = time.monotonic() - t0

    def _ready(self) -> bool:
        run([self._bin("pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self._port)],
            timeout=5, what="pg_isready")
        return True

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns psql's output."""
        done = run(
            [self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.superuser,
             "-d", database, "-c", sql],
            timeout=60, user=self.os_user, cwd=self.workdir, what="psql",
        )
        return done.stdout

    def _create_database(self) -> None:
        pw = self.password.replace("'", "''")
        self.psql(f"CREATE ROLE \"{self.user}\" LOGIN PASSWORD '{pw}'")
        self.psql(f"CREATE DATABASE \"{self.database}\" OWNER \"{self.user}\"")

    def reset_database(self) -> None:
        """Drop and re-create the test database (fast; for per-test isolation)."""
        self.psql(f"DROP DATABASE IF EXISTS \"{self.database}\" WITH (FORCE)")
        self.psql(f"CREATE DATABASE \"{self.database}\" OWNER \"{self.user}\"")
