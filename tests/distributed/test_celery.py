"""Profile Sync on a real distributed Airflow (issue 11, item 6): CeleryExecutor with a Redis broker, two
Celery workers that share nothing but the servers, the metadata database and the profile store on
PostgreSQL, the directory on slapd. Runs are triggered through the REST API, as an operator would.

The tests run in order and build on each other (one cluster per module): a full run, an incremental run
after directory changes, then an incremental run whose worker dies inside the profile-store export.
After each, the profile store must equal what the embedded in-process runner gives on the same directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ldap3
import psycopg2
import pytest

from tests.distributed.conftest import (
    BASE_DN,
    PROFILE_DB,
    STATE_BUCKET,
    STATE_ON_S3,
    STATE_PREFIX,
    dumps,
    profile_store,
)
from tests.helpers.delta import assert_same, snapshot
from tests.servers._util import ServerError, wait_until

pytestmark = pytest.mark.timeout(900)

FULL, INCREMENTAL = "profile_sync_full", "profile_sync_incremental"
PEOPLE_DN = f"ou=people,{BASE_DN}"


class Scenario:
    """What the earlier tests of the module left behind."""

    done: set[str] = set()

    @classmethod
    def require(cls, phase: str) -> None:
        if phase not in cls.done:
            pytest.skip(f"needs the {phase!r} phase of this module, which did not pass")


class _Store:
    """``snapshot()`` takes an object with a ``store``."""

    def __init__(self, store) -> None:  # noqa: ANN001
        self.store = store


def _distributed(cluster, profile_store_url: str) -> _Store:
    return _Store(profile_store(profile_store_url, _config_path(cluster)))


def _config_path(cluster):  # noqa: ANN001, ANN202
    return cluster.control / "profile_sync.yaml"


def _history(cluster, dag_id: str, run_id: str) -> dict[str, Any]:
    """The run's history document, read where the workers recorded it."""
    from profile_sync.config.loader import load_settings
    from profile_sync.run.context import RunContext
    from profile_sync_airflow.hooks import resolve_connection  # AIRFLOW_CONN_* of this process

    ctx = RunContext(run_id=run_id, dag_id=dag_id, settings=load_settings(_config_path(cluster)),
                     resolve_connection=resolve_connection)
    doc = ctx.history.get(ctx.run_key)
    assert doc is not None, f"no history for {dag_id} {run_id}"
    return doc


def _run_ok(cluster, dag_id: str) -> tuple[str, list[dict[str, Any]]]:
    """Trigger ``dag_id`` through the REST API, wait (bounded), assert success; returns run id and task instances."""
    run_id = cluster.trigger(dag_id)
    run = cluster.wait_for_run(dag_id, run_id, timeout=420)
    assert run["state"] == "success", cluster.describe_run(dag_id, run_id)
    return run_id, cluster.task_instances(dag_id, run_id)


