"""Building a connector space from entries: decoding per column, held objects, the row hash."""

from __future__ import annotations

import gc
import hashlib
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profile_sync.config.presets import resolve_directory
from profile_sync.config.settings import DirectoryConnection
from profile_sync.directory.entries import Entry
from profile_sync.sync.connector_space import build_connector_space

AD = resolve_directory(DirectoryConnection(name="corp", type="ldif", path="x.ldif", preset="active_directory",
                                           containers=("DC=contoso,DC=com",)))
INET = resolve_directory(DirectoryConnection(name="openldap", type="ldif", path="x.ldif", preset="inetorgperson",
                                             containers=("dc=example,dc=org",)))


def guid(n: int) -> bytes:
    return uuid.UUID(int=n).bytes_le


def person(n: int, **values: list[bytes]) -> Entry:
    attributes = {"objectclass": [b"top", b"person", b"user"], "objectguid": [guid(n)],
                  "userprincipalname": [f"p{n}@contoso.com".encode()], "useraccountcontrol": [b"512"], **values}
    return Entry(f"CN=Person {n},OU=Users,DC=contoso,DC=com", attributes, n)


def listed(value):  # noqa: ANN001, ANN201
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def expected_hash(entry: Entry, attributes: tuple[str, ...]) -> int:
    """The row hash as specified (and as earlier versions computed it, so an upgrade changes no hash):
    blake2b-64 over the DN, then per attribute its values joined by 0x1f, each attribute closed by 0x1e."""
    digest = hashlib.blake2b(entry.dn.encode(), digest_size=8)
    for a in attributes:
        digest.update(b"\x1f".join(entry.attributes.get(a, ())) + b"\x1e")
    return int.from_bytes(digest.digest(), "little")


def test_values_are_decoded_per_kind_and_the_row_hash_is_the_specified_one():
    photo = bytes(range(256))
    entries = [person(1, displayname=["Zoë Ünal".encode()], proxyaddresses=[b"SMTP:z@contoso.com", b"sip:z@x"],
                      thumbnailphoto=[photo]),
               person(2),
               Entry("CN=Team,OU=Groups,DC=contoso,DC=com",
                     {"objectclass": [b"group"], "objectguid": [guid(3)],
                      "member": ["CN=Person 1,OU=Users,DC=contoso,DC=com".encode(), b"CN=Gone,DC=contoso,DC=com"]}, 3)]
    space = build_connector_space(entries, AD)
    cs = space.objects.set_index("position")
    assert space.held.empty and space.ignored == 0
    assert cs.loc[1, "a.displayname"] == "Zoë Ünal" and cs.loc[2, "a.displayname"] is None
    assert listed(cs.loc[1, "a.proxyaddresses"]) == ["SMTP:z@contoso.com", "sip:z@x"]
    assert cs.loc[2, "a.proxyaddresses"] is None
    assert cs.loc[1, "a.thumbnailphoto"] == photo and isinstance(cs.loc[1, "a.thumbnailphoto"], bytes)
    assert listed(cs.loc[3, "a.member"]) == ["CN=Person 1,OU=Users,DC=contoso,DC=com", "CN=Gone,DC=contoso,DC=com"]
    assert list(cs["object_type"]) == ["person", "person", "group"]
    assert cs.loc[1, "anchor"] == str(uuid.UUID(int=1))
    assert cs.loc[3, "dn_norm"] == "cn=team,ou=groups,dc=contoso,dc=com"
    assert str(cs["row_hash"].dtype) == "uint64"
    assert [int(h) for h in cs["row_hash"]] == [expected_hash(e, AD.attributes) for e in entries]


