"""One function per step of the run (DESIGN §2). Each DAG task calls exactly one.

A step reads the frames it needs from the run's state, writes new ones,
commits them (``RunState.commit_step``), records itself in the run history and
returns a small summary (counts, durations) — never a frame.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd

from profile_sync import faults
from profile_sync.config.loader import fingerprint, resolved_directories
from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.dn import DN_FORM, normalize_dns
from profile_sync.directory.entries import DeltaStateInvalid
from profile_sync.errors import TerminalError
from profile_sync.directory.readers import effective_directory, make_reader
from profile_sync.gates.errors import GateFailedError
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import ProfileStore, make_engine
from profile_sync.run.context import RunContext
from profile_sync.run.dates import SOURCE_DATE, dated_connections
from profile_sync.state.patches import Patch
from profile_sync.sync.attribute_flow import import_properties
from profile_sync.sync.connector_space import HELD_COLUMNS, KnownDns, attr_column, build_connector_space
from profile_sync.sync.delta import (DELTA_KEY, DirtySet, apply_delta, compute_dirty_set, entering_scope,
                                     merge_by_anchor, stale_references)
from profile_sync.sync.join_rules import empty_links
from profile_sync.sync.metaverse import Metaverse, build_metaverse
from profile_sync.sync.pending_exports import (ACTIVE, STORE_KEY_COLUMNS, PendingExports,
                                              plan_profile_store_exports)
from profile_sync.sync import writeback
from profile_sync.sync.quarantine import keep_last_good
from profile_sync.sync.scope import apply_scope

Summary = dict[str, Any]
COUNTS = ("adds", "updates", "deletes", "unchanged", "errors")
SAMPLE = 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def step(name: str) -> Callable[[Callable[..., Summary]], Callable[..., Summary]]:
    """One task's frame around a step: a fresh context, the lease renewed (and kept alive by a heartbeat while
    the step runs), the summary — or the failure — recorded in the run history (every attempt kept)."""

    def decorate(fn: Callable[..., Summary]) -> Callable[..., Summary]:
        @functools.wraps(fn)
        def run(ctx: RunContext, *args: Any, **kwargs: Any) -> Summary:
            connection = kwargs.get("connection") or (args[0] if args else None)
            ctx = ctx.fresh(part=name if connection is None else f"{name}[{connection}]")
            started = _now()
            t0 = time.perf_counter()
            faults.point(f"step:{name}:before")
            try:
                ctx.lease.renew(ctx.run_key)
                with ctx.lease.heartbeat(ctx.run_key) as beat:
                    summary = fn(ctx, *args, **kwargs)
                if beat.lost is not None:
                    raise beat.lost
            except Exception as exc:
                _record_failure(ctx, name, connection, started, t0, exc)
                raise
            for key in COUNTS:
                summary.setdefault(key, 0)
            summary.update(step=name, connection=connection, started_at=started, status="success",
                           duration_s=round(time.perf_counter() - t0, 3), state_io=_state_io(ctx))
            ctx.history.record_step(ctx.run_key, summary)
            faults.point(f"step:{name}:after")
            return summary

        return run

    return decorate


def _state_io(ctx: RunContext) -> dict[str, Any]:
    """What the step read from and wrote to the state store, and the seconds it took."""
    if "store" not in ctx.__dict__:  # the step never touched the state store
        return {}
    io = ctx.store.location.io
    return {**io, "read_s": round(io["read_s"], 3), "write_s": round(io["write_s"], 3)}


def _record_failure(ctx: RunContext, name: str, connection: str | None, started: str, t0: float,
                    exc: Exception) -> None:
    """The failed attempt in the run history — best effort: the original error is what the task reports."""
    try:
        ctx.history.record_step(ctx.run_key, {
            "step": name, "connection": connection, "started_at": started, "status": "failed",
            "duration_s": round(time.perf_counter() - t0, 3), "error": str(exc),
            "error_type": type(exc).__name__,
            **({"gate_report": exc.report.to_dict()} if isinstance(exc, GateFailedError) else {}),
        })
    except Exception:  # noqa: BLE001 - the coordination database is down too: nothing more to record it in
        pass


def _directories(ctx: RunContext) -> list[ResolvedDirectory]:
    # LDAP connections may take containers, filter and classes from their Connection's extras.
    return [effective_directory(d, ctx) for d in resolved_directories(ctx.settings)]


def _directory(ctx: RunContext, name: str) -> ResolvedDirectory:
    ctx.settings.directory(name)  # raises with the known names
    return next(d for d in _directories(ctx) if d.name == name)


def _profile_store(ctx: RunContext) -> ProfileStore:
    """The profile store; its export transactions check the lease and record this run as the last writer."""
    store = ProfileStore(make_engine(ctx.profile_store_url()), property_specs(ctx.settings))

    def mark(conn) -> None:  # noqa: ANN001 - inside the export's transaction, just before it commits
        ctx.coordination.fence(conn, ctx.run_key, ttl=ctx.settings.lease.ttl_seconds)
        ctx.coordination.record_export(conn, ctx.run_key)

    store.on_export = mark
    return store


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
    old_form = sorted(n for n in set(now) - set(added) if committed["values"].get(f"dn_form/{n}") != DN_FORM)
    if old_form:
        reasons.append(f"DN normalisation changed (form {DN_FORM}) since the last run of: {', '.join(old_form)}")
    if reasons:
        return "full", "; ".join(reasons)
    return "incremental", None


def start_run(ctx: RunContext) -> Summary | None:
    """Take the lease and open the run; None while another run holds the lease (the task waits and asks again).

    A holder that died (its lease expired and its run is no longer running) is taken over: its run is
    recorded as abandoned and its working state removed. Waiting longer than ``lease.wait_seconds`` fails
    the run with a message naming the holder.
    """
    from profile_sync.run.gate_step import check_override_request

    ctx = ctx.fresh(part="start_run")
    override = check_override_request(ctx)  # an override without a reason fails before anything is read
    faults.point("step:start_run:before")
    skipped = _skip(ctx)
    if skipped is not None:
        return skipped
    grant = ctx.lease.try_acquire(ctx.run_key)
    if not grant.acquired:
        _wait(ctx, grant.holder or {})
        return None
    abandoned = _abandon_others(ctx, grant.taken_from)
    collected = _collect_garbage(ctx)
    mode, reason = decide_mode(ctx)
    ctx.state.set_value("run/mode", mode)
    ctx.state.commit_step(base_version=ctx.store.committed_manifest()["version"])
    ctx.history.start(ctx.run_key, run_id=ctx.run_id, dag_id=ctx.dag_id, requested_mode=ctx.requested_mode,
                      mode=mode, full_reason=reason, dry_run=ctx.dry_run, triggered_by=ctx.triggered_by,
                      run_type=ctx.run_type, ds=ctx.ds,
                      config_fingerprint=fingerprint(ctx.settings), override_requested=override,
                      status="running", started_at=_now(), finished_at=None, error=None,
                      abandoned_before=abandoned or None)
    faults.point("step:start_run:after")
    return {"run_id": ctx.run_id, "run_key": ctx.run_key, "mode": mode, "full_reason": reason,
            "dry_run": ctx.dry_run, "override_gates": ctx.override_gates, "abandoned": abandoned,
            "garbage_collected": collected}


def _skip(ctx: RunContext) -> Summary | None:
    """A run that must not synchronize (run/dates.py), or must not start while another run waits for an approval
    (status/approval.py), is recorded as skipped, with the reason."""
    from profile_sync.run.dates import skip_reason
    from profile_sync.status.approval import skip_while_waiting

    reason = skip_reason(ctx)
    if reason is None:
        # Another run waits for an administrator's approval of its export: skip instead of waiting for its lease.
        return skip_while_waiting(ctx)
    ctx.history.start(ctx.run_key, run_id=ctx.run_id, dag_id=ctx.dag_id, requested_mode=ctx.requested_mode,
                      triggered_by=ctx.triggered_by, run_type=ctx.run_type, ds=ctx.ds, status="skipped",
                      started_at=_now(), finished_at=_now(), error=None, skipped_reason=reason)
    return {"run_id": ctx.run_id, "run_key": ctx.run_key, "skipped": True, "reason": reason}


def _wait(ctx: RunContext, holder: dict[str, Any]) -> None:
    """Record that this run waits for the lease; fail it, naming the holder, once it waited too long."""
    now = datetime.now(timezone.utc)
    doc = ctx.history.get(ctx.run_key)
    if doc is None or doc.get("status") != "waiting":
        doc = ctx.history.start(ctx.run_key, run_id=ctx.run_id, dag_id=ctx.dag_id, requested_mode=ctx.requested_mode,
                                dry_run=ctx.dry_run, triggered_by=ctx.triggered_by, status="waiting",
                                waiting_since=now.isoformat(timespec="seconds"), started_at=_now(),
                                finished_at=None, error=None)
    ctx.history.update(ctx.run_key, waiting_for=holder)
    waited = (now - datetime.fromisoformat(doc["waiting_since"])).total_seconds()
    if waited >= ctx.settings.lease.wait_seconds:
        what = ("between two of its tasks (Airflow says it is still running)" if holder.get("between_tasks")
                else f"renewed at {holder.get('renewed_at')}, expires {holder.get('expires_at')}")
        message = (f"waited {int(waited)} s (lease.wait_seconds = {ctx.settings.lease.wait_seconds}) for the "
                   f"state-store lease held by run {holder.get('owner')!r} on {holder.get('host')} ({what}); "
                   "this run did nothing — it runs again at its next schedule, or trigger it once the other run "
                   "has finished")
        ctx.history.finish(ctx.run_key, "failed", error=message)
        raise LeaseWaitTimeout(message)


class LeaseWaitTimeout(TerminalError):
    """A run waited longer than ``lease.wait_seconds`` for another run to finish."""


def _abandon_others(ctx: RunContext, taken_from: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Runs that left working state behind (dead holders): recorded as abandoned, their working state removed.

    Called by the lease holder before its first step: no other run can be alive with working state then."""
    dead = [k for k in ctx.coordination.live_runs() if k != ctx.run_key]
    if taken_from is not None and taken_from["owner"] not in dead and taken_from["owner"] != ctx.run_key:
        dead.append(taken_from["owner"])
    out = []
    for key in dead:
        reason = (f"abandoned: its lease expired at {taken_from['expires_at']} (renewed last at "
                  f"{taken_from['renewed_at']} on {taken_from['host']}) and its run was no longer running; "
                  f"taken over by {ctx.run_key}") if taken_from and taken_from["owner"] == key else (
                  f"abandoned: it left working state behind and no longer holds the lease; cleaned up by {ctx.run_key}")
        ctx.history.update_if(key, ("waiting", "running"), status="abandoned", finished_at=_now(), error=reason)
        ctx.store.discard_run(key)
        out.append({"run_key": key, "reason": reason})
    return out


