"""The fast LDIF parser against python-ldap's, on generated files and on every cut point of sample records.

The rule: for any bytes, the fast path either hands the file to python-ldap (returns None) or reads
exactly what python-ldap reads — never another value, never something python-ldap refuses. And a file
cut short never yields a silently wrong entry: every entry read from a cut file is either identical to
the entry of the complete file or carries what makes the connector space hold it in quarantine (the
reader's ``problem``, no objectClass, no anchor); otherwise the read fails with a message naming the line.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import ldif
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from profile_sync.config.presets import resolve_directory
from profile_sync.config.settings import DirectoryConnection
from profile_sync.directory.entries import Entry
from profile_sync.directory.errors import DirectoryError
from profile_sync.directory.ldif_reader import UNTERMINATED, LdifDirectoryReader, _fast_parse
from profile_sync.sample import generate, write_ldif
from profile_sync.sync.connector_space import build_connector_space


def python_ldap(data: bytes) -> list[tuple[str, dict[str, list[bytes]]]] | Exception:
    """What python-ldap's own parser reads (attribute names lower-cased and merged, as the reader does).

    Its DN check (``ldif.is_dn``) is off: the reader hands invalid DNs on for quarantine by design
    (tests/unit/directory/test_ldif_invalid_dn.py); everything else is python-ldap's.
    """
    parser = ldif.LDIFRecordList(io.BytesIO(data), process_url_schemes=["file"])
    is_dn, ldif.is_dn = ldif.is_dn, lambda _: True
    try:
        parser.parse_entry_records()
    except Exception as exc:  # noqa: BLE001  (any refusal counts: the fast path must refuse too)
        return exc
    finally:
        ldif.is_dn = is_dn
    out = []
    for dn, entry in parser.all_records:
        attrs: dict[str, list[bytes]] = {}
        for name, values in entry.items():
            attrs.setdefault(name.lower(), []).extend(v for v in values if v is not None)
        out.append((dn, attrs))
    return out


def fast(data: bytes) -> list[tuple[str, dict[str, list[bytes]]]] | None:
    entries = _fast_parse(data, None)
    return None if entries is None else [(e.dn, e.attributes) for e in entries]


def assert_agree(data: bytes) -> None:
    """The fast path defers to python-ldap or reads exactly what python-ldap reads."""
    got = fast(data)
    if got is None:
        return
    reference = python_ldap(data)
    assert not isinstance(reference, Exception), f"fast path accepted what python-ldap refuses: {reference!r}"
    assert got == reference


# ---------------------------------------------------------------------------- generated files

NAMES = st.sampled_from(["cn", "CN", "sn", "mail", "title", "objectClass", "objectGUID", "member", "cné",
                         "control", "changetype", "-", "version", "dn"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=12)
B64 = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())


@st.composite
def lines(draw) -> str:
    """One line of LDIF, well-formed or not."""
    name = draw(NAMES)
    kind = draw(st.sampled_from(["text", "text", "nospace", "b64", "badb64", "empty", "url", "nocolon",
                                 "comment", "lead"]))
    if kind == "text":
        return f"{name}: {draw(TEXT)}"
    if kind == "nospace":
        return f"{name}:{draw(TEXT)}"
    if kind == "b64":
        return f"{name}:: {draw(B64)}"
    if kind == "badb64":
        return f"{name}:: {draw(B64)[:-1]}{draw(st.sampled_from(['', '=', '!', 'é']))}"
    if kind == "empty":
        return f"{name}:"
    if kind == "url":
        return f"{name}:< file:///nonexistent/{draw(st.integers(0, 9))}"
    if kind == "nocolon":
        return name  # a line cut before its colon
    if kind == "comment":
        return f"# {draw(TEXT)}"
    lead = draw(st.sampled_from(["\t", " ", "\x1f", "\xa0", "\u2003"]))  # python-ldap strips these
    return f"{name}: {lead}{draw(TEXT)}"


@st.composite
def ldif_bytes(draw) -> bytes:
    records = []
    for i in range(draw(st.integers(0, 4))):
        dn = draw(st.sampled_from([f"dn: cn=r{i},dc=contoso,dc=com", f"DN: cn=r{i},dc=x", f"dn:cn=r{i},dc=x",
                                   f"dn:: {base64.b64encode(f'cn=r{i},dc=x'.encode()).decode()}",
                                   f"dn: \tcn=r{i},dc=x", "dn: not a dn", f"cn: r{i}"]))
        body = draw(st.lists(lines(), max_size=5))
        records.append("\n".join([dn, *body]))
    head = draw(st.sampled_from(["", "version: 1\n\n", "version: 2\n\n", "Version: 1\n\n", "version: 1\n",
                                 "# header\n\n"]))
    text = head + draw(st.sampled_from(["\n\n", "\n\n\n"])).join(records) + draw(st.sampled_from(["", "\n", "\n\n"]))
    width = draw(st.integers(3, 80))
    if draw(st.booleans()):  # fold long lines (continuation lines start with one space)
        folded = []
        for line in text.split("\n"):
            while len(line) > width:
                folded.append(line[:width])
                line = " " + line[width:]
            folded.append(line)
        text = "\n".join(folded)
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.booleans()):  # cut anywhere, even inside a UTF-8 character
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=600, deadline=None)
@given(ldif_bytes())
@example(b"dn: cn=a,dc=x\ncn: a\ntitle: Boss\n\ndn: cn=b,dc=x\ncn: b\ntitle\n")  # the issue: cut after "title"
@example(b"dn: cn=a,dc=x\ncn: \ta\n")  # python-ldap strips any leading whitespace
@example(b"dn: cn=a,dc=x\ncn: \xe2\x80\x83a\n")  # ... Unicode spaces too
@example(b"dn: cn=a,dc=x\ncn:: QUJD\xc3\xa9\n")  # non-ASCII base64 text: python-ldap refuses it
@example(b"dn: cn=a,dc=x\ncn: \xff\n")  # not UTF-8
@example(b"Version: 1\n\ndn: cn=a,dc=x\ncn: a\n")  # python-ldap's keys are case-sensitive
@example(b"dn: cn=a,dc=x\ncontrol: 1.2.3 true\ncn: a\n")  # python-ldap reads controls, not attributes
def test_fast_path_agrees_with_python_ldap_on_generated_files(data):
    assert_agree(data)


# ---------------------------------------------------------------------------- every cut point

def _sample(tmp: Path, flavour: str) -> bytes:
    path = tmp / f"{flavour}.ldif"
    write_ldif(generate(people=2, groups=1, seed=7), path, flavour=flavour)
    return path.read_bytes()


def _trusted(entry: Entry, anchor: str) -> bool:
    """Would the connector space synchronize this entry as read (not hold it)?"""
    return (entry.problem is None and bool(entry.attributes.get("objectclass"))
            and (anchor == "dn" or bool(entry.attributes.get(anchor))))


# The inetOrgPerson sample has no entryUUID (slapd adds it when the file is loaded): anchored by DN here.
@pytest.mark.parametrize(("flavour", "anchor"), [("active_directory", "objectguid"), ("inetorgperson", "dn")])
def test_every_cut_point_reads_the_same_or_is_held_or_fails_naming_the_line(tmp_path, flavour, anchor):
    data = _sample(tmp_path, flavour)
    complete = {e.dn: e.attributes for e in LdifDirectoryReader("c", tmp_path / f"{flavour}.ldif").read_full()}
    path = tmp_path / "cut.ldif"
    outcomes = {"read": 0, "held": 0, "error": 0}
    for cut in range(len(data) + 1):
        part = data[:cut]
        assert_agree(part)
        path.write_bytes(part)
        try:
            entries = list(LdifDirectoryReader("c", path).read_full())
        except DirectoryError as exc:
            outcomes["error"] += 1
            # The error names the line the cut is on (or the start of that folded line).
            physical = part.split(b"\n")
            if physical[-1] == b"":
                physical.pop()  # the file ends with a line break
            last = len(physical)
            start = last
            while start > 1 and physical[start - 1][:1] == b" ":
                start -= 1
            assert exc.position is not None and start <= exc.position <= last, (cut, exc.position, str(exc))
            assert f"at line {exc.position}:" in str(exc) and "is not valid LDIF" in str(exc)
            continue
        for entry in entries:
            if _trusted(entry, anchor):
                assert entry.attributes == complete[entry.dn], f"cut at byte {cut}: {entry.dn} read with other values"
                outcomes["read"] += 1
            else:
                outcomes["held"] += 1
    assert all(outcomes.values()), outcomes  # every kind of outcome happened


def test_a_file_cut_after_an_attribute_name_is_an_error_naming_the_line(tmp_path):
    """The issue's case: cut right after "title" — python-ldap refuses it; it used to become title ''."""
    path = tmp_path / "cut.ldif"
    path.write_bytes(b"version: 1\n\ndn: CN=A,DC=x\ncn: A\ntitle: Boss\n\ndn: CN=B,DC=x\ncn: B\ntitle")
    with pytest.raises(DirectoryError) as err:
        list(LdifDirectoryReader("contoso", path).read_full())
    assert err.value.position == 9
    assert "at line 9:" in str(err.value) and "the line 'title' has no colon" in str(err.value)


