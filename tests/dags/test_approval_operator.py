"""``approve_export`` (plugins/profile_sync_airflow/approval.py): what it does with Airflow's answer.

The waiting itself (``awaiting_input``, the Required Actions, the scheduler's time-out sweep) needs a
running Airflow: tests/ui/test_page.py. Here the operator gets the events Airflow resumes it with —
an answer (chosen option, user, comment) or the time-out error — on a run that really waits
(engine state from a synchronization), and must turn them into the engine's decision.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from profile_sync.run import steps
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness


@pytest.fixture
def waiting(tmp_path, monkeypatch):
    """A run stopped by its gate, waiting for approval; the task context Airflow would give it."""
    h = SyncHarness(tmp_path)
    d = FakeDirectory()
    for i in range(1, 41):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com")
    h.sync(d)
    for i in range(11, 23):
        d.remove(f"CN=Person {i},{USERS}")
    d.write(h.ldif)
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(h.config))
    monkeypatch.setenv("PROFILE_SYNC_HOME", str(tmp_path))
    ctx = h.context()
    assert steps.start_run(ctx) is not None
    steps.import_directory(ctx, "contoso")
    steps.import_profile_store(ctx)
    steps.synchronize(ctx)
    summary = steps.validate_export(ctx, approval=True)
    assert summary["approval_needed"]
    context = {"run_id": ctx.run_id, "dag": SimpleNamespace(dag_id=ctx.dag_id), "params": {},
               "dag_run": SimpleNamespace(run_type="manual", triggering_user_name="carol"),
               "ti": SimpleNamespace(xcom_pull=lambda task_ids: summary)}
    yield h, ctx, context
    steps.release_run(ctx)


def operator():  # noqa: ANN201
    from profile_sync_airflow.approval import ExportApprovalOperator

    return ExportApprovalOperator(task_id="approve_export")


def test_an_approval_is_recorded_with_the_user_time_and_comment(waiting):
    h, ctx, context = waiting
    at = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
    result = operator().execute_complete(context, {
        "chosen_options": ["Approve"], "params_input": {"comment": "  planned (CHG-9) "},
        "responded_at": at, "responded_by_user": {"id": "dave", "name": "Dave"}, "timedout": False})
    assert result["approved"] is True and result["approved_by"] == "Dave"
    approval = ctx.history.get(ctx.run_key)["approval"]
    assert {k: approval[k] for k in ("status", "by", "at", "comment")} == {
        "status": "approved", "by": "Dave", "at": "2026-12-06T09:30:00+00:00", "comment": "planned (CHG-9)"}


@pytest.mark.parametrize(("event", "status", "says"), [
    ({"chosen_options": ["Reject"], "params_input": {"comment": None},
      "responded_at": datetime(2026, 12, 6, tzinfo=timezone.utc), "responded_by_user": {"id": "e", "name": "Eve"}},
     "rejected", "rejected by Eve"),
    ({"error": "The Human-in-the-loop response timeout has passed without a response.", "error_type": "timeout"},
     "timed_out", "nobody approved the export"),
], ids=["rejected", "timed-out"])
def test_a_rejection_or_time_out_fails_the_task_without_retry(waiting, event, status, says):
    from airflow.sdk.exceptions import AirflowFailException

    h, ctx, context = waiting
    with pytest.raises(AirflowFailException, match=says):
        operator().execute_complete(context, event)
    assert ctx.history.get(ctx.run_key)["approval"]["status"] == status


def test_an_answer_outside_the_options_is_refused(waiting):
    h, ctx, context = waiting
    with pytest.raises(ValueError, match="not in"):
        operator().execute_complete(context, {"chosen_options": ["Maybe"], "params_input": {},
                                              "responded_at": None, "responded_by_user": None})
    assert ctx.history.get(ctx.run_key)["approval"]["status"] == "waiting"


def test_a_passed_gate_skips_the_approval():
    from airflow.sdk.exceptions import AirflowSkipException

    context = {"run_id": "r", "ti": SimpleNamespace(xcom_pull=lambda task_ids: {"approval_needed": False})}
    with pytest.raises(AirflowSkipException, match="no approval needed"):
        operator().execute(context)
