"""DAG integrity: the DAGs import, have the steps of DESIGN §2, and follow the project's policies."""

from __future__ import annotations

import pytest

FULL_STEPS = [
    "start_run", "import_directory", "import_profile_store", "synchronize", "validate_export",
    "export_profile_store", "confirm_profile_store", "synchronize_writeback", "export_directory",
    "confirm_directory", "finish_run", "release_run",
]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_both_dags_exist(dagbag):
    assert {"profile_sync_full", "profile_sync_incremental"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", ["profile_sync_full", "profile_sync_incremental"])
def test_steps_and_order(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert sorted(dag.task_ids) == sorted(FULL_STEPS)
    order = [t.task_id for t in dag.topological_sort()]
    assert order == FULL_STEPS


@pytest.mark.parametrize("dag_id", ["profile_sync_full", "profile_sync_incremental"])
def test_policies(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.max_active_runs == 1
    assert "profile_sync" in dag.tags
    assert set(dag.params.keys()) >= {"mode", "dry_run"}
    release = dag.get_task("release_run")
    assert release.is_teardown
    assert dag.get_task("start_run").is_setup
    for task in dag.tasks:
        if task.task_id not in ("start_run", "release_run"):
            assert task.pool == "profile_sync", task.task_id
    assert dag.get_task("validate_export").retries == 0
    assert dag.get_task("import_directory").retries >= 1
    assert [o.name for o in dag.get_task("finish_run").outlets] == ["profile_sync_profile_store"]


def test_directory_steps_are_mapped(dagbag):
    dag = dagbag.dags["profile_sync_full"]
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    for tid in ("import_directory", "export_directory", "confirm_directory"):
        assert isinstance(dag.get_task(tid), MappedOperator), tid


def test_dag_module_does_not_import_pandas_at_parse_time():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, runpy; runpy.run_path(%r); "
            "print('pandas' in sys.modules, 'ldap3' in sys.modules, 'great_expectations' in sys.modules)"
            % str(ROOT / "dags" / "profile_sync.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False False"
