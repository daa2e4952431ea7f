"""Hooks: Airflow Connections → engine ``ConnectionInfo`` (secrets stay out of logs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)

if TYPE_CHECKING:
    from profile_sync.run.context import ConnectionInfo


def resolve_connection(conn_id: str) -> "ConnectionInfo":
    """Look ``conn_id`` up in Airflow (metadata DB, secrets backend or ``AIRFLOW_CONN_*``)."""
    from airflow.sdk import BaseHook

    from profile_sync.run.context import ConnectionInfo

    conn = BaseHook.get_connection(conn_id)
    return ConnectionInfo(
        conn_id=conn_id,
        uri=conn.get_uri(),
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        extra=conn.extra_dejson or {},
    )
