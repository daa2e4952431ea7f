"""The model: DN escaping and layout, queries, mutations and validation."""

from __future__ import annotations

import ldap.dn
import pytest
from hypothesis import given
from hypothesis import strategies as st

from profile_sync.sample import (
    DanglingRef,
    Group,
    Person,
    SampleDirectory,
    SampleDirectoryError,
    escape_rdn_value,
    object_dn,
    render_dns,
)

GUID = bytes(range(16))


def person(key: str, cn: str | None = None, manager: str | None = None,
           container: tuple[str, ...] = ("Sales", "Users")) -> Person:
    return Person(key=key, container=container, cn=cn or f"Person {key}", guid=GUID,
                  sam_account_name=key, manager_key=manager)


def group(key: str, members: list[str]) -> Group:
    return Group(key=key, container=("Groups",), cn=f"Group {key}", guid=GUID,
                 sam_account_name=key, member_keys=members)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Plain Name", "Plain Name"),
        ("Müller, Jürgen", "Müller\\, Jürgen"),
        ("Anna Smith+Jones", "Anna Smith\\+Jones"),
        ("#Ida Olsen", "\\#Ida Olsen"),
        ("Ida #1", "Ida #1"),
        ("Tom Trailing ", "Tom Trailing\\ "),
        (" Leading", "\\ Leading"),
        (" ", "\\ "),
        ("  ", "\\ \\ "),
        ('Robert "Bobby" Tables; Jr.', 'Robert \\"Bobby\\" Tables\\; Jr.'),
        ("Dana\\Ops", "Dana\\\\Ops"),
        ("Lee <IT> Chen", "Lee \\<IT\\> Chen"),
        ("a=b", "a=b"),
        ("nul\x00", "nul\\00"),
        ("tab\tnew\nline\r", "tab\\09new\\0Aline\\0D"),
        ("李 雷", "李 雷"),
    ],
)
def test_escape_rdn_value(raw: str, escaped: str) -> None:
    assert escape_rdn_value(raw) == escaped
    assert ldap.dn.str2dn(f"CN={escaped},DC=x")[0][0][1] == raw


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30))
def test_escaped_values_parse_back_to_themselves(raw: str) -> None:
    dn = f"CN={escape_rdn_value(raw)},OU=Users,DC=contoso,DC=com"
    parsed = ldap.dn.str2dn(dn)
    assert len(parsed) == 4
    assert parsed[0][0][1] == raw


def test_layout_per_flavour() -> None:
    p = person("p1", "Müller, Jürgen", container=("Research", "Users", "R&D, Zürich"))
    g = group("g1", [])
    assert object_dn(p, "active_directory") == (
        "CN=Müller\\, Jürgen,OU=R&D\\, Zürich,OU=Users,OU=Research,DC=contoso,DC=com")
    assert object_dn(p, "inetorgperson") == (
        "cn=Müller\\, Jürgen,ou=R&D\\, Zürich,ou=Users,ou=Research,ou=people,dc=example,dc=org")
    assert object_dn(g, "active_directory") == "CN=Group g1,OU=Groups,DC=contoso,DC=com"
    assert object_dn(g, "inetorgperson") == "cn=Group g1,ou=Groups,dc=example,dc=org"
    ghost = DanglingRef(("Sales", "Users"), "Nobody")
    assert object_dn(ghost, "inetorgperson") == (
        "cn=Nobody,ou=Users,ou=Sales,ou=people,dc=example,dc=org")


def test_manager_cycles_find_every_cycle_once() -> None:
    directory = SampleDirectory(people=[
        person("a", manager="b"), person("b", manager="a"),           # 2-cycle
        person("c", manager="d"), person("d", manager="e"), person("e", manager="c"),  # 3-cycle
        person("f", manager="f"),                                       # self
        person("g", manager="a"), person("h"), person("i", manager="h"),  # trees
    ])
    assert directory.manager_cycles() == [("a", "b"), ("c", "d", "e"), ("f",)]
    assert SampleDirectory(people=[person("x"), person("y", manager="x")]).manager_cycles() == []


def test_group_cycles_find_strongly_connected_groups() -> None:
    directory = SampleDirectory(
        people=[person("p")],
        groups=[group("g1", ["g2", "p"]), group("g2", ["g3"]), group("g3", ["g1"]),
                group("g4", ["g4"]), group("g5", ["g1"])],
    )
    assert directory.group_cycles() == [("g1", "g2", "g3"), ("g4",)]
    assert directory.nested_group_keys() == ["g1", "g2", "g3", "g4", "g5"]
    assert directory.biggest_group() is directory.groups[0]


def test_disable_and_enable_keep_the_other_flags() -> None:
    p = person("p")
    p.user_account_control = 66048
    p.disable()
    assert p.user_account_control == 66050 and p.disabled
    p.enable()
    assert p.user_account_control == 66048 and not p.disabled
    p.user_account_control = 544  # PASSWD_NOTREQD, not disabled
    assert not p.disabled


@pytest.mark.parametrize("references", ["remove", "dangle"])
def test_delete_person(references: str) -> None:
    directory = SampleDirectory(
        people=[person("boss"), person("r1", manager="boss"), person("r2", manager="boss")],
        groups=[group("g", ["boss", "r1"])],
    )
    boss_dn = object_dn(directory.person("boss"), "active_directory")
    directory.delete_person("boss", references=references)  # type: ignore[arg-type]
    assert [p.key for p in directory.people] == ["r1", "r2"]
    assert directory.group("g").member_keys == ["r1"]
    for key in ("r1", "r2"):
        report = directory.person(key)
        assert report.manager_key is None
        if references == "dangle":
            assert report.dangling_manager is not None
            assert object_dn(report.dangling_manager, "active_directory") == boss_dn
        else:
            assert report.dangling_manager is None
    assert bool(directory.group("g").dangling_members) == (references == "dangle")
    directory.validate()


def test_delete_group_drops_nested_memberships() -> None:
    directory = SampleDirectory(groups=[group("g1", ["g2"]), group("g2", ["g1"])])
    directory.delete_group("g2")
    assert directory.group("g1").member_keys == []
    assert directory.group_cycles() == []
    with pytest.raises(KeyError, match="g2"):
        directory.group("g2")


def test_copy_is_independent() -> None:
    directory = SampleDirectory(people=[person("a")], groups=[group("g", ["a"])])
    clone = directory.copy()
    clone.person("a").cn = "Changed"
    clone.group("g").member_keys.clear()
    assert directory.person("a").cn == "Person a"
    assert directory.group("g").member_keys == ["a"]


def test_validate_lists_every_problem() -> None:
    both = person("b", manager="a")
    both.dangling_manager = DanglingRef(("Sales", "Users"), "Nobody")
    directory = SampleDirectory(
        people=[person("a", "Same"), person("a2", "SAME"), both, person("c", manager="zz")],
        groups=[group("g", ["a", "nobody"]), group("g", [])],
    )
    directory.people[0].guid = b"short"
    with pytest.raises(SampleDirectoryError) as raised:
        render_dns(directory, "active_directory")
    problems = "\n".join(raised.value.problems)
    assert "also the DN of a" in problems          # DNs compare case-insensitively
    assert "duplicate key 'g'" in problems
    assert "both manager_key and dangling_manager" in problems
    assert "'zz' is no person" in problems
    assert "unknown member keys ['nobody']" in problems
    assert "guid has 5 bytes" in problems
