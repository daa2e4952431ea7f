"""The coordination tables: the small, transactional half of the state.

The state store holds the bulky, immutable half (Parquet objects on a disk or
in object storage). Everything that must switch atomically or be shared by
tasks on different machines lives here, in a SQL database — by default the
profile store's own database, so the embedded default needs no extra server:

``profile_sync_lease``      one row per state store: who holds the lease, until when
``profile_sync_state``      one row per state store: the committed manifest and its
                            version (the one conditional switch of a commit), and
                            which run last exported to the profile store
``profile_sync_run_parts``  a run's working state: one row per step (and connection),
                            so parallel tasks never overwrite each other's part
``profile_sync_runs``       the run history: one document per run ...
``profile_sync_run_steps``  ... and one row per step attempt (retries keep every attempt)

A commit is: write new Parquet objects (never overwritten), then one
transaction that checks the lease is still ours and switches the manifest with
``UPDATE … WHERE version = :base`` — the same pattern as an Iceberg JDBC catalog.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, ProgrammingError

from profile_sync.profile_store.engine import begin_write

from profile_sync.state.errors import LeaseLostError, StateConflictError

METADATA = MetaData()

LEASE = Table(
    "profile_sync_lease", METADATA,
    Column("name", String(255), primary_key=True),
    Column("owner", String(512)),
    Column("token", String(64)),
    Column("acquired_at", Float),
    Column("renewed_at", Float),
    Column("expires_at", Float, nullable=False, default=0.0),
    Column("host", String(255)),
    Column("pid", Integer),
)

STATE = Table(
    "profile_sync_state", METADATA,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("run_key", String(512)),
    Column("committed_at", Float),
    Column("exported_by", String(512)),
    Column("exported_at", Float),
)

PARTS = Table(
    "profile_sync_run_parts", METADATA,
    Column("name", String(255), nullable=False),
    Column("run_key", String(512), nullable=False),
    Column("part", String(255), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("written_at", Float, nullable=False),
    PrimaryKeyConstraint("name", "run_key", "part"),
)

RUNS = Table(
    "profile_sync_runs", METADATA,
    Column("name", String(255), nullable=False),
    Column("run_key", String(512), nullable=False),
    Column("dag_id", String(255)),
    Column("run_id", String(255)),
    Column("status", String(32), nullable=False),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("name", "run_key"),
)

STEPS = Table(
    "profile_sync_run_steps", METADATA,
    Column("name", String(255), nullable=False),
    Column("run_key", String(512), nullable=False),
    Column("step", String(64), nullable=False),
    Column("connection", String(255), nullable=False, default=""),
    Column("attempt", Integer, nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("record", Text, nullable=False),
    PrimaryKeyConstraint("name", "run_key", "step", "connection", "attempt"),
)

EMPTY_MANIFEST: dict[str, Any] = {"version": 0, "run_id": None, "committed_at": None, "frames": {}, "values": {}}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def transactional_sqlite(engine: Engine) -> None:
    """Make SQLite transactions real: DDL (schema changes, triggers) inside ``begin()`` commits with it.

    Python's sqlite3 (3.11) opens a transaction only before INSERT/UPDATE/DELETE, so a
    CREATE/ALTER/DROP issued first runs in autocommit and survives a rollback. SQLAlchemy's
    documented remedy: the driver in autocommit mode, and SQLAlchemy emits BEGIN itself.
    """

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


class Coordination:
    """The coordination tables of one state store (``name``) in one database."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._ready = False

    # -- plumbing -------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the tables and this state store's rows (idempotent; once per instance, i.e. per step)."""
        if self._ready:
            return
        with self._translate():
            try:
                with begin_write(self.engine) as conn:
                    METADATA.create_all(conn, checkfirst=True)
            except (IntegrityError, ProgrammingError):  # PostgreSQL: another process created it at the same moment
                with begin_write(self.engine) as conn:
                    METADATA.create_all(conn, checkfirst=True)
        for table, row in ((LEASE, {"name": self.name, "expires_at": 0.0}),
                           (STATE, {"name": self.name, "version": 0, "manifest": dumps(EMPTY_MANIFEST)})):
            with self._translate():
                with self.engine.connect() as conn:
                    if conn.execute(select(table.c.name).where(table.c.name == self.name)).first() is not None:
                        continue
                try:
                    with begin_write(self.engine) as conn:
                        conn.execute(insert(table).values(**row))
                except IntegrityError:
                    pass  # another process created it first
        self._ready = True

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Database errors as the profile store's errors (it is the same database): a refused login is terminal
        and says what to fix; a server that does not answer, or SQLite busy, is transient."""
        from profile_sync.profile_store.errors import profile_store_errors

        with profile_store_errors(self.engine.url.render_as_string(hide_password=True),
                                  "the coordination tables (lease, state, run history)"):
            yield

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        self.ensure()
        with self._translate(), begin_write(self.engine) as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        self.ensure()
        with self._translate(), self.engine.connect() as conn:
            yield conn

    # -- lease ------------------------------------------------------------------------
    def lease_record(self) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(LEASE).where(LEASE.c.name == self.name)).mappings().first()
        return dict(row) if row is not None and row["owner"] is not None else None

    def fence(self, conn: Connection, owner: str, ttl: float | None = None) -> None:
        """Inside a transaction: check ``owner`` holds the lease, and keep it held until commit.

        An UPDATE as the fence: it takes the row lock (PostgreSQL) or the write lock (SQLite)
        at once, so nobody can take the lease over between this check and the commit.
        """
        now = time.time()
        values: dict[str, Any] = {"renewed_at": now}
        if ttl is not None:
            values["expires_at"] = now + ttl
        done = conn.execute(update(LEASE).where(LEASE.c.name == self.name, LEASE.c.owner == owner)
                            .values(**values)).rowcount
        if done != 1:
            holder = conn.execute(select(LEASE.c.owner).where(LEASE.c.name == self.name)).scalar()
            raise LeaseLostError(owner, holder)

    # -- committed state ---------------------------------------------------------------
    def committed(self) -> dict[str, Any]:
        """The committed manifest with ``version``, ``run_key`` (who committed it) and ``exported_by``."""
        with self.reading() as conn:
            row = conn.execute(select(STATE).where(STATE.c.name == self.name)).mappings().one()
        manifest = json.loads(row["manifest"])
        manifest["version"] = row["version"]
        manifest["run_key"] = row["run_key"]
        manifest["exported_by"] = row["exported_by"]
        manifest["committed_at"] = (datetime.fromtimestamp(row["committed_at"], timezone.utc).isoformat(timespec="seconds")
                                    if row["committed_at"] else None)
        return manifest

    def switch(self, conn: Connection, base_version: int, manifest: dict[str, Any], run_key: str) -> int:
        """The conditional switch: the new manifest becomes version ``base_version + 1``, or conflict."""
        version = base_version + 1
        body = {k: v for k, v in manifest.items() if k not in ("version", "run_key", "exported_by", "base_version", "committed_at")}
        body.update(version=version, run_id=run_key)
        done = conn.execute(update(STATE).where(STATE.c.name == self.name, STATE.c.version == base_version)
                            .values(version=version, manifest=dumps(body), run_key=run_key,
                                    committed_at=time.time())).rowcount
        if done != 1:
            now = conn.execute(select(STATE.c.version, STATE.c.run_key).where(STATE.c.name == self.name)).one()
            raise StateConflictError(
                f"run {run_key!r} started from state version {base_version} but version {now[0]} was committed "
                f"since (by run {now[1]!r})")
        return version

    def record_export(self, conn: Connection, run_key: str) -> None:
        """Inside the export's transaction: the profile store now holds what ``run_key`` exported."""
        conn.execute(update(STATE).where(STATE.c.name == self.name)
                     .values(exported_by=run_key, exported_at=time.time()))

    # -- run parts ----------------------------------------------------------------------
    def parts(self, run_key: str) -> list[dict[str, Any]]:
        with self.reading() as conn:
            rows = conn.execute(select(PARTS.c.part, PARTS.c.seq, PARTS.c.body)
                                .where(PARTS.c.name == self.name, PARTS.c.run_key == run_key)).all()
        out = [{"part": p, "seq": s, **json.loads(b)} for p, s, b in rows]
        out.sort(key=lambda x: (x["seq"], x["part"]))
        return out

    def write_part(self, run_key: str, part: str, seq: int, body: dict[str, Any], owner: str | None) -> None:
        """Replace ``part`` of ``run_key``'s working state, atomically (fenced by the lease when ``owner``)."""
        with self.transaction() as conn:
            if owner is not None:
                self.fence(conn, owner)
            conn.execute(delete(PARTS).where(PARTS.c.name == self.name, PARTS.c.run_key == run_key,
                                             PARTS.c.part == part))
            conn.execute(insert(PARTS).values(name=self.name, run_key=run_key, part=part, seq=seq,
                                              body=dumps(body), written_at=time.time()))

    def delete_parts(self, conn: Connection, run_key: str) -> None:
        conn.execute(delete(PARTS).where(PARTS.c.name == self.name, PARTS.c.run_key == run_key))

    def live_runs(self) -> list[str]:
        """Runs that have working state."""
        with self.reading() as conn:
            return [r[0] for r in conn.execute(select(PARTS.c.run_key).where(PARTS.c.name == self.name)
                                               .distinct()).all()]