def _collect_garbage(ctx: RunContext) -> int | str:
    """Delete unreferenced objects (the lease holder, between steps); never fails the run."""
    try:
        return ctx.store.collect_garbage()
    except Exception as exc:  # noqa: BLE001 - garbage is harmless; the next run collects it
        return f"not collected: {exc}"


@step("finish_run")
def finish_run(ctx: RunContext) -> Summary:
    """Promote the run's state (a dry run discards it) and mark the run successful — in one transaction."""
    totals = _profile_store(ctx).counts()
    if ctx.dry_run:
        ctx.store.discard_run(ctx.run_key)
        version = ctx.store.committed_manifest()["version"]
        ctx.history.finish(ctx.run_key, "success", profile_store=totals, state_version=version)
    else:
        ctx.state.set_value("config/fingerprint", fingerprint(ctx.settings))
        if dated_connections(ctx.settings):
            ctx.state.set_value(SOURCE_DATE, ctx.ds)
        ctx.state.commit_step()
        faults.point("promote:before_switch")
        version = ctx.store.promote(ctx.run_key, ctx.run_key, in_transaction=lambda conn, v: ctx.history.finish(
            ctx.run_key, "success", conn=conn, profile_store=totals, state_version=v))
        faults.point("promote:after_switch")
    collected = _collect_garbage(ctx)
    return {"state_version": version, "dry_run": ctx.dry_run, "garbage_collected": collected,
            **{f"total_{k}": v for k, v in totals.items()}}


