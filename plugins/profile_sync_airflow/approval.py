"""``approve_export``: an administrator's approval of a run whose blast-radius limits tripped.

Airflow 3.3 human-in-the-loop (``ApprovalOperator``): when ``validate_export`` reports
``approval_needed``, the task parks in ``awaiting_input`` with the gate report as its body, and is
answered on the Profile Sync page or in Airflow's *Required Actions* (Approve / Reject, with a
comment). When the gate passed, the task is skipped and the export follows ``validate_export``.

The decision is the engine's (``run/gate_step.approve_export``): approve → recorded (who, when,
comment) in the run history and the export goes on; reject or time-out → recorded, the task fails
without retry, the run ends failed and ``release_run`` discards its state — nothing is written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

GATE_TASK = "validate_export"
TASK_ID = "approve_export"
COMMENT = "comment"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return str(value)


class ExportApprovalOperator(ApprovalOperator):
    """Waits for Approve / Reject of a tripped export gate; skipped when the gate passed."""

    ui_color = "#fde68a"

    def __init__(self, *, gate_task_id: str = GATE_TASK, params: Any = None, **kwargs: Any) -> None:
        from airflow.sdk.definitions.param import ParamsDict

        kwargs.setdefault("task_id", TASK_ID)
        kwargs.setdefault("subject", "Profile Sync: approve the export?")
        # ``params`` arrives merged with the DAG's (HITLOperator keeps only the task's own): add the comment field.
        params = ParamsDict(params or {})
        params[COMMENT] = Param(None, type=["null", "string"], title="Comment", source="task",
                                description="Why (recorded in the run history with your name).")
        super().__init__(fail_on_reject=False, params=params, **kwargs)
        self.gate_task_id = gate_task_id

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        summary = context["ti"].xcom_pull(task_ids=self.gate_task_id) or {}
        if not summary.get("approval_needed"):
            raise AirflowSkipException("the gate let the export through: no approval needed")
        checks = ", ".join(summary.get("failed_checks") or [])
        self.subject = f"Profile Sync: approve the export of {context['run_id']}? ({checks})"
        self.body = summary.get("approval_body") or "The export gate tripped blast-radius limits."
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from functools import partial

        from profile_sync.run import gate_step
        from profile_sync_airflow.tasks import call_step

        if "error" in event:  # the response time-out passed (the scheduler's awaiting_input sweep)
            decision = gate_step.ApprovalDecision("timed_out", at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        else:
            chosen = event.get("chosen_options") or []
            self.validate_chosen_options(chosen)
            user = event.get("responded_by_user") or {}
            comment = (event.get("params_input") or {}).get(COMMENT)
            decision = gate_step.ApprovalDecision(
                "approved" if chosen == [self.APPROVE] else "rejected",
                by=user.get("name") or user.get("id"), at=_iso(event.get("responded_at")),
                comment=(comment or "").strip() or None)
        return call_step(partial(gate_step.approve_export, decision=decision), context)
