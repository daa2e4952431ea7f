"""One function per step of the run (DESIGN §2). Each DAG task calls exactly one.

A step reads the frames it needs from the run's state, writes new ones,
commits them (``RunState.commit_step``), records itself in the run history and
returns a small summary (counts, durations) — never a frame.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd

from profile_sync.config.loader import fingerprint, resolved_directories
from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.readers import make_reader
from profile_sync.gates.basic import basic_gate
from profile_sync.gates.errors import GateFailedError
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import ProfileStore, make_engine
from profile_sync.run.context import RunContext
from profile_sync.sync.attribute_flow import import_properties
from profile_sync.sync.connector_space import HELD_COLUMNS, build_connector_space
from profile_sync.sync.join_rules import empty_links
from profile_sync.sync.metaverse import Metaverse, build_metaverse
from profile_sync.sync.pending_exports import ACTIVE, PendingExports, plan_profile_store_exports
from profile_sync.sync.scope import apply_scope

Summary = dict[str, Any]
COUNTS = ("adds", "updates", "deletes", "unchanged", "errors")
SAMPLE = 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def step(name: str) -> Callable[[Callable[..., Summary]], Callable[..., Summary]]:
    """Time the step, renew the lease, record the summary (or the failure) in the run history."""

    def decorate(fn: Callable[..., Summary]) -> Callable[..., Summary]:
        @functools.wraps(fn)
        def run(ctx: RunContext, *args: Any, **kwargs: Any) -> Summary:
            started = _now()
            t0 = time.perf_counter()
            connection = kwargs.get("connection") or (args[0] if args else None)
            ctx.lease.renew(ctx.run_id)
            try:
                summary = fn(ctx, *args, **kwargs)
            except Exception as exc:
                ctx.history.record_step(ctx.run_id, {
                    "step": name, "connection": connection, "started_at": started, "status": "failed",
                    "duration_s": round(time.perf_counter() - t0, 3), "error": str(exc),
                    **({"gate_report": exc.report.to_dict()} if isinstance(exc, GateFailedError) else {}),
                })
                raise
            for key in COUNTS:
                summary.setdefault(key, 0)
            summary.update(step=name, connection=connection, started_at=started, status="success",
                           duration_s=round(time.perf_counter() - t0, 3))
            ctx.history.record_step(ctx.run_id, summary)
            return summary

        return run

    return decorate


def _directories(ctx: RunContext) -> list[ResolvedDirectory]:
    return resolved_directories(ctx.settings)


def _directory(ctx: RunContext, name: str) -> ResolvedDirectory:
    ctx.settings.directory(name)  # raises with the known names
    return next(d for d in _directories(ctx) if d.name == name)


def _profile_store(ctx: RunContext) -> ProfileStore:
    return ProfileStore(make_engine(ctx.profile_store_url()), property_specs(ctx.settings))


def _samples(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return frame[columns].head(SAMPLE).astype(object).where(frame[columns].head(SAMPLE).notna(), None).to_dict(
        "records")


# -- run start / end ------------------------------------------------------------------
def decide_mode(ctx: RunContext) -> tuple[str, str | None]:
    """Full or incremental, and why a requested incremental run becomes a full one."""
    if ctx.requested_mode == "full":
        return "full", "full synchronization requested"
    committed = ctx.store.committed_manifest()
    if committed["version"] == 0:
        return "full", "no delta state yet (first run)"
    before = committed["values"].get("config/fingerprint") or {}
    now = fingerprint(ctx.settings)
    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    changed = sorted(k for k in set(now) & set(before) if now[k] != before[k])
    reasons = []
    if added:
        reasons.append(f"connection added: {', '.join(added)}")
    if removed:
        reasons.append(f"connection removed: {', '.join(removed)}")
    if changed:
        reasons.append(f"configuration changed (mappings, containers, filters or classes) for: {', '.join(changed)}")
    if reasons:
        return "full", "; ".join(reasons)
    return "incremental", None


def start_run(ctx: RunContext) -> Summary | None:
    """Take the lease and open the run; None while another run holds the lease."""
    if not ctx.lease.try_acquire(ctx.run_id):
        return None
    mode, reason = decide_mode(ctx)
    ctx.state.set_value("run/mode", mode)
    ctx.state.commit_step()
    ctx.history.start(ctx.run_id, dag_id=ctx.dag_id, requested_mode=ctx.requested_mode, mode=mode,
                      full_reason=reason, dry_run=ctx.dry_run, triggered_by=ctx.triggered_by,
                      config_fingerprint=fingerprint(ctx.settings))
    return {"run_id": ctx.run_id, "mode": mode, "full_reason": reason, "dry_run": ctx.dry_run}


@step("finish_run")
def finish_run(ctx: RunContext) -> Summary:
    """Promote the run's state (a dry run discards it) and mark the run successful."""
    if ctx.dry_run:
        ctx.store.discard_run(ctx.run_id)
        version = ctx.store.committed_manifest()["version"]
    else:
        ctx.state.set_value("config/fingerprint", fingerprint(ctx.settings))
        ctx.state.commit_step()
        version = ctx.store.promote(ctx.run_id)
    totals = _profile_store(ctx).counts()
    ctx.history.update(ctx.run_id, profile_store=totals, state_version=version)
    ctx.history.finish(ctx.run_id, "success")
    return {"state_version": version, "dry_run": ctx.dry_run, **{f"total_{k}": v for k, v in totals.items()}}


