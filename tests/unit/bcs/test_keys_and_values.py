"""Join-key normalisation and value conversion: closed vocabularies, vectorised, row by row results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from profile_sync.bcs.keys import STEPS, normalize_keys
from profile_sync.bcs.values import convert
from profile_sync.config.business_systems import NormalizeStep
from profile_sync.config.properties import PropertySpec


def test_the_vocabulary_is_closed_and_complete():
    assert set(STEPS) == set(NormalizeStep.__args__)


@pytest.mark.parametrize(("steps", "value", "key"), [
    (["strip", "lower"], "  Jane.Doe@Contoso.COM ", "jane.doe@contoso.com"),
    (["domain_user"], "CONTOSO\\jdoe", "jdoe"),
    (["domain_user"], "jdoe", "jdoe"),
    (["upn_local_part"], "jdoe@contoso.com", "jdoe"),
    (["upn_local_part"], "j@doe@contoso.com", "j@doe"),
    (["claims"], "i:0#.f|membership|jdoe@contoso.com", "jdoe@contoso.com"),
    (["claims", "domain_user"], "i:0#.w|contoso\\jdoe", "jdoe"),
    (["strip_leading_zeros"], "000123", "123"),
    (["strip_leading_zeros"], "0000", "0"),
    (["strip"], "   ", None),
    (["lower"], None, None),
    ([], 123, "123"),
    ([], 123.0, "123"),
    ([], Decimal("00123"), "123"),
    ([], dt.date(2020, 1, 2), "2020-01-02"),
])
def test_normalize(steps, value, key):
    assert normalize_keys(pd.Series([value], dtype=object), steps).tolist() == [key]


@given(st.lists(st.one_of(st.none(), st.text(max_size=12), st.integers(-10**6, 10**6)), max_size=30))
def test_normalised_keys_keep_the_index_and_lose_what_the_steps_remove(values):
    steps = ["strip", "lower", "claims", "domain_user", "strip_leading_zeros"]
    s = pd.Series(values, dtype=object, index=range(100, 100 + len(values)))
    keys = normalize_keys(s, steps)
    assert list(keys.index) == list(s.index)
    for raw, key in zip(values, keys):
        if raw is None:
            assert key is None
        elif key is not None:
            assert key == key.lower() and "|" not in key and "\\" not in key and key != ""
            assert not (len(key) > 1 and key[0] == "0" and key[1].isdigit())


SPECS = {"s": PropertySpec("string", 5), "t": PropertySpec("text"), "i": PropertySpec("integer"),
         "b": PropertySpec("boolean"), "d": PropertySpec("date"), "x": PropertySpec("binary")}


@pytest.mark.parametrize(("spec", "value", "typed", "reason"), [
    ("s", "abc", "abc", None),
    ("s", "abcdef", None, "p: value too long (6 > 5 characters)"),
    ("s", 12, "12", None),
    ("s", 12.0, "12", None),
    ("s", dt.date(2020, 1, 2), "2020-0", "p: value too long (10 > 5 characters)"),
    ("s", "", None, None),
    ("s", "   ", None, None),
    ("s", None, None, None),
    ("t", "x" * 5000, "x" * 5000, None),
    ("i", " 42 ", 42, None),
    ("i", "4.0", 4, None),
    ("i", "4.5", None, "p: not an integer"),
    ("i", 7.0, 7, None),
    ("i", True, None, "p: not an integer (a boolean)"),
    ("i", "9" * 20, None, "p: integer out of range (64-bit)"),
    ("i", Decimal("12"), 12, None),
    ("b", "Yes", True, None),
    ("b", "0", False, None),
    ("b", 1, True, None),
    ("b", "maybe", None, "p: not a boolean (true/false, yes/no, 1/0)"),
    ("d", "2024-03-31", dt.date(2024, 3, 31), None),
    ("d", "2024-03-31T08:00:00", dt.date(2024, 3, 31), None),
    ("d", dt.datetime(2024, 3, 31, 8), dt.date(2024, 3, 31), None),
    ("d", "31/03/2024", None, "p: not a date (ISO 8601, e.g. 2024-03-31)"),
    ("d", "1500-01-01", dt.date(1500, 1, 1), None),
    ("x", b"\x00\xff", b"\x00\xff", None),
    ("x", "text", None, "p: not binary (str)"),
])
def test_convert(spec, value, typed, reason):
    if typed == "2020-0":  # a date into a short string: text first, then the length check
        typed = None
    out = convert(pd.Series([value], dtype=object), SPECS[spec], "p")
    assert out.values.tolist() == [typed]
    assert out.reasons.tolist() == [reason]


def test_convert_keeps_rows_apart_and_converts_each_distinct_value_once(monkeypatch):
    from profile_sync.bcs import values as module

    calls = []
    real = module.CONVERTERS["date"]
    monkeypatch.setitem(module.CONVERTERS, "date", lambda v: calls.append(v) or real(v))
    series = pd.Series(["2020-01-01", "bad", "2020-01-01", None, "2020-01-01"], index=[5, 6, 7, 8, 9])
    out = convert(series, SPECS["d"], "d")
    assert out.values.tolist() == [dt.date(2020, 1, 1), None, dt.date(2020, 1, 1), None, dt.date(2020, 1, 1)]
    assert out.reasons.notna().tolist() == [False, True, False, False, False]
    assert list(out.values.index) == [5, 6, 7, 8, 9]
    assert sorted(calls) == ["2020-01-01", "bad"]


def test_datetime_columns_become_dates():
    out = convert(pd.Series(pd.to_datetime(["2020-01-02 10:00", None])), SPECS["d"], "d")
    assert out.values.tolist() == [dt.date(2020, 1, 2), None]
