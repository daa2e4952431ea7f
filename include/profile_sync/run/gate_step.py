"""The body of the ``validate_export`` step: read the staged frames, run the gate, keep the quarantine.

``steps.validate_export`` calls :func:`run_export_gate`. It

1. reads what the run staged: connector spaces and held objects per
   connection, the profile store as imported, the metaverse, the pending exports;
2. runs the gate (``gates.export_gate``) with each connection's limits and the
   administrator's override, if one was requested;
3. updates the quarantine (``sync/quarantine.py``): objects held now, when they
   were first seen, objects released since the last good run;
4. records the report in the run's state and, when an override let failed
   checks through, in the run history's ``overrides`` (who, why, when, which checks);
5. records, per person and property, that this run changes it (``status.lineage``:
   the "last changed in" of the status page), in the run's state;
6. raises ``GateFailedError`` when the report does not allow the export — the
   export never starts and the run's state is discarded by ``release_run``.

**Approval** (``approval=True``, the DAG; ``settings.approval``): when every failed check is a
blast-radius limit, the step does not fail but returns ``approval_needed`` with the report as
Markdown, and the run history's ``approval`` says the run waits. The DAG's ``approve_export``
task (Airflow human-in-the-loop) then asks an administrator and calls :func:`approve_export`
with the decision: approve → the failed checks are recorded as overridden by the approver
(``overrides``, ``approval``) and the export goes on; reject or time-out → the step fails, the
run ends failed and ``release_run`` discards its state. Structural checks never wait; a dry run
never waits (it writes nothing anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.gates.errors import GateFailedError, GateNotApprovedError, GateOverrideError
from profile_sync.gates.export_gate import (
    GATE,
    MV_PEOPLE_COLUMNS,
    SAMPLE,
    STORE_PEOPLE_COLUMNS,
    ChangedRows,
    GateInputs,
    evaluate_export_gate,
)
from profile_sync.gates.metrics import SPACE_COLUMNS, in_scope_people, reference_columns
from profile_sync.gates.report import GateOverride, GateReport
from profile_sync.profile_store.schema import property_specs
from profile_sync.run.context import RunContext
from profile_sync.status.lineage import changes_patch, last_changed_key, record_changes
from profile_sync.sync.connector_space import HELD_COLUMNS
from profile_sync.sync.delta import DELTA_KEY, changed_objects
from profile_sync.sync.pending_exports import PendingExports
from profile_sync.sync.quarantine import current_entries, update_quarantine

BASELINE_KEY = "gate/last_good_import/{}"
"""State value per connection: people in scope at the last import a run finished with."""
RELEASED_IN_HISTORY = 1000
"""Most released objects listed in one run's history (the count is always complete)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_override_request(ctx: RunContext) -> dict[str, Any] | None:
    """Validate an override request when the run starts; what the run history keeps of it."""
    if not ctx.override_gates:
        return None
    if not ctx.override_reason:
        raise GateOverrideError(
            "override_gates is set but override_reason is empty: say why the safety gates are overridden "
            "for this run (it is recorded in the run history)")
    return {"requested_by": ctx.requested_by, "reason": ctx.override_reason, "requested_at": _now()}


def _baseline(ctx: RunContext, name: str, committed: dict[str, Any]) -> int | None:
    value = committed["values"].get(BASELINE_KEY.format(name))
    if value is not None:
        return int(value["in_scope_people"])
    space = ctx.store.read_committed_frame(f"cs/{name}")  # state from before the gate kept a baseline
    return in_scope_people(space) if space is not None else None


def _frame(ctx: RunContext, key: str, empty: list[str] | None = None, columns: list[str] | None = None
           ) -> pd.DataFrame:
    """The run's frame ``key`` (only ``columns`` of it, when given); missing: an empty frame of ``empty``
    columns, or an error when ``empty`` is None."""
    frame = ctx.state.read_frame(key, columns)
    if frame is None:
        if empty is None:
            raise RuntimeError(f"frame {key!r} missing: an earlier step did not run")
        return pd.DataFrame({c: pd.Series(dtype=object) for c in empty})
    return frame