def release_run(ctx: RunContext) -> Summary:
    """Teardown: a run that did not finish is recorded as failed and its working state removed; free the lease.

    Writes only to the coordination database (and deletes objects), so it works when the state store's
    disk is full."""
    ctx = ctx.fresh(part="release_run")
    doc = ctx.history.get(ctx.run_key) or {}
    status = doc.get("status")
    collected: int | str = 0
    if status in ("running", "waiting"):
        failed = [s for s in doc.get("steps", []) if s.get("status") == "failed"]
        error = failed[-1].get("error") if failed else doc.get("error") or "the run stopped before it finished"
        now = _now()
        fields: dict[str, Any] = {}
        approval = doc.get("approval") or {}
        if approval.get("status") == "waiting":
            # approve_export ended without recording a decision (Airflow failed or killed the task, or the
            # run was stopped): the request must not stay open, and the run's error says so.
            if not any(s.get("step") == "approve_export" for s in failed):
                error = ("the run ended while it waited for an approval, before a decision was recorded "
                         "(approve_export did not run to its end: see its log); nothing was written")
            fields["approval"] = {**approval, "status": "unanswered", "ended_at": now}
        ctx.history.update_if(ctx.run_key, ("running", "waiting"), status="failed", finished_at=now,
                              error=error, **fields)
        ctx.store.discard_run(ctx.run_key)
        status = "failed"
        holder = ctx.lease.record()
        if holder is not None and holder["owner"] == ctx.run_key:
            collected = _collect_garbage(ctx)
    released = ctx.lease.release(ctx.run_key)
    return {"run_id": ctx.run_id, "run_key": ctx.run_key, "status": status, "lease_released": released,
            "garbage_collected": collected}