def release_run(ctx: RunContext) -> Summary:
    """Teardown: a run that did not finish is recorded as failed and its state discarded; free the lease."""
    doc = ctx.history.get(ctx.run_id) or {}
    status = doc.get("status")
    if status == "running":
        ctx.history.finish(ctx.run_id, "failed")
        ctx.store.discard_run(ctx.run_id)
        status = "failed"
    released = ctx.lease.release(ctx.run_id)
    return {"run_id": ctx.run_id, "status": status, "lease_released": released}


# -- step 1: import directory ------------------------------------------------------------
@step("import_directory")
def import_directory(ctx: RunContext, connection: str) -> Summary:
    """Full (or delta) import of one directory into its connector space."""
    d = _directory(ctx, connection)
    mode = ctx.state.get_value("run/mode", "full")
    reader = make_reader(d, ctx)
    watermark = {"file_sha256": reader.file_hash()}
    previous = ctx.store.read_committed_frame(f"cs/{d.name}")
    committed_watermark = ctx.store.committed_manifest()["values"].get(f"watermark/{d.name}")
    if mode == "incremental" and previous is not None and committed_watermark == watermark:
        space, held, reused = previous, ctx.store.read_committed_frame(f"held/{d.name}"), True
    else:
        imported = build_connector_space(reader.read_full(frozenset(d.attributes) | {"objectclass"}), d)
        space = apply_scope(imported.objects, d, ctx.settings.deletion.disabled_accounts)
        held, reused = imported.held, False
    if held is None:
        held = pd.DataFrame(columns=HELD_COLUMNS)
    counts = _import_counts(previous, space)
    ctx.state.write_frame(f"cs/{d.name}", space)
    ctx.state.write_frame(f"held/{d.name}", held)
    ctx.state.set_value(f"watermark/{d.name}", watermark)
    ctx.state.commit_step()
    in_scope = space["in_scope"]
    return {
        **counts,
        "errors": len(held),
        "objects": len(space),
        "in_scope_people": int((in_scope & (space["object_type"] == "person")).sum()),
        "in_scope_groups": int((in_scope & (space["object_type"] == "group")).sum()),
        "out_of_scope": int((~in_scope).sum()),
        "unchanged_source": reused,
        "held_samples": _samples(held, ["dn", "position", "reason"]),
    }


def _import_counts(previous: pd.DataFrame | None, space: pd.DataFrame) -> dict[str, int]:
    """Pending imports against the previous connector space: adds, updates, deletes (incl. leaving scope)."""
    now = space.loc[space["in_scope"], ["anchor", "row_hash"]]
    if previous is None or previous.empty:
        return {"adds": len(now), "updates": 0, "deletes": 0, "unchanged": 0}
    before = previous.loc[previous["in_scope"], ["anchor", "row_hash"]]
    m = now.merge(before, on="anchor", how="outer", suffixes=("", "_before"), indicator=True)
    both = m["_merge"] == "both"
    same = both & (m["row_hash"] == m["row_hash_before"])
    return {"adds": int((m["_merge"] == "left_only").sum()), "updates": int((both & ~same).sum()),
            "deletes": int((m["_merge"] == "right_only").sum()), "unchanged": int(same.sum())}


