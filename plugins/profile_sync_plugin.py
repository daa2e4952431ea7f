"""The Airflow plugin of Profile Sync: the "Profile Sync" page in Airflow's navigation.

- ``fastapi_apps``: the page and its JSON API, mounted in the API server at ``/profile-sync``
  (``profile_sync_airflow/page/app.py``; every route checks the caller through the auth manager);
- ``external_views``: the navigation entry, showing that page inside the Airflow UI at
  ``/plugin/profile-sync``.

Every Airflow process loads plugins, each task too (for macros and listeners); only the API server
serves the page, so only there is the app imported (it costs seconds of FastAPI and API-server imports,
which a task would pay at every start). ``.airflowignore`` keeps the plugin manager out of
``profile_sync_airflow/``, an ordinary package.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/profile-sync"


def _in_api_server() -> bool:
    """The API server imports its app module before it loads plugins; no other process does."""
    return "airflow.api_fastapi.app" in sys.modules


def _fastapi_apps() -> list[dict[str, Any]]:
    if not _in_api_server():
        return []
    from profile_sync_airflow.page.app import app

    return [{"app": app, "url_prefix": URL_PREFIX, "name": "Profile Sync"}]


class ProfileSyncPlugin(AirflowPlugin):
    name = "profile_sync"
    fastapi_apps = _fastapi_apps()
    external_views = [{
        "name": "Profile Sync",
        "href": f"{URL_PREFIX}/",
        "url_route": "profile-sync",
        "destination": "nav",
        "nav_top_level": True,
    }]
