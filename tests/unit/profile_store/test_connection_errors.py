"""The profile store's Connection, against a real PostgreSQL: Airflow's own form works; a refused login
is terminal and says what to fix; a server that does not answer is transient; no password is ever shown."""

from __future__ import annotations

import json
import socket

import pytest

from profile_sync.profile_store.errors import ProfileStoreError, ProfileStoreUnavailableError
from profile_sync.run.local import run_sync
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness


def test_a_postgres_connection_made_as_in_the_airflow_ui_is_the_profile_store(tmp_path, postgres_url,
                                                                                 postgres_server, monkeypatch):
    """Airflow's *Postgres* Connection type comes back from ``get_uri()`` as ``postgres://``."""
    from profile_sync_airflow.hooks import resolve_connection

    s = postgres_server
    monkeypatch.setenv("AIRFLOW_CONN_PROFILE_STORE_DB", json.dumps({
        "conn_type": "postgres", "host": s.host, "port": s.port, "login": s.user, "password": s.password,
        "schema": s.database}))
    assert resolve_connection("profile_store_db").uri.startswith("postgres://")
    h = SyncHarness(tmp_path, profile_store_url=postgres_url)  # the YAML names conn_id profile_store_db
    h.resolve_connection = resolve_connection  # Airflow's lookup, as the task layer does it
    try:
        team(6).write(h.ldif)
        out = run_sync(h.context())
        assert out["export_profile_store"]["adds"] == 6
        assert (h.profiles()["state"] == "active").sum() == 6
    finally:
        h.close()


def _failure(h: SyncHarness, error: type[Exception]) -> Exception:
    """The run fails at its start: the lease and the run history live in the profile-store database, so a store
    that refuses the login has nowhere to record the run — the task's error is the record (README: State)."""
    team(3).write(h.ldif)
    with pytest.raises(error) as err:
        run_sync(h.context())
    return err.value


def test_a_wrong_password_is_terminal_and_says_what_to_fix(tmp_path, postgres_url, postgres_server):
    wrong = postgres_url.replace(f":{postgres_server.password}@", ":not-the-password@")
    h = SyncHarness(tmp_path, profile_store_url=wrong)
    err = _failure(h, ProfileStoreError)
    assert err.terminal  # the task fails at once (AirflowFailException), no retries
    text = str(err)
    assert "refused the login" in text and "password authentication failed" in text
    assert "fix the user name and password of the profile store's Airflow Connection (profile_store.conn_id)" in text
    assert "not-the-password" not in text and ":***@" in text  # the URL is named, its password masked


def test_a_missing_database_is_terminal(tmp_path, postgres_url):
    h = SyncHarness(tmp_path, profile_store_url=postgres_url.rsplit("/", 1)[0] + "/no_such_db")
    err = _failure(h, ProfileStoreError)
    assert "the database does not exist" in str(err) and "no_such_db" in str(err)


def test_a_server_that_does_not_answer_is_transient(tmp_path, postgres_server):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg2://{postgres_server.user}:{postgres_server.password}@127.0.0.1:{port}/x"
    h = SyncHarness(tmp_path, profile_store_url=url)
    err = _failure(h, ProfileStoreUnavailableError)
    assert not err.terminal  # Airflow retries the step
    assert "did not answer" in str(err) and postgres_server.password not in str(err)


def test_the_make_run_report_names_the_profile_store_without_its_password(tmp_path, postgres_url,
                                                                         postgres_server, monkeypatch, capsys):
    """``make run`` prints where everything is: the profile store from its Connection, password masked."""
    from profile_sync.run import report

    s = postgres_server
    monkeypatch.setenv("AIRFLOW_CONN_PROFILE_STORE_DB", json.dumps({
        "conn_type": "postgres", "host": s.host, "port": s.port, "login": s.user, "password": s.password,
        "schema": s.database}))
    h = SyncHarness(tmp_path, profile_store_url=postgres_url)
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(h.config))
    assert report.main(["--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"profile store:  postgres://{s.user}:***@{s.host}:{s.port}/{s.database}" in out
    assert s.password not in out


@pytest.mark.parametrize("url", ["postgresql+nodriver://u:Sekrit-1@db/p", "mysqlx://u:Sekrit-1@db/p"])
def test_a_url_sqlalchemy_cannot_load_is_terminal_and_hides_the_password(url):
    from profile_sync.profile_store.store import make_engine

    with pytest.raises(ProfileStoreError) as err:
        make_engine(url)
    assert "the URL cannot be used" in str(err.value) and "u:***@db" in str(err.value)
    assert "Sekrit-1" not in str(err.value)
    assert str(err.value).startswith("profile store ")


def test_a_site_url_that_cannot_be_used_names_the_site_not_the_profile_store():
    from profile_sync.profile_store.store import make_engine

    with pytest.raises(ProfileStoreError) as err:
        make_engine("mysqlx://u:Sekrit-1@db/intranet", "site 'intranet'")
    assert str(err.value).startswith("site 'intranet' mysqlx://u:***@db/intranet: the URL cannot be used")
