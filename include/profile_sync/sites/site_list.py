"""A site's database: its user information list and Profile Sync's watermark row.

Reads happen outside any write transaction (a site is never locked while the
profile store is read). The write is one transaction: create what is missing,
check that the watermark is still the one the push was planned from, stage the
new values (``COPY`` on PostgreSQL), one ``UPDATE … FROM``, and the new
watermark. If anything fails, nothing of it is committed — the watermark moves
exactly when the write does.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

import pandas as pd
from sqlalchemy import Connection, Engine, String, delete, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from profile_sync.profile_store.engine import begin_write
from profile_sync.profile_store.store import stage_frame
from profile_sync.sites.config import CHUNK, KEY, SYNCED, list_table, split_table, watermark_table
from profile_sync.sites.errors import SiteConflictError, SiteError, SiteUnavailableError

ROW_COLUMNS = [KEY, "profile_id", *[p for p in SYNCED if p != KEY], "deleted", "last_synced"]
"""The columns of the list a push reads and (but ``last_synced``) writes."""
STAGE_KEY = "_site_key"


@contextmanager
def site_errors(site: str, doing: str) -> Iterator[None]:
    """Database errors → the site's errors: unreachable or gone away → transient; refused → terminal."""
    try:
        yield
    except OperationalError as exc:
        raise SiteUnavailableError(site, f"{doing}: {exc.orig}") from exc
    except DBAPIError as exc:
        raise SiteError(site, f"the database refused {doing} (nothing was written): {exc.orig}") from exc


@dataclass(frozen=True)
class ListState:
    """What a push found in the site's database before planning."""

    exists: bool
    """The list table exists."""
    missing: tuple[str, ...]
    """Columns of ``ROW_COLUMNS`` the list lacks (added by the write)."""
    watermark: str | None
    """The site's watermark row (JSON text), None before the first push."""


def inspect_site(engine: Engine, site: str, table: str) -> ListState:
    """Does the list exist, which of its columns are missing, and the site's watermark."""
    schema, name = split_table(table)
    with site_errors(site, "reading the list"), engine.connect() as conn:
        insp = inspect(conn)
        if not insp.has_table(name, schema=schema):
            exists, missing = False, tuple(ROW_COLUMNS)
        else:
            have = {c["name"] for c in insp.get_columns(name, schema=schema)}
            if KEY not in have:
                raise SiteError(site, f"table {table!r} has no {KEY!r} column: it is not a user information list "
                                      f"(columns: {', '.join(sorted(have))}); see README, Sites")
            exists, missing = True, tuple(c for c in ROW_COLUMNS if c not in have)
        watermark = None
        w = watermark_table(table)
        if insp.has_table(w.name, schema=w.schema):
            watermark = conn.execute(select(w.c.watermark).where(w.c.site == site)).scalar()
    return ListState(exists, missing, watermark)


def _select(state: ListState, table: str):  # noqa: ANN202
    t = list_table(table)
    present = [t.c[c] for c in ROW_COLUMNS if c not in state.missing]
    return t, select(*present)


def _frame(rows: list, state: ListState) -> pd.DataFrame:
    present = [c for c in ROW_COLUMNS if c not in state.missing]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=present, dtype=object)
    for c in state.missing:
        frame[c] = None
    frame = frame[ROW_COLUMNS]
    return frame.where(frame.notna(), None)


def read_rows(engine: Engine, site: str, table: str, state: ListState, keys: Iterable[str] | None = None
              ) -> pd.DataFrame:
    """``ROW_COLUMNS`` of every listed person (``keys`` None), or of those whose account name is in ``keys``."""
    if not state.exists:
        return _frame([], state)
    t, query = _select(state, table)
    with site_errors(site, "reading the list"), engine.connect() as conn:
        if keys is None:
            rows = conn.execute(query).fetchall()
        else:
            ordered = sorted(set(keys))
            rows = []
            for i in range(0, len(ordered), CHUNK):
                rows += conn.execute(query.where(t.c[KEY].in_(ordered[i:i + CHUNK]))).fetchall()
    return _frame(rows, state)


