"""Load ``airflow_settings.yaml`` into the Airflow metadata database with Airflow's own import commands.

``airflow pools import``, ``airflow connections import`` and ``airflow variables import`` do the
writing (validation, encryption of passwords and extras, the database): nothing here touches the
metadata database. Those commands read Airflow's export formats, not the astro CLI's
``airflow_settings.yaml`` (lists of ``pool_name``/``pool_slot``… entries under ``airflow:``), which
this project keeps because it is the file Astronomer projects already have. So this module only
converts, then runs the commands:

==============  ===================================================  =============================================
key             airflow_settings.yaml (astro)                        Airflow's import file
==============  ===================================================  =============================================
``pools``       ``{pool_name, pool_slot, pool_description}``         ``{name: {"slots", "description"}}``
``connections`` ``{conn_id, conn_type, conn_host, conn_port,         ``{conn_id: {"conn_type", "host", "port",
                conn_login, conn_password, conn_schema, conn_extra}``  "login", "password", "schema", "extra"}}``
``variables``   ``{variable_name, variable_value}``                  ``{name: value}``
==============  ===================================================  =============================================

Existing entries are overwritten (the file is the truth); the converted files live in a private
temporary folder removed afterwards (a connection may carry a password).

Usage: ``python -m profile_sync_airflow.settings_loader airflow_settings.yaml``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

COMMANDS = {
    "pools": ["pools", "import"],
    "connections": ["connections", "import", "--overwrite"],
    "variables": ["variables", "import", "--action-on-existing-key", "overwrite"],
}
_CONNECTION_FIELDS = {"conn_type": "conn_type", "conn_host": "host", "conn_port": "port", "conn_login": "login",
                      "conn_password": "password", "conn_schema": "schema", "conn_extra": "extra"}


class SettingsError(ValueError):
    """``airflow_settings.yaml`` is not in the astro format; the message names the entry."""


def _entries(doc: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    items = doc.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SettingsError(f"{path}: airflow.{key} must be a list of mappings")
    return items


def convert(path: Path) -> dict[str, dict[str, Any]]:
    """The contents of ``path`` as Airflow's import files: ``{"pools": {...}, "connections": {...}, ...}``."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    doc = (raw.get("airflow") or {}) if isinstance(raw, dict) else None
    if not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a mapping with an 'airflow' key")
    out: dict[str, dict[str, Any]] = {"pools": {}, "connections": {}, "variables": {}}
    for i, pool in enumerate(_entries(doc, "pools", path)):
        where = f"{path}: airflow.pools[{i}]"
        name, slots = pool.get("pool_name"), pool.get("pool_slot")
        if not name:
            raise SettingsError(f"{where}: pool_name is missing")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            raise SettingsError(f"{where}: pool_slot must be a whole number ≥ 0, got {slots!r}")
        out["pools"][name] = {"slots": slots, "description": pool.get("pool_description") or "",
                              "include_deferred": False}
    for i, conn in enumerate(_entries(doc, "connections", path)):
        where = f"{path}: airflow.connections[{i}]"
        if not conn.get("conn_id") or not conn.get("conn_type"):
            raise SettingsError(f"{where}: conn_id and conn_type are required")
        unknown = sorted(set(conn) - set(_CONNECTION_FIELDS) - {"conn_id"})
        if unknown:
            raise SettingsError(f"{where}: unknown keys {unknown}; known: conn_id, {', '.join(_CONNECTION_FIELDS)}")
        fields = {ours: conn[astro] for astro, ours in _CONNECTION_FIELDS.items() if conn.get(astro) is not None}
        if isinstance(fields.get("extra"), dict):
            fields["extra"] = json.dumps(fields["extra"])
        out["connections"][conn["conn_id"]] = fields
    for i, var in enumerate(_entries(doc, "variables", path)):
        if not var.get("variable_name"):
            raise SettingsError(f"{path}: airflow.variables[{i}]: variable_name is missing")
        out["variables"][var["variable_name"]] = var.get("variable_value")
    return out


def load(path: Path, airflow: str | None = None) -> dict[str, int]:
    """Convert ``path`` and import it with the ``airflow`` CLI; returns how many of each kind were imported."""
    airflow = airflow or str(Path(sys.executable).with_name("airflow"))
    converted = convert(path)
    with tempfile.TemporaryDirectory(prefix="profile-sync-settings-") as folder:  # mode 0700
        for kind, items in converted.items():
            if not items:
                continue  # the commands refuse an empty file
            file = Path(folder) / f"{kind}.json"
            file.write_text(json.dumps(items, indent=2), encoding="utf-8")
            done = subprocess.run([airflow, *COMMANDS[kind], str(file)], capture_output=True, text=True,
                                  timeout=600, check=False)
            if done.returncode != 0:
                raise SettingsError(f"{path}: `airflow {' '.join(COMMANDS[kind])}` failed "
                                    f"({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    return {kind: len(items) for kind, items in converted.items()}


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "airflow_settings.yaml")
    try:
        counts = load(path)
    except (SettingsError, OSError, yaml.YAMLError) as exc:
        print(f"settings_loader: {exc}", file=sys.stderr)
        return 1
    print(f"loaded {path} with airflow pools/connections/variables import: {counts['pools']} pool(s), "
          f"{counts['connections']} connection(s), {counts['variables']} variable(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
