"""Mapping presets and the resolution of a directory connection against its preset.

``resolve_directory`` is the one place where defaults, preset and overrides are
combined; everything downstream reads a :class:`ResolvedDirectory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from profile_sync.config.settings import DirectoryConnection, PresetName, PropertyMapping

M = PropertyMapping


@dataclass(frozen=True)
class Preset:
    """Defaults for one kind of directory."""

    mappings: Mapping[str, PropertyMapping]
    person_object_classes: tuple[str, ...]
    group_object_classes: tuple[str, ...]
    excluded_object_classes: tuple[str, ...]
    anchor: str
    disabled_attribute: str | None
    """Attribute tested with bit 0x2 for disabled accounts (AD ``userAccountControl``)."""
    binary_attributes: tuple[str, ...]
    multi_valued_attributes: tuple[str, ...]
    group_name_attribute: str


PRESETS: dict[PresetName, Preset] = {
    # The SharePoint Online default property mapping table (DESIGN §3).
    "active_directory": Preset(
        mappings=MappingProxyType(
            {
                "account_name": M(source="userPrincipalName", transform="account_name"),
                "user_name": M(source="userPrincipalName"),
                "user_principal_name": M(source="userPrincipalName"),
                "preferred_name": M(source="displayName"),
                "first_name": M(source="givenName"),
                "last_name": M(source="sn"),
                "work_phone": M(source="telephoneNumber"),
                "work_email": M(source="proxyAddresses", transform="proxy_primary_smtp"),
                "sip_address": M(source="proxyAddresses", transform="proxy_sip"),
                "office": M(source="physicalDeliveryOfficeName"),
                "title": M(source="title"),
                "job_title": M(source="title"),
                "department": M(source="department"),
                "public_site_redirect": M(source="wWWHomePage"),
                "language_preferences": M(source="preferredLanguage"),
                "hide_from_address_lists": M(source="msExchHideFromAddressList", transform="boolean"),
                "manager": M(source="manager", transform="reference"),
                "picture": M(source="thumbnailPhoto"),
            }
        ),
        person_object_classes=("user",),
        group_object_classes=("group",),
        excluded_object_classes=("computer",),
        anchor="objectGUID",
        disabled_attribute="userAccountControl",
        binary_attributes=("objectGUID", "objectSid", "thumbnailPhoto", "jpegPhoto", "msExchMailboxGuid"),
        multi_valued_attributes=("objectClass", "proxyAddresses", "member", "memberOf", "otherTelephone"),
        group_name_attribute="cn",
    ),
    # OpenLDAP and other RFC 2798 directories.
    "inetorgperson": Preset(
        mappings=MappingProxyType(
            {
                "account_name": M(source="mail", transform="account_name"),
                "user_name": M(source="uid", transform="first_value"),
                "user_principal_name": M(source="mail", transform="first_value"),
                "preferred_name": M(source="displayName"),
                "first_name": M(source="givenName", transform="first_value"),
                "last_name": M(source="sn", transform="first_value"),
                "work_phone": M(source="telephoneNumber", transform="first_value"),
                "work_email": M(source="mail", transform="first_value"),
                "office": M(source="roomNumber", transform="first_value"),
                "title": M(source="title", transform="first_value"),
                "job_title": M(source="title", transform="first_value"),
                "department": M(source="departmentNumber", transform="first_value"),
                "public_site_redirect": M(source="labeledURI", transform="first_value"),
                "language_preferences": M(source="preferredLanguage"),
                "manager": M(source="manager", transform="reference"),
                "picture": M(source="jpegPhoto", transform="first_value"),
            }
        ),
        person_object_classes=("inetOrgPerson", "person"),
        group_object_classes=("groupOfNames", "groupOfUniqueNames"),
        excluded_object_classes=(),
        anchor="entryUUID",
        disabled_attribute=None,
        binary_attributes=("jpegPhoto", "userCertificate", "photo"),
        multi_valued_attributes=(
            "objectClass", "member", "uniqueMember", "mail", "uid", "cn", "sn", "givenName",
            "telephoneNumber", "title", "roomNumber", "departmentNumber", "labeledURI", "jpegPhoto",
        ),
        group_name_attribute="cn",
    ),
}


@dataclass(frozen=True)
class ResolvedDirectory:
    """A directory connection with its preset applied; attribute names lower-cased."""

    connection: DirectoryConnection
    mappings: Mapping[str, PropertyMapping]
    person_object_classes: frozenset[str]
    group_object_classes: frozenset[str]
    excluded_object_classes: frozenset[str]
    anchor: str
    disabled_attribute: str | None
    binary_attributes: frozenset[str]
    multi_valued_attributes: frozenset[str]
    group_name_attribute: str
    member_attributes: tuple[str, ...] = ("member", "uniquemember")
    attributes: tuple[str, ...] = field(default=())
    """Every attribute the engine reads from this directory (lower case)."""

    @property
    def name(self) -> str:
        return self.connection.name


def resolve_directory(conn: DirectoryConnection) -> ResolvedDirectory:
    """Combine ``conn`` with its preset; the only place defaults are applied."""
    preset = PRESETS[conn.preset]
    mappings: dict[str, PropertyMapping] = dict(preset.mappings)
    for prop, mapping in conn.mappings.items():
        if mapping is None:
            mappings.pop(prop, None)
        else:
            mappings[prop] = mapping

    def low(values: tuple[str, ...] | None, default: tuple[str, ...]) -> frozenset[str]:
        return frozenset(v.lower() for v in (default if values is None else values))

    anchor = (conn.anchor or preset.anchor).lower()
    disabled = preset.disabled_attribute.lower() if preset.disabled_attribute else None
    wanted = {"objectclass", *(m.source.lower() for m in mappings.values()), "member", "uniquemember",
              preset.group_name_attribute.lower()}
    if anchor != "dn":
        wanted.add(anchor)
    if disabled:
        wanted.add(disabled)
    wanted |= {r.source.lower() for r in conn.join}
    if conn.filter:
        from profile_sync.directory.ldap_filter import filter_attributes

        wanted |= filter_attributes(conn.filter) - {"dn", "distinguishedname"}
    return ResolvedDirectory(
        connection=conn,
        mappings=MappingProxyType(mappings),
        person_object_classes=low(conn.person_object_classes, preset.person_object_classes),
        group_object_classes=low(conn.group_object_classes, preset.group_object_classes),
        excluded_object_classes=low(conn.excluded_object_classes, preset.excluded_object_classes),
        anchor=anchor,
        disabled_attribute=disabled,
        binary_attributes=frozenset(a.lower() for a in preset.binary_attributes),
        multi_valued_attributes=frozenset(a.lower() for a in preset.multi_valued_attributes),
        group_name_attribute=preset.group_name_attribute.lower(),
        attributes=tuple(sorted(wanted)),
    )
