"""Choosing the reader of a directory connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profile_sync.config.presets import ResolvedDirectory, resolve_directory
from profile_sync.directory.ldif_reader import LdifDirectoryReader

if TYPE_CHECKING:
    from profile_sync.directory.ldap import LdapConnectionSettings, LdapDirectoryReader
    from profile_sync.run.context import RunContext


def ldap_settings(directory: ResolvedDirectory, ctx: "RunContext") -> "LdapConnectionSettings":
    """The LDAP settings of ``directory`` from its Airflow Connection (resolved once per run context)."""
    from profile_sync.directory.ldap import LdapConnectionSettings

    cache = ctx.__dict__.setdefault("_ldap_settings", {})
    key = (directory.name, directory.connection.conn_id)
    if key not in cache:
        info = ctx.resolve_connection(directory.connection.conn_id or "")
        cache[key] = LdapConnectionSettings.from_connection_info(directory.name, info)
    return cache[key]


def effective_directory(directory: ResolvedDirectory, ctx: "RunContext") -> ResolvedDirectory:
    """``directory`` with the scope the YAML leaves out taken from its Connection's extras (LDAP only)."""
    if directory.connection.type != "ldap":
        return directory
    from profile_sync.directory.ldap import effective_connection

    conn = effective_connection(directory.connection, ldap_settings(directory, ctx))
    return directory if conn is directory.connection else resolve_directory(conn)


def make_reader(directory: ResolvedDirectory, ctx: "RunContext") -> "LdifDirectoryReader | LdapDirectoryReader":
    """The reader for ``directory``: an LDIF file or an LDAP server."""
    conn = directory.connection
    if conn.type == "ldif":
        index = next((i for i, c in enumerate(ctx.settings.directories) if c.name == conn.name), None)
        key = f"directories[{index}].path" if index is not None else "directories[].path"
        return LdifDirectoryReader(conn.name, ctx.resolve_path(conn.path or ""), config_key=key)
    if conn.type == "ldap":
        from profile_sync.directory.ldap import LdapDirectoryReader

        return LdapDirectoryReader(effective_directory(directory, ctx), ldap_settings(directory, ctx))
    from profile_sync.errors import ValueErrorWithKnownValues

    raise ValueErrorWithKnownValues("directory type", conn.type, ["ldif", "ldap"])
