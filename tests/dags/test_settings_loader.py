"""airflow_settings.yaml (astro format) is loaded by Airflow's own ``pools|connections|variables import``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from profile_sync_airflow.settings_loader import SettingsError, convert, main

SETTINGS = """
airflow:
  connections:
    - conn_id: psync_loader_test
      conn_type: postgres
      conn_host: db.example
      conn_port: 5432
      conn_login: reader
      conn_schema: hr
      conn_extra: {"sslmode": "require"}
  pools:
    - pool_name: psync_loader_pool
      pool_slot: 3
      pool_description: three at a time
  variables:
    - variable_name: psync_loader_var
      variable_value: forty-two
"""


def test_the_astro_format_becomes_airflows_import_files(tmp_path):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(SETTINGS)
    assert convert(path) == {
        "pools": {"psync_loader_pool": {"slots": 3, "description": "three at a time", "include_deferred": False}},
        "connections": {"psync_loader_test": {"conn_type": "postgres", "host": "db.example", "port": 5432,
                                              "login": "reader", "schema": "hr", "extra": '{"sslmode": "require"}'}},
        "variables": {"psync_loader_var": "forty-two"},
    }


@pytest.mark.parametrize(("text", "message"), [
    ("airflow:\n  pools:\n    - pool_name: p\n      pool_slot: one\n", r"airflow.pools\[0\]: pool_slot must be"),
    ("airflow:\n  connections:\n    - conn_id: c\n      conn_type: x\n      conn_hots: h\n",
     r"airflow.connections\[0\]: unknown keys \['conn_hots'\]"),
    ("airflow:\n  pools: {pool_name: p}\n", "airflow.pools must be a list"),
])
def test_a_mistake_names_the_entry(tmp_path, text, message):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        convert(path)


def _cli(*args: str) -> str:
    airflow = str(__import__("pathlib").Path(sys.executable).with_name("airflow"))
    return subprocess.run([airflow, *args], check=True, capture_output=True, text=True, timeout=300).stdout


def test_the_import_commands_write_them_and_a_second_load_overwrites(airflow_db, tmp_path):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(SETTINGS)
    assert main(["x", str(path)]) == 0
    path.write_text(SETTINGS.replace("pool_slot: 3", "pool_slot: 5").replace("forty-two", "forty-three"))
    assert main(["x", str(path)]) == 0  # the file is the truth: existing entries are overwritten
    (pool,) = json.loads(_cli("pools", "get", "psync_loader_pool", "-o", "json"))
    assert (pool["pool"], int(pool["slots"]), pool["description"]) == ("psync_loader_pool", 5, "three at a time")
    (conn,) = json.loads(_cli("connections", "get", "psync_loader_test", "-o", "json"))
    assert (conn["conn_type"], conn["host"], str(conn["port"]), conn["login"], conn["schema"]) == \
        ("postgres", "db.example", "5432", "reader", "hr")
    extra = conn.get("extra_dejson") or conn["extra"]
    assert (json.loads(extra) if isinstance(extra, str) else extra) == {"sslmode": "require"}
    assert _cli("variables", "get", "psync_loader_var").strip() == "forty-three"
