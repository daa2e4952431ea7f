"""Attribute-flow transforms: a connector-space column in, a property column out.

Each transform is vectorised over a Series. The vocabulary is closed
(``config.settings.Transform``) and checked when the configuration loads.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from profile_sync.config.settings import Transform

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


MULTI = (list, tuple, np.ndarray)
"""Multi-valued attributes are lists in memory and numpy arrays once read back from Parquet."""


def first_values(values: pd.Series, multi: bool = True) -> pd.Series:
    """First value of a multi-valued attribute; single values unchanged (``object``, None where none).

    One comprehension over the object array (a quarter of ``Series.map``'s time, which also re-infers a
    dtype); Parquet gives numpy arrays, tested first."""
    if not multi:
        return values
    array, many = np.ndarray, MULTI
    out = np.empty(len(values), dtype=object)
    out[:] = [(v[0] if len(v) else None) if type(v) is array or isinstance(v, many) else v
              for v in values.to_numpy(dtype=object)]
    return pd.Series(out, index=values.index, dtype=object, copy=False)


def _text(values: pd.Series, multi: bool = True) -> pd.Series:
    first = first_values(values, multi).astype(object)
    return first.where(first.notna(), None)


def copy(values: pd.Series, *, multi: bool = True, **_: object) -> pd.Series:
    return _text(values, multi)


def lower(values: pd.Series, *, multi: bool = True, **_: object) -> pd.Series:
    v = _text(values, multi)
    return v.where(v.isna(), v.str.lower())


def account_name(values: pd.Series, *, account_name_format: str, multi: bool = True, **_: object) -> pd.Series:
    """``i:0#.f|membership|<value lower-cased>`` (the format is configurable)."""
    prefix, _, suffix = account_name_format.partition("{value}")
    v = _text(values, multi)
    trimmed = v.str.strip().str.lower()
    out = (prefix + trimmed + suffix).astype(object)
    return out.where(trimmed.notna() & (trimmed != ""), None)


def _proxy(values: pd.Series, prefix: str, case_sensitive: bool) -> pd.Series:
    n = len(prefix)

    def pick(v: object) -> str | None:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, MULTI):
            return None
        for item in v:
            head = item[:n]
            if head == prefix if case_sensitive else head.lower() == prefix.lower():
                return item[n:]
        return None

    return values.map(pick).astype(object)


def proxy_primary_smtp(values: pd.Series, **_: object) -> pd.Series:
    """The primary address: the proxyAddresses value prefixed ``SMTP:`` (upper case), without it."""
    return _proxy(values, "SMTP:", case_sensitive=True)


def proxy_sip(values: pd.Series, **_: object) -> pd.Series:
    """The ``SIP:`` proxy address, without the prefix."""
    return _proxy(values, "SIP:", case_sensitive=False)


def boolean(values: pd.Series, *, multi: bool = True, **_: object) -> pd.Series:
    """``TRUE``/``FALSE`` (LDAP Boolean syntax) → True/False; anything else → None."""
    v = _text(values, multi)
    return v.map(
        lambda x: True if isinstance(x, str) and x.strip().lower() in _TRUE
        else False if isinstance(x, str) and x.strip().lower() in _FALSE else None
    ).astype(object)


def reference(values: pd.Series, *, multi: bool = True, **_: object) -> pd.Series:
    """A DN; resolved to the referenced profile's account name by ``references.py``."""
    return _text(values, multi)


first_value = copy

TRANSFORMS: dict[Transform, Callable[..., pd.Series]] = {
    "copy": copy,
    "lower": lower,
    "account_name": account_name,
    "proxy_primary_smtp": proxy_primary_smtp,
    "proxy_sip": proxy_sip,
    "boolean": boolean,
    "reference": reference,
    "first_value": first_value,
}