def test_bad_objects_are_held_with_a_reason_and_the_rest_is_imported():
    entries = [
        person(1),
        person(2, displayname=[b"caf\xe9"]),  # Latin-1, not UTF-8
        person(3, proxyaddresses=[b"SMTP:ok@contoso.com", b"smtp:\xff@contoso.com"]),
        Entry("CN=No Anchor,DC=contoso,DC=com", {"objectclass": [b"user"]}, 4),
        person(5, objectguid=[b"short"]),
        Entry("not a DN", {"objectclass": [b"user"], "objectguid": [guid(6)]}, 6),
        Entry("CN=Twin A,DC=contoso,DC=com", {"objectclass": [b"user"], "objectguid": [guid(7)]}, 7),
        Entry("CN=Twin B,DC=contoso,DC=com", {"objectclass": [b"user"], "objectguid": [guid(7)]}, 8),
        Entry("OU=Users,DC=contoso,DC=com", {"objectclass": [b"organizationalUnit"]}, 9),
        person(10),
    ]
    space = build_connector_space(entries, AD)
    assert list(space.objects["position"]) == [1, 10]
    assert space.ignored == 1
    reasons = dict(zip(space.held["position"], space.held["reason"]))
    assert reasons[2].startswith("undecodable value (not UTF-8) in 'displayname'")
    assert reasons[3].startswith("undecodable value (not UTF-8) in 'proxyaddresses'")
    assert reasons[4] == "missing anchor attribute 'objectguid'"
    assert reasons[5].startswith("invalid anchor: objectGUID must be 16 bytes")
    assert reasons[6] == "invalid DN"
    assert reasons[7] == reasons[8] == f"duplicate anchor '{uuid.UUID(int=7)}'"
    held = space.held.set_index("position")
    assert held.loc[2, "anchor"] == str(uuid.UUID(int=2)) and pd.isna(held.loc[4, "anchor"])


def test_the_dn_anchor_and_disabled_accounts():
    entries = [Entry("uid=A,ou=people,dc=example,dc=org", {"objectclass": [b"inetOrgPerson"], "uid": [b"a"]}, 1)]
    dn_anchored = resolve_directory(DirectoryConnection(name="x", type="ldif", path="x.ldif", preset="inetorgperson",
                                                        anchor="dn", containers=("dc=example,dc=org",)))
    space = build_connector_space(entries, dn_anchored).objects
    assert list(space["anchor"]) == ["uid=a,ou=people,dc=example,dc=org"]
    assert listed(space.loc[0, "a.uid"]) == ["a"]
    ad = build_connector_space([person(1, useraccountcontrol=[b"514"]), person(2, useraccountcontrol=[b"512"]),
                                person(3, useraccountcontrol=[b"66050"])], AD).objects
    assert list(ad["disabled"]) == [True, False, True]


def test_no_entries_give_an_empty_space_with_every_column():
    space = build_connector_space([], INET)
    assert space.objects.empty and "a.entryuuid" in space.objects.columns
    assert str(space.objects["row_hash"].dtype) == "uint64"


def test_the_garbage_collector_is_paused_while_reading_and_resumes():
    seen = []

    def entries():
        seen.append(gc.isenabled())
        yield person(1)

    assert gc.isenabled()
    build_connector_space(entries(), AD)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(RuntimeError):
        build_connector_space((_ for _ in [person(1)] if _raise()), AD)
    assert gc.isenabled()


def _raise() -> bool:
    raise RuntimeError("the reader failed")


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(text, max_size=3), st.lists(st.binary(max_size=4), max_size=2),
                          st.booleans()), max_size=8))
def test_each_value_decodes_as_utf8_decoding_it_alone_would(rows):
    """Per-column decoding agrees with decoding each value by itself: same values, same held objects."""
    entries = []
    for i, (names, junk, binary_junk) in enumerate(rows, 1):
        values = [n.encode() for n in names] + (junk if binary_junk else [])
        entries.append(person(i, proxyaddresses=values) if values else person(i))
    space = build_connector_space(entries, AD)
    held = set(space.held["position"])
    for i, e in enumerate(entries, 1):
        raw = e.attributes.get("proxyaddresses", [])
        try:
            want = [v.decode("utf-8") for v in raw] or None
        except UnicodeDecodeError:
            assert i in held
            continue
        got = space.objects.loc[space.objects["position"] == i, "a.proxyaddresses"].iloc[0]
        assert i not in held and listed(got) == want


def test_decoding_a_chunk_at_a_time_gives_the_same_space(monkeypatch):
    from profile_sync.sync import connector_space

    entries = [person(i, displayname=[f"Person {i}".encode()], proxyaddresses=[f"SMTP:p{i}@contoso.com".encode()])
               for i in range(1, 12)]
    entries[7] = person(8, displayname=[b"\xff bad"])  # in the third chunk of 3
    whole = build_connector_space(entries, AD)
    monkeypatch.setattr(connector_space, "DECODE_CHUNK", 3)
    chunked = build_connector_space(entries, AD)
    assert list(chunked.held["position"]) == [8] == list(whole.held["position"])
    assert chunked.held["reason"].iloc[0].startswith("undecodable value (not UTF-8) in 'displayname'")
    a, b = (s.objects.map(listed) for s in (whole, chunked))
    assert a.equals(b) and len(a) == 10
