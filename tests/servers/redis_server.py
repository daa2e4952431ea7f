"""A throwaway Redis (Debian ``redis-server``) on a free 127.0.0.1 port: the Celery broker of the
distributed Airflow tests.

Started as a direct child in the foreground (``--daemonize no``), no persistence (``--save ''``,
``--appendonly no``), its working directory in a private temp dir; stopped by its PID (SIGTERM,
bounded wait, then SIGKILL of its process group).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from ._util import (
    ProcessServer,
    LOOPBACK,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    require_binary,
    wait_until,
)

__all__ = ["RedisServer"]


class RedisServer(ProcessServer):
    """Redis for tests. ``with RedisServer() as redis: redis.url``  →  ``redis://127.0.0.1:PORT/0``."""

    def __init__(self, *, workdir: Path | None = None, start_timeout: float = 15.0) -> None:
        self.binary = require_binary("redis-server", "redis-server")
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or make_temp_dir("redis")
        self.host = LOOPBACK
        self._port: int | None = None
        self._proc: ServerProcess | None = None
        self.timings: dict[str, float] = {}

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("Redis has no port yet: call start() first")
        return self._port

    def url(self, db: int = 0) -> str:
        """``redis://127.0.0.1:PORT/<db>`` (no password: loopback only, protected mode on)."""
        return f"redis://{self.host}:{self.port}/{db}"

    def start(self) -> RedisServer:
        if self.running:
            return self
        for attempt in range(3):
            self._port = free_port()  # can race with another process: new port on retry
            try:
                self._start_once()
                return self
            except ServerError as exc:
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> None:
        t0 = time.monotonic()
        log_path = self.workdir / "redis.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        self._proc = ServerProcess(
            [self.binary, "--bind", self.host, "--port", str(self._port), "--daemonize", "no",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes",
             "--loglevel", "warning"],
            log_path=log_path, cwd=self.workdir)
        try:
            wait_until(self.ping, self.start_timeout, f"Redis on {self.host}:{self._port}", interval=0.05,
                       alive=self._proc.alive)
        except ServerError as exc:
            tail = log_path.read_text(errors="replace")[log_start:][-2000:]
            self.stop()
            raise ServerError(f"{exc}\n--- redis log ---\n{tail}") from exc
        self.timings["start"] = time.monotonic() - t0

    def ping(self) -> bool:
        """True when the server answers ``PING`` with ``+PONG`` (RESP, no client library)."""
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