# -- step 1: import directory ------------------------------------------------------------
@step("import_directory")
def import_directory(ctx: RunContext, connection: str) -> Summary:
    """Full (or delta) import of one directory into its connector space."""
    d = _directory(ctx, connection)
    mode = ctx.state.get_value("run/mode", "full")
    reader = make_reader(d, ctx)
    watermark = reader.watermark()  # before the read: changes made during it come again next time
    committed_watermark = ctx.store.committed_manifest()["values"].get(f"watermark/{d.name}")
    # A delta read merges into the whole committed connector space: read it once, whole; otherwise its keys
    # (for the counts) are all this step needs of it.
    may_delta = (mode == "incremental" and bool(committed_watermark) and committed_watermark != watermark
                 and hasattr(reader, "read_delta"))
    previous = ctx.store.read_committed_frame(f"cs/{d.name}", columns=None if may_delta else IMPORT_KEY)
    attributes = frozenset(d.attributes) | {"objectclass"}
    full_import_reason = None
    delta = None
    patch = None  # a delta's changes to the committed space (the run's view of it: no step before this writes it)
    if mode == "incremental" and previous is not None and committed_watermark == watermark:
        # Unchanged source: the run's state already holds the committed connector space.
        space, reused = previous, True
        held = ctx.store.read_committed_frame(f"held/{d.name}")
    else:
        reused = False
        if may_delta and previous is not None:
            try:
                delta = reader.read_delta(attributes, committed_watermark)
            except DeltaStateInvalid as exc:
                full_import_reason = exc.reason
                previous = previous[[c for c in IMPORT_KEY if c in previous.columns]]  # keys only: free the rest
        if delta is not None:
            # Held objects of a delta keep their previous rows (apply_delta keeps what it does not replace).
            space, held, reread, patch = _merge_delta(ctx, d, delta, reader, previous)
            watermark = delta.watermark
        else:
            imported = build_connector_space(reader.read_full(attributes), d)
            # Quarantined objects keep their last good row: never treated as deleted (sync/quarantine.py).
            last = ctx.store.read_committed_frame(f"cs/{d.name}") if len(imported.held) else None
            objects = keep_last_good(imported.objects, imported.held, last)
            space = apply_scope(objects, d, ctx.settings.deletion.disabled_accounts)
            held = imported.held
    if held is None:
        held = pd.DataFrame(columns=HELD_COLUMNS)
    counts = _import_counts(previous, space)
    previous = None  # (a delta's whole committed space) not needed while the new one is written
    if not reused:
        ctx.state.write_frame(f"cs/{d.name}", space, patch)
        ctx.state.write_frame(f"held/{d.name}", held)
    ctx.state.set_value(f"watermark/{d.name}", watermark)
    ctx.state.set_value(f"dn_form/{d.name}", DN_FORM)  # dn_norm spelled by this form (see decide_mode)
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
        "delta_read": delta is not None,
        "read": _how_read(watermark, reused, delta is not None),
        **({"delta_note": watermark["note"]} if isinstance(watermark, dict) and watermark.get("note") else {}),
        **({"delta_entries": len(delta.entries),
            "delta_deletes": len(delta.deleted_anchors) + len(delta.deleted_dns),
            "delta_rereads": reread} if delta is not None else {}),
        **({"full_import_reason": full_import_reason} if full_import_reason else {}),
        "held_samples": _samples(held, ["dn", "position", "reason"]),
    }


def _merge_delta(ctx: RunContext, d: ResolvedDirectory, delta,  # noqa: ANN001
                 reader, previous: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int, Patch]:  # noqa: ANN001
    """The connector space after a delta read: changed rows decoded and scoped, merged into the last one.

    Directories rewrite references on other objects without reporting them (DESIGN §6b), so two kinds of
    unchanged objects are re-read, as a full read would see them:

    - those whose references name an old DN of a renamed, moved or deleted object (``stale_references``):
      whether the directory rewrote them (AD, slapd with refint) or kept the old DN (slapd without refint)
      only it knows;
    - those whose references name the current DN of an object entering scope (``entering_scope``: moved in
      from outside the containers, or created outside and moved in): its old DN was never known here, so
      the server is searched for ``(member=<dn>)``, ``(uniqueMember=<dn>)``, ``(manager=<dn>)``.

    ``previous``: the committed connector space. Returns the space, the held objects, how many objects
    were re-read and how the space differs from ``previous`` (for the state store)."""
    references = [attr_column(m.source) for m in d.mappings.values() if m.transform == "reference"]
    members = [attr_column(a) for a in d.member_attributes]
    attributes = frozenset(d.attributes) | {"objectclass"}
    imported = build_connector_space(delta.entries, d)
    changed = apply_scope(imported.objects, d, ctx.settings.deletion.disabled_accounts)
    previous_dns = KnownDns(previous)  # both reference passes below normalise by lookup in the last space
    stale = stale_references(previous, imported.objects, delta.deleted_anchors, delta.deleted_dns, references,
                             members, previous_dns)
    reread: list = reader.read_objects(stale, attributes) if stale else []
    entering = entering_scope(previous, changed)
    if entering:
        from profile_sync.directory.ldap.referrers import read_referrers

        known = set(normalize_dns([e.dn for e in [*delta.entries, *reread]]))
        sources = [m.source for m in d.mappings.values() if m.transform == "reference"] + list(d.member_attributes)
        found = read_referrers(reader, entering, sources, attributes)
        reread += [e for e, n in zip(found, normalize_dns([e.dn for e in found])) if n not in known]
    if reread:
        offset = len(delta.entries)
        extra = build_connector_space([e._replace(position=offset + i) for i, e in enumerate(reread, 1)], d)
        # An object the delta already has (renamed between the reads) is taken from the delta only.
        extra_objects = extra.objects.loc[~extra.objects["anchor"].isin(imported.objects["anchor"])]
        imported = dataclasses.replace(imported, objects=pd.concat([imported.objects, extra_objects], ignore_index=True),
                                       held=pd.concat([imported.held, extra.held], ignore_index=True))
        changed = pd.concat([changed, apply_scope(extra_objects, d, ctx.settings.deletion.disabled_accounts)],
                            ignore_index=True)
    rewritten: set[str] = set()
    space = apply_delta(previous, changed, delta.deleted_anchors, delta.deleted_dns, references, members,
                        previous_dns, rewritten)
    held_before = ctx.store.read_committed_frame(f"held/{d.name}")
    if held_before is not None and len(held_before):
        retried = set(imported.objects["dn"]) | set(imported.held["dn"])
        held_before = held_before.loc[~held_before["dn"].isin(retried)]
        held = pd.concat([held_before, imported.held], ignore_index=True)
    else:
        held = imported.held
    # The state store writes the changed rows only: the last len(changed) rows, and the rewritten ones in place.
    return space, held, len(reread), Patch("anchor", appended=len(changed), replaced=rewritten)


