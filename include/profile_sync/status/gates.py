"""Gate reports from the run history: each gate of each run, its outcome, failed checks first.

A gate's report is kept in the run history by the steps themselves: ``report`` of a gate that let the
export go on, ``gate_report`` of one that stopped it (``run/gate_step.py``, ``run/bcs_steps.py``); the
run's ``approval`` says whether it waits for, or got, an administrator's decision.
"""

from __future__ import annotations

from typing import Any, Literal

GATE_STEPS = ("validate_export", "validate_bcs")
Outcome = Literal["passed", "overridden", "approved", "waiting", "rejected", "timed_out", "unanswered", "failed"]


def _outcome(step: dict[str, Any], report: dict[str, Any], approval: dict[str, Any] | None) -> Outcome:
    if step.get("step") == "validate_export" and approval and approval.get("status") in (
            "waiting", "approved", "rejected", "timed_out", "unanswered"):
        return approval["status"]
    if step.get("status") == "failed":
        return "failed"
    if report.get("overridden"):
        return "overridden"
    return "passed"


def gate_reports(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest run first: one entry per gate step with its report (failed checks first) and outcome."""
    out = []
    for doc in docs:
        approval = doc.get("approval")
        for s in doc.get("steps") or []:
            if s.get("step") not in GATE_STEPS:
                continue
            report = s.get("gate_report") or s.get("report")
            if not report:
                continue
            checks = sorted(report.get("checks") or [], key=lambda c: (c.get("passed", True), c.get("name", "")))
            out.append({
                "run_id": doc.get("run_id"), "dag_id": doc.get("dag_id"), "run_status": doc.get("status"),
                "started_at": s.get("started_at") or doc.get("started_at"), "step": s["step"],
                "connection": s.get("connection"),
                "outcome": _outcome(s, report, approval),
                "error": s.get("error"),
                "approval": approval if s["step"] == "validate_export" else None,
                "failed": sum(1 for c in checks if not c.get("passed", True)),
                "checks": checks,
                "overrides": [o for o in doc.get("overrides") or []
                              if o.get("gate") == report.get("gate")],
            })
    return out


def pending_approvals(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs waiting for an administrator's decision now."""
    return [{"run_id": d.get("run_id"), "dag_id": d.get("dag_id"), **(d.get("approval") or {})}
            for d in docs if d.get("status") == "running" and (d.get("approval") or {}).get("status") == "waiting"]
