"""Pytest fixtures for the real test servers. Register from the root conftest::

    pytest_plugins = ["tests.servers.fixtures"]

Session-scoped servers (started once per test session):

* ``slapd_server`` — :class:`SlapdServer`, loaded with ``slapd_seed_entries`` (snapshot "seeded").
* ``samba_dc`` — :class:`SambaDC`, provisioned and seeded **once** with ``samba_seed_entries``
  (offline), snapshot "seeded". Set ``PROFILE_SYNC_SERVER_CACHE=/some/dir`` to also keep the
  seeded domain across sessions (keyed on the seed, Samba's version and this package's code).
* ``postgres_server`` — :class:`PostgresServer`.
* ``redis_server`` — :class:`RedisServer` (a Celery broker).

Per-test helpers: ``slapd_fresh`` / ``samba_dc_fresh`` (the session server, restored to the
"seeded" snapshot first), ``postgres_url`` (the test database dropped and re-created),
``slapd_factory`` (new private slapd instances, ~0.1 s each).

Override ``slapd_seed_entries`` / ``samba_seed_entries`` (session fixtures returning
``[(dn, attrs), ...]``) in a conftest to seed other data.

Without ``PROFILE_SYNC_REQUIRE_SERVERS=1`` a missing package or a server that fails to start
skips the tests that need it (the reason names the package); with it, that is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import require_servers
from ._ldif import Entry, entries_to_ldif
from ._util import MissingBinaryError, ServerError, make_temp_dir, remove_tree, require_binary
from .postgres import PostgresServer
from .redis_server import RedisServer
from .s3 import S3Server
from .samba import SambaDC
from .slapd import SlapdServer

S = TypeVar("S")

SAMBA_REALM = "CONTOSO.COM"
SAMBA_BASE_DN = "DC=contoso,DC=com"
SLAPD_BASE_DN = "dc=example,dc=org"
SERVICE_ACCOUNT = "svc-profilesync"
SERVICE_PASSWORD = "Svc-Pr0file-Sync!"
CACHE_ENV = "PROFILE_SYNC_SERVER_CACHE"


@contextlib.contextmanager
def _server_or_skip(what: str) -> Iterator[None]:
    """Turn 'not installed / did not start' into a skip, unless servers are required."""
    try:
        yield
    except MissingBinaryError as exc:
        if require_servers():
            raise
        pytest.skip(f"{what}: package {exc.package!r} is not installed ({exc})")
    except ServerError as exc:
        if require_servers():
            raise
        pytest.skip(f"{what} could not be started: {exc}")


@contextlib.contextmanager
def serve(what: str, make: Callable[[], S], prepare: Callable[[S], object] = lambda server: server.start(),
          ) -> Iterator[S]:
    """``make()`` a server and ``prepare`` it (seed, start) under :func:`_server_or_skip`; it is closed
    when preparing fails and after use. For session fixtures: ``with serve(...) as server: yield server``."""
    with _server_or_skip(what):
        server = make()
        try:
            prepare(server)
        except BaseException:
            server.close()
            raise
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- seed data


def default_slapd_entries(base_dn: str = SLAPD_BASE_DN, people: int = 50) -> list[Entry]:
    """``people`` inetOrgPersons (uid p0000…) with managers, and two groupOfNames."""
    entries: list[Entry] = []
    for i in range(people):
        uid = f"p{i:04d}"
        attrs: dict[str, Any] = {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": uid, "cn": f"Person {i:04d}", "sn": f"Person{i:04d}", "givenName": "Test",
            "displayName": f"Test Person {i:04d}", "mail": f"{uid}@example.org",
            "title": "Engineer" if i % 2 else "Analyst", "departmentNumber": str(100 + i % 5),
            "employeeNumber": str(10000 + i), "telephoneNumber": f"+1 555 01{i % 100:02d}",
        }
        if i:
            attrs["manager"] = f"uid=p{(i - 1) // 5:04d},ou=people,{base_dn}"
        entries.append((f"uid={uid},ou=people,{base_dn}", attrs))
    members = [dn for dn, _ in entries]
    entries.append((f"cn=everyone,ou=groups,{base_dn}",
                    {"objectClass": ["top", "groupOfNames"], "cn": "everyone", "member": members}))
    entries.append((f"cn=managers,ou=groups,{base_dn}",
                    {"objectClass": ["top", "groupOfNames"], "cn": "managers",
                     "member": members[: max(1, people // 5)]}))
    return entries


def default_samba_entries(
    base_dn: str = SAMBA_BASE_DN, dns_domain: str = "contoso.com", people: int = 50
) -> list[Entry]:
    """AD-shaped seed: OU=People (``people`` users u0000…, managers, proxyAddresses, one
    disabled user u0003), OU=Groups (Engineering, All People with Engineering nested),
    and a password-bearing read-only service account ``svc-profilesync``."""
    ou_people, ou_groups = f"OU=People,{base_dn}", f"OU=Groups,{base_dn}"
    ou_svc = f"OU=Service Accounts,{base_dn}"
    entries: list[Entry] = [
        (ou_people, {"objectClass": "organizationalUnit"}),
        (ou_groups, {"objectClass": "organizationalUnit"}),
        (ou_svc, {"objectClass": "organizationalUnit"}),
        (f"CN={SERVICE_ACCOUNT},{ou_svc}", {
            "objectClass": "user", "sAMAccountName": SERVICE_ACCOUNT,
            "userPrincipalName": f"{SERVICE_ACCOUNT}@{dns_domain}",
            "unicodePwd": f'"{SERVICE_PASSWORD}"'.encode("utf-16-le"),
            "userAccountControl": "66048",  # NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
        }),
    ]
    user_dns = []
    for i in range(people):
        sam = f"u{i:04d}"
        dn = f"CN=User {i:04d},{ou_people}"
        user_dns.append(dn)
        attrs: dict[str, Any] = {
            "objectClass": "user", "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{dns_domain}",
            "givenName": "User", "sn": f"{i:04d}", "displayName": f"User {i:04d}",
            "mail": f"{sam}@{dns_domain}",
            "proxyAddresses": [f"SMTP:{sam}@{dns_domain}", f"smtp:{sam}.alias@{dns_domain}",
                               f"SIP:{sam}@{dns_domain}"],
            "title": "Engineer" if i % 2 else "Analyst", "department": f"Dept {i % 5}",
            "telephoneNumber": f"+1 555 01{i % 100:02d}",
            "physicalDeliveryOfficeName": f"Building {i % 3}",
            # NORMAL_ACCOUNT | PASSWD_NOTREQD (no password needed for a seeded person);
            # u0003 is also ACCOUNTDISABLE (0x2).
            "userAccountControl": "546" if i == 3 else "544",
        }
        if i:
            attrs["manager"] = user_dns[(i - 1) // 5]
        entries.append((dn, attrs))
    engineering = f"CN=Engineering,{ou_groups}"
    entries.append((engineering, {"objectClass": "group", "sAMAccountName": "Engineering",
                                  "member": user_dns[1::2]}))
    entries.append((f"CN=All People,{ou_groups}", {
        "objectClass": "group", "sAMAccountName": "All People",
        "member": [*user_dns, engineering]}))
    return entries


@pytest.fixture(scope="session")
def slapd_seed_entries() -> list[Entry]:
    """What ``slapd_server`` is loaded with (besides the suffix, ou=people, ou=groups)."""
    return default_slapd_entries()


@pytest.fixture(scope="session")
def samba_seed_entries() -> list[Entry]:
    """What ``samba_dc`` is seeded with, once per session (see default_samba_entries)."""
    return default_samba_entries()


# --------------------------------------------------------------------------- slapd


@pytest.fixture(scope="session")
def slapd_server(slapd_seed_entries: list[Entry]) -> Iterator[SlapdServer]:
    """A running slapd, loaded once; ``restore("seeded")`` puts the loaded state back."""
    def prepare(server: SlapdServer) -> None:
        server.load_entries(slapd_seed_entries)
        server.snapshot("seeded")
        server.start()

    with serve("slapd (OpenLDAP)", lambda: SlapdServer(base_dn=SLAPD_BASE_DN), prepare) as server:
        yield server


@pytest.fixture
def slapd_fresh(slapd_server: SlapdServer) -> Iterator[SlapdServer]:
    """The session slapd restored to its seeded state (~0.1 s), for tests that write; restored again after."""
    slapd_server.restore("seeded")
    slapd_server.start()
    yield slapd_server
    slapd_server.restore("seeded")
    slapd_server.start()


@pytest.fixture
def slapd_factory() -> Iterator[Callable[..., SlapdServer]]:
    """``make(**SlapdServer kwargs) -> SlapdServer`` (not started); all closed after the test."""
    made: list[SlapdServer] = []

    def make(**kwargs: Any) -> SlapdServer:
        with _server_or_skip("slapd (OpenLDAP)"):
            server = SlapdServer(**kwargs)
            made.append(server)
            return server
        raise AssertionError("unreachable")  # pragma: no cover

    try:
        yield make
    finally:
        for server in made:
            server.close()


# --------------------------------------------------------------------------- samba


def _samba_version() -> str:
    try:
        samba = require_binary("samba", "samba-ad-dc")
        return subprocess.run([samba, "--version"], capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError, MissingBinaryError):
        return "unknown"


def _samba_cache_key(ldif: str) -> str:
    h = hashlib.sha256()
    h.update(_samba_version().encode())
    here = Path(__file__).resolve().parent
    for name in ("samba.py", "_samba_offline.py", "_tls.py", "fixtures.py"):
        h.update((here / name).read_bytes())
    h.update(ldif.encode())
    return h.hexdigest()[:20]


def _publish_template(dc: SambaDC, template: Path) -> None:
    """Save the seeded domain as a cache entry; atomic rename, a racing session just loses."""
    template.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir("samba-template", template.parent)
    try:
        dc.save_template(staging / "dc")
        with contextlib.suppress(OSError):
            (staging / "dc").rename(template)
    finally:
        remove_tree(staging)


@pytest.fixture(scope="session")
def samba_dc(samba_seed_entries: list[Entry]) -> Iterator[SambaDC]:
    """A running Samba AD DC seeded once per session (snapshot "seeded")."""
    ldif = entries_to_ldif(samba_seed_entries)
    cache_root = os.environ.get(CACHE_ENV, "").strip()
    template = Path(cache_root) / f"samba-{_samba_cache_key(ldif)}" if cache_root else None
    cached = template is not None and (template / "private" / "sam.ldb").exists()

    def make() -> SambaDC:
        if os.geteuid() != 0:
            raise ServerError("the Samba AD DC fixture needs root (ip netns)")
        return SambaDC(realm=SAMBA_REALM, template=template if cached else None)

    def prepare(dc: SambaDC) -> None:
        dc.provision()  # copies the cached template when there is one
        if not cached:
            dc.seed(samba_seed_entries)
            if template is not None:
                _publish_template(dc, template)
        dc.snapshot("seeded")
        dc.start()

    with serve("Samba AD DC", make, prepare) as dc:
        yield dc


@pytest.fixture
def samba_dc_fresh(samba_dc: SambaDC) -> Iterator[SambaDC]:
    """The session DC restored to its seeded snapshot and restarted (~1 s), for tests that write;
    restored again after, so tests using the session DC see the seed."""
    samba_dc.restore("seeded")
    samba_dc.start()
    yield samba_dc
    samba_dc.restore("seeded")
    samba_dc.start()


# --------------------------------------------------------------------------- postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL with database ``profile_sync`` owned by a password user."""
    with serve("PostgreSQL", PostgresServer) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of an empty ``profile_sync`` database (dropped and re-created)."""
    postgres_server.reset_database()
    return postgres_server.url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A running S3-compatible object store (moto's server) on loopback."""
    with serve("S3 (moto server)", S3Server) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A running Redis (``redis_server.url()``), e.g. a Celery broker."""
    with serve("Redis", RedisServer) as server:
        yield server
