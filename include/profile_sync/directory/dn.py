"""Distinguished names: parsing, normalising and scope tests (RFC 4514, RFC 4517, RFC 4518).

Two spellings of one DN normalise to the same string exactly when they match by RFC 4517
``distinguishedNameMatch``: the same number of RDNs, and each RDN the same *set* of
attribute-value assertions, values compared by the equality rule of their attribute type.
The canonical spelling (:data:`DN_FORM` names its version) is:

- **types**: lower case; the long names and OIDs of the usual types become their short name
  (``commonName`` and ``2.5.4.3`` → ``cn``, ``userid`` → ``uid``, ``domainComponent`` → ``dc``,
  see ``_TYPE_NAMES``); other types are lower-cased (other OIDs kept as written);
- **values**: decoded from every escape (``\\,``, ``\\2C``, ``\\C3\\A9``) and from the BER
  hex form (``#0C03414243``, for the directory-string types), then prepared as RFC 4518 says for
  the type's rule: characters mapped (controls, soft hyphen, zero-width characters to nothing;
  tabs, line breaks, other Unicode spaces to a space), then per rule
  ``caseIgnoreMatch`` — case folded and NFKC normalised, runs of spaces collapsed, leading and
  trailing spaces dropped; ``caseExactMatch`` — the same without case folding;
  ``integerMatch`` — the number; ``telephoneNumberMatch`` — caseIgnore without spaces and
  hyphens (``_RULES``). **Every type not in ``_RULES`` is compared with caseIgnoreMatch**: that
  is the rule of the usual naming attributes (cn, ou, o, dc, uid, l, st, c, sn, mail, ...) and
  what Active Directory does for every naming attribute; the engine does not read the server's
  schema. A hex-form value that is not a directory string stays ``#`` + lower-case hex
  (compared octet by octet);
- **escapes** re-encoded one way: python-ldap's ``escape_dn_chars`` (``\\`` before
  ``\\ , + " < > ; =``, a leading ``#``); nothing else is escaped;
- **multi-valued RDNs**: AVAs sorted (``uid=x+cn=Y`` and ``CN=y+UID=X`` are both ``cn=y+uid=x``);
- RDNs joined by ``,`` and AVAs by ``+`` without spaces.

Parsing uses python-ldap's C parser (``ldap.dn.str2dn``, RFC 4514). Values must be UTF-8 (a DN
with a hex escape or a hex-form value that is not UTF-8 is invalid here).

``normalize_dns`` is the vectorised, cached form used on hot paths: a DN is split at its first
comma when the first RDN holds no escape, and its parent (shared by thousands of DNs) comes from
the cache; plain RDNs are checked by one regular expression instead of being parsed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterable, Literal

import ldap
import ldap.dn

DN_FORM = 2
"""Version of the canonical spelling, recorded per connection with its connector space
(``dn_form/<connection>``). State written with another one makes the next run a full one
(``run.steps.decide_mode``): DN-keyed lookups must not mix two spellings. Version 1 was the spelling
before RFC 4517 matching (lower-cased values, AVAs in the order written)."""

Rule = Literal["case_ignore", "case_exact", "integer", "telephone"]

# Long names and OIDs of the usual attribute types → the short name (RFC 4519, RFC 4524, RFC 2798,
# RFC 2307, PKCS #9, RFC 4530). Keys are lower case.
_TYPE_NAMES: dict[str, str] = {
    "commonname": "cn", "2.5.4.3": "cn",
    "surname": "sn", "2.5.4.4": "sn",
    "2.5.4.5": "serialnumber",
    "countryname": "c", "2.5.4.6": "c",
    "localityname": "l", "2.5.4.7": "l",
    "stateorprovincename": "st", "2.5.4.8": "st",
    "streetaddress": "street", "2.5.4.9": "street",
    "organizationname": "o", "2.5.4.10": "o",
    "organizationalunitname": "ou", "2.5.4.11": "ou",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.17": "postalcode",
    "2.5.4.20": "telephonenumber",
    "2.5.4.23": "facsimiletelephonenumber", "fax": "facsimiletelephonenumber",
    "2.5.4.41": "name",
    "gn": "givenname", "2.5.4.42": "givenname",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationqualifier",
    "2.5.4.46": "dnqualifier",
    "2.5.4.65": "pseudonym",
    "userid": "uid", "0.9.2342.19200300.100.1.1": "uid",
    "rfc822mailbox": "mail", "0.9.2342.19200300.100.1.3": "mail",
    "domaincomponent": "dc", "0.9.2342.19200300.100.1.25": "dc",
    "hometelephonenumber": "homephone", "0.9.2342.19200300.100.1.20": "homephone",
    "mobiletelephonenumber": "mobile", "0.9.2342.19200300.100.1.41": "mobile",
    "pagertelephonenumber": "pager", "0.9.2342.19200300.100.1.42": "pager",
    "email": "emailaddress", "1.2.840.113549.1.9.1": "emailaddress",
    "2.16.840.1.113730.3.1.241": "displayname",
    "2.16.840.1.113730.3.1.3": "employeenumber",
    "1.3.6.1.1.1.1.0": "uidnumber",
    "1.3.6.1.1.1.1.1": "gidnumber",
    "1.3.6.1.1.1.1.3": "homedirectory",
    "1.3.6.1.1.1.1.4": "loginshell",
    "1.3.6.1.1.1.1.12": "memberuid",
    "1.3.6.1.1.16.4": "entryuuid",
}

# Equality rules other than caseIgnoreMatch, by canonical type (the schemas that define them).
_RULES: dict[str, Rule] = {
    "uidnumber": "integer", "gidnumber": "integer",                       # RFC 2307
    "telephonenumber": "telephone", "facsimiletelephonenumber": "telephone",  # RFC 4519
    "homephone": "telephone", "mobile": "telephone", "pager": "telephone",   # RFC 4524
    "homedirectory": "case_exact", "loginshell": "case_exact", "memberuid": "case_exact",  # RFC 2307
    "labeleduri": "case_exact",                                            # RFC 2079
}

# RFC 4518 section 2.2, "Map": code points mapped to nothing, and to SPACE.
_TO_NOTHING = [0x00AD, 0x1806, 0x034F, 0x180B, 0x180C, 0x180D, *range(0xFE00, 0xFE10), 0xFFFC,
               *range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0x85), *range(0x86, 0xA0), 0x06DD, 0x070F,
               0x180E, *range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2064),
               *range(0x206A, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFC), *range(0x1D173, 0x1D17B), 0xE0001,
               *range(0xE0020, 0xE0080), 0x200B]
_TO_SPACE = [*range(0x09, 0x0E), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F,
             0x3000]
_MAP = {**{c: None for c in _TO_NOTHING}, **{c: 0x20 for c in _TO_SPACE}}


def _char_class(codes: Iterable[int]) -> str:
    """A regular-expression character class of ``codes`` as ranges (one class of single characters is slow)."""
    ranges: list[list[int]] = []
    for c in sorted(codes):
        if ranges and c == ranges[-1][1] + 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                         for a, b in ranges) + "]"


_MAPPED = re.compile(_char_class(_MAP))
_SPACES = re.compile(" +")
_HYPHENS = re.compile("[ \u002d\u058a\u2010\u2011\u2212\ufe63\uff0d]")
_INTEGER = re.compile(r"[+-]?[0-9]+")

# BER tags of the directory-string CHOICE (and IA5String) whose hex form decodes to text.
_BER_TEXT = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x1C: "utf-32-be", 0x1E: "utf-16-be"}


class InvalidDnError(ValueError):
    """The string is not a valid RFC 4514 distinguished name."""


def parse_dn(dn: str) -> list[list[tuple[str, str, int]]]:
    """Split ``dn`` into RDNs of (type, value, flags); raise InvalidDnError when invalid."""
    try:
        return ldap.dn.str2dn(dn, ldap.DN_FORMAT_LDAPV3)
    except (ldap.DECODING_ERROR, UnicodeError, TypeError) as exc:
        raise InvalidDnError(f"invalid DN {dn!r}") from exc


def canonical_type(attribute_type: str) -> str:
    """``commonName`` / ``2.5.4.3`` / ``CN`` → ``cn``; unknown types lower-cased."""
    low = attribute_type.lower()
    return _TYPE_NAMES.get(low, low)


def matching_rule(attribute_type: str) -> Rule:
    """The equality rule values of ``attribute_type`` are compared with (caseIgnoreMatch unless known)."""
    return _RULES.get(canonical_type(attribute_type), "case_ignore")


def _fold(text: str) -> str:
    """Case folding and NFKC until stable (RFC 4518's B.2 mapping, then normalisation)."""
    for _ in range(4):
        text = unicodedata.normalize("NFKC", text.casefold())
        if text.casefold() == text:  # NFKC's output is NFKC: stable once folding changes nothing
            break
    return text


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _map(text: str) -> str:
    """RFC 4518 "Map" (``translate`` with a table is slow: only strings that need it pay for it)."""
    return text.translate(_MAP) if _MAPPED.search(text) else text


def prepare_value(value: str, rule: Rule = "case_ignore") -> str:
    """An attribute value as RFC 4518 prepares it for ``rule`` (the string two values are compared as)."""
    if rule == "integer":
        bare = value.strip(" ")
        if _INTEGER.fullmatch(bare):
            return str(int(bare))
        rule = "case_ignore"  # not an integer: compared as a string rather than rejected
    text = _map(value)
    text = _nfkc(text) if rule == "case_exact" else (text.lower() if text.isascii() else _fold(text))
    text = _map(text)
    if rule == "telephone":
        return _HYPHENS.sub("", text)
    return _SPACES.sub(" ", text).strip(" ")


def _ber_text(raw: bytes) -> str | None:
    """The text of a BER-encoded directory string (``#0C03414243`` → ``ABC``), or None."""
    if len(raw) < 2 or raw[0] not in _BER_TEXT:
        return None
    length, start = raw[1], 2
    if length & 0x80:
        width = length & 0x7F
        if not 0 < width <= 4 or len(raw) < 2 + width:
            return None
        length, start = int.from_bytes(raw[2:2 + width], "big"), 2 + width
    if len(raw) != start + length:
        return None
    try:
        return raw[start:].decode(_BER_TEXT[raw[0]])
    except UnicodeDecodeError:
        return None


def _canonical_ava(attribute_type: str, value: str, flags: int) -> str:
    name = canonical_type(attribute_type)
    if flags & ldap.AVA_BINARY:
        raw = value.encode("utf-8")  # python-ldap hands the hex form's bytes over as UTF-8 text
        text = _ber_text(raw)
        if text is None:
            return f"{name}=#{raw.hex()}"
        value = text
    return f"{name}={ldap.dn.escape_dn_chars(prepare_value(value, _RULES.get(name, 'case_ignore')))}"


def _canonical(rdns: list[list[tuple[str, str, int]]]) -> str:
    return ",".join("+".join(sorted(_canonical_ava(t, v, f) for t, v, f in rdn)) for rdn in rdns)


def normalize_dn(dn: str) -> str:
    """The canonical spelling of ``dn`` (see the module docstring; raises InvalidDnError)."""
    return _canonical(parse_dn(dn))


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
    """True when the DN is the container itself or below it (on an RDN boundary; both canonical)."""
    if not normalized_container or normalized_dn == normalized_container:
        return True
    cut = len(normalized_dn) - len(normalized_container) - 1
    if cut < 1 or normalized_dn[cut] != "," or not normalized_dn.endswith(normalized_container):
        return False
    if normalized_dn[cut - 1] != "\\":
        return True
    # The comma is a separator unless it is escaped (an odd number of backslashes before it).
    backslashes = cut - len(normalized_dn[:cut].rstrip("\\"))
    return backslashes % 2 == 0


# -- the hot path ------------------------------------------------------------------------------
_SLOW_TYPES = frozenset(_TYPE_NAMES) | frozenset(_RULES)
_VALUE_CHAR = r'[^\s,=+\\"#;<>\x00-\x1f\x7f]'
_SLOW_NAMES = "|".join(sorted((re.escape(t) for t in _SLOW_TYPES if t[:1].isalpha()), key=len, reverse=True))
_PLAIN_RDN = re.compile(rf"(?!(?:{_SLOW_NAMES})=)[a-z][a-z0-9-]*={_VALUE_CHAR}(?: ?{_VALUE_CHAR})*")
"""One AVA whose canonical spelling is itself once case-folded: a keystring type that is neither an alias
nor of another rule than caseIgnoreMatch, a value without escapes, specials, controls, or insignificant
spaces."""
_MAX_SPLITS = 64


def _plain_rdn(rdn: str) -> str | None:
    """The canonical spelling of a single-AVA RDN that needs no parsing, or None (parse it)."""
    if rdn.isascii():
        folded = rdn.lower()
    else:
        eq = rdn.find("=")
        if eq < 1 or not rdn[:eq].isascii():
            return None
        folded = _fold(_map(rdn))  # a full-width ',' or '=' becomes one: the pattern sends it to the parser
    return folded if _PLAIN_RDN.fullmatch(folded) else None


@functools.lru_cache(maxsize=1 << 20)
def _normalize_fast(dn: str) -> str | None:
    comma = dn.find(",")
    if 0 < comma and "\\" not in dn[:comma] and dn.count(",") <= _MAX_SPLITS:
        # The first comma ends the first RDN (nothing before it is escaped): normalise that RDN and
        # take the parent, which thousands of DNs share, from the cache.
        rest = dn[comma + 1:]
        if not rest.strip(" "):
            return None
        parent = _normalize_fast(rest)
        if parent is None:
            return None
        first = _plain_rdn(dn[:comma])
        if first is None:
            first = normalize_dn_or_none(dn[:comma])
            if first is None or first == "":
                return None
        return f"{first},{parent}"
    if comma < 0:
        plain = _plain_rdn(dn)
        if plain is not None:
            return plain
    return normalize_dn_or_none(dn)


_UID = re.compile(r"#'[01]*'B\Z")
NAME_AND_OPTIONAL_UID = frozenset({"uniquemember"})
"""Attributes of RFC 4517 syntax nameAndOptionalUID: a DN, optionally followed by ``#'<bits>'B``."""


def split_optional_uid(value: str) -> tuple[str, str | None]:
    """``cn=x,dc=y#'0101'B`` → (``cn=x,dc=y``, ``'0101'B``); a value without a UID → (value, None).

    The ``#`` must not be escaped (``cn=a\\#'01'B`` is a DN whose value ends in ``#'01'B``); as in
    OpenLDAP, a trailing ``#'<bits>'B`` after an unescaped ``#`` is the UID.
    """
    m = _UID.search(value)
    if m is None:
        return value, None
    start = m.start()
    backslashes = start - len(value[:start].rstrip("\\"))
    if backslashes % 2:
        return value, None
    return value[:start], value[start + 1:]


@functools.lru_cache(maxsize=1 << 18)
def _normalize_uid_fast(value: str) -> str | None:
    name, uid = split_optional_uid(value)
    if uid is None:
        return _normalize_fast(value)
    norm = _normalize_fast(name)
    return norm if norm is not None else _normalize_fast(value)


def normalize_dns(dns: Iterable[str | None], *, optional_uid: bool = False) -> list[str | None]:
    """``normalize_dn_or_none`` over many DNs (None where missing or invalid).

    ``optional_uid``: the values are nameAndOptionalUID (``uniqueMember``): a UID after the DN is
    dropped, so ``cn=x,dc=y#'0101'B`` names the same object as ``cn=x,dc=y``.
    """
    fast = _normalize_uid_fast if optional_uid else _normalize_fast
    return [None if d is None or d != d else fast(d) for d in dns]


def normalize_member_dns(values: Iterable[str | None], attribute: str) -> list[str | None]:
    """``normalize_dns`` for the values of a member attribute (``member``, ``uniqueMember``, or its
    connector-space column ``a.uniquemember``): UIDs dropped where the attribute's syntax has them."""
    return normalize_dns(values, optional_uid=member_has_optional_uid(attribute))


def member_has_optional_uid(attribute: str) -> bool:
    """Whether values of the member attribute ``attribute`` (or its connector-space column ``a.<name>``) may
    carry a UID after the DN (syntax nameAndOptionalUID: ``uniqueMember``)."""
    return attribute.lower().removeprefix("a.") in NAME_AND_OPTIONAL_UID
