"""A throwaway Profile Sync configuration: one LDIF directory, file state store, SQLite profile store."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers.directory import USERS


def write_ldif_config(tmp: Path) -> Path:
    """Write ``tmp/profile_sync.yaml`` reading ``tmp/directory.ldif``, keeping all state in ``tmp``; return its path.

    Select it with ``PROFILE_SYNC_CONFIG``."""
    config = tmp / "profile_sync.yaml"
    config.write_text(yaml.safe_dump({
        "state_store": {"url": f"file://{tmp / 'state'}"},
        "profile_store": {"url": f"sqlite:///{tmp / 'profiles.db'}"},
        "directories": [{"name": "contoso", "type": "ldif", "path": str(tmp / "directory.ldif"),
                         "containers": [USERS]}],
        "lease": {"poke_seconds": 1, "wait_seconds": 30},
    }))
    return config


def inspect_context(config: Path, project_root: Path | None = None, connections: dict[str, str] | None = None):  # noqa: ANN201
    """A run context for reading the stores of ``config`` (history, lease, committed state); runs nothing."""
    from profile_sync.config.loader import load_settings
    from profile_sync.run.context import ConnectionInfo, RunContext

    conns = dict(connections or {})
    return RunContext(run_id="inspect", settings=load_settings(config), project_root=project_root or config.parent,
                      resolve_connection=lambda c: ConnectionInfo(conn_id=c, uri=conns[c]))


def run_document(config: Path, dag_run, connections: dict[str, str] | None = None) -> dict:  # noqa: ANN001
    """The run history document of an Airflow DAG run (``dag.test()``'s result)."""
    doc = inspect_context(config, connections=connections).history.get(f"{dag_run.dag_id}/{dag_run.run_id}")
    assert doc is not None, f"no run history for {dag_run.dag_id}/{dag_run.run_id}"
    return doc
