"""Connections outside a task, without Airflow: ``AIRFLOW_CONN_<CONN_ID>`` environment variables.

Inside a task the DAG layer resolves Connections through Airflow (``plugins/profile_sync_airflow``).
Command-line tools of the engine (``python -m profile_sync.run.report``) read the same variables
Airflow reads — a URI (``postgresql+psycopg2://user:secret@host:5432/db``) or Airflow's JSON form
(``{"conn_type": "postgresql", "host": …, "login": …, "password": …, "port": …, "schema": …,
"extra": {…}}``) — so a Connection kept in the environment works the same in both.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from profile_sync.errors import TerminalError
from profile_sync.run.context import ConnectionInfo


def environment_variable(conn_id: str) -> str:
    """The variable Airflow reads for ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def environment_connection(conn_id: str) -> ConnectionInfo:
    """``conn_id`` from ``AIRFLOW_CONN_<CONN_ID>``; a TerminalError naming the variable when it is unset or bad."""
    name = environment_variable(conn_id)
    value = os.environ.get(name, "").strip()
    if not value:
        raise TerminalError(
            f"connection {conn_id!r} is not in the environment ({name} is not set); set it, or run "
            f"`python -m profile_sync_airflow.report`, which also finds Connections in Airflow's metadata database "
            f"and secrets backends")
    if value.startswith("{"):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TerminalError(f"{name} is not valid JSON: {exc.msg} at character {exc.pos}") from None
        return _from_fields(conn_id, doc)
    return _from_uri(conn_id, value, name)


def _from_uri(conn_id: str, uri: str, name: str) -> ConnectionInfo:
    parts = urlsplit(uri)
    if not parts.scheme:
        raise TerminalError(f"{name} is neither a URI (scheme://…) nor Airflow's JSON form")
    extra = dict(parse_qsl(parts.query))
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    return ConnectionInfo(conn_id=conn_id, uri=uri, host=unquote(parts.hostname or "") or None, port=parts.port,
                          login=unquote(parts.username) if parts.username else None,
                          password=unquote(parts.password) if parts.password else None,
                          schema=unquote(parts.path.lstrip("/")) or None, extra=extra)


def _from_fields(conn_id: str, doc: dict) -> ConnectionInfo:
    """Airflow's JSON form; the URI is built as Airflow's ``Connection.get_uri`` builds it (extras left out)."""
    conn_type = str(doc.get("conn_type") or "").lower().replace("_", "-")
    login, password = doc.get("login"), doc.get("password")
    host, port, schema = doc.get("host"), doc.get("port"), doc.get("schema")
    auth = ""
    if login or password:
        auth = quote(login or "", safe="") + (":" + quote(password, safe="") if password else "") + "@"
    uri = f"{conn_type}://{auth}{quote(host or '', safe='')}{f':{port}' if port else ''}"
    if schema:
        uri += "/" + quote(schema, safe="")
    extra = doc.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra)
    return ConnectionInfo(conn_id=conn_id, uri=uri if conn_type else None, host=host,
                          port=int(port) if port else None, login=login, password=password, schema=schema,
                          extra=extra)
