"""The status view: is a synchronization running, waiting, or idle; how did the last ones go; what is held.

:func:`overview` gathers what the engine knows (lease, run history, committed state);
:func:`describe` adds what only the orchestrator knows (runs queued or waiting for the lease, the
task running now) from plain dicts the Airflow layer passes in, and says what is going on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from profile_sync.status.approval import waiting_for_approval
from profile_sync.status.frames import CommittedState
from profile_sync.status.redact import mask_url
from profile_sync.status.runs import run_summary

if TYPE_CHECKING:
    from profile_sync.config.settings import Settings
    from profile_sync.run.context import RunContext

RECENT_RUNS = 200
"""Run-history documents looked at for the last full and incremental runs."""
WAITING_TASK_STATES = ("up_for_reschedule", "scheduled", "queued", "running", "none", None)


def counts(view: CommittedState) -> dict[str, int | None]:
    """People (active, marked for deletion), groups, memberships as the last run left the profile store, and the
    objects in quarantine. None where the state has no such frame yet (before the first run)."""
    people = view.frame("ps/people", ["state"])
    groups = view.frame("ps/groups", ["state"])
    memberships = view.frame("ps/memberships", ["group_id"])
    held = view.frame("quarantine", ["connection"])
    by_state = people["state"].value_counts() if people is not None else None
    return {
        "people": int(by_state.get("active", 0)) if by_state is not None else None,
        "marked_for_deletion": int(by_state.get("marked_for_deletion", 0)) if by_state is not None else None,
        "groups": int((groups["state"] == "active").sum()) if groups is not None else None,
        "memberships": len(memberships) if memberships is not None else None,
        "quarantined": len(held) if held is not None else 0,
    }


def configuration(settings: "Settings") -> dict[str, Any]:
    """Where things are (no secret: Connection ids, URLs with any password masked)."""
    def url(u: str | None) -> str | None:
        return mask_url(u) if u else None

    return {
        "directories": [{"name": d.name, "type": d.type, "path": d.path, "conn_id": d.conn_id, "preset": d.preset,
                         "containers": list(d.containers), "excluded_containers": list(d.excluded_containers),
                         "filter": d.filter} for d in settings.directories],
        "business_systems": [{"name": b.name, "type": b.type, "conn_id": getattr(b, "conn_id", None),
                              "url": url(getattr(b, "url", None)), "path": getattr(b, "path", None)}
                             for b in settings.business_systems],
        "profile_store": {"conn_id": settings.profile_store.conn_id,
                          "url": None if settings.profile_store.conn_id else url(settings.profile_store.url)},
        "state_store": {"url": url(settings.state_store.url)},
        "schedule": {"full": settings.schedule.full, "incremental": settings.schedule.incremental},
        "approval": settings.approval.model_dump(),
    }


def _brief(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if not doc:
        return None
    s = run_summary(doc)
    return {k: s[k] for k in ("run_id", "dag_id", "status", "mode", "requested_mode", "full_reason", "dry_run",
                              "started_at", "finished_at", "duration_s", "failed_step", "error", "changes")}


def overview(ctx: "RunContext", view: CommittedState) -> dict[str, Any]:
    """What the engine knows: the lease, the run holding it, a run waiting for approval, the last full and
    incremental runs and their outcome, the counts, the configuration."""
    holder = ctx.lease.holder()
    # Synchronization runs only: a site push (``kind: site_push``) shares the history but is no sync run.
    docs = [d for d in ctx.history.runs(RECENT_RUNS) if not d.get("kind")]
    running = None
    if holder is not None:
        doc = next((d for d in docs if d.get("run_key") == holder.get("owner")), None) or ctx.history.get(holder["owner"])
        steps = (doc or {}).get("steps") or []
        dag_id, _, run_id = str(holder["owner"]).partition("/")
        running = {"run_id": (doc or {}).get("run_id") or run_id, "run_key": holder["owner"],
                   "dag_id": (doc or {}).get("dag_id") or dag_id, "mode": (doc or {}).get("mode"),
                   "since": holder.get("acquired_at"), "lease_expires_at": holder.get("expires_at"),
                   "last_step": steps[-1].get("step") if steps else None,
                   "last_step_status": steps[-1].get("status") if steps else None}
    finished = [d for d in docs if d.get("status") in ("success", "failed")]
    return {
        "lease": {k: holder.get(k) for k in ("owner", "acquired_at", "renewed_at", "expires_at")} if holder else None,
        "running": running,
        "waiting_for_approval": waiting_for_approval(ctx),
        "last_full": _brief(next((d for d in finished if d.get("mode") == "full"), None)),
        "last_incremental": _brief(next((d for d in finished if d.get("mode") == "incremental"), None)),
        "last_run": _brief(docs[0] if docs else None),
        "counts": counts(view),
        "committed": {"version": view.version, "committed_at": view.committed_at},
        "configuration": configuration(ctx.settings),
    }


def describe(engine: dict[str, Any], active_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline: ``waiting_for_approval``, ``running``, ``waiting_for_lease``, ``queued`` or ``idle``, and every
    activity behind it.

    ``active_runs``: the orchestrator's queued and running runs of the Profile Sync DAGs, each
    ``{"dag_id", "run_id", "state", "tasks": {task_id: state}}``.
    """
    activities: list[dict[str, Any]] = []
    waiting = engine.get("waiting_for_approval")
    running = engine.get("running")

    def key(r: dict[str, Any] | None) -> tuple | None:  # a run is its DAG and its run id (run ids repeat across DAGs)
        return (r.get("dag_id"), r.get("run_id")) if r else None

    owner = running["run_id"] if running else None
    by_key = {key(r): r for r in active_runs}
    if waiting:
        activities.append({"kind": "waiting_for_approval", **waiting})
    if running and not (waiting and key(waiting) == key(running)):
        tasks = (by_key.get(key(running)) or {}).get("tasks") or {}
        now = sorted(t for t, s in tasks.items() if s == "running")
        activities.append({"kind": "running", "run_id": owner, "dag_id": running.get("dag_id"),
                           "mode": running.get("mode"), "since": running.get("since"),
                           "steps": now or ([running["last_step"]] if running.get("last_step") else [])})
    for r in active_runs:
        if key(r) == key(running) or (waiting and key(r) == key(waiting)):
            continue
        tasks = r.get("tasks") or {}
        if any(s == "awaiting_input" for s in tasks.values()):
            activities.append({"kind": "waiting_for_approval", "run_id": r["run_id"], "dag_id": r["dag_id"]})
        elif r.get("state") == "running" and tasks.get("start_run") in WAITING_TASK_STATES:
            kind = "waiting_for_lease" if owner else "starting"
            activities.append({"kind": kind, "run_id": r["run_id"], "dag_id": r["dag_id"], "held_by": owner})
        elif r.get("state") == "queued":
            activities.append({"kind": "queued", "run_id": r["run_id"], "dag_id": r["dag_id"]})
        elif r.get("state") == "running":
            activities.append({"kind": "running", "run_id": r["run_id"], "dag_id": r["dag_id"],
                               "steps": sorted(t for t, s in tasks.items() if s == "running")})
    order = ["waiting_for_approval", "running", "waiting_for_lease", "starting", "queued"]
    state = min((a["kind"] for a in activities), key=order.index, default="idle")
    return {"state": state, "activities": activities}
