"""DN normalisation: equal spellings of one DN compare equal; invalid DNs are rejected."""

from __future__ import annotations

import pytest

from profile_sync.directory.dn import InvalidDnError, is_within, normalize_dn, normalize_dn_or_none, normalize_dns, rdn_value

SAME = [
    ("CN=John Smith,OU=Users,DC=Contoso,DC=com", "cn=john smith,ou=users,dc=contoso,dc=com"),
    ("CN=John Smith , OU=Users , DC=contoso,DC=com", "cn=john smith,ou=users,dc=contoso,dc=com"),
    ("CN=Smith\\, John,OU=Users,DC=contoso,DC=com", "cn=smith\\2C john,ou=users,dc=contoso,dc=com"),
    ("CN=Zoë Ærø,OU=Users,DC=contoso,DC=com", "cn=zoë ærø,ou=users,dc=contoso,dc=com"),
    # Multi-valued RDNs are sets (RFC 4517 distinguishedNameMatch): any AVA order.
    ("uid=x+cn=Y,ou=people,dc=example,dc=org", "CN=y+UID=X,OU=People,DC=Example,DC=Org"),
    # Long names and OIDs of the usual types.
    ("commonName=Ann,organizationalUnitName=Staff,domainComponent=example",
     "2.5.4.3=ann,2.5.4.11=staff,0.9.2342.19200300.100.1.25=EXAMPLE"),
    ("userid=ann,dc=x", "UID=Ann,DC=X"),
    # Hex escapes of any character, and the BER hex form of a directory string.
    ("cn=\\C3\\A9clair,dc=x", "cn=Éclair,dc=x"),
    ("cn=#0C03414243,dc=x", "cn=abc,dc=x"),
    # RFC 4518: case folding (ß → ss), NFKC (full-width letters, decomposed accents), spaces, soft hyphens.
    ("cn=Straße,dc=x", "cn=STRASSE,dc=x"),
    ("cn=\uff21nn,dc=x", "cn=ann,dc=x"),
    ("cn=Re\u0301my,dc=x", "cn=Rémy,dc=x"),
    ("cn=\\20Ann\u00a0\u00a0 Lee\\20,dc=x", "cn=ann lee,dc=x"),
    ("cn=An\u00adn,dc=x", "cn=ann,dc=x"),
    # Values compared by their type's rule: integerMatch, telephoneNumberMatch.
    ("uidNumber=007,dc=x", "uidnumber=7,dc=x"),
    ("telephoneNumber=\\2B1 555-0100,dc=x", "telephonenumber=\\2b15550100,dc=x"),
]
DIFFERENT = [
    ("CN=A,OU=X,DC=c", "CN=A,OU=Y,DC=c"),
    ("cn=a+sn=b,dc=x", "cn=a,sn=b,dc=x"),            # one RDN of two AVAs is not two RDNs
    ("cn=a b,dc=x", "cn=ab,dc=x"),                   # inner spaces are significant (collapsed, not dropped)
    ("homeDirectory=/home/Ann,dc=x", "homeDirectory=/home/ann,dc=x"),  # caseExactIA5Match
    ("cn=a\\,b,dc=x", "cn=a,cn=b,dc=x"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_equal_spellings_normalise_equal(a, b):
    assert normalize_dn(a) == normalize_dn(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_dns_stay_different(a, b):
    assert normalize_dn(a) != normalize_dn(b)


def test_the_canonical_spelling():
    assert normalize_dn("UID=x+CN=Smith\\2C John , OU=R&D\\, Zürich,DC=Contoso") == \
        "cn=smith\\, john+uid=x,ou=r&d\\, zürich,dc=contoso"
    assert normalize_dn("cn=\\#1,dc=x") == "cn=\\#1,dc=x"
    assert normalize_dn("x-unknown=#0402414A,dc=x") == "x-unknown=#0402414a,dc=x"  # an OCTET STRING: hex


@pytest.mark.parametrize("bad", ["garbage", "cn=#zz,dc=x", "=x,dc=y", "cn=x,,dc=y"])
def test_invalid_dns_are_rejected(bad):
    with pytest.raises(InvalidDnError):
        normalize_dn(bad)
    assert normalize_dn_or_none(bad) is None


def test_vectorised_normalisation_agrees_with_the_parser():
    dns = [x for pair in SAME + DIFFERENT for x in pair] + [
        "garbage", None, "cn=a+sn=b,ou=x", "CN=a, b,OU=x", "cn=1x,ou=y", "cn=x,", "cn=x, ", ",cn=x", "c n=x,dc=y",
        "\uff43n=x,dc=y", "cn=a\uff0cb,dc=x", "cn=a\u0338,dc=x", ",".join(["CN=X"] * 100)]
    assert normalize_dns(dns) == [normalize_dn_or_none(d) for d in dns]


def test_rdn_value_unescapes():
    assert rdn_value("CN=Müller\\, Jürgen,OU=x") == "Müller, Jürgen"


def test_is_within_respects_rdn_boundaries():
    assert is_within("cn=a,ou=users,dc=c", "ou=users,dc=c")
    assert is_within("ou=users,dc=c", "ou=users,dc=c")
    assert not is_within("cn=a,ou=xusers,dc=c", "ou=users,dc=c")
    assert not is_within("cn=a\\,ou=users,dc=c", "ou=users,dc=c")  # an escaped comma is not a boundary
    assert is_within("cn=a\\\\,ou=users,dc=c", "ou=users,dc=c")  # an escaped backslash before a separator