def read_keys(engine: Engine, site: str, table: str, state: ListState) -> pd.DataFrame:
    """Every listed person, narrow: ``account_name``, ``profile_id``, ``deleted``, ``never_synced``."""
    columns = [KEY, "profile_id", "deleted", "never_synced"]
    if not state.exists:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    t = list_table(table)
    present = {
        KEY: t.c[KEY],
        "profile_id": t.c.profile_id if "profile_id" not in state.missing else None,
        "deleted": t.c.deleted if "deleted" not in state.missing else None,
        # A flag, not the time: no timestamp parsing for every listed person.
        "never_synced": t.c.last_synced.is_(None).label("never_synced") if "last_synced" not in state.missing
        else None,
    }
    chosen = {k: v for k, v in present.items() if v is not None}
    with site_errors(site, "reading the list"), engine.connect() as conn:
        rows = conn.execute(select(*chosen.values())).fetchall()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(chosen), dtype=object)
    if "profile_id" not in chosen:
        frame["profile_id"] = None
    if "deleted" not in chosen:
        frame["deleted"] = False
    if "never_synced" not in chosen:
        frame["never_synced"] = True
    frame["never_synced"] = frame["never_synced"].astype(bool)
    return frame[columns]


def _ensure(conn: Connection, table: str) -> list[str]:
    """Create the list and the watermark table when missing; add missing list columns. The columns added."""
    t = list_table(table)
    added = []
    if not inspect(conn).has_table(t.name, schema=t.schema):
        t.create(conn)
    else:
        have = {c["name"] for c in inspect(conn).get_columns(t.name, schema=t.schema)}
        quote = conn.dialect.identifier_preparer.quote
        target = quote(t.name) if t.schema is None else f"{quote(t.schema)}.{quote(t.name)}"
        for column in t.c:
            if column.name not in have:
                default = " NOT NULL DEFAULT FALSE" if column.name == "deleted" else ""
                conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {quote(column.name)} "
                                     f"{column.type.compile(dialect=conn.dialect)}{default}")
                added.append(column.name)
    watermark_table(table).create(conn, checkfirst=True)
    return added


def write_push(engine: Engine, site: str, table: str, writes: pd.DataFrame, *, planned_from: str | None,
               watermark: str, now: datetime, run_id: str | None, mode: str) -> tuple[int, list[str]]:
    """Apply ``writes`` (``_site_key`` + the new ``ROW_COLUMNS`` but ``last_synced``) and move the watermark,
    in one transaction. Returns the rows updated and the list's columns added."""
    t = list_table(table)
    w = watermark_table(table)
    values = [c for c in ROW_COLUMNS if c != "last_synced"]
    with site_errors(site, "the push"), begin_write(engine) as conn:  # SQLite: BEGIN IMMEDIATE (FOR UPDATE is a no-op there)
        added = _ensure(conn, table)
        current = conn.execute(select(w.c.watermark).where(w.c.site == site).with_for_update()).scalar()
        if current != planned_from:
            raise SiteConflictError(site)
        updated = 0
        if len(writes):
            frame = writes[[STAGE_KEY, *values]].astype({"deleted": bool})
            stage = stage_frame(conn, "site_push", t, frame, values, extra={STAGE_KEY: String(400)})
            result = conn.execute(update(t).where(t.c[KEY] == stage.c[STAGE_KEY])
                                  .values({**{c: stage.c[c] for c in values}, "last_synced": now}))
            updated = int(result.rowcount or 0)
        conn.execute(delete(w).where(w.c.site == site))
        conn.execute(insert(w).values(site=site, list_table=table, watermark=watermark, pushed_at=now,
                                      run_id=run_id, mode=mode))
    return updated, added


__all__ = ["ROW_COLUMNS", "STAGE_KEY", "ListState", "inspect_site", "read_keys", "read_rows", "site_errors",
           "write_push"]