def _changed_rows(ctx: RunContext, names: list[str], spaces: dict[str, pd.DataFrame],
                  pending: PendingExports) -> ChangedRows | None:
    """In an incremental run, the objects changed since the committed state (whose run passed this gate) and
    the profiles the pending exports touch: GX then validates only those rows. None — GX validates every row —
    in a full run (the administrator's way to check everything again: after a change of expectations, of
    the engine, or of data an earlier version wrote) and when there is no committed connector space to
    compare with (the first run, or a new connection)."""
    if ctx.state.get_value("run/mode") != "incremental":
        return None
    anchors = {}
    for n in names:
        before = ctx.store.read_committed_frame(f"cs/{n}", columns=DELTA_KEY)
        if before is None or not set(DELTA_KEY) <= set(before.columns) or not set(DELTA_KEY) <= set(spaces[n].columns):
            return None
        anchors[n] = changed_objects(before, spaces[n])[0]
    return ChangedRows(anchors, frozenset(pending.people["profile_id"]))


def needs_approval(report: GateReport) -> bool:
    """The report blocks the export only on blast-radius limits (overridable checks): an administrator may
    approve it. Structural checks are never approvable."""
    failed = report.failed_checks
    return not report.allows_export and bool(failed) and all(c.overridable for c in failed)


def run_export_gate(ctx: RunContext, pending: PendingExports, directories: list[ResolvedDirectory], *,
                    approval: bool = False) -> dict[str, Any]:
    """Run the gate before the profile-store export; returns the step summary or raises GateFailedError.

    ``approval``: the caller can ask an administrator (the DAG's ``approve_export``); a report that
    :func:`needs_approval` then returns ``approval_needed`` instead of raising (when ``settings.approval``
    is enabled and this is not a dry run)."""
    now = _now()
    names = [d.name for d in directories]
    # Only the columns the gate and the quarantine read (not every attribute of every object).
    spaces = {d.name: _frame(ctx, f"cs/{d.name}", columns=[*SPACE_COLUMNS, *reference_columns(d)])
              for d in directories}
    held = {n: _frame(ctx, f"held/{n}", HELD_COLUMNS) for n in names}
    # Every person's identity and state; the managed properties only of the people the exports update
    # (what the blanking check compares), filtered before they become Python objects.
    store_people = _frame(ctx, "ps/people", columns=STORE_PEOPLE_COLUMNS)
    updated = set(pending.people.loc[pending.people["operation"] == "update", "profile_id"])
    store_touched = ctx.state.read_frame("ps/people", ["profile_id", *pending.managed],
                                         where=("profile_id", updated)) if updated else None
    store_groups = _frame(ctx, "ps/groups")
    mv_people = _frame(ctx, "mv/people", columns=MV_PEOPLE_COLUMNS)  # not every property of every person
    unresolved = _frame(ctx, "mv/unresolved", ["source_connection", "source_dn", "property", "target_dn", "reason"])
    committed = ctx.store.committed_manifest()
    inputs = GateInputs(
        directories=directories, spaces=spaces, pending=pending, store_people=store_people,
        store_touched=store_touched,
        store_groups=store_groups, mv_people=mv_people, unresolved=unresolved,
        specs=property_specs(ctx.settings), limits={n: ctx.settings.gate_limits(n) for n in names},
        baselines={n: _baseline(ctx, n, committed) for n in names},
        previous_space=lambda n: ctx.store.read_committed_frame(f"cs/{n}"),
        changed=_changed_rows(ctx, names, spaces, pending),
    )
    override = None
    if ctx.override_gates:
        check_override_request(ctx)
        override = GateOverride(by=ctx.requested_by, reason=ctx.override_reason or "", at=now)
    report = evaluate_export_gate(inputs, override)

    quarantine, released = update_quarantine(
        ctx.store.read_committed_frame("quarantine"),
        current_entries(held, spaces, pending.held, mv_people, store_people), now, spaces)

    wait = approval and ctx.settings.approval.enabled and not ctx.dry_run and needs_approval(report)
    ctx.state.set_value(f"gate/{GATE}", report.to_dict())
    if report.allows_export or wait:  # a rejected approval discards the run's state with the rest
        ctx.state.write_frame("quarantine", quarantine)
        for n in names:
            ctx.state.set_value(BASELINE_KEY.format(n), {"in_scope_people": in_scope_people(spaces[n]),
                                                         "run_id": ctx.run_id, "at": now})
        key = last_changed_key()
        previous = ctx.state.read_frame(key)
        ctx.state.write_frame(key, record_changes(previous, pending.people, ctx.run_key),
                              changes_patch(previous, pending.people))
    ctx.state.commit_step()
    if not (report.allows_export or wait):
        raise GateFailedError(report)
    _record_in_history(ctx, report, quarantine, released)
    if wait:
        request = _approval_request(ctx, report, now)
        ctx.history.update(ctx.run_key, approval=request)
    return {
        "approval_needed": wait,
        **({"approval_body": approval_markdown(ctx.run_id, report, request)} if wait else {}),
        "passed": report.passed,
        "overridden": report.overridden,
        "overridden_by": report.overridden_by,
        "failed_checks": [c.name + (f"[{c.connection}]" if c.connection else "") for c in report.failed_checks],
        "errors": len(quarantine),
        "quarantined": len(quarantine),
        "quarantined_new": int((quarantine["first_seen"] == now).sum()),
        "released": len(released),
        "quarantine_samples": _samples(quarantine, ["connection", "dn", "reason", "kept_last_good", "first_seen"]),
        "released_samples": _samples(released, ["connection", "dn", "reason", "outcome"]),
        "timings": report.timings,
        "report": report.to_dict(),
    }


