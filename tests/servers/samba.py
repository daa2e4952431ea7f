"""A throwaway Samba AD domain controller in its own network namespace.

``samba-tool domain provision`` writes a fresh domain into a temp dir; ``samba -i -M single``
then runs inside a network namespace created for it (so it can own port 389 and friends on
the namespace's own loopback without touching the host), and a small forwarder exposes its
LDAP (389) and LDAPS (636) ports on free ``127.0.0.1`` ports of the root namespace, where the
tests run. Everything is stopped by PID and the namespace is deleted on ``stop()``.

Seeding over LDAP is slow (tens to hundreds of users a second), so :meth:`SambaDC.seed`
defaults to applying the LDIF offline, straight to ``sam.ldb`` through Samba's own dsdb
modules, while the samba process is down (the forwarder, and so the URI, stay up). Seed
once, :meth:`snapshot`, and :meth:`restore` the same path later.

Needs root (``ip netns``), and the Debian packages ``samba-ad-dc`` + ``samba-ad-provision``,
``iproute2``, ``openssl``; tests/servers/install.sh installs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from ._ldif import Entry, read_ldif, write_ldif
from ._tls import TlsFiles, make_server_certificate
from ._util import (
    ManagedServer,
    LOOPBACK,
    MissingBinaryError,
    ServerError,
    ServerProcess,
    make_temp_dir,
    pid_alive,
    remove_tree,
    require_binary,
    run,
    wait_until,
)

__all__ = ["SambaDC"]

_HERE = Path(__file__).resolve().parent
SAMBA_SETUP_DIR = Path("/usr/share/samba/setup")
SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter that has Samba's Python bindings (Debian package python3-samba)."""


_NETNS_RE = re.compile(r"^psync-(\d+)-[0-9a-f]{6}$")


