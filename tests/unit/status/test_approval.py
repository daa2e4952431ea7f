"""Approval of a tripped blast-radius gate, engine side (run/gate_step.py, status/approval.py).

The steps run one by one as the DAG runs them: ``validate_export(ctx, approval=True)`` asks instead of
failing, the decision comes to ``approve_export``; ``release_run`` always ends the run. What the
approval changes (the export goes on, the run history records who, when and why) and what a
rejection, a time-out or stale state leave (nothing written, the run failed) is asserted on the
profile store, the committed state and the run history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from profile_sync.gates import GateFailedError
from profile_sync.gates.errors import GateNotApprovedError
from profile_sync.gates.report import CheckResult, GateReport
from profile_sync.run import steps
from profile_sync.run.context import RunContext
from profile_sync.run.gate_step import ApprovalDecision, approve_export, needs_approval
from profile_sync.status import skip_while_waiting, waiting_for_approval
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness

N = 40


def forty() -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, N + 1):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}",
                 proxyAddresses=[f"SMTP:p{i}@contoso.com"])
    d.group(1000, "Everyone", [f"CN=Person {i},{USERS}" for i in range(1, N + 1)])
    return d


def leave(d: FakeDirectory, numbers) -> None:  # noqa: ANN001
    gone = {f"CN=Person {i},{USERS}" for i in numbers}
    for dn in gone:
        d.remove(dn)
    d.entries[f"CN=Everyone,{USERS}"]["member"] = [m for m in d.entries[f"CN=Everyone,{USERS}"]["member"]
                                                   if m not in gone]


@pytest.fixture
def synced(tmp_path):
    h = SyncHarness(tmp_path, approval={"timeout_minutes": 90})
    d = forty()
    h.sync(d)
    leave(d, range(11, 23))  # 12 of 40 leave: 30 % > 5 %, 12 > 10
    d.write(h.ldif)
    return h, d


def until_gate(ctx: RunContext) -> dict:
    """start_run … validate_export as the DAG runs them (the gate may ask for approval)."""
    assert steps.start_run(ctx) is not None
    steps.import_directory(ctx, "contoso")
    steps.import_profile_store(ctx)
    steps.synchronize(ctx)
    return steps.validate_export(ctx, approval=True)


def after_gate(ctx: RunContext) -> None:
    for fn in (steps.export_profile_store, steps.confirm_profile_store, steps.synchronize_writeback):
        fn(ctx)
    steps.export_directory(ctx, "contoso")
    steps.confirm_directory(ctx, "contoso")
    steps.finish_run(ctx)


def marked(h: SyncHarness) -> set[str]:
    p = h.profiles()
    return set(p.loc[p["state"] == "marked_for_deletion", "user_principal_name"])


def snapshot(h: SyncHarness, ctx: RunContext) -> tuple:
    p = h.profiles().drop(columns=["created_at", "updated_at"], errors="ignore").sort_index()
    return p.to_dict("records"), ctx.store.committed_manifest()


def test_a_tripped_blast_radius_gate_asks_and_the_approval_lets_the_export_go_on(synced):
    h, _ = synced
    ctx = h.context()
    summary = until_gate(ctx)
    assert summary["approval_needed"] is True
    assert sorted(summary["failed_checks"]) == ["people_deletes[contoso]", "source_shrink[contoso]"]
    body = summary["approval_body"]
    assert "**people_deletes [contoso]**" in body and "12 profiles would be marked for deletion" in body
    assert "`CN=Person 11,OU=Users,DC=contoso,DC=com`" in body  # samples name the people
    request = ctx.history.get(ctx.run_key)["approval"]
    assert request["status"] == "waiting"
    asked = datetime.fromisoformat(request["requested_at"])
    assert datetime.fromisoformat(request["timeout_at"]) - asked == timedelta(minutes=90)
    assert marked(h) == set()  # nothing written while it waits

    # Another run (the scheduled incremental) sees the waiting run and skips, with the reason recorded.
    other = h.context(mode="incremental")
    waiting = waiting_for_approval(other)
    assert waiting["run_id"] == ctx.run_id and waiting["holds_lease"] is True
    skipped = skip_while_waiting(other)
    assert skipped["skipped"] is True and ctx.run_id in skipped["reason"]
    doc = other.history.get(other.run_key)
    assert doc["status"] == "skipped" and "waiting for an administrator's approval" in doc["skipped_reason"]
    assert "people_deletes[contoso]" in doc["skipped_reason"]
    assert other.lease.holder()["owner"] == ctx.run_key  # the waiting run keeps the state store

    try:
        result = approve_export(ctx, decision=ApprovalDecision("approved", by="alice", at="2026-12-06T10:00:00+00:00",
                                                               comment="contractors left (CHG-7)"))
        after_gate(ctx)
    finally:
        steps.release_run(ctx)
    assert result["approved_by"] == "alice" and sorted(result["checks"]) == ["people_deletes[contoso]",
                                                                     "source_shrink[contoso]"]
    assert marked(h) == {f"p{i}@contoso.com" for i in range(11, 23)}
    doc = ctx.history.get(ctx.run_key)
    assert doc["status"] == "success"
    assert {k: doc["approval"][k] for k in ("status", "by", "at", "comment")} == {
        "status": "approved", "by": "alice", "at": "2026-12-06T10:00:00+00:00", "comment": "contractors left (CHG-7)"}
    (entry,) = doc["overrides"]
    assert (entry["via"], entry["by"], entry["reason"]) == ("approval", "alice", "contractors left (CHG-7)")
    assert {c["name"] for c in entry["checks"]} == {"people_deletes", "source_shrink"}
    step = next(s for s in doc["steps"] if s["step"] == "approve_export")
    assert step["status"] == "success"
    report = ctx.store.committed_manifest()["values"]["gate/validate_export"]
    assert report["overridden"] is True and report["overridden_by"] == "alice"
    assert waiting_for_approval(h.context()) is None


@pytest.mark.parametrize(("decision", "says"), [
    (ApprovalDecision("rejected", by="bob", comment="not planned"), "rejected by bob"),
    (ApprovalDecision("timed_out"), "nobody approved the export"),
])
def test_a_rejected_or_timed_out_approval_writes_nothing(synced, decision, says):
    h, _ = synced
    ctx = h.context()
    before = snapshot(h, ctx)
    assert until_gate(ctx)["approval_needed"] is True
    try:
        with pytest.raises(GateNotApprovedError, match=says):
            approve_export(ctx, decision=decision)
    finally:
        steps.release_run(ctx)
    assert snapshot(h, ctx) == before  # profile store and committed state as they were
    doc = ctx.history.get(ctx.run_key)
    assert doc["status"] == "failed"
    assert doc["approval"]["status"] == decision.decision and doc["approval"]["by"] == decision.by
    step = next(s for s in doc["steps"] if s["step"] == "approve_export")
    assert step["status"] == "failed" and says in step["error"] and "nothing was written" in step["error"]
    assert ctx.lease.holder() is None
    assert waiting_for_approval(h.context()) is None


def test_a_run_that_ends_while_it_waits_closes_the_request_and_writes_nothing(synced):
    """approve_export never recorded a decision (Airflow failed the resumed task as "killed externally",
    apache/airflow#72716, or the run was stopped): the teardown ends the run failed and closes the request."""
    from profile_sync.status.gates import gate_reports

    h, _ = synced
    ctx = h.context()
    before = snapshot(h, ctx)
    assert until_gate(ctx)["approval_needed"] is True
    steps.release_run(ctx)  # the DAG's teardown; approve_export never got to record anything
    assert snapshot(h, ctx) == before
    doc = ctx.history.get(ctx.run_key)
    assert doc["status"] == "failed"
    assert "before a decision was recorded" in doc["error"] and "nothing was written" in doc["error"]
    assert doc["approval"]["status"] == "unanswered" and doc["approval"]["ended_at"] == doc["finished_at"]
    assert doc["approval"]["requested_at"]  # the request's fields are kept
    (report,) = [r for r in gate_reports([doc]) if r["step"] == "validate_export"]
    assert report["outcome"] == "unanswered"
    assert ctx.lease.holder() is None
    assert waiting_for_approval(h.context()) is None


def test_an_approval_after_another_run_committed_state_is_refused(synced):
    """The lease expired while the run waited and another run committed: the pending exports are stale."""
    h, _ = synced
    ctx = h.context()
    before = snapshot(h, ctx)
    assert until_gate(ctx)["approval_needed"] is True
    ctx.lease.release(ctx.run_key)  # as if the lease had expired
    intruder = h.context()  # another run committed meanwhile
    assert intruder.lease.try_acquire(intruder.run_key).acquired
    intruder.store.open_run(intruder.run_key, owner=intruder.run_key).commit_step(base_version=before[1]["version"])
    intruder.store.promote(intruder.run_key, intruder.run_key)
    intruder.lease.release(intruder.run_key)
    assert ctx.lease.try_acquire(ctx.run_key).acquired
    try:
        with pytest.raises(GateNotApprovedError, match="stale"):
            approve_export(ctx, decision=ApprovalDecision("approved", by="alice"))
    finally:
        steps.release_run(ctx)
    assert snapshot(h, ctx)[0] == before[0]
    assert ctx.history.get(ctx.run_key)["approval"]["error"] == "the committed state changed while the run waited"


@pytest.mark.parametrize("case", ["dry_run", "approval_disabled", "structural"])
def test_no_approval_is_asked_for_a_dry_run_when_disabled_or_for_a_structural_check(tmp_path, case):
    h = SyncHarness(tmp_path, **({"approval": {"enabled": False}} if case == "approval_disabled" else {}))
    d = forty()
    h.sync(d)
    if case == "structural":
        leave(d, range(1, N + 1))  # everybody gone: source_not_empty (never approvable) fails too
    else:
        leave(d, range(11, 23))
    d.write(h.ldif)
    ctx = h.context(dry_run=case == "dry_run")
    try:
        with pytest.raises(GateFailedError) as failed:
            until_gate(ctx)
    finally:
        steps.release_run(ctx)
    if case == "structural":
        assert "source_not_empty" in str(failed.value)
    assert "approval" not in ctx.history.get(ctx.run_key)
    assert marked(h) == set()


def _check(name: str, passed: bool, overridable: bool) -> CheckResult:
    return CheckResult(name=name, passed=passed, observed=1, allowed=0, overridable=overridable)


@pytest.mark.parametrize(("checks", "expected"), [
    ([_check("people_deletes", False, True), _check("updates", False, True)], True),
    ([_check("people_deletes", False, True), _check("anchors_unique", False, False)], False),
    ([_check("people_deletes", True, True)], False),  # passed: nothing to approve
    ([_check("anchors_unique", False, False)], False),
])
def test_only_reports_failing_on_blast_radius_limits_alone_need_approval(checks, expected):
    assert needs_approval(GateReport(gate="validate_export", checks=checks)) is expected


def test_a_waiting_run_whose_time_out_long_passed_no_longer_blocks(synced):
    h, _ = synced
    ctx = h.context()
    until_gate(ctx)
    timeout_at = datetime.fromisoformat(ctx.history.get(ctx.run_key)["approval"]["timeout_at"])
    ttl = timedelta(seconds=h.context().settings.lease.ttl_seconds)
    other = h.context()
    assert waiting_for_approval(other, now=timeout_at + ttl - timedelta(seconds=1))["run_id"] == ctx.run_id
    assert waiting_for_approval(other, now=timeout_at + ttl + timedelta(seconds=1)) is None
    steps.release_run(ctx)
    assert waiting_for_approval(other, now=datetime.now(timezone.utc)) is None
