"""The fault table: a run killed (SIGKILL) at any moment never leaves the two stores in a state the next run
cannot recover from, on SQLite and on PostgreSQL.

For every fault point — each step boundary, inside the profile-store export's transaction, before and
after the promotion's switch — a run is started in its own process (as a worker would run it) and killed
there. Then an incremental run and a full run follow, with no manual help, and both stores are compared
with a clean run on the same directory: the profile store (every profile, group and membership) and the
committed state (connector space, metaverse links). The killed run is recorded as abandoned, its working
state removed, and no unreferenced object is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from profile_sync.profile_store import changelog
from profile_sync.run import plan
from profile_sync.state.store import object_names
from tests.conftest import ROOT
from tests.helpers.delta import assert_same, snapshot
from tests.helpers.directory import USERS, FakeDirectory, team
from tests.helpers.sync import SyncHarness

pytestmark = pytest.mark.timeout(900)

TTL = 2  # seconds: how long a dead holder's lease lasts here (a killed process never releases it)

FAULTS = (
    ["step:start_run:after"]
    + [f"step:{s.name}:after" for s in plan.DIRECTORY_STEPS]  # every step boundary ...
    + ["export_profile_store:inside",  # ... inside the export's transaction ...
       "promote:before_switch", "promote:after_switch",  # ... around the switch ...
       "step:finish_run:after"]  # ... and after the run, before its teardown released the lease
)


def _before() -> FakeDirectory:
    return team(12)


def _after() -> FakeDirectory:
    """Adds, updates, a delete, a manager change and a membership change against ``_before``."""
    d = team(12)
    d.person(3, "Person 3", upn="p3@contoso.com", manager=f"CN=Person 5,{USERS}", title="Promoted")
    d.remove(f"CN=Person 12,{USERS}")
    d.person(13, "Person 13", upn="p13@contoso.com", manager=f"CN=Person 1,{USERS}", title="New")
    d.group(1001, "Leads", [f"CN=Person {i},{USERS}" for i in (1, 2, 13)])
    d.entries[f"CN=Everyone,{USERS}"]["member"] = [f"CN=Person {i},{USERS}" for i in range(1, 12)]
    return d


def _harness(tmp, url: str | None) -> SyncHarness:
    return SyncHarness(tmp, profile_store_url=url, lease={"ttl_seconds": TTL, "wait_seconds": 60})


def _state(h: SyncHarness) -> dict:
    """The committed connector space and metaverse, comparable between two harnesses."""
    store = h.inspector().store
    cs = store.read_committed_frame("cs/contoso")
    links = store.read_committed_frame("mv/links")
    return {"cs": cs.drop(columns=[c for c in cs.columns if c.endswith("_at")]).sort_values("anchor")
            .reset_index(drop=True),
            "links": links.sort_values(list(links.columns)).reset_index(drop=True)}


def _assert_same_state(a: dict, b: dict, label: str) -> None:
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], check_dtype=False, obj=f"{key} after {label}")


def _kill_at(h: SyncHarness, point: str, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROFILE_SYNC_FAULT": point,
           "PROFILE_SYNC_TEST_CONNECTIONS": json.dumps(h.connections),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)])}
    h.runs += 1
    return subprocess.run([sys.executable, "-m", "tests.helpers.run_cli", str(h.config), str(h.tmp),
                           "profile_sync_incremental", f"test-run-{h.runs}", mode],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def reference(backend, tmp_path_factory, request):
    """The clean run: full on the first directory, then full on the second."""
    url = None if backend == "sqlite" else _database(request, "fault_reference")
    h = _harness(tmp_path_factory.mktemp("clean"), url)
    h.sync(_before())
    h.sync(_after())
    yield snapshot(h), _state(h)
    h.close()


def _database(request, name: str) -> str:
    from tests.conftest import fresh_postgres_database

    return fresh_postgres_database(request.getfixturevalue("postgres_server"), name)


@pytest.mark.parametrize("point", FAULTS)
def test_a_run_killed_at_any_point_converges(point, backend, reference, tmp_path, request):
    url = None if backend == "sqlite" else _database(request, "fault_run")
    h = _harness(tmp_path, url)
    try:
        h.sync(_before())
        _after().write(h.ldif)
        killed = _kill_at(h, point, "incremental")
        assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
        killed_key = f"profile_sync_incremental/test-run-{h.runs}"
        with h.engine.connect() as conn:  # a killed export never leaves the change log's triggers dropped
            assert changelog.has_triggers(conn), f"change-log triggers missing after a kill at {point}"

        # The next incremental run waits out the dead holder's lease, takes over and converges.
        out = h.sync(_after(), mode="incremental")
        assert out["finish_run"]["status"] == "success"
        assert_same(snapshot(h), reference[0], f"an incremental run after a kill at {point}")
        _assert_same_state(_state(h), reference[1], f"an incremental run after a kill at {point}")
        history = h.inspector().history
        dead = history.get(killed_key)
        if point != "promote:after_switch" and point != "step:finish_run:after":
            assert dead["status"] == "abandoned", dead
            assert out["start_run"]["abandoned"][0]["run_key"] == killed_key
        else:  # the switch committed, with its success record, in one transaction
            assert dead["status"] == "success", dead
        assert h.inspector().coordination.live_runs() == []
        store = h.inspector().store
        assert {o.name for o in store.location.list("objects")} == {
            n for e in store.committed_manifest()["frames"].values() for n in object_names(e)}

        h.sync(_after(), mode="full")
        assert_same(snapshot(h), reference[0], f"a full run after a kill at {point}")
        _assert_same_state(_state(h), reference[1], f"a full run after a kill at {point}")
    finally:
        h.close()
