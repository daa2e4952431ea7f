"""Reading an LDAP directory (Active Directory, OpenLDAP, other LDAP servers) into entries.

Full import: for each selected container, one paged subtree search for the person and group object
classes, asking for exactly the attributes the engine maps (operational anchors like ``entryUUID``
included, since they are asked for by name). Multi-valued ``member`` is read with ranged retrieval on
AD (``member;range=0-1499`` in the search, then ``member;range=1500-2999`` … per large group until
a range ends in ``*``), whether or not the server enforces ranges. Values stay raw bytes;
``objectGUID`` stays its 16 bytes (the connector space formats anchors).

Delta import: :mod:`.active_directory` (DirSync, falling back to uSNChanged) and :mod:`.openldap`
(entryCSN against contextCSN, deletes from the accesslog). Other servers have no delta: their
watermark says so and ``read_delta`` raises :class:`DeltaStateInvalid`, so the engine reads in full.

The reader sits behind the small interface of ``directory.entries`` (entries in, frames out). Its
searches go through python-ldap (``client`` → ``libldap``: libldap decodes the BER in C, 5–6× ldap3's
rate); a full read takes whole pages of ``(dn, attributes)`` and makes them entries without further
per-attribute work, and the connector space decodes the values column by column.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Iterable, Iterator

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.dn import is_within, normalize_dn
from profile_sync.directory.entries import DeltaRead, DeltaStateInvalid, Entry, Watermark
from profile_sync.directory.errors import DirectoryError
from profile_sync.directory.ldap.client import LdapClient, RawAttributes, SearchHit
from profile_sync.directory.ldap.config import LdapConnectionSettings, ServerType

log = logging.getLogger(__name__)

AD_CAPABILITY = b"1.2.840.113556.1.4.800"
ROOT_DSE_ATTRIBUTES = [
    "objectClass", "supportedCapabilities", "namingContexts", "defaultNamingContext", "highestCommittedUSN",
    "dsServiceName", "dnsHostName", "supportedControl", "vendorName",
]
RANGED_ATTRIBUTES = ("member", "uniquemember")
"""Multi-valued link attributes read with ranged retrieval on AD."""


def escape_value(value: str) -> str:
    from ldap3.utils.conv import escape_filter_chars

    return escape_filter_chars(value)


def or_filter(attribute: str, values: Iterable[str]) -> str:
    parts = [f"({attribute}={escape_value(v)})" for v in sorted(values)]
    return parts[0] if len(parts) == 1 else f"(|{''.join(parts)})"


class LdapDirectoryReader:
    """Reads one LDAP directory connection (full and delta imports, and re-reads for confirmation)."""

    def __init__(self, directory: ResolvedDirectory, settings: LdapConnectionSettings) -> None:
        self.directory = directory
        self.settings = settings
        self.connection = directory.name
        self._server_type: ServerType | None = None
        self._root_dse: RawAttributes | None = None

    # -- shape of the searches ------------------------------------------------------------
    @property
    def base_dns(self) -> list[str]:
        """The selected containers, without those inside another selected one (no entry read twice)."""
        by_norm: dict[str, str] = {}
        for c in self.directory.connection.containers:
            by_norm.setdefault(normalize_dn(c), c)
        return [c for n, c in by_norm.items() if not any(o != n and is_within(n, o) for o in by_norm)]

    @property
    def object_filter(self) -> str:
        """People and groups by object class; excluded classes left out. The connection's own filter is
        applied by the engine (as for LDIF), so an object that stops matching is seen leaving scope."""
        d = self.directory
        wanted = or_filter("objectClass", d.person_object_classes | d.group_object_classes)
        if d.excluded_object_classes:
            return f"(&{wanted}(!{or_filter('objectClass', d.excluded_object_classes)}))"
        return wanted

    def scope_key(self, server_type: str) -> str:
        """Hash of what a delta depends on besides the attributes: containers, classes, server type."""
        d = self.directory
        doc = {"bases": sorted(normalize_dn(b) for b in self.base_dns), "server": server_type,
               "classes": [sorted(d.person_object_classes), sorted(d.group_object_classes),
                           sorted(d.excluded_object_classes)]}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def request_attributes(self, attributes: Iterable[str], server_type: str) -> list[str]:
        """The attribute list sent to the server: ranged names for member attributes on AD."""
        names = sorted({a.lower() for a in attributes} - {"dn", "distinguishedname"} | {"objectclass"})
        if server_type != "active_directory":
            return names
        step = self.settings.range_size
        return [f"{a};range=0-{step - 1}" if a in RANGED_ATTRIBUTES else a for a in names]

    # -- connection -----------------------------------------------------------------------------
    def client(self) -> LdapClient:
        return LdapClient(self.settings)

    def server_type(self, client: LdapClient) -> ServerType:
        """The configured server type, or what the rootDSE says (AD capability / OpenLDAProotDSE)."""
        if self._server_type is None:
            dse = self.root_dse(client, refresh=False)
            if self.settings.server_type != "auto":
                self._server_type = self.settings.server_type
            elif AD_CAPABILITY in dse.get("supportedcapabilities", []):
                self._server_type = "active_directory"
            elif b"openldaprootdse" in [c.lower() for c in dse.get("objectclass", [])]:
                self._server_type = "openldap"
            else:
                self._server_type = "generic"
        return self._server_type

    def root_dse(self, client: LdapClient, refresh: bool = True) -> RawAttributes:
        if refresh or self._root_dse is None:
            self._root_dse = client.root_dse(ROOT_DSE_ATTRIBUTES)
        return self._root_dse

    def to_entry(self, client: LdapClient, hit: SearchHit, position: int) -> Entry:
        attributes = client.complete_ranges(hit.dn, hit.attributes)
        return Entry(hit.dn, attributes, position)

    # -- full import ------------------------------------------------------------------------------
    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Every person and group under the selected containers (paged; ranged ``member`` on AD).

        Containers are read one after the other: reading several at once gave no gain on a 2-core
        machine against slapd (the server's and the decoding's CPU compete; ``tests/bench``)."""
        wanted = attributes if attributes is not None else frozenset(self.directory.attributes)
        with self.client() as client:
            server_type = self.server_type(client)
            request = self.request_attributes(wanted, server_type)
            ranged = server_type == "active_directory"  # only AD is asked for ranges (request_attributes)
            position = 1
            for base in self.base_dns:
                # Reading ahead overlaps the server's work with the decoding; not where ranges are read between
                # pages (AD).
                for page in client.search_pages(base, self.object_filter, request, ahead=not ranged):
                    if not page:
                        continue
                    if ranged:
                        page = [(dn, client.complete_ranges(dn, values)) for dn, values in page]
                    dns, values = zip(*page)
                    yield from map(Entry, dns, values, range(position, position + len(page)))
                    position += len(page)

    def read_objects(self, dns: Iterable[str], attributes: frozenset[str] | None = None) -> list[Entry]:
        """Re-read objects by DN (the confirming import after a write-back); missing ones are left out."""
        wanted = attributes if attributes is not None else frozenset(self.directory.attributes)
        out: list[Entry] = []
        with self.client() as client:
            request = self.request_attributes(wanted, self.server_type(client))
            for i, dn in enumerate(dns, 1):
                got = client.read(dn, request)
                if got is not None:
                    out.append(self.to_entry(client, SearchHit(dn, got), i))
        return out

    # -- delta import -----------------------------------------------------------------------------
    def _delta(self, client: LdapClient):  # noqa: ANN202
        server_type = self.server_type(client)
        method = self.settings.delta_method
        if server_type == "active_directory" and method in ("auto", "dirsync", "usn"):
            from profile_sync.directory.ldap.active_directory import ActiveDirectoryDelta

            return ActiveDirectoryDelta(self, client)
        if server_type == "openldap" and method in ("auto", "accesslog"):
            from profile_sync.directory.ldap.openldap import OpenLdapDelta

            return OpenLdapDelta(self, client)
        if method not in ("auto", "none"):
            raise DirectoryError(self.connection, f"delta_method {method!r} does not work with a {server_type} "
                                                  "server; use 'auto'")
        return None

    def watermark(self) -> Watermark:
        """The current delta state. Take it before a full read: changes during the read come again next time."""
        with self.client() as client:
            delta = self._delta(client)
            server_type = self.server_type(client)
            if delta is None:
                return {"kind": "none", "server_type": server_type, "scope": self.scope_key(server_type)}
            return delta.watermark()

    def read_delta(self, attributes: frozenset[str], watermark: Watermark) -> DeltaRead:
        """What changed since ``watermark``; DeltaStateInvalid when it cannot be used (full import then)."""
        with self.client() as client:
            server_type = self.server_type(client)
            kind = watermark.get("kind") if isinstance(watermark, dict) else None
            if kind != server_type:
                raise DeltaStateInvalid(self.connection, f"the watermark is for a {kind or 'different'} "
                                                         f"connection, the server is {server_type}")
            if watermark.get("scope") != self.scope_key(server_type):
                raise DeltaStateInvalid(self.connection, "containers or object classes changed since the watermark")
            delta = self._delta(client)
            if delta is None:
                raise DeltaStateInvalid(self.connection, f"a {server_type} server offers no delta Profile Sync "
                                                         "can read (DirSync, uSNChanged, entryCSN + accesslog)")
            return delta.read_delta(attributes, watermark)
