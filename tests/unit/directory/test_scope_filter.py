"""LDAP filters evaluated on connector-space rows (LDIF connections)."""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.sync.scope import FilterError, evaluate_filter, filter_attributes


@pytest.fixture
def frame():
    return pd.DataFrame({
        "dn_norm": ["cn=a,dc=x", "cn=b,dc=x", "cn=c,dc=x"],
        "a.department": ["Sales", "Engineering", None],
        "a.useraccountcontrol": ["512", "514", "66050"],
        "a.proxyaddresses": [["SMTP:a@x.com"], ["smtp:b@y.com"], None],
        "a.title": ["Lead (EU)", "Dev", "Dev"],
    })


@pytest.mark.parametrize(("flt", "expected"), [
    ("(department=sales)", [True, False, False]),
    ("(department=*)", [True, True, False]),
    ("(!(department=*))", [False, False, True]),
    ("(department=Eng*)", [False, True, False]),
    ("(|(department=Sales)(title=Dev))", [True, True, True]),
    ("(&(title=Dev)(department=*))", [False, True, False]),
    ("(userAccountControl:1.2.840.113556.1.4.803:=2)", [False, True, True]),
    ("(!(userAccountControl:1.2.840.113556.1.4.803:=2))", [True, False, False]),
    ("(proxyAddresses=smtp:b@y.com)", [False, True, False]),
    ("(userAccountControl>=600)", [False, False, True]),
    ("(title=Lead \\28EU\\29)", [True, False, False]),
])
def test_filter(frame, flt, expected):
    assert evaluate_filter(frame, flt).tolist() == expected


def test_invalid_filter_is_a_clear_error():
    with pytest.raises(FilterError, match="invalid LDAP filter"):
        filter_attributes("(department=Sales")


def test_filter_attributes_are_collected():
    assert filter_attributes("(&(department=x)(!(Title=y)))") == {"department", "title"}
