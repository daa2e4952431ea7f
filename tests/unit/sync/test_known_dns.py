"""KnownDns normalises references by looking them up among a connector space's DNs: whatever the values,
the result is exactly what ``normalize_dns`` / ``normalize_member_dns`` return (the lookup is a shortcut,
never another answer)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from profile_sync.directory.dn import normalize_dns, normalize_member_dns
from profile_sync.sync.connector_space import KnownDns

BASE = "dc=example,dc=org"
DNS = [
    f"uid=p1,ou=people,{BASE}",
    f"UID=P2, OU=People, DC=Example, DC=Org",              # another spelling of an object's DN
    f"cn=Smith\\, John,ou=people,{BASE}",                  # an escaped comma
    f"cn=a#b,ou=people,{BASE}",                            # a '#' inside a value, not a UID
    f"cn=x,dc=y#'0101'B",                                  # an object whose DN ends like a UID
    f"cn=Zoë Ämter,ou=people,{BASE}",                      # not ASCII
    f"cn=g1,ou=groups,{BASE}",
    f"2.5.4.3=oid,ou=people,{BASE}",                       # an attribute type by OID
]


def _space(dns: list[str]) -> pd.DataFrame:
    """A connector space's DN columns as the build makes them (``dn_norm`` = ``normalize_dns(dn)``)."""
    return pd.DataFrame({"dn": pd.Series(dns, dtype=object),
                         "dn_norm": pd.Series(normalize_dns(dns), dtype=object)})


VALUES = [
    *DNS,                                                  # spelled as the objects are
    f"uid=p1, ou=People,{BASE}",                           # the same object, spelled otherwise
    f"uid=P2,ou=people,{BASE}",
    f"uid=nobody,ou=people,{BASE}",                        # no such object
    "not a dn",                                            # invalid
    "",
    None,
    np.nan,
    f"uid=p1,ou=people,{BASE}#'0101'B",                    # uniqueMember: a UID after a known DN
    f"cn=x,dc=y#'0101'B",
]


def test_every_value_normalises_as_normalize_dns_does() -> None:
    known = KnownDns(_space(DNS))
    assert known.normalize(VALUES) == normalize_dns(VALUES)
    assert known.normalize(pd.Series(VALUES, dtype=object)) == normalize_dns(VALUES)
    assert known.normalize(np.array(VALUES, dtype=object)) == normalize_dns(VALUES)


@pytest.mark.parametrize("attribute", ["member", "uniqueMember", "a.uniquemember"])
def test_member_values_normalise_as_normalize_member_dns_does(attribute: str) -> None:
    known = KnownDns(_space(DNS))
    assert known.normalize_members(VALUES, attribute) == normalize_member_dns(VALUES, attribute)


def test_a_known_dn_that_ends_like_a_uid_is_parsed_for_unique_member() -> None:
    """``cn=x,dc=y#'0101'B`` is an object's DN; as a uniqueMember value the trailing ``#'0101'B`` is a UID
    (OpenLDAP's reading): the lookup must not answer the object's own normal form."""
    value = "cn=x,dc=y#'0101'B"
    known = KnownDns(_space(DNS))
    assert known.normalize([value]) == [normalize_dns([value])[0]]
    assert known.normalize_members([value], "uniqueMember") == normalize_member_dns([value], "uniqueMember")
    assert known.normalize_members([value], "uniqueMember") != known.normalize([value])


def test_spaces_of_several_connections_duplicates_and_no_space_at_all() -> None:
    both = KnownDns(_space(DNS[:4]), None, _space(DNS[2:] + DNS[:1]))
    assert both.normalize(VALUES) == normalize_dns(VALUES)
    assert KnownDns().normalize(VALUES) == normalize_dns(VALUES)
    assert KnownDns(_space([])).normalize(VALUES) == normalize_dns(VALUES)
    assert KnownDns(_space(DNS)).normalize([]) == []


def test_a_stale_dn_norm_is_what_the_lookup_answers() -> None:
    """The lookup answers the space's ``dn_norm``: a space whose ``dn_norm`` were not the build's would give
    another result — which is why KnownDns is only built from connector spaces (this proves it looks up)."""
    space = _space(DNS).assign(dn_norm=lambda f: f["dn_norm"].str.upper())
    assert KnownDns(space).normalize(DNS[:1]) == [normalize_dns(DNS[:1])[0].upper()]


def test_random_references_against_a_random_space() -> None:
    rng = random.Random(7)
    objects = [f"{rng.choice(['uid', 'cn', 'CN', 'UID'])}={rng.choice(['p', 'P', 'Ann', 'ann '])}{i},"
               f"{rng.choice(['ou=people', 'OU=People', 'ou = people'])},{BASE}" for i in range(2000)]
    space = _space(objects)
    spelled = [rng.choice(objects) for _ in range(3000)]
    other = [v.upper() for v in spelled[:500]] + [v + "#'01'B" for v in spelled[500:700]] + [None] * 10
    values = spelled + other
    rng.shuffle(values)
    known = KnownDns(space)
    assert known.normalize(values) == normalize_dns(values)
    assert known.normalize_members(values, "uniqueMember") == normalize_member_dns(values, "uniqueMember")
