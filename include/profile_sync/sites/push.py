"""Push the profile store to one site: the entry point of the ``sites`` package.

1. read the site's watermark and decide full or incremental (and why);
2. find what to look at — incremental: profiles changed since the watermark
   (``profiles.changed_since``: ``updated_at`` or the change log) and people the
   site listed since its last push; full: every listed person;
3. read those listed people and their profiles, plan the rows to write
   (``plan.plan_site_push``), run the site's gate (``gate.site_gate``);
4. write: one transaction on the site's database — the rows in one
   ``UPDATE … FROM`` a staging table, and the new watermark
   (``site_list.write_push``). A push that fails anywhere writes nothing and
   leaves the watermark where it was; the next push reads from there again.

Why the watermark lives in the site's own database (table
``profile_sync_site_watermark``), not in the state store: it is committed in the
same transaction as the rows it describes, so it moves exactly when the write
commits — a site that dies mid-push, a refused write, a crashed worker all leave
both as they were, with no two-phase bookkeeping. A site restored from a backup
comes back with the watermark that matches its data, and its next push re-sends
what the restore lost. Site pushes never take the synchronization's lease, so a
slow or dead site never holds up the next synchronization.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import pandas as pd
from sqlalchemy.exc import OperationalError

from profile_sync.config.sites import SiteConnection
from profile_sync.gates.errors import GateFailedError
from profile_sync.gates.report import GateOverride
from profile_sync.profile_store.errors import ProfileStoreError, ProfileStoreUnavailableError
from profile_sync.profile_store.store import make_engine
from profile_sync.sites import profiles as ps
from profile_sync.sites.config import KEY, SYNCED
from profile_sync.sites.gate import site_gate
from profile_sync.sites.plan import as_flag, plan_site_push
from profile_sync.sites.site_list import ListState, inspect_site, read_keys, read_rows, write_push

Mode = Literal["full", "incremental"]
WATERMARK_VERSION = 1


@dataclass(frozen=True)
class PushRequest:
    """One push to one site."""

    site: SiteConnection
    site_url: str
    """SQLAlchemy URL of the site's database (may hold the password: never logged)."""
    profile_store_url: str
    run_id: str | None = None
    requested_mode: Mode = "incremental"
    dry_run: bool = False
    """Plan and gate, write nothing (the watermark stays)."""
    override: GateOverride | None = None
    """An administrator lets this push through a failed blast-radius gate."""


@dataclass(frozen=True)
class PushResult:
    """What one push did (recorded in the run history)."""

    site: str
    mode: Mode
    full_reason: str | None
    stats: dict[str, int]
    samples: dict[str, list[dict[str, Any]]]
    gate: dict[str, Any]
    watermark_before: dict[str, Any] | None
    watermark_after: dict[str, Any] | None
    """None when nothing was committed (dry run)."""
    rows_updated: int
    columns_added: list[str] = field(default_factory=list)
    """Columns the push added to the list (missing ones of the documented shape)."""
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """For the run history (the watermarks without their batch counts)."""
        return {"site": self.site, "mode": self.mode, "full_reason": self.full_reason, **self.stats,
                "rows_updated": self.rows_updated, "columns_added": self.columns_added, "samples": self.samples, "report": self.gate,
                "watermark_before": _brief(self.watermark_before), "watermark_after": _brief(self.watermark_after),
                "timings": self.timings}


def _brief(watermark: dict[str, Any] | None) -> dict[str, Any] | None:
    if watermark is None:
        return None
    position = {k: v for k, v in (watermark.get("position") or {}).items() if k != "batches"}
    return {**watermark, "position": position}


def _decide(req: PushRequest, before: dict[str, Any] | None, store: str, missing: tuple[str, ...]
            ) -> str | None:
    """Why this push must be a full one (None: incremental)."""
    if req.requested_mode == "full":
        return "full push requested"
    if before is None:
        return "no watermark yet (first push to this site)"
    old = list(before.get("properties") or [])
    if old != list(SYNCED):
        added = [p for p in SYNCED if p not in old]
        removed = [p for p in old if p not in SYNCED]
        return f"the properties synced to sites changed (added: {added or 'none'}; removed: {removed or 'none'})"
    if before.get("profile_store") != store:
        return "the profile store is not the one of the last push"
    if missing:
        return f"the list lacked columns {list(missing)} (added by this push)"
    return None


