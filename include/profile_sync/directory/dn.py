"""Distinguished names: parsing, normalising and scope tests (RFC 4514).

Normalised DNs compare equal when two spellings name the same object in a
directory whose naming attributes match case-insensitively (AD, most LDAP
servers): attribute types and values lower-cased, insignificant whitespace
collapsed, escapes canonical. Parsing uses python-ldap's C parser (``ldap.dn``).
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

import ldap.dn

_SPACES = re.compile(r"\s+")


class InvalidDnError(ValueError):
    """The string is not a valid RFC 4514 distinguished name."""


def parse_dn(dn: str) -> list[list[tuple[str, str, int]]]:
    """Split ``dn`` into RDNs of (type, value, flags); raise InvalidDnError when invalid."""
    try:
        return ldap.dn.str2dn(dn, ldap.DN_FORMAT_LDAPV3)
    except (ldap.DECODING_ERROR, UnicodeError, TypeError) as exc:
        raise InvalidDnError(f"invalid DN {dn!r}") from exc


def normalize_dn(dn: str) -> str:
    """The canonical, case-folded spelling of ``dn`` (raises InvalidDnError)."""
    rdns = parse_dn(dn)
    return ldap.dn.dn2str(
        [[(t.lower(), _SPACES.sub(" ", v.strip()).lower(), 1) for t, v, _ in rdn] for rdn in rdns]
    )


def normalize_dn_or_none(dn: str | None) -> str | None:
    """``normalize_dn`` that returns None for None or an invalid DN."""
    if dn is None:
        return None
    try:
        return normalize_dn(dn)
    except InvalidDnError:
        return None


def rdn_value(dn: str) -> str:
    """The value of the first RDN (``CN=Müller\\, Jürgen,OU=x`` → ``Müller, Jürgen``)."""
    rdns = parse_dn(dn)
    return rdns[0][0][1] if rdns else ""


def is_within(normalized_dn: str, normalized_container: str) -> bool:
    """True when the DN is the container itself or below it (on an RDN boundary)."""
    if not normalized_container:
        return True
    return normalized_dn == normalized_container or normalized_dn.endswith("," + normalized_container)



_SPECIAL = re.compile(r'[\\"+#;<>]|\s\s')


@functools.lru_cache(maxsize=1 << 20)
def _normalize_fast(dn: str) -> str | None:
    # DNs without escapes, quotes, multi-valued RDNs or stray spaces (nearly all)
    # are normal once lower-cased; the rest go through the RFC 4514 parser.
    low = dn.lower()
    if (
        _SPECIAL.search(low) is None
        and low.count("=") == low.count(",") + 1
        and ", " not in low and " ," not in low and "= " not in low and " =" not in low
        and ",," not in low and ",=" not in low and "=," not in low
        and low[:1].isalpha() and low[-1:] not in ("=", ",", " ")
    ):
        return low
    return normalize_dn_or_none(dn)


def normalize_dns(dns: Iterable[str | None]) -> list[str | None]:
    """``normalize_dn_or_none`` over many DNs (None where missing or invalid)."""
    return [None if d is None or d != d else _normalize_fast(d) for d in dns]
