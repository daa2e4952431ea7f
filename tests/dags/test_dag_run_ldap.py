"""End to end through Airflow against real directories: dag.test() of the full synchronization with an
``ldap`` directory whose Airflow Connection comes from an ``AIRFLOW_CONN_<ID>`` environment variable."""

from __future__ import annotations

import json
import sqlite3

import ldap3
import pytest
import yaml

pytestmark = pytest.mark.timeout(900)


def _history(tmp, dag_run):
    from tests.helpers.config import run_document

    return run_document(tmp / "profile_sync.yaml", dag_run)


def _step(doc, name):
    return next(s for s in doc["steps"] if s["step"] == name)


def _run(kind: str = "full"):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[f"profile_sync_{kind}"]
    return dag.test()


def _configure(tmp_path, monkeypatch, conn_id: str, connection: dict, directory: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "ldap", **connection}))
    config = tmp_path / "profile_sync.yaml"
    config.write_text(yaml.safe_dump({
        "state_store": {"url": f"file://{tmp_path / 'state'}"},
        "profile_store": {"url": f"sqlite:///{tmp_path / 'profiles.db'}"},
        "directories": [{"type": "ldap", "conn_id": conn_id, **directory}],
        "lease": {"poke_seconds": 1, "wait_seconds": 30},
    }))
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(config))


def _db(tmp_path, sql, *params):
    with sqlite3.connect(tmp_path / "profiles.db") as db:
        rows = db.execute(sql, params).fetchall()
        db.commit()
    return rows


def test_full_sync_dag_against_slapd_with_starttls_and_base_dns_from_the_connection(
        airflow_db, slapd_fresh, tmp_path, monkeypatch):
    server = slapd_fresh
    _configure(tmp_path, monkeypatch, "corp_openldap", {
        "host": "127.0.0.1", "port": server.port, "login": server.admin_dn, "password": server.admin_password,
        "extra": {"tls": "start_tls", "ca_file": str(server.ca_file), "page_size": 20,
                  "base_dns": [f"ou=people,{server.base_dn}", f"ou=groups,{server.base_dn}"]},
    }, {"name": "openldap", "preset": "inetorgperson"})
    first = _run()
    assert first.state == "success"
    doc = _history(tmp_path, first)
    assert _step(doc, "import_directory")["in_scope_people"] == 50
    assert _step(doc, "export_profile_store")["adds"] == 50
    assert _step(doc, "export_profile_store")["membership_adds"] == 60  # everyone 50 + managers 10
    assert _db(tmp_path, "SELECT manager FROM user_profiles WHERE user_name = 'p0006'") == \
        [("i:0#.f|membership|p0001@example.org",)]

    conn = server.connect()
    assert conn.modify(f"uid=p0005,ou=people,{server.base_dn}", {"title": [(ldap3.MODIFY_REPLACE, ["Director"])]})
    assert conn.delete(f"uid=p0049,ou=people,{server.base_dn}")
    second = _run()
    assert second.state == "success"
    export = _step(_history(tmp_path, second), "export_profile_store")
    assert (export["adds"], export["updates"], export["deletes"]) == (0, 1, 1)
    assert _db(tmp_path, "SELECT title FROM user_profiles WHERE user_name = 'p0005'") == [("Director",)]
    assert _db(tmp_path, "SELECT state FROM user_profiles WHERE user_name = 'p0049'") == [("marked_for_deletion",)]


