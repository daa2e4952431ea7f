"""Render a :class:`SampleDirectory` as RFC 2849 LDIF content records.

The output is what python-ldap's :class:`ldif.LDIFWriter` writes for the same records
(``cols=76``, ``base64_attrs`` = the binary attributes): a value is base64-encoded (``::``)
when RFC 2849 does not allow it as a plain SAFE-STRING (non-ASCII, NUL/CR/LF, a leading
space, colon or ``<``, a trailing space), binary attributes (GUIDs, photos) always; lines
are folded at 76 columns; attributes are sorted by name after the ``dn``. One deliberate
difference: a value holding any other ASCII control character (tab, 0x01-0x1F, DEL) is
base64-encoded too. RFC 2849 allows them plain, but python-ldap's parser (the engine's)
strips leading tabs and other whitespace controls from plain values, so they would not
survive a round trip. The tests hold the output byte-identical to ``LDIFWriter`` for every
value without control characters. The encoding loop is our own because ``LDIFWriter``
spends ~7 us per value in method calls and a regex (~12 s for 100,000 people on the CI
machine). DNs are escaped per RFC 4514 by the model. The output is pure ASCII.

Record order: a ``version: 1`` line and a comment, the container entries (parents first),
then people, then groups, each in list order. Both flavours emit containers; the
``active_directory`` importer ignores them, the ``inetorgperson`` file also carries the suffix
entry so ``slapadd`` can load it into an empty database. OpenLDAP 2.5's ``slapadd`` rejects the
``version:`` line (``str2ad(version): attribute type undefined``): pass ``version_line=False``
for files meant for it (``ldapadd`` and python-ldap accept either).
"""

from __future__ import annotations

import io
import os
import re
import textwrap
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, Final, cast

from profile_sync.sample.model import (
    LAYOUTS,
    Container,
    Flavour,
    FlavourLayout,
    Group,
    Person,
    SampleDirectory,
    check_flavour,
    object_dn,
    render_dns,
)

__all__ = ["LdifSummary", "ldif_records", "render_ldif", "write_ldif"]

Entry = dict[str, list[str | bytes]]
"""Attribute name → values; ``str`` values are UTF-8 text, ``bytes`` are binary."""

_COLUMNS: Final = 76
BINARY_ATTRIBUTES: Final = ("objectGUID", "thumbnailPhoto", "jpegPhoto")
"""Always base64, even when the bytes happen to be printable (LDIFWriter's ``base64_attrs``)."""
_FORCED: Final = frozenset(a.lower() for a in BINARY_ATTRIBUTES)
_UNSAFE_FIRST: Final = frozenset(" :<")
_NEEDS_BASE64: Final = re.compile(rb"^[ :<]|[\x00-\x1f\x7f-\xff]| $")
"""``ldif.safe_string_re`` (RFC 2849 SAFE-STRING) plus every ASCII control character."""
_REPETITIVE: Final = frozenset({
    "objectClass", "department", "departmentNumber", "title", "preferredLanguage",
    "userAccountControl", "msExchHideFromAddressList", "groupType",
})
"""Attributes with few distinct values: their encoded lines are cached per write."""
_FLUSH_EVERY: Final = 2000
"""Records buffered in memory between writes to the output."""

_AD_PERSON_CLASSES: Final[list[str | bytes]] = ["top", "person", "organizationalPerson", "user"]
_AD_GROUP_CLASSES: Final[list[str | bytes]] = ["top", "group"]
_INET_PERSON_CLASSES: Final[list[str | bytes]] = [
    "top", "person", "organizationalPerson", "inetOrgPerson"]
_INET_GROUP_CLASSES: Final[list[str | bytes]] = ["top", "groupOfNames"]
_OU_CLASSES: Final[list[str | bytes]] = ["top", "organizationalUnit"]
_SUFFIX_CLASSES: Final[list[str | bytes]] = ["top", "dcObject", "organization"]
_EMPTY_GROUP_MEMBER: Final[list[str | bytes]] = [""]
"""groupOfNames requires a member: an empty group names the empty DN (the usual placeholder)."""


