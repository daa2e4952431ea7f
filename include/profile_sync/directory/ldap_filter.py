"""RFC 4515 LDAP filters: parsing with ldap3's parser (imported lazily: no pandas, cheap at DAG parse time)."""

from __future__ import annotations

from typing import Any

from profile_sync.errors import TerminalError


class FilterError(TerminalError):
    """A configured LDAP filter cannot be parsed or evaluated."""


def parse_filter(filter_text: str) -> Any:
    """ldap3's filter tree for ``filter_text``; raises FilterError when invalid."""
    from ldap3.operation import search as ldap_search

    try:
        return ldap_search.parse_filter(filter_text, None, True, False, None, False)
    except Exception as exc:  # ldap3 raises several exception types for a bad filter
        raise FilterError(f"invalid LDAP filter {filter_text!r}: {exc}") from exc


def filter_attributes(filter_text: str) -> set[str]:
    """The attribute names a filter tests (lower case); raises FilterError when invalid."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if node.assertion and "attr" in node.assertion:
            names.add(node.assertion["attr"].lower())
        for child in node.elements:
            walk(child)

    walk(parse_filter(filter_text))
    return names