# -- step 2: import profile store -------------------------------------------------------
@step("import_profile_store")
def import_profile_store(ctx: RunContext) -> Summary:
    """Full import of the profile store into its connector space (skipped before it exists)."""
    snapshot = _profile_store(ctx).read_all()
    _write_profile_store_space(ctx, snapshot)
    if not snapshot.exists:
        return {"skipped": True, "reason": "the profile store has no tables yet (first run)"}
    return {"skipped": False, "people": len(snapshot.people), "groups": len(snapshot.groups),
            "memberships": len(snapshot.memberships)}


def _write_profile_store_space(ctx: RunContext, snapshot) -> None:  # noqa: ANN001
    ctx.state.write_frame("ps/people", snapshot.people)
    ctx.state.write_frame("ps/groups", snapshot.groups)
    ctx.state.write_frame("ps/memberships", snapshot.memberships)
    ctx.state.write_frame("ps/property_values", snapshot.values)
    ctx.state.commit_step()


# -- step 3: synchronize -------------------------------------------------------------------
def _managed(directories: list[ResolvedDirectory]) -> list[str]:
    out: list[str] = []
    for d in directories:
        out += [p for p in import_properties(d) if p not in out]
    return out


@step("synchronize")
def synchronize(ctx: RunContext) -> Summary:
    """Directory connector spaces → metaverse → pending exports to the profile store."""
    directories = _directories(ctx)
    spaces = {}
    for d in directories:
        space = ctx.state.read_frame(f"cs/{d.name}")
        if space is None:
            raise RuntimeError(f"connector space of {d.name!r} missing: import_directory did not run")
        spaces[d.name] = space
    links = ctx.store.read_committed_frame("mv/links")
    mv = build_metaverse(spaces, directories, links if links is not None else empty_links(),
                         ctx.settings.account_name_format, ctx.settings.deletion.disabled_accounts)
    pending = plan_profile_store_exports(
        mv, ctx.state.read_frame("ps/people"), ctx.state.read_frame("ps/groups"),
        ctx.state.read_frame("ps/memberships"), _managed(directories), property_specs(ctx.settings))
    _write_metaverse(ctx, mv)
    _write_pending(ctx, pending)
    ctx.state.commit_step()
    counts = pending.counts()
    return {
        **counts,
        "metaverse_people": int((mv.people["state"] == ACTIVE).sum()),
        "metaverse_groups": int((mv.groups["state"] == ACTIVE).sum()),
        "memberships": len(mv.memberships),
        "unresolved_references": len(mv.unresolved),
        "unresolved_samples": _samples(mv.unresolved, list(mv.unresolved.columns)),
        "held_samples": _samples(pending.held, ["source_dn", "reason"]),
    }


def _write_metaverse(ctx: RunContext, mv: Metaverse) -> None:
    ctx.state.write_frame("mv/people", mv.people)
    ctx.state.write_frame("mv/groups", mv.groups)
    ctx.state.write_frame("mv/memberships", mv.memberships)
    ctx.state.write_frame("mv/links", mv.links)
    ctx.state.write_frame("mv/unresolved", mv.unresolved)


def _write_pending(ctx: RunContext, pending: PendingExports) -> None:
    ctx.state.write_frame("pending/people", pending.people)
    ctx.state.write_frame("pending/groups", pending.groups)
    ctx.state.write_frame("pending/memberships", pending.memberships)
    ctx.state.write_frame("pending/held", pending.held)
    ctx.state.set_value("pending/meta", {"managed": list(pending.managed),
                                         "unchanged_people": pending.unchanged_people,
                                         "unchanged_groups": pending.unchanged_groups})


def _read_pending(ctx: RunContext) -> PendingExports:
    meta = ctx.state.get_value("pending/meta")
    if meta is None:
        raise RuntimeError("no pending exports: synchronize did not run")
    return PendingExports(
        people=ctx.state.read_frame("pending/people"), groups=ctx.state.read_frame("pending/groups"),
        memberships=ctx.state.read_frame("pending/memberships"), held=ctx.state.read_frame("pending/held"),
        managed=tuple(meta["managed"]), unchanged_people=meta["unchanged_people"],
        unchanged_groups=meta["unchanged_groups"])


