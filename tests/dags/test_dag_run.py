"""End to end through Airflow: dag.test() runs the full synchronization twice, then after a change."""

from __future__ import annotations

import pytest

from tests.helpers.config import inspect_context, run_document
from tests.helpers.directory import FakeDirectory, team

pytestmark = pytest.mark.timeout(600)


def _history(tmp, dag_run):
    return run_document(tmp / "profile_sync.yaml", dag_run)


def _step(doc, name):
    return next(s for s in doc["steps"] if s["step"] == name)


def _run(kind: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags[f"profile_sync_{kind}"]
    return dag.test(run_conf=conf or None)


def _profiles(tmp):
    import sqlite3

    with sqlite3.connect(tmp / "profiles.db") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'user_profiles'").fetchone():
            return {}
        return {r[0]: r[1:] for r in db.execute(
            "SELECT user_principal_name, title, manager, state FROM user_profiles")}


def test_full_twice_then_after_a_change(airflow_db, project_config):
    tmp = project_config
    d = team()
    d.write(tmp / "directory.ldif")

    first = _run("full")
    assert first.state == "success"
    doc = _history(tmp, first)
    assert doc["status"] == "success"
    assert _step(doc, "export_profile_store")["adds"] == 20
    assert _step(doc, "export_profile_store")["membership_adds"] == 20
    assert len(_profiles(tmp)) == 20

    second = _run("full")
    assert second.state == "success"
    export = _step(_history(tmp, second), "export_profile_store")
    assert (export["adds"], export["updates"], export["deletes"], export["unchanged"]) == (0, 0, 0, 20)
    assert export["membership_adds"] == export["membership_removes"] == 0

    d.person(3, "Person 3", upn="p3@contoso.com", manager="CN=Person 1,OU=Users,DC=contoso,DC=com",
             title="Promoted")
    d.remove("CN=Person 20,OU=Users,DC=contoso,DC=com")
    d.person(21, "Person 21", upn="p21@contoso.com", title="New")
    d.write(tmp / "directory.ldif")
    third = _run("full")
    assert third.state == "success"
    export = _step(_history(tmp, third), "export_profile_store")
    assert (export["adds"], export["updates"], export["deletes"]) == (1, 1, 1)
    people = _profiles(tmp)
    assert people["p3@contoso.com"][:2] == ("Promoted", "i:0#.f|membership|p1@contoso.com")
    assert people["p20@contoso.com"][2] == "marked_for_deletion"
    assert people["p21@contoso.com"][2] == "active"


def test_incremental_after_full_and_dry_run(airflow_db, project_config):
    tmp = project_config
    team(5).write(tmp / "directory.ldif")
    inc = _run("incremental")
    doc = _history(tmp, inc)
    assert inc.state == "success"
    assert doc["mode"] == "full" and "no delta state" in doc["full_reason"]
    again = _run("incremental")
    doc = _history(tmp, again)
    assert doc["mode"] == "incremental"
    assert _step(doc, "import_directory")["unchanged_source"] is True

    d = team(6)
    d.write(tmp / "directory.ldif")
    dry = _run("full", dry_run=True, mode="full")
    assert dry.state == "success"
    assert _step(_history(tmp, dry), "export_profile_store")["adds"] == 1
    assert len(_profiles(tmp)) == 5


def test_a_failed_gate_fails_the_run_and_writes_nothing(airflow_db, project_config):
    tmp = project_config
    team(5).write(tmp / "directory.ldif")
    assert _run("full").state == "success"
    before = _profiles(tmp)
    state_before = inspect_context(tmp / "profile_sync.yaml").store.committed_manifest()
    FakeDirectory().write(tmp / "directory.ldif")  # an empty import
    failed = _run("full")
    assert failed.state == "failed"
    doc = _history(tmp, failed)
    assert doc["status"] == "failed"
    gate = _step(doc, "validate_export")
    assert gate["status"] == "failed"
    assert gate["gate_report"]["checks"][0]["name"] == "source_not_empty"
    assert _profiles(tmp) == before
    assert inspect_context(tmp / "profile_sync.yaml").store.committed_manifest() == state_before
    assert inspect_context(tmp / "profile_sync.yaml").lease.record() is None


def test_a_run_waits_for_the_lease_and_never_interleaves(airflow_db, project_config):
    """A second run (a backfill beside a manual run, say) cannot start while the lease is held."""
    import yaml

    tmp = project_config
    config = tmp / "profile_sync.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["lease"] = {"poke_seconds": 1, "wait_seconds": 3}
    config.write_text(yaml.safe_dump(doc))
    team(3).write(tmp / "directory.ldif")
    lease = inspect_context(config).lease
    assert lease.try_acquire("profile_sync_incremental/another-run").acquired
    blocked = _run("full")
    assert blocked.state == "failed"
    assert lease.holder()["owner"] == "profile_sync_incremental/another-run"
    assert _profiles(tmp) == {}
    doc = _history(tmp, blocked)
    assert doc["status"] == "failed"
    assert "held by run 'profile_sync_incremental/another-run'" in doc["error"]
    assert lease.release("profile_sync_incremental/another-run")
    assert _run("full").state == "success"
    assert len(_profiles(tmp)) == 3


def test_full_with_a_business_system_in_postgresql(airflow_db, project_config, postgres_url, monkeypatch):
    """Twelve steps through Airflow: the HR table in PostgreSQL is reached through an Airflow Connection."""
    import sqlite3

    import yaml
    from sqlalchemy import create_engine, text

    tmp = project_config
    team(4).write(tmp / "directory.ldif")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA hr"))
        conn.execute(text("CREATE TABLE hr.employees (login text, employee_number text, hired date)"))
        conn.execute(text("INSERT INTO hr.employees VALUES ('CONTOSO\\p1', 'E1', '2020-01-31'), "
                          "('CONTOSO\\p2', 'E2', NULL), ('CONTOSO\\ghost', 'E9', '2021-05-01')"))
    engine.dispose()
    # Airflow spells the scheme postgres://; the password lives only in the Connection.
    monkeypatch.setenv("AIRFLOW_CONN_HR_DB", postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    config = tmp / "profile_sync.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["custom_properties"] = {"employee_id": {"max_length": 16}, "hire_date": {"type": "date"}}
    doc["business_systems"] = [{
        "name": "hr", "type": "sql", "conn_id": "hr_db", "table": "hr.employees",
        "join": {"profile_property": "user_principal_name", "source_column": "login",
                 "normalize": ["strip", "lower", "domain_user", "upn_local_part"]},
        "mappings": {"employee_id": "employee_number", "hire_date": "hired"},
    }]
    config.write_text(yaml.safe_dump(doc))

    run = _run("full")
    assert run.state == "success"
    doc = _history(tmp, run)
    assert [s["step"] for s in doc["steps"] if s["connection"] == "hr"] == [
        "import_bcs", "synchronize_bcs", "validate_bcs", "export_bcs", "confirm_bcs"]
    sync = _step(doc, "synchronize_bcs")
    assert (sync["updates"], sync["unmatched_rows"], sync["unmatched_samples"]) == (2, 1, [{"row": 2, "key": "CONTOSO\\ghost"}])
    assert _step(doc, "confirm_bcs")["confirmed"] == 2
    with sqlite3.connect(tmp / "profiles.db") as db:
        rows = dict(db.execute("SELECT user_principal_name, employee_id || '/' || coalesce(hire_date, '-') "
                               "FROM user_profiles WHERE employee_id IS NOT NULL"))
        changes = [r[0] for r in db.execute("SELECT column_name FROM profile_schema_changes ORDER BY change_id")]
    assert rows == {"p1@contoso.com": "E1/2020-01-31", "p2@contoso.com": "E2/-"}
    assert changes == ["employee_id", "hire_date"]
