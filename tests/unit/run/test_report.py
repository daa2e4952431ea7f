"""The run report (``python -m profile_sync.run.report``) and Connections from AIRFLOW_CONN_* without Airflow."""

from __future__ import annotations

import json

import pytest

from profile_sync.errors import TerminalError
from profile_sync.run import report
from profile_sync.run.connections import environment_connection
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness


def test_a_uri_connection_from_the_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PROFILE_STORE_DB",
                       "postgresql+psycopg2://sync%40corp:p%2Fss@db.example:5433/profiles?sslmode=require")
    info = environment_connection("profile_store_db")
    assert info.uri == "postgresql+psycopg2://sync%40corp:p%2Fss@db.example:5433/profiles?sslmode=require"
    assert (info.host, info.port, info.login, info.password, info.schema) == (
        "db.example", 5433, "sync@corp", "p/ss", "profiles")
    assert info.extra == {"sslmode": "require"}
    assert "p/ss" not in repr(info)


def test_a_json_connection_from_the_environment_gets_a_uri(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HR", json.dumps({
        "conn_type": "postgresql", "host": "hr.example", "port": 5432, "login": "reader", "password": "s3cr@t",
        "schema": "hr", "extra": {"connect_timeout": 5}}))
    info = environment_connection("hr")
    assert info.uri == "postgresql://reader:s3cr%40t@hr.example:5432/hr"
    assert info.password == "s3cr@t" and info.extra == {"connect_timeout": 5}


def test_a_missing_or_bad_connection_names_the_variable(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    with pytest.raises(TerminalError, match="AIRFLOW_CONN_NOWHERE is not set"):
        environment_connection("nowhere")
    monkeypatch.setenv("AIRFLOW_CONN_NOWHERE", "{not json")
    with pytest.raises(TerminalError, match="AIRFLOW_CONN_NOWHERE is not valid JSON"):
        environment_connection("nowhere")


def test_the_report_reads_a_profile_store_given_as_a_connection(tmp_path, monkeypatch, capsys):
    db = tmp_path / "store" / "profiles.db"
    db.parent.mkdir()
    h = SyncHarness(tmp_path, profile_store_url=f"sqlite:///{db}")
    assert "conn_id: profile_store_db" in h.config.read_text()
    h.sync(team(20))
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(h.config))

    monkeypatch.delenv("AIRFLOW_CONN_PROFILE_STORE_DB", raising=False)
    assert report.main(["--runs", "1"]) == 2
    assert "AIRFLOW_CONN_PROFILE_STORE_DB is not set" in capsys.readouterr().err

    monkeypatch.setenv("AIRFLOW_CONN_PROFILE_STORE_DB", f"sqlite:///{db}")
    assert report.main(["--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "status: success" in out
    people = next(line for line in out.splitlines() if "people (active)" in line)
    assert int(people.split()[-1]) == h.store.counts()["people"] > 0
