"""A standards-following OpenLDAP directory (slapd with refint and memberof): groupOfUniqueNames with
and without UIDs, people without the attribute that feeds ``account_name``, and returners — people
moved into the selected containers from outside them — in incremental runs, whose groups the
server's refint rewrote without those groups showing as changed."""

from __future__ import annotations

import ldap3
import pytest

from profile_sync.directory.ldap.referrers import read_referrers
from tests.helpers.delta import NO_LIMITS, assert_same, snapshot
from tests.helpers.ldap import LdapSyncHarness, slapd_info
from tests.helpers.standards import DIRECTORY, ELSEWHERE, GROUPS, NAMELESS, OUTSIDER, PEOPLE, REPORT, seed

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def server(slapd_factory):
    s = slapd_factory(tls=False, memberof=True)
    s.load_entries(seed())
    s.start()
    return s


def _members(h: LdapSyncHarness) -> dict[str, set[str]]:
    snap = h.store.read_all()
    groups = snap.groups.set_index("group_id")["name"]
    names = snap.people.set_index("profile_id")["user_name"]
    out: dict[str, set[str]] = {}
    for row in snap.memberships.itertuples(index=False):
        out.setdefault(groups[row.group_id], set()).add(names.get(row.member_id, groups.get(row.member_id)))
    return out


def _move(conn: ldap3.Connection, dn: str, parent: str) -> str:
    rdn = dn.split(",", 1)[0]
    assert conn.modify_dn(dn, rdn, new_superior=parent), conn.result
    return f"{rdn},{parent}"


def test_read_referrers_finds_who_names_a_dn_inside_the_containers(server, tmp_path):
    h = LdapSyncHarness(tmp_path, slapd_info(server), DIRECTORY)
    conn = server.connect()
    assert conn.add(f"cn=outside-group,{ELSEWHERE}", ["groupOfNames"], {"cn": "outside-group", "member": [OUTSIDER]})
    from profile_sync.directory.readers import make_reader

    reader = make_reader(h.directory(), h.context())
    found = read_referrers(reader, [OUTSIDER.upper()], ["manager", "member", "uniqueMember"],
                           frozenset({"objectclass", "entryuuid", "member", "uniquemember", "manager", "cn"}))
    # groupOfNames member and plain uniqueMember; the value with a UID is not matched by uniqueMemberMatch
    # (RFC 4517: an assertion without a UID matches values without one), and slapd's refint leaves it as is.
    assert sorted(e.dn for e in found) == sorted([REPORT, f"cn=everyone,{GROUPS}", f"cn=everyone-unique,{GROUPS}"])
    assert read_referrers(reader, [f"uid=nobody,{PEOPLE}"], ["member"], frozenset({"objectclass"})) == []


def test_unique_members_with_and_without_uids_and_people_without_mail(server, tmp_path):
    h = LdapSyncHarness(tmp_path, slapd_info(server), DIRECTORY)
    out = h.sync("full")
    members = _members(h)
    everyone = {f"p{i:04d}" for i in range(12)}
    assert members["everyone"] == members["everyone-unique"] == members["everyone-uid"] == everyone
    assert members["managers"] == members["managers-uid"] == {"p0000", "p0001"}
    people = h.store.read_all().people
    assert len(people) == 12 and people["account_name"].notna().all()
    assert out["validate_export"]["quarantined"] == 2
    held = {s["dn"]: s["reason"] for s in out["validate_export"]["quarantine_samples"]}
    assert held == {dn: "no value for `mail`, which feeds `account_name`" for dn in NAMELESS}

    conn = server.connect()
    assert conn.modify(NAMELESS[0], {"mail": [(ldap3.MODIFY_ADD, ["n1@example.org"])]}), conn.result
    assert conn.modify(f"uid=p0005,{PEOPLE}", {"mail": [(ldap3.MODIFY_DELETE, [])]}), conn.result
    out = h.sync("incremental")
    assert out["import_directory[openldap]"]["delta_read"]
    members = _members(h)
    assert members["everyone"] == members["everyone-unique"] == members["everyone-uid"] == everyone | {"n1"}
    kept = h.store.read_all().people.set_index("user_name")
    assert kept.loc["p0005", "account_name"] == "i:0#.f|membership|p0005@example.org"  # the last good profile
    assert out["validate_export"]["quarantined"] == 2 and out["validate_export"]["released"] == 1


def test_returners_keep_their_memberships_in_incremental_runs(server, tmp_path):
    """Created outside then moved in; moved out (a full run forgets the outside DN) then back in."""
    info = slapd_info(server)
    inc = LdapSyncHarness(tmp_path / "incremental", info, DIRECTORY, gates=NO_LIMITS)
    full = LdapSyncHarness(tmp_path / "full", info, DIRECTORY, gates=NO_LIMITS)
    inc.sync("full")
    full.sync("full")
    conn = server.connect()

    leaver = _move(conn, f"uid=p0001,{PEOPLE}", ELSEWHERE)  # in managers; manages p0006 to p0010
    inc.sync("incremental")
    inc.sync("full")  # the weekly full run: the leaver's outside DN is no longer in the connector space
    full.sync("full")
    assert "p0001" not in _members(inc)["everyone"]

    back = _move(conn, leaver, PEOPLE)
    moved_in = _move(conn, OUTSIDER, PEOPLE)
    out = inc.sync("incremental")
    full.sync("full")
    imported = out["import_directory[openldap]"]
    assert imported["delta_read"] and out["synchronize"]["delta"]
    assert_same(snapshot(inc), snapshot(full), "returners")
    members = _members(inc)
    assert {"p0001", "o1"} <= members["everyone"] and {"p0001", "o1"} <= members["everyone-unique"]
    assert "p0001" in members["managers"]
    people = inc.store.read_all().people.set_index("user_name")
    assert people.loc["p0003", "manager"] == "i:0#.f|membership|o1@example.org"
    assert (people.loc[[f"p{i:04d}" for i in range(6, 11)], "manager"] == "i:0#.f|membership|p0001@example.org").all()
    # Rewritten by refint, unreported: everyone, everyone-unique, managers, and everyone-uid and managers-uid
    # (p0001's value there has no UID), p0001's five reports, o1's report.
    assert imported["delta_rereads"] == 11
    assert back and moved_in
