"""``python -m profile_sync_airflow.report [--runs N]``: the engine's run report, with Connections found
the way Airflow finds them outside a task (what ``make run`` prints at the end).

Outside a task, ``airflow.sdk.BaseHook.get_connection`` sees only the secrets backends configured for
clients (``AIRFLOW_CONN_*`` variables, a configured backend), not the metadata database; a Connection
created with ``airflow connections add`` or the UI lives there. So: the SDK's lookup first, then the
metadata database through ``airflow.models.Connection.get_connection_from_secrets``.
"""

from __future__ import annotations

import sys

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)


def resolve_connection(conn_id: str):  # noqa: ANN201
    """``conn_id`` as an engine ``ConnectionInfo``: secrets backends and environment, then the metadata DB."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from profile_sync_airflow.hooks import resolve_connection as from_sdk

    try:
        return from_sdk(conn_id)
    except AirflowNotFoundException:
        pass
    from airflow.models.connection import Connection

    from profile_sync.run.context import ConnectionInfo

    conn = Connection.get_connection_from_secrets(conn_id)
    return ConnectionInfo(conn_id=conn_id, uri=conn.get_uri(), host=conn.host, port=conn.port, login=conn.login,
                          password=conn.password, schema=conn.schema, extra=conn.extra_dejson or {})


def main(argv: list[str] | None = None) -> int:
    from profile_sync.run.report import main as report
    from profile_sync_airflow.hooks import state_store_filesystem

    return report(argv, resolve_connection=resolve_connection, resolve_filesystem=state_store_filesystem)


if __name__ == "__main__":
    sys.exit(main())
