"""Real servers for the integration tests, started as throwaway instances on loopback.

* :class:`SlapdServer` — OpenLDAP (``dc=example,dc=org``) with accesslog + syncprov.
* :class:`SambaDC` — Samba AD DC (``DC=contoso,DC=com``) in its own network namespace.
* :class:`PostgresServer` — a PostgreSQL cluster for the profile store.
* :class:`RedisServer` — Redis (Debian ``redis-server``), the Celery broker of tests/distributed.
* :class:`S3Server` — moto's S3-compatible server (PyPI ``moto[server]``) for object storage.

Install the packages with ``tests/servers/install.sh`` (root, Debian 12). Pytest fixtures
live in :mod:`tests.servers.fixtures` (``pytest_plugins = ["tests.servers.fixtures"]``).
Never a mock: these are the real daemons.
"""

from __future__ import annotations

import os

from ._util import MissingBinaryError, ServerError
from .postgres import PostgresServer
from .redis_server import RedisServer
from .s3 import S3Server
from .samba import SambaDC
from .slapd import SlapdServer

__all__ = [
    "MissingBinaryError",
    "PostgresServer",
    "RedisServer",
    "S3Server",
    "SambaDC",
    "ServerError",
    "SlapdServer",
    "require_servers",
]

REQUIRE_ENV = "PROFILE_SYNC_REQUIRE_SERVERS"


def require_servers() -> bool:
    """True when ``PROFILE_SYNC_REQUIRE_SERVERS=1`` (CI, ``make test``): a server that is
    missing or does not start is then a test error, never a skip."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
