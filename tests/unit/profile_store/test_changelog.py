"""The change log's triggers on PostgreSQL: the export's own rows call no trigger function at all (the
condition is the trigger's, checked per row before any event is queued), rows written by anyone else are
logged."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import exc

from profile_sync.config.properties import BUILTIN_PROPERTIES
from profile_sync.profile_store import changelog
from profile_sync.profile_store.store import ProfileStore, copy_frame, make_engine

ROWS = 500
# '%%': psycopg2 reads a bare '%' as a placeholder.
REFUSE = """CREATE OR REPLACE FUNCTION ps_log_change() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'ps_log_change called for %%', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"""


@pytest.fixture()
def store(postgres_url):
    s = ProfileStore(make_engine(postgres_url), dict(BUILTIN_PROPERTIES))
    with s.engine.begin() as conn:
        s.ensure_schema(conn, None)
    yield s
    s.engine.dispose()


def _memberships() -> pd.DataFrame:
    return pd.DataFrame({"group_id": [f"g{i % 7}" for i in range(ROWS)], "member_type": "person",
                         "member_id": [f"p{i:05d}" for i in range(ROWS)]})


def test_rows_the_export_writes_call_no_trigger_function(store):
    with store.engine.connect() as conn, conn.begin() as tx:
        conn.exec_driver_sql(REFUSE)  # rolled back below: any call of the function now fails the statement
        with changelog.suspended(conn):
            assert copy_frame(conn, store.memberships, _memberships()) == ROWS
            conn.exec_driver_sql("UPDATE group_memberships SET member_type = 'person'")
            conn.exec_driver_sql("DELETE FROM group_memberships WHERE group_id = 'g1'")
        assert conn.exec_driver_sql("SELECT count(*) FROM group_memberships").scalar_one() == ROWS - 72
        with pytest.raises(exc.DBAPIError, match="ps_log_change called for group_memberships"):
            conn.exec_driver_sql("INSERT INTO group_memberships VALUES ('g-outside', 'person', 'p-outside')")
        tx.rollback()


def test_rows_written_outside_the_export_are_logged_and_the_exports_are_not(store):
    with store.engine.begin() as conn:
        with changelog.suspended(conn):
            copy_frame(conn, store.memberships, _memberships())
        conn.exec_driver_sql("INSERT INTO group_memberships VALUES ('g-outside', 'person', 'p-outside')")
        conn.exec_driver_sql("UPDATE user_groups SET name = name")  # no rows: nothing to log
        conn.exec_driver_sql("DELETE FROM group_memberships WHERE group_id = 'g2' AND member_id = 'p00002'")
    with store.engine.connect() as conn:
        logged = conn.exec_driver_sql(f"SELECT table_name, row_id FROM {changelog.CHANGES} ORDER BY seq").all()
    assert [tuple(r) for r in logged] == [("group_memberships", "g-outside"), ("group_memberships", "g2")]
