"""Reading and writing the profile store in bulk (SQLAlchemy Core).

``read_all`` is the full import of the profile store (step 2 and the confirming
import, step 5): one SELECT per table. ``apply_pending_exports`` is the export
(step 4): one transaction, bulk statements through temporary staging tables
(``UPDATE … FROM``), never one round trip per person. If anything fails the
transaction rolls back and the profile store is exactly as it was.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    and_,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)

from profile_sync import faults
from profile_sync.config.properties import BUILTIN_PROPERTIES, PropertySpec
from profile_sync.profile_store import changelog
from profile_sync.profile_store.engine import begin_write, make_engine  # noqa: F401  (make_engine re-exported)
from profile_sync.profile_store.errors import profile_store_errors
from profile_sync.profile_store.schema import PROPERTY_VALUES, build_metadata
from profile_sync.sync.pending_exports import ACTIVE, MARKED, PendingExports


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype(object)
    return out.where(out.notna(), None)


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` in bulk.

    PostgreSQL (psycopg2): one ``COPY … FROM STDIN`` (psycopg2's executemany
    would send one INSERT per row). Elsewhere: one executemany of plain tuples,
    values going through the column types' bind processors column by column
    (not per row and per dict, as ``conn.execute(insert(t), dicts)`` would).
    """
    if not len(frame):
        return 0
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        return copy_frame(conn, table, frame)
    columns = list(frame.columns)
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=columns)
    arrays: dict[str, list[Any]] = {}
    for c in columns:
        series = frame[c]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            values = pd.Series(series.dt.to_pydatetime(), index=series.index, dtype=object).to_numpy()
        else:
            values = series.to_numpy(dtype=object)
        missing = pd.isna(series).to_numpy()
        if missing.any():
            values = values.copy()
            values[missing] = None
        process = table.c[c].type.bind_processor(conn.dialect)
        arrays[c] = [process(v) for v in values] if process else values.tolist()
    if compiled.positional:
        order = [arrays[name] for name in compiled.positiontup]
        params: list[Any] = list(zip(*order))
    else:
        names = list(arrays)
        params = [dict(zip(names, row)) for row in zip(*(arrays[n] for n in names))]
    conn.exec_driver_sql(str(compiled), params)
    return len(frame)


def _arrow_column(series: pd.Series, sql_type: Any) -> Any:
    """One column as an Arrow array typed for PostgreSQL's CSV input (NULL: an empty unquoted field)."""
    import pyarrow as pa

    python_type = _python_type(sql_type)
    missing = pd.isna(series).to_numpy()
    if python_type is bool:
        return pa.array(series.to_numpy(dtype=object), type=pa.bool_(), mask=missing)
    if python_type is int:
        return pa.array(series.to_numpy(dtype=object), type=pa.int64(), mask=missing)
    if python_type is bytes:  # bytea's hex input form (photos: few, so per value)
        values = ["\\x" + bytes(v).hex() if not m else None for v, m in zip(series.to_numpy(dtype=object), missing)]
        return pa.array(values, type=pa.large_string())
    if python_type is datetime and pd.api.types.is_datetime64_any_dtype(series.dtype):
        return pa.array(series, from_pandas=True)  # written as ISO 8601 (with Z when time-zone aware)
    if python_type in (date, datetime):
        values = [v.isoformat() if not m else None for v, m in zip(series.to_numpy(dtype=object), missing)]
        return pa.array(values, type=pa.large_string())
    values = series.to_numpy(dtype=object)
    try:
        return pa.array(values, type=pa.large_string(), mask=missing)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all str: as str() gives them, as before
        return pa.array([str(v) if not m else None for v, m in zip(values, missing)], type=pa.large_string())


def _python_type(sql_type: Any) -> type | None:
    try:
        return sql_type.python_type
    except NotImplementedError:
        return None


