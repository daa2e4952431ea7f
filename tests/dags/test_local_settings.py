"""plugins/airflow_local_settings.py: Airflow imports it; the processes that fork tasks (scheduler, Celery
worker) preload the engine's third-party libraries, the others nothing; never the project's own modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = ("import sys, json; sys.argv = {argv!r}; import airflow_local_settings as s; "
         "print(json.dumps({{'pandas': 'pandas' in sys.modules, 'pyarrow': 'pyarrow.parquet' in sys.modules, "
         "'gx': 'great_expectations' in sys.modules, "
         "'ours': sorted(m for m in sys.modules if m.startswith(('profile_sync', 'profile_sync_airflow'))), "
         "'policies': s.__all__}}))")


def _probe(argv: list[str], probe: str = PROBE, **env: str) -> dict:
    """Run ``probe`` as a process started as ``argv``, with the plugins folder on its path; its JSON line."""
    out = subprocess.run([sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True,
                         timeout=180, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "plugins"), **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["airflow", "scheduler"], ["airflow", "celery", "worker", "-q", "default"],
                                  ["/venv/bin/airflow", "scheduler", "--num-runs", "1"]])
def test_processes_that_fork_tasks_preload_the_libraries_but_not_the_project(argv):
    got = _probe(argv)
    assert got["pandas"] and got["pyarrow"]
    assert got["gx"]  # the gate's engine: validate_export no longer imports it in each run
    assert got["ours"] == [] and got["policies"] == []


@pytest.mark.parametrize("argv", [["airflow", "api-server"], ["airflow", "dag-processor"], ["airflow", "db", "migrate"],
                                  ["python", "-m", "pytest"]])
def test_other_processes_preload_nothing(argv):
    got = _probe(argv)
    assert not got["pandas"] and not got["pyarrow"] and not got["gx"]


def test_preloading_can_be_turned_off():
    got = _probe(["airflow", "scheduler"], PROFILE_SYNC_PRELOAD="0")
    assert not got["pandas"] and not got["gx"]


def test_airflow_imports_the_projects_local_settings():
    code = "import airflow, sys; m = sys.modules.get('airflow_local_settings'); print(m.__file__ if m else None)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env=env, cwd="/")
    assert out.stdout.strip().splitlines()[-1] == str(ROOT / "plugins" / "airflow_local_settings.py")


FORK_PROBE = ("import sys, os, json; sys.argv = {argv!r}; import airflow_local_settings; "
              "loaded = 'airflow.providers.standard.operators.hitl' in sys.modules; r, w = os.pipe(); pid = os.fork()\n"
              "if pid == 0:\n"
              "    from airflow.sdk import Asset\n"
              "    before = set(sys.modules); Asset(name='probe', uri='profile-sync://probe/x')\n"
              "    out = {{'hitl': 'airflow.providers.standard.operators.hitl' in sys.modules,\n"
              "           'asset_imports': sorted(set(sys.modules) - before)}}\n"
              "    os.write(w, json.dumps(out).encode()); os._exit(0)\n"
              "os.close(w); child = json.loads(os.read(r, 1 << 20)); os.waitpid(pid, 0)\n"
              "print(json.dumps({{'before_fork': loaded, **child}}))")


def test_a_task_starter_warms_airflows_side_of_a_task_before_it_forks():
    """Before its first fork the scheduler loads the task runner's operators and the providers' asset URI
    handlers, so a forked task builds the DAG file's Asset without importing anything (it imported every
    provider's asset module — Amazon's S3 hook, boto3 — in each task)."""
    got = _probe(["airflow", "scheduler"], FORK_PROBE)
    assert got["before_fork"] is False  # nothing of Airflow's at import time: Airflow is still starting then
    assert got["hitl"] is True
    assert got["asset_imports"] == []


def test_without_preloading_a_forked_task_loads_the_asset_handlers_itself():
    got = _probe(["airflow", "scheduler"], FORK_PROBE, PROFILE_SYNC_PRELOAD="0")
    assert got["hitl"] is False
    assert got["asset_imports"] != []  # the probe sees the cost the preloading takes away