def _samples(frame: pd.DataFrame, columns: list[str], n: int = SAMPLE) -> list[dict[str, Any]]:
    head = frame[columns].head(n).astype(object)
    return head.where(head.notna(), None).to_dict("records")


def _record_in_history(ctx: RunContext, report: GateReport, quarantine: pd.DataFrame, released: pd.DataFrame) -> None:
    doc = ctx.history.get(ctx.run_key) or {}
    fields: dict[str, Any] = {"quarantine": {
        "held": len(quarantine),
        "released": len(released),
        "released_objects": _samples(released, list(released.columns), RELEASED_IN_HISTORY),
    }}
    fields.update(_override_fields(doc, report))
    ctx.history.update(ctx.run_key, **fields)


def _override_fields(doc: dict[str, Any], report: GateReport, connection: str | None = None) -> dict[str, Any]:
    """The run history's ``overrides`` with this gate's entry (who, why, when, which checks), if it was overridden."""
    if not (report.overridden and report.override is not None):
        return {}
    entry = {"gate": report.gate, "connection": connection, "by": report.override.by,
             "reason": report.override.reason, "at": report.override.at,
             "checks": [{"name": c.name, "connection": c.connection, "message": c.message}
                        for c in report.failed_checks]}
    return {"overrides": _with_entry(doc, entry)}


