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


def state_store_filesystem(url: str, conn_id: str | None):  # noqa: ANN201
    """The fsspec filesystem of an object-store state store, credentials from the Airflow Connection ``conn_id``.

    Airflow's ``ObjectStoragePath`` builds it (the provider of the URL's scheme registers the
    filesystem: ``apache-airflow-providers-amazon`` for ``s3://``, ``…-google`` for ``gs://``,
    ``…-microsoft-azure`` for ``abfs://``), so credentials, endpoints and roles are configured
    the way every Airflow user already configures them.
    """
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=conn_id).fs
