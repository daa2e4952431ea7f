"""Quarantine: a bad object is held back with a reason, never treated as deleted, retried, released when fixed."""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.sync.quarantine import keep_last_good, update_quarantine
from tests.helpers.directory import USERS, FakeDirectory, guid_text
from tests.helpers.sync import SyncHarness


def team(n: int = 12) -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, n + 1):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    return d


def dn(i: int) -> str:
    return f"CN=Person {i},{USERS}"


def quarantine(h: SyncHarness) -> pd.DataFrame:
    return h.inspector().store.read_committed_frame("quarantine")


def history(h: SyncHarness) -> dict:
    return h.last_run()


@pytest.fixture
def synced(tmp_path):
    h = SyncHarness(tmp_path)
    d = team()
    h.sync(d)
    return h, d


def assert_untouched(h: SyncHarness, before: pd.Series) -> None:
    row = h.profiles().loc[before["profile_id"]]
    assert row["state"] == "active", "a quarantined person must never be marked for deletion"
    assert row.drop("updated_at").equals(before.drop("updated_at"))


MODES = pytest.mark.parametrize("mode", ["full", "incremental"])


@MODES
def test_duplicate_anchor_holds_both_keeps_the_profile_and_the_rest_goes_on(synced, mode):
    h, d = synced
    before = h.profile("p5@contoso.com")
    d.entries[dn(5)]["title"] = ["Changed while duplicated"]
    d.person(5, "Person 5 Restored Copy", upn="p5copy@contoso.com")  # same objectGUID, another DN
    d.entries[dn(9)]["title"] = ["Promoted"]
    out = h.sync(d, mode=mode)
    assert out["synchronize"]["delta"] is (mode == "incremental")

    assert_untouched(h, before)
    assert h.profile("p9@contoso.com")["title"] == "Promoted"
    assert "p5copy@contoso.com" not in set(h.profiles()["user_principal_name"])
    q = quarantine(h)
    assert set(q["dn"]) == {dn(5), f"CN=Person 5 Restored Copy,{USERS}"}
    assert set(q["anchor"]) == {guid_text(5)}
    assert q["reason"].str.startswith("duplicate anchor").all()
    assert q["kept_last_good"].all() and (q["level"] == "import").all()
    assert out["validate_export"]["quarantined"] == 2 and out["validate_export"]["passed"]

    # Fixed: the copy is gone. Both entries are released; the pending change lands.
    d.remove(f"CN=Person 5 Restored Copy,{USERS}")
    out = h.sync(d, mode=mode)
    assert quarantine(h).empty
    assert out["validate_export"]["released"] == 2
    released = history(h)["quarantine"]["released_objects"]
    assert {r["outcome"] for r in released} == {"synchronized"}
    assert h.profile("p5@contoso.com")["title"] == "Changed while duplicated"


@MODES
def test_undecodable_value_keeps_the_last_good_profile_until_fixed(synced, mode):
    h, d = synced
    before = h.profile("p7@contoso.com")
    d.entries[dn(7)]["title"] = [b"\xff\xfe not UTF-8"]
    h.sync(d, mode=mode)
    assert_untouched(h, before)
    (row,) = quarantine(h).itertuples(index=False)
    assert row.anchor == guid_text(7) and row.dn == dn(7)
    assert "undecodable value" in row.reason and "'title'" in row.reason
    assert row.kept_last_good

    first_seen = row.first_seen
    d.entries[dn(8)]["title"] = ["another change, so the file is read again"]
    h.sync(d, mode=mode)  # still bad: retried, still held, first_seen kept
    (again,) = quarantine(h).itertuples(index=False)
    assert again.first_seen == first_seen and again.last_seen >= first_seen
    assert_untouched(h, before)

    d.entries[dn(7)]["title"] = ["Fixed"]
    out = h.sync(d, mode=mode)
    assert quarantine(h).empty and out["validate_export"]["released"] == 1
    assert h.profile("p7@contoso.com")["title"] == "Fixed"


@MODES
def test_value_too_long_holds_the_profile_at_export_level(synced, mode):
    h, d = synced
    before = h.profile("p3@contoso.com")
    d.entries[dn(3)]["title"] = ["x" * 300]
    d.person(50, "Newcomer", upn="new@contoso.com", title="y" * 300)
    h.sync(d, mode=mode)
    assert_untouched(h, before)
    assert "new@contoso.com" not in set(h.profiles()["user_principal_name"])
    q = quarantine(h).set_index("dn")
    assert q.loc[dn(3), "level"] == "export" and q.loc[dn(3), "kept_last_good"]
    assert q.loc[dn(3), "reason"] == "value too long for title (300 > 256 characters)"
    assert q.loc[dn(3), "profile_id"] == before["profile_id"]
    assert not q.loc[f"CN=Newcomer,{USERS}", "kept_last_good"]

    d.entries[dn(3)]["title"] = ["Short again"]
    h.sync(d, mode=mode)
    assert list(quarantine(h)["dn"]) == [f"CN=Newcomer,{USERS}"]
    assert h.profile("p3@contoso.com")["title"] == "Short again"


