"""The lease: one synchronization at a time per state store, whatever started it.

A row of ``profile_sync_lease`` (coordination.py) names the run holding it — its
*run key*, ``<dag id>/<run id>``, so two DAGs whose runs share a run id never
share the lease, and a retried task (same DAG, same run) keeps it — and when it
expires. Every check-and-set is one conditional UPDATE in a transaction, so two
workers on two machines can never both hold it: the database decides.

While a step runs, a heartbeat renews the lease every ``ttl / 4`` seconds. A
lease that was not renewed for ``ttl`` seconds *may* belong to a dead holder;
between two tasks of a live run nobody heartbeats (a worker slot is awaited, an
approval is pending), so before taking it over the taker asks ``is_active`` —
Airflow, when running under Airflow — whether the holder's run is still running.
Only a holder that is expired *and* not active is taken over, with a
compare-and-set on its token; its run is then recorded as abandoned.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import select, update

from profile_sync.state.coordination import LEASE, Coordination
from profile_sync.state.errors import LeaseHeldError, LeaseLostError

__all__ = ["Grant", "Heartbeat", "Lease", "LeaseHeldError", "LeaseLostError", "iso"]

RunActive = Callable[[str], "bool | None"]
"""Whether the run with this run key is still running (True/False), or None when nobody can tell."""


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Grant:
    """The outcome of one attempt to take the lease."""

    acquired: bool
    holder: dict[str, Any] | None = None
    """Who holds it (when not acquired)."""
    taken_from: dict[str, Any] | None = None
    """The dead holder this acquisition took it over from."""


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {"owner": row["owner"], "acquired_at": iso(row["acquired_at"]), "renewed_at": iso(row["renewed_at"]),
            "expires_at": iso(row["expires_at"]), "host": row["host"], "pid": row["pid"], "token": row["token"]}


class Lease:
    """The lease of one state store."""

    def __init__(self, coordination: Coordination, ttl_seconds: int = 60, is_active: RunActive | None = None) -> None:
        self.coordination = coordination
        self.ttl = float(ttl_seconds)
        self.is_active = is_active

    def record(self) -> dict[str, Any] | None:
        """The lease row whoever holds it, expired or not (None when free)."""
        row = self.coordination.lease_record()
        if row is None:
            return None
        out = _public(row)
        out["expired"] = row["expires_at"] <= time.time()
        return out

    def holder(self) -> dict[str, Any] | None:
        """The current holder, or None when free or expired."""
        record = self.record()
        return record if record is not None and not record["expired"] else None

    def try_acquire(self, owner: str) -> Grant:
        """Take the lease for ``owner`` (or renew it if ``owner`` holds it); a dead holder is taken over."""
        now = time.time()
        mine = {"expires_at": now + self.ttl, "renewed_at": now, "host": socket.gethostname(), "pid": os.getpid()}
        c = self.coordination
        with c.transaction() as conn:
            renewed = conn.execute(update(LEASE).where(LEASE.c.name == c.name, LEASE.c.owner == owner)
                                   .values(**mine)).rowcount
            if renewed == 1:
                return Grant(True)
            taken = conn.execute(update(LEASE).where(LEASE.c.name == c.name, LEASE.c.owner.is_(None))
                                 .values(owner=owner, token=uuid.uuid4().hex, acquired_at=now, **mine)).rowcount
            if taken == 1:
                return Grant(True)
            row = dict(conn.execute(select(LEASE).where(LEASE.c.name == c.name)).mappings().one())
        holder = _public(row)
        if row["expires_at"] > now:
            return Grant(False, holder=holder)
        # Expired: dead, or between two tasks of a live run? Ask (outside any transaction).
        if self.is_active is not None and self.is_active(row["owner"]):
            return Grant(False, holder={**holder, "between_tasks": True})
        with c.transaction() as conn:
            taken = conn.execute(update(LEASE).where(LEASE.c.name == c.name, LEASE.c.token == row["token"],
                                                     LEASE.c.expires_at <= now)
                                 .values(owner=owner, token=uuid.uuid4().hex, acquired_at=now, **mine)).rowcount
        if taken == 1:
            return Grant(True, taken_from=holder)
        return Grant(False, holder=self.record())

    def renew(self, owner: str) -> None:
        """Extend ``owner``'s lease; raise LeaseLostError if it was taken over meanwhile."""
        with self.coordination.transaction() as conn:
            self.coordination.fence(conn, owner, ttl=self.ttl)

    def release(self, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; returns whether it did."""
        c = self.coordination
        with c.transaction() as conn:
            done = conn.execute(update(LEASE).where(LEASE.c.name == c.name, LEASE.c.owner == owner)
                                .values(owner=None, token=None, expires_at=0.0, host=None, pid=None)).rowcount
        return done == 1

    def heartbeat(self, owner: str) -> "Heartbeat":
        return Heartbeat(self, owner)


class Heartbeat:
    """Renews a lease in a background thread while a step runs (``with lease.heartbeat(owner):``)."""

    def __init__(self, lease: Lease, owner: str) -> None:
        self.lease = lease
        self.owner = owner
        self.lost: LeaseLostError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="profile-sync-lease-heartbeat", daemon=True)

    def _run(self) -> None:
        interval = max(self.lease.ttl / 4, 0.5)
        while not self._stop.wait(interval):
            try:
                self.lease.renew(self.owner)
            except LeaseLostError as exc:
                self.lost = exc
                return
            except Exception:  # noqa: BLE001 - a passing database hiccup: the next beat retries
                continue

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
