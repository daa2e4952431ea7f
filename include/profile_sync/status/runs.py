"""The run history as the page shows it: one summary per run, steps in DAG order, a chart series.

Input: run-history documents (``ctx.history.runs()`` / ``get()``); nothing else is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from profile_sync.run.report import STEP_ORDER

STEP_FIELDS = ("step", "connection", "status", "started_at", "duration_s", "adds", "updates", "deletes",
               "unchanged", "errors", "error", "message")
ORDER = [*STEP_ORDER[:STEP_ORDER.index("validate_export") + 1], "approve_export",
         *STEP_ORDER[STEP_ORDER.index("validate_export") + 1:]]
"""The steps in DAG order (``run.report.STEP_ORDER`` with the approval after the gate)."""


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
    except ValueError:
        return None


def _step_key(s: dict[str, Any]) -> tuple[int, str]:
    name = s.get("step", "")
    return (ORDER.index(name) if name in ORDER else len(ORDER), s.get("connection") or "")


def delta_method(step: dict[str, Any]) -> str:
    """How an ``import_directory`` step read its directory, from what it recorded: the delta method
    (``read``: DirSync, uSNChanged, entryCSN + accesslog, row hashes) with what the delta held, why a
    directory was read in full, and the reader's note on a fallback (``delta_note``)."""
    if step.get("status") == "failed":
        return "failed"
    how = step.get("read") or step.get("delta_method")
    note = f"; {step['delta_note']}" if step.get("delta_note") else ""
    if step.get("unchanged_source"):
        return (how or "unchanged source: not read (watermark equal)") + note
    if step.get("delta_read"):
        return (f"{how or 'delta read'} ({step.get('delta_entries', 0)} changed, "
                f"{step.get('delta_deletes', 0)} deleted)") + note
    if step.get("full_import_reason"):
        return f"full read: {step['full_import_reason']}{note}"
    return (how or "full read") + note


def _changes(steps: list[dict[str, Any]]) -> dict[str, int]:
    """People added, updated, marked for deletion by the export (what synchronize planned when it did not run)."""
    for name in ("export_profile_store", "synchronize"):
        s = next((x for x in steps if x.get("step") == name and x.get("status") == "success"), None)
        if s is not None:
            return {"adds": int(s.get("adds", 0)), "updates": int(s.get("updates", 0)),
                    "deletes": int(s.get("deletes", 0)), "from_step": name}
    return {"adds": 0, "updates": 0, "deletes": 0, "from_step": None}


def run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """One run: mode and why, who started it, outcome, per-step counts, delta method per directory."""
    steps = sorted(doc.get("steps") or [], key=_step_key)
    failed = next((s for s in steps if s.get("status") == "failed"), None)
    imports = [s for s in steps if s.get("step") == "import_directory"]
    return {
        "run_id": doc.get("run_id"),
        "dag_id": doc.get("dag_id"),
        "status": doc.get("status"),
        "mode": doc.get("mode"),
        "requested_mode": doc.get("requested_mode"),
        "full_reason": doc.get("full_reason"),
        "dry_run": bool(doc.get("dry_run")),
        "triggered_by": doc.get("triggered_by"),
        "override_requested": doc.get("override_requested"),
        "started_at": doc.get("started_at"),
        "finished_at": doc.get("finished_at"),
        "duration_s": _seconds(doc.get("started_at"), doc.get("finished_at")),
        "failed_step": failed.get("step") if failed else None,
        "error": (failed or {}).get("error") or doc.get("skipped_reason"),
        "changes": _changes(steps),
        "profile_store": doc.get("profile_store"),
        "overrides": doc.get("overrides") or [],
        "approval": doc.get("approval"),
        "quarantine": {k: v for k, v in (doc.get("quarantine") or {}).items() if k != "released_objects"},
        "delta": {s.get("connection") or "": delta_method(s) for s in imports},
        "steps": [{k: s.get(k) for k in STEP_FIELDS if k in s} for s in steps],
    }


def chart_series(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first: per finished run its duration and the people it added, updated, marked for deletion."""
    points = []
    for r in sorted(reversed(summaries), key=lambda r: r.get("started_at") or ""):  # given newest first
        if r.get("status") not in ("success", "failed"):
            continue
        points.append({"run_id": r["run_id"], "started_at": r["started_at"], "status": r["status"],
                       "mode": r.get("mode"), "duration_s": r.get("duration_s") or 0.0, **{
                           k: r["changes"][k] for k in ("adds", "updates", "deletes")}})
    return points