def test_duplicate_account_name_holds_both_and_keeps_the_existing_profile(synced):
    h, d = synced
    before = h.profile("p2@contoso.com")
    d.person(60, "Impostor", upn="P2@contoso.com")
    h.sync(d)
    assert_untouched(h, before)
    q = quarantine(h).set_index("dn")
    assert q.loc[dn(2), "reason"] == "duplicate account name 'i:0#.f|membership|p2@contoso.com'"
    assert q.loc[dn(2), "kept_last_good"] and not q.loc[f"CN=Impostor,{USERS}", "kept_last_good"]


NO_UPN = "no value for `userPrincipalName`, which feeds `account_name`"


def _without_upn(d: FakeDirectory, dn_: str) -> None:
    del d.entries[dn_]["userPrincipalName"]


@MODES
def test_people_without_an_account_name_are_held_never_projected_and_keep_their_profile(synced, mode):
    h, d = synced
    before = h.profile("p4@contoso.com")
    _without_upn(d, dn(4))                                   # had a profile: it stays as it was
    for n, cn in ((80, "Nameless A"), (81, "Nameless B")):   # never had one: none is made
        d.person(n, cn, title="New")
        _without_upn(d, f"CN={cn},{USERS}")
    d.person(82, "Report", upn="report@contoso.com", manager=f"CN=Nameless A,{USERS}")
    d.entries[dn(6)]["title"] = ["Still synchronized"]
    out = h.sync(d, mode=mode)
    assert out["validate_export"]["passed"], out["validate_export"]["failed_checks"]

    assert_untouched(h, before)
    people = h.profiles()
    assert len(people) == 13 and people["account_name"].notna().all()  # the twelve and the report
    assert h.profile("p6@contoso.com")["title"] == "Still synchronized"
    assert h.profile("report@contoso.com")["manager"] is None
    q = quarantine(h).set_index("dn")
    assert set(q.index) == {dn(4), f"CN=Nameless A,{USERS}", f"CN=Nameless B,{USERS}"}
    assert (q["reason"] == NO_UPN).all() and (q["level"] == "export").all()
    assert q.loc[dn(4), "kept_last_good"] and q.loc[dn(4), "profile_id"] == before["profile_id"]
    assert not q.loc[f"CN=Nameless A,{USERS}", "kept_last_good"]
    unresolved = h.inspector().store.read_committed_frame("mv/unresolved")
    assert unresolved.loc[unresolved["target_dn"] == f"CN=Nameless A,{USERS}".lower(), "reason"].tolist() == [
        "the person it names has no account name (quarantined)"]

    # Fixed: released and synchronized; the report gets their manager.
    d.entries[dn(4)]["userPrincipalName"] = ["p4@contoso.com"]
    d.entries[dn(4)]["title"] = ["Back with a name"]
    d.entries[f"CN=Nameless A,{USERS}"]["userPrincipalName"] = ["a@contoso.com"]
    out = h.sync(d, mode=mode)
    assert list(quarantine(h)["dn"]) == [f"CN=Nameless B,{USERS}"]
    assert out["validate_export"]["released"] == 2
    assert h.profile("p4@contoso.com")["title"] == "Back with a name"
    assert h.profile("a@contoso.com")["state"] == "active"
    assert h.profile("report@contoso.com")["manager"] == "i:0#.f|membership|a@contoso.com"


def test_a_blank_account_name_source_counts_as_none(tmp_path):
    h = SyncHarness(tmp_path)
    d = team(3)
    d.entries[dn(2)]["userPrincipalName"] = ["   "]
    h.sync(d)
    assert sorted(h.profiles()["user_principal_name"]) == ["p1@contoso.com", "p3@contoso.com"]
    assert quarantine(h)["reason"].tolist() == [NO_UPN]


def test_a_profile_left_without_an_account_name_by_an_earlier_version_fails_the_gate_until_fixed(synced):
    """Profiles an earlier version wrote with an empty account name: the person is held (kept as is) and
    ``account_names_unique`` counts the empty name, so nothing is exported until the directory gives one."""
    h, d = synced
    pid = h.profile("p5@contoso.com")["profile_id"]
    _without_upn(d, dn(5))
    h.execute("UPDATE user_profiles SET account_name = NULL WHERE profile_id = :pid", pid=pid)
    d.entries[dn(6)]["title"] = ["Waits for the fix"]
    with pytest.raises(Exception, match="account_names_unique"):
        h.sync(d)
    report = history(h)
    failed = next(s for s in report["steps"] if s["step"] == "validate_export")
    check = next(c for c in failed["gate_report"]["checks"] if c["name"] == "account_names_unique")
    assert check["observed"]["missing"] == 1 and check["samples"][0]["profile_id"] == pid
    assert h.profile("p6@contoso.com")["title"] == "Title 6"

    d.entries[dn(5)]["userPrincipalName"] = ["p5@contoso.com"]
    h.sync(d)
    assert h.profiles().loc[pid, "account_name"] == "i:0#.f|membership|p5@contoso.com"
    assert h.profile("p6@contoso.com")["title"] == "Waits for the fix"


