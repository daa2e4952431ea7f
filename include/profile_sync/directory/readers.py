"""Choosing the reader of a directory connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.ldif_reader import LdifDirectoryReader

if TYPE_CHECKING:
    from profile_sync.run.context import RunContext


def make_reader(directory: ResolvedDirectory, ctx: "RunContext") -> LdifDirectoryReader:
    """The reader for ``directory`` (LDIF today; LDAP readers plug in here)."""
    conn = directory.connection
    if conn.type == "ldif":
        return LdifDirectoryReader(conn.name, ctx.resolve_path(conn.path or ""))
    from profile_sync.errors import ValueErrorWithKnownValues

    raise ValueErrorWithKnownValues("directory type (not implemented yet)", conn.type, ["ldif"])
