"""Render a :class:`SampleDirectory` as RFC 2849 LDIF content records.

Encoding is python-ldap's :class:`ldif.LDIFWriter`: it base64-encodes (``::``) every value that
RFC 2849 does not allow as a plain SAFE-STRING (non-ASCII, NUL/CR/LF, a leading space, colon or
``<``, a trailing space) and folds lines at 76 columns. Binary attributes (GUIDs, photos) are
always base64. DNs are escaped per RFC 4514 by the model. The output is pure ASCII.

Record order: the container entries (parents first), then people, then groups, each in list
order. Both flavours emit containers; the ``active_directory`` importer ignores them, the
``inetorgperson`` file also carries the suffix entry so ``slapadd`` can load it into an empty
database.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Final

import ldif

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

__all__ = ["LdifSummary", "render_ldif", "write_ldif"]

Entry = dict[str, list[bytes]]

_COLUMNS: Final = 76
_BINARY_ATTRIBUTES: Final = ("objectGUID", "thumbnailPhoto", "jpegPhoto")
"""Always base64, even when the bytes happen to be printable."""
_FLUSH_EVERY: Final = 2000
"""Records buffered in memory between writes to the output."""

_AD_PERSON_CLASSES: Final = [b"top", b"person", b"organizationalPerson", b"user"]
_AD_GROUP_CLASSES: Final = [b"top", b"group"]
_INET_PERSON_CLASSES: Final = [b"top", b"person", b"organizationalPerson", b"inetOrgPerson"]
_INET_GROUP_CLASSES: Final = [b"top", b"groupOfNames"]
_OU_CLASSES: Final = [b"top", b"organizationalUnit"]
_SUFFIX_CLASSES: Final = [b"top", b"dcObject", b"organization"]
_EMPTY_GROUP_MEMBER: Final = [b""]
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


class _Chunks:
    """A write-only text sink that collects strings; cheaper than many small file writes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.write: Callable[[str], object] = self.parts.append


def write_ldif(
    directory: SampleDirectory,
    path_or_stream: str | os.PathLike[str] | IO[str] | IO[bytes],
    flavour: Flavour = "active_directory",
) -> LdifSummary:
    """Write ``directory`` as LDIF to a file path or an open text or binary stream.

    The directory is checked first (:meth:`SampleDirectory.validate`): nothing is written when
    it has unknown references or duplicate DNs. Streams are left open; a path is overwritten.
    Raises ``ValueError`` for an unknown flavour.
    """
    flavour = check_flavour(flavour)
    dns = render_dns(directory, flavour)  # validates before anything is written
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = os.fspath(path_or_stream)
        with open(path, "w", encoding="ascii", newline="\n") as text:
            counts = _write(directory, dns, flavour, text)
        return LdifSummary(flavour, *counts, path=path)
    if isinstance(path_or_stream, io.TextIOBase) or hasattr(path_or_stream, "encoding"):
        counts = _write(directory, dns, flavour, path_or_stream)  # type: ignore[arg-type]
        return LdifSummary(flavour, *counts, path=None)
    wrapper = io.TextIOWrapper(path_or_stream, encoding="ascii", newline="\n")  # type: ignore[arg-type]
    try:
        counts = _write(directory, dns, flavour, wrapper)
        wrapper.flush()
    finally:
        wrapper.detach()  # leave the caller's binary stream open
    return LdifSummary(flavour, *counts, path=None)


def render_ldif(directory: SampleDirectory, flavour: Flavour = "active_directory") -> bytes:
    """The LDIF :func:`write_ldif` would write, as bytes."""
    buffer = io.BytesIO()
    write_ldif(directory, buffer, flavour)
    return buffer.getvalue()


