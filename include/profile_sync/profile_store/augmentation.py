"""Applying a business system's pending exports to the profile store (step 11), and re-reading them (step 12).

One transaction per export, bulk statements only: the new values go to a
temporary staging table (PostgreSQL: ``COPY``), then one ``UPDATE … FROM`` sets
the changed single-valued properties (a per-column flag says which ones changed,
so a property left as it is — a value that did not fit — is not touched), and
multi-valued properties are replaced in ``profile_property_values`` by one
``DELETE`` and one bulk insert. Only active profiles are updated; no profile is
ever created here. If anything fails the transaction rolls back.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import Connection, Integer, and_, case, delete, select, update

from profile_sync.bcs.synchronize import changed_flag
from profile_sync.profile_store import changelog
from profile_sync.profile_store.engine import begin_write
from profile_sync.profile_store.store import ProfileStore, empty_values, export_errors, insert_frame
from profile_sync.sync.pending_exports import ACTIVE

FLAG_PREFIX = "_set_"


def apply_bcs_exports(store: ProfileStore, updates: pd.DataFrame, values: pd.DataFrame, single: list[str],
                      multi: list[str], run_id: str | None) -> dict[str, int]:
    """Write ``updates`` (``profile_id``, ``changed``, single-valued properties) and ``values`` in one transaction."""
    now = datetime.now(timezone.utc)
    with export_errors(store.url), begin_write(store.engine) as conn:
        added = store.ensure_schema(conn, run_id)
        written = {"profiles_updated": 0, "values_removed": 0, "values_inserted": 0,
                   "schema_changes": len(added)}
        if not updates.empty:
            written.update(_write_updates(store, conn, updates, values, single, multi, now))
        if store.on_export is not None:
            store.on_export(conn)
        return written


def _write_updates(store: ProfileStore, conn: Connection, updates: pd.DataFrame, values: pd.DataFrame,
                   single: list[str], multi: list[str], now: datetime) -> dict[str, int]:
    written: dict[str, int] = {}
    # Not logged in the change log: the confirming import (step 12) re-reads what it wrote.
    with changelog.suspended(conn):
        p = store.profiles
        stage_frame = updates[["profile_id", *single]].copy()
        for prop in single:
            stage_frame[FLAG_PREFIX + prop] = updates[changed_flag(prop)].to_numpy(dtype=bool).astype("int64")
        flag_columns = {FLAG_PREFIX + prop: Integer() for prop in single}
        stage = store._stage(conn, "bcs_updates", p, stage_frame, ["profile_id", *single], extra=flag_columns)
        assignments = {prop: case((stage.c[FLAG_PREFIX + prop] == 1, stage.c[prop]), else_=p.c[prop])
                       for prop in single}
        result = conn.execute(update(p).where(p.c.profile_id == stage.c.profile_id).where(p.c.state == ACTIVE)
                              .values({**assignments, "updated_at": now}))
        written["profiles_updated"] = int(result.rowcount or 0)
        if multi:
            v = store.values
            pairs = pd.concat([pd.DataFrame({"profile_id": updates.loc[updates[changed_flag(prop)], "profile_id"],
                                             "property": prop}) for prop in multi], ignore_index=True)
            if len(pairs):
                pstage = store._stage(conn, "bcs_value_pairs", v, pairs, ["profile_id", "property"])
                active = select(p.c.profile_id).where(p.c.state == ACTIVE)
                removed = conn.execute(delete(v).where(
                    select(pstage.c.profile_id).where(and_(pstage.c.profile_id == v.c.profile_id,
                                                           pstage.c.property == v.c.property)).exists()))
                written["values_removed"] = int(removed.rowcount or 0)
                rows = values.loc[values["profile_id"].isin(
                    [r[0] for r in conn.execute(active.where(p.c.profile_id.in_(select(pstage.c.profile_id))))])]
                written["values_inserted"] = insert_frame(conn, v, rows[["profile_id", "property", "position",
                                                                         "value"]])
    return written


def read_bcs_properties(store: ProfileStore, single: list[str], multi: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The confirming import: ``profile_id``, ``state`` and the ``single`` properties of every profile (one
    SELECT), and the values of the ``multi`` properties (one SELECT)."""
    p = store.profiles
    with store.reading(), store.engine.connect() as conn:
        rows = conn.execute(select(p.c.profile_id, p.c.state, *[p.c[c] for c in single])).fetchall()
        people = pd.DataFrame([tuple(r) for r in rows], columns=["profile_id", "state", *single], dtype=object)
        values = store.read_values(conn, multi) if multi else empty_values()
    return people.where(people.notna(), None), values
