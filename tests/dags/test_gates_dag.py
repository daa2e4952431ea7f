"""The safety gate through Airflow: a failed gate fails the task once, for good; the override param lets a run through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.helpers.directory import USERS, FakeDirectory

pytestmark = pytest.mark.timeout(600)


def _forty() -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, 41):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    return d


def _run(**conf):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["profile_sync_full"]
    return dag.test(run_conf=conf or None)


def _history(tmp, dag_run):
    from tests.helpers.config import run_document

    return run_document(tmp / "profile_sync.yaml", dag_run)


def _task_instances(dag_run) -> dict:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        return {ti.task_id: (ti.state, ti.try_number, ti.max_tries) for ti in tis}


def _profiles(tmp) -> dict:
    import sqlite3

    with sqlite3.connect(tmp / "profiles.db") as db:
        return {r[0]: r[1:] for r in db.execute("SELECT user_principal_name, title, state FROM user_profiles")}


def test_a_failed_gate_fails_once_without_retry_and_an_override_lets_the_run_through(airflow_db, project_config):
    """With ``approval.enabled: false`` (a tripped gate would otherwise wait for an administrator:
    tests/ui/test_page.py, tests/unit/status/test_approval.py)."""
    import yaml

    tmp = project_config
    config = tmp / "profile_sync.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "approval": {"enabled": False}}))
    d = _forty()
    d.write(tmp / "directory.ldif")
    assert _run().state == "success"
    before = _profiles(tmp)

    for i in range(11, 23):  # 12 of 40 leave: 30 % > 5 %
        d.remove(f"CN=Person {i},{USERS}")
    d.write(tmp / "directory.ldif")
    failed = _run()
    assert failed.state == "failed"
    tis = _task_instances(failed)
    state, tries, max_tries = tis["validate_export"]
    assert (state, tries, max_tries) == ("failed", 1, 0)
    assert tis["export_profile_store"][0] == "upstream_failed"
    assert tis["release_run"][0] == "success"
    doc = _history(tmp, failed)
    gate = next(s for s in doc["steps"] if s["step"] == "validate_export")
    failed_checks = {c["name"] for c in gate["gate_report"]["checks"] if not c["passed"]}
    assert failed_checks == {"people_deletes", "source_shrink"}
    assert "override_gates=true" in gate["error"]
    assert _profiles(tmp) == before

    overridden = _run(override_gates=True, override_reason="contractors offboarded (CHG-1234)")
    assert overridden.state == "success"
    doc = _history(tmp, overridden)
    assert doc["override_requested"]["requested_by"] == "dag_test"  # dag.test's triggering user
    (entry,) = doc["overrides"]
    assert entry["by"] == "dag_test" and entry["reason"] == "contractors offboarded (CHG-1234)"
    assert {c["name"] for c in entry["checks"]} == {"people_deletes", "source_shrink"}
    people = _profiles(tmp)
    assert sum(1 for p in people.values() if p[1] == "marked_for_deletion") == 12


def test_an_override_without_a_reason_fails_at_start(airflow_db, project_config):
    tmp = project_config
    _forty().write(tmp / "directory.ldif")
    run = _run(override_gates=True)
    assert run.state == "failed"
    tis = _task_instances(run)
    assert tis["start_run"][0] == "failed"
    assert not (tmp / "profiles.db").exists() or _profiles(tmp) == {}


def test_the_task_wrapper_passes_the_override_and_the_triggering_user():
    from profile_sync_airflow.tasks import run_context

    context = {"run_id": "manual__1", "dag": SimpleNamespace(dag_id="profile_sync_full"),
               "params": {"mode": "full", "override_gates": True, "override_reason": "  why  "},
               "dag_run": SimpleNamespace(run_type="manual", triggering_user_name="alice")}
    ctx = run_context(context)
    assert (ctx.override_gates, ctx.override_reason, ctx.triggering_user, ctx.requested_by) == (
        True, "why", "alice", "alice")
    scheduled = run_context({**context, "params": {}, "dag_run": SimpleNamespace(run_type="scheduled")})
    assert (scheduled.override_gates, scheduled.triggering_user, scheduled.requested_by) == (
        False, None, "scheduled")


def test_a_gate_failure_becomes_a_no_retry_airflow_failure():
    from airflow.sdk.exceptions import AirflowFailException

    from profile_sync.gates import CheckResult, GateFailedError, GateReport
    from profile_sync_airflow.tasks import call_step

    report = GateReport("validate_export", [CheckResult("people_deletes", False, 600, "≤ 500", overridable=True,
                                                        message="people_deletes [contoso]: 600 > 500")])

    def step(ctx):  # noqa: ANN001
        raise GateFailedError(report)

    context = {"run_id": "manual__2", "dag": SimpleNamespace(dag_id="profile_sync_full"), "params": {},
               "dag_run": SimpleNamespace(run_type="manual", triggering_user_name=None)}
    with pytest.raises(AirflowFailException, match="people_deletes"):
        call_step(step, context)
