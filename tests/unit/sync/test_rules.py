"""The rules users rely on (DESIGN §3), each tested end to end through the engine steps.

Every test builds a small LDIF directory, runs full synchronizations into a
profile store — SQLite and PostgreSQL, the same tests for both — and asserts on
the profile store.
"""

from __future__ import annotations

import pytest

from tests.conftest import PROFILE_STORE_BACKENDS, fresh_postgres_database
from tests.helpers.directory import BASE, USERS, FakeDirectory, guid_text
from tests.helpers.sync import SyncHarness

ACCOUNT = "i:0#.f|membership|{}"


@pytest.fixture
def harness(tmp_path, profile_store_url):
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url)
    yield h
    h.close()


def _boss_and_report(d: FakeDirectory) -> tuple[str, str]:
    # The report comes first in the file: its manager is referenced before it appears.
    report = d.person(1, "Rita Report", upn="rita@contoso.com", manager=f"CN=Bob Boss,{USERS}")
    boss = d.person(2, "Bob Boss", upn="bob@contoso.com")
    return report, boss


# -- default property mapping, row by row ---------------------------------------------------
FULL_PERSON = {
    "userPrincipalName": "Jane.Doe@Contoso.COM",
    "displayName": "Jane Doe",
    "givenName": "Jane",
    "sn": "Doe",
    "telephoneNumber": "+1 555 0100",
    "proxyAddresses": ["smtp:jd@contoso.com", "SMTP:jane.doe@contoso.com", "SIP:jane@contoso.com",
                       "X500:/o=Contoso/cn=jane"],
    "physicalDeliveryOfficeName": "Building 7",
    "title": "Engineer",
    "department": "R&D",
    "wWWHomePage": "https://contoso.com/~jane",
    "preferredLanguage": "de-DE",
    "msExchHideFromAddressList": "TRUE",
    "thumbnailPhoto": b"\xff\xd8\xff\xe0 a picture \x00\x01\xff\xd9",
}

EXPECTED = [
    ("account_name", "i:0#.f|membership|jane.doe@contoso.com"),
    ("user_name", "Jane.Doe@Contoso.COM"),
    ("user_principal_name", "Jane.Doe@Contoso.COM"),
    ("preferred_name", "Jane Doe"),
    ("first_name", "Jane"),
    ("last_name", "Doe"),
    ("work_phone", "+1 555 0100"),
    ("work_email", "jane.doe@contoso.com"),
    ("sip_address", "jane@contoso.com"),
    ("office", "Building 7"),
    ("title", "Engineer"),
    ("job_title", "Engineer"),
    ("department", "R&D"),
    ("public_site_redirect", "https://contoso.com/~jane"),
    ("language_preferences", "de-DE"),
    ("hide_from_address_lists", True),
    ("manager", "i:0#.f|membership|bob@contoso.com"),
    ("picture", b"\xff\xd8\xff\xe0 a picture \x00\x01\xff\xd9"),
]


@pytest.fixture(scope="module", params=PROFILE_STORE_BACKENDS)
def mapped(request, tmp_path_factory):
    url = None
    if request.param == "postgresql":
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"), "psync_rules_mapping")
    h = SyncHarness(tmp_path_factory.mktemp("mapping"), profile_store_url=url)
    d = FakeDirectory()
    attrs = dict(FULL_PERSON)
    upn = attrs.pop("userPrincipalName")
    d.person(10, "Jane Doe", upn=upn, manager=f"CN=Bob Boss,{USERS}", **attrs)
    d.person(2, "Bob Boss", upn="bob@contoso.com")
    h.sync(d)
    yield h.profile("jane.doe@contoso.com")
    h.close()


@pytest.mark.parametrize(("prop", "value"), EXPECTED, ids=[p for p, _ in EXPECTED])
def test_default_mapping_row(mapped, prop, value):
    assert mapped[prop] == value


