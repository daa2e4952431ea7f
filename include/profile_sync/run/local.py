"""Run every step in DAG order in this process (tests, benchmarks, scripts without Airflow).

The order is the DAG's (DESIGN §2); ``release_run`` always runs last, like the
DAG's teardown, so a failed run is recorded and leaves the committed state as it was.
"""

from __future__ import annotations

from typing import Any

from profile_sync.config.loader import resolved_directories
from profile_sync.run import steps
from profile_sync.run.context import RunContext
from profile_sync.state.errors import LeaseHeldError


def run_sync(ctx: RunContext) -> dict[str, Any]:
    """Run one synchronization; returns the summaries by step (raises what a step raises)."""
    started = steps.start_run(ctx)
    if started is None:
        holder = ctx.lease.holder() or {"owner": "?", "expires_at": "?"}
        raise LeaseHeldError(holder["owner"], holder["expires_at"])
    names = [d.name for d in resolved_directories(ctx.settings)]
    out: dict[str, Any] = {"start_run": started}
    try:
        for name in names:
            out[f"import_directory[{name}]"] = steps.import_directory(ctx, name)
        for fn in (steps.import_profile_store, steps.synchronize, steps.validate_export,
                   steps.export_profile_store, steps.confirm_profile_store, steps.synchronize_writeback):
            out[fn.__name__] = fn(ctx)
        for name in names:
            out[f"export_directory[{name}]"] = steps.export_directory(ctx, name)
        for name in names:
            out[f"confirm_directory[{name}]"] = steps.confirm_directory(ctx, name)
        if ctx.settings.business_systems:
            from profile_sync.run import bcs_steps

            for bs in ctx.settings.business_systems:
                for fn in (bcs_steps.import_bcs, bcs_steps.synchronize_bcs, bcs_steps.validate_bcs,
                           bcs_steps.export_bcs, bcs_steps.confirm_bcs):
                    out[f"{fn.__name__}[{bs.name}]"] = fn(ctx, bs.name)
        out["finish_run"] = steps.finish_run(ctx)
    finally:
        out["release_run"] = steps.release_run(ctx)
    return out
