"""Reading the profile store for sites: what changed since a site's watermark, and the synced properties.

Every change to ``user_profiles`` leaves one of two marks:

- Profile Sync's own exports (steps 4 and 11) set ``updated_at`` on every profile
  they add, update, mark for deletion or un-mark — and suspend the change log in
  their transaction, so the log alone would miss them;
- every other writer (a person editing their profile, an admin tool) is recorded by
  the change log's triggers in ``profile_store_changes`` (``profile_store/changelog.py``).

So the profile-store part of a site's watermark is a :class:`ProfilePosition`: the
highest change-log ``seq`` the site has read, the highest ``updated_at`` it has
seen, and the *export batches* near that top — each distinct ``updated_at`` value
of the last ``UPDATED_AT_OVERLAP_SECONDS`` with its row count (an export stamps
all its rows with one time). ``changed_since`` reads the profiles logged since the
``seq``, and the profiles of every batch in that window the site has not seen, or
that has grown since: newer exports, and an export stamped a little in the past
by a worker whose clock is behind — without re-reading the batches it has seen.
Counting the batches is one ``GROUP BY`` over the window; no profile is read twice.

The synchronization prunes change-log entries every run has read; when entries
after the site's ``seq`` are gone (the site was down for a while), the push must
be a full one (``ChangedProfiles.pruned``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import Connection, Engine, MetaData, Table, func, inspect, select
from sqlalchemy.engine import make_url

from profile_sync.config.properties import BUILTIN_PROPERTIES
from profile_sync.profile_store import changelog
from profile_sync.profile_store.schema import build_metadata
from profile_sync.sites.config import CHUNK, KEY, SYNCED, UPDATED_AT_OVERLAP_SECONDS

PROFILE_COLUMNS = ["profile_id", "state", "updated_at", *SYNCED]
"""What a push reads of a profile."""


@dataclass(frozen=True)
class ProfilePosition:
    """How far into the profile store's changes a site has seen."""

    updated_at: str | None = None
    """The highest ``user_profiles.updated_at`` seen (ISO 8601, UTC); None: no profile had one."""
    change_seq: int | None = None
    """The highest change-log ``seq`` read; None: the profile store keeps no change log."""
    batches: dict[str, int] = field(default_factory=dict)
    """``updated_at`` (ISO 8601, UTC) → profiles stamped with it, for the batches of the last
    ``UPDATED_AT_OVERLAP_SECONDS`` up to ``updated_at``."""

    def to_dict(self) -> dict[str, Any]:
        return {"updated_at": self.updated_at, "change_seq": self.change_seq, "batches": dict(self.batches)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> "ProfilePosition":
        doc = doc or {}
        seq = doc.get("change_seq")
        return cls(doc.get("updated_at"), int(seq) if seq is not None else None,
                   {str(k): int(v) for k, v in (doc.get("batches") or {}).items()})


@dataclass(frozen=True)
class ChangedProfiles:
    """Profiles changed since a position, and the position that includes them."""

    ids: frozenset[str]
    names: frozenset[str]
    """Their account names, lower-cased."""
    position: ProfilePosition
    pruned: bool = False
    """Change-log entries after the old position were pruned (or the log is newer than the position): changes
    by others may be missing."""


def store_identity(url: str) -> str:
    """A short hash naming the profile store (its URL without the password): a new store means a full push."""
    rendered = make_url(url).render_as_string(hide_password=True) if "://" in url else url
    return hashlib.sha256(rendered.encode()).hexdigest()[:16]


def _tables() -> tuple[Table, Table]:
    md: MetaData
    md, profiles, *_ = build_metadata(dict(BUILTIN_PROPERTIES))
    return profiles, changelog.changes_table(md)


PROFILES, CHANGES = _tables()


def store_exists(engine: Engine) -> bool:
    return inspect(engine).has_table(PROFILES.name)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


def current_position(conn: Connection) -> ProfilePosition:
    """The store's position now (the log first: a change made meanwhile is read again next time)."""
    seq = changelog.latest_seq(conn, CHANGES) if changelog.has_triggers(conn) else None
    top = _utc(conn.execute(select(func.max(PROFILES.c.updated_at))).scalar())
    return ProfilePosition(_iso(top), seq, _batches(conn, top) if top is not None else {})


def _window(top: datetime) -> datetime:
    return top - timedelta(seconds=UPDATED_AT_OVERLAP_SECONDS)


def _groups(conn: Connection, since: datetime | None) -> dict[datetime, int]:
    """Distinct ``updated_at`` values (UTC) after ``since`` (all: None) and their row counts."""
    p = PROFILES
    query = select(p.c.updated_at, func.count()).where(p.c.updated_at.is_not(None)).group_by(p.c.updated_at)
    if since is not None:
        query = query.where(p.c.updated_at > since)
    return {_utc(ts): int(n) for ts, n in conn.execute(query)}


def _batches(conn: Connection, top: datetime) -> dict[str, int]:
    groups = _groups(conn, _window(top))
    newest = sorted(groups, reverse=True)[:MAX_BATCHES]
    return {_iso(ts): groups[ts] for ts in newest}


MAX_BATCHES = 1000
"""Most batches a watermark keeps; older ones in the window count as unseen (read again: never missed)."""


def _high_water(conn: Connection) -> int:
    """The highest ``seq`` the change log ever handed out (its rows may be pruned since)."""
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGES.name,)).scalar()
        return int(found or 0)
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence(%(t)s, 'seq')::regclass)",
            {"t": CHANGES.name}).scalar()
        return int(found or 0)
    return 0  # pragma: no cover - other databases keep no change log here


