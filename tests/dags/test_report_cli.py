"""``python -m profile_sync_airflow.report`` finds a profile store given as an Airflow Connection that lives
in the metadata database (``airflow connections add``), where the SDK's lookup outside a task does not look."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


def test_the_report_resolves_the_profile_store_connection_from_the_metadata_db(airflow_db, postgres_url, tmp_path):
    h = SyncHarness(tmp_path, profile_store_url=postgres_url)
    h.sync(team(20))
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**os.environ, "PROFILE_SYNC_CONFIG": str(h.config)}
    env.pop("AIRFLOW_CONN_PROFILE_STORE_DB", None)
    subprocess.run([airflow, "connections", "add", "profile_store_db", "--conn-uri", postgres_url], check=True,
                   capture_output=True, timeout=300, env=env)
    try:
        done = subprocess.run([sys.executable, "-m", "profile_sync_airflow.report", "--runs", "1"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, env=env)
    finally:
        subprocess.run([airflow, "connections", "delete", "profile_store_db"], capture_output=True, timeout=300,
                       env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    people = next(line for line in done.stdout.splitlines() if "people (active)" in line)
    assert int(people.split()[-1]) == h.store.counts()["people"] > 0
    password = postgres_url.split(":")[2].split("@")[0]
    assert password and password not in done.stdout and password not in done.stderr