@dataclass(frozen=True, slots=True)
class LdifSummary:
    """What :func:`write_ldif` wrote."""

    flavour: Flavour
    """The flavour rendered."""
    containers: int
    """Container entries (the suffix entry and OUs)."""
    people: int
    """Person entries."""
    groups: int
    """Group entries."""
    path: str | None
    """The file written, or ``None`` for a stream."""

    @property
    def records(self) -> int:
        """All entries written."""
        return self.containers + self.people + self.groups


def write_ldif(
    directory: SampleDirectory,
    path_or_stream: str | os.PathLike[str] | IO[str] | IO[bytes],
    flavour: Flavour = "active_directory",
    *,
    version_line: bool = True,
) -> LdifSummary:
    """Write ``directory`` as LDIF to a file path or an open text or binary stream.

    The directory is checked first (:meth:`SampleDirectory.validate`): nothing is written when
    it has unknown references or duplicate DNs. Streams are left open; a path is overwritten.
    ``version_line=False`` leaves out ``version: 1`` (for ``slapadd``). Raises ``ValueError``
    for an unknown flavour.
    """
    flavour = check_flavour(flavour)
    dns = render_dns(directory, flavour)  # validate before anything is written
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = os.fspath(path_or_stream)
        with open(path, "w", encoding="ascii", newline="\n") as text:
            counts = _write(directory, flavour, dns, text, version_line)
        return LdifSummary(flavour, *counts, path=path)
    if isinstance(path_or_stream, io.TextIOBase) or hasattr(path_or_stream, "encoding"):
        counts = _write(directory, flavour, dns, cast(IO[str], path_or_stream), version_line)
        return LdifSummary(flavour, *counts, path=None)
    wrapper = io.TextIOWrapper(cast(BinaryIO, path_or_stream), encoding="ascii", newline="\n")
    try:
        counts = _write(directory, flavour, dns, wrapper, version_line)
        wrapper.flush()
    finally:
        wrapper.detach()  # leave the caller's binary stream open
    return LdifSummary(flavour, *counts, path=None)


def render_ldif(
    directory: SampleDirectory, flavour: Flavour = "active_directory", *, version_line: bool = True
) -> bytes:
    """The LDIF :func:`write_ldif` would write, as bytes."""
    buffer = io.BytesIO()
    write_ldif(directory, buffer, flavour, version_line=version_line)
    return buffer.getvalue()


def ldif_records(
    directory: SampleDirectory, flavour: Flavour = "active_directory"
) -> Iterator[tuple[str, Entry]]:
    """The records :func:`write_ldif` writes, in order, as ``(dn, entry)`` pairs.

    Validates the directory first (raises :class:`SampleDirectoryError`).
    """
    flavour = check_flavour(flavour)
    return _records(directory, flavour, render_dns(directory, flavour))


def _records(
    directory: SampleDirectory, flavour: Flavour, dns: dict[str, str]
) -> Iterator[tuple[str, Entry]]:
    yield from _container_entries(directory, LAYOUTS[flavour], flavour)
    person_entry = _ad_person if flavour == "active_directory" else _inet_person
    group_entry = _ad_group if flavour == "active_directory" else _inet_group
    for person in directory.people:
        yield dns[person.key], person_entry(person, dns, flavour)
    for group in directory.groups:
        yield dns[group.key], group_entry(group, dns, flavour)


