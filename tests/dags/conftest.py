"""DAG tests: a migrated Airflow metadata DB and a configuration of our own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.config import write_ldif_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db():
    """``airflow db migrate`` and the pools of airflow_settings.yaml, once per session."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300, env=os.environ)
    subprocess.run([sys.executable, "-m", "profile_sync_airflow.settings_loader", str(ROOT / "airflow_settings.yaml")],
                   check=True, capture_output=True, timeout=300, env=os.environ)
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def project_config(tmp_path, monkeypatch):
    """A configuration in ``tmp_path`` selected through PROFILE_SYNC_CONFIG."""
    config = write_ldif_config(tmp_path)
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(config))
    return tmp_path
