"""A failed export leaves the profile store and the committed state exactly as they were (both backends)."""

from __future__ import annotations

import pytest

from profile_sync.profile_store.errors import ProfileStoreError
from tests.helpers.directory import FakeDirectory
from tests.helpers.sync import SyncHarness


def _state(h: SyncHarness) -> tuple:
    return h.profiles().sort_index().to_dict("records"), h.committed_manifest()


def test_an_export_the_database_refuses_writes_nothing(tmp_path, profile_store_url):
    d = FakeDirectory()
    for i in range(1, 6):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url)
    try:
        h.sync(d)
        # A database-side policy (a DBA's trigger) refuses one of the rows the next export writes.
        if h.backend == "sqlite":
            h.execute("CREATE TRIGGER refuse_promotions BEFORE UPDATE ON user_profiles WHEN NEW.title = 'Promoted' "
                      "BEGIN SELECT RAISE(ABORT, 'promotions need HR approval'); END")
        else:
            h.execute("CREATE FUNCTION refuse_promotions() RETURNS trigger AS $$ BEGIN "
                      "RAISE EXCEPTION 'promotions need HR approval'; END $$ LANGUAGE plpgsql")
            h.execute("CREATE TRIGGER refuse_promotions BEFORE UPDATE ON user_profiles FOR EACH ROW "
                      "WHEN (NEW.title = 'Promoted') EXECUTE FUNCTION refuse_promotions()")
        before = _state(h)
        d.person(6, "Person 6", upn="p6@contoso.com", title="Title 6")
        d.person(2, "Person 2", upn="p2@contoso.com", title="Promoted")
        with pytest.raises(ProfileStoreError, match="refused the export \\(nothing was written\\).*HR approval"):
            h.sync(d)
        assert _state(h) == before  # neither the add of p6 nor anything else landed
        doc = h.last_run()
        assert doc["status"] == "failed"
        assert [s["step"] for s in doc["steps"] if s["status"] == "failed"] == ["export_profile_store"]
    finally:
        h.close()



def test_a_unique_violation_is_terminal_and_says_what_to_fix(tmp_path, profile_store_url, monkeypatch):
    """Someone writes a row between this run's read of the store and its export: on PostgreSQL the ``COPY``
    raises psycopg2's own ``UniqueViolation`` (not wrapped by SQLAlchemy); it used to escape raw and be retried."""
    from profile_sync.profile_store.store import ProfileStore

    d = FakeDirectory()
    for i in range(1, 6):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com")
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url)
    try:
        h.sync(d)
        d.person(6, "Person 6", upn="p6@contoso.com")
        real = ProfileStore.apply_pending_exports

        def someone_else_first(self, *args, **kwargs):  # noqa: ANN001, ANN202
            h.execute("INSERT INTO user_profiles (profile_id, account_name, state) "
                      "VALUES ('made-by-hand', 'i:0#.f|membership|p6@contoso.com', 'active')")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(ProfileStore, "apply_pending_exports", someone_else_first)
        with pytest.raises(ProfileStoreError) as err:
            h.sync(d)
        assert err.value.terminal  # a retry of the same export would fail the same way
        text = str(err.value)
        assert "refused the export (nothing was written)" in text
        assert "a row already in the database holds a value that must be unique" in text
        assert "p6@contoso.com" in text or "user_profiles.account_name" in text  # which value or column
        assert "start a new synchronization" in text
        people = h.profiles()
        assert set(people["profile_id"]) - {"made-by-hand"} and len(people) == 6  # the five, and the hand-made row
        assert "p6@contoso.com" not in set(people["user_principal_name"].dropna())
    finally:
        h.close()
