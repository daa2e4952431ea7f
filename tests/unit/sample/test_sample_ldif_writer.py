"""The LDIF writer: RFC 2849 encoding, round trips through python-ldap, both flavours."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import ldap.dn
import ldif
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from profile_sync.sample import (
    FLAVOURS,
    Flavour,
    Group,
    Person,
    SampleDirectory,
    SampleDirectoryError,
    generate,
    ldif_records,
    object_dn,
    render_dns,
    render_ldif,
    write_ldif,
)
from profile_sync.sample.ldif_writer import BINARY_ATTRIBUTES
from tests.servers._util import ServerError, require_binary
from tests.servers.fixtures import _server_or_skip

Records = list[tuple[str, dict[str, list[bytes]]]]


@pytest.fixture(scope="module")
def directory() -> SampleDirectory:
    return generate()


@pytest.fixture(scope="module")
def rendered(directory: SampleDirectory) -> dict[str, bytes]:
    return {flavour: render_ldif(directory, flavour) for flavour in FLAVOURS}


def parse(data: bytes) -> tuple[int | None, Records]:
    parser = ldif.LDIFRecordList(io.BytesIO(data))
    parser.parse()
    return parser.version, parser.all_records


@pytest.fixture(scope="module")
def parsed(rendered: dict[str, bytes]) -> dict[str, Records]:
    out = {}
    for flavour, data in rendered.items():
        version, records = parse(data)
        assert version == 1
        out[flavour] = records
    return out


def by_dn(records: Records) -> dict[str, dict[str, list[bytes]]]:
    return {dn: entry for dn, entry in records}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bytes_equal_python_ldap_ldifwriter(
    directory: SampleDirectory, rendered: dict[str, bytes], flavour: Flavour
) -> None:
    expected = io.StringIO()
    writer = ldif.LDIFWriter(expected, base64_attrs=list(BINARY_ATTRIBUTES), cols=76)
    for dn, entry in ldif_records(directory, flavour):
        writer.unparse(dn, {name: [v.encode() if isinstance(v, str) else v for v in values]
                            for name, values in entry.items()})
    header, body = rendered[flavour].split(b"\n\n", 1)
    assert header.startswith(b"version: 1\n# Profile Sync sample directory")
    assert body == expected.getvalue().encode("ascii")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lines_are_ascii_folded_and_at_most_76_columns(
    rendered: dict[str, bytes], flavour: Flavour
) -> None:
    data = rendered[flavour]
    assert data.isascii()
    lines = data.decode("ascii").split("\n")
    assert max(len(line) for line in lines) == 76
    continuations = [line for line in lines if line.startswith(" ")]
    assert len(continuations) > 1000


def test_base64_where_rfc_2849_requires_it(rendered: dict[str, bytes]) -> None:
    text = rendered["active_directory"].decode("ascii")
    lines = set(text.split("\n"))

    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    assert "cn: #Ida Olsen" in lines  # '#' may start a value (SAFE-INIT-CHAR)
    assert any(line.startswith("dn: CN=\\#Ida Olsen,OU=") for line in lines)
    assert f"cn:: {b64('Tom Trailing ')}" in lines  # a trailing space
    assert f"cn:: {b64('José Núñez')}" in lines
    assert f"sn:: {b64('李')}" in lines
    assert "cn: Anna Smith+Jones" in lines
    assert any(line.startswith("dn: CN=Anna Smith\\+Jones,OU=") for line in lines)
    assert not any(line.startswith("objectGUID: ") for line in lines)
    assert not any(line.startswith("thumbnailPhoto: ") for line in lines)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_round_trip_people_byte_exact(
    directory: SampleDirectory, parsed: dict[str, Records], flavour: Flavour
) -> None:
    records = by_dn(parsed[flavour])
    dns = render_dns(directory, flavour)
    photo = "thumbnailPhoto" if flavour == "active_directory" else "jpegPhoto"
    for person in directory.people:
        entry = records[dns[person.key]]
        assert entry["cn"] == [person.cn.encode()]
        assert entry.get("displayName") == (
            [person.display_name.encode()] if person.display_name else None)
        assert entry.get("givenName") == (
            [person.given_name.encode()] if person.given_name else None)
        assert entry.get(photo) == ([person.photo] if person.photo else None)
        if flavour == "active_directory":
            assert entry["objectGUID"] == [person.guid]
            assert entry["userAccountControl"] == [str(person.user_account_control).encode()]
            assert entry.get("proxyAddresses", []) == [
                a.encode() for a in person.proxy_addresses]
        else:
            assert "objectGUID" not in entry and "userAccountControl" not in entry
            assert entry["uid"] == [person.sam_account_name.encode()]
        manager = entry.get("manager")
        if person.manager_key is not None:
            assert manager == [dns[person.manager_key].encode()]
        elif person.dangling_manager is not None:
            assert manager == [object_dn(person.dangling_manager, flavour).encode()]
            assert manager[0].decode() not in records
        else:
            assert manager is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_escaped_dns_parse_back_to_the_raw_names(
    directory: SampleDirectory, parsed: dict[str, Records], flavour: Flavour
) -> None:
    records = by_dn(parsed[flavour])
    for case, key in directory.expectations.special_cn_keys.items():
        person = directory.person(key)
        dn = object_dn(person, flavour)
        assert dn in records, case
        rdn = ldap.dn.str2dn(dn)[0]
        assert [(t.lower(), v) for t, v, _ in rdn] == [("cn", person.cn)], case
    research = directory.person(directory.expectations.special_container_keys[0])
    parts = ldap.dn.str2dn(object_dn(research, flavour))
    assert parts[1][0][1] == "R&D, Zürich"
    # every DN in the file is a valid DN string
    for dn, _ in parsed[flavour]:
        ldap.dn.str2dn(dn)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_groups_round_trip(
    directory: SampleDirectory, parsed: dict[str, Records], flavour: Flavour
) -> None:
    records = by_dn(parsed[flavour])
    dns = render_dns(directory, flavour)
    e = directory.expectations
    for group in directory.groups:
        entry = records[dns[group.key]]
        members = [m.decode() for m in entry.get("member", [])]
        expected = [dns[k] for k in group.member_keys]
        expected += [object_dn(ref, flavour) for ref in group.dangling_members]
        if flavour == "inetorgperson" and not expected:
            expected = [""]  # groupOfNames must have a member
        assert members == expected
    assert len(records[dns[e.big_group_key or ""]]["member"]) > 1500
    dangling = directory.group(e.dangling_member_group_key or "").dangling_members[0]
    assert object_dn(dangling, flavour) not in records
    empty = records[dns[e.empty_group_key or ""]]
    if flavour == "active_directory":
        assert "member" not in empty and empty["groupType"] == [b"2"]
    else:
        assert empty["member"] == [b""]
        assert empty["objectClass"] == [b"top", b"groupOfNames"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_manager_references_point_forward_in_file_order(
    directory: SampleDirectory, parsed: dict[str, Records], flavour: Flavour
) -> None:
    position = {dn.lower(): i for i, (dn, _) in enumerate(parsed[flavour])}
    forward = 0
    for i, (_, entry) in enumerate(parsed[flavour]):
        for manager in entry.get("manager", []):
            target = position.get(manager.decode().lower())
            if target is not None and target > i:
                forward += 1
    assert forward == len(directory.expectations.forward_manager_keys) > 500


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_containers_come_first_and_parents_before_children(
    directory: SampleDirectory, parsed: dict[str, Records], flavour: Flavour
) -> None:
    records = parsed[flavour]
    suffix = "DC=contoso,DC=com" if flavour == "active_directory" else "dc=example,dc=org"
    seen = {suffix.lower()}
    for dn, entry in records:
        parent = ldap.dn.dn2str(ldap.dn.str2dn(dn)[1:]).lower()
        if dn.lower() == suffix.lower():
            assert entry["objectClass"] == [b"top", b"dcObject", b"organization"]
            continue
        assert parent in seen, dn
        seen.add(dn.lower())
    containers = [dn for dn, e in records if b"organizationalUnit" in e["objectClass"]]
    first_person = next(i for i, (_, e) in enumerate(records) if b"person" in e["objectClass"])
    assert first_person == len(containers) + (flavour == "inetorgperson")
    if flavour == "inetorgperson":
        assert records[0][0] == "dc=example,dc=org"
        assert "ou=people,dc=example,dc=org" in {dn for dn, _ in records}


def test_inetorgperson_attribute_set(
    directory: SampleDirectory, parsed: dict[str, Records]
) -> None:
    allowed = {
        "objectClass", "uid", "cn", "sn", "givenName", "displayName", "mail",
        "telephoneNumber", "title", "departmentNumber", "roomNumber", "preferredLanguage",
        "labeledURI", "manager", "jpegPhoto", "employeeNumber",
    }
    people = [e for _, e in parsed["inetorgperson"] if b"inetOrgPerson" in e["objectClass"]]
    assert len(people) == len(directory.people)
    used = set().union(*(e.keys() for e in people))
    assert used == allowed
    assert all(e["sn"] for e in people)  # required by person, even for service accounts


def test_active_directory_attribute_set(parsed: dict[str, Records]) -> None:
    people = [e for _, e in parsed["active_directory"] if b"user" in e["objectClass"]]
    used = set().union(*(e.keys() for e in people))
    assert used == {
        "objectClass", "cn", "sAMAccountName", "userPrincipalName", "displayName", "givenName",
        "sn", "telephoneNumber", "mail", "proxyAddresses", "physicalDeliveryOfficeName",
        "title", "department", "wWWHomePage", "preferredLanguage",
        "msExchHideFromAddressList", "employeeID", "manager", "userAccountControl",
        "thumbnailPhoto", "objectGUID",
    }
    flags = {v for e in people for v in e.get("msExchHideFromAddressList", [])}
    assert flags == {b"TRUE", b"FALSE"}


def test_path_text_and_binary_streams_get_the_same_bytes(tmp_path: Path) -> None:
    small = generate(60, 8, seed=3)
    path = tmp_path / "out.ldif"
    summary = write_ldif(small, path)
    assert summary.path == str(path) and summary.people == 60 and summary.groups == 8
    text = io.StringIO()
    binary = io.BytesIO()
    write_ldif(small, text)
    write_ldif(small, binary)
    assert not binary.closed
    assert path.read_bytes() == text.getvalue().encode() == binary.getvalue()
    assert summary.records == len(parse(path.read_bytes())[1])


def test_without_version_line() -> None:
    data = render_ldif(generate(30, 4, seed=1), "inetorgperson", version_line=False)
    assert not data.startswith(b"version")
    assert data.startswith(b"# Profile Sync sample directory")
    version, records = parse(data)
    assert version is None and len(records) > 30


def test_unknown_flavour_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="active_directory, inetorgperson"):
        render_ldif(generate(5, 1), "openldap")  # type: ignore[arg-type]


def test_inconsistent_directory_writes_nothing(tmp_path: Path) -> None:
    small = generate(40, 4, seed=2)
    small.people[1].cn = small.people[0].cn
    small.people[1].container = small.people[0].container
    small.people[2].manager_key = "p999999"
    path = tmp_path / "bad.ldif"
    with pytest.raises(SampleDirectoryError) as raised:
        write_ldif(small, path)
    assert len(raised.value.problems) == 2
    assert "p999999" in str(raised.value)
    assert not path.exists()


def test_rename_move_and_delete_are_reflected_in_references() -> None:
    small = generate(200, 20, seed=9)
    manager = next(p for p in small.people
                   if sum(q.manager_key == p.key for q in small.people) >= 2)
    reports = [p for p in small.people if p.manager_key == manager.key]
    manager.cn = "Renamed, Person"
    manager.container = ("Legal", "Users")
    records = by_dn(parse(render_ldif(small))[1])
    new_dn = "CN=Renamed\\, Person,OU=Users,OU=Legal,DC=contoso,DC=com"
    assert new_dn in records
    for report in reports:
        assert records[object_dn(report, "active_directory")]["manager"] == [new_dn.encode()]

    gone = small.delete_person(manager.key, references="dangle")
    records = by_dn(parse(render_ldif(small))[1])
    assert new_dn not in records
    assert all(records[object_dn(r, "active_directory")]["manager"] == [new_dn.encode()]
               for r in reports)
    assert gone.key not in {k for g in small.groups for k in g.member_keys}


def test_inetorgperson_file_loads_with_slapadd(tmp_path: Path) -> None:
    schema = Path("/etc/ldap/schema")
    modules = Path("/usr/lib/ldap")
    with _server_or_skip("slapadd (OpenLDAP)"):
        slapadd, slapcat = require_binary("slapadd", "slapd"), require_binary("slapcat", "slapd")
        if not (schema / "inetorgperson.schema").exists() or not any(modules.glob("back_mdb*")):
            raise ServerError(f"the OpenLDAP schema ({schema}) or back_mdb ({modules}) is missing: reinstall slapd")
    database = tmp_path / "db"
    database.mkdir()
    config = tmp_path / "slapd.conf"
    config.write_text(
        "".join(f"include {schema}/{name}.schema\n" for name in ("core", "cosine", "inetorgperson"))
        + f"modulepath {modules}\nmoduleload back_mdb\ndatabase mdb\n"
        + 'suffix "dc=example,dc=org"\n'
        + f"directory {database}\nmaxsize 104857600\n"
    )
    sample = generate(150, 15, seed=4)
    ldif_path = tmp_path / "sample.ldif"
    summary = write_ldif(sample, ldif_path, "inetorgperson", version_line=False)
    added = subprocess.run([slapadd, "-f", str(config), "-l", str(ldif_path)],
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    dumped = subprocess.run([slapcat, "-f", str(config)], capture_output=True, timeout=60)
    assert dumped.returncode == 0
    entries = [line for line in dumped.stdout.splitlines() if line.startswith(b"dn:")]
    assert len(entries) == summary.records


TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
AWKWARD = st.sampled_from([" leading", ":colon", "<angle", "trailing ", "new\nline", "nul\x00",
                           "tab\tinside", "\tleading tab", "\x1fus", "", "#hash", "x" * 200,
                           "ü" * 90, "dn: fake"])


@settings(max_examples=60, deadline=None)
@example(cn="<angle", title=" leading", description=":colon", photo=b"")
@example(cn="trailing ", title="new\nline", description="nul\x00", photo=b"plain ascii")
@example(cn="\tleading tab", title="\x1fus", description="", photo=b"\xff\xd8\xff\xd9")
@example(cn="ü" * 90, title="x" * 200, description="dn: fake", photo=b" ")
@given(cn=st.one_of(AWKWARD, TEXT).filter(bool), title=st.one_of(AWKWARD, TEXT),
       description=st.one_of(AWKWARD, TEXT), photo=st.binary(max_size=200))
def test_any_values_encode_like_ldifwriter_and_round_trip(
    cn: str, title: str, description: str, photo: bytes
) -> None:
    person = Person(key="p1", container=("Sales", "Users"), cn=cn, guid=b"\x00" * 16,
                    sam_account_name="someone", title=title, photo=photo or None)
    boss = Person(key="p0", container=("Sales", "Users"), cn=cn + "0", guid=b"\x01" * 16,
                  sam_account_name="boss")
    person.manager_key = "p0"
    group = Group(key="g1", container=("Groups",), cn=cn, guid=b" :<" * 5 + b" ",
                  sam_account_name="group", description=description, member_keys=["p1", "p0"])
    directory = SampleDirectory(people=[person, boss], groups=[group])
    # LDIFWriter writes control characters other than NUL/CR/LF plain; we base64 them
    controls = any(ord(c) < 0x20 or ord(c) == 0x7F for c in cn + title + description)
    for flavour in FLAVOURS:
        data = render_ldif(directory, flavour)
        if not controls:
            expected = io.StringIO()
            writer = ldif.LDIFWriter(expected, base64_attrs=list(BINARY_ATTRIBUTES), cols=76)
            for dn, record in ldif_records(directory, flavour):
                writer.unparse(dn, {k: [v.encode() if isinstance(v, str) else v for v in vals]
                                    for k, vals in record.items()})
            assert data.split(b"\n\n", 1)[1] == expected.getvalue().encode()
        assert all(len(line) <= 76 for line in data.split(b"\n"))
        records = by_dn(parse(data)[1])
        entry = records[object_dn(person, flavour)]
        assert entry["cn"] == [cn.encode()]
        assert entry.get("title") == ([title.encode()] if title is not None else None)
        assert entry["manager"] == [object_dn(boss, flavour).encode()]
        assert entry.get("thumbnailPhoto" if flavour == "active_directory" else "jpegPhoto") == (
            [photo] if photo else None)
        group_entry = records[object_dn(group, flavour)]
        assert group_entry["description"] == [description.encode()]
        assert group_entry["member"] == [object_dn(person, flavour).encode(),
                                         object_dn(boss, flavour).encode()]
        if flavour == "active_directory":
            assert group_entry["objectGUID"] == [group.guid]