@dataclass(frozen=True)
class _Inputs:
    """What a push planned from."""

    reason: str | None
    """Why it is a full push (None: incremental)."""
    position: ps.ProfilePosition
    """The profile store's position the push includes (the new watermark's)."""
    listed: pd.DataFrame
    """Every listed person: ``account_name``, ``deleted`` (the gate's denominator, rename conflicts)."""
    rows: pd.DataFrame
    """The listed people looked at, with ``ROW_COLUMNS``."""
    people: pd.DataFrame
    """Their profiles."""


def _read(req: PushRequest, state: ListState, reason: str | None, before: dict[str, Any] | None,
          timings: dict[str, float]) -> _Inputs:
    """Steps 1–2: the profile store's changes since the watermark and the listed people they concern."""
    t0 = time.perf_counter()
    site, table = req.site.name, req.site.table
    store_engine, site_engine = make_engine(req.profile_store_url), make_engine(req.site_url, f"site {req.site.name!r}")
    try:
        if not ps.store_exists(store_engine):
            raise ProfileStoreError("the profile store has no profiles yet: run a synchronization first")
        changes = None
        if reason is None:
            changes = ps.changed_since(store_engine, ps.ProfilePosition.from_dict((before or {}).get("position")))
            if changes.pruned:
                reason = ("the profile store's change log does not reach back to this site's watermark (pruned, "
                          "or not kept at the last push): changes made by others since may be missing")
        if reason is not None or changes is None:
            with store_engine.connect() as conn:
                position = ps.current_position(conn)  # before the read: what changes meanwhile comes again
        else:
            position = changes.position
        timings["changes_s"] = round(time.perf_counter() - t0, 3)

        t1 = time.perf_counter()
        if reason is not None or changes is None:
            rows = read_rows(site_engine, site, table, state)
            listed = rows[[KEY, "deleted"]]
        else:
            listed = read_keys(site_engine, site, table, state)
            touched = (listed["profile_id"].isin(changes.ids) | listed[KEY].str.lower().isin(changes.names)
                       | listed["never_synced"])
            rows = read_rows(site_engine, site, table, state, keys=listed.loc[touched, KEY])
        timings["read_site_s"] = round(time.perf_counter() - t1, 3)

        t1 = time.perf_counter()
        if reason is not None:
            people = ps.read_profiles(store_engine)
        else:
            people = ps.read_profiles(store_engine, ids=rows["profile_id"].dropna(),
                                      names=rows[KEY].dropna().str.lower())
        timings["read_profiles_s"] = round(time.perf_counter() - t1, 3)
    except OperationalError as exc:
        raise ProfileStoreUnavailableError(f"profile store unreachable: {exc.orig}") from exc
    return _Inputs(reason, position, listed, rows, people)


def push_site(req: PushRequest) -> PushResult:
    """Push changed profiles of the people listed on ``req.site``; raises on failure (nothing written)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    site = req.site.name
    state = inspect_site(make_engine(req.site_url, f"site {req.site.name!r}"), site, req.site.table)
    before = json.loads(state.watermark) if state.watermark else None
    store = ps.store_identity(req.profile_store_url)
    inputs = _read(req, state, _decide(req, before, store, state.missing), before, timings)
    full = inputs.reason is not None

    t1 = time.perf_counter()
    plan = plan_site_push(inputs.rows, inputs.people, inputs.listed[KEY], full=full)
    listed_active = int((~as_flag(inputs.listed["deleted"])).sum())
    report = site_gate(site, plan, listed_active, req.site.gates, req.override)
    timings["plan_s"] = round(time.perf_counter() - t1, 3)
    if not report.allows_export:
        raise GateFailedError(report)

    after = {"version": WATERMARK_VERSION, "properties": list(SYNCED), "profile_store": store,
             "position": inputs.position.to_dict(), "push_id": uuid.uuid4().hex}  # unique: stale plans never match
    updated, added = 0, []
    t1 = time.perf_counter()
    if not req.dry_run:
        updated, added = write_push(make_engine(req.site_url, f"site {req.site.name!r}"), site, req.site.table, plan.writes,
                                    planned_from=state.watermark, watermark=json.dumps(after, sort_keys=True),
                                    now=datetime.now(timezone.utc), run_id=req.run_id,
                                    mode="full" if full else "incremental")
    timings["write_s"] = round(time.perf_counter() - t1, 3)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    stats = {"listed": len(inputs.listed), **plan.stats}
    stats["unchanged"] = stats["listed"] - stats["written"] - stats["unmatched"]  # those not looked at too
    return PushResult(site, "full" if full else "incremental", inputs.reason, stats, plan.samples,
                      report.to_dict(), before, None if req.dry_run else after, updated, added, timings)


__all__ = ["PushRequest", "PushResult", "push_site"]