IMPORT_KEY = ["anchor", "row_hash", "in_scope", "object_type"]


def _how_read(watermark: Any, reused: bool, delta: bool) -> str:
    """How a directory was read, for the run history: the delta method, or why everything was read."""
    if reused:
        return "unchanged source (same file hash): not read"
    if not delta:
        return "full read"
    kind = watermark.get("kind") if isinstance(watermark, dict) else None
    if kind == "active_directory":
        return "delta: DirSync" if watermark.get("method") == "dirsync" else "delta: uSNChanged"
    if kind == "openldap":
        return "delta: entryCSN + accesslog"
    return "delta: changed file compared by row hashes"


def _import_counts(previous: pd.DataFrame | None, space: pd.DataFrame) -> dict[str, int]:
    """Pending imports against the previous connector space: adds, updates, deletes (incl. leaving scope)."""
    now = space.loc[space["in_scope"], ["anchor", "row_hash"]]
    if previous is None or previous.empty:
        return {"adds": len(now), "updates": 0, "deletes": 0, "unchanged": 0}
    before = previous.loc[previous["in_scope"], ["anchor", "row_hash"]]
    old, new = pd.Index(before["anchor"]), pd.Index(now["anchor"])
    if old.is_unique and new.is_unique:  # each anchor looked up in the other frame (as changed_objects does)
        at = old.get_indexer(new)
        found = at >= 0
        same = found & (before["row_hash"].to_numpy()[np.where(found, at, 0)] == now["row_hash"].to_numpy())
        return {"adds": int((~found).sum()), "updates": int((found & ~same).sum()),
                "deletes": len(old) - int(found.sum()), "unchanged": int(same.sum())}
    m = merge_by_anchor(now, before)
    both = m["_merge"] == "both"
    same = both & (m["row_hash"] == m["row_hash_before"])
    return {"adds": int((m["_merge"] == "left_only").sum()), "updates": int((both & ~same).sum()),
            "deletes": int((m["_merge"] == "right_only").sum()), "unchanged": int(same.sum())}


# -- step 2: import profile store -------------------------------------------------------
PS_FRAMES = ("people", "groups", "memberships")


@step("import_profile_store")
def import_profile_store(ctx: RunContext) -> Summary:
    """Import of the profile store into its connector space (skipped before it exists).

    Incremental runs read only the rows changed since the last confirming import
    (the store's change log); full runs, or a store without a change log, read everything.

    Reconciliation: when the profile store was last written by a run whose state was never
    committed (it died between its export and its promotion), the committed profile-store
    connector space is behind the store, so it is read in full whatever the mode; the people
    the change log names since the committed watermark are still synchronized again.
    """
    store = _profile_store(ctx)
    committed = ctx.store.committed_manifest()
    behind = _store_ahead_of_state(committed)
    incremental = ctx.state.get_value("run/mode") == "incremental" and behind is None
    seq = committed["values"].get("watermark/profile_store")
    if incremental and seq is not None and all(f"ps/{name}" in committed["frames"] for name in PS_FRAMES):
        quiet = store.quiet_since(seq)
        if quiet is not None:
            return _profile_store_unchanged(ctx, *quiet)
    base = _snapshot(ctx.store.read_committed_frame, committed["values"])
    snapshot = store.read_changes(base) if incremental and base is not None else None
    delta = snapshot is not None
    if snapshot is None:
        snapshot = store.read_all()
        if behind is not None and base is not None and base.seq is not None:
            snapshot = dataclasses.replace(snapshot, changed_people=frozenset(store.changed_people_since(base.seq)))
    changed = _write_changed(ctx, snapshot.changed_people)
    _write_profile_store_space(ctx, snapshot, base if delta else None)
    if not snapshot.exists:
        return {"skipped": True, "reason": "the profile store has no tables yet (first run)"}
    return {"skipped": False, "delta": delta, "changed_in_store": len(changed), "people": len(snapshot.people),
            "groups": len(snapshot.groups), "memberships": len(snapshot.memberships),
            **({"reconciled": behind} if behind else {})}