def _clean_env() -> dict[str, str]:
    """Environment for Samba's own tools: no venv/PYTHONPATH leaking into /usr/bin/python3."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return env


class SambaDC(ManagedServer):
    """Samba AD DC for tests. ``with SambaDC() as dc:`` provisions and starts it.

    Properties: ``uri`` / ``ldaps_uri`` (root-namespace loopback), ``base_dn``
    (``DC=contoso,DC=com``), ``admin_dn`` / ``admin_upn`` / ``admin_password``, ``ca_file``
    (trust anchor for LDAPS/StartTLS), ``invocation_id`` (of this DC, read after start).
    """

    def __init__(
        self,
        realm: str = "CONTOSO.COM",
        domain: str = "CONTOSO",
        admin_password: str = "PSync-Adm1n-Pass!",
        host_name: str = "dc1",
        *,
        workdir: Path | None = None,
        server_services: Iterable[str] = ("ldap", "cldap", "rpc"),
        backend_store: Literal["mdb", "tdb"] = "mdb",
        start_timeout: float = 60.0,
        template: Path | None = None,
    ) -> None:
        # Check before creating anything, so a missing package leaves nothing behind.
        self._samba_bin = require_binary("samba", "samba-ad-dc")
        self._samba_tool = require_binary("samba-tool", "samba-ad-dc")
        self._ip = require_binary("ip", "iproute2")
        if not (SAMBA_SETUP_DIR / "provision.ldif").exists():
            raise MissingBinaryError(str(SAMBA_SETUP_DIR / "provision.ldif"), "samba-ad-provision")
        if not Path(SYSTEM_PYTHON).exists():
            raise MissingBinaryError(SYSTEM_PYTHON, "python3-samba")
        if os.geteuid() != 0:
            raise ServerError("SambaDC needs root: it creates a network namespace with `ip netns`")
        self.realm = realm.upper()
        self.domain = domain.upper()
        self.admin_password = admin_password
        self.host_name = host_name.lower()
        self.server_services = tuple(server_services)
        self.backend_store = backend_store
        self.start_timeout = start_timeout
        self.template = template
        """A domain dir saved by :meth:`save_template` to copy instead of provisioning."""
        self._own_workdir = workdir is None
        self.workdir = workdir or make_temp_dir("samba")
        self.target_dir = self.workdir / "dc"
        self.smb_conf = self.target_dir / "etc" / "smb.conf"
        self._tls: TlsFiles | None = None
        self._netns: str | None = None
        self.strong_auth = False
        """``ldap server require strong auth = yes`` (see :meth:`require_strong_auth`)."""
        self._samba: ServerProcess | None = None
        self._forwarder: ServerProcess | None = None
        self._listeners: dict[int, socket.socket] = {}
        self._ports: dict[int, int] = {}
        self.invocation_id: str | None = None
        self.timings: dict[str, float] = {}
        """Seconds spent in provision / start / seed / snapshot / restore (last call of each)."""

    # ----------------------------------------------------------------- identity

    @property
    def dns_domain(self) -> str:
        return self.realm.lower()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.dns_domain.split("."))

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.base_dn}"

    @property
    def admin_upn(self) -> str:
        return f"Administrator@{self.dns_domain}"

    @property
    def admin_netbios(self) -> str:
        return f"{self.domain}\\Administrator"

    @property
    def port(self) -> int:
        return self._port(389)

    @property
    def ldaps_port(self) -> int:
        return self._port(636)

    @property
    def uri(self) -> str:
        return f"ldap://{LOOPBACK}:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://{LOOPBACK}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        if self._tls is None:
            raise ServerError("not provisioned yet")
        return self._tls.ca_file

    @property
    def running(self) -> bool:
        return self._samba is not None and self._samba.alive()

    def _port(self, inner: int) -> int:
        if inner not in self._ports:
            raise ServerError("the forwarder is not set up: call start() first")
        return self._ports[inner]

    # ----------------------------------------------------------------- provision

    @property
    def provisioned(self) -> bool:
        return (self.target_dir / "private" / "sam.ldb").exists()

    def provision(self) -> None:
        """Create the domain in ``workdir/dc`` (about 10 s), or copy it from ``template``."""
        if self.provisioned:
            self._load_tls()
            return
        t0 = time.monotonic()
        if self.template is not None:
            self._copy_domain(Path(self.template), self.target_dir)
            self._load_tls()
            self.timings["provision"] = time.monotonic() - t0
            return
        empty = self.workdir / "empty.conf"
        empty.write_text("")
        run(
            [
                self._samba_tool, "domain", "provision",
                "--targetdir", str(self.target_dir),
                "-s", str(empty),
                "--realm", self.realm,
                "--domain", self.domain,
                "--adminpass", self.admin_password,
                "--server-role", "dc",
                "--dns-backend", "NONE",
                "--host-name", self.host_name,
                f"--backend-store={self.backend_store}",
            ],
            timeout=300,
            env=_clean_env(),
            what="samba-tool domain provision",
        )
        self._tls = make_server_certificate(
            self.target_dir / "tls",
            host_names=("localhost", f"{self.host_name}.{self.dns_domain}"),
        )
        self._write_config()
        self.timings["provision"] = time.monotonic() - t0

    def _load_tls(self) -> None:
        tls = self.target_dir / "tls"
        self._tls = TlsFiles(tls / "ca.pem", tls / "server.pem", tls / "server.key")

    @staticmethod
    def _domain_root(smb_conf: Path) -> str:
        """The directory a domain dir was created at (provision writes it as the lock directory)."""
        for line in smb_conf.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "lock directory":
                return value.strip()
        raise ServerError(f"{smb_conf} has no 'lock directory': not a provisioned domain dir")

    def _copy_domain(self, src: Path, dest: Path) -> None:
        """cp -a a stopped domain dir to *dest* and point its smb.conf at the new place.

        Only smb.conf holds absolute paths (sam.ldb partitions and secrets are relative),
        so a domain dir is relocatable.
        """
        if not (src / "private" / "sam.ldb").exists():
            raise ServerError(f"{src} is not a provisioned Samba domain dir")
        remove_tree(dest)
        run(["cp", "-a", "--sparse=always", str(src), str(dest)], timeout=600, what=f"cp -a {src}")
        conf = dest / "etc" / "smb.conf"
        old_root = self._domain_root(conf)
        if old_root != str(dest):
            conf.write_text(conf.read_text().replace(old_root, str(dest)))

    def save_template(self, dest: Path) -> Path:
        """Save the (stopped) domain dir to *dest* for ``SambaDC(template=dest)`` elsewhere.

        A seeded template lets later test sessions skip provisioning and seeding; the
        caller owns *dest* and must key it on whatever it was seeded with.
        """
        was_running = self.running
        self._stop_samba()
        try:
            self._copy_domain(self.target_dir, Path(dest))
        finally:
            if was_running:
                self.start()
        return Path(dest)

    def _write_config(self) -> None:
        assert self._tls is not None
        run_dir = self.target_dir / "run"
        run_dir.mkdir(exist_ok=True)
        extra = {
            "server services": ", ".join(self.server_services),
            "ldap server require strong auth": "no",
            "interfaces": "lo",
            "bind interfaces only": "yes",
            "pid directory": str(run_dir),
            "ncalrpc dir": str(run_dir / "ncalrpc"),
            "winbindd socket directory": str(run_dir / "winbindd"),
            "ntp signd socket directory": str(run_dir / "ntp_signd"),
            "log file": str(self.target_dir / "log.samba"),
            "log level": "1",
            "tls enabled": "yes",
            "tls keyfile": str(self._tls.key_file),
            "tls certfile": str(self._tls.cert_file),
            "tls cafile": str(self._tls.ca_file),
            "dsdb:schema update allowed": "no",
        }
        lines = self.smb_conf.read_text().splitlines()
        out: list[str] = []
        in_global = False
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("["):
                if in_global:
                    out.extend(f"\t{k} = {v}" for k, v in extra.items())
                in_global = stripped.lower() == "[global]"
            elif in_global and "=" in stripped:
                key = stripped.split("=", 1)[0].strip().lower()
                if key in extra:
                    continue  # replaced below
            out.append(line)
        if in_global:
            out.extend(f"\t{k} = {v}" for k, v in extra.items())
        self.smb_conf.write_text("\n".join(out) + "\n")

    # ----------------------------------------------------------------- start / stop

    def start(self) -> SambaDC:
        """Provision if needed, then start samba in the namespace and wait until LDAP answers."""
        if self.running:
            return self
        self.provision()
        t0 = time.monotonic()
        self._ensure_namespace_and_forwarder()
        pidfile = self.target_dir / "run" / "samba.pid"
        pidfile.unlink(missing_ok=True)  # stale after kill(); samba refuses to start over it
        assert self._netns is not None
        self._samba = ServerProcess(
            [self._ip, "netns", "exec", self._netns,
             self._samba_bin, "-i", "-M", "single", "--debug-stdout", "-s", str(self.smb_conf)],
            log_path=self.workdir / "samba.out",
            env=_clean_env(),
        )
        try:
            self._wait_for_ldap()
        except ServerError as exc:
            tail = self._samba.log_tail()
            self._stop_samba()
            raise ServerError(f"{exc}\n--- samba output ---\n{tail}") from exc
        self.timings["start"] = time.monotonic() - t0
        return self

    def _reap_stale_namespaces(self) -> None:
        """Delete namespaces left by test processes that died (``psync-<dead pid>-<hex>``),
        SIGKILLing what still runs in them by PID first."""
        listing = run([self._ip, "netns", "list"], timeout=30, what="ip netns list").stdout
        for line in listing.splitlines():
            match = _NETNS_RE.match(line.split(" ")[0])
            if not match or pid_alive(int(match.group(1))):
                continue
            name = match.group(0)
            pids = run([self._ip, "netns", "pids", name], timeout=30, what="ip netns pids").stdout
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(ServerError):
                run([self._ip, "netns", "del", name], timeout=30, what="ip netns del")

    def _ensure_namespace_and_forwarder(self) -> None:
        if self._netns is None:
            self._reap_stale_namespaces()
            name = f"psync-{os.getpid()}-{secrets.token_hex(3)}"
            run([self._ip, "netns", "add", name], timeout=30, what="ip netns add")
            self._netns = name
            run([self._ip, "-n", name, "link", "set", "lo", "up"], timeout=30, what="ip link set lo up")
        if self._forwarder is not None and self._forwarder.alive():
            return
        fds: list[str] = []
        for inner in (389, 636):
            if inner not in self._listeners:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((LOOPBACK, 0))
                sock.listen(128)
                sock.set_inheritable(True)
                self._listeners[inner] = sock
                self._ports[inner] = sock.getsockname()[1]
            fds.append(f"{self._listeners[inner].fileno()}:{inner}")
        self._forwarder = ServerProcess(
            [self._ip, "netns", "exec", self._netns, sys.executable, "-I",
             str(_HERE / "_nsforward.py"), *fds],
            log_path=self.workdir / "forwarder.out",
            pass_fds=[s.fileno() for s in self._listeners.values()],
        )

    def _wait_for_ldap(self) -> None:
        import ldap3

        def answers() -> bool:
            # With strong auth required, simple binds are refused on plain LDAP: bind after StartTLS.
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file)) if self.strong_auth else None
            server = ldap3.Server(LOOPBACK, port=self.port, get_info=ldap3.NONE, connect_timeout=2, tls=tls)
            conn = ldap3.Connection(
                server, user=self.admin_upn, password=self.admin_password, receive_timeout=5,
                auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.strong_auth else True,
            )
            try:
                conn.search("", "(objectClass=*)", search_scope=ldap3.BASE,
                            attributes=["dsServiceName"])
                service = conn.entries[0].entry_attributes_as_dict["dsServiceName"][0]
                conn.search(service, "(objectClass=*)", search_scope=ldap3.BASE,
                            attributes=["invocationId"])
                raw = conn.response[0]["raw_attributes"]["invocationId"][0]
                self.invocation_id = str(uuid.UUID(bytes_le=bytes(raw)))
                return True
            finally:
                conn.unbind()

        assert self._samba is not None
        wait_until(answers, self.start_timeout, f"samba LDAP on {self.uri}",
                   interval=0.1, alive=self._samba.alive)

    def require_strong_auth(self, on: bool) -> SambaDC:
        """Set ``ldap server require strong auth`` (``yes``: like an AD requiring LDAP signing, simple binds are
        refused on plain LDAP with strongerAuthRequired) and restart; ``uri`` stays the same."""
        text = self.smb_conf.read_text()
        old, new = ("no", "yes") if on else ("yes", "no")
        self.smb_conf.write_text(text.replace(f"ldap server require strong auth = {old}",
                                              f"ldap server require strong auth = {new}"))
        self.strong_auth = on
        return self.restart()

    def _stop_samba(self) -> None:
        if self._samba is not None:
            self._samba.stop(timeout=20)
            self._samba = None

    def restart(self) -> SambaDC:
        """Stop samba gracefully and start it again; ``uri`` stays the same."""
        self._stop_samba()
        return self.start()

    def stop(self) -> None:
        """Stop samba and the forwarder by PID, delete the namespace. The domain dir stays;
        a later start() gets new ports (restart/kill/seed/restore keep them)."""
        self._stop_samba()
        if self._forwarder is not None:
            self._forwarder.stop(timeout=10)
            self._forwarder = None
        for sock in self._listeners.values():
            sock.close()
        self._listeners.clear()
        self._ports.clear()
        if self._netns is not None:
            run([self._ip, "netns", "del", self._netns], timeout=30, what="ip netns del")
            self._netns = None

    def kill(self) -> None:
        """SIGKILL samba (the DC "dies"); the forwarder stays, so clients see resets/refusals."""
        if self._samba is not None:
            self._samba.kill()
            self._samba = None

    # ----------------------------------------------------------------- seeding

    def seed(
        self,
        source: Path | str | Iterable[Entry | Mapping[str, object]],
        *,
        method: Literal["offline", "online"] = "offline",
    ) -> dict[str, float | int]:
        """Apply LDIF (a path, or entries ``(dn, attrs)``) to the domain.

        ``offline`` (default, several times faster): samba is stopped if running, the
        LDIF goes straight into sam.ldb in one transaction through Samba's dsdb modules,
        samba is started again on the same URI. ``online``: ldap3 adds/modifies as Administrator.
        Returns counts and ``entries_per_s``.
        """
        self.provision()
        if isinstance(source, (str, Path)):
            ldif_path = Path(source)
        else:
            ldif_path = write_ldif(self.workdir / f"seed-{secrets.token_hex(4)}.ldif", source)
        t0 = time.monotonic()
        if method == "offline":
            was_running = self.running
            self._stop_samba()
            done = run(
                [SYSTEM_PYTHON, "-I", str(_HERE / "_samba_offline.py"), str(self.smb_conf), str(ldif_path)],
                timeout=3600,
                env=_clean_env(),
                what=f"offline seed of {ldif_path.name}",
            )
            stats: dict[str, float | int] = json.loads(done.stdout.strip().splitlines()[-1])
            seeded = time.monotonic()
            if was_running:
                self.start()
            stats["restart_s"] = round(time.monotonic() - seeded, 3)
        else:
            if not self.running:
                self.start()
            stats = self._seed_online(ldif_path)
        elapsed = time.monotonic() - t0
        total = int(stats.get("add", 0)) + int(stats.get("modify", 0)) + int(stats.get("delete", 0))
        stats["total_s"] = round(elapsed, 3)
        apply_s = float(stats.get("apply_s", elapsed)) or elapsed
        stats["entries_per_s"] = round(total / apply_s, 1) if apply_s else 0.0
        self.timings["seed"] = elapsed
        return stats

    def _seed_online(self, ldif_path: Path) -> dict[str, float | int]:
        import ldap3

        counts = {"add": 0, "modify": 0, "delete": 0}
        ops = {"add": ldap3.MODIFY_ADD, "replace": ldap3.MODIFY_REPLACE, "delete": ldap3.MODIFY_DELETE}
        conn = self.connect()
        t0 = time.monotonic()
        try:
            for rec in read_ldif(ldif_path.read_text(encoding="utf-8")):
                if rec.changetype == "add":
                    ok = conn.add(rec.dn, attributes=rec.attributes)
                elif rec.changetype == "modify":
                    ok = conn.modify(rec.dn, {a: [(ops[op], vals)] for op, a, vals in rec.changes})
                else:
                    ok = conn.delete(rec.dn)
                if not ok:
                    raise ServerError(f"online seed: {rec.changetype} {rec.dn} failed: {conn.result}")
                counts[rec.changetype] += 1
        finally:
            conn.unbind()
        return {**counts, "apply_s": round(time.monotonic() - t0, 3)}

    def dbcheck(self, base: str | None = None) -> str:
        """``samba-tool dbcheck`` (read-only) of *base* (default: every naming context).
        Raises ServerError when it reports errors; returns its output otherwise."""
        self.provision()
        args = [self._samba_tool, "dbcheck", "-s", str(self.smb_conf)]
        args += [base, "--scope=sub"] if base else ["--cross-ncs"]
        done = run(args, timeout=1800, env=_clean_env(), what="samba-tool dbcheck")
        out = done.stdout + done.stderr
        if not re.search(r"\(0 errors\)", out):
            raise ServerError(f"dbcheck found errors:\n{out[-4000:]}")
        return out

    # ----------------------------------------------------------------- snapshots

    def _snapshot_dir(self, name: str) -> Path:
        return self.workdir / f"snapshot-{name}"

    def snapshot(self, name: str = "seeded") -> Path:
        """Copy the domain dir (``cp -a``) while samba is briefly stopped; restarts it if it ran."""
        was_running = self.running
        self._stop_samba()
        t0 = time.monotonic()
        dest = self._snapshot_dir(name)
        remove_tree(dest)
        run(["cp", "-a", "--sparse=always", str(self.target_dir), str(dest)], timeout=600, what="cp -a (snapshot)")
        # The copy keeps smb.conf pointing at target_dir: restore() puts it back there.
        self.timings["snapshot"] = time.monotonic() - t0
        if was_running:
            self.start()
        return dest

    def restore(self, name: str = "seeded") -> None:
        """Put the snapshot back at the same path (samba is restarted if it was running)."""
        src = self._snapshot_dir(name)
        if not src.exists():
            raise ServerError(f"no snapshot {name!r} in {self.workdir}")
        was_running = self.running
        self._stop_samba()
        t0 = time.monotonic()
        shutil.rmtree(self.target_dir)
        run(["cp", "-a", "--sparse=always", str(src), str(self.target_dir)], timeout=600, what="cp -a (restore)")
        self.timings["restore"] = time.monotonic() - t0
        if was_running:
            self.start()

    # ----------------------------------------------------------------- clients

    def connect(self, user: str | None = None, password: str | None = None, **kwargs: object):
        """An ldap3 Connection bound as *user* (default Administrator's UPN), over plain LDAP."""
        import ldap3

        server = ldap3.Server(LOOPBACK, port=self.port, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server,
            user=user or self.admin_upn,
            password=password if password is not None else self.admin_password,
            auto_bind=True,
            receive_timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )
