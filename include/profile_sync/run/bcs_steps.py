"""Steps 9–12 and their gate (DESIGN §2): business-system augmentation, once per business system.

``import_bcs`` → ``synchronize_bcs`` → ``validate_bcs`` → ``export_bcs`` →
``confirm_bcs``. Each DAG task calls exactly one of these; each reads the frames
it needs from the run's state, commits what it wrote and returns a small
summary. The business system is always read in full, in incremental runs too
(one bulk read; there is no delta state to trust in an HR view).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from profile_sync.bcs.connector_space import build_connector_space, import_counts
from profile_sync.bcs.errors import BcsError
from profile_sync.bcs.gate import BcsGateInput, bcs_gate
from profile_sync.bcs.synchronize import owned_properties
from profile_sync.bcs.sources import SourceRows, read_file, read_sql
from profile_sync.bcs.synchronize import ERROR_COLUMNS, VALUE_COLUMNS, changed_flag, plan_bcs_exports
from profile_sync.config.business_systems import BusinessSystem
from profile_sync.gates.errors import GateFailedError
from profile_sync.gates.report import GateOverride
from profile_sync.profile_store.augmentation import apply_bcs_exports, read_bcs_properties
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import empty_values
from profile_sync.run.context import RunContext
from profile_sync.run.gate_step import check_override_request, record_override
from profile_sync.run.steps import SAMPLE, Summary, _profile_store, step
from profile_sync.status.lineage import changes_patch, last_changed_key, record_changes
from profile_sync.sync.pending_exports import ACTIVE, values_equal

__all__ = ["confirm_bcs", "export_bcs", "import_bcs", "synchronize_bcs", "validate_bcs"]

BCS_STEPS = ("import_bcs", "synchronize_bcs", "validate_bcs", "export_bcs", "confirm_bcs")
"""The task order of one business system."""


def _records(frame: pd.DataFrame, columns: list[str] | None = None, n: int = SAMPLE) -> list[dict[str, Any]]:
    head = frame[columns or list(frame.columns)].head(n).astype(object)
    return head.where(head.notna(), None).to_dict("records")


def _key(name: str, what: str) -> str:
    return f"bcs/{name}" if what == "space" else f"pending_bcs/{name}/{what}"


def _url(ctx: RunContext, bs: BusinessSystem) -> str:
    if bs.conn_id:
        info = ctx.resolve_connection(bs.conn_id)
        if not info.uri:
            raise BcsError(bs.name, f"connection {bs.conn_id!r} has no URI")
        return info.uri
    url = bs.url or ""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(ctx.resolve_path(url[len(prefix):]))
    return url


def read_business_system(ctx: RunContext, bs: BusinessSystem) -> SourceRows:
    """One bulk read of ``bs`` (the hook layer resolves ``conn_id`` to a URL with its password)."""
    if bs.type == "file":
        return read_file(bs, ctx.resolve_path(bs.path or ""))
    if bs.query:  # a dated extract: the run's date in the query
        bs = bs.model_copy(update={"query": ctx.render(bs.query)})
    return read_sql(bs, _url(ctx, bs))




# -- step 9 ---------------------------------------------------------------------------------------
@step("import_bcs")
def import_bcs(ctx: RunContext, connection: str) -> Summary:
    """Full import of one business system into its connector space: one bulk read."""
    bs = ctx.settings.business_system(connection)
    rows = read_business_system(ctx, bs)
    space = build_connector_space(bs, rows.frame)
    counts = import_counts(ctx.store.read_committed_frame(_key(bs.name, "space")), space)
    ctx.state.write_frame(_key(bs.name, "space"), space)
    ctx.state.commit_step()
    keys = space["key_norm"]
    return {**counts, "rows": len(space), "distinct_keys": int(keys.nunique()), "rows_without_key": int(keys.isna().sum()),
            "source": rows.source, "read_seconds": round(rows.seconds, 3)}


# -- step 10 --------------------------------------------------------------------------------------
@step("synchronize_bcs")
def synchronize_bcs(ctx: RunContext, connection: str) -> Summary:
    """Join the business-system rows to the profile-store people in memory → pending exports of its properties."""
    bs = ctx.settings.business_system(connection)
    space = ctx.state.read_frame(_key(bs.name, "space"))
    if space is None:
        raise BcsError(bs.name, "connector space missing: import_bcs did not run")
    specs = property_specs(ctx.settings)
    single, _ = owned_properties(bs, specs)
    people = ctx.state.read_frame("ps/people", ["profile_id", "state", bs.join.profile_property, *single])
    if people is None:
        raise BcsError(bs.name, "profile-store connector space missing: import_profile_store did not run")
    values = ctx.state.read_frame("ps/property_values")
    mv = ctx.state.read_frame("mv/people", ["mv_id", "frozen"])
    frozen = set(mv.loc[mv["frozen"].astype(bool), "mv_id"]) if mv is not None and "frozen" in mv.columns else set()
    plan = plan_bcs_exports(bs, space, people, values if values is not None else empty_values(), specs, frozen)
    ctx.state.write_frame(_key(bs.name, "updates"), plan.updates)
    ctx.state.write_frame(_key(bs.name, "values"), plan.values)
    ctx.state.write_frame(_key(bs.name, "errors"), plan.errors)
    ctx.state.write_frame(_key(bs.name, "unmatched"), plan.unmatched)
    ctx.state.set_value(_key(bs.name, "meta"), {"single": list(plan.single), "multi": list(plan.multi),
                                                "stats": plan.stats})
    ctx.state.commit_step()
    s = plan.stats
    by_kind = {k: s[f"errors_{k}"] for k in ("null_key", "duplicate_key", "ambiguous_key", "invalid_value")}
    message = (f"{s['matched_people']} of {s['people']} people matched, {s['unmatched_rows']} row(s) match nobody, "
               f"{s['cleared']} lose their properties, {s['error_rows']} row(s) with errors")
    return {"adds": 0, "updates": s["updates"], "deletes": 0, "unchanged": s["unchanged"], "errors": s["error_rows"],
            **{k: v for k, v in s.items() if k not in ("updates", "unchanged")}, "errors_by_kind": by_kind,
            "error_samples": _records(plan.errors, ERROR_COLUMNS),
            "unmatched_samples": _records(plan.unmatched, ["row", "key"]), "message": message}


def _read_plan(ctx: RunContext, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    meta = ctx.state.get_value(_key(name, "meta"))
    if meta is None:
        raise BcsError(name, "no pending exports: synchronize_bcs did not run")
    return ctx.state.read_frame(_key(name, "updates")), ctx.state.read_frame(_key(name, "values")), meta


# -- gate -----------------------------------------------------------------------------------------
@step("validate_bcs")
def validate_bcs(ctx: RunContext, connection: str) -> Summary:
    """The data-quality gate before a business system's export."""
    bs = ctx.settings.business_system(connection)
    updates, values, meta = _read_plan(ctx, bs.name)
    report = bcs_gate(bs.name, BcsGateInput(stats=meta["stats"], updates=updates, values=values,
                                            people=ctx.state.read_frame("ps/people", ["profile_id", "state"]),
                                            specs=property_specs(ctx.settings), limits=bs.gates))
    if ctx.override_gates:
        check_override_request(ctx)
        report = report.apply_override(GateOverride(by=ctx.requested_by, reason=ctx.override_reason or "",
                                                    at=datetime.now(timezone.utc).isoformat()))
    ctx.state.set_value(f"gate/validate_bcs/{bs.name}", report.to_dict())
    if report.allows_export:  # per person and property: changed by this run (the status page's lineage)
        key = last_changed_key(bs.name)
        previous = ctx.state.read_frame(key)
        ctx.state.write_frame(key, record_changes(previous, updates, ctx.run_key), changes_patch(previous, updates))
    ctx.state.commit_step()
    if not report.allows_export:
        raise GateFailedError(report)
    record_override(ctx, report, bs.name)
    return {"passed": report.passed, "overridden": report.overridden, "overridden_by": report.overridden_by,
            "report": report.to_dict()}


# -- step 11 --------------------------------------------------------------------------------------
@step("export_bcs")
def export_bcs(ctx: RunContext, connection: str) -> Summary:
    """Apply one business system's pending exports in one transaction (a dry run writes nothing)."""
    bs = ctx.settings.business_system(connection)
    updates, values, meta = _read_plan(ctx, bs.name)
    counts = {"updates": len(updates), "unchanged": meta["stats"]["unchanged"], "cleared": meta["stats"]["cleared"]}
    if ctx.dry_run:
        return {**counts, "dry_run": True, "written": False}
    written = apply_bcs_exports(_profile_store(ctx), updates, values, meta["single"], meta["multi"], ctx.run_key)
    return {**counts, **written, "written": True}


# -- step 12 --------------------------------------------------------------------------------------
@step("confirm_bcs")
def confirm_bcs(ctx: RunContext, connection: str) -> Summary:
    """Confirming import: re-read this connection's properties and check that every pending export landed."""
    bs = ctx.settings.business_system(connection)
    updates, values, meta = _read_plan(ctx, bs.name)
    if ctx.dry_run:
        return {"dry_run": True, "confirmed": 0}
    single, multi = meta["single"], meta["multi"]
    stored, stored_values = read_bcs_properties(_profile_store(ctx), single, multi)
    mismatches = _confirm(updates, values, stored, stored_values, single, multi)
    if len(updates):  # the profile-store connector space follows what was written
        _refresh_profile_store_space(ctx, stored, stored_values, single, multi)
    return {"confirmed": len(updates) - len({m["profile_id"] for m in mismatches}), "errors": len(mismatches),
            "mismatch_samples": mismatches[:SAMPLE]}


