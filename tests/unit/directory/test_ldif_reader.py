"""The LDIF connection reads RFC 2849 content records and refuses change records."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from profile_sync.directory.errors import DirectoryError, LdifChangeRecordError
from profile_sync.directory.ldif_reader import LdifDirectoryReader

CASES = Path(__file__).parent / "cases"


@pytest.fixture(scope="module")
def entries():
    return {e.dn: e for e in LdifDirectoryReader("contoso", CASES / "rfc2849.ldif").read_full()}


def test_reads_every_content_record(entries):
    assert len(entries) == 3


def test_utf8_escaped_dn_and_base64_value(entries):
    e = entries["CN=M\\C3\\BCller\\, J\\C3\\BCrgen,OU=Users,DC=contoso,DC=com"]
    assert e.attributes["displayname"] == ["Müller, Jürgen".encode()]


def test_base64_dn_with_non_ascii_name(entries):
    assert "CN=李雷,OU=Users,DC=contoso,DC=com" in entries
    assert entries["CN=李雷,OU=Users,DC=contoso,DC=com"].attributes["sn"] == ["李".encode()]


def test_folded_line_is_unfolded(entries):
    e = entries["CN=M\\C3\\BCller\\, J\\C3\\BCrgen,OU=Users,DC=contoso,DC=com"]
    assert e.attributes["description"] == [b"a value folded over two lines"]


def test_binary_values_survive_byte_exact(entries):
    e = entries["CN=M\\C3\\BCller\\, J\\C3\\BCrgen,OU=Users,DC=contoso,DC=com"]
    assert e.attributes["objectguid"] == [bytes(range(16))]
    photo = e.attributes["thumbnailphoto"][0]
    assert photo.startswith(b"\xff\xd8") and photo.endswith(b"\xff\xd9")


def test_escaped_special_characters_in_dn(entries):
    assert "CN=\\#Hash \\+ Plus,OU=Users,DC=contoso,DC=com" in entries


def test_attribute_names_are_lower_case(entries):
    for e in entries.values():
        assert all(k == k.lower() for k in e.attributes)


def test_change_records_are_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "changes.ldif"
    path.write_text("version: 1\n\ndn: cn=x,dc=contoso,dc=com\nchangetype: modify\nreplace: mail\n"
                    "mail: x@contoso.com\n-\n")
    with pytest.raises(LdifChangeRecordError, match=r"change record \(changetype: modify\).*content records"):
        list(LdifDirectoryReader("contoso", path).read_full())


def test_invalid_ldif_names_the_line(tmp_path):
    path = tmp_path / "bad.ldif"
    path.write_text("version: 1\n\ndn: cn=ok,dc=contoso,dc=com\ncn: ok\n\nthis line has no colon\n")
    with pytest.raises(DirectoryError, match=r"line \d+.*not valid LDIF"):
        list(LdifDirectoryReader("contoso", path).read_full())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DirectoryError, match="does not exist"):
        list(LdifDirectoryReader("contoso", tmp_path / "nope.ldif").read_full())


def test_a_missing_file_fails_the_run_at_once_naming_the_path_and_the_key(tmp_path):
    """It used to be a bare ``[Errno 2]`` from the watermark (a transient error: Airflow retried it)."""
    from profile_sync.run.local import run_sync
    from tests.helpers.sync import SyncHarness

    h = SyncHarness(tmp_path)  # the configuration names h.ldif, which is never written
    with pytest.raises(DirectoryError) as err:
        run_sync(h.context())
    assert err.value.terminal
    assert f"the LDIF file {h.ldif} does not exist (configuration key directories[0].path)" in str(err.value)


def test_a_folder_instead_of_a_file_is_terminal_and_says_so(tmp_path):
    path = tmp_path / "d.ldif"
    path.mkdir()
    reader = LdifDirectoryReader("contoso", path, config_key="directories[0].path")
    with pytest.raises(DirectoryError, match=r"d.ldif \(configuration key directories\[0\].path\) is a folder"):
        reader.watermark()


def test_file_hash_changes_with_content(tmp_path):
    path = tmp_path / "a.ldif"
    path.write_text("version: 1\n")
    reader = LdifDirectoryReader("contoso", path)
    first = reader.file_hash()
    path.write_text("version: 1\n\n")
    assert reader.file_hash() != first


def test_fixture_is_what_it_claims():
    # Guard the fixture itself: the DN really is base64 of a UTF-8 name.
    text = (CASES / "rfc2849.ldif").read_text()
    b64 = text.split("dn:: ")[1].split("\n")[0]
    assert base64.b64decode(b64).decode() == "CN=李雷,OU=Users,DC=contoso,DC=com"