def _log_pruned_after(conn: Connection, since: int) -> bool:
    """Whether change-log entries with ``seq > since`` were pruned (the sync prunes a prefix of the log).

    A sequence gap (a writer that rolled back) right after ``since`` reads as pruned too: a needless full
    push, never a missed change.
    """
    oldest = conn.execute(select(func.min(CHANGES.c.seq))).scalar()
    if oldest is not None:
        return int(oldest) > since + 1
    return _high_water(conn) > since


def changed_since(engine: Engine, since: ProfilePosition) -> ChangedProfiles:
    """Profiles changed after ``since``: logged since its ``seq``, or in a batch it has not seen whole."""
    p = PROFILES
    with engine.connect() as conn:
        ids: set[str] = set()
        pruned = False
        seq = None
        if changelog.has_triggers(conn):
            if since.change_seq is not None:
                changed, seq = changelog.changed_since(conn, CHANGES, since.change_seq)
                ids |= set(changed.get(PROFILES.name, ()))
                # Checked after the read: a prune committed in between reads as pruned (a needless full push).
                pruned = _log_pruned_after(conn, since.change_seq)
            else:  # the log appeared since the last push: which of its entries are new is unknown
                pruned = True
                seq = changelog.latest_seq(conn, CHANGES)
        old_top = datetime.fromisoformat(since.updated_at) if since.updated_at else None
        groups = _groups(conn, _window(old_top) if old_top is not None else None)
        # A batch is new, or grew (rows stamped late); one that shrank only lost rows to newer batches.
        unseen = [ts for ts, n in groups.items() if n > since.batches.get(_iso(ts), 0)]
        if unseen:
            # From the oldest unseen batch up (a millisecond early: text timestamps on SQLite compare as text).
            start = min(unseen) - timedelta(milliseconds=1)
            ids |= {r[0] for r in conn.execute(select(p.c.profile_id).where(p.c.updated_at >= start))}
        top = max([*groups, *([old_top] if old_top is not None else [])], default=None)
        batches = ({_iso(ts): n for ts, n in sorted(groups.items(), reverse=True)[:MAX_BATCHES]
                    if ts > _window(top)} if top is not None else {})
        names = _names(conn, ids)
    return ChangedProfiles(frozenset(ids), frozenset(names), ProfilePosition(_iso(top), seq, batches), pruned)


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i:i + CHUNK]


def _names(conn: Connection, ids: set[str]) -> set[str]:
    p = PROFILES
    out: set[str] = set()
    for chunk in _chunks(ids):
        out |= {(r[0] or "").lower() for r in conn.execute(select(p.c[KEY]).where(p.c.profile_id.in_(chunk)))}
    out.discard("")
    return out


def read_profiles(engine: Engine, ids: Iterable[str] | None = None, names: Iterable[str] | None = None
                  ) -> pd.DataFrame:
    """``PROFILE_COLUMNS`` of every profile (both None), or of those with one of ``ids`` or whose lower-cased
    account name is one of ``names`` — one SELECT per chunk of 5,000."""
    p = PROFILES
    columns = [p.c[c] for c in PROFILE_COLUMNS]
    with engine.connect() as conn:
        if ids is None and names is None:
            rows = conn.execute(select(*columns)).fetchall()
        else:
            rows = []
            for chunk in _chunks(set(ids if ids is not None else ())):
                rows += conn.execute(select(*columns).where(p.c.profile_id.in_(chunk))).fetchall()
            for chunk in _chunks(set(names if names is not None else ())):
                rows += conn.execute(select(*columns).where(func.lower(p.c[KEY]).in_(chunk))).fetchall()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=PROFILE_COLUMNS, dtype=object)
    frame = frame.drop_duplicates("profile_id", ignore_index=True)
    return frame.where(frame.notna(), None)


__all__ = ["ChangedProfiles", "ProfilePosition", "changed_since", "current_position", "read_profiles",
           "store_exists", "store_identity"]
