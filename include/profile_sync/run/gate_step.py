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
5. raises ``GateFailedError`` when the report does not allow the export — the
   export never starts and the run's state is discarded by ``release_run``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.gates.errors import GateFailedError, GateOverrideError
from profile_sync.gates.export_gate import GATE, SAMPLE, GateInputs, evaluate_export_gate
from profile_sync.gates.metrics import in_scope_people
from profile_sync.gates.report import GateOverride, GateReport
from profile_sync.profile_store.schema import property_specs
from profile_sync.run.context import RunContext
from profile_sync.sync.connector_space import HELD_COLUMNS
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


def _frame(ctx: RunContext, key: str, columns: list[str] | None = None) -> pd.DataFrame:
    frame = ctx.state.read_frame(key)
    if frame is None:
        if columns is None:
            raise RuntimeError(f"frame {key!r} missing: an earlier step did not run")
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return frame


def run_export_gate(ctx: RunContext, pending: PendingExports, directories: list[ResolvedDirectory]) -> dict[str, Any]:
    """Run the gate before the profile-store export; returns the step summary or raises GateFailedError."""
    now = _now()
    names = [d.name for d in directories]
    spaces = {n: _frame(ctx, f"cs/{n}") for n in names}
    held = {n: _frame(ctx, f"held/{n}", HELD_COLUMNS) for n in names}
    store_people = _frame(ctx, "ps/people")
    store_groups = _frame(ctx, "ps/groups")
    mv_people = _frame(ctx, "mv/people")
    unresolved = _frame(ctx, "mv/unresolved", ["source_connection", "source_dn", "property", "target_dn", "reason"])
    committed = ctx.store.committed_manifest()
    inputs = GateInputs(
        directories=directories, spaces=spaces, pending=pending, store_people=store_people,
        store_groups=store_groups, mv_people=mv_people, unresolved=unresolved,
        specs=property_specs(ctx.settings), limits={n: ctx.settings.gate_limits(n) for n in names},
        baselines={n: _baseline(ctx, n, committed) for n in names},
        previous_space=lambda n: ctx.store.read_committed_frame(f"cs/{n}"),
    )
    override = None
    if ctx.override_gates:
        check_override_request(ctx)
        override = GateOverride(by=ctx.requested_by, reason=ctx.override_reason or "", at=now)
    report = evaluate_export_gate(inputs, override)

    quarantine, released = update_quarantine(
        ctx.store.read_committed_frame("quarantine"),
        current_entries(held, spaces, pending.held, mv_people, store_people), now, spaces)

    ctx.state.set_value(f"gate/{GATE}", report.to_dict())
    if report.allows_export:
        ctx.state.write_frame("quarantine", quarantine)
        for n in names:
            ctx.state.set_value(BASELINE_KEY.format(n), {"in_scope_people": in_scope_people(spaces[n]),
                                                         "run_id": ctx.run_id, "at": now})
    ctx.state.commit_step()
    if not report.allows_export:
        raise GateFailedError(report)
    _record_in_history(ctx, report, quarantine, released)
    return {
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
    kept = [o for o in doc.get("overrides", []) if (o.get("gate"), o.get("connection")) != (report.gate, connection)]
    return {"overrides": [*kept, entry]}


def record_override(ctx: RunContext, report: GateReport, connection: str | None = None) -> None:
    """Record in the run history that ``report`` was let through by an override (no-op otherwise)."""
    fields = _override_fields(ctx.history.get(ctx.run_key) or {}, report, connection)
    if fields:
        ctx.history.update(ctx.run_key, **fields)
