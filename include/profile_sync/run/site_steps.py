"""The step of ``profile_sync_sites``: push one site and record its outcome in the run history.

Each site's push has its own run-history document, ``<run id>@site:<site>``
(``history_id``), holding the run's fields (``dag_id`` ``profile_sync_sites``,
``sites_run_id`` = the Airflow run, ``site``, ``mode``, ``full_reason``,
``status``), one ``push_site`` step record (counts, samples, the gate report,
the watermark before and after, timings) and ``attempts`` (every failed try's
error, kept when a retry succeeds). One document per site, not one per run:
sites are pushed by parallel mapped tasks, and a document written by one task
only is never overwritten by another task's read-modify-write.

Site pushes do not take the synchronization's lease (a dead site must never hold
up the next synchronization); the push's own transaction and the watermark in
the site's database keep it consistent.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from profile_sync.config.urls import sqlalchemy_url
from profile_sync.config.sites import SiteConnection
from profile_sync.errors import TerminalError
from profile_sync.gates.errors import GateFailedError
from profile_sync.gates.report import GateOverride
from profile_sync.run.context import RunContext
from profile_sync.run.gate_step import check_override_request
from profile_sync.sites import PushRequest, push_site as push

STEP = "push_site"
KIND = "site_push"
COUNTS = ("adds", "updates", "deletes", "unchanged", "errors")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def history_id(run_id: str, site: str) -> str:
    """The run-history document of ``site``'s push in run ``run_id``."""
    return f"{run_id}@site:{site}"


def site_url(ctx: RunContext, site: SiteConnection) -> str:
    """The SQLAlchemy URL of the site's database (from its Airflow Connection when it names one)."""
    if site.conn_id:
        info = ctx.resolve_connection(site.conn_id)
        if not info.uri:
            raise TerminalError(f"site {site.name!r}: connection {site.conn_id!r} has no URI")
        return sqlalchemy_url(info.uri)
    url = site.url or ""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = ctx.project_root / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return sqlalchemy_url(url)


def push_site(ctx: RunContext, site: str) -> dict[str, Any]:
    """Push ``site`` (one mapped task of ``profile_sync_sites``); a summary for XCom, details in the history."""
    connection = ctx.settings.site(site)  # unknown name: an error listing the configured sites
    doc_id = history_id(ctx.run_id, site)
    started, t0 = _now(), time.perf_counter()
    attempts = list((ctx.history.get(doc_id) or {}).get("attempts") or [])
    ctx.history.start(doc_id, dag_id=ctx.dag_id, kind=KIND, site=site, sites_run_id=ctx.run_id,
                      requested_mode=ctx.requested_mode, dry_run=ctx.dry_run, triggered_by=ctx.triggered_by,
                      status="running", started_at=started)
    try:
        requested = check_override_request(ctx)
        override = GateOverride(requested["requested_by"], requested["reason"], requested["requested_at"]) \
            if requested else None
        ctx.history.update(doc_id, override_requested=requested)
        result = push(PushRequest(site=connection, site_url=site_url(ctx, connection),
                                  profile_store_url=ctx.profile_store_url(), run_id=ctx.run_id,
                                  requested_mode=ctx.requested_mode, dry_run=ctx.dry_run, override=override))
    except Exception as exc:
        error = {"started_at": started, "failed_at": _now(), "error": str(exc),
                 "transient": not getattr(exc, "terminal", True)}
        record = {"step": STEP, "connection": site, "started_at": started, "status": "failed",
                  "duration_s": round(time.perf_counter() - t0, 3), **error}
        if isinstance(exc, GateFailedError):
            record["gate_report"] = exc.report.to_dict()
        ctx.history.record_step(doc_id, record)
        ctx.history.update(doc_id, attempts=[*attempts, error])
        ctx.history.finish(doc_id, "failed")
        raise
    stats = result.stats
    record = {"step": STEP, "connection": site, "started_at": started, "status": "success",
              "duration_s": round(time.perf_counter() - t0, 3), **result.summary(),
              "adds": 0, "errors": stats["rename_conflicts"]}
    ctx.history.record_step(doc_id, record)
    if result.gate.get("overridden") and override is not None:  # same entry shape as the export gate's
        checks = [{"name": c["name"], "connection": c["connection"], "message": c["message"]}
                  for c in result.gate["checks"] if c.get("overridden")]
        ctx.history.update(doc_id, overrides=[{"gate": result.gate["gate"], "connection": site, "by": override.by,
                                               "reason": override.reason, "at": override.at, "checks": checks}])
    ctx.history.update(doc_id, mode=result.mode, full_reason=result.full_reason, attempts=attempts)
    ctx.history.finish(doc_id, "success")
    return {"site": site, "mode": result.mode, "full_reason": result.full_reason, "dry_run": ctx.dry_run,
            **{k: record[k] for k in COUNTS}, "rows_updated": result.rows_updated,
            "duration_s": record["duration_s"], "history": doc_id}