def test_invalid_base64_names_its_own_line(tmp_path):
    """It used to name the line after it (python-ldap reads one line ahead)."""
    path = tmp_path / "b64.ldif"
    body = "".join(f"dn: CN=P{i},DC=x\ncn: P{i}\n\n" for i in range(69))  # lines 1-207
    path.write_text(body + "dn: CN=Bad,DC=x\nobjectGUID:: QUJ\ncn: Bad\n\n")  # the bad value on line 209
    with pytest.raises(DirectoryError, match=r"at line 209: .*invalid base64 value") as err:
        list(LdifDirectoryReader("contoso", path).read_full())
    assert err.value.position == 209


def test_a_folded_bad_line_is_named_by_its_first_line(tmp_path):
    path = tmp_path / "folded.ldif"
    path.write_text("dn: CN=A,DC=x\ncn: A\ndescriptionwithout\n  colon\n")
    with pytest.raises(DirectoryError, match=r"at line 3: .*'descriptionwithout colon' has no colon"):
        list(LdifDirectoryReader("contoso", path).read_full())


@pytest.mark.parametrize("tail", [b"", b"\n", b"\ncn: B", b"\ncn: B\n", b"\n# a comment\n"])
def test_the_last_record_is_held_unless_an_empty_line_ends_it(tmp_path, tail):
    path = tmp_path / "d.ldif"
    path.write_bytes(b"dn: CN=A,DC=x\ncn: A\n\ndn: CN=B,DC=x" + tail)
    for read in (LdifDirectoryReader("c", path).read_full, LdifDirectoryReader("c", path).read_full_reference):
        first, last = read()
        assert first.problem is None and last.problem == UNTERMINATED and last.dn == "CN=B,DC=x"
    path.write_bytes(b"dn: CN=A,DC=x\ncn: A\n\ndn: CN=B,DC=x\ncn: B\n\n")
    assert [e.problem for e in LdifDirectoryReader("c", path).read_full()] == [None, None]


