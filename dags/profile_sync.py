"""Profile Sync DAGs: ``profile_sync_full`` and ``profile_sync_incremental``.

Both are built by one factory from the configuration (``PROFILE_SYNC_CONFIG``).
Each task calls exactly one engine step (``include/profile_sync/run/steps.py``),
in the order of ``include/profile_sync/run/plan.py``, and returns a small summary — or, with
``tasks.<kind>: fused``, two tasks run the steps before and after the export approval, each
step still loading its state from the state store.
The run history, gate reports and counts live in the coordination tables of the
profile-store database; see README.md.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, PokeReturnValue, chain, get_current_context, task, task_group

_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT / "include", _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from profile_sync.config import load_settings  # noqa: E402  (small: YAML + pydantic, no pandas)
from profile_sync.run import plan  # noqa: E402  (the step order; no pandas)
from profile_sync.run.plan import Step  # noqa: E402
from profile_sync_airflow.approval import ExportApprovalOperator  # noqa: E402  (Airflow's HITL operator, no pandas)

PROFILE_STORE = Asset(name="profile_sync_profile_store", uri="profile-sync://profile-store/user_profiles")
"""Updated when a synchronization finishes; downstream DAGs can be scheduled on it."""


def _call(step: Step, *args: object, **kwargs: object) -> dict:
    from functools import partial

    from profile_sync_airflow.tasks import call_step

    return call_step(partial(plan.engine_function(step), **kwargs), get_current_context(), *args)


def _task(step: Step, call_kwargs: dict | None = None, **extra: object):  # noqa: ANN202
    """The TaskFlow task of one engine step (mapped steps take the connection's name)."""
    options: dict[str, object] = {"task_id": step.name, **extra}
    kwargs = call_kwargs or {}
    if step.retries is not None:
        options["retries"] = step.retries
    if step.per == "run":
        def run_step() -> dict:
            return _call(step, **kwargs)
    else:
        def run_step(connection: str) -> dict:
            return _call(step, connection, **kwargs)
    run_step.__doc__ = f"Engine step {step.module}.{step.name} (see README: What a run does)."
    return task(**options)(run_step)


def _fused(fused: plan.Fused):  # noqa: ANN202
    """The TaskFlow task of a fused layout's span of steps (``tasks.<kind>: fused``)."""

    def run_steps(approval: bool = False) -> dict:
        from functools import partial

        from profile_sync.run.local import run_steps as engine_run_steps
        from profile_sync_airflow.tasks import call_step

        out = call_step(partial(engine_run_steps, first=fused.first, last=fused.last, approval=approval),
                        get_current_context())
        # The gate's summary at the top (approve_export reads approval_needed from it), every step's status under it.
        gate = out.get("validate_export") or {}
        return {**gate, "steps": {label: (v or {}).get("status") for label, v in out.items()}}

    run_steps.__doc__ = (f"Engine steps {fused.first or 'the first'} through {fused.last or 'finish_run'}, one after "
                         "the other in this process (tasks layout: fused; see README: Speed).")
    return task(task_id=fused.task_id)(run_steps)


def build_dag(kind: str) -> DAG:
    """The DAG for ``kind`` (``full`` or ``incremental``)."""
    settings = load_settings()
    directories = [d.name for d in settings.directories]
    business_systems = [b.name for b in settings.business_systems]
    schedule = settings.schedule.full if kind == "full" else settings.schedule.incremental
    lease = settings.lease

    with DAG(
        dag_id=f"profile_sync_{kind}",
        description=f"{kind.capitalize()} synchronization: directories → profile store → write-back"
                    + (" → business systems" if business_systems else ""),
        schedule=schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["profile_sync", kind],
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "pool": settings.pool},
        params={
            "mode": Param(kind, enum=["full", "incremental"], title="Mode",
                          description="Full: import and synchronize everything. Incremental: only changes "
                                      "(becomes full when it must, with the reason in the run history)."),
            "dry_run": Param(False, type="boolean", title="Dry run",
                             description="Compute and report pending exports; write nothing."),
            "override_gates": Param(False, type="boolean", title="Override safety gates",
                                    description="Let this one run through failed blast-radius limits (deletes, "
                                                "updates, blanking, shrink, references, e-mail syntax). Recorded in "
                                                "the run history with your name and the reason; quarantine and "
                                                "structural checks still apply."),
            "override_reason": Param(None, type=["null", "string"], title="Override reason",
                                     description="Why the gates are overridden (required with Override safety gates)."),
        },
        doc_md=__doc__,
    ) as dag:

        # The engine fails a run that waited lease.wait_seconds, naming the holder; the sensor's own
        # timeout is only a backstop.
        @task.sensor(task_id="start_run", poke_interval=lease.poke_seconds,
                     timeout=lease.wait_seconds + 10 * lease.poke_seconds + 60, mode="reschedule",
                     pool="default_pool", retries=0)
        def start_run() -> PokeReturnValue:
            """Take the state-store lease (waits while another run holds it) and choose the mode."""
            from profile_sync.run import steps
            from profile_sync_airflow.tasks import run_context, terminal_errors_fail

            from profile_sync.errors import TransientError

            with terminal_errors_fail():
                try:
                    summary = steps.start_run(run_context(get_current_context()))
                except TransientError as exc:  # the database busy or restarting: poke again (the timeout bounds it)
                    logging.getLogger(__name__).warning("start_run: %s; trying again at the next poke", exc)
                    return PokeReturnValue(is_done=False)
            if summary is not None and summary.get("skipped"):
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(summary["reason"])
            return PokeReturnValue(is_done=summary is not None, xcom_value=summary)

        @task(pool="default_pool", retries=2)
        def release_run() -> dict:
            """Teardown: record a failed run, discard its state, free the lease."""
            from profile_sync.run import steps
            from profile_sync_airflow.tasks import run_context

            return steps.release_run(run_context(get_current_context()))

        # The step order comes from run/plan.py (the in-process runner reads it too). Steps 9–12 exist only when
        # a business system is configured: one mapped group, one chain per business system.
        @task_group(group_id="business_system", tooltip="Steps 9–12, once per business system")
        def business_system(connection: str) -> None:
            chain(*[_task(s)(connection) for s in plan.BUSINESS_SYSTEM_STEPS])

        start = start_run()
        layout = getattr(settings.tasks, kind)
        if layout == "fused":
            first, second = (_fused(f) for f in plan.FUSED)
            gate = first(approval=True)
            approve = ExportApprovalOperator(
                task_id="approve_export", gate_task_id=plan.FUSED[0].task_id, retries=0,
                response_timeout=(timedelta(minutes=settings.approval.timeout_minutes)
                                  if settings.approval.timeout_minutes else None))
            exported = second.override(trigger_rule="none_failed_min_one_success", outlets=[PROFILE_STORE])()
            gate >> exported
            chain(start, gate, approve, exported, release_run().as_teardown(setups=start))
            return dag
        tasks = []
        for s in plan.DIRECTORY_STEPS:
            if s.per == "directory":
                tasks.append(_task(s).expand(connection=directories))
            elif s.name == "validate_export":  # tripped blast-radius limits ask for approval instead of failing
                gate = _task(s, call_kwargs={"approval": True})()
                # Human-in-the-loop: waits (awaiting_input) for Approve / Reject when the gate asks; skipped
                # otherwise. The export follows the gate, or the gate's approval.
                approve = ExportApprovalOperator(
                    task_id="approve_export", gate_task_id="validate_export", retries=0,
                    response_timeout=(timedelta(minutes=settings.approval.timeout_minutes)
                                      if settings.approval.timeout_minutes else None))
                tasks += [gate, approve]
            elif s.name == "export_profile_store":
                exported = _task(s, trigger_rule="none_failed_min_one_success")()
                gate >> exported
                tasks.append(exported)
            else:
                tasks.append(_task(s)())
        if business_systems:
            tasks.append(business_system.expand(connection=business_systems))
        finish = _task(plan.FINISH, outlets=[PROFILE_STORE])()
        chain(start, *tasks, finish, release_run().as_teardown(setups=start))
    return dag


profile_sync_full = build_dag("full")
profile_sync_incremental = build_dag("incremental")
