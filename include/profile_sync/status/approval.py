"""Is a run waiting for an administrator's approval? The hook for ``start_run``.

While a run waits for the decision on its tripped gate (``run/gate_step.py``, the DAG's
``approve_export``), it holds the lease for as long as it waits — possibly longer than the lease's
TTL. Other runs must not take the state store meanwhile: a scheduled incremental run would otherwise
wait for the lease and fail, or, once the lease expired, synchronize on top of the waiting run's state.
``start_run`` calls :func:`skip_while_waiting` before taking the lease: a run that finds another one
waiting is recorded as skipped, with the reason, and does nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from profile_sync.run.context import RunContext

SCAN_RUNS = 50
"""How many of the newest run-history documents are looked at for a waiting run."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def waiting_for_approval(ctx: "RunContext", now: datetime | None = None) -> dict[str, Any] | None:
    """The run (other than ``ctx``'s) waiting for an approval now, or None.

    A run waits while its history says ``status: running`` and ``approval.status: waiting``. A waiting run
    whose time-out passed more than one lease TTL ago (its DAG run was deleted or its scheduler gone, so
    nothing will ever answer) no longer counts.
    """
    now = now or _now()
    grace = timedelta(seconds=ctx.settings.lease.ttl_seconds)
    holder = ctx.lease.holder()
    docs = ctx.history.runs(SCAN_RUNS)
    if holder is not None and not any(d.get("run_key") == holder.get("owner") for d in docs):
        doc = ctx.history.get(holder["owner"])
        docs = [doc, *docs] if doc else docs
    for doc in docs:
        approval = doc.get("approval") or {}
        if doc.get("run_key") == ctx.run_key or doc.get("status") != "running" or approval.get("status") != "waiting":
            continue
        timeout_at = approval.get("timeout_at")
        if timeout_at and datetime.fromisoformat(timeout_at) + grace < now:
            continue
        return {"run_id": doc["run_id"], "run_key": doc.get("run_key"), "dag_id": doc.get("dag_id"),
                "requested_at": approval.get("requested_at"),
                "timeout_at": timeout_at, "checks": approval.get("checks") or [],
                "holds_lease": bool(holder and holder.get("owner") == doc.get("run_key"))}
    return None


def skip_reason(waiting: dict[str, Any]) -> str:
    checks = ", ".join(c["name"] + (f"[{c['connection']}]" if c.get("connection") else "")
                       for c in waiting.get("checks") or [])
    until = f" (until {waiting['timeout_at']} at the latest)" if waiting.get("timeout_at") else ""
    return (f"skipped: run {waiting.get('run_key') or waiting['run_id']} is waiting for an administrator's approval of its export "
            f"since {waiting['requested_at']}{until}" + (f" — {checks}" if checks else ""))


def skip_while_waiting(ctx: "RunContext") -> dict[str, Any] | None:
    """For ``start_run``, before it takes the lease: when another run waits for approval, record this run as
    skipped (run history ``status: skipped`` with ``skipped_reason``) and return the summary; else None."""
    waiting = waiting_for_approval(ctx)
    if waiting is None:
        return None
    reason = skip_reason(waiting)
    now = _now().isoformat(timespec="seconds")
    ctx.history.start(ctx.run_key, run_id=ctx.run_id, dag_id=ctx.dag_id, requested_mode=ctx.requested_mode,
                      mode=None, dry_run=ctx.dry_run, triggered_by=ctx.triggered_by, status="skipped",
                      skipped_reason=reason, waiting_for=waiting.get("run_key") or waiting["run_id"], finished_at=now)
    return {"run_id": ctx.run_id, "run_key": ctx.run_key, "skipped": True, "reason": reason,
            "waiting_for": waiting.get("run_key") or waiting["run_id"]}