def _write(
    directory: SampleDirectory, dns: dict[str, str], flavour: Flavour, out: IO[str]
) -> tuple[int, int, int]:
    """Write the header and all records; return (containers, people, groups) counts."""
    layout = LAYOUTS[flavour]
    comment = directory.comment or "Profile Sync sample directory"
    if not comment.isascii():
        raise ValueError(f"the LDIF comment must be ASCII, got {comment!r}")
    header = ["version: 1"]
    header += [f"# {line}" for line in textwrap.wrap(f"{comment} Flavour: {flavour}.",
                                                       _COLUMNS - 2)]
    out.write("\n".join(header) + "\n\n")

    chunks = _Chunks()
    writer = ldif.LDIFWriter(chunks, base64_attrs=list(_BINARY_ATTRIBUTES),
                             cols=_COLUMNS, line_sep="\n")
    containers = 0
    for dn, entry in _container_entries(directory, layout, flavour):
        writer.unparse(dn, entry)
        containers += 1
    person_entry = _ad_person if flavour == "active_directory" else _inet_person
    group_entry = _ad_group if flavour == "active_directory" else _inet_group
    for number, person in enumerate(directory.people, start=1):
        writer.unparse(dns[person.key], person_entry(person, dns, flavour))
        if number % _FLUSH_EVERY == 0:
            _flush(chunks, out)
    for group in directory.groups:
        writer.unparse(dns[group.key], group_entry(group, dns, flavour))
    _flush(chunks, out)
    return containers, len(directory.people), len(directory.groups)


def _flush(chunks: _Chunks, out: IO[str]) -> None:
    out.write("".join(chunks.parts))
    chunks.parts.clear()


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
        yield layout.suffix, {
            "objectClass": _SUFFIX_CLASSES,
            "dc": [name.encode()],
            "o": [name.title().encode()],
        }
    seen: set[str] = set()
    for path in sorted(paths):
        dn = layout.container_dn(path)
        if dn.casefold() in seen:  # OU names differing only in case are one entry
            continue
        seen.add(dn.casefold())
        yield dn, {"objectClass": _OU_CLASSES, "ou": [path[-1].encode()]}


def _manager_dn(person: Person, dns: dict[str, str], flavour: Flavour) -> str | None:
    if person.manager_key is not None:
        return dns[person.manager_key]
    if person.dangling_manager is not None:
        return object_dn(person.dangling_manager, flavour)
    return None


def _member_dns(group: Group, dns: dict[str, str], flavour: Flavour) -> list[bytes]:
    members = [dns[key].encode() for key in group.member_keys]
    members += [object_dn(ref, flavour).encode() for ref in group.dangling_members]
    return members


def _ad_person(person: Person, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``user`` entry with the attributes of the SharePoint default property mapping."""
    entry: Entry = {
        "objectClass": _AD_PERSON_CLASSES,
        "cn": [person.cn.encode()],
        "sAMAccountName": [person.sam_account_name.encode()],
        "userAccountControl": [str(person.user_account_control).encode()],
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
            entry[name] = [value.encode()]
    if person.proxy_addresses:
        entry["proxyAddresses"] = [a.encode() for a in person.proxy_addresses]
    if person.hide_from_address_lists is not None:
        entry["msExchHideFromAddressList"] = [b"TRUE" if person.hide_from_address_lists
                                              else b"FALSE"]
    if person.photo is not None:
        entry["thumbnailPhoto"] = [person.photo]
    return entry


def _inet_person(person: Person, dns: dict[str, str], flavour: Flavour) -> Entry:
    """An ``inetOrgPerson`` entry; ``sn`` falls back to ``cn`` (the schema requires it)."""
    entry: Entry = {
        "objectClass": _INET_PERSON_CLASSES,
        "cn": [person.cn.encode()],
        "sn": [(person.surname or person.cn).encode()],
        "uid": [person.sam_account_name.encode()],
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
            entry[name] = [value.encode()]
    if person.photo is not None:
        entry["jpegPhoto"] = [person.photo]
    return entry


def _ad_group(group: Group, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``group`` entry; members are DNs of people, groups and nobody."""
    entry: Entry = {
        "objectClass": _AD_GROUP_CLASSES,
        "cn": [group.cn.encode()],
        "sAMAccountName": [group.sam_account_name.encode()],
        "groupType": [str(group.group_type).encode()],
        "objectGUID": [group.guid],
    }
    if group.description is not None:
        entry["description"] = [group.description.encode()]
    members = _member_dns(group, dns, flavour)
    if members:
        entry["member"] = members
    return entry


def _inet_group(group: Group, dns: dict[str, str], flavour: Flavour) -> Entry:
    """A ``groupOfNames`` entry; an empty group gets the empty DN as its only member."""
    entry: Entry = {
        "objectClass": _INET_GROUP_CLASSES,
        "cn": [group.cn.encode()],
        "member": _member_dns(group, dns, flavour) or _EMPTY_GROUP_MEMBER,
    }
    if group.description is not None:
        entry["description"] = [group.description.encode()]
    return entry
