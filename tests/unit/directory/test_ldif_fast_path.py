"""The fast LDIF path reads exactly what python-ldap (the reference parser) reads."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from profile_sync.directory.ldif_reader import LdifDirectoryReader, _fast_parse
from profile_sync.sample import generate, write_ldif

NAMES = st.sampled_from(["cn", "sn", "mail", "description", "objectGUID", "thumbnailPhoto", "member"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=40)


def _fold(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    out = [line[:width]]
    rest = line[width:]
    while rest:
        out.append(" " + rest[: width - 1])
        rest = rest[width - 1:]
    return "\n".join(out)


@st.composite
def ldif_files(draw):
    records = []
    for i in range(draw(st.integers(1, 6))):
        lines = [f"dn: cn=r{i},dc=contoso,dc=com"]
        for _ in range(draw(st.integers(1, 6))):
            name = draw(NAMES)
            if draw(st.booleans()):
                raw = draw(st.binary(max_size=40))
                lines.append(f"{name}:: {base64.b64encode(raw).decode()}")
            else:
                value = draw(TEXT).strip()
                if value and value[0] in ":<" or not value.isprintable() or not value.isascii():
                    lines.append(f"{name}:: {base64.b64encode(value.encode()).decode()}")
                else:
                    lines.append(f"{name}: {value}")
        if draw(st.booleans()):
            lines.insert(1, "# a comment")
        width = draw(st.integers(10, 80))
        records.append("\n".join(_fold(line, width) if not line.startswith("#") else line for line in lines))
    head = "version: 1\n\n" if draw(st.booleans()) else ""
    sep = draw(st.sampled_from(["\n\n", "\n\n\n"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return (head + sep.join(records) + "\n").replace("\n", newline).encode()


@settings(max_examples=150, deadline=None)
@given(ldif_files())
def test_fast_path_equals_python_ldap(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ldif") / "f.ldif"
    path.write_bytes(data)
    reader = LdifDirectoryReader("c", path)
    fast = _fast_parse(data, None)
    assert fast is not None
    reference = list(reader.read_full_reference())
    assert [(e.dn, e.attributes) for e in fast] == [(e.dn, e.attributes) for e in reference]


def test_fast_path_equals_python_ldap_on_the_sample(tmp_path):
    for flavour in ("active_directory", "inetorgperson"):
        path = tmp_path / f"{flavour}.ldif"
        write_ldif(generate(people=300, groups=20, seed=7), path, flavour=flavour)
        reader = LdifDirectoryReader("c", path)
        fast = list(reader.read_full())
        reference = list(reader.read_full_reference())
        assert len(fast) == len(reference) > 300
        assert [(e.dn, e.attributes) for e in fast] == [(e.dn, e.attributes) for e in reference]


def test_url_values_go_to_python_ldap(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 jpeg \xff\xd9")
    path = tmp_path / "url.ldif"
    path.write_text(f"dn: cn=a,dc=contoso,dc=com\ncn: a\njpegPhoto:< file://{photo}\n")
    assert _fast_parse(path.read_bytes(), None) is None
    (entry,) = LdifDirectoryReader("c", path).read_full()
    assert entry.attributes["jpegphoto"] == [b"\xff\xd8 jpeg \xff\xd9"]


def test_attribute_selection(tmp_path):
    path = tmp_path / "a.ldif"
    path.write_text("dn: cn=a,dc=contoso,dc=com\ncn: a\nsn: b\nmail: c@d\n")
    (entry,) = LdifDirectoryReader("c", path).read_full(frozenset({"sn"}))
    assert entry.attributes == {"sn": [b"b"]}


def test_records_without_attributes_go_to_python_ldap(tmp_path):
    data = b"dn: cn=a,dc=contoso,dc=com\n"
    assert _fast_parse(data, None) is None
