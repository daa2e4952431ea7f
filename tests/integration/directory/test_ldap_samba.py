"""The LDAP reader, delta reader and write-back against a real Samba AD DC. No mocks.

Where Samba differs from Windows AD the tests say so; see README "Samba AD vs Windows AD".
"""

from __future__ import annotations

import base64
import uuid

import ldap3
import pytest

from profile_sync.directory.entries import DeltaStateInvalid
from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError
from profile_sync.directory.ldap.active_directory import parse_cookie
from profile_sync.sync.connector_space import attr_column, build_connector_space
from profile_sync.sync.scope import apply_scope, evaluate_filter

from tests.helpers.delta import NO_LIMITS, assert_same, snapshot
from tests.helpers.ldap import LdapSyncHarness, by_dn, object_sid, reader, samba_info, samba_tool
from tests.servers.fixtures import SERVICE_ACCOUNT, SERVICE_PASSWORD
from tests.servers.range_proxy import RangeLimitProxy

pytestmark = pytest.mark.timeout(600)
BASE = "DC=contoso,DC=com"
PEOPLE = f"OU=People,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
AD = "active_directory"
DISABLED = "(userAccountControl:1.2.840.113556.1.4.803:=2)"


def _guid(conn, dn: str) -> str:
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectGUID"])
    return str(uuid.UUID(bytes_le=conn.response[0]["raw_attributes"]["objectGUID"][0]))


def _svc(dc):
    return samba_info(dc, login=f"{SERVICE_ACCOUNT}@contoso.com", password=SERVICE_PASSWORD)


# -- full import -----------------------------------------------------------------------------
def test_full_read_gives_guid_anchors_proxy_addresses_managers_and_members(samba_dc):
    r = reader(samba_info(samba_dc, page_size=10), AD)
    entries = list(r.read_full(frozenset(r.directory.attributes)))
    assert len(entries) == 52  # 50 users, 2 groups; nothing from outside the containers
    got = by_dn(entries)
    user = got[f"cn=user 0007,{PEOPLE}".lower()]
    assert len(user.attributes["objectguid"][0]) == 16  # raw bytes; the connector space formats it
    assert b"SMTP:u0007@contoso.com" in user.attributes["proxyaddresses"]
    assert user.attributes["manager"] == [f"CN=User 0001,{PEOPLE}".encode()]
    assert len(got[f"cn=all people,{GROUPS}".lower()].attributes["member"]) == 51  # 50 users + Engineering

    space = apply_scope(build_connector_space(entries, r.directory).objects, r.directory, "leave_scope")
    conn = samba_dc.connect()
    row = space.loc[space["dn"] == f"CN=User 0007,{PEOPLE}"].iloc[0]
    assert row["anchor"] == _guid(conn, f"CN=User 0007,{PEOPLE}")
    assert space.loc[space["disabled"], "dn"].tolist() == [f"CN=User 0003,{PEOPLE}"]  # uac 546: bit 0x2
    assert not space.loc[space["dn"] == f"CN=User 0003,{PEOPLE}", "in_scope"].item()


def test_disabled_is_a_bit_test_and_agrees_with_the_servers_bitwise_rule(samba_dc_fresh):
    conn = samba_dc_fresh.connect()
    uac = {"0010": 514, "0011": 66050, "0012": 512, "0013": 66048, "0014": 4130}  # 0x2 set: 10, 11, 14
    for user, value in uac.items():
        assert conn.modify(f"CN=User {user},{PEOPLE}", {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(value)])]}), \
            conn.result
    r = reader(samba_info(samba_dc_fresh), AD)
    space = build_connector_space(r.read_full(frozenset(r.directory.attributes)), r.directory).objects
    people = space.loc[space["object_type"] == "person"].reset_index(drop=True)
    disabled = set(people.loc[people["disabled"], "dn"])
    assert disabled == {f"CN=User {u},{PEOPLE}" for u in ("0003", "0010", "0011", "0014")}
    conn.search(PEOPLE, f"(&(objectClass=user){DISABLED})", attributes=["cn"])
    assert {r["dn"] for r in conn.response if r["type"] == "searchResEntry"} == disabled
    assert set(people.loc[evaluate_filter(people, DISABLED), "dn"]) == disabled  # the engine's evaluation agrees
    assert people.loc[people["dn"] == f"CN=User 0012,{PEOPLE}", attr_column("useraccountcontrol")].item() == "512"