def _write(
    directory: SampleDirectory, flavour: Flavour, dns: dict[str, str], out: IO[str],
    version_line: bool,
) -> tuple[int, int, int]:
    """Write the header and all records; return (containers, people, groups) counts."""
    comment = directory.comment or "Profile Sync sample directory"
    if not comment.isascii() or not comment.isprintable():
        raise ValueError(f"the LDIF comment must be printable ASCII, got {comment!r}")
    header = ["version: 1"] if version_line else []
    header += [f"# {line}" for line in textwrap.wrap(f"{comment} Flavour: {flavour}.",
                                                       _COLUMNS - 2)]
    out.write("\n".join(header) + "\n\n")

    parts: list[str] = []
    cache: dict[tuple[str, str | bytes], str] = {}
    records = 0
    for dn, entry in _records(directory, flavour, dns):
        _encode_record(dn, entry, parts, cache)
        records += 1
        if records % _FLUSH_EVERY == 0:
            out.write("\n".join(parts) + "\n")
            parts.clear()
    if parts:
        out.write("\n".join(parts) + "\n")
    containers = records - len(directory.people) - len(directory.groups)
    return containers, len(directory.people), len(directory.groups)


def _encode_record(
    dn: str, entry: Entry, parts: list[str], cache: dict[tuple[str, str | bytes], str]
) -> None:
    """Append the lines of one record, and an empty separator line, to ``parts``.

    Same decisions as ``ldif.LDIFWriter(cols=76, base64_attrs=BINARY_ATTRIBUTES)``, plus
    base64 for control characters (see :func:`_value_line`); longer lines fold into 76
    columns, continuation lines start with one space. Printable ASCII text takes a fast path,
    and lines of attributes with few distinct values are kept in ``cache``.
    """
    append = parts.append
    unsafe_first = _UNSAFE_FIRST
    columns = _COLUMNS
    items: list[tuple[str, list[str | bytes]]] = [("dn", [dn])]
    items += sorted(entry.items())
    for name, values in items:
        if name in _REPETITIVE:
            for value in values:
                cached = cache.get((name, value))
                if cached is None:
                    cached = cache[(name, value)] = _value_line(name, value)
                append(cached)
            continue
        forced = name.lower() in _FORCED
        for value in values:
            if (not forced and type(value) is str and value.isascii() and value.isprintable()
                    and value[:1] not in unsafe_first and value[-1:] != " "):
                line = f"{name}: {value}"
            else:
                append(_value_line(name, value))
                continue
            if len(line) <= columns:
                append(line)
            else:
                append(line[:columns])
                for start in range(columns, len(line), columns - 1):
                    append(" " + line[start:start + columns - 1])
    append("")


def _value_line(name: str, value: str | bytes) -> str:
    """The folded line(s) of one value: base64 when the attribute is binary or the UTF-8 value
    is not a plain SAFE-STRING (non-ASCII, a control character anywhere, a leading space, colon
    or ``<``, a trailing space)."""
    raw = value.encode() if isinstance(value, str) else value
    if name.lower() in _FORCED or _NEEDS_BASE64.search(raw) is not None:
        line = f"{name}:: {b64encode(raw).decode('ascii')}"
    else:
        line = f"{name}: {raw.decode('ascii')}"
    if len(line) <= _COLUMNS:
        return line
    folded = [line[:_COLUMNS]]
    folded += [" " + line[i:i + _COLUMNS - 1] for i in range(_COLUMNS, len(line), _COLUMNS - 1)]
    return "\n".join(folded)


def _container_entries(
    directory: SampleDirectory, layout: FlavourLayout, flavour: Flavour
) -> Iterator[tuple[str, Entry]]:
    """The suffix entry (inetOrgPerson only) and every OU holding an object, parents first."""
    paths: dict[Container, None] = {}
    used = {("person", p.container) for p in directory.people}
    used |= {("group", g.container) for g in directory.groups}
    if flavour == "inetorgperson":
        used |= {("person", ()), ("group", ())}
    for kind, container in used:
        path = layout.full_path(kind, container)  # type: ignore[arg-type]
        for depth in range(1, len(path) + 1):
            paths[path[:depth]] = None
    if flavour == "inetorgperson":
        name = layout.suffix.split(",", 1)[0].split("=", 1)[1]
        yield layout.suffix, {"objectClass": _SUFFIX_CLASSES, "dc": [name], "o": [name.title()]}
    seen: set[str] = set()
    for path in sorted(paths):
        dn = layout.container_dn(path)
        if dn.casefold() in seen:  # OU names differing only in case are one entry
            continue
        seen.add(dn.casefold())
        yield dn, {"objectClass": _OU_CLASSES, "ou": [path[-1]]}


