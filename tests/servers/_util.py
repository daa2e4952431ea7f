"""Helpers shared by the throwaway test servers: ports, bounded waits, processes, temp dirs.

Everything here is loopback-only and every wait is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = [
    "LOOPBACK",
    "MissingBinaryError",
    "ServerError",
    "ServerProcess",
    "free_port",
    "make_temp_dir",
    "pid_alive",
    "remove_tree",
    "require_binary",
    "run",
    "wait_for_port",
    "wait_until",
]

LOOPBACK = "127.0.0.1"
"""The only address servers listen on and clients connect to."""

T = TypeVar("T")


class ServerError(RuntimeError):
    """A throwaway server could not be set up, started, or stopped."""


class MissingBinaryError(ServerError):
    """A binary the server needs is not installed; names the Debian package that provides it."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"{binary!r} not found: install the Debian package {package!r} "
            f"(tests/servers/install.sh installs everything the integration tests need)"
        )
        self.binary = binary
        self.package = package


# Debian keeps daemons and admin tools in sbin directories that a non-login PATH may lack.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def require_binary(binary: str, package: str, extra_dirs: Sequence[str] = ()) -> str:
    """Return the absolute path of *binary* or raise MissingBinaryError naming *package*."""
    search = os.pathsep.join([*extra_dirs, os.environ.get("PATH", ""), *_EXTRA_PATH])
    found = shutil.which(binary, path=search)
    if found is None:
        raise MissingBinaryError(binary, package)
    return found


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on *host* right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> T:
    """Call *predicate* until it returns a truthy value; raise ServerError after *timeout* s.

    Exceptions from the predicate count as "not yet". *alive*, when given, is checked on
    every round so a server that died is reported at once instead of after the timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - "not ready yet", reported on timeout
            last_error = exc
        if alive is not None and not alive():
            raise ServerError(f"gave up waiting for {what}: the process exited")
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ServerError(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        time.sleep(interval)


def wait_for_port(
    port: int,
    host: str = LOOPBACK,
    timeout: float = 10.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Wait until a TCP connect to host:port succeeds (bounded by *timeout*)."""

    def connects() -> bool:
        with socket.create_connection((host, port), timeout=0.5):
            return True

    wait_until(connects, timeout, f"{host}:{port} to accept connections", alive=alive)


def run(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    what: str | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded); raise ServerError with its output on failure."""
    label = what or Path(args[0]).name
    try:
        done = subprocess.run(
            list(args),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            user=user,
            group=_primary_group(user),
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{label} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip()
        raise ServerError(f"{label} failed with exit code {done.returncode}:\n{out[-4000:]}")
    return done


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved in the parent: the child may
# already run as another user (postgres) that cannot read this interpreter's files.


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child if the test process dies (no orphaned daemons after a
    killed pytest). Survives the exec of the daemon; set after any uid change. The parent
    is the forking *thread*: start servers from the main thread (fixtures do)."""
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _primary_group(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


class ServerProcess:
    """A daemon started in its own process group, stopped by its PID with bounded waits.

    ``stop()`` sends *stop_signal* to the whole process group (``signal_group=True``) or
    to the leader only (servers like PostgreSQL whose children must not be signalled
    directly); ``kill()`` always SIGKILLs the whole group.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        signal_group: bool = True,
        die_with_parent: bool = True,
    ) -> None:
        self.args = list(args)
        self.stop_signal = stop_signal
        self.signal_group = signal_group
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.popen = subprocess.Popen(  # noqa: S603 - fixed argument lists built by this package
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            pass_fds=tuple(pass_fds),
            cwd=cwd,
            user=user,
            group=_primary_group(user),
            extra_groups=[] if user is not None else None,
            start_new_session=True,  # own process group: signals reach its children too
            preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group id is our child's PID (start_new_session); never a name-based kill.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send the stop signal, wait up to *timeout* s, then SIGKILL the group. Returns the exit code."""
        if self.alive():
            if self.signal_group:
                self._signal_group(self.stop_signal)
            else:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a server dying mid-operation)."""
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired as exc:
            raise ServerError(f"PID {self.pid} survived SIGKILL for 10 s") from exc
        self._log.close()
        return self.popen.returncode


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale_temp_dirs(base: Path) -> None:
    """Remove ``psync-<kind>-<pid>-*`` dirs of test processes that died without cleaning up."""
    pattern = re.compile(r"^psync-[a-z-]+?-(\d+)-[^/]+$")
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            match = pattern.match(entry.name)
            if match and entry.is_dir() and not pid_alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def make_temp_dir(prefix: str, base: str | os.PathLike[str] | None = None) -> Path:
    """A fresh private temp dir ``psync-<prefix>-<pid>-XXXX`` (mode 0700).

    Dirs of the same shape left by dead test processes are removed first."""
    parent = Path(base) if base is not None else Path(tempfile.gettempdir())
    _reap_stale_temp_dirs(parent)
    return Path(tempfile.mkdtemp(prefix=f"psync-{prefix}-{os.getpid()}-", dir=parent))


def remove_tree(path: Path | None) -> None:
    """Delete a temp tree, tolerating a partially created or already removed one."""
    if path is not None and path.exists():
        shutil.rmtree(path, ignore_errors=True)


class ManagedServer:
    """What every throwaway server shares: ``close()`` stops it and removes the work folder it created;
    as a context manager it starts, and closes even when the start fails half-way."""

    workdir: Path
    _own_workdir: bool

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """stop() and remove the temp dir (if this object created it)."""
        try:
            self.stop()
        finally:
            if self._own_workdir:
                remove_tree(self.workdir)

    def __enter__(self) -> Any:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ProcessServer(ManagedServer):
    """A server that is one supervised process (``self._proc``): stopped by PID, or killed (a crash)."""

    _proc: ServerProcess | None
    stop_timeout: float = 10.0
    """Seconds stop() waits after SIGTERM before SIGKILL of the process group."""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM by PID and wait (bounded; SIGKILL after ``timeout``)."""
        if self._proc is not None:
            self._proc.stop(timeout=self.stop_timeout if timeout is None else timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL at once (a server dying mid-request); start() works again after."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None