def test_a_5000_member_group_arrives_whole_explicitly_ranged_and_through_enforced_ranges(samba_dc):
    ou = f"OU=Big,{BASE}"
    users = [(f"CN=Big {i:05d},{ou}", {"objectClass": "user", "sAMAccountName": f"big{i:05d}",
                                        "userAccountControl": "544"}) for i in range(5000)]
    group = f"CN=Big Group,{ou}"
    samba_dc.seed([(ou, {"objectClass": "organizationalUnit"}), *users,
                   (group, {"objectClass": "group", "sAMAccountName": "Big Group",
                            "member": [dn for dn, _ in users]})])
    expected = {dn.lower() for dn, _ in users}
    try:
        # Samba returns every value unless a range is asked for: the reader asks anyway (1,000 at a time).
        r = reader(samba_info(samba_dc, range_size=1000, page_size=700), AD, containers=[ou])
        entries = by_dn(r.read_full())  # ranged reads of the group happen between pages of the search
        assert len(entries) == 5001
        members = entries[group.lower()].attributes["member"]
        assert len(members) == 5000 and {m.decode().lower() for m in members} == expected
        assert r.request_attributes({"member", "cn"}, AD) == ["cn", "member;range=0-999", "objectclass"]

        # A server that enforces MaxValRange=1500 (Windows AD's default) while the reader asks for 2,000:
        # the reader follows the ranges the server returns until one ends in '*'.
        with RangeLimitProxy("127.0.0.1", samba_dc.port, max_values=1500) as proxy:
            r = reader(samba_info(samba_dc, host=proxy.uri, range_size=2000, page_size=1000), AD, containers=[ou])
            members = by_dn(r.read_full())[group.lower()].attributes["member"]
            assert proxy.rewritten >= 4  # 0-1499, 1500-2999, 3000-4499, 4500-*
        assert len(members) == 5000 and {m.decode().lower() for m in members} == expected
    finally:
        samba_dc.restore("seeded")
        samba_dc.start()


def test_ldaps_and_starttls_with_the_test_ca(samba_dc):
    for info in (samba_info(samba_dc, host=samba_dc.ldaps_uri, ca_file=str(samba_dc.ca_file)),
                 samba_info(samba_dc, start_tls=True, ca_file=str(samba_dc.ca_file))):
        assert len(list(reader(info, AD).read_full())) == 52
    with pytest.raises(DirectoryError, match="ca_file"):
        list(reader(samba_info(samba_dc, host=samba_dc.ldaps_uri, retries=1), AD).read_full())


@pytest.fixture
def samba_requiring_strong_auth(samba_dc):
    """The session DC with ``ldap server require strong auth = yes`` (as an AD with LDAP signing required):
    simple binds are refused on plain LDAP; switched back after."""
    samba_dc.require_strong_auth(True)
    try:
        yield samba_dc
    finally:
        samba_dc.require_strong_auth(False)


def test_stronger_auth_required_says_to_turn_on_tls(samba_requiring_strong_auth):
    dc = samba_requiring_strong_auth
    with pytest.raises(DirectoryError) as err:
        list(reader(samba_info(dc, retries=1), AD).read_full())
    text = str(err.value)
    assert err.value.terminal and "strongerAuthRequired (8)" in text
    assert "set the 'tls' extra of Airflow Connection 'samba_test' to 'ldaps' or 'start_tls'" in text
    # Done as the hint says: the same account binds over StartTLS.
    assert len(list(reader(samba_info(dc, start_tls=True, ca_file=str(dc.ca_file)), AD).read_full())) == 52