def _with_entry(doc: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    key = (entry["gate"], entry["connection"])
    return [*(o for o in doc.get("overrides", []) if (o.get("gate"), o.get("connection")) != key), entry]


def record_override(ctx: RunContext, report: GateReport, connection: str | None = None) -> None:
    """Record in the run history that ``report`` was let through by an override (no-op otherwise)."""
    fields = _override_fields(ctx.history.get(ctx.run_key) or {}, report, connection)
    if fields:
        ctx.history.update(ctx.run_key, **fields)


# -- approval (the DAG's approve_export, Airflow human-in-the-loop) ----------------------------
Decision = Literal["approved", "rejected", "timed_out"]


@dataclass(frozen=True)
class ApprovalDecision:
    """An administrator's answer to a run waiting for approval (or the time-out's)."""

    decision: Decision
    by: str | None = None
    """Who answered (the Airflow user); None for a time-out."""
    at: str | None = None
    """When (ISO 8601, UTC)."""
    comment: str | None = None


def _approval_request(ctx: RunContext, report: GateReport, now: str) -> dict[str, Any]:
    """What the run history's ``approval`` says while the run waits."""
    minutes = ctx.settings.approval.timeout_minutes
    timeout_at = None
    if minutes is not None:
        timeout_at = (datetime.fromisoformat(now) + timedelta(minutes=minutes)).isoformat(timespec="seconds")
    return {"status": "waiting", "gate": report.gate, "requested_at": now, "timeout_at": timeout_at,
            "checks": [{"name": c.name, "connection": c.connection, "message": c.message}
                       for c in report.failed_checks]}


def approval_markdown(run_id: str, report: GateReport, request: dict[str, Any], samples: int = 5) -> str:
    """The gate report as the body of the approval request (Airflow renders it as Markdown)."""
    lines = [f"Profile Sync run `{run_id}` stopped before the export to the profile store: "
             f"{len(report.failed_checks)} blast-radius limit(s) tripped.", ""]
    for c in report.failed_checks:
        where = f" [{c.connection}]" if c.connection else ""
        lines.append(f"- **{c.name}{where}**: {c.message or f'observed {c.observed}, allowed {c.allowed}'}")
        shown = [str(x.get("dn") or x.get("account_name") or x.get("profile_id") or x) if isinstance(x, dict)
                 else str(x) for x in c.samples[:samples]]
        if shown:
            more = f" … ({len(c.samples)} sampled)" if len(c.samples) > samples else ""
            lines.append(f"  - e.g. {'; '.join(f'`{x}`' for x in shown)}{more}")
    lines += ["", "**Approve**: the export goes on; your name, the time and your comment are recorded in the run "
                  "history.",
              "**Reject**" + (f" (or no answer by {request['timeout_at']} UTC)" if request.get("timeout_at") else "")
              + ": nothing is written and the run ends failed."]
    return "\n".join(lines)


def _approve_export(ctx: RunContext, *, decision: ApprovalDecision) -> dict[str, Any]:
    """Record the decision on a run waiting for approval; raise GateNotApprovedError unless it goes on."""
    doc = ctx.history.get(ctx.run_key) or {}
    request = doc.get("approval") or {}
    if request.get("status") != "waiting":
        raise GateNotApprovedError(f"run {ctx.run_id!r} is not waiting for an approval "
                                   f"(approval status: {request.get('status')!r})")
    at = decision.at or _now()
    record = {**request, "status": decision.decision, "by": decision.by, "at": at, "comment": decision.comment}
    if decision.decision == "timed_out":
        ctx.history.update(ctx.run_key, approval=record)
        raise GateNotApprovedError(f"nobody approved the export of run {ctx.run_id!r} by {request.get('timeout_at')} "
                                   f"(asked at {request.get('requested_at')}): nothing was written")
    if decision.decision == "rejected":
        ctx.history.update(ctx.run_key, approval=record)
        raise GateNotApprovedError(f"the export of run {ctx.run_id!r} was rejected by {decision.by} at {at}"
                                   + (f": {decision.comment}" if decision.comment else "") + "; nothing was written")
    base = ctx.state.base_version
    committed = ctx.store.committed_manifest()["version"]
    if base is not None and base != committed:
        record["error"] = "the committed state changed while the run waited"
        ctx.history.update(ctx.run_key, approval=record)
        raise GateNotApprovedError(f"run {ctx.run_id!r} was approved by {decision.by}, but state version {committed} "
                                   f"was committed while it waited (it started from {base}): its pending exports are "
                                   "stale, nothing was written; run the synchronization again")
    report = ctx.state.get_value(f"gate/{GATE}") or {"gate": GATE, "checks": []}
    reason = decision.comment or "approved"
    for c in report["checks"]:
        if not c["passed"] and c.get("overridable"):
            c["overridden"] = True
    report.update(overridden=True, overridden_by=decision.by, override={"by": decision.by, "reason": reason, "at": at})
    ctx.state.set_value(f"gate/{GATE}", report)
    ctx.state.commit_step()
    failed = [c for c in report["checks"] if not c["passed"]]
    entry = {"gate": report.get("gate", GATE), "connection": None, "by": decision.by, "reason": reason, "at": at,
             "via": "approval", "checks": [{"name": c["name"], "connection": c.get("connection"),
                                             "message": c.get("message")} for c in failed]}
    ctx.history.update(ctx.run_key, approval=record, overrides=_with_entry(doc, entry))
    return {"approved": True, "approved_by": decision.by, "approved_at": at, "comment": decision.comment,
            "checks": [c["name"] + (f"[{c['connection']}]" if c.get("connection") else "") for c in failed]}


def approve_export(ctx: RunContext, *, decision: ApprovalDecision) -> dict[str, Any]:
    """The ``approve_export`` step: an administrator's decision on a run waiting for approval.

    Approved: the failed blast-radius checks are recorded as overridden by the approver (run history
    ``overrides`` with ``via: approval``, and ``approval``) and the export may start. Rejected or timed out:
    recorded in ``approval``; raises GateNotApprovedError (the run ends failed, its state is discarded).
    An approval also fails when another run committed state meanwhile (the pending exports are stale)."""
    from profile_sync.run.steps import step

    return step("approve_export")(_approve_export)(ctx, decision=decision)
