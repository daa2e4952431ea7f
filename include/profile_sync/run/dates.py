"""Which runs synchronize, and from which date's data: dated sources, live sources and backfills.

A directory or a business system may name its data by the run's date — ``path:
exports/{{ ds }}.ldif``, ``query: SELECT … FROM hr_extract_{{ ds_nodash }}`` — so that a
backfill of the full synchronization replays those exports in date order. The committed state
remembers the date it was synchronized from (``source/ds``), and never goes back: a run whose
date is older is skipped, with the reason.

A live source (an LDAP directory, a file or table that is not dated) has no history: every
date of a backfill would read the same, current data. Such a backfill collapses to one run —
the first backfill run synchronizes; every run whose date lies before a synchronization that
already happened is skipped, naming that run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from profile_sync.config.loader import resolved_directories
from profile_sync.run.context import DATE_TEMPLATE

if TYPE_CHECKING:
    from profile_sync.config.settings import Settings
    from profile_sync.run.context import RunContext

SOURCE_DATE = "source/ds"
"""Committed value: the date whose dated sources the committed state was synchronized from."""


def dated_connections(settings: "Settings") -> list[str]:
    """Connections whose data is named by the run's date."""
    names = [d.name for d in resolved_directories(settings)
             if d.connection.type == "ldif" and DATE_TEMPLATE.search(d.connection.path or "")]
    names += [b.name for b in settings.business_systems
              if DATE_TEMPLATE.search(b.path or "") or DATE_TEMPLATE.search(b.query or "")]
    return names


def skip_reason(ctx: "RunContext") -> str | None:
    """Why this run must not synchronize (None: it must)."""
    dated = dated_connections(ctx.settings)
    if dated:
        last = ctx.store.committed_manifest()["values"].get(SOURCE_DATE)
        if last is not None and ctx.ds < last:
            return (f"the dated sources ({', '.join(dated)}) of {ctx.ds} are older than those the committed state "
                    f"was synchronized from ({last}); a synchronization never moves the profile store back in time")
        return None
    if ctx.run_type != "backfill" or ctx.data_interval_end is None:
        return None
    after = _synchronized_after(ctx, ctx.data_interval_end.isoformat(timespec="seconds"))
    if after is None:
        return None
    return (f"the sources are live (a directory has no history: every date of a backfill reads today's data); "
            f"run {after['run_key']} synchronized them at {after['started_at']}, after this run's date {ctx.ds}: "
            "this date is skipped, not synchronized again")


def _synchronized_after(ctx: "RunContext", moment: str) -> dict[str, Any] | None:
    for doc in ctx.history.runs(500):
        if doc.get("run_key") == ctx.run_key or doc.get("status") != "success" or doc.get("kind"):
            continue
        if (doc.get("started_at") or "") >= moment:
            return doc
    return None