# -- gate ----------------------------------------------------------------------------------
@step("validate_export")
def validate_export(ctx: RunContext) -> Summary:
    """The data-quality gate before the profile-store export."""
    pending = _read_pending(ctx)
    in_scope = 0
    for d in _directories(ctx):
        space = ctx.state.read_frame(f"cs/{d.name}")
        in_scope += int((space["in_scope"] & (space["object_type"] == "person")).sum())
    store = ctx.state.read_frame("ps/people")
    active = int((store["state"] == ACTIVE).sum()) if len(store) else 0
    report = basic_gate(in_scope, active, pending.counts()["deletes"])
    ctx.state.set_value("gate/validate_export", report.to_dict())
    ctx.state.commit_step()
    if not report.passed:
        raise GateFailedError(report)
    return {"passed": True, "report": report.to_dict()}


# -- step 4: export profile store ----------------------------------------------------------
@step("export_profile_store")
def export_profile_store(ctx: RunContext) -> Summary:
    """Apply the pending exports in one transaction (a dry run writes nothing)."""
    pending = _read_pending(ctx)
    counts = pending.counts()
    if ctx.dry_run:
        return {**counts, "dry_run": True, "written": False}
    written = _profile_store(ctx).apply_pending_exports(pending, ctx.run_id, ctx.settings.deletion.retention_days)
    return {**counts, **written, "written": True}


# -- step 5: confirming import of the profile store ----------------------------------------
@step("confirm_profile_store")
def confirm_profile_store(ctx: RunContext) -> Summary:
    """Re-read the profile store and check that every pending export landed."""
    pending = _read_pending(ctx)
    snapshot = _profile_store(ctx).read_all()
    if ctx.dry_run:
        return {"dry_run": True, "confirmed": 0}
    _write_profile_store_space(ctx, snapshot)
    exported = pending.people.loc[pending.people["operation"].isin(["add", "update", "unmark"])]
    columns = [c for c in pending.managed if c in snapshot.people.columns]
    mismatches = _confirm(exported, snapshot.people, columns)
    return {"confirmed": len(exported) - len(mismatches), "errors": len(mismatches),
            "mismatch_samples": mismatches[:SAMPLE]}


def _confirm(exported: pd.DataFrame, store: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    from profile_sync.sync.pending_exports import values_equal

    if exported.empty:
        return []
    now = exported[["profile_id"]].merge(store, on="profile_id", how="left", indicator=True)
    missing = now.loc[now["_merge"] == "left_only", "profile_id"].tolist()
    out = [{"profile_id": p, "problem": "not in the profile store"} for p in missing]
    want = exported.set_index("profile_id")
    have = now.set_index("profile_id")
    for c in columns:
        eq = values_equal(want[c], have.loc[want.index, c])
        for pid in want.index[~eq]:
            if pid not in missing:
                out.append({"profile_id": pid, "problem": f"{c} differs after export"})
    return out


# -- steps 6–8: write-back -------------------------------------------------------------------
def _writeback_properties(ctx: RunContext) -> dict[str, list[str]]:
    return {d.name: [p for p, m in d.mappings.items() if m.direction in ("export", "both")]
            for d in _directories(ctx)}


@step("synchronize_writeback")
def synchronize_writeback(ctx: RunContext) -> Summary:
    """Profile store → metaverse → directory pending exports (properties configured for write-back)."""
    configured = {k: v for k, v in _writeback_properties(ctx).items() if v}
    if not configured:
        return {"nothing_to_write_back": True,
                "message": "nothing to write back: no property is configured for export to a directory"}
    raise NotImplementedError("write-back to directories is not implemented yet")


@step("export_directory")
def export_directory(ctx: RunContext, connection: str) -> Summary:
    """Write pending exports back to one directory."""
    d = _directory(ctx, connection)
    if d.connection.type == "ldif":
        return {"nothing_to_write_back": True, "message": "nothing to write back: an LDIF connection is read-only"}
    return {"nothing_to_write_back": True, "message": "nothing to write back"}


@step("confirm_directory")
def confirm_directory(ctx: RunContext, connection: str) -> Summary:
    """Confirming import from one directory after a write-back."""
    _directory(ctx, connection)
    return {"nothing_to_write_back": True, "message": "nothing was written back, nothing to confirm"}
