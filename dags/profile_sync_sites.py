"""Profile Sync → sites: ``profile_sync_sites``.

Scheduled on the Asset ``profile_sync_profile_store`` (emitted by ``finish_run``
of ``profile_sync_full`` and ``profile_sync_incremental``) and startable by hand.
One mapped task per configured site (``sites:`` in the configuration) pushes the
changed profiles of the people listed on that site
(``include/profile_sync/run/site_steps.py``). A site that is down fails only its
own mapped instance, which is retried; the other sites go on. With no site
configured the DAG still parses: it is not scheduled (manual only) and a run
has nothing to push (the mapped task expands to no instance and is skipped).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, get_current_context, task

_ROOT = Path(__file__).resolve().parents[1]
for _p in (_ROOT / "include", _ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from profile_sync.config import load_settings  # noqa: E402  (small: YAML + pydantic, no pandas)

PROFILE_STORE = Asset(name="profile_sync_profile_store", uri="profile-sync://profile-store/user_profiles")
"""The Asset ``finish_run`` emits in dags/profile_sync.py (same name and URI: the same Asset)."""


def build_sites_dag() -> DAG:
    """The DAG that pushes the profile store to every configured site."""
    settings = load_settings()
    sites = [s.name for s in settings.sites]

    with DAG(
        dag_id="profile_sync_sites",
        description="Profile store → sites: changed profiles of the people each site lists",
        schedule=[PROFILE_STORE] if sites else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["profile_sync", "sites"],
        default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
        params={
            "mode": Param("incremental", enum=["incremental", "full"], title="Mode",
                          description="Incremental: profiles changed since each site's watermark (becomes full "
                                      "when it must, with the reason in the run history). Full: every listed "
                                      "person of every site."),
            "dry_run": Param(False, type="boolean", title="Dry run",
                             description="Plan and check each push; write nothing (watermarks stay)."),
            "override_gates": Param(False, type="boolean", title="Override safety gates",
                                    description="Let this run flag more listed people deleted than the sites' "
                                                "limits allow. Recorded in the run history with the reason."),
            "override_reason": Param(None, type=["null", "string"], title="Override reason",
                                     description="Why the gates are overridden (required with Override safety gates)."),
        },
        doc_md=__doc__,
    ) as dag:

        @task(map_index_template="{{ site_name }}")
        def push_site(site: str) -> dict:
            """Push one site (retried when the site is unreachable; a failed gate is not retried)."""
            from profile_sync.run import site_steps
            from profile_sync_airflow.tasks import call_step

            context = get_current_context()
            context["site_name"] = site  # type: ignore[typeddict-unknown-key]  (the mapped instance's label)
            return call_step(site_steps.push_site, context, site)

        push_site.expand(site=sites)
    return dag


profile_sync_sites = build_sites_dag()
