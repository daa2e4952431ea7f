"""A delta read of the profile store (the confirming import, an incremental import) re-reads the rows asked
for: by key when they are few, in one bulk read of the table when they are most of it — most keys, or a few
keys holding most rows (the memberships of a group nearly everyone is in) — with the same result either way."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import event

from tests.helpers.directory import USERS, team
from tests.helpers.sync import SyncHarness


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)[sorted(frame.columns)]


@pytest.fixture()
def harness(tmp_path, profile_store_url):
    d = team(30)
    d.group(2000, "Few", [f"CN=Person {i},{USERS}" for i in (1, 2)])
    for n in range(3, 7):  # more groups than the one asked for: few keys, and few rows
        d.group(2000 + n, f"Small {n}", [f"CN=Person {n},{USERS}"])
    h = SyncHarness(tmp_path, profile_store_url)
    h.sync(d)
    yield h
    h.close()


def _membership_queries(h: SyncHarness, read) -> tuple[object, list[str]]:  # noqa: ANN001
    """``read()``'s result and the SQL statements it ran that select from group_memberships by key."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        text = " ".join(statement.split()).lower()
        if "from group_memberships" in text and " where " in text:
            seen.append(text)

    event.listen(h.engine, "before_cursor_execute", record)
    try:
        return read(), seen
    finally:
        event.remove(h.engine, "before_cursor_execute", record)


def _group_id(h: SyncHarness, name: str) -> str:
    groups = h.store.read_all().groups
    return groups.loc[groups["name"] == name, "group_id"].iloc[0]


def test_the_group_most_memberships_belong_to_is_read_in_bulk_and_reads_as_the_table(harness):
    store = harness.store
    base = store.read_all()
    everyone = _group_id(harness, "Everyone")
    assert (base.memberships["group_id"] == everyone).sum() * 2 > len(base.memberships)
    # Someone else takes a person out of Everyone meanwhile (logged by the store's triggers).
    person = base.memberships.loc[base.memberships["group_id"] == everyone, "member_id"].iloc[0]
    harness.execute("DELETE FROM group_memberships WHERE group_id = :g AND member_id = :m", g=everyone, m=person)

    snapshot, queries = _membership_queries(
        harness, lambda: store.read_changes(base, also={"group_memberships": {everyone}}))
    assert queries == []  # one bulk read, no SELECT by key
    now = store.read_all().memberships
    assert len(now) == len(base.memberships) - 1
    keys = ["group_id", "member_type", "member_id"]
    pd.testing.assert_frame_equal(_sorted(snapshot.memberships, keys), _sorted(now, keys))


def test_a_small_group_is_read_by_key(harness):
    store = harness.store
    base = store.read_all()
    few = _group_id(harness, "Few")
    person = base.memberships.loc[base.memberships["group_id"] == few, "member_id"].iloc[0]
    harness.execute("DELETE FROM group_memberships WHERE group_id = :g AND member_id = :m", g=few, m=person)

    snapshot, queries = _membership_queries(
        harness, lambda: store.read_changes(base, also={"group_memberships": {few}}))
    assert len(queries) == 1 and " in (" in queries[0]
    keys = ["group_id", "member_type", "member_id"]
    pd.testing.assert_frame_equal(_sorted(snapshot.memberships, keys), _sorted(store.read_all().memberships, keys))