def test_a_wrong_password_is_terminal_and_not_shown(samba_dc):
    with pytest.raises(DirectoryError) as err:
        list(reader(samba_info(samba_dc, password="Wrong-Pass-123"), AD).read_full())
    assert err.value.terminal and "invalid credentials" in str(err.value)
    assert "Wrong-Pass-123" not in str(err.value) and "data 52e" in str(err.value)  # AD's "bad password" code


def test_a_dc_that_dies_is_a_transient_error(samba_dc):
    info = samba_info(samba_dc, retries=2, connect_timeout=2, receive_timeout=5)
    samba_dc.kill()  # the forwarder stays: connections are accepted and then reset, like a crashing DC
    try:
        with pytest.raises(DirectoryUnavailableError) as err:
            list(reader(info, AD).read_full())
        assert not err.value.terminal
    finally:
        samba_dc.start()
    assert len(list(reader(info, AD).read_full())) == 52


# -- delta import ------------------------------------------------------------------------------
def test_dirsync_delta_sees_add_modify_rename_move_membership_and_delete(samba_dc_fresh):
    dc = samba_dc_fresh
    r = reader(samba_info(dc), AD)
    attributes = frozenset(r.directory.attributes)
    before = r.watermark()
    assert before["method"] == "dirsync" and before["invocation_id"] == dc.invocation_id
    conn = dc.connect()
    deleted = _guid(conn, f"CN=User 0009,{PEOPLE}")
    renamed = _guid(conn, f"CN=User 0011,{PEOPLE}")
    assert conn.add(f"CN=New Person,{PEOPLE}", "user", {"sAMAccountName": "newperson", "userAccountControl": "544",
                                                         "userPrincipalName": "newperson@contoso.com"}), conn.result
    assert conn.modify(f"CN=User 0010,{PEOPLE}", {"title": [(ldap3.MODIFY_REPLACE, ["Chief"])]})
    assert conn.modify_dn(f"CN=User 0011,{PEOPLE}", "CN=User 0011 Renamed")
    assert conn.modify_dn(f"CN=User 0012,{PEOPLE}", "CN=User 0012", new_superior=f"CN=Users,{BASE}")
    assert conn.modify(f"CN=Engineering,{GROUPS}", {"member": [(ldap3.MODIFY_ADD, [f"CN=User 0020,{PEOPLE}"])]})
    assert conn.modify(f"CN=User 0030,{PEOPLE}", {"description": [(ldap3.MODIFY_REPLACE, ["not mapped"])]})
    assert conn.delete(f"CN=User 0009,{PEOPLE}")

    delta = r.read_delta(attributes, before)
    got = by_dn(delta.entries)
    assert set(got) == {dn.lower() for dn in (f"CN=New Person,{PEOPLE}", f"CN=User 0010,{PEOPLE}",
                                              f"CN=User 0011 Renamed,{PEOPLE}", f"CN=User 0012,CN=Users,{BASE}",
                                              f"CN=Engineering,{GROUPS}")}  # not User 0030: nothing mapped changed
    assert got[f"cn=user 0010,{PEOPLE}".lower()].attributes["title"] == [b"Chief"]
    assert str(uuid.UUID(bytes_le=got[f"cn=user 0011 renamed,{PEOPLE}".lower()].attributes["objectguid"][0])) == renamed
    engineering = {m.decode().lower() for m in got[f"cn=engineering,{GROUPS}".lower()].attributes["member"]}
    assert len(engineering) == 25  # the full current members (25 + User 0020 - deleted User 0009)
    assert f"cn=user 0020,{PEOPLE}".lower() in engineering and f"cn=user 0009,{PEOPLE}".lower() not in engineering
    assert "proxyaddresses" in got[f"cn=user 0010,{PEOPLE}".lower()].attributes  # full values, not the change
    assert delta.deleted_anchors == [deleted]
    old_cookie = parse_cookie(base64.b64decode(before["dirsync_cookie"]))
    new_cookie = parse_cookie(base64.b64decode(delta.watermark["dirsync_cookie"]))
    assert new_cookie["highest_usn"] > old_cookie["highest_usn"]
    assert new_cookie["invocation_id"] == dc.invocation_id
    assert delta.watermark["highest_usn"] > before["highest_usn"]

    again = r.read_delta(attributes, delta.watermark)
    assert again.entries == [] and again.deleted_anchors == []


