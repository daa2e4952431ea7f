"""DN normalisation: equal spellings of one DN compare equal; invalid DNs are rejected."""

from __future__ import annotations

import pytest

from profile_sync.directory.dn import InvalidDnError, is_within, normalize_dn, normalize_dn_or_none, normalize_dns, rdn_value

SAME = [
    ("CN=John Smith,OU=Users,DC=Contoso,DC=com", "cn=john smith,ou=users,dc=contoso,dc=com"),
    ("CN=John Smith , OU=Users , DC=contoso,DC=com", "cn=john smith,ou=users,dc=contoso,dc=com"),
    ("CN=Smith\\, John,OU=Users,DC=contoso,DC=com", "cn=smith\\2C john,ou=users,dc=contoso,dc=com"),
    ("CN=Zoë Ærø,OU=Users,DC=contoso,DC=com", "cn=zoë ærø,ou=users,dc=contoso,dc=com"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_equal_spellings_normalise_equal(a, b):
    assert normalize_dn(a) == normalize_dn(b)


def test_different_dns_stay_different():
    assert normalize_dn("CN=A,OU=X,DC=c") != normalize_dn("CN=A,OU=Y,DC=c")


@pytest.mark.parametrize("bad", ["garbage", "cn=#zz,dc=x", "=x,dc=y", "cn=x,,dc=y"])
def test_invalid_dns_are_rejected(bad):
    with pytest.raises(InvalidDnError):
        normalize_dn(bad)
    assert normalize_dn_or_none(bad) is None


def test_vectorised_normalisation_agrees_with_the_parser():
    dns = [a for a, _ in SAME] + ["garbage", None, "cn=a+sn=b,ou=x", "CN=a, b,OU=x", "cn=1x,ou=y"]
    assert normalize_dns(dns) == [normalize_dn_or_none(d) for d in dns]


def test_rdn_value_unescapes():
    assert rdn_value("CN=Müller\\, Jürgen,OU=x") == "Müller, Jürgen"


def test_is_within_respects_rdn_boundaries():
    assert is_within("cn=a,ou=users,dc=c", "ou=users,dc=c")
    assert is_within("ou=users,dc=c", "ou=users,dc=c")
    assert not is_within("cn=a,ou=xusers,dc=c", "ou=users,dc=c")
