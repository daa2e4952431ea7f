"""Scope: which connector-space objects are processed.

An object is in scope when it lies in a selected container (and not in an
excluded one), is a person or a group by its object classes, matches the
connection's LDAP filter, and — for people under the ``leave_scope`` policy — is
not disabled. An object leaving scope is treated like a delete.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from ldap3.operation import search as ldap_search

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.settings import DisabledAccountPolicy
from profile_sync.directory.dn import is_within, normalize_dn
from profile_sync.directory.ldap_filter import FilterError, filter_attributes, parse_filter
from profile_sync.sync.connector_space import attr_column
from profile_sync.sync.transforms import MULTI

__all__ = ["FilterError", "apply_scope", "evaluate_filter", "filter_attributes"]

BITWISE_AND = "1.2.840.113556.1.4.803"
BITWISE_OR = "1.2.840.113556.1.4.804"


def apply_scope(
    frame: pd.DataFrame, directory: ResolvedDirectory, disabled_policy: DisabledAccountPolicy
) -> pd.DataFrame:
    """Return a copy of ``frame`` with ``in_scope`` and ``scope_reason`` set (a shallow copy: pandas 3 copies on
    write, so setting the two columns leaves ``frame`` as it was, and its other columns are not copied)."""
    out = frame.copy(deep=False)
    reason = pd.Series(None, index=out.index, dtype="object")
    dn = out["dn_norm"]

    def mark(mask: pd.Series, why: str) -> None:
        reason[mask & reason.isna()] = why

    containers = [normalize_dn(c) for c in directory.connection.containers]
    inside = pd.Series(False, index=out.index)
    for c in containers:
        inside |= dn.map(lambda d, c=c: is_within(d, c))
    mark(~inside, "outside the selected containers")
    for c in (normalize_dn(x) for x in directory.connection.excluded_containers):
        mark(dn.map(lambda d, c=c: is_within(d, c)), "in an excluded container")
    if directory.connection.filter:
        mark(~evaluate_filter(out, directory.connection.filter), "does not match the connection filter")
    if disabled_policy == "leave_scope":
        mark(out["disabled"] & (out["object_type"] == "person"), "account disabled")
    out["scope_reason"] = reason
    out["in_scope"] = reason.isna()
    return out


_HEX_ESCAPE = re.compile(rb"\\([0-9a-fA-F]{2})")


def _unescape(value: bytes) -> str:
    return _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value).decode("utf-8")


def evaluate_filter(frame: pd.DataFrame, filter_text: str) -> pd.Series:
    """Evaluate an RFC 4515 filter over connector-space rows (vectorised per node)."""
    root = parse_filter(filter_text)
    return _eval(root, frame).astype(bool)


def _values(frame: pd.DataFrame, attr: str) -> pd.Series:
    col = attr_column(attr)
    if attr.lower() == "dn" or attr.lower() == "distinguishedname":
        return frame["dn_norm"]
    if col not in frame.columns:
        raise FilterError(
            f"the filter tests attribute {attr!r}, which is not imported; add a mapping for it "
            "or remove it from the filter"
        )
    return frame[col]


def _any(series: pd.Series, test) -> pd.Series:  # noqa: ANN001
    def one(v) -> bool:  # noqa: ANN001
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return False
        if isinstance(v, MULTI):
            return any(test(x) for x in v)
        return bool(test(v))

    return series.map(one).astype(bool)


def _text(v) -> str:  # noqa: ANN001
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _eval(node, frame: pd.DataFrame) -> pd.Series:  # noqa: ANN001, C901
    tag = node.tag
    if tag == ldap_search.ROOT:
        return _eval(node.elements[0], frame)
    if tag == ldap_search.AND:
        out = pd.Series(True, index=frame.index)
        for child in node.elements:
            out &= _eval(child, frame)
        return out
    if tag == ldap_search.OR:
        out = pd.Series(False, index=frame.index)
        for child in node.elements:
            out |= _eval(child, frame)
        return out
    if tag == ldap_search.NOT:
        return ~_eval(node.elements[0], frame)
    a = node.assertion
    values = _values(frame, a["attr"])
    if tag == ldap_search.MATCH_PRESENT:
        return _any(values, lambda v: v not in ("", b""))
    if tag in (ldap_search.MATCH_EQUAL, ldap_search.MATCH_APPROX):
        want = _unescape(a["value"]).lower()
        if a["attr"].lower() in ("dn", "distinguishedname"):
            want = normalize_dn(want)
        return _any(values, lambda v: _text(v).lower() == want)
    if tag in (ldap_search.MATCH_GREATER_OR_EQUAL, ldap_search.MATCH_LESS_OR_EQUAL):
        want = _unescape(a["value"])
        ge = tag == ldap_search.MATCH_GREATER_OR_EQUAL

        def cmp(v) -> bool:  # noqa: ANN001
            t = _text(v)
            try:
                x, y = int(t), int(want)
            except ValueError:
                x, y = t.lower(), want.lower()
            return x >= y if ge else x <= y

        return _any(values, cmp)
    if tag == ldap_search.MATCH_SUBSTRING:
        parts = [re.escape(_unescape(a["initial"]))] if a.get("initial") else [""]
        for mid in a.get("any") or []:
            parts.append(re.escape(_unescape(mid)))
        parts.append(re.escape(_unescape(a["final"])) if a.get("final") else "")
        pattern = re.compile(".*".join(parts), re.IGNORECASE | re.DOTALL)
        return _any(values, lambda v: pattern.fullmatch(_text(v)) is not None)
    if tag == ldap_search.MATCH_EXTENSIBLE:
        rule = a.get("matchingRule")
        want = _unescape(a["value"])
        if rule in (BITWISE_AND, BITWISE_OR):
            bits = int(want)

            def bit(v) -> bool:  # noqa: ANN001
                try:
                    n = int(_text(v))
                except ValueError:
                    return False
                return (n & bits) == bits if rule == BITWISE_AND else (n & bits) != 0

            return _any(values, bit)
        raise FilterError(f"matching rule {rule!r} is not supported for LDIF connections")
    raise FilterError(f"unsupported filter element (tag {tag})")