def test_full_sync_dag_against_samba_with_picture_write_back(airflow_db, samba_dc_fresh, tmp_path, monkeypatch):
    dc = samba_dc_fresh
    _configure(tmp_path, monkeypatch, "corp_ad", {
        "host": dc.ldaps_uri, "login": dc.admin_upn, "password": dc.admin_password,
        "extra": {"ca_file": str(dc.ca_file)},
    }, {"name": "contoso", "preset": "active_directory",
        "containers": ["OU=People,DC=contoso,DC=com", "OU=Groups,DC=contoso,DC=com"],
        "mappings": {"picture": {"source": "thumbnailPhoto", "direction": "both"}}})
    first = _run()
    assert first.state == "success"
    doc = _history(tmp_path, first)
    assert _step(doc, "export_profile_store")["adds"] == 49  # 50 users, u0003 disabled
    assert _db(tmp_path, "SELECT work_email, sip_address FROM user_profiles WHERE user_name = 'u0007@contoso.com'") \
        == [("u0007@contoso.com", "u0007@contoso.com")]
    assert _db(tmp_path, "SELECT count(*) FROM user_profiles WHERE user_name = 'u0003@contoso.com'") == [(0,)]

    picture = b"\xff\xd8\xff\xe0 profile picture " + bytes(range(256))
    _db(tmp_path, "UPDATE user_profiles SET picture = ? WHERE user_name = 'u0008@contoso.com'", picture)
    second = _run()
    assert second.state == "success"
    doc = _history(tmp_path, second)
    assert _step(doc, "synchronize")["held_for_writeback"] == 1
    assert _step(doc, "export_directory")["updates"] == 1 and _step(doc, "export_directory")["errors"] == 0
    assert _step(doc, "confirm_directory")["confirmed"] == 1
    conn = dc.connect()
    conn.search("CN=User 0008,OU=People,DC=contoso,DC=com", "(objectClass=*)", search_scope=ldap3.BASE,
                attributes=["thumbnailPhoto"])
    assert conn.response[0]["raw_attributes"]["thumbnailPhoto"] == [picture]

    third = _run()
    doc = _history(tmp_path, third)
    assert third.state == "success"
    assert _step(doc, "export_profile_store")["updates"] == 0
    assert _step(doc, "export_directory")["message"] == "nothing to write back"
    assert _db(tmp_path, "SELECT picture FROM user_profiles WHERE user_name = 'u0008@contoso.com'") == [(picture,)]


def test_two_directories_in_one_run_slapd_and_samba(airflow_db, slapd_fresh, samba_dc_fresh, tmp_path, monkeypatch):
    """Two forests: the DAG maps import/export/confirm over both connections; they meet in one metaverse.
    Three people of forest B carry the mail of a forest-A person: the join rule (mail → work_email)
    joins them to that person instead of projecting them, and ``precedence`` gives forest B the title."""
    slapd, dc = slapd_fresh, samba_dc_fresh
    pairs = {"p0021": "u0010", "p0022": "u0011", "p0023": "u0012"}
    with ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.port), slapd.admin_dn, slapd.admin_password,
                          auto_bind=True) as conn:
        for uid, sam in pairs.items():
            assert conn.modify(f"uid={uid},ou=people,{slapd.base_dn}", {
                "mail": [(ldap3.MODIFY_REPLACE, [f"{sam.upper()}@Contoso.com"])],
                "title": [(ldap3.MODIFY_REPLACE, [f"Forest B title of {sam}"])]}), conn.result
    monkeypatch.setenv("AIRFLOW_CONN_FOREST_B", json.dumps({
        "conn_type": "ldap", "host": "127.0.0.1", "port": slapd.port, "login": slapd.admin_dn,
        "password": slapd.admin_password,
        "extra": {"base_dns": [f"ou=people,{slapd.base_dn}", f"ou=groups,{slapd.base_dn}"]}}))
    _configure(tmp_path, monkeypatch, "forest_a", {
        "host": dc.uri, "login": dc.admin_upn, "password": dc.admin_password,
        "extra": {"start_tls": True, "ca_file": str(dc.ca_file)},
    }, {"name": "contoso", "preset": "active_directory",
        "containers": ["OU=People,DC=contoso,DC=com", "OU=Groups,DC=contoso,DC=com"]})
    config = tmp_path / "profile_sync.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["directories"].append({"name": "example", "type": "ldap", "conn_id": "forest_b", "preset": "inetorgperson",
                               "join": [{"source": "mail", "metaverse": "work_email"}]})
    doc["precedence"] = {"title": ["example", "contoso"]}
    config.write_text(yaml.safe_dump(doc))

    run = _run()
    assert run.state == "success"
    history = _history(tmp_path, run)
    imports = {s["connection"]: s for s in history["steps"] if s["step"] == "import_directory"}
    assert {k: v["in_scope_people"] for k, v in imports.items()} == {"contoso": 49, "example": 50}
    assert {s["connection"] for s in history["steps"] if s["step"] == "confirm_directory"} == {"contoso", "example"}
    assert _db(tmp_path, "SELECT source_connection, count(*) FROM user_profiles GROUP BY 1 ORDER BY 1") == \
        [("contoso", 49), ("example", 47)]
    joined = _db(tmp_path, "SELECT user_name, title FROM user_profiles WHERE title LIKE 'Forest B title%' "
                           "ORDER BY 1")
    assert joined == [(f"{sam}@contoso.com", f"Forest B title of {sam}") for sam in sorted(pairs.values())]
    assert _db(tmp_path, "SELECT count(*) FROM user_groups") == [(4,)]
