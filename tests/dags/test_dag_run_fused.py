"""``tasks: fused``: the same run in five Airflow tasks — the same steps in the run history, the same profile
store as the per-step layout; a failed gate stops the export task; a transient error retries the fused task."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers.config import run_document
from tests.helpers.directory import USERS, FakeDirectory, team

pytestmark = pytest.mark.timeout(900)


def _dag(kind: str):  # noqa: ANN202
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags")).dags[f"profile_sync_{kind}"]


def _task_states(dag_run) -> dict:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        return {ti.task_id: ti.state for ti in tis}


def _profiles(tmp) -> dict:
    import sqlite3

    with sqlite3.connect(tmp / "profiles.db") as db:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT user_principal_name, title, manager, state FROM user_profiles")}


def _fused(config, **extra) -> None:
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, "tasks": {"full": "fused", "incremental": "fused"}, **extra}))


def test_the_fused_layout_has_five_tasks_and_the_per_step_layout_every_step(airflow_db, project_config):
    team(5).write(project_config / "directory.ldif")
    per_step = set(_dag("incremental").task_ids)
    assert {"import_directory", "synchronize", "validate_export", "export_profile_store", "finish_run"} <= per_step
    _fused(project_config / "profile_sync.yaml")
    for kind in ("full", "incremental"):
        dag = _dag(kind)
        assert set(dag.task_ids) == {"start_run", "import_and_synchronize", "approve_export", "export_and_confirm",
                                     "release_run"}
        assert dag.get_task("export_and_confirm").trigger_rule == "none_failed_min_one_success"
        assert dag.get_task("approve_export").gate_task_id == "import_and_synchronize"
        assert [a.name for a in dag.get_task("export_and_confirm").outlets] == ["profile_sync_profile_store"]


def test_a_fused_run_lands_where_the_per_step_run_lands(airflow_db, project_config, tmp_path_factory):
    from tests.helpers.config import write_ldif_config

    tmp = project_config
    d = team(20)
    d.write(tmp / "directory.ldif")
    _fused(tmp / "profile_sync.yaml")
    full = _dag("full").test()
    assert full.state == "success"
    states = _task_states(full)
    assert states["import_and_synchronize"] == states["export_and_confirm"] == "success"
    assert states["approve_export"] == "skipped"
    doc = run_document(tmp / "profile_sync.yaml", full)
    assert doc["status"] == "success"
    steps = [s["step"] for s in doc["steps"]]
    order = ["import_directory", "synchronize", "validate_export", "export_profile_store", "confirm_profile_store",
             "synchronize_writeback", "export_directory", "confirm_directory", "finish_run"]
    assert [s for s in steps if s in order] == order, steps  # every step, once, in DAG order

    d.person(3, "Person 3", upn="p3@contoso.com", manager=f"CN=Person 1,{USERS}", title="Promoted")
    d.write(tmp / "directory.ldif")
    inc = _dag("incremental").test()
    assert inc.state == "success"
    export = next(s for s in run_document(tmp / "profile_sync.yaml", inc)["steps"]
                  if s["step"] == "export_profile_store")
    assert (export["adds"], export["updates"], export["deletes"]) == (0, 1, 0)

    # The same directory through the per-step layout, in a project of its own.
    other = tmp_path_factory.mktemp("per_step")
    d.write(other / "directory.ldif")
    import os

    os.environ["PROFILE_SYNC_CONFIG"] = str(write_ldif_config(other))
    try:
        assert _dag("full").test().state == "success"
    finally:
        os.environ["PROFILE_SYNC_CONFIG"] = str(tmp / "profile_sync.yaml")
    assert _profiles(tmp) == _profiles(other) and len(_profiles(tmp)) == 20


def test_a_failed_gate_in_the_fused_layout_writes_nothing(airflow_db, project_config):
    tmp = project_config
    _fused(tmp / "profile_sync.yaml", approval={"enabled": False})
    d = FakeDirectory()
    for i in range(1, 41):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    d.write(tmp / "directory.ldif")
    assert _dag("full").test().state == "success"
    before = _profiles(tmp)
    for i in range(11, 23):  # 12 of 40 leave: 30 % > the 5 % delete limit
        d.remove(f"CN=Person {i},{USERS}")
    d.write(tmp / "directory.ldif")
    failed = _dag("full").test()
    assert failed.state == "failed"
    states = _task_states(failed)
    assert states["import_and_synchronize"] == "failed"
    assert states["export_and_confirm"] == "upstream_failed"
    assert states["release_run"] == "success"
    doc = run_document(tmp / "profile_sync.yaml", failed)
    gate = next(s for s in doc["steps"] if s["step"] == "validate_export")
    assert gate["status"] == "failed" and "people_deletes" in gate["error"]
    assert _profiles(tmp) == before


def test_start_run_pokes_again_after_a_transient_error(airflow_db, project_config, monkeypatch):
    """The database busy or restarting when a run starts: the sensor logs it and pokes again (it used to fail
    the run: start_run has no retries)."""
    from profile_sync.profile_store.errors import ProfileStoreUnavailableError
    from profile_sync.run import steps

    team(5).write(project_config / "directory.ldif")
    real, calls = steps.start_run, []

    def busy_once(ctx):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 1:
            raise ProfileStoreUnavailableError("profile store sqlite:///x unavailable: database is locked")
        return real(ctx)

    monkeypatch.setattr(steps, "start_run", busy_once)
    run = _dag("full").test()
    assert run.state == "success"
    assert len(calls) == 2
    assert run_document(project_config / "profile_sync.yaml", run)["status"] == "success"
