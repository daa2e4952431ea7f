"""groupOfUniqueNames: ``uniqueMember`` values with and without the optional UID (RFC 4517
nameAndOptionalUID, ``…,dc=org#'0101'B``) give the same memberships as the equivalent groupOfNames,
whatever the spelling of the DN; and a delta re-reads groups whose uniqueMember values name a renamed DN."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.sync.delta import apply_delta, stale_references
from tests.helpers.sync import SyncHarness

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
DIRECTORY = {"preset": "inetorgperson", "containers": [PEOPLE, GROUPS]}


def _person(i: int, dn: str | None = None) -> str:
    return (f"dn: {dn or f'uid=p{i},{PEOPLE}'}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\nsn: P{i}\n"
            f"mail: p{i}@example.org\nentryUUID: 00000000-0000-0000-0000-{i:012d}\n")


def _group(n: int, name: str, attribute: str, members: list[str]) -> str:
    cls = "groupOfNames" if attribute == "member" else "groupOfUniqueNames"
    lines = [f"dn: cn={name},{GROUPS}", f"objectClass: {cls}", f"cn: {name}",
             f"entryUUID: 10000000-0000-0000-0000-{n:012d}"]
    return "\n".join(lines + [f"{attribute}: {m}" for m in members]) + "\n"


def _ldif(groups: list[str], people: list[str] | None = None) -> str:
    head = [f"dn: {BASE}\nobjectClass: domain\ndc: example\n", f"dn: {PEOPLE}\nobjectClass: organizationalUnit\n"
            "ou: people\n", f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n"]
    # Every record ends with an empty line, as exporters write it (a last record without one may be cut short).
    return "\n".join(head + (people or [_person(i) for i in range(1, 6)]) + groups) + "\n"


SPELLINGS = [
    f"uid=p1,{PEOPLE}#'0101'B",                       # a UID
    f"UID=P2, OU=People, DC=Example, DC=Org#''B",      # another spelling, an empty UID
    f"userid=p3,ou=people,dc=example,dc=org",         # no UID, the long type name
    f"uid=p4,{PEOPLE}#'1'B",
    f"cn=plain,{GROUPS}#'11'B",                        # a nested group, with a UID
]


def _members(h: SyncHarness) -> dict[str, set[tuple[str, str]]]:
    snap = h.store.read_all()
    names = snap.groups.set_index("group_id")["name"]
    people = snap.people.set_index("profile_id")["user_name"]
    out: dict[str, set[tuple[str, str]]] = {}
    for row in snap.memberships.itertuples(index=False):
        label = people.get(row.member_id) if row.member_type == "person" else names.get(row.member_id)
        out.setdefault(names[row.group_id], set()).add((row.member_type, label))
    return out


def test_unique_members_with_and_without_uids_resolve_like_members(tmp_path):
    h = SyncHarness(tmp_path, directory=DIRECTORY)
    plain = [f"uid=p{i},{PEOPLE}" for i in range(1, 5)] + [f"cn=plain,{GROUPS}"]
    h.ldif.write_text(_ldif([
        _group(1, "plain", "member", [f"uid=p5,{PEOPLE}"]),
        _group(2, "names", "member", plain),
        _group(3, "unique", "uniqueMember", SPELLINGS),
        _group(4, "unique-no-uid", "uniqueMember", plain),
    ]))
    out = h.sync()
    assert out["synchronize"]["unresolved_references"] == 0
    members = _members(h)
    expected = {("person", f"p{i}") for i in range(1, 5)} | {("group", "plain")}
    assert members["names"] == members["unique"] == members["unique-no-uid"] == expected


def test_a_dn_that_ends_like_a_uid_but_escapes_the_hash_is_a_dn(tmp_path):
    h = SyncHarness(tmp_path, directory=DIRECTORY)
    odd = f"uid=p9\\#'01'B,{PEOPLE}"
    h.ldif.write_text(_ldif([_group(1, "unique", "uniqueMember", [odd, f"uid=p1,{PEOPLE}#'0'B"])],
                            [_person(1), _person(9, odd)]))
    h.sync()
    assert _members(h)["unique"] == {("person", "p1"), ("person", "p9")}


def test_a_rename_re_reads_groups_whose_unique_members_name_the_old_dn_and_keeps_the_uid():
    old, new = f"uid=p1,{PEOPLE}", f"uid=p1-renamed,{PEOPLE}"
    previous = pd.DataFrame({
        "anchor": ["a1", "g1", "g2"],
        "dn": [old, f"cn=u,{GROUPS}", f"cn=n,{GROUPS}"],
        "a.uniquemember": [None, np.array([f"UID=P1,{PEOPLE}#'0101'B", f"uid=p2,{PEOPLE}"], dtype=object), None],
        "a.member": [None, None, np.array([f"uid=p2,{PEOPLE}"], dtype=object)],
        "a.manager": [None, None, None],
    })
    previous["dn_norm"] = previous["dn"].str.lower()
    changed = pd.DataFrame({"anchor": ["a1"], "dn": [new], "dn_norm": [new], "a.uniquemember": [None],
                            "a.member": [None], "a.manager": [None]})
    args = ([], [], ["a.manager"], ["a.member", "a.uniquemember"])
    assert stale_references(previous, changed, *args) == [f"cn=u,{GROUPS}"]
    # What the delta does to a group it could not re-read: the new DN, with the UID kept.
    after = apply_delta(previous, changed, *args).set_index("anchor")
    assert list(after.at["g1", "a.uniquemember"]) == [f"{new}#'0101'B", f"uid=p2,{PEOPLE}"]
