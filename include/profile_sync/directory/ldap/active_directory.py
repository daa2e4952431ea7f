"""Delta imports from Active Directory: DirSync, with a uSNChanged fallback.

**DirSync** (LDAP_SERVER_DIRSYNC_OID) is the primary method, as FIM and Entra Connect use it: one
search from the domain's naming context (DirSync accepts nothing else as base) returns the objects
whose requested attributes changed since the cookie, tombstones of deleted objects included
(``isDeleted`` is asked for: Samba returns it only then). DirSync returns only the *changed*
attributes, so changed objects are re-read by objectGUID with every mapped attribute (and ranged
``member``). Deletes come as tombstones under ``CN=Deleted Objects``; their anchor is the
tombstone's objectGUID, which never changes.

The first cookie is taken before a full read by a DirSync that matches nothing (a zero objectGUID):
a DirSync cookie is the DC's USN high-water mark and up-to-dateness vector, not a result set, so it
is valid for the real filter later (Samba's dirsync module turns it into ``uSNChanged>=N+1``).

DirSync needs the "Replicating Directory Changes" right (or ``dirsync_object_security``). When the
DC refuses it for lack of rights, the reader falls back to **uSNChanged**: a paged search of the
naming context for ``uSNChanged>highestCommittedUSN`` of the watermark, and the tombstones with the
show-deleted control (the account must be able to list ``CN=Deleted Objects``; if it cannot,
deletes would be missed, so the delta is refused and a full import runs instead).

USNs are per domain controller: the watermark records the DC's ``invocationId`` (from the rootDSE's
``dsServiceName`` → its nTDSDSA object) and host name. Another DC answering, or the same DC restored
from a backup (new invocationId), makes the watermark invalid: a full import, with the reason.
"""

from __future__ import annotations

import base64
import logging
import struct
import uuid
from typing import TYPE_CHECKING

from profile_sync.directory.entries import DeltaRead, DeltaStateInvalid, Entry, Watermark
from profile_sync.directory.errors import DirectoryError
from profile_sync.directory.ldap.client import SHOW_DELETED, DirSyncRefused, LdapClient, SearchHit

if TYPE_CHECKING:
    from profile_sync.directory.ldap.reader import LdapDirectoryReader

log = logging.getLogger(__name__)

NOTHING = "(objectGUID=" + "\\00" * 16 + ")"
"""A filter no object matches: a DirSync with it returns only a cookie."""
GUIDS_PER_SEARCH = 200
_RIGHTS_REFUSED = {50}  # insufficientAccessRights: no "Replicating Directory Changes"


