"""The task wrapper: Airflow context → RunContext → one engine step."""

from __future__ import annotations

from typing import Any, Callable

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)


def run_context(context: dict[str, Any]):  # noqa: ANN201
    """The engine's RunContext for the running task."""
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext
    from profile_sync_airflow.hooks import resolve_connection

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
    )


def call_step(step: Callable[..., dict], context: dict[str, Any], *args: Any) -> dict:
    """Run one engine step; terminal engine errors fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from profile_sync.errors import ProfileSyncError

    ctx = run_context(context)
    try:
        return step(ctx, *args)
    except ProfileSyncError as exc:
        if exc.terminal:
            raise AirflowFailException(str(exc)) from exc
        raise
