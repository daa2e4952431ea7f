"""Run every step in DAG order in this process (tests, benchmarks, scripts without Airflow).

The order is the DAG's, from ``run/plan.py``; ``release_run`` always runs last, like the
DAG's teardown, so a failed run is recorded and leaves the committed state as it was.
Each step gets a fresh context — nothing passes from one step to the next but what the
state store, the profile store and the coordination database hold — exactly as each
Airflow task is a fresh process.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from profile_sync._gc import release_memory
from profile_sync.config.loader import resolved_directories
from profile_sync.errors import TransientError
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


DAG_RETRIES = 1
"""The DAG's default task retries (``default_args``); a step's own ``retries`` wins; ``release_run`` has 2."""


def _attempts(call: Callable[[], Any], retries: int, delay: float) -> Any:
    """``call`` with Airflow's retries: a transient error (the database busy, a server restarting) runs the
    step again, in a fresh context, up to ``retries`` more times; anything else is raised at once."""
    for attempt in range(retries + 1):
        try:
            return call()
        except TransientError:
            if attempt == retries:
                raise
            time.sleep(delay)


def run_steps(ctx: RunContext, first: str | None = None, last: str | None = None, approval: bool = False,
              retries: bool = False, retry_delay: float = 1.0) -> dict[str, Any]:
    """The run's steps from ``first`` through ``last`` (step names; None: from the first / through
    ``finish_run``), in DAG order, in this process, each with a fresh context — the whole run between
    ``start_run`` and ``release_run``, or a fused task (``plan.FUSED``). ``approval`` is passed to
    ``validate_export``; ``retries``: see :func:`run_sync`. Returns the summaries by label."""
    calls = step_calls(ctx)
    names = [s.name for _label, s, _c in calls]
    for name in (first, last):
        if name is not None and name not in names:
            raise ValueError(f"no step {name!r} in this run; its steps: {', '.join(dict.fromkeys(names))}")
    start = names.index(first) if first is not None else 0
    end = len(names) - names[::-1].index(last) if last is not None else len(names)
    out: dict[str, Any] = {}
    for label, s, connection in calls[start:end]:
        fn = plan.engine_function(s)
        args = (connection,) if connection is not None else ()
        kwargs = {"approval": True} if approval and s.name == "validate_export" else {}
        try:
            out[label] = _attempts(lambda fn=fn, args=args, kwargs=kwargs: fn(ctx.fresh(), *args, **kwargs),
                                   (s.retries if s.retries is not None else DAG_RETRIES) if retries else 0,
                                   retry_delay)
        finally:
            release_memory()  # the next step starts from what it needs, not from this one's high-water mark
    return out


def run_sync(ctx: RunContext, retries: bool = False, retry_delay: float = 1.0) -> dict[str, Any]:
    """Run one synchronization; returns the summaries by step (raises what a step raises).

    ``retries=True`` runs it the way the DAG does under a scheduler: ``start_run`` treats a transient error
    as "not yet" (the sensor pokes again), each step is retried after a transient error as often as its task
    is (``retry_delay`` seconds apart instead of the DAG's 30). Off by default, so that a test sees the first
    error a step raises.
    """
    started = _attempts(lambda: steps.start_run(ctx.fresh()), 3 if retries else 0, retry_delay)
    if started is None:
        holder = ctx.fresh().lease.record() or {"owner": "?", "expires_at": "?"}
        raise LeaseHeldError(holder["owner"], holder["expires_at"])
    out: dict[str, Any] = {"start_run": started}
    if started.get("skipped"):
        return out
    try:
        out.update(run_steps(ctx, retries=retries, retry_delay=retry_delay))
    finally:
        out["release_run"] = _attempts(lambda: steps.release_run(ctx.fresh()), 2 if retries else 0, retry_delay)
    return out
