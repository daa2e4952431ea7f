"""The state store commits per step and promotes only finished runs; the lease excludes."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from profile_sync.state.errors import StateConflictError
from profile_sync.state.lease import Lease
from profile_sync.state.store import StateStore


def test_a_run_that_never_promotes_leaves_the_committed_state(tmp_path):
    store = StateStore(tmp_path)
    run = store.open_run("r1")
    run.write_frame("cs/x", pd.DataFrame({"a": [1]}))
    run.commit_step()
    store.promote("r1")
    failed = store.open_run("r2")
    failed.write_frame("cs/x", pd.DataFrame({"a": [2]}))
    failed.commit_step()
    store.discard_run("r2")
    assert store.read_committed_frame("cs/x")["a"].tolist() == [1]
    assert len(list((tmp_path / "objects").glob("*.parquet"))) == 1


def test_a_retried_step_resumes_from_the_last_committed_step(tmp_path):
    store = StateStore(tmp_path)
    run = store.open_run("r1")
    run.write_frame("a", pd.DataFrame({"v": [1]}))
    run.commit_step()
    run.write_frame("b", pd.DataFrame({"v": [2]}))  # the step dies before committing
    again = store.open_run("r1")
    assert again.read_frame("a")["v"].tolist() == [1]
    assert again.read_frame("b") is None


def test_promote_refuses_when_another_run_committed_meanwhile(tmp_path):
    store = StateStore(tmp_path)
    store.open_run("r1")
    store.open_run("r2")
    store.promote("r1")
    with pytest.raises(StateConflictError, match="version 1 was committed since"):
        store.promote("r2")


def test_strings_read_back_as_objects_with_none(tmp_path):
    store = StateStore(tmp_path)
    run = store.open_run("r1")
    run.write_frame("f", pd.DataFrame({"s": ["x", None]}, dtype=object))
    frame = run.read_frame("f")
    assert frame["s"].tolist() == ["x", None]


def test_lease_excludes_a_second_owner_and_is_released(tmp_path):
    lease = Lease(tmp_path, ttl_seconds=60)
    assert lease.try_acquire("run-a")
    assert not lease.try_acquire("run-b")
    assert lease.try_acquire("run-a")  # renewal
    assert not lease.release("run-b")
    assert lease.release("run-a")
    assert lease.try_acquire("run-b")


def test_an_expired_lease_can_be_taken_over(tmp_path):
    lease = Lease(tmp_path, ttl_seconds=60)
    assert lease.try_acquire("dead-run")
    record = json.loads((tmp_path / "lease.json").read_text())
    record["expires_at"] = "2000-01-01T00:00:00+00:00"
    (tmp_path / "lease.json").write_text(json.dumps(record))
    assert lease.try_acquire("new-run")
    assert lease.holder()["owner"] == "new-run"


def test_lease_expiry_is_real_time(tmp_path):
    lease = Lease(tmp_path, ttl_seconds=60)
    lease.ttl = lease.ttl / 60  # one second
    assert lease.try_acquire("a")
    time.sleep(1.2)
    assert lease.try_acquire("b")


def test_a_step_can_read_only_the_columns_it_needs(tmp_path):
    run = StateStore(tmp_path).open_run("r1")
    run.write_frame("ps/people", pd.DataFrame({"profile_id": ["a"], "state": ["active"], "picture": [b"\xff"]}))
    run.commit_step()
    frame = run.read_frame("ps/people", ["profile_id", "state", "not_there"])
    assert list(frame.columns) == ["profile_id", "state"]
    assert list(run.read_frame("ps/people").columns) == ["profile_id", "state", "picture"]
