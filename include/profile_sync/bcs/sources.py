"""Reading a business system: one bulk read, never a query per person.

``read_source`` returns every row of the configured table, view, query or file,
with only the configured columns (the join column and the mapped ones), named
as the configuration spells them. SQL goes through SQLAlchemy (PostgreSQL tested
for real; any database SQLAlchemy has a driver for by URL) in a read-only
transaction where the database supports one; files are CSV (read as text:
types are the properties' business) or Parquet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from profile_sync.bcs.errors import BcsError, BcsUnavailableError
from profile_sync.config.business_systems import BusinessSystem
from profile_sync.config.urls import mask_url, sqlalchemy_url
from profile_sync.profile_store.errors import database_problem


@dataclass(frozen=True)
class SourceRows:
    """What one bulk read returned."""

    frame: pd.DataFrame
    """One row per source row, one column per configured column (configuration spelling)."""
    source: str
    """What was read, for the run history (table, query or file; never a password)."""
    seconds: float


def resolve_columns(bs: BusinessSystem, available: list[str]) -> dict[str, str]:
    """Configured column → actual column: exact name first, else the one case-insensitive match."""
    exact = set(available)
    folded: dict[str, list[str]] = {}
    for a in available:
        folded.setdefault(a.lower(), []).append(a)
    out, missing = {}, []
    for wanted in bs.columns:
        if wanted in exact:
            out[wanted] = wanted
        elif len(folded.get(wanted.lower(), [])) == 1:
            out[wanted] = folded[wanted.lower()][0]
        else:
            missing.append(wanted)
    if missing:
        raise BcsError(bs.name, f"column(s) {missing} not found; the source has: {', '.join(available)}")
    return out


def read_sql(bs: BusinessSystem, url: str) -> SourceRows:
    """Every row of ``bs.table`` or ``bs.query``, in one statement."""
    from sqlalchemy import column, create_engine, select, table, text
    from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

    t0 = time.perf_counter()
    try:
        engine = create_engine(sqlalchemy_url(url))
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise BcsError(bs.name, f"the URL {mask_url(url)} cannot be used ({exc}); write a SQLAlchemy URL such as "
                                "postgresql+psycopg2://user@host/hr (the password in the Airflow Connection)") from None
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(postgresql_readonly=True)
            if bs.table:
                schema, _, name = bs.table.rpartition(".")
                source = table(name, schema=schema or None)
                try:  # the column names, from a query that returns no row
                    available = list(conn.execute(select(text("*")).select_from(source).limit(0)).keys())
                except (ProgrammingError, OperationalError) as exc:
                    if isinstance(exc, OperationalError) and "no such table" not in str(exc.orig):
                        raise
                    raise BcsError(bs.name, f"table or view {bs.table!r} cannot be read: "
                                            f"{str(exc.orig).strip().splitlines()[0]}") from None
                names = resolve_columns(bs, available)
                stmt = select(*[column(names[c]) for c in bs.columns]).select_from(source)
                result = conn.execute(stmt)
                rows = result.fetchall()
                frame = pd.DataFrame([tuple(r) for r in rows], columns=bs.columns, dtype=object)
                source = f"table {bs.table}"
            else:
                result = conn.execute(text(bs.query or ""))
                available = list(result.keys())
                names = resolve_columns(bs, available)
                rows = result.fetchall()
                frame = pd.DataFrame([tuple(r) for r in rows], columns=available, dtype=object)
                frame = frame[[names[c] for c in bs.columns]]
                frame.columns = bs.columns
                source = "query"
    except SQLAlchemyError as exc:
        # A refused login or a missing database is terminal; a server that does not answer is not.
        terminal, text = database_problem(exc, url, f"the Airflow Connection of business system {bs.name!r} "
                                                     "(business_systems[].conn_id)")
        if terminal:
            raise BcsError(bs.name, f"the read failed: {text}") from exc
        raise BcsUnavailableError(bs.name, text) from exc
    finally:
        engine.dispose()
    return SourceRows(_plain(frame), source, time.perf_counter() - t0)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Driver objects as plain Python values (psycopg2 returns ``memoryview`` for bytea)."""
    for c in frame.columns:
        col = frame[c]
        first = col.dropna().head(1)
        if len(first) and isinstance(first.iloc[0], memoryview):
            frame[c] = col.map(bytes, na_action="ignore")
    return frame


def read_file(bs: BusinessSystem, path: Path) -> SourceRows:
    """Every row of a CSV (all values as text) or Parquet file."""
    t0 = time.perf_counter()
    fmt = bs.format
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    if not path.exists():
        raise BcsError(bs.name, f"file {str(path)!r} does not exist")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            names = resolve_columns(bs, list(pq.read_schema(path).names))
            frame = pd.read_parquet(path, columns=[names[c] for c in bs.columns])
        else:
            header = pd.read_csv(path, sep=bs.delimiter, encoding=bs.encoding, nrows=0)
            names = resolve_columns(bs, [str(c) for c in header.columns])
            frame = pd.read_csv(path, sep=bs.delimiter, encoding=bs.encoding, dtype=object,
                                keep_default_na=False, na_values=[""], usecols=list(set(names.values())))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BcsError(bs.name, f"cannot read {str(path)!r} as {fmt}: {exc}") from exc
    frame = frame[[names[c] for c in bs.columns]]
    frame.columns = bs.columns
    return SourceRows(frame.reset_index(drop=True), f"{fmt} file {path}", time.perf_counter() - t0)
