"""A record with an invalid DN does not abort the LDIF file: it is handed on for quarantine."""

from __future__ import annotations

import base64

from profile_sync.directory.dn import normalize_dns
from profile_sync.directory.ldif_reader import LdifDirectoryReader


def _read(tmp_path, records: list[str]):
    path = tmp_path / "d.ldif"
    path.write_text("version: 1\n\n" + "\n".join(records))
    return list(LdifDirectoryReader("contoso", path).read_full())


def test_invalid_dns_are_passed_on_and_the_rest_is_read(tmp_path):
    undecodable = base64.b64encode(b"CN=\xffbad,DC=contoso,DC=com").decode()
    entries = _read(tmp_path, [
        "dn: CN=First,DC=contoso,DC=com\ncn: First\n",
        "dn: this is not a dn\ncn: nope\n",
        f"dn:: {undecodable}\ncn: bytes\n",
        "dn: CN=Last,DC=contoso,DC=com\ncn: Last\n",
    ])
    assert [e.attributes["cn"] for e in entries] == [[b"First"], [b"nope"], [b"bytes"], [b"Last"]]
    assert entries[1].dn == "this is not a dn"
    assert entries[2].dn == "CN=\\xffbad,DC=contoso,DC=com"
    # Both are refused by the RFC 4514 parser, so the connector space quarantines them.
    assert normalize_dns([e.dn for e in entries]) == [
        "cn=first,dc=contoso,dc=com", None, None, "cn=last,dc=contoso,dc=com"]


def test_an_invalid_dn_does_not_leak_into_the_next_record(tmp_path):
    entries = _read(tmp_path, ["dn: bad\ncn: a\n", "dn: CN=Good,DC=x\ncn: b\n", "dn: \ncn: root\n"])
    assert [e.dn for e in entries] == ["bad", "CN=Good,DC=x", ""]