@contextlib.contextmanager
def _meanwhile(reference, mode: str) -> Iterator[None]:  # noqa: ANN001
    """Run the embedded reference on the same directory in a thread while the distributed run goes on
    (it only reads the directory); its result is waited for (bounded) when the block ends."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(reference.sync, mode)
        yield
        done.result(timeout=300)


def _hosts(tis: list[dict[str, Any]]) -> set[str]:
    return {ti["hostname"] for ti in tis if ti["state"] == "success"}


def _people(conn: ldap3.Connection) -> list[tuple[str, str]]:
    """``(dn, uid)`` of the people under ou=people that no one reports to, sorted by uid."""
    conn.search(PEOPLE_DN, "(objectClass=inetOrgPerson)", attributes=["uid", "manager"])
    managers = {str(m).lower() for e in conn.entries for m in e.manager.values}
    return sorted(((e.entry_dn, str(e.uid)) for e in conn.entries
                   if e.entry_dn.lower() not in managers and "Service Accounts" not in e.entry_dn),
                  key=lambda p: p[1])


def _modify(conn: ldap3.Connection, dn: str, **changes: str) -> None:
    ok = conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in changes.items()})
    assert ok, conn.result


def _pg_people(profile_store_url: str, cluster) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    people = snapshot(_distributed(cluster, profile_store_url))[0]
    return {r["user_name"]: r for r in people.to_dict("records")}


# --------------------------------------------------------------------------------------------- tests


def test_full_run_spreads_over_both_workers_and_equals_the_embedded_run(cluster, reference, profile_store_url,
                                                                       s3_server, shared_state_dir):
    with _meanwhile(reference, "full"):
        run_id, tis = _run_ok(cluster, FULL)
    assert all(ti["try_number"] == 1 for ti in tis), dumps(tis)
    assert _hosts(tis) == set(cluster.workers), f"tasks ran on {_hosts(tis)}: {dumps(tis)}"
    doc = _history(cluster, FULL, run_id)
    assert (doc["status"], doc["mode"]) == ("success", "full")
    # The workers handed the state to each other where the configuration says (see STATE_ON_S3).
    if STATE_ON_S3:
        assert s3_server.client().list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"{STATE_PREFIX}/")["KeyCount"] > 0
    else:
        assert any((shared_state_dir / "state").rglob("*.parquet"))

    distributed, embedded = snapshot(_distributed(cluster, profile_store_url)), snapshot(reference)
    assert len(distributed[0]) > 250 and len(distributed[2]) > 250  # the sample landed, memberships too
    assert_same(distributed, embedded, "the full run")
    Scenario.done.add("full")


def test_incremental_run_after_directory_changes_equals_the_embedded_run(cluster, reference, sample_slapd,
                                                                       profile_store_url):
    Scenario.require("full")
    conn = sample_slapd.connect()
    people = _people(conn)
    for i, (dn, _) in enumerate(people[:5]):
        _modify(conn, dn, title=f"Distributed title {i}")
    _modify(conn, people[5][0], telephoneNumber="+1 555 0100")
    assert conn.delete(people[6][0]), conn.result
    conn.unbind()

    with _meanwhile(reference, "incremental"):
        run_id, tis = _run_ok(cluster, INCREMENTAL)
    doc = _history(cluster, INCREMENTAL, run_id)
    assert (doc["status"], doc["mode"]) == ("success", "incremental"), dumps(doc)
    assert _hosts(tis) == set(cluster.workers), f"tasks ran on {_hosts(tis)}: {dumps(tis)}"
    stored = _pg_people(profile_store_url, cluster)
    assert stored[people[0][1]]["title"] == "Distributed title 0"
    assert stored[people[6][1]]["state"] == "marked_for_deletion"
    assert_same(snapshot(_distributed(cluster, profile_store_url)), snapshot(reference), "the incremental run")
    Scenario.done.add("incremental")


@contextlib.contextmanager
def _memberships_locked(postgres_server):  # noqa: ANN001, ANN202
    """Hold an ACCESS EXCLUSIVE lock on ``group_memberships`` of the profile store: an export blocks there,
    inside its transaction, after writing profiles and groups."""
    locker = psycopg2.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                              password=postgres_server.password, dbname=PROFILE_DB)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE group_memberships IN ACCESS EXCLUSIVE MODE")
        yield locker
    finally:
        locker.rollback()
        locker.close()


def _blocked_backends(postgres_server) -> int:  # noqa: ANN001
    out = postgres_server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{PROFILE_DB}' "
                               "AND wait_event_type = 'Lock'")
    return int(out.strip())


def _kill_the_exporting_worker(cluster, run_id: str, postgres_server) -> str:  # noqa: ANN001
    """Once ``export_profile_store`` of the run is inside its transaction and blocked on the memberships,
    SIGKILL every process of the worker running it (then release the lock); returns that worker's name."""
    cluster.wait_for_task(INCREMENTAL, run_id, "import_profile_store", {"success"})  # done with the store
    with _memberships_locked(postgres_server):
        export = cluster.wait_for_task(INCREMENTAL, run_id, "export_profile_store", {"running"})
        try:
            wait_until(lambda: _blocked_backends(postgres_server) > 0, 120,
                       "the export to block on group_memberships", interval=0.2)
        except ServerError as exc:
            raise AssertionError(f"{exc}\n{cluster.describe_run(INCREMENTAL, run_id)}") from None
        victim = export["hostname"]
        assert victim in cluster.workers, dumps(export)
        cluster.kill_worker(victim)  # the machine dies mid-transaction
    return victim


def test_worker_killed_inside_the_export_is_retried_on_the_other_worker_and_converges(
        cluster, reference, sample_slapd, profile_store_url, postgres_server):
    Scenario.require("incremental")
    conn = sample_slapd.connect()
    people = _people(conn)
    for i, (dn, _) in enumerate(people[10:14]):
        _modify(conn, dn, title=f"After the crash {i}")
    assert conn.delete(people[14][0]), conn.result
    new_dn = f"uid=newhire,ou=Users,ou=Sales,{PEOPLE_DN}"
    assert conn.add(new_dn, ["top", "person", "organizationalPerson", "inetOrgPerson"], {
        "uid": "newhire", "cn": "New Hire", "sn": "Hire", "givenName": "New", "mail": "newhire@contoso.com",
        "title": "Account Executive", "manager": people[10][0]}), conn.result
    conn.unbind()

    with _meanwhile(reference, "incremental"):
        run_id = cluster.trigger(INCREMENTAL)
        victim = _kill_the_exporting_worker(cluster, run_id, postgres_server)
        run = cluster.wait_for_run(INCREMENTAL, run_id, timeout=420)
    survivor = next(name for name in cluster.workers if name != victim)
    assert run["state"] == "success", cluster.describe_run(INCREMENTAL, run_id)
    tries = cluster.tries(INCREMENTAL, run_id, "export_profile_store")
    assert [t["hostname"] for t in tries] == [victim, survivor], dumps(tries)
    assert tries[0]["state"] != "success" and tries[-1]["state"] == "success", dumps(tries)
    tis = cluster.task_instances(INCREMENTAL, run_id)
    assert sorted(ti["task_id"] for ti in tis if ti["try_number"] > 1) == ["export_profile_store"], dumps(tis)
    doc = _history(cluster, INCREMENTAL, run_id)
    assert (doc["status"], doc["mode"]) == ("success", "incremental"), dumps(doc)
    stored = _pg_people(profile_store_url, cluster)
    assert stored["newhire"]["state"] == "active"
    assert stored[people[14][1]]["state"] == "marked_for_deletion"
    assert_same(snapshot(_distributed(cluster, profile_store_url)), snapshot(reference),
                "the run whose worker was killed")