def _profile_store_unchanged(ctx: RunContext, seq: int, values: pd.DataFrame) -> Summary:
    """A delta import of a store nobody changed since the last run: the committed connector space stands as it
    is (the run's state refers to it; it is not read), only the log position, the multi-valued values and the
    people carried from the last run are recorded."""
    changed = _write_changed(ctx, frozenset())
    ctx.state.set_value("watermark/profile_store", seq)
    ctx.state.write_frame("ps/property_values", values)
    ctx.state.commit_step()
    counts = {name: len(ctx.store.read_committed_frame(f"ps/{name}", columns=[key]))
              for name, key in (("people", "profile_id"), ("groups", "group_id"), ("memberships", "group_id"))}
    return {"skipped": False, "delta": True, "unchanged_in_store": True, "changed_in_store": len(changed), **counts}


def _write_changed(ctx: RunContext, changed_in_store: frozenset[str]) -> set[str]:
    """Record (``ps/changed``) the people to synchronize again: those changed in the store by others, and those
    the last run's confirming import carried over (``ps/carry``); returns them."""
    carried = ctx.store.read_committed_frame("ps/carry")
    changed = set(changed_in_store) | (set(carried["profile_id"]) if carried is not None else set())
    ctx.state.write_frame("ps/changed", pd.DataFrame({"profile_id": sorted(changed)}, dtype=object))
    return changed


def _store_ahead_of_state(committed: dict[str, Any]) -> str | None:
    """Why the profile store is ahead of the committed state (None when it is not)."""
    writer = committed.get("exported_by")
    if writer is None or writer == committed.get("run_key"):
        return None
    return (f"the profile store was last written by run {writer!r}, whose state was never committed (it stopped "
            "between its export and its promotion): the profile store is read in full")


def _snapshot(read, values: dict):  # noqa: ANN001, ANN202
    """The profile-store connector space as a snapshot (for a delta import), or None."""
    from profile_sync.profile_store.store import ProfileStoreSnapshot

    seq = values.get("watermark/profile_store")
    frames = [read(f"ps/{name}") for name in PS_FRAMES]
    if seq is None or any(f is None for f in frames):
        return None
    return ProfileStoreSnapshot(*frames, exists=True, seq=seq)


def _write_profile_store_space(ctx: RunContext, snapshot, base=None) -> None:  # noqa: ANN001
    """Write the snapshot's frames; those a delta import left as ``base`` had them (the same frame) are not
    rewritten: the run's state already refers to them."""
    for name in PS_FRAMES:
        frame = getattr(snapshot, name)
        if base is None or frame is not getattr(base, name):
            # A delta's people: ``base`` (the run's view of ps/people) with the re-read rows last.
            patch = (Patch("profile_id", appended=snapshot.reread_people)
                     if name == "people" and base is not None and snapshot.reread_people is not None else None)
            ctx.state.write_frame(f"ps/{name}", frame, patch)
    ctx.state.set_value("watermark/profile_store", snapshot.seq)
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
    spaces = {d.name: ctx.state.read_frame(f"cs/{d.name}") for d in directories}
    for name, space in spaces.items():
        if space is None:
            raise RuntimeError(f"connector space of {name!r} missing: import_directory did not run")
    links = ctx.store.read_committed_frame("mv/links")
    links = links if links is not None else empty_links()
    only, previous_people = _dirty_set(ctx, directories, spaces, links)
    mv = build_metaverse(spaces, directories, links, ctx.settings.account_name_format,
                         ctx.settings.deletion.disabled_accounts, ctx.settings.precedence,
                         only=only, previous_people=previous_people,
                         previous_unresolved=(ctx.store.read_committed_frame("mv/unresolved")
                                              if only is not None else None))
    mv, held_for_writeback = _hold_profile_changes(ctx, mv, spaces, directories)
    space = None
    spaces.clear()  # the connector spaces are not needed any more: their memory is reused for the store's frames
    if mv.computed is None:
        store_people, store_examined = ctx.state.read_frame("ps/people"), None
    else:  # a delta compares the recomputed people only: the others' properties are not read
        store_people = ctx.state.read_frame("ps/people", STORE_KEY_COLUMNS)
        store_examined = ctx.state.read_frame("ps/people", where=("profile_id", mv.computed))
    pending = plan_profile_store_exports(
        mv, store_people, ctx.state.read_frame("ps/groups"),
        ctx.state.read_frame("ps/memberships"), _managed(directories), property_specs(ctx.settings),
        account_name_sources={d.name: d.mappings["account_name"].source for d in directories
                               if "account_name" in import_properties(d)},
        store_examined=store_examined)
    _write_metaverse(ctx, mv, held_for_writeback == 0)
    _write_pending(ctx, pending)
    ctx.state.commit_step()
    counts = pending.counts()
    return {
        **counts,
        "delta": only is not None,
        "recomputed_people": len(mv.computed) if mv.computed is not None else int((mv.people["state"] == ACTIVE).sum()),
        "metaverse_people": int((mv.people["state"] == ACTIVE).sum()),
        "metaverse_groups": int((mv.groups["state"] == ACTIVE).sum()),
        "memberships": len(mv.memberships),
        "unresolved_references": len(mv.unresolved),
        "held_for_writeback": held_for_writeback,
        "unresolved_samples": _samples(mv.unresolved, list(mv.unresolved.columns)),
        "join_problems": len(mv.joins),
        "join_samples": _samples(mv.joins, list(mv.joins.columns)),
        "held_samples": _samples(pending.held, ["source_dn", "reason"]),
    }


