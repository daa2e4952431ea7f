"""Through the full and the incremental DAG (dag.test()) against a standards-following slapd (refint and
memberof on): groupOfUniqueNames with and without UIDs, people without ``mail`` (which feeds
``account_name``), and returners — created outside the containers then moved in; moved out, forgotten
by a full run, then moved back. After each incremental run, a full run finds nothing left to do."""

from __future__ import annotations

import ldap3
import pytest
import yaml

from tests.dags.test_dag_run_ldap import _configure, _db, _history, _run, _step
from tests.helpers.standards import DIRECTORY, ELSEWHERE, NAMELESS, OUTSIDER, PEOPLE, REPORT, seed

pytestmark = pytest.mark.timeout(1800)
NOTHING = {"adds": 0, "updates": 0, "deletes": 0, "group_adds": 0, "group_updates": 0, "group_deletes": 0,
           "membership_adds": 0, "membership_removes": 0}


def _members(tmp_path) -> dict[str, set[str]]:
    rows = _db(tmp_path, "SELECT g.name, coalesce(p.user_name, m.name) FROM group_memberships gm "
                         "JOIN user_groups g ON g.group_id = gm.group_id "
                         "LEFT JOIN user_profiles p ON p.profile_id = gm.member_id "
                         "LEFT JOIN user_groups m ON m.group_id = gm.member_id")
    out: dict[str, set[str]] = {}
    for group, member in rows:
        out.setdefault(group, set()).add(member)
    return out


def _manager(tmp_path, user: str) -> str | None:
    return _db(tmp_path, "SELECT manager FROM user_profiles WHERE user_name = ?", user)[0][0]


def _full_run_has_nothing_to_do(tmp_path) -> None:
    run = _run("full")
    assert run.state == "success"
    export = _step(_history(tmp_path, run), "export_profile_store")
    assert {k: export[k] for k in NOTHING} == NOTHING, export


def _move(conn: ldap3.Connection, dn: str, parent: str) -> str:
    rdn = dn.split(",", 1)[0]
    assert conn.modify_dn(dn, rdn, new_superior=parent), conn.result
    return f"{rdn},{parent}"


def test_unique_members_nameless_people_and_returners_through_both_dags(airflow_db, slapd_factory, tmp_path,
                                                                        monkeypatch):
    server = slapd_factory(tls=False, memberof=True)
    server.load_entries(seed())
    server.start()
    _configure(tmp_path, monkeypatch, "corp_openldap", {
        "host": "127.0.0.1", "port": server.port, "login": server.admin_dn, "password": server.admin_password,
    }, dict(DIRECTORY))
    config = tmp_path / "profile_sync.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["gates"] = {"min_reference_resolution_percent": None}  # the outsider and nameless people: unresolved on purpose
    config.write_text(yaml.safe_dump(doc))
    everyone = {f"p{i:04d}" for i in range(12)}

    # 1. Full: the three spellings of "everyone" agree; nobody without mail gets a profile.
    first = _run("full")
    assert first.state == "success"
    doc = _history(tmp_path, first)
    members = _members(tmp_path)
    assert members["everyone"] == members["everyone-unique"] == members["everyone-uid"] == everyone
    assert members["managers"] == members["managers-uid"] == {"p0000", "p0001"}
    assert _db(tmp_path, "SELECT count(*), count(account_name) FROM user_profiles") == [(12, 12)]
    gate = _step(doc, "validate_export")
    assert gate["quarantined"] == 2
    assert {s["dn"]: s["reason"] for s in gate["quarantine_samples"]} == {
        dn: "no value for `mail`, which feeds `account_name`" for dn in NAMELESS}
    assert _manager(tmp_path, "p0003") is None  # the outsider is out of scope

    # 2. Incremental: the outsider moves in, p0001 moves out, n1 gets a mail, p0005 loses theirs.
    conn = server.connect()
    _move(conn, OUTSIDER, PEOPLE)
    away = _move(conn, f"uid=p0001,{PEOPLE}", ELSEWHERE)
    assert conn.modify(NAMELESS[0], {"mail": [(ldap3.MODIFY_ADD, ["n1@example.org"])]}), conn.result
    assert conn.modify(f"uid=p0005,{PEOPLE}", {"mail": [(ldap3.MODIFY_DELETE, [])]}), conn.result
    second = _run("incremental")
    assert second.state == "success"
    doc = _history(tmp_path, second)
    imported = _step(doc, "import_directory")
    assert doc["mode"] == "incremental" and imported["delta_read"] and imported["delta_rereads"] >= 3
    members = _members(tmp_path)
    now = everyone - {"p0001"} | {"o1", "n1"}
    assert members["everyone"] == members["everyone-unique"] == now
    assert members["everyone-uid"] == now - {"o1"}  # slapd's refint leaves a uniqueMember with a UID as it was
    assert _manager(tmp_path, REPORT.split(",")[0][4:]) == "i:0#.f|membership|o1@example.org"
    assert _db(tmp_path, "SELECT state FROM user_profiles WHERE user_name = 'p0001'") == [("marked_for_deletion",)]
    assert _db(tmp_path, "SELECT account_name FROM user_profiles WHERE user_name = 'p0005'") == [
        ("i:0#.f|membership|p0005@example.org",)]  # held, kept as it was
    assert {s["dn"] for s in _step(doc, "validate_export")["quarantine_samples"]} == {
        NAMELESS[1], f"uid=p0005,{PEOPLE}"}

    # 3. The weekly full run lands where the incremental one did; p0001's outside DN is forgotten.
    _full_run_has_nothing_to_do(tmp_path)

    # 4. Incremental: p0001 comes back.
    _move(conn, away, PEOPLE)
    third = _run("incremental")
    assert third.state == "success"
    imported = _step(_history(tmp_path, third), "import_directory")
    assert imported["delta_read"] and imported["delta_rereads"] >= 8  # 5 groups, p0001's reports
    members = _members(tmp_path)
    assert "p0001" in members["everyone"] and "p0001" in members["everyone-unique"]
    assert members["managers"] == {"p0000", "p0001"}
    assert _db(tmp_path, "SELECT state FROM user_profiles WHERE user_name = 'p0001'") == [("active",)]
    assert {_manager(tmp_path, f"p{i:04d}") for i in range(6, 11)} == {"i:0#.f|membership|p0001@example.org"}
    _full_run_has_nothing_to_do(tmp_path)
