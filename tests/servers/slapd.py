"""A throwaway OpenLDAP server (slapd 2.5, Debian) from a slapd.conf in a temp dir.

Two mdb databases: ``dc=example,dc=org`` (the directory) and ``cn=accesslog`` (the accesslog
overlay records every write there, deletes included). syncprov serves RFC 4533 on the main
database with its session log loaded from the accesslog, so deletes survive a restart.
``lastmod on``, so entryUUID/entryCSN/modifyTimestamp exist, and ``slapadd -q -w`` bulk loads
also write the suffix's contextCSN.

Access control (the DNs need not exist until a test creates them, see :meth:`add_bind_user`):

* rootDSE and subschema: anyone may read;
* ``userPassword``: anonymous may authenticate, the owner may change it, nobody reads it;
* entries under ``ou=writers,ou=system,<base>``: write everything (write-back tests);
* entries under ``ou=no-people,ou=system,<base>``: read everything except ``ou=people``;
* any other bound user (e.g. under ``ou=readers,ou=system,<base>``): read-only;
* anonymous: nothing beyond rootDSE/subschema.

The accesslog database is readable by any bound user. The rootdn bypasses ACLs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from ._ldif import Entry, write_ldif
from ._tls import TlsFiles, make_server_certificate
from ._util import (
    ProcessServer,
    LOOPBACK,
    MissingBinaryError,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    remove_tree,
    require_binary,
    run,
    wait_until,
)

__all__ = ["SlapdServer"]

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
BindUserKind = Literal["reader", "writer", "no-people"]
_KIND_OU = {"reader": "readers", "writer": "writers", "no-people": "no-people"}


def _copy_tree(src: Path, dest: Path) -> None:
    # data.mdb is a sparse file as large as maxsize: cp keeps the holes, shutil would not.
    run(["cp", "-a", "--sparse=always", str(src), str(dest)], timeout=600, what="cp -a")


class SlapdServer(ProcessServer):
    """slapd for tests. ``with SlapdServer() as ldap:`` configures and starts it.

    Properties: ``uri`` / ``ldaps_uri``, ``port`` / ``ldaps_port``, ``base_dn``,
    ``admin_dn``, ``admin_password``, ``accesslog_dn``, ``ca_file`` (when ``tls=True``).
    """

    def __init__(
        self,
        base_dn: str = "dc=example,dc=org",
        admin_password: str = "admin-secret",
        *,
        tls: bool = True,
        size_limit: int | None = None,
        memberof: bool = False,
        workdir: Path | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        """*size_limit*: None = unlimited; N = at most N entries per plain search and per
        page, while paged searches may return any total (like AD's MaxPageSize).
        *memberof*: also load the memberof + refint overlays (memberOf from groupOfNames/member; refint
        rewrites member, uniqueMember and manager on renames, moves and deletes)."""
        # Check before creating anything, so a missing package leaves nothing behind.
        self._slapd = require_binary("slapd", "slapd")
        self._slapadd = require_binary("slapadd", "slapd")
        for schema in ("core", "cosine", "inetorgperson", "nis"):
            if not (SCHEMA_DIR / f"{schema}.schema").exists():
                raise MissingBinaryError(str(SCHEMA_DIR / f"{schema}.schema"), "slapd")
        self.base_dn = base_dn
        self.admin_password = admin_password
        self.tls = tls
        self.size_limit = size_limit
        self.memberof = memberof
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or make_temp_dir("slapd")
        self.db_root = self.workdir / "db"
        self.conf_path = self.workdir / "slapd.conf"
        self._tls_files: TlsFiles | None = None
        self._proc: ServerProcess | None = None
        self._port: int | None = None
        self._ldaps_port: int | None = None
        self.timings: dict[str, float] = {}
        """Seconds spent in the last load / start / snapshot / restore."""
        try:
            self._configure()
        except BaseException:
            if self._own_workdir:
                remove_tree(self.workdir)
            raise

    # ----------------------------------------------------------------- identity

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def accesslog_dn(self) -> str:
        return "cn=accesslog"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.base_dn}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("slapd has no port yet: call start() first")
        return self._port

    @property
    def ldaps_port(self) -> int:
        if self._ldaps_port is None:
            raise ServerError("no LDAPS listener: SlapdServer(tls=True) and start() first")
        return self._ldaps_port

    @property
    def uri(self) -> str:
        return f"ldap://{LOOPBACK}:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://{LOOPBACK}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        if self._tls_files is None:
            raise ServerError("SlapdServer(tls=False) has no CA file")
        return self._tls_files.ca_file

    def bind_user_dn(self, name: str, kind: BindUserKind = "reader") -> str:
        return f"cn={name},ou={_KIND_OU[kind]},ou=system,{self.base_dn}"

    # ----------------------------------------------------------------- configuration

    def _configure(self) -> None:
        (self.db_root / "data").mkdir(parents=True, exist_ok=True)
        (self.db_root / "accesslog").mkdir(parents=True, exist_ok=True)
        if self.tls:
            self._tls_files = make_server_certificate(self.workdir / "tls")
        self.conf_path.write_text(self._config_text())

    def _config_text(self) -> str:
        base = self.base_dn
        writers = f"ou=writers,ou=system,{base}"
        no_people = f"ou=no-people,ou=system,{base}"
        modules = ["back_mdb", "accesslog", "syncprov"]
        if self.memberof:
            modules += ["memberof", "refint"]
        if self.size_limit is None:
            limits = "limits * size=unlimited time=unlimited"
        else:
            n = self.size_limit
            limits = (
                f"limits * size.soft={n} size.hard={n} size.pr={n} size.prtotal=unlimited "
                "time=unlimited"
            )
        lines = [
            "# Generated by tests/servers/slapd.py: throwaway test instance",
            *(f"include {SCHEMA_DIR}/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
            f"pidfile {self.workdir}/slapd.pid",
            f"argsfile {self.workdir}/slapd.args",
            f"modulepath {MODULE_DIR}",
            *(f"moduleload {m}" for m in modules),
            "sizelimit unlimited",
            "timelimit unlimited",
            "loglevel none",
        ]
        if self._tls_files is not None:
            lines += [
                f"TLSCACertificateFile {self._tls_files.ca_file}",
                f"TLSCertificateFile {self._tls_files.cert_file}",
                f"TLSCertificateKeyFile {self._tls_files.key_file}",
            ]
        lines += [
            "",
            "# global ACLs (apply to every database, evaluated first)",
            'access to dn.base="" by * read',
            'access to dn.base="cn=Subschema" by * read',
            "",
            "# ---- accesslog: every write to the main database, deletes included",
            "database mdb",
            f"suffix {self.accesslog_dn}",
            f"rootdn {self.admin_dn}",
            f"directory {self.db_root}/accesslog",
            "maxsize 1073741824",
            "dbnosync",
            "index default eq",
            "index objectClass,entryCSN,reqEnd,reqResult,reqStart,reqType,reqDN eq",
            limits,
            "access to * by users read by * none",
            "",
            "# ---- the directory",
            "database mdb",
            f"suffix {base}",
            f"rootdn {self.admin_dn}",
            f"rootpw {self.admin_password}",
            f"directory {self.db_root}/data",
            "maxsize 4294967296",
            "dbnosync",
            "lastmod on",
            "index objectClass,entryCSN,entryUUID eq",
            "index uid,mail,cn,sn,givenName eq,sub",
            "index member,uniqueMember,memberUid,manager eq",  # the delta import's referrer search (README)
            "index modifyTimestamp eq",
            limits,
            "access to attrs=userPassword",
            f'  by dn.children="{writers}" =w',
            "  by self =w",
            "  by anonymous auth",
            "  by * none",
            f'access to dn.subtree="ou=people,{base}"',
            f'  by dn.children="{no_people}" none',
            f'  by dn.children="{writers}" write',
            "  by users read",
            "  by * none",
            "access to *",
            f'  by dn.children="{writers}" write',
            "  by users read",
            "  by * none",
            "",
            "overlay syncprov",
            "syncprov-checkpoint 100 5",
            f"syncprov-sessionlog-source {self.accesslog_dn}",
            "syncprov-reloadhint TRUE",
        ]
        if self.memberof:
            lines += [
                "overlay memberof",
                "memberof-group-oc groupOfNames",
                "memberof-member-ad member",
                "memberof-memberof-ad memberOf",
                "memberof-refint TRUE",
                "overlay refint",
                "refint_attributes member uniqueMember manager",
            ]
        lines += [
            "overlay accesslog",
            f"logdb {self.accesslog_dn}",
            "logops writes",
            "logsuccess TRUE",
            "logold (objectClass=*)",
            "logpurge 07+00:00 01+00:00",
            "",
        ]
        return "\n".join(lines)

    # ----------------------------------------------------------------- data

    def base_entries(self) -> list[Entry]:
        """The suffix entry and ``ou=people`` / ``ou=groups``."""
        first_rdn_value = self.base_dn.split(",")[0].split("=", 1)[1]
        return [
            (self.base_dn, {"objectClass": ["top", "dcObject", "organization"],
                            "dc": first_rdn_value, "o": "Example Org"}),
            (self.people_dn, {"objectClass": ["top", "organizationalUnit"], "ou": "people"}),
            (f"ou=groups,{self.base_dn}", {"objectClass": ["top", "organizationalUnit"],
                                           "ou": "groups"}),
        ]

    def load_ldif(self, path: Path | str) -> dict[str, float]:
        """Bulk-load content LDIF with ``slapadd -q -w`` (offline; slapd is stopped and
        restarted on the same port if it was running). entryUUID, entryCSN, timestamps and
        the suffix's contextCSN are generated. The LDIF must bring its parents first,
        the suffix entry included (see :meth:`base_entries` / :meth:`load_entries`)."""
        was_running = self.running
        if was_running:
            self.stop()
        t0 = time.monotonic()
        run([self._slapadd, "-q", "-w", "-f", str(self.conf_path), "-b", self.base_dn,
             "-l", str(path)], timeout=1800, what=f"slapadd {Path(path).name}")
        elapsed = time.monotonic() - t0
        self.timings["load"] = elapsed
        if was_running:
            self.start()
        return {"load_s": round(elapsed, 3)}

    def load_entries(
        self,
        entries: Iterable[Entry | Mapping[str, object]],
        *,
        include_base: bool = True,
    ) -> dict[str, float]:
        """Write *entries* (``(dn, attrs)``) to LDIF and :meth:`load_ldif` it;
        *include_base* prepends :meth:`base_entries`."""
        all_entries: list[Entry | Mapping[str, object]] = [*self.base_entries()] if include_base else []
        all_entries.extend(entries)
        path = write_ldif(self.workdir / f"load-{time.monotonic_ns()}.ldif", all_entries)
        try:
            return self.load_ldif(path)
        finally:
            path.unlink(missing_ok=True)

    # ----------------------------------------------------------------- start / stop

    def start(self) -> SlapdServer:
        """Start on a free 127.0.0.1 port (the same one again after a stop) and wait."""
        if self.running:
            return self
        fresh_ports = self._port is None
        for attempt in range(3):
            if fresh_ports:
                # free_port() can race with another process; new ports on a retry.
                self._port = free_port()
                self._ldaps_port = free_port() if self.tls else None
            try:
                self._start_once()
                return self
            except ServerError as exc:
                in_use = "Address already in use" in str(exc)
                if not (fresh_ports and in_use and attempt < 2):
                    if fresh_ports:
                        self._port = self._ldaps_port = None
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> None:
        urls = [f"ldap://{LOOPBACK}:{self._port}/"]
        if self._ldaps_port is not None:
            urls.append(f"ldaps://{LOOPBACK}:{self._ldaps_port}/")
        (self.workdir / "slapd.pid").unlink(missing_ok=True)
        t0 = time.monotonic()
        self._proc = ServerProcess(
            # -d keeps slapd in the foreground; level 32768 ("none") logs only what is always
            # logged (startup errors such as a port in use), not per-operation traces.
            [self._slapd, "-d", "32768", "-f", str(self.conf_path), "-h", " ".join(urls)],
            log_path=self.workdir / "slapd.out",
        )
        try:
            wait_until(self._answers, self.start_timeout, f"slapd on {self.uri}",
                       interval=0.02, alive=self._proc.alive)
        except ServerError as exc:
            tail = self._proc.log_tail()
            self._proc.stop(timeout=5)
            self._proc = None
            raise ServerError(f"{exc}\n--- slapd output ---\n{tail}") from exc
        self.timings["start"] = time.monotonic() - t0

    def _answers(self) -> bool:
        import ldap3

        server = ldap3.Server(LOOPBACK, port=self.port, get_info=ldap3.NONE, connect_timeout=1)
        conn = ldap3.Connection(server, self.admin_dn, self.admin_password, receive_timeout=2)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    # ----------------------------------------------------------------- snapshots

    def _snapshot_dir(self, name: str) -> Path:
        return self.workdir / f"snapshot-{name}"

    def snapshot(self, name: str = "seeded") -> Path:
        """Copy both databases (slapd briefly stopped, then restarted if it ran)."""
        was_running = self.running
        self.stop()
        t0 = time.monotonic()
        dest = self._snapshot_dir(name)
        remove_tree(dest)
        _copy_tree(self.db_root, dest)
        self.timings["snapshot"] = time.monotonic() - t0
        if was_running:
            self.start()
        return dest

    def restore(self, name: str = "seeded") -> None:
        """Put a snapshot back (slapd restarted on the same port if it was running)."""
        src = self._snapshot_dir(name)
        if not src.exists():
            raise ServerError(f"no snapshot {name!r} in {self.workdir}")
        was_running = self.running
        self.stop()
        t0 = time.monotonic()
        shutil.rmtree(self.db_root)
        _copy_tree(src, self.db_root)
        self.timings["restore"] = time.monotonic() - t0
        if was_running:
            self.start()

    # ----------------------------------------------------------------- clients

    def connect(self, user: str | None = None, password: str | None = None, **kwargs: object):
        """An ldap3 Connection bound as *user* (default the rootdn)."""
        import ldap3

        server = ldap3.Server(LOOPBACK, port=self.port, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server,
            user=user or self.admin_dn,
            password=password if password is not None else self.admin_password,
            auto_bind=True,
            receive_timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )

    def add_bind_user(self, name: str, password: str, kind: BindUserKind = "reader") -> str:
        """Create a bind account under ``ou=<kind>s,ou=system`` (see the module docstring
        for what each kind may do) and return its DN. slapd must be running."""
        dn = self.bind_user_dn(name, kind)
        conn = self.connect()
        try:
            for ou_dn, ou in ((f"ou=system,{self.base_dn}", "system"),
                              (f"ou={_KIND_OU[kind]},ou=system,{self.base_dn}", _KIND_OU[kind])):
                conn.add(ou_dn, ["top", "organizationalUnit"], {"ou": ou})
                if conn.result["result"] not in (0, 68):  # 68 = entryAlreadyExists
                    raise ServerError(f"add {ou_dn}: {conn.result}")
            ok = conn.add(dn, ["top", "person", "organizationalPerson", "inetOrgPerson"],
                          {"cn": name, "sn": name, "userPassword": password})
            if not ok:
                raise ServerError(f"add {dn}: {conn.result}")
        finally:
            conn.unbind()
        return dn
