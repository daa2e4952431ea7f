"""The small interface between directory readers and the engine.

A reader turns a directory into :class:`Entry` tuples (entries in);
``sync.connector_space`` turns them into a frame (frames out). Readers that
can read changes only (LDAP servers) also implement :class:`DeltaReader`.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple, Protocol

from profile_sync.directory.errors import DirectoryError


class Entry(NamedTuple):
    """One directory object as read: its DN and raw attribute values.

    Attribute names are lower case; values are the raw bytes the directory sent
    (decoding is the connector space's job, so binary values stay intact).
    Ranged values (``member;range=0-1499`` …) arrive merged under the plain name.
    """

    dn: str
    attributes: dict[str, list[bytes]]
    position: int = 0
    """Where it came from (LDIF line number or record ordinal, search result index), for error messages."""
    problem: str | None = None
    """Why this entry cannot be trusted as read (an LDIF record the file may have cut short): the
    connector space holds it in quarantine with this reason instead of synchronizing it."""


Watermark = dict[str, Any]
"""The delta state of a connection (JSON-serialisable), committed beside its connector space.

Shapes (``kind`` tells them apart; LDIF has none for compatibility):

* LDIF: ``{"file_sha256": "…"}``
* Active Directory: ``{"kind": "active_directory", "server": dnsHostName,
  "invocation_id": "…", "highest_usn": int, "dirsync_cookie": base64 | None,
  "method": "dirsync" | "usn", "scope": "…"}``
* OpenLDAP: ``{"kind": "openldap", "naming_context": "dc=…", "context_csn": {sid: csn},
  "accesslog": {"base": "cn=accesslog", "last_record": dn | None, "taken_at": iso time} | None,
  "scope": "…"}``
* other LDAP servers: ``{"kind": "none", "scope": "…"}`` (every delta is refused)
"""


class DeltaRead(NamedTuple):
    """What changed in a directory since a watermark."""

    entries: list[Entry]
    """Added or changed objects (renames and moves included), with the full current values of the
    requested attributes. Objects that moved out of the selected containers are included too, with
    their new DN: the engine's scope treats them as leaving scope."""
    deleted_anchors: list[str]
    """Canonical anchors (objectGUID string / entryUUID, lower case) of deleted objects, when known."""
    deleted_dns: list[str]
    """DNs of deleted objects whose anchor is not known (the engine maps DN → anchor through the CS)."""
    watermark: Watermark
    """The new delta state, to commit with the connector space."""


class DeltaStateInvalid(DirectoryError):
    """The stored delta state cannot be used (cookie refused, invocationId changed, accesslog purged
    past the watermark, scope changed): the engine does a full import and records ``reason``."""

    def __init__(self, connection: str, reason: str) -> None:
        self.reason = reason
        super().__init__(connection, f"delta state invalid, a full import is needed: {reason}")


class DirectoryReader(Protocol):
    """Reads every entry of a directory connection (a full import)."""

    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Yield every entry under the selected containers (only ``attributes``, lower case, when given)."""
        ...

    def watermark(self) -> Watermark:
        """The current delta state; take it *before* a full read so changes during the read are not lost."""
        ...


class DeltaReader(DirectoryReader, Protocol):
    """A reader that can also read only what changed since a watermark (a delta import)."""

    def read_delta(self, attributes: frozenset[str], watermark: Watermark) -> DeltaRead:
        """Changes since ``watermark``; raises :class:`DeltaStateInvalid` when it cannot be used."""
        ...
