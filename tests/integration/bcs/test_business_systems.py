"""Business-system augmentation end to end (DESIGN §2 steps 9–12, §3), against a real PostgreSQL.

The HR table lives in PostgreSQL (``tests/servers``); the profile store is SQLite
and PostgreSQL in turn — the same tests for both backends. Every test runs full
synchronizations through the engine's steps (``run.local.run_sync``) and
asserts on the profile store, the run history and the HR table.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import text

from profile_sync.gates import GateFailedError
from profile_sync.run.local import run_sync
from tests.helpers.bcs import HrTable, statements_against
from tests.helpers.directory import FakeDirectory
from tests.helpers.sync import SyncHarness

NORMALIZE = ["strip", "lower", "domain_user", "upn_local_part"]
CUSTOM = {
    "employee_id": {"max_length": 8},
    "hire_date": {"type": "date"},
    "cost_centre": {"max_length": 6},
    "employee_no": {"type": "integer"},
    "remote_worker": {"type": "boolean"},
    "certifications": {"multi_valued": True, "max_length": 20},
}
MAPPINGS = {"employee_id": "employee_number", "hire_date": "hired", "cost_centre": {"column": "cost_center"}}


def hr_system(mappings: dict | None = None, **overrides) -> dict:
    doc = {"name": "hr", "type": "sql", "conn_id": "hr_db", "table": "hr.employees",
           "join": {"profile_property": "user_principal_name", "source_column": "login", "normalize": NORMALIZE},
           "mappings": mappings or MAPPINGS}
    doc.update(overrides)
    return doc


def directory(n: int) -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, n + 1):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    return d


def row(i: int | str, **values) -> dict:
    return {"login": f"CONTOSO\\p{i}" if isinstance(i, int) else i, **values}


@pytest.fixture
def hr(postgres_url):
    table = HrTable(postgres_url)
    yield table
    table.close()


@pytest.fixture
def harness(tmp_path, profile_store_url, hr):
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url, connections={"hr_db": hr.url})
    h.configure = lambda *systems, **extra: h.write_config(  # type: ignore[attr-defined]
        custom_properties=CUSTOM, business_systems=list(systems) or [hr_system()], **extra)
    h.configure()
    yield h
    h.close()


def history(h: SyncHarness) -> dict:
    return h.last_run()


def record(doc: dict, step: str) -> dict:
    return next(s for s in doc["steps"] if s["step"] == step)


def by_upn(h: SyncHarness, *columns: str) -> dict[str, tuple]:
    people = h.profiles()
    return {u: tuple(r) for u, r in zip(people["user_principal_name"], people[list(columns)].itertuples(index=False))}


def values_of(h: SyncHarness, prop: str) -> dict[str, list[str]]:
    with h.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.user_principal_name, v.value FROM profile_property_values v "
            "JOIN user_profiles p ON p.profile_id = v.profile_id WHERE v.property = :p "
            "ORDER BY p.user_principal_name, v.position"), {"p": prop}).all()
    out: dict[str, list[str]] = {}
    for upn, value in rows:
        out.setdefault(upn, []).append(value)
    return out


# -- augmentation only, one bulk read ------------------------------------------------------------
def test_augments_existing_people_and_never_creates_a_profile(harness, hr):
    hr.replace([row(1, employee_number="E1", hired="2020-01-31", cost_center="CC1"),
                row(2, employee_number="E2", hired=None, cost_center="CC2"),
                row("CONTOSO\\ghost", employee_number="E9"), row("FABRIKAM\\nobody", employee_number="E8")])
    out = harness.sync(directory(3))
    assert by_upn(harness, "employee_id", "hire_date", "cost_centre", "title") == {
        "p1@contoso.com": ("E1", dt.date(2020, 1, 31), "CC1", "Title 1"),
        "p2@contoso.com": ("E2", None, "CC2", "Title 2"),
        "p3@contoso.com": (None, None, None, "Title 3"),
    }
    sync = record(history(harness), "synchronize_bcs")
    assert (sync["updates"], sync["matched_people"], sync["unmatched_rows"]) == (2, 2, 2)
    assert sync["unmatched_samples"] == [{"row": 2, "key": "CONTOSO\\ghost"}, {"row": 3, "key": "FABRIKAM\\nobody"}]
    assert sync["errors"] == 0
    assert out["export_bcs[hr]"]["profiles_updated"] == 2
    assert out["confirm_bcs[hr]"]["confirmed"] == 2
    assert len(harness.profiles()) == 3


def test_one_bulk_read_never_a_query_per_person(harness, hr):
    hr.replace([row(i, employee_number=f"E{i}") for i in range(1, 41)])
    with statements_against("employees") as seen:
        harness.sync(directory(40))
    # One statement reads the rows; one more, returning none (LIMIT 0), learns the column names.
    reads = [s for s in seen if "LIMIT" not in s]
    assert len(reads) == 1 and len(seen) == 2, seen
    assert reads[0].lstrip().startswith("SELECT login,")
    assert len(harness.profiles().dropna(subset=["employee_id"])) == 40


def test_custom_columns_come_from_a_recorded_schema_change(harness, hr):
    hr.replace([row(1, employee_number="E1")])
    harness.sync(directory(1))
    with harness.engine.connect() as conn:
        changes = conn.execute(text("SELECT column_name, statement FROM profile_schema_changes "
                                    "ORDER BY change_id")).all()
    single = ["employee_id", "hire_date", "cost_centre", "employee_no", "remote_worker"]
    assert sorted(c for c, _ in changes) == sorted(single)  # multi-valued ones live in profile_property_values
    assert all(s.startswith("ALTER TABLE user_profiles ADD COLUMN") for _, s in changes)


def test_typed_properties_from_text_columns(harness, hr):
    harness.configure(hr_system({"employee_no": "employee_no", "remote_worker": "remote", "hire_date": "start_date"}))
    hr.replace([row(1, employee_no=42, remote="Yes", start_date=dt.date(2019, 12, 1)),
                row(2, employee_no=7, remote="false")])
    harness.sync(directory(2))
    assert by_upn(harness, "employee_no", "remote_worker", "hire_date") == {
        "p1@contoso.com": (42, True, dt.date(2019, 12, 1)), "p2@contoso.com": (7, False, None)}


# -- the directory and people keep what is theirs ---------------------------------------------------
def test_directory_runs_do_not_blank_business_properties_and_unmapped_ones_stay(harness, hr):
    hr.replace([row(1, employee_number="E1", cost_center="CC1")])
    d = directory(2)
    harness.sync(d)
    harness.execute("UPDATE user_profiles SET about_me = 'hi' WHERE user_principal_name = 'p1@contoso.com'")
    out = harness.sync(d)
    assert out["export_profile_store"]["updates"] == 0
    assert out["export_bcs[hr]"]["updates"] == 0
    assert by_upn(harness, "employee_id", "cost_centre", "about_me")["p1@contoso.com"] == ("E1", "CC1", "hi")


def test_business_system_wins_for_the_properties_it_owns(harness, hr):
    hr.replace([row(1, employee_number="E1")])
    harness.sync(directory(1))
    harness.execute("UPDATE user_profiles SET employee_id = 'HACKED'")
    harness.sync(directory(1))
    assert by_upn(harness, "employee_id")["p1@contoso.com"] == ("E1",)


def test_one_way_never_writes_back(harness, hr):
    hr.replace([row(1, employee_number="E1"), row(2, employee_number="E2")])
    before = hr.rows()
    harness.sync(directory(2))
    harness.execute("UPDATE user_profiles SET employee_id = 'CHANGED'")
    harness.sync(directory(2))
    assert hr.rows() == before


def test_frozen_and_marked_people_are_left_alone(tmp_path, profile_store_url, hr):
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url, connections={"hr_db": hr.url})
    try:
        h.write_config(custom_properties=CUSTOM, business_systems=[hr_system()],
                       deletion={"disabled_accounts": "freeze"})
        hr.replace([row(i, employee_number=f"E{i}") for i in (1, 2, 3)])
        d = directory(3)
        h.sync(d)
        d.person(2, "Person 2", upn="p2@contoso.com", title="Title 2", uac=514)  # disabled → frozen
        d.remove("CN=Person 3,OU=Users,DC=contoso,DC=com")  # deleted → marked
        hr.replace([row(i, employee_number=f"X{i}") for i in (1, 2, 3)])
        h.sync(d)
        assert by_upn(h, "employee_id", "state") == {
            "p1@contoso.com": ("X1", "active"), "p2@contoso.com": ("E2", "active"),
            "p3@contoso.com": ("E3", "marked_for_deletion")}
    finally:
        h.close()


# -- losing a row ------------------------------------------------------------------------------------
def test_a_person_who_loses_their_row_loses_those_properties(harness, hr):
    harness.configure(hr_system(gates={"max_clear_percent": None}))
    hr.replace([row(1, employee_number="E1", cost_center="CC1"), row(2, employee_number="E2")])
    d = directory(2)
    harness.sync(d)
    hr.replace([row(2, employee_number="E2")])
    out = harness.sync(d)
    assert by_upn(harness, "employee_id", "cost_centre", "title") == {
        "p1@contoso.com": (None, None, "Title 1"), "p2@contoso.com": ("E2", None, "Title 2")}
    assert (out["synchronize_bcs[hr]"]["cleared"], out["export_bcs[hr]"]["profiles_updated"]) == (1, 1)


def test_the_gate_stops_a_mass_clear_and_nothing_is_written(harness, hr):
    hr.replace([row(i, employee_number=f"E{i}") for i in range(1, 31)])
    d = directory(30)
    harness.sync(d)
    before = harness.profiles()
    hr.replace([row(i, employee_number=f"E{i}") for i in range(1, 11)])  # 20 of 30 rows gone
    with pytest.raises(GateFailedError, match="clear_limit"):
        harness.sync(d)
    doc = history(harness)
    gate = record(doc, "validate_bcs")
    assert doc["status"] == "failed" and gate["status"] == "failed"
    check = next(c for c in gate["gate_report"]["checks"] if c["name"] == "clear_limit")
    assert check["observed"] == {"cleared": 20, "people_with_values": 30, "percent": 66.67}
    assert harness.profiles()["employee_id"].equals(before["employee_id"])
    # An administrator lets this one run through; the history says who and why.
    ctx = harness.context()
    ctx.override_gates, ctx.override_reason, ctx.triggering_user = True, "HR archived 20 leavers", "admin"
    out = run_sync(ctx)
    assert out["validate_bcs[hr]"]["overridden_by"] == "admin"
    assert out["export_bcs[hr]"]["profiles_updated"] == 20
    assert history(harness)["overrides"] == [{
        "gate": "validate_bcs", "connection": "hr", "by": "admin", "reason": "HR archived 20 leavers",
        "at": history(harness)["overrides"][0]["at"],
        "checks": [{"name": "clear_limit", "connection": "hr", "message": check["message"]}]}]


def test_an_empty_read_never_blanks_everybody(harness, hr):
    harness.configure(hr_system(gates={"max_clear_percent": None}))
    hr.replace([row(1, employee_number="E1")])
    harness.sync(directory(1))
    hr.replace([])
    with pytest.raises(GateFailedError, match="source_not_empty"):
        harness.sync(directory(1))
    assert by_upn(harness, "employee_id")["p1@contoso.com"] == ("E1",)


# -- bad rows: per-row errors, the rest proceeds ----------------------------------------------------
def test_bad_rows_are_reported_and_the_rest_proceeds(harness, hr):
    harness.configure(hr_system({**MAPPINGS, "employee_no": "employee_no"}))
    hr.replace([
        row(1, employee_number="E1", cost_center="CC1"),
        row(2, employee_number="E2a"), row("contoso\\P2 ", employee_number="E2b"),  # same key after normalising
        row(None, employee_number="E0"),  # NULL key
        row(3, employee_number="TOO-LONG-ID", cost_center="CC3", hired="31/12/2020"),  # too long, not a date
        row(4, employee_number="E4", cost_center="CC4"),
    ])
    harness.sync(directory(4))
    assert by_upn(harness, "employee_id", "cost_centre", "hire_date") == {
        "p1@contoso.com": ("E1", "CC1", None),
        "p2@contoso.com": (None, None, None),  # held: two rows claim the key
        "p3@contoso.com": (None, "CC3", None),  # the fitting value went in, the bad ones did not
        "p4@contoso.com": ("E4", "CC4", None),
    }
    sync = record(history(harness), "synchronize_bcs")
    assert sync["errors_by_kind"] == {"null_key": 1, "duplicate_key": 2, "ambiguous_key": 0, "invalid_value": 2}
    assert sync["errors"] == 4  # rows with at least one error
    samples = {(s["row"], s["kind"], s["property"]): s for s in sync["error_samples"]}
    assert "duplicate join key 'p2' (2 rows)" in samples[(1, "duplicate_key", None)]["reason"]
    assert samples[(3, "null_key", None)]["reason"] == "no join value"
    assert samples[(4, "invalid_value", "employee_id")]["reason"] == \
        "employee_id: value too long (11 > 8 characters)"
    assert samples[(4, "invalid_value", "employee_id")]["value"] == "TOO-LONG-ID"
    assert samples[(4, "invalid_value", "hire_date")]["value"] == "31/12/2020"


def test_a_value_that_stops_fitting_leaves_the_stored_one(harness, hr):
    hr.replace([row(1, employee_number="E1")])
    harness.sync(directory(1))
    hr.replace([row(1, employee_number="WAY-TOO-LONG")])
    out = harness.sync(directory(1))
    assert by_upn(harness, "employee_id")["p1@contoso.com"] == ("E1",)
    assert out["synchronize_bcs[hr]"]["cleared"] == 0


def test_a_key_shared_by_two_people_is_ambiguous(harness, hr):
    # Two domains, one user name: CONTOSO\jo and FABRIKAM\jo normalise to the same key.
    d = FakeDirectory()
    d.person(1, "Jo C", upn="jo@contoso.com")
    d.person(2, "Jo F", upn="jo@fabrikam.com")
    d.person(3, "Al", upn="al@contoso.com")
    hr.replace([row("CONTOSO\\jo", employee_number="E1"), row("CONTOSO\\al", employee_number="E3")])
    out = harness.sync(d)
    assert by_upn(harness, "employee_id") == {"jo@contoso.com": (None,), "jo@fabrikam.com": (None,),
                                              "al@contoso.com": ("E3",)}
    sync = out["synchronize_bcs[hr]"]
    assert sync["errors_by_kind"]["ambiguous_key"] == 1
    assert sync["error_samples"][0]["reason"] == "join value 'jo' matches 2 people"


# -- 1:many -------------------------------------------------------------------------------------------
def test_one_to_many_rows_become_a_multi_valued_property(harness, hr):
    harness.configure(hr_system({"certifications": "certification", "employee_id": "employee_number"}))
    hr.replace([row(1, employee_number="E1", certification="CISSP"),
                row(1, employee_number="E1", certification="AWS-SA"),
                row(1, employee_number="E1", certification="CISSP"),  # the same value twice: kept once
                row(2, employee_number="E2", certification="PMP"),
                row(3, employee_number="E3a", certification="X"), row(3, employee_number="E3b", certification="Y")])
    d = directory(3)
    out = harness.sync(d)
    assert values_of(harness, "certifications") == {"p1@contoso.com": ["CISSP", "AWS-SA"],
                                                    "p2@contoso.com": ["PMP"]}
    assert by_upn(harness, "employee_id") == {"p1@contoso.com": ("E1",), "p2@contoso.com": ("E2",),
                                              "p3@contoso.com": (None,)}
    sync = out["synchronize_bcs[hr]"]
    assert sync["errors_by_kind"]["duplicate_key"] == 2  # p3's rows disagree on a single-valued property
    assert "with different values for employee_id" in sync["error_samples"][0]["reason"]

    hr.replace([row(1, employee_number="E1", certification="AWS-SA"), row(2, employee_number="E2")])
    harness.configure(hr_system({"certifications": "certification", "employee_id": "employee_number"},
                                gates={"max_clear_percent": None}))
    out = harness.sync(d)
    assert values_of(harness, "certifications") == {"p1@contoso.com": ["AWS-SA"]}
    assert out["export_bcs[hr]"]["values_removed"] == 3
    assert out["confirm_bcs[hr]"]["errors"] == 0
    again = harness.sync(d)
    assert again["synchronize_bcs[hr]"]["updates"] == 0


# -- runs ------------------------------------------------------------------------------------------------
def test_incremental_runs_read_the_business_system_in_full(harness, hr):
    hr.replace([row(1, employee_number="E1"), row(2, employee_number="E2")])
    d = directory(2)
    harness.sync(d)
    hr.replace([row(1, employee_number="N1"), row(2, employee_number="E2")])
    out = harness.sync(d, mode="incremental")
    doc = history(harness)
    assert doc["mode"] == "incremental"
    assert record(doc, "import_directory")["unchanged_source"] is True
    assert (out["import_bcs[hr]"]["rows"], out["import_bcs[hr]"]["updates"]) == (2, 1)
    assert by_upn(harness, "employee_id")["p1@contoso.com"] == ("N1",)


def test_dry_run_writes_nothing(harness, hr):
    hr.replace([row(1, employee_number="E1")])
    d = directory(1)
    harness.sync(d)
    hr.replace([row(1, employee_number="E2")])
    out = harness.sync(d, dry_run=True)
    assert out["export_bcs[hr]"] ["written"] is False and out["export_bcs[hr]"]["updates"] == 1
    assert by_upn(harness, "employee_id")["p1@contoso.com"] == ("E1",)


def test_a_query_as_the_source(harness, hr):
    harness.configure(hr_system(table=None, query="SELECT login AS \"Login\", upper(employee_number) AS emp "
                                                  "FROM hr.employees WHERE employee_number <> 'skip'",
                                mappings={"employee_id": "emp"}, join={
                                    "profile_property": "user_principal_name", "source_column": "login",
                                    "normalize": NORMALIZE}))
    hr.replace([row(1, employee_number="e1"), row(2, employee_number="skip")])
    harness.sync(directory(2))
    assert by_upn(harness, "employee_id") == {"p1@contoso.com": ("E1",), "p2@contoso.com": (None,)}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_as_the_source(tmp_path, profile_store_url, fmt):
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url)
    try:
        frame = pd.DataFrame({"SamAccount": ["CONTOSO\\p1", "contoso\\P2", None], "EmpNo": ["00042", "7", "9"]})
        path = tmp_path / f"hr.{fmt}"
        frame.to_csv(path, sep=";", index=False) if fmt == "csv" else frame.to_parquet(path)
        h.write_config(custom_properties={"employee_no": {"type": "integer"}}, business_systems=[{
            "name": "hr", "type": "file", "path": path.name, "delimiter": ";",
            "join": {"profile_property": "user_principal_name", "source_column": "samaccount",
                     "normalize": NORMALIZE},
            "mappings": {"employee_no": "empno"}}])
        out = h.sync(directory(2))
        assert by_upn(h, "employee_no") == {"p1@contoso.com": (42,), "p2@contoso.com": (7,)}
        assert out["synchronize_bcs[hr]"]["errors_by_kind"]["null_key"] == 1
    finally:
        h.close()


def test_two_business_systems_each_own_their_properties(harness, hr, tmp_path):
    (tmp_path / "erp.csv").write_text("upn,cc\np1@contoso.com,ERP1\np2@contoso.com,ERP2\n")
    erp = {"name": "erp", "type": "file", "path": "erp.csv",
           "join": {"profile_property": "user_principal_name", "source_column": "upn"},
           "mappings": {"cost_centre": "cc"}}
    harness.configure(hr_system({"employee_id": "employee_number"}), erp)
    hr.replace([row(1, employee_number="E1"), row(2, employee_number="E2")])
    out = harness.sync(directory(2))
    assert by_upn(harness, "employee_id", "cost_centre") == {"p1@contoso.com": ("E1", "ERP1"),
                                                             "p2@contoso.com": ("E2", "ERP2")}
    assert [k for k in out if k.endswith("[erp]")] == [
        "import_bcs[erp]", "synchronize_bcs[erp]", "validate_bcs[erp]", "export_bcs[erp]", "confirm_bcs[erp]"]


# -- a source that is not as configured fails the step, naming the problem ----------------------------
@pytest.mark.parametrize(("change", "problem"), [
    ({"table": "hr.nobody"}, "table or view 'hr.nobody' cannot be read: relation \"hr.nobody\" does not exist"),
    ({"mappings": {"employee_id": "emp_no"}}, "column(s) ['emp_no'] not found; the source has: login, "),
])
def test_a_misconfigured_source_fails_before_anything_is_written(harness, hr, change, problem):
    from profile_sync.bcs.errors import BcsError

    harness.configure(hr_system(**change))
    hr.replace([row(1, employee_number="E1")])
    with pytest.raises(BcsError) as err:
        harness.sync(directory(1))
    assert problem in str(err.value)
    assert err.value.terminal
    assert record(history(harness), "import_bcs")["status"] == "failed"
    assert by_upn(harness, "employee_id") == {"p1@contoso.com": (None,)}  # steps 1–8 ran, nothing of hr


def test_an_unreachable_database_is_a_transient_error(harness, hr):
    from profile_sync.bcs.errors import BcsUnavailableError

    harness.connections["hr_db"] = "postgresql+psycopg2://nobody:x@127.0.0.1:1/hr"
    with pytest.raises(BcsUnavailableError) as err:
        harness.sync(directory(1))
    assert not err.value.terminal


def test_a_refused_login_is_terminal_says_what_to_fix_and_hides_the_password(harness, hr, postgres_server):
    from profile_sync.bcs.errors import BcsError

    harness.connections["hr_db"] = hr.url.replace(f":{postgres_server.password}@", ":Not-This-One@")
    with pytest.raises(BcsError) as err:
        harness.sync(directory(1))
    text = str(err.value)
    assert err.value.terminal  # no retries: the same password will be refused again
    assert "the database refused the login" in text and "password authentication failed" in text
    assert "the Airflow Connection of business system 'hr'" in text and "Not-This-One" not in text


def test_airflows_postgres_spelling_reads_the_business_system(harness, hr):
    """A Connection made in the Airflow UI (type Postgres) comes back from get_uri() as postgres://."""
    harness.connections["hr_db"] = hr.url.replace("postgresql+psycopg2://", "postgres://")
    hr.replace([row(1, employee_number="E1")])
    harness.sync(directory(1))
    assert by_upn(harness, "employee_id") == {"p1@contoso.com": ("E1",)}


def test_a_view_in_another_database_by_url(tmp_path, profile_store_url):
    """Any database SQLAlchemy reaches by URL (here a SQLite file, relative to the project root; a view)."""
    import sqlite3

    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute("CREATE TABLE staff (Login TEXT, Grade INTEGER, Active TEXT)")
        db.executemany("INSERT INTO staff VALUES (?, ?, ?)", [("p1@CONTOSO.com", 3, "Y"), ("p2@contoso.com", 5, "N")])
        db.execute("CREATE VIEW current_staff AS SELECT Login, Grade FROM staff WHERE Active = 'Y'")
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url)
    try:
        h.write_config(custom_properties={"employee_no": {"type": "integer"}}, business_systems=[{
            "name": "erp", "type": "sql", "url": "sqlite:///erp.db", "table": "current_staff",
            "join": {"profile_property": "user_principal_name", "source_column": "login"},
            "mappings": {"employee_no": "grade"}}])
        h.sync(directory(2))
        assert by_upn(h, "employee_no") == {"p1@contoso.com": (3,), "p2@contoso.com": (None,)}
    finally:
        h.close()
