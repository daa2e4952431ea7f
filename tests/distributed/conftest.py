"""Fixtures of the distributed-Airflow tests: the directory (slapd with the sample), the cluster
(tests/distributed/cluster.py) and the embedded in-process runner as the reference.

Servers come from tests/servers: PostgreSQL (metadata database, Celery result backend, profile store),
Redis (broker), moto S3 (object storage) and slapd. Without ``PROFILE_SYNC_REQUIRE_SERVERS=1`` a missing
server skips these tests; with it, that is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.distributed.cluster import AirflowCluster
from tests.servers import PostgresServer, RedisServer, S3Server, SlapdServer
from tests.servers._util import LOOPBACK, make_temp_dir, remove_tree
from tests.servers.fixtures import serve

BASE_DN = "dc=example,dc=org"
PEOPLE, GROUPS, SEED = 300, 20, 11
LDAP_CONN_ID = "corp_openldap"
PROFILE_STORE_CONN_ID = "profile_store_db"
STATE_CONN_ID = "psync_state"
STATE_BUCKET = "psync-distributed"
STATE_PREFIX = "profile-sync"
PROFILE_DB = "profiles"

# Where the workers keep the state store: on the S3 server (moto), reached through the Airflow Connection
# `psync_state`, so the workers share no disk at all. False puts it in one folder both workers can read
# (a shared disk), which is what a deployment without object storage needs.
STATE_ON_S3 = True


def directory_config() -> dict[str, Any]:
    """The directory connection: the slapd holding the sample, through an Airflow Connection."""
    return {"name": "corp", "type": "ldap", "conn_id": LDAP_CONN_ID, "preset": "inetorgperson",
            "containers": [f"ou=people,{BASE_DN}", f"ou=Groups,{BASE_DN}"],
            "excluded_containers": [f"ou=Service Accounts,ou=people,{BASE_DN}"]}


def state_store_config(shared: Path) -> dict[str, Any]:
    if STATE_ON_S3:
        return {"url": f"s3://{STATE_BUCKET}/{STATE_PREFIX}", "conn_id": STATE_CONN_ID}
    return {"url": f"file://{shared / 'state'}"}


@pytest.fixture(scope="module")
def sample_slapd() -> Iterator[SlapdServer]:
    """slapd loaded with the sample directory (inetOrgPerson flavour, 300 people) and a read-only
    account ``sync`` for Profile Sync."""
    from profile_sync.sample import generate, write_ldif

    def prepare(server: SlapdServer) -> None:
        ldif = server.workdir / "sample.ldif"
        write_ldif(generate(PEOPLE, GROUPS, seed=SEED), ldif, "inetorgperson", version_line=False)
        server.load_ldif(ldif)
        server.start()
        server.add_bind_user("sync", "sync-secret", "reader")

    with serve("slapd (OpenLDAP)", lambda: SlapdServer(base_dn=BASE_DN), prepare) as server:
        yield server


def ldap_connection(server: SlapdServer) -> dict[str, Any]:
    """The directory's Airflow Connection (JSON form)."""
    return {"conn_type": "ldap", "host": LOOPBACK, "port": server.port,
            "login": server.bind_user_dn("sync", "reader"), "password": "sync-secret", "extra": {"page_size": 200}}


@pytest.fixture(scope="module")
def profile_store_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the distributed profile store (database ``profiles``, empty at start)."""
    from tests.conftest import fresh_postgres_database

    return fresh_postgres_database(postgres_server, PROFILE_DB)


@pytest.fixture(scope="module")
def shared_state_dir() -> Iterator[Path]:
    """TEMPORARY (see STATE_ON_S3): the folder both workers keep the file:// state store in."""
    path = make_temp_dir("distributed-state")
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def cluster(postgres_server: PostgresServer, redis_server: RedisServer, s3_server: S3Server,
            sample_slapd: SlapdServer, profile_store_url: str, shared_state_dir: Path
            ) -> Iterator[AirflowCluster]:
    """The distributed Airflow (two Celery workers) with the project's DAGs on this configuration."""
    pg = postgres_server
    config = {
        "state_store": state_store_config(shared_state_dir),
        "profile_store": {"conn_id": PROFILE_STORE_CONN_ID},
        "directories": [directory_config()],
        "schedule": {"full": None, "incremental": None},  # triggered by the tests only
        "lease": {"poke_seconds": 1, "wait_seconds": 120},
    }
    connections = {
        LDAP_CONN_ID: ldap_connection(sample_slapd),
        PROFILE_STORE_CONN_ID: {"conn_type": "postgresql+psycopg2", "host": pg.host, "port": pg.port,
                                "login": pg.user, "password": pg.password, "schema": PROFILE_DB},
        STATE_CONN_ID: json.loads(s3_server.airflow_connection()),
    }
    s3_server.bucket(STATE_BUCKET)
    # The test process reads the run history and the state (profile-store database, object storage) through
    # the same Connections, from its environment.
    env = {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with serve("distributed Airflow (CeleryExecutor, two workers)",
                   lambda: AirflowCluster(postgres=pg, redis=redis_server, profile_sync_config=config,
                                          connections=connections)) as airflow:
            yield airflow
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class EmbeddedReference:
    """The embedded default run in this process (``run_sync``: SQLite profile store, local file state
    store) on the same directory: what the distributed runs must equal."""

    def __init__(self, tmp: Path, connection: dict[str, Any]) -> None:
        self.tmp = tmp
        self.connection = connection
        self.config = tmp / "profile_sync.yaml"
        self.config.write_text(yaml.safe_dump({
            "state_store": {"url": f"file://{tmp / 'state'}"},
            "profile_store": {"url": f"sqlite:///{tmp / 'profiles.db'}"},
            "directories": [directory_config()],
        }))
        self.runs = 0

    def resolve(self, conn_id: str):  # noqa: ANN201
        from profile_sync.run.context import ConnectionInfo

        assert conn_id == LDAP_CONN_ID, conn_id
        c = self.connection
        return ConnectionInfo(conn_id=conn_id, host=c["host"], port=c["port"], login=c["login"],
                              password=c["password"], extra=dict(c["extra"]))

    def sync(self, mode: str) -> dict[str, Any]:
        from profile_sync.config.loader import load_settings
        from profile_sync.run.context import RunContext
        from profile_sync.run.local import run_sync

        self.runs += 1
        ctx = RunContext(run_id=f"reference-{self.runs}", settings=load_settings(self.config), project_root=self.tmp,
                         requested_mode=mode, resolve_connection=self.resolve)
        out = run_sync(ctx)
        assert ctx.history.get(ctx.run_key)["status"] == "success"
        return out

    @property
    def store(self):  # noqa: ANN201
        return profile_store(f"sqlite:///{self.tmp / 'profiles.db'}", self.config)


def profile_store(url: str, config: Path):  # noqa: ANN201
    """A ProfileStore on ``url`` with the properties of ``config``."""
    from profile_sync.config.loader import load_settings
    from profile_sync.profile_store.schema import property_specs
    from profile_sync.profile_store.store import ProfileStore, make_engine

    return ProfileStore(make_engine(url), property_specs(load_settings(config)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_slapd: SlapdServer) -> EmbeddedReference:
    return EmbeddedReference(tmp_path_factory.mktemp("embedded-reference"), ldap_connection(sample_slapd))


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)
