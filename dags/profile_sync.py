"""Profile Sync DAGs: ``profile_sync_full`` and ``profile_sync_incremental``.

Both are built by one factory from the configuration (``PROFILE_SYNC_CONFIG``).
Each task calls exactly one engine step (``include/profile_sync/run/steps.py``)
and returns a small summary. The run history, gate reports and counts live in
the state store; see README.md.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, PokeReturnValue, get_current_context, task, task_group

_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT / "include", _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from profile_sync.config import load_settings  # noqa: E402  (small: YAML + pydantic, no pandas)
from profile_sync_airflow.approval import ExportApprovalOperator  # noqa: E402  (Airflow's HITL operator, no pandas)

PROFILE_STORE = Asset(name="profile_sync_profile_store", uri="profile-sync://profile-store/user_profiles")
"""Updated when a synchronization finishes; downstream DAGs can be scheduled on it."""


def _step(name: str, *args: object) -> dict:
    from profile_sync.run import steps
    from profile_sync_airflow.tasks import call_step

    return call_step(getattr(steps, name), get_current_context(), *args)


def _bcs_step(name: str, connection: str) -> dict:
    from profile_sync.run import bcs_steps
    from profile_sync_airflow.tasks import call_step

    return call_step(getattr(bcs_steps, name), get_current_context(), connection)


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

        @task.sensor(task_id="start_run", poke_interval=lease.poke_seconds, timeout=max(lease.wait_seconds, 1),
                     mode="reschedule", pool="default_pool", retries=0)
        def start_run() -> PokeReturnValue:
            """Take the state-store lease (waits while another run holds it) and choose the mode."""
            from profile_sync.run import steps
            from profile_sync_airflow.tasks import run_context

            summary = steps.start_run(run_context(get_current_context()))
            return PokeReturnValue(is_done=summary is not None, xcom_value=summary)

        @task
        def import_directory(connection: str) -> dict:
            return _step("import_directory", connection)

        @task
        def import_profile_store() -> dict:
            return _step("import_profile_store")

        @task
        def synchronize() -> dict:
            return _step("synchronize")

        @task(retries=0)
        def validate_export() -> dict:
            """The gate; tripped blast-radius limits ask for approval (approve_export) instead of failing."""
            from functools import partial

            from profile_sync.run import steps
            from profile_sync_airflow.tasks import call_step

            return call_step(partial(steps.validate_export, approval=True), get_current_context())

        # Human-in-the-loop: waits (awaiting_input) for Approve / Reject when the gate asks; skipped otherwise.
        approve_export = ExportApprovalOperator(
            task_id="approve_export", gate_task_id="validate_export", retries=0,
            response_timeout=(timedelta(minutes=settings.approval.timeout_minutes)
                              if settings.approval.timeout_minutes else None))

        @task(trigger_rule="none_failed_min_one_success")  # after the gate, or after its approval
        def export_profile_store() -> dict:
            return _step("export_profile_store")

        @task
        def confirm_profile_store() -> dict:
            return _step("confirm_profile_store")

        @task
        def synchronize_writeback() -> dict:
            return _step("synchronize_writeback")

        @task
        def export_directory(connection: str) -> dict:
            return _step("export_directory", connection)

        @task
        def confirm_directory(connection: str) -> dict:
            return _step("confirm_directory", connection)

        @task(outlets=[PROFILE_STORE])
        def finish_run() -> dict:
            return _step("finish_run")

        @task(pool="default_pool", retries=2)
        def release_run() -> dict:
            """Teardown: record a failed run, discard its state, free the lease."""
            from profile_sync.run import steps
            from profile_sync_airflow.tasks import run_context

            return steps.release_run(run_context(get_current_context()))

        # Steps 9–12 exist only when a business system is configured: one mapped group,
        # one chain per business system (import → synchronize → gate → export → confirm).
        @task
        def import_bcs(connection: str) -> dict:
            return _bcs_step("import_bcs", connection)

        @task
        def synchronize_bcs(connection: str) -> dict:
            return _bcs_step("synchronize_bcs", connection)

        @task(retries=0)
        def validate_bcs(connection: str) -> dict:
            return _bcs_step("validate_bcs", connection)

        @task
        def export_bcs(connection: str) -> dict:
            return _bcs_step("export_bcs", connection)

        @task
        def confirm_bcs(connection: str) -> dict:
            return _bcs_step("confirm_bcs", connection)

        @task_group(group_id="business_system", tooltip="Steps 9–12, once per business system")
        def business_system(connection: str) -> None:
            (import_bcs(connection) >> synchronize_bcs(connection) >> validate_bcs(connection)
             >> export_bcs(connection) >> confirm_bcs(connection))

        start = start_run()
        release = release_run()
        gate, exported = validate_export(), export_profile_store()
        gate >> exported  # a passed gate skips approve_export; the export follows the gate or its approval
        directory_done = (
            start
            >> import_directory.expand(connection=directories)
            >> import_profile_store()
            >> synchronize()
            >> gate
            >> approve_export
            >> exported
            >> confirm_profile_store()
            >> synchronize_writeback()
            >> export_directory.expand(connection=directories)
            >> confirm_directory.expand(connection=directories)
        )
        if business_systems:
            directory_done = directory_done >> business_system.expand(connection=business_systems)
        directory_done >> finish_run() >> release.as_teardown(setups=start)
    return dag


profile_sync_full = build_dag("full")
profile_sync_incremental = build_dag("incremental")
