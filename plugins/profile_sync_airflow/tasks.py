"""The task wrapper: Airflow context → RunContext → one engine step.

Every task builds its RunContext afresh from the Airflow context (every task is a
fresh process, often on another machine); the engine loads the run's state from
the state store and the coordination tables.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)


def run_context(context: dict[str, Any]):  # noqa: ANN201
    """The engine's RunContext for the running task."""
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext
    from profile_sync_airflow.hooks import resolve_connection, state_store_filesystem

    params = context.get("params") or {}
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    triggered_by = getattr(dag_run, "triggered_by", None)
    return RunContext(
        run_id=context["run_id"],
        settings=load_settings(),
        dag_id=context["dag"].dag_id,
        requested_mode=params.get("mode", "full"),
        dry_run=bool(params.get("dry_run", False)),
        triggered_by=" ".join(str(x) for x in (run_type, triggered_by) if x is not None) or None,
        resolve_connection=resolve_connection,
        override_gates=bool(params.get("override_gates", False)),
        override_reason=(params.get("override_reason") or "").strip() or None,
        triggering_user=getattr(dag_run, "triggering_user_name", None),
        resolve_filesystem=state_store_filesystem,
        run_type=str(getattr(run_type, "value", run_type)) if run_type is not None else None,
        logical_date=getattr(dag_run, "logical_date", None),
        data_interval_end=getattr(dag_run, "data_interval_end", None),
        is_run_active=_run_is_active(context.get("ti")),
    )


def _run_is_active(ti: Any) -> Callable[[str], bool | None]:
    """Asks Airflow whether the DAG run holding the lease is still queued or running (it may be between tasks)."""

    def active(run_key: str) -> bool | None:
        dag_id, _, run_id = run_key.partition("/")
        if ti is None or not run_id:
            return None
        try:
            state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        except Exception:  # noqa: BLE001 - no such DAG run (a script's run, a deleted run): not running here
            return False
        return str(getattr(state, "value", state)) in ("queued", "running")

    return active


def call_step(step: Callable[..., dict], context: dict[str, Any], *args: Any) -> dict:
    """Run one engine step; terminal engine errors fail the task without retries."""
    with terminal_errors_fail():
        return step(run_context(context), *args)


@contextmanager
def terminal_errors_fail() -> Iterator[None]:
    """Terminal engine errors → ``AirflowFailException`` (no retries); transient ones are raised for a retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from profile_sync.errors import ProfileSyncError

    try:
        yield
    except ProfileSyncError as exc:
        if exc.terminal:
            raise AirflowFailException(str(exc)) from exc
        raise
