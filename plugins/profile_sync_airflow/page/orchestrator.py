"""What only Airflow knows, for the page: active runs and their tasks, next scheduled runs, who started a
run, the approval task of a run — and answering it through Airflow's own human-in-the-loop endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from airflow.api_fastapi.app import API_ROOT_PATH
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

from profile_sync_airflow.approval import TASK_ID as APPROVAL_TASK
from profile_sync_airflow.page.access import DAG_IDS

ACTIVE = ("queued", "running")
_PRIORITY = ["awaiting_input", "running", "up_for_reschedule", "queued", "scheduled", "up_for_retry", "deferred",
             "failed", "upstream_failed", "success", "skipped", "removed", None]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def grid_url(dag_id: str, run_id: str) -> str:
    """The run in Airflow's grid (relative to the Airflow UI's base URL)."""
    from urllib.parse import quote

    return f"{API_ROOT_PATH.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def required_actions_url(dag_id: str, run_id: str) -> str:
    return grid_url(dag_id, run_id) + f"/tasks/{APPROVAL_TASK}/required_actions"


def active_runs() -> list[dict[str, Any]]:
    """Queued and running runs of the Profile Sync DAGs with their task states (mapped tasks: the most
    telling state of their instances)."""
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id.in_(DAG_IDS), DagRun.state.in_(ACTIVE))).all()
        out = []
        for r in runs:
            tis = session.execute(select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == r.dag_id, TaskInstance.run_id == r.run_id)).all()
            tasks: dict[str, str | None] = {}
            for task_id, state in tis:
                state = _state(state)
                if task_id not in tasks or _PRIORITY.index(state if state in _PRIORITY else None) < \
                        _PRIORITY.index(tasks[task_id] if tasks[task_id] in _PRIORITY else None):
                    tasks[task_id] = state
            out.append({"dag_id": r.dag_id, "run_id": r.run_id, "state": _state(r.state),
                        "run_type": _state(r.run_type), "triggering_user": r.triggering_user_name,
                        "queued_at": _iso(r.queued_at), "start_date": _iso(r.start_date), "tasks": tasks,
                        "grid_url": grid_url(r.dag_id, r.run_id)})
        return out


def schedules() -> list[dict[str, Any]]:
    """Per DAG: paused or not, its schedule, and when the scheduler creates its next run."""
    with create_session() as session:
        models = {m.dag_id: m for m in session.scalars(select(DagModel).where(DagModel.dag_id.in_(DAG_IDS))).all()}
    out = []
    for dag_id in DAG_IDS:
        m = models.get(dag_id)
        if m is None:
            out.append({"dag_id": dag_id, "known": False})
            continue
        out.append({"dag_id": dag_id, "known": True, "paused": bool(m.is_paused),
                    "schedule": m.timetable_summary, "schedule_description": m.timetable_description,
                    "next_run_at": _iso(m.next_dagrun_create_after) if not m.is_paused else None,
                    "next_logical_date": _iso(m.next_dagrun)})
    return out


def run_details(run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Airflow's side of these runs: state, how and by whom they were started, the link to the grid."""
    if not run_ids:
        return {}
    with create_session() as session:
        rows = session.scalars(select(DagRun).where(DagRun.dag_id.in_(DAG_IDS), DagRun.run_id.in_(run_ids))).all()
        approvals = dict(session.execute(select(TaskInstance.run_id, TaskInstance.state).where(
            TaskInstance.dag_id.in_(DAG_IDS), TaskInstance.run_id.in_(run_ids),
            TaskInstance.task_id == APPROVAL_TASK)).all())
        return {r.run_id: {"dag_id": r.dag_id, "airflow_state": _state(r.state), "run_type": _state(r.run_type),
                           "triggered_by": _state(r.triggered_by), "triggering_user": r.triggering_user_name,
                           "approval_task_state": _state(approvals.get(r.run_id)),
                           "grid_url": grid_url(r.dag_id, r.run_id)} for r in rows}


class NotWaiting(Exception):
    """The run's approval task is not waiting for an answer."""


def answer_approval(dag_id: str, run_id: str, user: Any, approve: bool, comment: str | None) -> dict[str, Any]:
    """Answer the run's ``approve_export`` with Airflow's own human-in-the-loop endpoint logic (the same as
    ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve_export/-1/hitlDetails``): the
    response is recorded with the user and the parked task resumes."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail

    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == APPROVAL_TASK,
            TaskInstance.map_index == -1).options(joinedload(TaskInstance.hitl_detail)))
        if ti is None or _state(ti.state) != "awaiting_input" or ti.hitl_detail is None:
            raise NotWaiting(f"run {run_id!r} of {dag_id} is not waiting for an approval "
                             f"(task {APPROVAL_TASK}: {_state(ti.state) if ti else 'none'})")
        params = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in (ti.hitl_detail.params or {}).items()}
        if "comment" in params or not params:
            params["comment"] = comment
        payload = UpdateHITLDetailPayload(chosen_options=["Approve" if approve else "Reject"], params_input=params)
        response = update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id=APPROVAL_TASK,
                                      update_hitl_detail_payload=payload, user=user, session=session, map_index=-1)
        return {"run_id": run_id, "dag_id": dag_id, "decision": "approved" if approve else "rejected",
                "responded_by": dict(response.responded_by), "responded_at": _iso(response.responded_at),
                "comment": comment}
