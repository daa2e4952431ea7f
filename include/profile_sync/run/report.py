"""What happened and where to look: the summary ``make run`` prints.

``python -m profile_sync.run.report [--runs N]`` reads the run history (coordination
tables of the profile-store database) and the totals from the profile store. A profile store given
as an Airflow Connection (``profile_store.conn_id``) is found in ``AIRFLOW_CONN_<CONN_ID>`` (no
Airflow imported); ``python -m profile_sync_airflow.report`` (the plugin's wrapper, what ``make run``
calls) also finds it in Airflow's metadata database and secrets backends.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from profile_sync.config.loader import PROJECT_ROOT, config_path, load_settings
from profile_sync.config.urls import mask_url
from profile_sync.errors import ProfileSyncError
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import ProfileStore, make_engine
from profile_sync.run import plan
from profile_sync.run.connections import environment_connection
from profile_sync.run.context import ConnectionResolver, RunContext
from profile_sync.state.location import FilesystemFactory

STEP_ORDER = [s.name for s in (*plan.DIRECTORY_STEPS, *plan.BUSINESS_SYSTEM_STEPS, plan.FINISH)]
"""The order steps are printed in: the run's (run/plan.py)."""


def _step_key(s: dict[str, Any]) -> tuple[int, str]:
    name = s.get("step", "")
    return (STEP_ORDER.index(name) if name in STEP_ORDER else len(STEP_ORDER), s.get("connection") or "")


def format_run(doc: dict[str, Any]) -> str:
    lines = [
        f"Run {doc['run_id']}  ({doc.get('dag_id', '?')})",
        f"  status: {doc.get('status')}   mode: {doc.get('mode')}"
        + (f"   (full because: {doc['full_reason']})" if doc.get("mode") == "full" and doc.get("full_reason") else "")
        + ("   DRY RUN" if doc.get("dry_run") else ""),
        f"  {'step':<24}{'connection':<12}{'adds':>7}{'updates':>9}{'deletes':>9}{'unchanged':>11}"
        f"{'errors':>8}{'seconds':>9}",
    ]
    for o in doc.get("overrides") or []:
        lines.insert(2, f"  gate {o['gate']} OVERRIDDEN by {o['by']} at {o['at']}: {o['reason']} "
                        f"({', '.join(c['name'] for c in o['checks'])})")
    for s in sorted(doc.get("steps", []), key=_step_key):
        if s.get("status") == "failed":
            lines.append(f"  {s['step']:<24}{(s.get('connection') or ''):<12}  FAILED: {s.get('error')}")
            continue
        lines.append(
            f"  {s['step']:<24}{(s.get('connection') or ''):<12}{s.get('adds', 0):>7}{s.get('updates', 0):>9}"
            f"{s.get('deletes', 0):>9}{s.get('unchanged', 0):>11}{s.get('errors', 0):>8}"
            f"{s.get('duration_s', 0):>9.2f}")
        if s.get("message"):
            lines.append(f"  {'':<24}{'':<12}{s['message']}")
        if s.get("step") == "validate_export" and s.get("quarantined"):
            lines.append(f"  {'':<24}{'':<12}quarantined: {s['quarantined']} ({s.get('quarantined_new', 0)} new), "
                         f"released: {s.get('released', 0)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, resolve_connection: ConnectionResolver = environment_connection,
         resolve_filesystem: FilesystemFactory | None = None) -> int:
    """Print the report; 0 when every run shown succeeded, 2 when the profile store cannot be read.

    ``resolve_connection`` finds the profile store's Connection (default: the ``AIRFLOW_CONN_*``
    environment); ``resolve_filesystem`` an object-store state store's (the plugin's wrapper passes
    Airflow's)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2, help="how many of the newest runs to show")
    args = parser.parse_args(argv)
    settings = load_settings()
    ctx = RunContext(run_id="report", settings=settings, resolve_connection=resolve_connection,
                     resolve_filesystem=resolve_filesystem)
    try:  # the run history lives in the profile-store database too
        url = ctx.profile_store_url()
        runs = ctx.history.runs(args.runs)
        totals = ProfileStore(make_engine(url), property_specs(settings)).counts()
    except ProfileSyncError as exc:
        print(f"Profile store: cannot be read: {exc}", file=sys.stderr)
        return 2
    for doc in reversed(runs):
        print(format_run(doc))
        print()
    print("Profile store now:")
    print(f"  people (active):      {totals['people']}")
    print(f"  marked for deletion:  {totals['marked_for_deletion']}")
    print(f"  groups:               {totals['groups']}")
    print(f"  memberships:          {totals['memberships']}")
    print()
    print("Where to look:")
    print(f"  configuration:  {config_path()}")
    print(f"  profile store:  {mask_url(url)}")
    print(f"  state store:    {ctx.store.display}/objects/*.parquet  (connector spaces, metaverse)")
    print("  run history, committed manifest, lease:  tables profile_sync_runs, profile_sync_run_steps,")
    print("                  profile_sync_state, profile_sync_lease in the profile-store database")
    print(f"  Airflow logs:   {PROJECT_ROOT / '.local' / 'airflow' / 'logs'}  (and .local/logs/make-run-*.log)")
    print("  Airflow UI:     make ui")
    return 0 if all(d.get("status") == "success" for d in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