def _dirty_set(ctx: RunContext, directories: list[ResolvedDirectory], spaces: dict[str, pd.DataFrame],
               links: pd.DataFrame) -> tuple[DirtySet | None, pd.DataFrame | None]:
    """For an incremental run: what may have changed since the last run (None: synchronize everything)."""
    if ctx.state.get_value("run/mode") != "incremental":
        return None, None
    previous_people = ctx.store.read_committed_frame("mv/people")
    if previous_people is None:
        return None, None
    before = {d.name: ctx.store.read_committed_frame(f"cs/{d.name}", columns=DELTA_KEY) for d in directories}
    changed = set(ctx.state.read_frame("ps/changed")["profile_id"])
    held = ctx.store.read_committed_frame("pending/held")
    if held is not None:
        changed |= set(held["profile_id"])  # held people are retried every run
    return compute_dirty_set(spaces, before, directories, links, changed), previous_people


def _hold_profile_changes(ctx: RunContext, mv: Metaverse, spaces: dict[str, pd.DataFrame],
                          directories: list[ResolvedDirectory]) -> tuple[Metaverse, int]:
    """Two-way (write-back) properties changed in the profile store keep their value (sync/writeback.py)."""
    if not any(writeback.two_way_mappings(d) for d in directories):
        return mv, 0
    people, held = writeback.hold_profile_changes(
        mv.people, ctx.state.read_frame("ps/people"), spaces, directories,
        {d.name: ctx.state.read_frame(f"wb/{d.name}") for d in directories})
    return dataclasses.replace(mv, people=people), held


def _write_metaverse(ctx: RunContext, mv: Metaverse, as_computed: bool = True) -> None:
    """The metaverse's frames. A delta's people are the last run's (read committed: no step before this one
    writes them), the recomputed ones last (``build_metaverse``): the state store writes only those, unless
    values were held for write-back (``as_computed`` False), which may touch any row."""
    patch = None
    if mv.computed is not None and as_computed:
        patch = Patch("mv_id", appended=int(mv.people["mv_id"].isin(mv.computed).sum()))
    ctx.state.write_frame("mv/people", mv.people, patch)
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
def validate_export(ctx: RunContext, *, approval: bool = False) -> Summary:
    """The data-quality gate before the profile-store export (checks: gates/checks.py; body: run/gate_step.py).

    ``approval``: tripped blast-radius limits ask an administrator (the DAG's approve_export) instead of failing."""
    from profile_sync.run.gate_step import run_export_gate

    return run_export_gate(ctx, _read_pending(ctx), _directories(ctx), approval=approval)


# -- step 4: export profile store ----------------------------------------------------------
@step("export_profile_store")
def export_profile_store(ctx: RunContext) -> Summary:
    """Apply the pending exports in one transaction (a dry run writes nothing)."""
    pending = _read_pending(ctx)
    counts = pending.counts()
    if ctx.dry_run:
        return {**counts, "dry_run": True, "written": False}
    read_upto = ctx.store.committed_manifest()["values"].get("watermark/profile_store")
    store = _profile_store(ctx)
    written = store.apply_pending_exports(pending, ctx.run_key, ctx.settings.deletion.retention_days,
                                          read_upto=read_upto)
    ctx.state.write_frame("ps/purged", pd.DataFrame({"profile_id": store.last_purged}, dtype=object))
    ctx.state.commit_step()
    return {**counts, **written, "written": True}


