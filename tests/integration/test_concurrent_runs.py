"""Two runs at once: two DAGs whose runs share a run id (``scheduled__<Sunday>`` of the weekly full and the
every-15-minutes incremental), started in two processes at the same moment, serialise: one waits for the
other's lease, each has its own history, and the result is what one run gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.helpers.delta import assert_same, snapshot
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness

pytestmark = pytest.mark.timeout(600)

RUN_ID = "scheduled__2026-12-06T00:00:00+00:00"


def _start(h: SyncHarness, dag_id: str, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PROFILE_SYNC_TEST_CONNECTIONS": json.dumps(h.connections),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.run_cli", str(h.config), str(h.tmp), dag_id,
                             RUN_ID, mode, "240"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_dags_with_the_same_run_id_serialise(backend, tmp_path, request):
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_url")
    h = SyncHarness(tmp_path / "both", profile_store_url=url, lease={"poke_seconds": 1})
    clean = SyncHarness(tmp_path / "clean")
    try:
        team(30).write(h.ldif)
        procs = [_start(h, "profile_sync_full", "full"), _start(h, "profile_sync_incremental", "incremental")]
        results = [p.communicate(timeout=300) for p in procs]
        if [p.returncode for p in procs] != [0, 0]:  # the whole error of each process (an assert would cut it)
            pytest.fail("\n".join(f"exit {p.returncode}: {out}{err}" for p, (out, err) in zip(procs, results)))

        history = h.inspector().history
        full = history.get(f"profile_sync_full/{RUN_ID}")
        inc = history.get(f"profile_sync_incremental/{RUN_ID}")
        assert full["status"] == inc["status"] == "success"
        assert full["dag_id"] == "profile_sync_full" and inc["dag_id"] == "profile_sync_incremental"
        # One of them waited for the other: the lease named the other run while it waited.
        waited = [d for d in (full, inc) if d.get("waiting_for")]
        assert len(waited) == 1, (full.get("waiting_for"), inc.get("waiting_for"))
        other = inc if waited[0] is full else full
        assert waited[0]["waiting_for"]["owner"] == other["run_key"]
        # Never interleaved: the second started its steps only after the first had finished.
        first_end = max(s["started_at"] for s in other["steps"])
        assert min(s["started_at"] for s in waited[0]["steps"]) >= first_end
        assert {s["step"] for s in full["steps"]} == {s["step"] for s in inc["steps"]}

        clean.sync(team(30))
        assert_same(snapshot(h), snapshot(clean), "two runs with the same run id")
        assert h.inspector().lease.record() is None
    finally:
        h.close()
        clean.close()
