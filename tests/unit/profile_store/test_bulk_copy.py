"""PostgreSQL bulk paths: COPY in (CSV written by Arrow) and COPY out (CSV read by Arrow) keep every value."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, LargeBinary, MetaData, String, Table, Text, create_engine, select

from profile_sync.profile_store.store import copy_frame, copy_out_frame

NOW = dt.datetime(2026, 12, 6, 6, 14, 50, 873269, tzinfo=dt.timezone.utc)


def _table() -> Table:
    return Table("bulk", MetaData(), Column("s", String(50)), Column("b", Boolean), Column("i", BigInteger),
                 Column("d", Date), Column("bin", LargeBinary), Column("tx", Text))


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "s": ["x", "", None, 'q"u,o\nte\\N', "\\N", "NULL"],  # empty is not NULL; CSV's specials survive
        "b": [True, False, None, True, True, None],
        "i": [1, None, 3, 2**40, 0, -5],
        "d": [dt.date(2020, 1, 2), None, dt.date(1999, 12, 31), None, None, None],
        "bin": [b"\x00\x01", None, b"", b"\\x", None, None],
        "tx": ["a\tb", "\r\n", None, "é€😀", "", "x"],
    })


def test_copy_in_and_out_keep_every_value_as_a_select_reads_it(postgres_url):
    engine = create_engine(postgres_url)
    t = _table()
    t.metadata.create_all(engine)
    try:
        with engine.connect() as c:
            empty = copy_out_frame(c, t, list(t.c))
        assert empty is not None and empty.empty and list(empty.columns) == [c.name for c in t.c]
        with engine.begin() as c:
            assert copy_frame(c, t, _frame()) == 6
        with engine.connect() as c:
            selected = [tuple(r) for r in c.execute(select(t)).fetchall()]
            copied = copy_out_frame(c, t, list(t.c))
        assert selected == [tuple(_frame().astype(object).where(_frame().notna(), None).iloc[i])
                            for i in range(6)]
        assert [tuple(r) for r in copied.itertuples(index=False)] == selected
        assert {type(v) for r in copied.itertuples(index=False) for v in r} <= {str, bool, int, bytes, dt.date,
                                                                                type(None)}
    finally:
        engine.dispose()


def test_timestamps_go_in_by_copy_and_come_out_by_select(postgres_url):
    engine = create_engine(postgres_url)
    t = Table("stamped", MetaData(), Column("k", String(10)), Column("at", DateTime(timezone=True)))
    t.metadata.create_all(engine)
    try:
        with engine.begin() as c:
            copy_frame(c, t, pd.DataFrame({"k": ["a", "b"]}).assign(at=[pd.Timestamp(NOW), pd.NaT]))
        with engine.connect() as c:
            assert copy_out_frame(c, t, list(t.c)) is None  # not a type COPY out reads: the caller SELECTs
            rows = sorted(tuple(r) for r in c.execute(select(t)).fetchall())
        assert rows == [("a", NOW), ("b", None)]
    finally:
        engine.dispose()


def test_repeated_text_comes_out_as_a_select_reads_it_sharing_equal_values(postgres_url):
    engine = create_engine(postgres_url)
    t = Table("repeated", MetaData(), Column("k", String(10)), Column("dept", String(50)))
    t.metadata.create_all(engine)
    depts = ["Sales", "", None, "Ingénierie", 'R&D, "labs"'] * 400
    try:
        with engine.begin() as c:
            copy_frame(c, t, pd.DataFrame({"k": [str(i) for i in range(len(depts))], "dept": depts}))
        with engine.connect() as c:
            selected = sorted((r.k, r.dept) for r in c.execute(select(t)).fetchall())
            copied = copy_out_frame(c, t, list(t.c))
        assert sorted(zip(copied["k"], copied["dept"])) == selected
        assert len({id(v) for v in copied["dept"] if v is not None}) == 4  # one object per distinct value
    finally:
        engine.dispose()


def test_rows_sent_in_chunks_and_small_reads_arrive_whole_and_in_order(postgres_url, monkeypatch):
    """The CSV is made a chunk of rows at a time as psycopg2 reads it: chunk and read boundaries (here 2 rows,
    7 bytes, so both fall inside values and quoted newlines) change nothing that lands."""
    from profile_sync.profile_store import store

    monkeypatch.setattr(store, "COPY_CHUNK", 2)
    monkeypatch.setattr(store, "COPY_READ", 7)
    engine = create_engine(postgres_url)
    t = _table()
    t.metadata.create_all(engine)
    frame = pd.concat([_frame()] * 3, ignore_index=True).iloc[1:]  # 17 rows: the last chunk is short
    try:
        stream = store._CsvStream(frame, list(t.c))
        pieces = iter(lambda: stream.read(5), b"")
        assert b"".join(pieces) == store._CsvStream(frame, list(t.c)).read()  # read() and read(n) agree
        with engine.begin() as c:
            assert copy_frame(c, t, frame) == 17
        with engine.connect() as c:
            selected = [tuple(r) for r in c.execute(select(t)).fetchall()]
        expected = frame.astype(object).where(frame.notna(), None)
        assert selected == [tuple(expected.iloc[i]) for i in range(17)]
    finally:
        engine.dispose()
