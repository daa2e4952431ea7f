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
