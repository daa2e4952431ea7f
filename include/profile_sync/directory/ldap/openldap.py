"""Delta imports from OpenLDAP: entryCSN against contextCSN, deletes from the accesslog overlay.

**Changes**: slapd (``lastmod on``, syncprov) stamps every add, modify and rename with an
``entryCSN`` and keeps the newest in the suffix entry's ``contextCSN`` (one value per server id in
multi-provider setups). The watermark is that contextCSN; a delta is one indexed search of the
naming context for ``entryCSN>=`` the oldest stored value, keeping entries whose CSN is newer than
the stored one of the same server id. Renames and moves carry a new entryCSN, so they come back with
their new DN (an object moved out of the containers then leaves scope in the engine).

**Deletes** come from the accesslog overlay (``cn=accesslog``): ``auditDelete`` records newer than
the watermark (their ``entryCSN`` is the delete's CSN, on the same clock), with the deleted entry's
``reqEntryUUID`` (the anchor) and ``reqDN``. Why the accesslog and not RFC 4533 syncrepl: it is one
indexed search (~0.03 s), gives entryUUIDs directly, survives restarts, is already what syncprov's
session log is built from on a well-configured server (``syncprov-sessionlog-source``), and works
through ldap3, which has no syncrepl; a syncrepl refresh without a usable session log falls back to
sending every present UUID, which costs as much as comparing the full anchor set.

**Purge**: slapd's ``logpurge`` removes old records, oldest first. The watermark remembers one
recent record; if it is gone when the delta runs, records newer than the watermark may be gone too,
so the watermark is invalid (full import). A watermark taken while the log had no recent record is
trusted for ``accesslog_max_age_days`` (slapd's usual purge age). No readable accesslog → no delta.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from profile_sync.directory.entries import DeltaRead, DeltaStateInvalid, Entry, Watermark
from profile_sync.directory.errors import DirectoryError
from profile_sync.directory.ldap.client import LdapClient

if TYPE_CHECKING:
    from profile_sync.directory.ldap.reader import LdapDirectoryReader

log = logging.getLogger(__name__)

ANCHOR_WINDOWS = (timedelta(0), timedelta(minutes=5), timedelta(hours=1), timedelta(days=1))
"""How far before the watermark to look for a recent accesslog record to remember."""


def csn_sid(csn: str) -> str:
    """The server id of a CSN (``20260101120000.000000Z#000000#000#000000`` → ``000``)."""
    parts = csn.split("#")
    return parts[2] if len(parts) >= 4 else "000"


def csn_time(csn: str) -> datetime:
    return datetime.strptime(csn.split("#")[0], "%Y%m%d%H%M%S.%fZ").replace(tzinfo=timezone.utc)


def csn_at(when: datetime) -> str:
    """The smallest CSN at a time (for ``entryCSN>=`` bounds)."""
    return when.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S.%fZ") + "#000000#000#000000"


def newer(csn: str, known: dict[str, str]) -> bool:
    """True when ``csn`` is newer than the stored contextCSN of its server id (or the id is new)."""
    stored = known.get(csn_sid(csn))
    return stored is None or csn > stored


class OpenLdapDelta:
    """Watermark and delta read of one OpenLDAP connection."""

    def __init__(self, reader: "LdapDirectoryReader", client: LdapClient) -> None:
        self.reader = reader
        self.client = client
        self.connection = reader.connection
        self.settings = reader.settings
        self.accesslog = reader.settings.accesslog_base

    def _invalid(self, reason: str) -> DeltaStateInvalid:
        return DeltaStateInvalid(self.connection, reason)

    def naming_context(self) -> str:
        """The database suffix holding the containers (rootDSE namingContexts)."""
        from profile_sync.directory.dn import is_within, normalize_dn

        dse = self.reader.root_dse(self.client, refresh=False)
        contexts = [c.decode("utf-8") for c in dse.get("namingcontexts", [])]
        bases = [normalize_dn(b) for b in self.reader.base_dns]
        fits = [c for c in contexts if c and all(is_within(b, normalize_dn(c)) for b in bases)]
        if not fits:
            raise DirectoryError(self.connection, f"no naming context of the server holds {self.reader.base_dns}")
        return max(fits, key=len)

    def context_csn(self, nc: str) -> dict[str, str]:
        got = self.client.read(nc, ["contextCSN"]) or {}
        values = [v.decode("ascii") for v in got.get("contextcsn", [])]
        if not values:
            raise DirectoryError(self.connection, f"{nc!r} has no contextCSN: load the syncprov overlay (and "
                                                  "'lastmod on') on this database for delta imports")
        out: dict[str, str] = {}
        for csn in values:
            sid = csn_sid(csn)
            out[sid] = max(out.get(sid, ""), csn)
        return out

    def _accesslog_anchor(self, csns: dict[str, str]) -> dict[str, object] | None:
        """A recent accesslog record to check for purges later, or None when the log cannot be read."""
        if self.client.read(self.accesslog, ["objectClass"]) is None:
            return None
        newest = max(csn_time(c) for c in csns.values())
        record = None
        for window in ANCHOR_WINDOWS:
            hits = self.client.search(self.accesslog, f"(&(objectClass=auditWriteObject)(entryCSN>="
                                                      f"{csn_at(newest - window)}))", ["entryCSN"], scope="level")
            record = max(((h.attributes.get("entrycsn", [b""])[0], h.dn) for h in hits), default=None)
            if record is not None:
                break
        return {"base": self.accesslog, "last_record": record[1] if record else None,
                "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def watermark(self) -> Watermark:
        nc = self.naming_context()
        csns = self.context_csn(nc)
        try:
            accesslog = self._accesslog_anchor(csns)
        except DirectoryError as exc:  # no rights on the accesslog: no deletes, so no delta
            log.warning("directory %r: accesslog %r not readable (%s): delta imports will be full imports",
                        self.connection, self.accesslog, exc)
            accesslog = None
        return {"kind": "openldap", "naming_context": nc, "context_csn": csns, "accesslog": accesslog,
                "scope": self.reader.scope_key("openldap")}

    def _check_accesslog(self, accesslog: dict[str, object] | None) -> None:
        if not accesslog:
            raise self._invalid(f"no readable accesslog ({self.accesslog!r}) when the watermark was taken: deletes "
                                "cannot be read")
        record = accesslog.get("last_record")
        if record:
            if self.client.read(str(record), ["reqType"]) is None:
                raise self._invalid(f"the accesslog was purged past the watermark (record {record!r} is gone)")
            return
        taken = datetime.fromisoformat(str(accesslog.get("taken_at")))
        if datetime.now(timezone.utc) - taken > timedelta(days=self.settings.accesslog_max_age_days):
            raise self._invalid(f"the watermark is older than {self.settings.accesslog_max_age_days:g} days and the "
                                "accesslog had no record to check purges against")

    def read_delta(self, attributes: frozenset[str], watermark: Watermark) -> DeltaRead:
        nc = self.naming_context()
        if str(watermark.get("naming_context", "")).lower() != nc.lower():
            raise self._invalid(f"the naming context changed from {watermark.get('naming_context')!r} to {nc!r}")
        known: dict[str, str] = dict(watermark.get("context_csn") or {})
        if not known:
            raise self._invalid("the watermark has no contextCSN")
        now = self.context_csn(nc)  # before the searches: what changes during them comes again next time
        self._check_accesslog(watermark.get("accesslog"))  # type: ignore[arg-type]
        since = min(known.values())

        request = self.reader.request_attributes(set(attributes) | {"entrycsn"}, "openldap")
        entries: list[Entry] = []
        for hit in self.client.search(nc, f"(&{self.reader.object_filter}(entryCSN>={since}))", request):
            csn = (hit.attributes.get("entrycsn") or [b""])[0].decode("ascii")
            if newer(csn, known):
                entries.append(self.reader.to_entry(self.client, hit, len(entries) + 1))

        deleted_anchors: list[str] = []
        deleted_dns: list[str] = []
        for hit in self.client.search(self.accesslog, f"(&(objectClass=auditDelete)(reqResult=0)(entryCSN>={since}))",
                                      ["reqDN", "reqEntryUUID", "entryCSN"], scope="level"):
            csn = (hit.attributes.get("entrycsn") or [b""])[0].decode("ascii")
            if not newer(csn, known):
                continue
            uuid_values = hit.attributes.get("reqentryuuid")
            if self.reader.directory.anchor == "entryuuid" and uuid_values:
                deleted_anchors.append(uuid_values[0].decode("utf-8").strip().lower())
            elif hit.attributes.get("reqdn"):
                deleted_dns.append(hit.attributes["reqdn"][0].decode("utf-8"))

        accesslog = self._accesslog_anchor(now)
        new = {**watermark, "context_csn": now, "accesslog": accesslog}
        return DeltaRead(entries, sorted(set(deleted_anchors)), sorted(set(deleted_dns)), new)
