"""Profile Sync against the real test servers: Connection infos, readers, and a synchronization harness."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from profile_sync.config.loader import load_settings
from profile_sync.config.presets import ResolvedDirectory, resolve_directory
from profile_sync.config.settings import DirectoryConnection
from profile_sync.directory.ldap import LdapConnectionSettings, LdapDirectoryReader
from profile_sync.directory.readers import effective_directory
from profile_sync.run.context import ConnectionInfo, RunContext
from profile_sync.run.local import run_sync

SLAPD_CONTAINERS = ["ou=people,dc=example,dc=org", "ou=groups,dc=example,dc=org"]
SAMBA_CONTAINERS = ["OU=People,DC=contoso,DC=com", "OU=Groups,DC=contoso,DC=com"]


def slapd_info(server, *, login: str | None = None, password: str | None = None, host: str | None = None,
               **extra: Any) -> ConnectionInfo:
    """The slapd's rootdn (or ``login``) as an engine ConnectionInfo."""
    return ConnectionInfo(conn_id="slapd_test", host=host or server.uri, login=login or server.admin_dn,
                          password=password if password is not None else server.admin_password, extra=extra)


def samba_info(dc, *, login: str | None = None, password: str | None = None, host: str | None = None,
               **extra: Any) -> ConnectionInfo:
    """Samba's Administrator (or ``login``) as an engine ConnectionInfo."""
    return ConnectionInfo(conn_id="samba_test", host=host or dc.uri, login=login or dc.admin_upn,
                          password=password if password is not None else dc.admin_password, extra=extra)


def directory(name: str, preset: str, containers: list[str], **overrides: Any) -> ResolvedDirectory:
    return resolve_directory(DirectoryConnection(name=name, type="ldap", conn_id=f"{name}_conn", preset=preset,
                                                 containers=tuple(containers), **overrides))


def reader(info: ConnectionInfo, preset: str = "inetorgperson", containers: list[str] | None = None,
           **overrides: Any) -> LdapDirectoryReader:
    containers = containers or (SLAPD_CONTAINERS if preset == "inetorgperson" else SAMBA_CONTAINERS)
    d = directory("corp", preset, containers, **overrides)
    return LdapDirectoryReader(d, LdapConnectionSettings.from_connection_info("corp", info))


def by_dn(entries) -> dict[str, Any]:
    return {e.dn.lower(): e for e in entries}


class LdapSyncHarness:
    """Run synchronizations (``run_sync``, no Airflow) of one LDAP directory into a SQLite profile store."""

    def __init__(self, tmp: Path, info: ConnectionInfo, directory: dict[str, Any], **overrides: Any) -> None:
        """``overrides``: further top-level configuration keys (``gates``, ``deletion``, ...)."""
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.info = info
        self.config = self.tmp / "profile_sync.yaml"
        self.db = self.tmp / "profiles.db"
        self.runs = 0
        self.config.write_text(yaml.safe_dump({
            "state_store": {"url": f"file://{self.tmp / 'state'}"},
            "profile_store": {"url": f"sqlite:///{self.db}"},
            "directories": [{"type": "ldap", "conn_id": info.conn_id, **directory}],
            **overrides,
        }))

    def context(self, mode: str = "full") -> RunContext:
        self.runs += 1
        return RunContext(run_id=f"ldap-run-{self.runs}", settings=load_settings(self.config),
                          project_root=self.tmp, requested_mode=mode,
                          resolve_connection=lambda conn_id: self.info)

    def sync(self, mode: str = "full") -> dict[str, Any]:
        return run_sync(self.context(mode))

    @property
    def store(self):  # noqa: ANN201
        from profile_sync.profile_store.schema import property_specs
        from profile_sync.profile_store.store import ProfileStore, make_engine

        return ProfileStore(make_engine(f"sqlite:///{self.db}"), property_specs(load_settings(self.config)))

    def directory(self) -> ResolvedDirectory:
        ctx = self.context()
        from profile_sync.config.loader import resolved_directories

        return effective_directory(resolved_directories(ctx.settings)[0], ctx)

    def sql(self, statement: str, *params: Any) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(self.db) as db:
            rows = db.execute(statement, params).fetchall()
            db.commit()
        return rows


def samba_tool(dc, *args: str) -> str:
    """Run samba-tool against the test DC over LDAP as Administrator (Samba's own Python, clean env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    done = subprocess.run(["samba-tool", *args, "-H", dc.uri, "-U", f"Administrator%{dc.admin_password}",
                           "-s", str(dc.smb_conf)], capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"samba-tool {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def object_sid(conn, dn: str) -> str:
    from ldap3 import BASE
    from ldap3.protocol.formatters.formatters import format_sid

    conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["objectSid"])
    return format_sid(conn.response[0]["raw_attributes"]["objectSid"][0])


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)