def _confirm(updates: pd.DataFrame, values: pd.DataFrame, stored: pd.DataFrame, stored_values: pd.DataFrame,
             single: list[str], multi: list[str]) -> list[dict[str, Any]]:
    if updates.empty:
        return []
    have = updates[["profile_id"]].merge(stored, on="profile_id", how="left", indicator=True)
    out = [{"profile_id": p, "problem": "not in the profile store"}
           for p in have.loc[have["_merge"] == "left_only", "profile_id"]]
    out += [{"profile_id": p, "problem": "not active in the profile store"}
            for p in have.loc[(have["_merge"] == "both") & (have["state"] != ACTIVE), "profile_id"]]
    for c in single:
        mask = updates[changed_flag(c)].to_numpy(dtype=bool)
        eq = values_equal(updates.loc[mask, c].reset_index(drop=True), have.loc[mask, c].reset_index(drop=True))
        out += [{"profile_id": p, "problem": f"{c} differs after export"}
                for p in updates.loc[mask, "profile_id"].to_numpy()[~eq]]
    for p in multi:
        who = updates.loc[updates[changed_flag(p)], "profile_id"]
        want = _joined(values.loc[values["property"] == p])
        got = _joined(stored_values.loc[(stored_values["property"] == p) & stored_values["profile_id"].isin(who)])
        differs = who.map(want).fillna("") != who.map(got).fillna("")
        out += [{"profile_id": pid, "problem": f"{p} differs after export"} for pid in who[differs]]
    return out


def _joined(values: pd.DataFrame) -> pd.Series:
    """profile_id → its values in order, joined (for comparing lists)."""
    ordered = values.sort_values(["profile_id", "position"], kind="stable")
    return ordered.groupby("profile_id", sort=False)["value"].agg("\x1f".join)


def _refresh_profile_store_space(ctx: RunContext, stored: pd.DataFrame, stored_values: pd.DataFrame,
                                 single: list[str], multi: list[str]) -> None:
    """The profile-store connector space with this connection's properties as re-read."""
    people = ctx.state.read_frame("ps/people")
    if people is not None and single:
        fresh = stored.set_index("profile_id")
        for c in single:
            people[c] = people["profile_id"].map(fresh[c]).astype(object)
            people[c] = people[c].where(people[c].notna(), None)
        ctx.state.write_frame("ps/people", people)
    if multi:
        values = ctx.state.read_frame("ps/property_values")
        values = values if values is not None else empty_values()
        values = pd.concat([values.loc[~values["property"].isin(multi)], stored_values[VALUE_COLUMNS]],
                           ignore_index=True)
        ctx.state.write_frame("ps/property_values", values)
    ctx.state.commit_step()
