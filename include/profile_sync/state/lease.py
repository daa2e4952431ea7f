"""The lease: one synchronization at a time per state store, whatever started it.

``lease.json`` names the run holding it and when it expires. The holder renews
it at every step; a lease whose holder died expires after ``ttl_seconds`` and
can then be taken over. Check-and-set happens under an exclusive ``flock`` on
``lease.lock``, so two runs racing for the lease cannot both win (this needs a
local or POSIX-locking shared file system).
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from profile_sync.state.errors import LeaseHeldError
from profile_sync.state.files import read_json, write_json

__all__ = ["Lease", "LeaseHeldError"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Lease:
    """The lease of one state store."""

    def __init__(self, root: Path, ttl_seconds: int = 3600) -> None:
        self.root = Path(root)
        self.path = self.root / "lease.json"
        self.lock_path = self.root / "lease.lock"
        self.ttl = timedelta(seconds=ttl_seconds)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def holder(self) -> dict | None:
        """The current lease record, or None when free or expired."""
        record = read_json(self.path)
        if record is None:
            return None
        if datetime.fromisoformat(record["expires_at"]) <= _now():
            return None
        return record

    def try_acquire(self, owner: str) -> bool:
        """Take the lease for ``owner`` (or renew it if ``owner`` holds it); False if held by another."""
        with self._locked():
            current = self.holder()
            if current is not None and current["owner"] != owner:
                return False
            self._write(owner, acquired_at=(current or {}).get("acquired_at"))
            return True

    def acquire(self, owner: str) -> None:
        """Take the lease or raise LeaseHeldError."""
        if not self.try_acquire(owner):
            current = self.holder() or {"owner": "?", "expires_at": "?"}
            raise LeaseHeldError(current["owner"], current["expires_at"])

    def renew(self, owner: str) -> None:
        """Extend ``owner``'s lease; raise LeaseHeldError if someone else holds it now."""
        self.acquire(owner)

    def release(self, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; returns whether it did."""
        with self._locked():
            record = read_json(self.path)
            if record is None or record["owner"] != owner:
                return False
            self.path.unlink(missing_ok=True)
            return True

    def _write(self, owner: str, acquired_at: str | None) -> None:
        now = _now()
        write_json(
            self.path,
            {
                "owner": owner,
                "acquired_at": acquired_at or now.isoformat(timespec="seconds"),
                "renewed_at": now.isoformat(timespec="seconds"),
                "expires_at": (now + self.ttl).isoformat(timespec="seconds"),
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
        )