# -- step 5: confirming import of the profile store ----------------------------------------
@step("confirm_profile_store")
def confirm_profile_store(ctx: RunContext) -> Summary:
    """Confirming import: re-read what changed in the profile store and check every export landed.

    Changes someone else made meanwhile are carried to the next run, which
    synchronizes those people again (the directory wins for mapped properties).
    """
    pending = _read_pending(ctx)
    if ctx.dry_run:
        return {"dry_run": True, "confirmed": 0}
    store = _profile_store(ctx)
    base = _snapshot(ctx.state.read_frame, ctx.state.manifest["values"])
    purged = ctx.state.read_frame("ps/purged")
    purged_ids = set(purged["profile_id"]) if purged is not None else set()
    written = {"user_profiles": set(pending.people["profile_id"]) | purged_ids,
               "user_groups": set(pending.groups["group_id"]),
               "group_memberships": set(pending.memberships["group_id"])}
    snapshot = store.read_changes(base, also=written) if base is not None else None
    if snapshot is None:
        snapshot = store.read_all()
    exported = pending.people.loc[pending.people["operation"].isin(["add", "update", "unmark"])]
    columns = [c for c in pending.managed if c in snapshot.people.columns]
    mismatches = _confirm(exported, snapshot.people, columns)
    carry = set(snapshot.changed_people) | {m["profile_id"] for m in mismatches}
    ctx.state.write_frame("ps/carry", pd.DataFrame({"profile_id": sorted(carry)}, dtype=object))
    _write_profile_store_space(ctx, snapshot, base)
    return {"confirmed": len(exported) - len(mismatches), "errors": len(mismatches),
            "changed_by_others": len(carry), "mismatch_samples": mismatches[:SAMPLE]}


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
@step("synchronize_writeback")
def synchronize_writeback(ctx: RunContext) -> Summary:
    """Profile store → directory pending exports (properties configured for write-back)."""
    configured = [d for d in _directories(ctx) if writeback.writeback_mappings(d)]
    if not configured:
        return {"nothing_to_write_back": True,
                "message": "nothing to write back: no property is configured for export to a directory"}
    store_people = ctx.state.read_frame("ps/people")
    links = ctx.state.read_frame("mv/links")
    per: dict[str, Any] = {}
    for d in configured:
        if d.connection.type == "ldif":
            per[d.name] = {"skipped": "an LDIF connection is read-only"}
            continue
        plan = writeback.plan_directory_exports(d, ctx.state.read_frame(f"cs/{d.name}"), links, store_people,
                                                ctx.state.read_frame(f"wb/{d.name}"))
        ctx.state.write_frame(f"pending_dir/{d.name}", plan.pending)
        ctx.state.write_frame(f"wb/{d.name}", plan.baseline)
        per[d.name] = {"pending": len(plan.pending), "in_agreement": plan.agreed,
                       "properties": sorted(writeback.writeback_mappings(d))}
    ctx.state.commit_step()
    pending = sum(v.get("pending", 0) for v in per.values())
    return {"updates": pending, "connections": per}


@step("export_directory")
def export_directory(ctx: RunContext, connection: str) -> Summary:
    """Write pending exports back to one directory: per object; a refused write is reported, the rest go on."""
    d = _directory(ctx, connection)
    if d.connection.type == "ldif":
        return {"nothing_to_write_back": True, "message": "nothing to write back: an LDIF connection is read-only"}
    pending = ctx.state.read_frame(f"pending_dir/{d.name}")
    if pending is None or pending.empty:
        return {"nothing_to_write_back": True, "message": "nothing to write back"}
    if ctx.dry_run:
        return {"dry_run": True, "written": False, "pending": len(pending),
                "pending_samples": _samples(pending, ["dn", "attribute"])}
    from profile_sync.directory.ldap.writer import apply_directory_exports
    from profile_sync.directory.readers import ldap_settings

    outcome = apply_directory_exports(ldap_settings(d, ctx), pending)
    ctx.state.write_frame(f"exported_dir/{d.name}", outcome)
    ctx.state.commit_step()
    refused = outcome.loc[outcome["status"] == "refused"]
    return {"updates": int((outcome["status"] == "written").sum()), "errors": len(refused),
            "refused_samples": _samples(refused, ["profile_id", "dn", "attribute", "reason"])}


@step("confirm_directory")
def confirm_directory(ctx: RunContext, connection: str) -> Summary:
    """Confirming import from one directory: re-read what was written, check it, refresh the connector space."""
    d = _directory(ctx, connection)
    exported = ctx.state.read_frame(f"exported_dir/{d.name}") if d.connection.type != "ldif" else None
    written = exported.loc[exported["status"] == "written"] if exported is not None else None
    if written is None or written.empty or ctx.dry_run:
        return {"nothing_to_write_back": True, "message": "nothing was written back, nothing to confirm"}
    reader = make_reader(d, ctx)
    entries = reader.read_objects(list(dict.fromkeys(written["dn"])), frozenset(d.attributes) | {"objectclass"})
    reread = build_connector_space(entries, d)
    reread_space = apply_scope(reread.objects, d, ctx.settings.deletion.disabled_accounts)
    result = writeback.confirm_written(d, written, reread_space, ctx.state.read_frame(f"cs/{d.name}"))
    ctx.state.write_frame(f"cs/{d.name}", result.space)
    ctx.state.write_frame(f"wb/{d.name}", writeback.merge_baseline(
        ctx.state.read_frame(f"wb/{d.name}"), writeback.exported_baseline(result.confirmed)))
    ctx.state.write_frame(f"exported_dir/{d.name}", exported.iloc[0:0])
    ctx.state.commit_step()
    return {"confirmed": len(result.confirmed), "errors": len(result.mismatches),
            "mismatch_samples": result.mismatches[:SAMPLE]}