def test_primary_smtp_is_the_upper_case_prefix_only(harness):
    d = FakeDirectory()
    d.person(1, "Only Aliases", upn="a@contoso.com", proxyAddresses=["smtp:alias1@contoso.com", "smtp:b@x.com"])
    harness.sync(d)
    assert harness.profile("a@contoso.com")["work_email"] is None


# -- disabled accounts: bit 0x2, never "== 2" ----------------------------------------------------
@pytest.mark.parametrize(("uac", "disabled"), [
    (512, False), (66048, False), (544, False), (16, False),
    (514, True), (546, True), (66050, True), (66082, True), (2, True),
])
def test_disabled_is_bit_0x2(harness, uac, disabled):
    d = FakeDirectory()
    d.person(1, "Somebody", upn="s@contoso.com", uac=uac)
    d.person(2, "Anchor", upn="anchor@contoso.com")
    harness.sync(d)
    upns = set(harness.profiles()["user_principal_name"])
    assert ("s@contoso.com" not in upns) is disabled


def test_disabled_later_is_marked_under_leave_scope(harness):
    d = FakeDirectory()
    d.person(1, "Dana", upn="dana@contoso.com")
    d.person(2, "Eve", upn="eve@contoso.com")
    harness.sync(d)
    pid = harness.profile("dana@contoso.com")["profile_id"]
    d.person(1, "Dana", upn="dana@contoso.com", uac=514, title="changed")
    harness.sync(d)
    row = harness.profiles().loc[pid]
    assert row["state"] == "marked_for_deletion"
    assert row["title"] is None


def test_disabled_later_is_frozen_under_freeze(tmp_path, profile_store_url):
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url, deletion={"disabled_accounts": "freeze"})
    d = FakeDirectory()
    d.person(1, "Dana", upn="dana@contoso.com", title="Before")
    d.person(2, "Eve", upn="eve@contoso.com")
    d.person(3, "Never Active", upn="never@contoso.com", uac=514)
    h.sync(d)
    assert "never@contoso.com" not in set(h.profiles()["user_principal_name"])
    d.person(1, "Dana", upn="dana@contoso.com", uac=514, title="After")
    h.sync(d)
    row = h.profile("dana@contoso.com")
    assert row["state"] == "active"
    assert row["title"] == "Before"


# -- references -----------------------------------------------------------------------------------
def test_manager_referenced_before_it_appears(harness):
    d = FakeDirectory()
    _boss_and_report(d)
    harness.sync(d)
    assert harness.profile("rita@contoso.com")["manager"] == ACCOUNT.format("bob@contoso.com")


def test_dangling_manager_is_reported_and_left_empty(harness):
    d = FakeDirectory()
    d.person(1, "Orphan", upn="orphan@contoso.com", manager=f"CN=Nobody Here,{USERS}")
    d.person(2, "Other", upn="other@contoso.com")
    out = harness.sync(d)
    assert harness.profile("orphan@contoso.com")["manager"] is None
    sync = out["synchronize"]
    assert sync["unresolved_references"] == 1
    assert sync["unresolved_samples"][0]["reason"] == "not found in the directory"
    assert harness.profile("other@contoso.com")["state"] == "active"


def test_manager_out_of_scope_is_reported_and_left_empty(harness):
    d = FakeDirectory()
    d.person(1, "Worker", upn="w@contoso.com", manager=f"CN=Gone Boss,{USERS}")
    d.person(2, "Gone Boss", upn="gone@contoso.com", uac=514)
    out = harness.sync(d)
    assert harness.profile("w@contoso.com")["manager"] is None
    assert out["synchronize"]["unresolved_samples"][0]["reason"] == "out of scope"


def test_manager_cycle_is_data(harness):
    d = FakeDirectory()
    d.person(1, "Ann", upn="ann@contoso.com", manager=f"CN=Ben,{USERS}")
    d.person(2, "Ben", upn="ben@contoso.com", manager=f"CN=Ann,{USERS}")
    harness.sync(d)
    assert harness.profile("ann@contoso.com")["manager"] == ACCOUNT.format("ben@contoso.com")
    assert harness.profile("ben@contoso.com")["manager"] == ACCOUNT.format("ann@contoso.com")


