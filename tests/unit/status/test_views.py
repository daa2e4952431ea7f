"""The status, run-history, gate and quarantine views of the engine (status/*), and the redaction.

On real synchronizations where the engine runs them (counts, run summaries, reports, quarantine), on
hand-built inputs where the logic is a decision table (``describe``, the chart series, redaction).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import json

import pytest

from profile_sync.gates import GateFailedError
from profile_sync.status import overview
from profile_sync.status.frames import CommittedState
from profile_sync.status.gates import gate_reports, pending_approvals
from profile_sync.status.quarantine import quarantine
from profile_sync.status.redact import mask_url, redact
from profile_sync.status.runs import chart_series, delta_method, run_summary
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness


def directory(n: int = 20) -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, n + 1):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    d.group(1000, "Everyone", [f"CN=Person {i},{USERS}" for i in range(1, n + 1)])
    d.person(103, "Twin One", upn="twin1@contoso.com")
    d.person(103, "Twin Two", upn="twin2@contoso.com")
    return d


@pytest.fixture
def history(tmp_path):
    """A full run, an incremental run with one change, and a run stopped by the gate."""
    h = SyncHarness(tmp_path)
    d = directory()
    h.sync(d)
    d.entries[f"CN=Person 3,{USERS}"]["title"] = ["Boss"]
    h.sync(d, mode="incremental")
    for i in range(1, 15):
        d.remove(f"CN=Person {i},{USERS}")
    with pytest.raises(GateFailedError):
        h.sync(d)
    return h


def test_overview_counts_and_last_runs(history):
    ctx = history.context()
    o = overview.overview(ctx, CommittedState(ctx.store))
    assert o["counts"] == {"people": 20, "marked_for_deletion": 0, "groups": 1, "memberships": 20, "quarantined": 2}
    assert (o["last_full"]["run_id"], o["last_full"]["status"]) == ("test-run-3", "failed")
    assert o["last_full"]["failed_step"] == "validate_export"
    assert (o["last_incremental"]["run_id"], o["last_incremental"]["changes"]["updates"]) == ("test-run-2", 1)
    assert o["lease"] is None and o["running"] is None and o["waiting_for_approval"] is None
    assert o["committed"]["version"] == 2  # the failed run committed nothing
    committed_at = datetime.fromisoformat(o["committed"]["committed_at"])  # when the incremental run committed
    started, finished = (datetime.fromisoformat(o["last_incremental"][k]) for k in ("started_at", "finished_at"))
    assert started - timedelta(seconds=1) <= committed_at <= finished + timedelta(seconds=1)  # ISO to the second
    assert o["configuration"]["directories"][0]["name"] == "contoso"


def test_site_pushes_in_the_history_are_not_synchronization_runs(history):
    ctx = history.context()
    key = "profile_sync_sites/manual__later@site:hr"  # as run/site_steps.py records a push
    ctx.history.start(key, dag_id="profile_sync_sites", kind="site_push", site="hr", requested_mode="full",
                      mode="full", status="running", started_at="2099-01-01T00:00:00+00:00")
    ctx.history.finish(key, "success")
    assert ctx.history.runs(1)[0]["kind"] == "site_push"  # the newest document of the history
    o = overview.overview(ctx, CommittedState(ctx.store))
    assert o["last_full"]["run_id"] == "test-run-3" and o["last_run"]["run_id"] == "test-run-3"


def test_a_running_run_is_seen_through_the_lease(tmp_path):
    h = SyncHarness(tmp_path)
    ctx = h.context()
    assert ctx.lease.try_acquire("manual__now")
    ctx.history.start("manual__now", dag_id="profile_sync_full", mode="full")
    ctx.history.record_step("manual__now", {"step": "import_directory", "status": "success"})
    o = overview.overview(ctx, CommittedState(ctx.store))
    assert o["running"]["run_id"] == "manual__now" and o["running"]["last_step"] == "import_directory"
    state = overview.describe(o, [{"dag_id": "profile_sync_full", "run_id": "manual__now", "state": "running",
                                   "tasks": {"start_run": "success", "synchronize": "running"}}])
    assert state == {"state": "running", "activities": [{
        "kind": "running", "run_id": "manual__now", "dag_id": "profile_sync_full", "mode": "full",
        "since": o["running"]["since"], "steps": ["synchronize"]}]}


@pytest.mark.parametrize(("engine", "runs", "expected"), [
    ({}, [], ("idle", [])),
    ({}, [{"run_id": "q", "dag_id": "d", "state": "queued", "tasks": {}}], ("queued", ["queued"])),
    ({"running": {"run_id": "a", "dag_id": "d", "last_step": "synchronize"}},
     [{"run_id": "a", "dag_id": "d", "state": "running", "tasks": {"synchronize": "running"}},
      {"run_id": "b", "dag_id": "i", "state": "running", "tasks": {"start_run": "up_for_reschedule"}}],
     ("running", ["running", "waiting_for_lease"])),
    ({"running": {"run_id": "a", "dag_id": "d"}, "waiting_for_approval": {"run_id": "a", "dag_id": "d"}},
     [{"run_id": "a", "dag_id": "d", "state": "running", "tasks": {"approve_export": "awaiting_input"}},
      {"run_id": "b", "dag_id": "i", "state": "running", "tasks": {"start_run": "running"}}],
     ("waiting_for_approval", ["waiting_for_approval", "waiting_for_lease"])),
], ids=["idle", "queued", "running-and-a-run-waiting-for-the-lease", "waiting-for-approval"])
def test_describe_says_what_is_going_on(engine, runs, expected):
    state = overview.describe(engine, runs)
    assert (state["state"], [a["kind"] for a in state["activities"]]) == expected


def test_run_summaries_steps_in_dag_order_and_the_chart(history):
    docs = history.context().history.runs()
    summaries = [run_summary(d) for d in docs]
    assert [s["run_id"] for s in summaries] == ["test-run-3", "test-run-2", "test-run-1"]
    failed, incremental, full = summaries
    assert (failed["status"], failed["failed_step"]) == ("failed", "validate_export")
    assert "people_deletes" in failed["error"]
    assert failed["changes"] == {"adds": 0, "updates": 0, "deletes": 14, "from_step": "synchronize"}
    assert [s["step"] for s in full["steps"]][:5] == ["import_directory", "import_profile_store", "synchronize",
                                                      "validate_export", "export_profile_store"]
    assert full["changes"]["adds"] == 20 and incremental["changes"]["updates"] == 1
    assert full["delta"] == {"contoso": "full read"} and full["duration_s"] >= 0
    assert incremental["mode"] == "incremental"
    chart = chart_series(summaries)
    assert [(p["run_id"], p["adds"], p["updates"], p["deletes"]) for p in chart] == [
        ("test-run-1", 20, 0, 0), ("test-run-2", 0, 1, 0), ("test-run-3", 0, 0, 14)]
    json.dumps(summaries)  # what the page gets is JSON


@pytest.mark.parametrize(("step", "expected"), [
    ({"unchanged_source": True}, "unchanged source: not read (watermark equal)"),
    ({"delta_read": True, "delta_entries": 3, "delta_deletes": 1}, "delta read (3 changed, 1 deleted)"),
    ({"full_import_reason": "DirSync cookie refused"}, "full read: DirSync cookie refused"),
    ({"delta_method": "dirsync"}, "dirsync"),
    ({"read": "delta: DirSync", "delta_read": True, "delta_entries": 35, "delta_deletes": 2},
     "delta: DirSync (35 changed, 2 deleted)"),
    ({"read": "full read", "full_import_reason": "the DC was restored from a backup", "delta_note": "DirSync refused"},
     "full read: the DC was restored from a backup; DirSync refused"),
    ({"read": "unchanged source (same file hash): not read", "unchanged_source": True},
     "unchanged source (same file hash): not read"),
    ({"read": "delta: entryCSN + accesslog", "delta_read": True, "status": "failed"}, "failed"),
    ({}, "full read"),
])
def test_the_delta_method_of_an_import_comes_from_what_it_recorded(step, expected):
    assert delta_method(step) == expected


def test_gate_reports_failed_checks_first_with_their_outcome(history):
    docs = history.context().history.runs()
    reports = gate_reports(docs)
    assert [(r["run_id"], r["outcome"]) for r in reports] == [
        ("test-run-3", "failed"), ("test-run-2", "passed"), ("test-run-1", "passed")]
    failed = reports[0]
    # 14 of 20 left (the group still names them): deletes, shrink and unresolved members; failed first.
    assert failed["failed"] == 3
    assert [c["name"] for c in failed["checks"][:3]] == ["people_deletes", "reference_resolution", "source_shrink"]
    assert not any(c["passed"] for c in failed["checks"][:3]) and all(c["passed"] for c in failed["checks"][3:])
    assert "14 profiles would be marked for deletion" in failed["checks"][0]["message"]
    waiting = {**docs[0], "status": "running", "approval": {"status": "waiting", "requested_at": "t"}}
    assert gate_reports([waiting])[0]["outcome"] == "waiting"
    assert pending_approvals([waiting]) == [{"run_id": "test-run-3", "dag_id": "manual", "status": "waiting",
                                            "requested_at": "t"}]
    assert pending_approvals(docs) == []


def test_quarantine_lists_what_is_held_and_why(history):
    ctx = history.context()
    q = quarantine(CommittedState(ctx.store))
    assert q["total"] == 2 and q["by_level"] == {"import": 2} and q["by_connection"] == {"contoso": 2}
    assert sorted(o["dn"] for o in q["objects"]) == [f"CN=Twin One,{USERS}", f"CN=Twin Two,{USERS}"]
    assert all(o["reason"].startswith("duplicate anchor") and o["first_seen"] and o["last_seen"] for o in q["objects"])


def test_frames_are_cached_per_committed_version(history):
    ctx = history.context()
    calls = []

    class Counting:
        def committed_manifest(self):
            return ctx.store.committed_manifest()

        def read_committed_frame(self, key, columns=None):
            calls.append(key)
            return ctx.store.read_committed_frame(key, columns=columns)

    a, b = CommittedState(Counting(), cache_key="k"), CommittedState(Counting(), cache_key="k")
    assert a.frame("ps/people").equals(b.frame("ps/people"))
    assert calls == ["ps/people"]
    assert a.frame("no/such/frame") is None


@pytest.mark.parametrize(("given", "shown"), [
    ("postgresql://svc:S3cret@db.example:5432/profiles", "postgresql://svc:***@db.example:5432/profiles"),
    ("error: could not connect to ldaps://cn=admin:pa55@dc1 (timeout)", "error: could not connect to ldaps://cn=admin:***@dc1 (timeout)"),
    ("sqlite:////tmp/profiles.db", "sqlite:////tmp/profiles.db"),
    ("https://example.org/a:b", "https://example.org/a:b"),
])
def test_passwords_in_urls_are_masked(given, shown):
    assert mask_url(given) == shown


def test_redact_hides_secret_fields_and_urls_at_any_depth():
    doc = {"steps": [{"error": "mysql://u:hunter2@h/db refused", "password": "hunter2"}],
           "watermark": {"dirsync_cookie": "AAAA", "method": "dirsync"}, "api_key": None, "title": "Title 1"}
    out = redact(doc)
    assert out == {"steps": [{"error": "mysql://u:***@h/db refused", "password": "***"}],
                   "watermark": {"dirsync_cookie": "***", "method": "dirsync"}, "api_key": None, "title": "Title 1"}
    assert "hunter2" not in json.dumps(out)
