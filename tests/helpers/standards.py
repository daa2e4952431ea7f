"""A small standards-following OpenLDAP directory for the issue-16 tests: groupOfNames and
groupOfUniqueNames (with and without UIDs) with the same members, people without ``mail`` (the
attribute that feeds ``account_name`` in the inetOrgPerson preset), and people outside the selected
containers who are members of groups inside them and manage people inside them (returners)."""

from __future__ import annotations

from typing import Any

from tests.servers.fixtures import default_slapd_entries

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ELSEWHERE = f"ou=elsewhere,{BASE}"
"""Outside the selected containers (``PEOPLE``, ``GROUPS``)."""
DIRECTORY = {"name": "openldap", "preset": "inetorgperson", "containers": [PEOPLE, GROUPS]}

OUTSIDER = f"uid=o1,{ELSEWHERE}"
"""Created outside: a member of ``everyone`` (all three spellings) and the manager of ``REPORT``."""
REPORT = f"uid=p0003,{PEOPLE}"
NAMELESS = [f"uid=n1,{PEOPLE}", f"uid=n2,{PEOPLE}"]
"""People without ``mail``: members of ``everyone``."""


def person(dn: str, *, mail: bool = True, **extra: Any) -> tuple[str, dict[str, Any]]:
    uid = dn.split(",", 1)[0].split("=", 1)[1]
    attrs: dict[str, Any] = {"objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
                             "uid": uid, "cn": f"Person {uid}", "sn": uid, "title": "Engineer", **extra}
    if mail:
        attrs["mail"] = f"{uid}@example.org"
    return dn, attrs


def uid_spelling(dn: str, i: int) -> str:
    """Every other member with a UID, every third one spelled in upper case with spaces."""
    spelled = dn.upper().replace(",", ", ") if i % 3 == 0 else dn
    return f"{spelled}#'{i:b}'B" if i % 2 == 0 else spelled


def seed(people: int = 12) -> list[tuple[str, dict[str, Any]]]:
    """``people`` inetOrgPersons (``default_slapd_entries``), the outsider, two nameless people, and
    beside ``everyone`` / ``managers`` (groupOfNames) their groupOfUniqueNames twins: ``everyone-unique``
    (plain DNs, which refint rewrites on a move) and ``everyone-uid`` / ``managers-uid`` (with UIDs)."""
    entries = default_slapd_entries(BASE, people=people)
    by_dn = dict(entries)
    everyone = by_dn[f"cn=everyone,{GROUPS}"]["member"] + [OUTSIDER, *NAMELESS]
    by_dn[f"cn=everyone,{GROUPS}"]["member"] = everyone
    managers = by_dn[f"cn=managers,{GROUPS}"]["member"]
    extra = [
        (ELSEWHERE, {"objectClass": ["top", "organizationalUnit"], "ou": "elsewhere"}),
        person(OUTSIDER),
        *(person(dn, mail=False) for dn in NAMELESS),
        (f"cn=everyone-unique,{GROUPS}", {"objectClass": ["top", "groupOfUniqueNames"], "cn": "everyone-unique",
                                          "uniqueMember": list(everyone)}),
        (f"cn=everyone-uid,{GROUPS}", {"objectClass": ["top", "groupOfUniqueNames"], "cn": "everyone-uid",
                                       "uniqueMember": [uid_spelling(m, i) for i, m in enumerate(everyone)]}),
        (f"cn=managers-uid,{GROUPS}", {"objectClass": ["top", "groupOfUniqueNames"], "cn": "managers-uid",
                                       "uniqueMember": [uid_spelling(m, i) for i, m in enumerate(managers)]}),
    ]
    by_dn[REPORT]["manager"] = OUTSIDER
    groups = [e for e in entries if e[0].endswith(GROUPS)]
    people_entries = [e for e in entries if not e[0].endswith(GROUPS)]
    return [*people_entries, *extra[:4], *groups, *extra[4:]]
