"""Run every step in DAG order in this process (tests, benchmarks, scripts without Airflow).

The order is the DAG's, from ``run/plan.py``; ``release_run`` always runs last, like the
DAG's teardown, so a failed run is recorded and leaves the committed state as it was.
Each step gets a fresh context — nothing passes from one step to the next but what the
state store, the profile store and the coordination database hold — exactly as each
Airflow task is a fresh process.
"""

from __future__ import annotations

from typing import Any

from profile_sync.config.loader import resolved_directories
from profile_sync.run import plan, steps
from profile_sync.run.context import RunContext
from profile_sync.state.errors import LeaseHeldError


def step_calls(ctx: RunContext) -> list[tuple[str, plan.Step, str | None]]:
    """(label, step, connection) for every task of one run, in the order the DAG runs them (serially)."""
    directories = [d.name for d in resolved_directories(ctx.settings)]
    systems = [b.name for b in ctx.settings.business_systems]
    out: list[tuple[str, plan.Step, str | None]] = []
    for s in plan.DIRECTORY_STEPS:
        out += [(f"{s.name}[{d}]", s, d) for d in directories] if s.per == "directory" else [(s.name, s, None)]
    for bs in systems:
        out += [(f"{s.name}[{bs}]", s, bs) for s in plan.BUSINESS_SYSTEM_STEPS]
    out.append((plan.FINISH.name, plan.FINISH, None))
    return out


def run_sync(ctx: RunContext) -> dict[str, Any]:
    """Run one synchronization; returns the summaries by step (raises what a step raises)."""
    started = steps.start_run(ctx.fresh())
    if started is None:
        holder = ctx.fresh().lease.record() or {"owner": "?", "expires_at": "?"}
        raise LeaseHeldError(holder["owner"], holder["expires_at"])
    out: dict[str, Any] = {"start_run": started}
    if started.get("skipped"):
        return out
    try:
        for label, s, connection in step_calls(ctx):
            fn = plan.engine_function(s)
            out[label] = fn(ctx.fresh(), connection) if connection is not None else fn(ctx.fresh())
    finally:
        out["release_run"] = steps.release_run(ctx.fresh())
    return out