def test_a_changed_invocation_id_or_a_refused_cookie_forces_a_full_import(samba_dc):
    r = reader(samba_info(samba_dc), AD)
    watermark = r.watermark()
    restored = {**watermark, "invocation_id": str(uuid.uuid4())}  # what a DC restored from backup looks like
    with pytest.raises(DeltaStateInvalid, match="invocationId changed"):
        r.read_delta(frozenset(r.directory.attributes), restored)
    other_dc = {**watermark, "server": "dc2.contoso.com"}
    with pytest.raises(DeltaStateInvalid, match="another domain controller"):
        r.read_delta(frozenset(r.directory.attributes), other_dc)
    truncated = base64.b64encode(base64.b64decode(watermark["dirsync_cookie"])[:70]).decode()
    with pytest.raises(DeltaStateInvalid, match="cookie was refused: unavailableCriticalExtension"):
        r.read_delta(frozenset(r.directory.attributes), {**watermark, "dirsync_cookie": truncated})
    with pytest.raises(DeltaStateInvalid, match="not a DirSync cookie"):
        r.read_delta(frozenset(r.directory.attributes), {**watermark, "dirsync_cookie": "bm90IGEgY29va2ll"})


def test_without_replication_rights_dirsync_falls_back_to_usn_changed_which_needs_tombstones(samba_dc_fresh):
    dc = samba_dc_fresh
    r = reader(_svc(dc), AD)  # a plain account: DirSync needs "Replicating Directory Changes"
    watermark = r.watermark()
    assert watermark["method"] == "usn" and "insufficientAccessRights" in watermark["note"]
    # uSNChanged finds changes, but this account cannot read Deleted Objects: deletes would be missed.
    with pytest.raises(DeltaStateInvalid, match="Deleted Objects"):
        r.read_delta(frozenset(r.directory.attributes), watermark)


def test_usn_changed_delta_sees_changes_and_tombstones(samba_dc_fresh):
    dc = samba_dc_fresh
    r = reader(samba_info(dc, delta_method="usn"), AD)
    watermark = r.watermark()
    assert watermark["method"] == "usn" and watermark["dirsync_cookie"] is None
    conn = dc.connect()
    deleted = _guid(conn, f"CN=User 0015,{PEOPLE}")
    assert conn.modify(f"CN=User 0016,{PEOPLE}", {"telephoneNumber": [(ldap3.MODIFY_REPLACE, ["+1 555 4242"])]})
    assert conn.modify(f"CN=User 0017,{PEOPLE}", {"description": [(ldap3.MODIFY_REPLACE, ["not mapped"])]})
    assert conn.delete(f"CN=User 0015,{PEOPLE}")
    delta = r.read_delta(frozenset(r.directory.attributes), watermark)
    # uSNChanged moves with any change, mapped or not (DirSync filters by the requested attributes).
    assert sorted(e.dn for e in delta.entries) == [f"CN=User 0016,{PEOPLE}", f"CN=User 0017,{PEOPLE}"]
    assert by_dn(delta.entries)[f"cn=user 0016,{PEOPLE}".lower()].attributes["telephonenumber"] == [b"+1 555 4242"]
    assert delta.deleted_anchors == [deleted]  # tombstones through the show-deleted control
    assert delta.watermark["highest_usn"] > watermark["highest_usn"]
    assert r.read_delta(frozenset(r.directory.attributes), delta.watermark).entries == []