def test_records_cut_short_are_held_by_the_connector_space_with_their_anchor(tmp_path):
    directory = resolve_directory(DirectoryConnection(name="c", path="x", containers=["DC=x"]))
    guid = base64.b64encode(bytes(range(16))).decode()
    path = tmp_path / "d.ldif"
    path.write_text(
        "dn: CN=NoClass,DC=x\ncn: NoClass\nobjectGUID:: " + guid + "\n\n"  # cut before its objectClass
        "dn: CN=Whole,DC=x\nobjectClass: user\nobjectGUID:: " + base64.b64encode(bytes(16)).decode() + "\n\n"
        "dn: CN=Last,DC=x\nobjectClass: user\nobjectGUID:: " + base64.b64encode(b"\x01" * 16).decode() + "\ncn: La")
    space = build_connector_space(LdifDirectoryReader("c", path).read_full(frozenset(directory.attributes)),
                                  directory)
    assert list(space.objects["dn"]) == ["CN=Whole,DC=x"]
    held = space.held.set_index("dn")
    assert held.loc["CN=NoClass,DC=x", "reason"].startswith("no objectClass")
    assert held.loc["CN=NoClass,DC=x", "anchor"] == "03020100-0504-0706-0809-0a0b0c0d0e0f"
    assert held.loc["CN=Last,DC=x", "reason"] == UNTERMINATED
    assert held.loc["CN=Last,DC=x", "anchor"] == "01010101-0101-0101-0101-010101010101"


def test_not_utf8_text_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "latin1.ldif"
    path.write_bytes("dn: CN=A,DC=x\ncn: A\n\ndn: CN=B,DC=x\nsn: Müller\n\n".encode("latin-1"))
    with pytest.raises(DirectoryError, match=r"at line 5: .*not UTF-8 text.*base64"):
        list(LdifDirectoryReader("contoso", path).read_full())