def test_group_cycle_and_nesting_are_kept(harness):
    d = FakeDirectory()
    p = d.person(1, "Member", upn="m@contoso.com")
    g1 = f"CN=G1,{USERS}"
    g2 = f"CN=G2,{USERS}"
    d.group(100, "G1", [p, g2])
    d.group(101, "G2", [g1, f"CN=Ghost,{USERS}"])
    out = harness.sync(d)
    m = harness.memberships()
    edges = set(zip(m["group_id"], m["member_type"], m["member_id"]))
    profile_id = harness.profile("m@contoso.com")["profile_id"]
    store = harness.store.read_all().groups.set_index("name")
    gid1, gid2 = store.loc["G1", "group_id"], store.loc["G2", "group_id"]
    assert edges == {(gid1, "person", profile_id), (gid1, "group", gid2), (gid2, "group", gid1)}
    assert out["synchronize"]["unresolved_references"] == 1


# -- deletes, returns, renames ----------------------------------------------------------------
def test_deleted_person_is_marked_then_unmarked_on_return(harness):
    d = FakeDirectory()
    dn = d.person(1, "Leaver", upn="leaver@contoso.com")
    d.person(2, "Stayer", upn="stayer@contoso.com")
    group = d.group(100, "Team", [dn])
    harness.sync(d)
    pid = harness.profile("leaver@contoso.com")["profile_id"]
    assert len(harness.memberships()) == 1

    record = d.entries[dn]
    d.remove(dn)
    harness.sync(d)
    row = harness.profiles().loc[pid]
    assert row["state"] == "marked_for_deletion"
    assert row["marked_for_deletion_at"] is not None
    assert len(harness.memberships()) == 0  # the group still lists the DN; the person is gone

    d.entries[dn] = record  # restored with the same objectGUID
    harness.sync(d)
    row = harness.profiles().loc[pid]
    assert row["state"] == "active"
    assert row["marked_for_deletion_at"] is None
    assert len(harness.profiles()) == 2
    assert len(harness.memberships()) == 1
    assert group in d.entries


def test_recreated_with_same_name_is_a_new_profile(harness):
    d = FakeDirectory()
    dn = d.person(1, "Sam", upn="sam@contoso.com")
    d.person(2, "Other", upn="other@contoso.com")
    harness.sync(d)
    old = harness.profile("sam@contoso.com")["profile_id"]
    d.remove(dn)
    d.person(3, "Sam", upn="sam@contoso.com")  # new objectGUID
    harness.sync(d)
    people = harness.profiles()
    same = people.loc[people["user_principal_name"] == "sam@contoso.com"]
    assert set(same["state"]) == {"active", "marked_for_deletion"}
    assert same.loc[same["state"] == "active", "profile_id"].item() != old


def test_rename_and_move_keep_the_profile(harness):
    d = FakeDirectory()
    dn = d.person(1, "Old Name", upn="mover@contoso.com")
    d.person(2, "Report", upn="report@contoso.com", manager=dn)
    harness.sync(d)
    pid = harness.profile("mover@contoso.com")["profile_id"]
    new_dn = f"CN=New\\, Name,OU=Sub,{USERS}"
    d.rename(dn, new_dn)
    harness.sync(d)
    people = harness.profiles()
    assert len(people) == 2
    row = people.loc[pid]
    assert row["state"] == "active"
    assert row["source_dn"] == new_dn
    assert row["source_anchor"] == guid_text(1)
    assert harness.profile("report@contoso.com")["manager"] == ACCOUNT.format("mover@contoso.com")


def test_moving_out_of_the_containers_marks_for_deletion(harness):
    d = FakeDirectory()
    dn = d.person(1, "Mover", upn="mover@contoso.com")
    d.person(2, "Other", upn="other@contoso.com")
    harness.sync(d)
    pid = harness.profile("mover@contoso.com")["profile_id"]
    d.rename(dn, f"CN=Mover,OU=Elsewhere,{BASE}")
    harness.sync(d)
    assert harness.profiles().loc[pid, "state"] == "marked_for_deletion"


