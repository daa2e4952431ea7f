"""Errors of directory connections."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class DirectoryError(TerminalError):
    """A directory could not be read as configured."""

    def __init__(self, connection: str, message: str, *, dn: str | None = None, position: int | None = None) -> None:
        self.connection = connection
        self.dn = dn
        self.position = position
        where = f" (object {dn!r})" if dn else ""
        at = f" at line {position}" if position else ""
        super().__init__(f"directory {connection!r}{at}{where}: {message}")


class LdifChangeRecordError(DirectoryError):
    """An LDIF file holds change records (``changetype:``); only content records can be imported."""


class DirectoryUnavailableError(TransientError):
    """The directory server did not answer; the step may be retried."""