def test_deleting_a_manager_clears_the_manager_of_the_reports_in_incremental_runs_too(samba_dc_fresh, tmp_path):
    """AD drops the deleted person from ``manager`` of the reports and ``member`` of the groups without a USN
    change or DirSync entry. The delta re-reads the objects that named the deleted DN (regression: the
    reports were not recomputed and kept the deleted manager in incremental runs only)."""
    dc = samba_dc_fresh
    directory = {"name": "contoso", "preset": AD, "containers": [PEOPLE, GROUPS]}
    inc = LdapSyncHarness(tmp_path / "inc", samba_info(dc), directory, gates=NO_LIMITS)
    full = LdapSyncHarness(tmp_path / "full", samba_info(dc), directory, gates=NO_LIMITS)
    inc.sync()
    full.sync()
    assert dc.connect().delete(f"CN=User 0001,{PEOPLE}")  # manages User 0006..0010, in both groups
    out = inc.sync("incremental")
    full.sync()
    assert out["import_directory[contoso]"]["delta_read"] and out["import_directory[contoso]"]["delta_rereads"] == 7
    assert inc.sql("SELECT manager FROM user_profiles WHERE user_name = 'u0006@contoso.com'") == [(None,)]
    assert_same(snapshot(inc), snapshot(full), "deleting a manager")


# -- write-back ----------------------------------------------------------------------------------
def test_write_back_refused_for_one_person_by_acl_and_one_by_constraint_while_others_go_on(samba_dc_fresh,
                                                                                             tmp_path):
    dc = samba_dc_fresh
    admin = dc.connect()
    sid = object_sid(admin, f"CN={SERVICE_ACCOUNT},OU=Service Accounts,{BASE}")
    # Delegate "write property" on OU=People to the service account, and deny it on User 0002.
    samba_tool(dc, "dsacl", "set", f"--objectdn={PEOPLE}", f"--sddl=(A;CI;WP;;;{sid})")
    samba_tool(dc, "dsacl", "set", f"--objectdn=CN=User 0002,{PEOPLE}", f"--sddl=(D;;WP;;;{sid})")
    harness = LdapSyncHarness(tmp_path, _svc(dc), {
        "name": "contoso", "preset": AD, "containers": [PEOPLE, GROUPS],
        "mappings": {"picture": {"source": "thumbnailPhoto", "direction": "both"}}})
    assert harness.sync()["export_profile_store"]["adds"] == 49

    pictures = {"u0001": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "u0002": b"\xff\xd8\xff\xe0 denied",
                "u0004": b"\xff\xd8\xff\xe0" + b"x" * 200_000}  # thumbnailPhoto holds at most 100 kB
    for user, picture in pictures.items():
        harness.sql("UPDATE user_profiles SET picture = ? WHERE user_name = ?", picture, f"{user}@contoso.com")
    second = harness.sync()
    export = second["export_directory[contoso]"]
    assert (export["updates"], export["errors"]) == (1, 2)
    reasons = {s["dn"]: s["reason"] for s in export["refused_samples"]}
    assert "insufficientAccessRights" in reasons[f"CN=User 0002,{PEOPLE}"]
    assert "invalidAttributeSyntax" in reasons[f"CN=User 0004,{PEOPLE}"]
    assert second["confirm_directory[contoso]"]["confirmed"] == 1
    admin.search(f"CN=User 0001,{PEOPLE}", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["thumbnailPhoto"])
    assert admin.response[0]["raw_attributes"]["thumbnailPhoto"] == [pictures["u0001"]]
    # The profile store keeps every picture set there, written or not.
    assert harness.sql("SELECT count(*) FROM user_profiles WHERE picture IS NOT NULL") == [(3,)]

    third = harness.sync()  # the written picture comes back unchanged: nothing to update, nothing flips
    assert third["export_profile_store"]["updates"] == 0
    assert third["export_directory[contoso]"]["errors"] == 2 and third["export_directory[contoso]"]["updates"] == 0
