"""DAG integrity: the DAGs import, have the steps of DESIGN §2, and follow the project's policies.

Two shapes: eight steps (no business system configured, the shipped default) and
twelve (steps 9–12 in the mapped group ``business_system`` between
``confirm_directory`` and ``finish_run``).
"""

from __future__ import annotations

import pytest
import yaml

FULL_STEPS = [
    "start_run", "import_directory", "import_profile_store", "synchronize", "validate_export", "approve_export",
    "export_profile_store", "confirm_profile_store", "synchronize_writeback", "export_directory",
    "confirm_directory", "finish_run", "release_run",
]


BCS_STEPS = ["business_system.import_bcs", "business_system.synchronize_bcs", "business_system.validate_bcs",
             "business_system.export_bcs", "business_system.confirm_bcs"]
TWELVE_STEPS = [*FULL_STEPS[:-2], *BCS_STEPS, *FULL_STEPS[-2:]]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def bcs_dagbag(bcs_config):
    """The DAGs built from a configuration with two business systems."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROFILE_SYNC_CONFIG", str(bcs_config))
        return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def bcs_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bcs-dags")
    config = tmp / "profile_sync.yaml"
    config.write_text(yaml.safe_dump({
        "directories": [{"name": "contoso", "type": "ldif", "path": str(tmp / "d.ldif"),
                         "containers": ["DC=contoso,DC=com"]}],
        "custom_properties": {"employee_id": {}, "cost_centre": {}},
        "business_systems": [
            {"name": "hr", "type": "sql", "conn_id": "hr_db", "table": "hr.employees",
             "join": {"profile_property": "user_name", "source_column": "login"}, "mappings": {"employee_id": "id"}},
            {"name": "erp", "type": "file", "path": str(tmp / "erp.csv"),
             "join": {"profile_property": "user_name", "source_column": "login"}, "mappings": {"cost_centre": "cc"}},
        ],
    }))
    return config


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
    assert "business_system" not in dag.task_group_dict


@pytest.mark.parametrize("dag_id", ["profile_sync_full", "profile_sync_incremental"])
def test_twelve_steps_when_a_business_system_is_configured(bcs_dagbag, dag_id):
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    assert bcs_dagbag.import_errors == {}
    dag = bcs_dagbag.dags[dag_id]
    assert sorted(dag.task_ids) == sorted(TWELVE_STEPS)
    assert [t.task_id for t in dag.topological_sort()] == TWELVE_STEPS
    # One chain per business system: the group is mapped over the connections, in configuration order.
    group = dag.task_group_dict["business_system"]
    assert isinstance(group, MappedTaskGroup)
    assert group._expand_input.value == {"connection": ["hr", "erp"]}
    assert dag.get_task("business_system.import_bcs").upstream_task_ids == {"confirm_directory"}
    assert dag.get_task("finish_run").upstream_task_ids == {"business_system.confirm_bcs"}
    for upstream, downstream in zip(BCS_STEPS, BCS_STEPS[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("business_system.validate_bcs").retries == 0
    assert dag.get_task("business_system.import_bcs").retries >= 1
    for tid in BCS_STEPS:
        assert dag.get_task(tid).pool == "profile_sync", tid
    assert dag.get_task("release_run").is_teardown


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
    # The approval (human-in-the-loop) sits between the gate and the export; the export follows either.
    approve = dag.get_task("approve_export")
    assert type(approve).__name__ == "ExportApprovalOperator" and approve.retries == 0
    assert approve.upstream_task_ids == {"validate_export"}
    export = dag.get_task("export_profile_store")
    assert export.upstream_task_ids == {"validate_export", "approve_export"}
    assert export.trigger_rule == "none_failed_min_one_success"
    assert list(approve.serialized_params) == ["comment"]
    assert [o.name for o in dag.get_task("finish_run").outlets] == ["profile_sync_profile_store"]


@pytest.mark.parametrize("dag_id", ["profile_sync_full", "profile_sync_incremental"])
def test_trigger_form_defaults_validate(dagbag, dag_id):
    """The form's defaults validate, and ``override_reason`` may be left empty: the Airflow 3
    trigger form treats an empty text field as missing, so ``Param("", type="string")`` kept
    its Trigger button disabled. The browser check is tests/ui/test_trigger_form.py."""
    params = dagbag.dags[dag_id].params
    params.validate()
    assert params["override_reason"] is None
    assert params.get_param("override_reason").schema["type"] == ["null", "string"]


def test_directory_steps_are_mapped(dagbag):
    dag = dagbag.dags["profile_sync_full"]
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    for tid in ("import_directory", "export_directory", "confirm_directory"):
        assert isinstance(dag.get_task(tid), MappedOperator), tid


@pytest.mark.parametrize("shape", ["eight steps", "twelve steps"])
def test_dag_module_does_not_import_pandas_at_parse_time(shape, bcs_config):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ)
    if shape == "twelve steps":
        env["PROFILE_SYNC_CONFIG"] = str(bcs_config)
    code = ("import sys, runpy; g = runpy.run_path(%r); "
            "assert len(g['profile_sync_full'].task_ids) == %d; "
            "print('pandas' in sys.modules, 'ldap3' in sys.modules, 'great_expectations' in sys.modules)"
            % (str(ROOT / "dags" / "profile_sync.py"), 18 if shape == "twelve steps" else 13))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "False False False"