def guid_text(raw: bytes) -> str:
    """objectGUID bytes → canonical GUID string (as the connector space writes anchors)."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_filter_value(raw: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in raw)


def parse_cookie(cookie: bytes) -> dict[str, object] | None:
    """The USN and invocationId inside a DirSync cookie (MS-ADTS "Cookie"), or None if it is not one."""
    if len(cookie) < 68 or cookie[:4] != b"MSDS":
        return None
    usn = struct.unpack_from("<Q", cookie, 28)[0]
    return {"highest_usn": usn, "invocation_id": str(uuid.UUID(bytes_le=cookie[52:68]))}


class ActiveDirectoryDelta:
    """Watermark and delta read of one AD connection."""

    def __init__(self, reader: "LdapDirectoryReader", client: LdapClient) -> None:
        self.reader = reader
        self.client = client
        self.connection = reader.connection
        self.settings = reader.settings

    def _invalid(self, reason: str) -> DeltaStateInvalid:
        return DeltaStateInvalid(self.connection, reason)

    # -- the DC's identity --------------------------------------------------------------------
    def _dc(self) -> dict[str, object]:
        dse = self.reader.root_dse(self.client)

        def one(name: str) -> str:
            values = dse.get(name.lower())
            if not values:
                raise DirectoryError(self.connection, f"the rootDSE has no {name}: is this an AD domain controller?")
            return values[0].decode("utf-8")

        service = one("dsServiceName")
        got = self.client.read(service, ["invocationId"])
        if not got or not got.get("invocationid"):
            raise DirectoryError(self.connection, f"cannot read invocationId of {service!r}")
        return {"server": one("dnsHostName").lower(), "naming_context": one("defaultNamingContext"),
                "invocation_id": guid_text(got["invocationid"][0]), "highest_usn": int(one("highestCommittedUSN"))}

    def _naming_context(self, dc: dict[str, object]) -> str:
        """The domain naming context holding the containers (DirSync accepts only a naming context)."""
        from profile_sync.directory.dn import is_within, normalize_dn

        contexts = [c.decode("utf-8") for c in self.reader.root_dse(self.client, refresh=False).get("namingcontexts", [])]
        bases = [normalize_dn(b) for b in self.reader.base_dns]
        fits = [c for c in contexts if all(is_within(b, normalize_dn(c)) for b in bases)]
        return max(fits, key=len) if fits else str(dc["naming_context"])

    # -- watermark -------------------------------------------------------------------------------
    def watermark(self) -> Watermark:
        dc = self._dc()
        nc = self._naming_context(dc)
        method, cookie, note = "usn", None, None
        if self.settings.delta_method in ("auto", "dirsync"):
            try:
                _, raw = self.client.dir_sync(nc, NOTHING, ["objectGUID"], None,
                                              self.settings.dirsync_object_security)
                method, cookie = "dirsync", base64.b64encode(raw).decode("ascii")
            except DirSyncRefused as exc:
                if self.settings.delta_method == "dirsync":
                    raise DirectoryError(self.connection, f"DirSync refused: {exc}") from None
                note = f"DirSync refused ({exc}); using uSNChanged"
                log.warning("directory %r: %s", self.connection, note)
        out: Watermark = {"kind": "active_directory", "server": dc["server"], "naming_context": nc,
                          "invocation_id": dc["invocation_id"], "highest_usn": dc["highest_usn"],
                          "method": method, "dirsync_cookie": cookie,
                          "scope": self.reader.scope_key("active_directory")}
        if note:
            out["note"] = note
        return out

    # -- delta -----------------------------------------------------------------------------------
    def read_delta(self, attributes: frozenset[str], watermark: Watermark) -> DeltaRead:
        dc = self._dc()
        if dc["server"] != watermark.get("server"):
            raise self._invalid(f"another domain controller answered ({dc['server']}, the watermark is from "
                                f"{watermark.get('server')}); USNs are per DC")
        if dc["invocation_id"] != watermark.get("invocation_id"):
            raise self._invalid(f"the domain controller's invocationId changed from {watermark.get('invocation_id')} "
                                f"to {dc['invocation_id']} (restored from a backup?)")
        nc = str(watermark.get("naming_context") or self._naming_context(dc))
        new: Watermark = {**watermark, "highest_usn": dc["highest_usn"]}
        new.pop("note", None)
        cookie_text = watermark.get("dirsync_cookie")
        if watermark.get("method") == "dirsync" and cookie_text:
            try:
                return self._dirsync(attributes, watermark, new, nc, base64.b64decode(cookie_text))
            except DirSyncRefused as exc:
                if exc.code not in _RIGHTS_REFUSED or self.settings.delta_method == "dirsync":
                    raise self._invalid(f"the DirSync cookie was refused: {exc}") from None
                log.warning("directory %r: DirSync refused (%s); falling back to uSNChanged", self.connection, exc)
                new.update(method="usn", dirsync_cookie=None, note=f"DirSync refused ({exc}); using uSNChanged")
        return self._usn(attributes, watermark, new, nc)

    def _dirsync(self, attributes: frozenset[str], old: Watermark, new: Watermark, nc: str,
                 cookie: bytes) -> DeltaRead:
        inside = parse_cookie(cookie)
        if inside is None:
            raise self._invalid("the stored DirSync cookie is not a DirSync cookie")
        if inside["invocation_id"] != old.get("invocation_id"):
            raise self._invalid(f"the DirSync cookie is from invocationId {inside['invocation_id']}, the watermark "
                                f"from {old.get('invocation_id')}")
        # Ask for every mapped attribute (DirSync reports an object only when one of them changed), and
        # for name (renames and moves) and isDeleted (tombstones; Samba sends it only when asked).
        request = sorted({a.lower() for a in attributes} - {"dn", "distinguishedname"}
                         | {"objectguid", "isdeleted", "name", "objectclass"})
        hits, new_cookie = self.client.dir_sync(nc, self.reader.object_filter, request, cookie,
                                                self.settings.dirsync_object_security)
        deleted: list[bytes] = []
        changed: list[bytes] = []
        for hit in hits:
            guids = hit.attributes.get("objectguid")
            if not guids:
                continue
            if _is_deleted(hit):
                deleted.append(guids[0])
            else:
                changed.append(guids[0])
        entries = self._read_by_guid(attributes, nc, changed)
        new["dirsync_cookie"] = base64.b64encode(new_cookie).decode("ascii") if new_cookie else old["dirsync_cookie"]
        return self._result(entries, deleted, [], new)

    def _usn(self, attributes: frozenset[str], old: Watermark, new: Watermark, nc: str) -> DeltaRead:
        since = int(old.get("highest_usn") or 0) + 1
        deleted_objects = f"CN=Deleted Objects,{nc}"
        # An account that may not read Deleted Objects sees the container's name at most (Samba) or nothing
        # (Windows): tombstones would be invisible and deletes missed, so no delta then.
        container = self.client.read(deleted_objects, ["objectGUID"], controls=[(SHOW_DELETED, True, None)])
        if not container or not container.get("objectguid"):
            raise self._invalid(f"this account cannot read {deleted_objects!r}, so deletes would be missed; grant it "
                                "'Replicating Directory Changes' (for DirSync) or list and read rights on Deleted "
                                "Objects (for uSNChanged)")
        request = self.reader.request_attributes(attributes, "active_directory")
        entries = [self.reader.to_entry(self.client, hit, i) for i, hit in enumerate(self.client.search(
            nc, f"(&{self.reader.object_filter}(uSNChanged>={since}))", request), 1)]
        tombstones = self.client.search(
            nc, f"(&(isDeleted=TRUE)(uSNChanged>={since}){self.reader.object_filter})",
            ["objectGUID", "isDeleted", "lastKnownParent"], controls=[(SHOW_DELETED, True, None)])
        deleted = [h.attributes["objectguid"][0] for h in tombstones if h.attributes.get("objectguid")]
        return self._result(entries, deleted, [], new)

    def _read_by_guid(self, attributes: frozenset[str], nc: str, guids: list[bytes]) -> list[Entry]:
        request = self.reader.request_attributes(attributes, "active_directory")
        entries: list[Entry] = []
        unique = list(dict.fromkeys(guids))
        for i in range(0, len(unique), GUIDS_PER_SEARCH):
            chunk = unique[i:i + GUIDS_PER_SEARCH]
            parts = "".join(f"(objectGUID={guid_filter_value(g)})" for g in chunk)
            query = f"(&{self.reader.object_filter}(|{parts}))"
            for hit in self.client.search(nc, query, request):
                entries.append(self.reader.to_entry(self.client, hit, len(entries) + 1))
        return entries

    def _result(self, entries: list[Entry], deleted: list[bytes], deleted_dns: list[str],
                new: Watermark) -> DeltaRead:
        anchor = self.reader.directory.anchor
        if anchor == "objectguid":
            return DeltaRead(entries, sorted({guid_text(g) for g in deleted}), deleted_dns, new)
        # Another anchor: tombstones keep objectGUID only, so report what the engine can map (nothing).
        if deleted:
            raise self._invalid(f"{len(deleted)} object(s) were deleted, but the anchor is {anchor!r}, which "
                                "tombstones do not keep; only objectGUID anchors can follow deletes")
        return DeltaRead(entries, [], deleted_dns, new)


def _is_deleted(hit: SearchHit) -> bool:
    values = hit.attributes.get("isdeleted") or []
    return bool(values) and values[0].upper() == b"TRUE"