def _manager_dn(person: Person, dns: dict[str, str], flavour: Flavour) -> str | None:
    if person.manager_key is not None:
        return dns[person.manager_key]
    if person.dangling_manager is not None:
        return object_dn(person.dangling_manager, flavour)
    return None


def _member_dns(group: Group, dns: dict[str, str], flavour: Flavour) -> list[str | bytes]:
    members: list[str | bytes] = [dns[key] for key in group.member_keys]
    members += [object_dn(ref, flavour) for ref in group.dangling_members]
    return members


def _ad_person(person: Person, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``user`` entry with the attributes of the SharePoint default property mapping."""
    entry: Entry = {
        "objectClass": _AD_PERSON_CLASSES,
        "cn": [person.cn],
        "sAMAccountName": [person.sam_account_name],
        "userAccountControl": [str(person.user_account_control)],
        "objectGUID": [person.guid],
    }
    optional = (
        ("userPrincipalName", person.user_principal_name),
        ("displayName", person.display_name),
        ("givenName", person.given_name),
        ("sn", person.surname),
        ("telephoneNumber", person.telephone_number),
        ("mail", person.mail),
        ("physicalDeliveryOfficeName", person.office),
        ("title", person.title),
        ("department", person.department),
        ("wWWHomePage", person.web_page),
        ("preferredLanguage", person.preferred_language),
        ("employeeID", person.employee_id),
        ("manager", _manager_dn(person, dns, flavour)),
    )
    for name, value in optional:
        if value is not None:
            entry[name] = [value]
    if person.proxy_addresses:
        entry["proxyAddresses"] = list(person.proxy_addresses)
    if person.hide_from_address_lists is not None:
        entry["msExchHideFromAddressList"] = ["TRUE" if person.hide_from_address_lists
                                              else "FALSE"]
    if person.photo is not None:
        entry["thumbnailPhoto"] = [person.photo]
    return entry


def _inet_person(person: Person, dns: dict[str, str], flavour: Flavour) -> Entry:
    """An ``inetOrgPerson`` entry; ``sn`` falls back to ``cn`` (the schema requires it)."""
    entry: Entry = {
        "objectClass": _INET_PERSON_CLASSES,
        "cn": [person.cn],
        "sn": [person.surname or person.cn],
        "uid": [person.sam_account_name],
    }
    optional = (
        ("givenName", person.given_name),
        ("displayName", person.display_name),
        ("mail", person.mail),
        ("telephoneNumber", person.telephone_number),
        ("title", person.title),
        ("departmentNumber", person.department),
        ("roomNumber", person.office),
        ("preferredLanguage", person.preferred_language),
        ("labeledURI", person.web_page),
        ("employeeNumber", person.employee_id),
        ("manager", _manager_dn(person, dns, flavour)),
    )
    for name, value in optional:
        if value is not None:
            entry[name] = [value]
    if person.photo is not None:
        entry["jpegPhoto"] = [person.photo]
    return entry


def _ad_group(group: Group, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``group`` entry; members are DNs of people, groups and nobody."""
    entry: Entry = {
        "objectClass": _AD_GROUP_CLASSES,
        "cn": [group.cn],
        "sAMAccountName": [group.sam_account_name],
        "groupType": [str(group.group_type)],
        "objectGUID": [group.guid],
    }
    if group.description is not None:
        entry["description"] = [group.description]
    members = _member_dns(group, dns, flavour)
    if members:
        entry["member"] = members
    return entry


def _inet_group(group: Group, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``groupOfNames`` entry; an empty group gets the empty DN as its only member."""
    entry: Entry = {
        "objectClass": _INET_GROUP_CLASSES,
        "cn": [group.cn],
        "member": _member_dns(group, dns, flavour) or _EMPTY_GROUP_MEMBER,
    }
    if group.description is not None:
        entry["description"] = [group.description]
    return entry