# -- the directory wins for mapped properties, never touches the others -------------------
def test_directory_wins_and_unmapped_properties_are_untouched(harness):
    d = FakeDirectory()
    d.person(1, "Kim", upn="kim@contoso.com", title="Engineer")
    d.person(2, "Lee", upn="lee@contoso.com")
    harness.sync(d)
    pid = harness.profile("kim@contoso.com")["profile_id"]
    harness.execute("UPDATE user_profiles SET title = 'CEO', about_me = 'Hello', skills = 'Python' "
                    "WHERE profile_id = :p", p=pid)
    out = harness.sync(d)
    row = harness.profiles().loc[pid]
    assert row["title"] == "Engineer"
    assert row["about_me"] == "Hello"
    assert row["skills"] == "Python"
    assert out["export_profile_store"]["updates"] == 1


def test_second_run_writes_nothing(harness):
    d = FakeDirectory()
    _boss_and_report(d)
    d.group(100, "Team", [f"CN=Rita Report,{USERS}"])
    harness.sync(d)
    before = harness.profiles()
    out = harness.sync(d)
    ex = out["export_profile_store"]
    assert (ex["adds"], ex["updates"], ex["deletes"], ex["membership_adds"], ex["membership_removes"]) == (0, 0, 0, 0, 0)
    assert ex["unchanged"] == 2
    after = harness.profiles()
    assert after["updated_at"].equals(before["updated_at"])


def test_duplicate_account_names_are_held_not_written(harness):
    d = FakeDirectory()
    d.person(1, "Twin A", upn="twin@contoso.com")
    d.person(2, "Twin B", upn="TWIN@contoso.com")
    d.person(3, "Single", upn="single@contoso.com")
    out = harness.sync(d)
    assert set(harness.profiles()["user_principal_name"]) == {"single@contoso.com"}
    assert out["synchronize"]["errors"] == 2
    assert "duplicate account name" in out["synchronize"]["held_samples"][0]["reason"]


def test_empty_import_never_becomes_a_mass_delete(harness):
    from profile_sync.gates import GateFailedError

    d = FakeDirectory()
    d.person(1, "A", upn="a@contoso.com")
    d.person(2, "B", upn="b@contoso.com")
    harness.sync(d)
    before = harness.profiles()
    with pytest.raises(GateFailedError, match="source_not_empty"):
        harness.sync(FakeDirectory())
    after = harness.profiles()
    assert list(after["state"]) == ["active", "active"]
    assert after.equals(before)


def test_dry_run_writes_nothing_and_keeps_state(harness):
    d = FakeDirectory()
    d.person(1, "A", upn="a@contoso.com")
    harness.sync(d)
    version = harness.context().store.committed_manifest()["version"]
    d.person(2, "B", upn="b@contoso.com")
    out = harness.sync(d, dry_run=True)
    assert out["export_profile_store"]["adds"] == 1
    assert out["export_profile_store"]["written"] is False
    assert len(harness.profiles()) == 1
    assert harness.context().store.committed_manifest()["version"] == version


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_marked_profiles_are_purged_after_retention_and_a_returner_comes_back(tmp_path, mode):
    h = SyncHarness(tmp_path, deletion={"retention_days": 0})
    d = FakeDirectory()
    dn = d.person(1, "Leaver", upn="leaver@contoso.com")
    d.person(2, "Stayer", upn="stayer@contoso.com")
    h.sync(d, mode=mode)
    pid = h.profile("leaver@contoso.com")["profile_id"]
    record = d.entries.pop(dn)
    h.sync(d, mode=mode)
    assert h.profiles().loc[pid, "state"] == "marked_for_deletion"
    out = h.sync(d, mode=mode)
    assert out["export_profile_store"]["purged"] == 1
    assert pid not in h.profiles().index
    d.entries[dn] = record
    h.sync(d, mode=mode)
    assert h.profiles().loc[pid, "state"] == "active"
