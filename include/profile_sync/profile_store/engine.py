"""SQLAlchemy engines for the profile store (and the coordination tables kept in its database)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

_ENGINES: dict[str, Engine] = {}
_WRITE = "profile_sync_write"


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite it takes the write lock at its start (``BEGIN IMMEDIATE``): a transaction
    that reads and then writes would otherwise fail at once with "database is locked" when another process
    wrote in between, instead of waiting its turn (SQLite cannot upgrade a stale read snapshot)."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def make_engine(url: str, what: str = "profile store") -> Engine:
    """The SQLAlchemy engine of ``url``, one per URL and process (its pool is shared by every step).

    SQLite gets WAL, a busy timeout and real transactions (DDL inside a transaction commits or
    rolls back with it); other databases get pre-ping, so a pooled connection that died (a
    restarted server) is replaced instead of failing a step. ``what`` names the database in errors
    (``site 'hr'``).
    """
    from profile_sync.config.urls import mask_url, sqlalchemy_url
    from profile_sync.profile_store.errors import ProfileStoreError

    url = sqlalchemy_url(url)  # Airflow's postgres:// (a Connection made in its UI) → postgresql+psycopg2://
    engine = _ENGINES.get(url)
    if engine is None:
        try:
            engine = _create_engine(url)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise ProfileStoreError(
                f"{what} {mask_url(url)}: the URL cannot be used ({exc}); write a SQLAlchemy URL such as "
                "postgresql+psycopg2://user@host:5432/profiles (the password in the Airflow Connection) or "
                "sqlite:///path/to/profiles.db") from None
        _ENGINES[url] = engine
    return engine


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            # Autocommit at the driver: SQLAlchemy emits BEGIN itself (below), so that a CREATE, ALTER or
            # DROP issued first in a transaction belongs to it. Python 3.11's sqlite3 would otherwise run
            # such DDL outside any transaction, and a killed export would leave it applied.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)