def copy_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Bulk-load ``frame`` into ``table`` with PostgreSQL's ``COPY FROM STDIN`` (same transaction as ``conn``).

    The rows go as CSV written by Arrow's C++ writer from the columns (no per-row Python): strings are
    always quoted, so an empty string stays one and an unquoted empty field is NULL (PostgreSQL's CSV rules).
    The CSV is made ``COPY_CHUNK`` rows at a time as psycopg2 reads it (:class:`_CsvStream`): the server
    parses and indexes one chunk while the next is converted, instead of waiting for the whole text.
    """
    columns = [table.c[c] for c in frame.columns]
    quote = conn.dialect.identifier_preparer.quote
    target = quote(table.name) if table.schema is None else f"{quote(table.schema)}.{quote(table.name)}"
    sql = f"COPY {target} ({', '.join(quote(c.name) for c in columns)}) FROM STDIN WITH (FORMAT csv)"
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(sql, _CsvStream(frame, columns), size=COPY_READ)
    finally:
        cursor.close()
    return len(frame)


COPY_CHUNK = 16_384
"""Rows converted to CSV at a time for ``COPY`` (a chunk of the profile store's widest table is ~3 MB)."""
COPY_READ = 1 << 20
"""Bytes psycopg2 asks for (and sends) at a time."""


class _CsvStream(io.RawIOBase):
    """``frame`` as PostgreSQL CSV, read by psycopg2's ``copy_expert``: each chunk of rows is converted (Arrow
    arrays, Arrow's CSV writer) when the reader has consumed the previous one."""

    def __init__(self, frame: pd.DataFrame, columns: list[Column]) -> None:
        super().__init__()
        self._frame = frame
        self._columns = columns
        self._next = 0
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Convert the next chunk when the buffer is empty; whether there was one."""
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        filled = False
        while not len(self._buffer) and self._next < len(self._frame):
            filled = True
            rows = self._frame.iloc[self._next:self._next + COPY_CHUNK]
            self._next += COPY_CHUNK
            arrow = pa.Table.from_arrays([_arrow_column(rows[c.name], c.type) for c in self._columns],
                                         names=[c.name for c in self._columns])
            out = io.BytesIO()
            pa_csv.write_csv(arrow, out, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
            self._buffer = out.getbuffer()
        return filled

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # everything left
            parts = []
            while self._fill() or len(self._buffer):
                parts.append(bytes(self._buffer))
                self._buffer = memoryview(b"")
            return b"".join(parts)
        self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(data)


_COPY_OUT_TYPES = (str, bool, int, date, bytes)


def copy_out_frame(conn: Connection, table: Table, columns: list[Column]) -> pd.DataFrame | None:
    """Every row of ``columns`` of ``table`` through PostgreSQL's ``COPY … TO STDOUT`` (CSV, parsed by Arrow's
    C++ reader), as an object frame of the Python values a SELECT gives (None for NULL). None: not
    PostgreSQL through psycopg2, or a column type this path does not read (the caller SELECTs).

    PostgreSQL's CSV writes NULL as an empty unquoted field and an empty string as ``""``; booleans as
    ``t``/``f``; ``bytea`` is selected as ``encode(…, 'hex')``.
    """
    if not (conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2") or not columns:
        return None
    kinds = [_python_type(c.type) for c in columns]
    if any(k not in _COPY_OUT_TYPES for k in kinds):
        return None
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    quote = conn.dialect.identifier_preparer.quote
    target = quote(table.name) if table.schema is None else f"{quote(table.schema)}.{quote(table.name)}"
    selected = ", ".join(f"encode({quote(c.name)}, 'hex')" if k is bytes else quote(c.name)
                         for c, k in zip(columns, kinds))
    sql = f"COPY (SELECT {selected} FROM {target}) TO STDOUT WITH (FORMAT csv)"
    buffer = io.BytesIO()
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(sql, buffer)
    finally:
        cursor.close()
    names = [c.name for c in columns]
    if not buffer.tell():
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    arrow_types = {str: pa.large_string(), bool: pa.bool_(), int: pa.int64(), date: pa.date32(),
                   bytes: pa.large_string()}
    buffer.seek(0)
    parsed = pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={n: arrow_types[k] for n, k in zip(names, kinds)}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))
    from profile_sync._pandas import strings_to_objects

    data: dict[str, Any] = {}
    for name, kind in zip(names, kinds):
        if kind is str:  # converted in C, repeated values (departments, titles) shared
            data[name] = pd.Series(strings_to_objects(parsed.column(name)), dtype=object)
            continue
        values = parsed.column(name).to_pylist()
        if kind is bytes:
            values = [bytes.fromhex(v) if v is not None else None for v in values]
        data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=names)


def stage_frame(conn: Connection, name: str, like: Table, frame: pd.DataFrame, columns: list[str],
                extra: dict[str, Any] | None = None) -> Table:
    """A temporary table ``_ps_stage_<name>`` with ``columns`` of ``like`` (and ``extra`` name → type), filled
    with ``frame`` in one bulk insert (``insert_frame``: COPY on PostgreSQL); for ``UPDATE … FROM``."""
    extra = extra or {}
    stage = Table(f"_ps_stage_{name}", MetaData(),
                  *[Column(c, like.c[c].type) for c in columns], *[Column(c, t) for c, t in extra.items()],
                  prefixes=["TEMPORARY"])
    stage.drop(conn, checkfirst=True)
    stage.create(conn)
    insert_frame(conn, stage, frame[[*columns, *extra]])
    return stage


@dataclass(frozen=True)
class ProfileStoreSnapshot:
    """The profile store as read by a full (or delta) import."""

    people: pd.DataFrame
    groups: pd.DataFrame
    memberships: pd.DataFrame
    exists: bool
    """False before the first export created the tables."""
    seq: int | None = None
    """Change-log position this snapshot includes (None: the store keeps no change log)."""
    changed_people: frozenset[str] = frozenset()
    """Delta import: profiles changed since the previous snapshot."""
    values: pd.DataFrame = field(default_factory=lambda: empty_values())
    """Values of the multi-valued properties: ``profile_id``, ``property``, ``position``, ``value``."""
    reread_people: int | None = None
    """Delta import: how many rows of ``people`` were re-read by key, its last rows (the others are the previous
    snapshot's, in their order); None when every row was read."""



VALUE_COLUMNS = ["profile_id", "property", "position", "value"]


def empty_values() -> pd.DataFrame:
    """An empty frame of multi-valued property values."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "position" else object) for c in VALUE_COLUMNS})


def export_errors(url: str | None = None):  # noqa: ANN201
    """Translate a failed export transaction (rolled back) into the profile store's errors."""
    return profile_store_errors(url, "the export", nothing_written=True)


class ProfileStore:
    """The profile store of one configuration."""

    def __init__(self, engine: Engine, specs: dict[str, PropertySpec]) -> None:
        self.engine = engine
        self.specs = specs
        self.metadata, self.profiles, self.groups, self.memberships, self.changes = build_metadata(specs)
        self.changelog = changelog.changes_table(self.metadata)
        self.last_purged: list[str] = []
        """Profiles the last export purged (retention)."""
        self.on_export: Callable[[Connection], None] | None = None
        """Called inside every export transaction, just before it commits (the run's lease fence and export
        marker: the profile store then records which run wrote it, atomically with what was written)."""
        self.values = self.metadata.tables[PROPERTY_VALUES]
        self.multi_valued = [name for name, spec in specs.items() if spec.multi_valued]

    @property
    def url(self) -> str:
        """The engine's URL with its password (for masking it in messages; never shown as is)."""
        return self.engine.url.render_as_string(hide_password=False)

    def reading(self):  # noqa: ANN201
        """Database errors of a read, as the profile store's errors (terminal or transient, what to fix)."""
        return profile_store_errors(self.url, "the read")

    # -- full import ------------------------------------------------------------------
    def exists(self) -> bool:
        with self.reading():
            return inspect(self.engine).has_table("user_profiles")

    def read_all(self, timestamps: bool = False) -> ProfileStoreSnapshot:
        """Every profile, group and membership, one SELECT per table.

        The synchronization does not need ``created_at``/``updated_at``/
        ``marked_for_deletion_at``; they are read only when ``timestamps`` is true.
        """
        skip = set() if timestamps else {"created_at", "updated_at", "marked_for_deletion_at"}
        if not self.exists():
            return ProfileStoreSnapshot(self._empty(self.profiles, skip), self._empty(self.groups, skip),
                                        self._empty(self.memberships, skip), exists=False)
        with self.reading(), self.engine.connect() as conn:
            # The change-log position first: a change made while reading is read again next time.
            seq = changelog.latest_seq(conn, self.changelog) if changelog.has_triggers(conn) else None
            actual = {c["name"] for c in inspect(conn).get_columns("user_profiles")}
            people = self._frame(conn, self.profiles, skip, actual)
            groups = self._frame(conn, self.groups, skip)
            members = self._frame(conn, self.memberships, skip)
            values = self.read_values(conn, self.multi_valued)
        return ProfileStoreSnapshot(people, groups, members, exists=True, seq=seq, values=values)

    def read_changes(self, base: ProfileStoreSnapshot, also: dict[str, set[str]] | None = None
                     ) -> ProfileStoreSnapshot | None:
        """Delta import: ``base`` with the rows changed since ``base.seq`` re-read (None: read everything).

        ``also``: more ids to re-read per table (``user_profiles``, ``user_groups``,
        ``group_memberships``) — what this run's export wrote, for the confirming import.
        ``changed_people`` lists only what others changed.
        """
        if base.seq is None or not self.exists():
            return None
        with self.reading(), self.engine.connect() as conn:
            logged = self._logged_since(conn, base.seq)
            if logged is None:
                return None
            changed, top = logged
            actual = {c["name"] for c in inspect(conn).get_columns("user_profiles")}
            external = set(changed.get("user_profiles", set()))
            for table, ids in (also or {}).items():
                changed[table] = set(changed.get(table, set())) | set(ids)
            people_ids = changed.get("user_profiles", set())
            group_ids = changed.get("user_groups", set())
            member_groups = changed.get("group_memberships", set())
            people, reread = self._patch(conn, self.profiles, "profile_id", base.people, people_ids, actual)
            groups, _ = self._patch(conn, self.groups, "group_id", base.groups, group_ids)
            members, _ = self._patch(conn, self.memberships, "group_id", base.memberships, member_groups)
            # Multi-valued values are only written by business systems, which read everything anyway.
            values = self.read_values(conn, self.multi_valued)
        return ProfileStoreSnapshot(people, groups, members, exists=True, seq=top,
                                    changed_people=frozenset(external), values=values, reread_people=reread)

    def quiet_since(self, seq: int) -> tuple[int, pd.DataFrame] | None:
        """When the change log names nothing after ``seq``: its position and the multi-valued values (what a
        delta import of an unchanged store reads); None when something changed or the store keeps no log."""
        if not self.exists():
            return None
        with self.reading(), self.engine.connect() as conn:
            logged = self._logged_since(conn, seq)
            if logged is None or any(logged[0].values()):
                return None
            return logged[1], self.read_values(conn, self.multi_valued)

    def changed_people_since(self, seq: int) -> set[str]:
        """Profiles the change log names after ``seq`` (empty when the store keeps no log)."""
        if not self.exists():
            return set()
        with self.engine.connect() as conn:
            logged = self._logged_since(conn, seq)
        return set(logged[0].get("user_profiles", set())) if logged is not None else set()

    def _logged_since(self, conn: Connection, seq: int) -> tuple[dict[str, set[str]], int] | None:
        """What the change log names after ``seq`` (ids per table) and its position; None when the store keeps
        no change log (no triggers)."""
        if not changelog.has_triggers(conn):
            return None
        return changelog.changed_since(conn, self.changelog, seq)

    def _patch(self, conn: Connection, table: Table, key: str, base: pd.DataFrame, ids: set[str],
               actual: set[str] | None = None) -> tuple[pd.DataFrame, int | None]:
        """``base`` with the rows whose ``key`` is in ``ids`` replaced by their current rows, and how many rows
        were read by key (the last ones; None when the table was read whole)."""
        if not ids:
            return base, 0
        if len(ids) * 2 >= base[key].nunique() or int(base[key].isin(ids).sum()) * 2 >= len(base):
            # Most keys or most rows asked for (the confirming import of a first or mass export; memberships of
            # a group most people are in, whose every add or delete re-reads it): one bulk read of the table
            # (COPY on PostgreSQL) instead of SELECTs by key — the rows not asked for come back as they are.
            # (ids are keys: group ids for memberships, so few keys may be most rows.)
            whole = self._frame(conn, table, {c.name for c in table.c if c.name not in base.columns}, actual)
            return _objects(whole.reindex(columns=base.columns)), None
        columns = [c for c in base.columns if c in table.c and (actual is None or c in actual)]
        fresh = []
        ordered = sorted(ids)
        for i in range(0, len(ordered), 5000):
            chunk = ordered[i:i + 5000]
            result = conn.execute(select(*[table.c[c] for c in columns]).where(table.c[key].in_(chunk)))
            fresh.append(pd.DataFrame([tuple(r) for r in result.fetchall()], columns=columns, dtype=object))
        rows = pd.concat(fresh, ignore_index=True).reindex(columns=base.columns)
        kept = base.loc[~base[key].isin(ids)]
        return _objects(pd.concat([kept, rows], ignore_index=True)), len(rows)

    def read_values(self, conn: Connection, properties: list[str]) -> pd.DataFrame:
        """The values of the multi-valued ``properties``, ordered by person, property and position."""
        if not properties or not inspect(conn).has_table(PROPERTY_VALUES):
            return empty_values()
        v = self.values
        rows = conn.execute(select(v.c.profile_id, v.c.property, v.c.position, v.c.value)
                            .where(v.c.property.in_(properties))
                            .order_by(v.c.profile_id, v.c.property, v.c.position)).fetchall()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=VALUE_COLUMNS, dtype=object)
        return frame.astype({"position": "int64"})

    @staticmethod
    def _empty(table: Table, skip: set[str]) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series(dtype=object) for c in table.c if c.name not in skip})

    @staticmethod
    def _frame(conn: Connection, table: Table, skip: set[str], actual: set[str] | None = None) -> pd.DataFrame:
        wanted = [c for c in table.c if c.name not in skip]
        cols = [c for c in wanted if actual is None or c.name in actual]
        frame = copy_out_frame(conn, table, cols)
        if frame is None:
            result = conn.execute(select(*cols))
            frame = pd.DataFrame([tuple(r) for r in result.fetchall()], columns=[c.name for c in cols], dtype=object)
        for c in wanted:
            if c.name not in frame.columns:
                frame[c.name] = None
        return _objects(frame[[c.name for c in wanted]])

    # -- export -----------------------------------------------------------------------
    def ensure_schema(self, conn: Connection, run_id: str | None) -> list[str]:
        """Create missing tables; add columns for custom properties, recording each change.

        A new store is created with the built-in columns only, so every custom
        property's column — on the first run too — is an ``ALTER TABLE`` recorded
        in ``profile_schema_changes``.
        """
        if not inspect(conn).has_table("user_profiles"):
            builtin = {k: v for k, v in self.specs.items() if k in BUILTIN_PROPERTIES}
            build_metadata(builtin)[0].create_all(conn)
        self.metadata.create_all(conn)
        changelog.install_triggers(conn)
        existing = {c["name"] for c in inspect(conn).get_columns("user_profiles")}
        added = []
        for column in self.profiles.c:
            if column.name in existing:
                continue
            ddl = (f"ALTER TABLE user_profiles ADD COLUMN {conn.dialect.identifier_preparer.quote(column.name)} "
                   f"{column.type.compile(dialect=conn.dialect)}")
            conn.exec_driver_sql(ddl)
            conn.execute(insert(self.changes).values(
                applied_at=_now(), run_id=run_id, table_name="user_profiles", column_name=column.name,
                column_type=str(column.type.compile(dialect=conn.dialect)), statement=ddl))
            added.append(column.name)
        return added

    def apply_pending_exports(self, pending: PendingExports, run_id: str | None,
                              retention_days: int | None, read_upto: int | None = None) -> dict[str, int]:
        """Apply ``pending`` in one transaction; returns what was written.

        ``read_upto``: change-log entries up to here were read by a committed run and are pruned.
        """
        now = _now()
        with export_errors(self.url), begin_write(self.engine) as conn:
            added_columns = self.ensure_schema(conn, run_id)
            if read_upto:
                changelog.prune(conn, self.changelog, read_upto)
            with changelog.suspended(conn):
                written = self._apply_people(conn, pending, now)
                written.update(self._apply_groups(conn, pending, now))
                written.update(self._apply_memberships(conn, pending))
                purged = self._purge(conn, now, retention_days)
                written["purged"] = len(purged)
            written["schema_changes"] = len(added_columns)
            faults.point("export_profile_store:inside")
            if self.on_export is not None:
                self.on_export(conn)
        self.last_purged = purged
        return written

    def _stage(self, conn: Connection, name: str, like: Table, frame: pd.DataFrame, columns: list[str],
               extra: dict[str, Any] | None = None) -> Table:
        return stage_frame(conn, name, like, frame, columns, extra)

    def _apply_people(self, conn: Connection, pending: PendingExports, now: datetime) -> dict[str, int]:
        p = self.profiles
        ops = pending.people
        values = [c for c in ops.columns if c not in ("operation", "changed", "profile_id") and c in p.c]
        marks = ops.loc[ops["operation"] == "mark", ["profile_id"]]
        if len(marks):
            stage = self._stage(conn, "marks", p, marks, ["profile_id"])
            conn.execute(update(p).where(p.c.profile_id.in_(select(stage.c.profile_id)))
                         .where(p.c.state == ACTIVE)
                         .values(state=MARKED, marked_for_deletion_at=now, updated_at=now))
        upd = ops.loc[ops["operation"].isin(["update", "unmark"])]
        if len(upd):
            stage = self._stage(conn, "updates", p, upd, ["profile_id", *values])
            if "account_name" in values:
                # Free changing account names first, so two people may swap names in one export.
                renamed = upd.loc[upd["changed"].str.contains(r"(?:^|,)account_name(?:,|$)", regex=True),
                                  ["profile_id"]]
                if len(renamed):
                    rstage = self._stage(conn, "renames", p, renamed, ["profile_id"])
                    conn.execute(update(p).where(p.c.profile_id.in_(select(rstage.c.profile_id)))
                                 .values(account_name=None))
            conn.execute(update(p).where(p.c.profile_id == stage.c.profile_id)
                         .values({**{c: stage.c[c] for c in values}, "state": ACTIVE,
                                  "marked_for_deletion_at": None, "updated_at": now}))
        adds = ops.loc[ops["operation"] == "add"]
        insert_frame(conn, p, adds[["profile_id", *values]].assign(state=ACTIVE, created_at=now, updated_at=now))
        return {"adds": len(adds), "updates": len(upd), "deletes": len(marks)}

    def _apply_groups(self, conn: Connection, pending: PendingExports, now: datetime) -> dict[str, int]:
        g = self.groups
        ops = pending.groups
        values = [c for c in ops.columns if c not in ("operation", "changed", "group_id") and c in g.c]
        marks = ops.loc[ops["operation"] == "mark", ["group_id"]]
        if len(marks):
            stage = self._stage(conn, "group_marks", g, marks, ["group_id"])
            conn.execute(update(g).where(g.c.group_id.in_(select(stage.c.group_id)))
                         .values(state=MARKED, marked_for_deletion_at=now, updated_at=now))
        upd = ops.loc[ops["operation"].isin(["update", "unmark"])]
        if len(upd):
            stage = self._stage(conn, "group_updates", g, upd, ["group_id", *values])
            conn.execute(update(g).where(g.c.group_id == stage.c.group_id)
                         .values({**{c: stage.c[c] for c in values}, "state": ACTIVE,
                                  "marked_for_deletion_at": None, "updated_at": now}))
        adds = ops.loc[ops["operation"] == "add"]
        insert_frame(conn, g, adds[["group_id", *values]].assign(state=ACTIVE, created_at=now, updated_at=now))
        return {"group_adds": len(adds), "group_updates": len(upd), "group_deletes": len(marks)}

    def _apply_memberships(self, conn: Connection, pending: PendingExports) -> dict[str, int]:
        m = self.memberships
        ops = pending.memberships
        key = ["group_id", "member_type", "member_id"]
        removes = ops.loc[ops["operation"] == "remove", key]
        if len(removes):
            stage = self._stage(conn, "member_removes", m, removes, key)
            conn.execute(delete(m).where(
                select(stage.c.group_id).where(and_(*[stage.c[c] == m.c[c] for c in key])).exists()))
        adds = ops.loc[ops["operation"] == "add", key]
        insert_frame(conn, m, adds)
        return {"membership_adds": len(adds), "membership_removes": len(removes)}

    def _purge(self, conn: Connection, now: datetime, retention_days: int | None) -> list[str]:
        """Delete profiles marked for deletion longer than the retention period; their ids."""
        if retention_days is None:
            return []
        p, m = self.profiles, self.memberships
        cutoff = now - timedelta(days=retention_days)
        old = select(p.c.profile_id).where(p.c.state == MARKED, p.c.marked_for_deletion_at < cutoff)
        ids = [r[0] for r in conn.execute(old).all()]
        if ids:
            conn.execute(delete(m).where(m.c.member_type == "person", m.c.member_id.in_(old)))
            conn.execute(delete(self.values).where(self.values.c.profile_id.in_(old)))
            conn.execute(delete(p).where(p.c.state == MARKED, p.c.marked_for_deletion_at < cutoff))
        return ids

    def counts(self) -> dict[str, int]:
        """People (active / marked), groups and memberships now in the store."""
        if not self.exists():
            return {"people": 0, "marked_for_deletion": 0, "groups": 0, "memberships": 0}
        p, g, m = self.profiles, self.groups, self.memberships
        with self.reading(), self.engine.connect() as conn:
            by_state = dict(conn.execute(select(p.c.state, func.count()).group_by(p.c.state)).all())
            groups = conn.execute(select(func.count()).select_from(g).where(g.c.state == ACTIVE)).scalar_one()
            members = conn.execute(select(func.count()).select_from(m)).scalar_one()
        return {"people": int(by_state.get(ACTIVE, 0)), "marked_for_deletion": int(by_state.get(MARKED, 0)),
                "groups": int(groups), "memberships": int(members)}

