"""The profile store's own delta: a change log kept by database triggers.

Every insert, update or delete on ``user_profiles``, ``user_groups`` and
``group_memberships`` made by anyone but Profile Sync's export (a person
editing their profile, an admin tool) appends ``(seq, table_name, row_id)`` to
``profile_store_changes``. The watermark of the profile-store connection is the
highest ``seq`` a run has read: an incremental run re-reads only the rows
changed since (DESIGN §2 step 2). The export suspends logging inside its own
transaction (``suspended``): it knows what it wrote, and logging 100,000 rows
row by row would double its cost; its confirming import re-reads those rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, delete, func, select

CHANGES = "profile_store_changes"
TRACKED = {"user_profiles": "profile_id", "user_groups": "group_id", "group_memberships": "group_id"}
"""Table → the id recorded for a changed row (memberships are tracked per group)."""


def changes_table(metadata: MetaData) -> Table:
    return Table(
        CHANGES, metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("table_name", String(32), nullable=False),
        Column("row_id", String(36), nullable=False),
        sqlite_autoincrement=True,  # never reuse a sequence number after pruning
    )


_LOGGING = "current_setting('profile_sync.exporting', true) IS DISTINCT FROM 'on'"
"""PostgreSQL: the triggers' ``WHEN`` condition. Checked as each row is written, so the export's own rows queue
no trigger event and call no function (a bare row trigger that returned at once cost ~0.2 s per 216,000 rows
COPied, against ~0.07 s with the condition; measured on PostgreSQL 15)."""


def install_triggers(conn: Connection) -> None:
    """Create the triggers (idempotent) for SQLite or PostgreSQL."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for table, key in TRACKED.items():
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS ps_log_{table}_{op.lower()} AFTER {op} ON {table} "
                    f"BEGIN INSERT INTO {CHANGES} (table_name, row_id) VALUES ('{table}', {row}.{key}); END")
    elif dialect == "postgresql":
        conn.exec_driver_sql(
            f"""CREATE OR REPLACE FUNCTION ps_log_change() RETURNS trigger AS $$
            BEGIN
              IF current_setting('profile_sync.exporting', true) = 'on' THEN
                RETURN NULL;
              END IF;
              IF TG_OP = 'DELETE' THEN
                INSERT INTO {CHANGES} (table_name, row_id) VALUES (TG_TABLE_NAME, to_jsonb(OLD) ->> TG_ARGV[0]);
                RETURN OLD;
              END IF;
              INSERT INTO {CHANGES} (table_name, row_id) VALUES (TG_TABLE_NAME, to_jsonb(NEW) ->> TG_ARGV[0]);
              RETURN NEW;
            END $$ LANGUAGE plpgsql""")
        for table, key in TRACKED.items():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS ps_log_{table} ON {table}")
            conn.exec_driver_sql(
                f"CREATE TRIGGER ps_log_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW "
                f"WHEN ({_LOGGING}) EXECUTE FUNCTION ps_log_change('{key}')")
    else:  # pragma: no cover - other databases: no delta, every run reads everything
        return


@contextmanager
def suspended(conn: Connection) -> Iterator[None]:
    """No logging of this transaction's own writes (other writers still log theirs).

    SQLite: the triggers are dropped and re-created inside the transaction (DDL is
    transactional there, and the write lock keeps other writers out meanwhile).
    PostgreSQL: a transaction-local setting the trigger function checks.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL profile_sync.exporting = 'on'")
        yield
        conn.exec_driver_sql("SET LOCAL profile_sync.exporting = 'off'")
    elif conn.dialect.name == "sqlite":
        for table in TRACKED:
            for op in ("insert", "update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS ps_log_{table}_{op}")
        yield
        install_triggers(conn)
    else:  # pragma: no cover
        yield


def has_triggers(conn: Connection) -> bool:
    """Whether this store keeps a change log (False for databases without trigger support here)."""
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ps_log_%'").scalar_one()
        return int(found) == 3 * len(TRACKED)
    if conn.dialect.name == "postgresql":
        names = ", ".join(f"'ps_log_{table}'" for table in TRACKED)  # no '%': psycopg2 reads it as a placeholder
        found = conn.exec_driver_sql(
            f"SELECT count(*) FROM pg_trigger WHERE tgname IN ({names}) AND NOT tgisinternal").scalar_one()
        return int(found) == len(TRACKED)
    return False


def latest_seq(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.seq), 0))).scalar_one())


def changed_since(conn: Connection, table: Table, since: int) -> tuple[dict[str, set[str]], int]:
    """Ids changed after ``since`` per tracked table, and the highest sequence number read."""
    rows = conn.execute(select(table.c.seq, table.c.table_name, table.c.row_id).where(table.c.seq > since)).all()
    out: dict[str, set[str]] = {t: set() for t in TRACKED}
    top = since
    for seq, name, row_id in rows:
        out.setdefault(name, set()).add(row_id)
        top = max(top, int(seq))
    return out, top


def prune(conn: Connection, table: Table, upto: int) -> int:
    """Forget changes every run has read (at or below ``upto``)."""
    return int(conn.execute(delete(table).where(table.c.seq <= upto)).rowcount or 0)