def test_lost_read_access_to_the_anchor_holds_objects_and_deletes_nothing(synced):
    h, d = synced
    before = h.profiles()
    for i in range(1, 13):
        del d.entries[dn(i)]["objectGUID"]
    out = h.sync(d)
    assert out["export_profile_store"]["deletes"] == 0
    assert (h.profiles()["state"] == "active").all()
    q = quarantine(h)
    assert len(q) == 12 and q["kept_last_good"].all()
    assert (q["reason"] == "missing anchor attribute 'objectguid'").all()
    pd.testing.assert_frame_equal(h.profiles().drop(columns="updated_at"), before.drop(columns="updated_at"))


@pytest.mark.parametrize("bad_dn", [
    f"CN=Person 8,,{USERS}",     # refused by the LDIF parser's DN check
    f"CN=Person 8+,{USERS}",     # accepted by the LDIF parser, refused by the RFC 4514 parser
])
def test_invalid_dn_quarantines_that_record_and_the_import_goes_on(synced, bad_dn):
    h, d = synced
    before = h.profile("p8@contoso.com")
    d.entries[bad_dn] = d.entries.pop(dn(8))
    d.entries[dn(10)]["title"] = ["Still synchronized"]
    out = h.sync(d)
    assert out["import_directory[contoso]"]["errors"] == 1
    assert_untouched(h, before)
    assert h.profile("p10@contoso.com")["title"] == "Still synchronized"
    (row,) = quarantine(h).itertuples(index=False)
    assert (row.dn, row.reason, row.anchor, row.kept_last_good) == (bad_dn, "invalid DN", guid_text(8), True)


def test_a_new_object_with_an_invalid_dn_is_held_and_never_added(synced):
    h, d = synced
    d.person(70, "Bad", ou="not a dn")
    out = h.sync(d)
    assert len(h.profiles()) == 12
    (row,) = quarantine(h).itertuples(index=False)
    assert row.reason == "invalid DN" and not row.kept_last_good
    assert out["validate_export"]["quarantine_samples"][0]["dn"] == "CN=Bad,not a dn"


# -- the pieces ------------------------------------------------------------------------
def _space(anchors: list[str], dns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"anchor": anchors, "dn": dns, "dn_norm": [x.lower() for x in dns],
                         "in_scope": True, "object_type": "person"})


def test_keep_last_good_never_duplicates_an_imported_anchor():
    previous = _space(["a", "b"], ["cn=a,dc=x", "cn=b,dc=x"])
    objects = _space(["b"], ["cn=b2,dc=x"])
    held = pd.DataFrame({"anchor": ["a", "b"], "dn": ["cn=a,dc=x", "cn=b3,dc=x"], "position": [1, 2],
                         "reason": ["undecodable value", "duplicate anchor"]})
    out = keep_last_good(objects, held, previous)
    assert sorted(out["anchor"]) == ["a", "b"]
    assert out.loc[out["anchor"] == "b", "dn"].item() == "cn=b2,dc=x"


def test_keep_last_good_matches_objects_without_an_anchor_by_dn():
    previous = _space(["a"], ["CN=A,DC=x"])
    held = pd.DataFrame({"anchor": [None], "dn": ["cn=a, dc=x"], "position": [1], "reason": ["missing anchor"]})
    out = keep_last_good(_space([], []), held, previous)
    assert list(out["anchor"]) == ["a"]


def test_release_outcomes():
    previous = pd.DataFrame({
        "connection": ["c", "c", "c", "gone"], "anchor": ["a", "b", "z", "q"],
        "dn": ["cn=a,dc=x", "cn=b,dc=x", "cn=z,dc=x", "cn=q,dc=x"], "reason": ["r"] * 4, "level": ["import"] * 4,
        "profile_id": [None] * 4, "kept_last_good": [True] * 4, "first_seen": ["t0"] * 4, "last_seen": ["t0"] * 4})
    space = _space(["a", "b"], ["cn=a,dc=x", "cn=b,dc=x"]).assign(in_scope=[True, False])
    current = previous.iloc[0:0].drop(columns=["first_seen", "last_seen"])
    q, released = update_quarantine(previous, current, "t1", {"c": space})
    assert q.empty
    assert dict(zip(released["anchor"], released["outcome"])) == {
        "a": "synchronized", "b": "out of scope", "z": "no longer in the directory",
        "q": "connection no longer configured"}
    assert (released["released_at"] == "t1").all() and (released["first_seen"] == "t0").all()
