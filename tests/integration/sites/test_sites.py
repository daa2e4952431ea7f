"""Profile store → sites against real databases: the profile store on SQLite and PostgreSQL, three sites
(two SQLite files, one PostgreSQL database reached through an Airflow-style Connection), filled by real
synchronizations of an LDIF directory."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from profile_sync.gates.errors import GateFailedError
from profile_sync.profile_store.store import make_engine
from profile_sync.run import site_steps
from profile_sync.run.report import format_run
from profile_sync.run.site_steps import history_id
from profile_sync.sites.config import SYNCED
from profile_sync.sites.errors import SiteError, SiteUnavailableError
from profile_sync.sync.pending_exports import MARKED

from tests.conftest import fresh_postgres_database
from tests.helpers.directory import USERS, team
from tests.helpers.sites import claims, list_people, site_rows, watermark
from tests.helpers.sync import SyncHarness

pytestmark = pytest.mark.timeout(600)

ALPHA = [claims(f"p{i}@contoso.com") for i in range(1, 11)] + ["i:0#.f|membership|guest@fabrikam.com"]
BETA = [claims(f"p{i}@contoso.com") for i in range(5, 16)]
GAMMA = [claims(f"p{i}@contoso.com") for i in range(1, 21)]
GAMMA_TABLE = "portal.user_information_list"
"""gamma's list lives in a schema of its own (the schema is the site's; Profile Sync creates the table)."""


def _gamma_database(server, name: str) -> str:
    url = fresh_postgres_database(server, name)
    server.psql(f'CREATE SCHEMA portal AUTHORIZATION "{server.user}"', database=name)
    return url


class Sites:
    """A synchronization harness with three sites and what the tests need to drive them."""

    def __init__(self, tmp, profile_store_url: str, gamma_url: str, **gates) -> None:
        self.tmp = tmp
        self.urls = {"alpha": f"sqlite:///{tmp / 'alpha.db'}", "beta": f"sqlite:///{tmp / 'beta.db'}",
                     "gamma": gamma_url}
        self.tables = {"alpha": "user_information_list", "beta": "people_of_beta", "gamma": GAMMA_TABLE}
        self.sites = [
            {"name": "alpha", "url": self.urls["alpha"], **gates},
            {"name": "beta", "url": self.urls["beta"], "table": "people_of_beta", **gates},
            # Airflow spells it postgresql:// (or postgres://); the password lives only in the Connection.
            {"name": "gamma", "conn_id": "site_gamma", "table": GAMMA_TABLE, **gates},
        ]
        pg = profile_store_url if profile_store_url.startswith("postgresql") else None
        self.h = SyncHarness(tmp, profile_store_url=pg,
                             connections={"site_gamma": gamma_url.replace("postgresql+psycopg2://", "postgresql://")},
                             sites=self.sites)
        self.directory = team(20)

    def sync(self, **overrides) -> dict:
        if overrides:
            self.h.write_config(sites=self.sites, **overrides)
        return self.h.sync(self.directory)

    def push(self, site: str, mode: str = "incremental", **ctx) -> dict:
        context = dataclasses.replace(self.h.context(mode), dag_id="profile_sync_sites", **ctx)
        self.last_run = context.run_id
        summary = site_steps.push_site(context, site)
        return context.history.get(history_id(context.run_id, site))["steps"][0] | {"xcom": summary}

    def history(self, site: str) -> dict:
        return self.h.context().history.get(history_id(self.last_run, site))

    def rows(self, site: str) -> dict:
        return site_rows(self.urls[site], self.tables[site])

    def watermark(self, site: str) -> dict | None:
        return watermark(self.urls[site], site, self.tables[site])

    def assert_converged(self, site: str) -> None:
        """Every listed person with a profile carries that profile's synced properties and deletion state."""
        people = self.h.profiles()
        rows = self.rows(site)
        assert rows
        for key, row in rows.items():
            match = people.loc[people["account_name"].str.lower() == key.lower()]
            if match.empty:
                assert row["profile_id"] is None and row["last_synced"] is None, key
                continue
            active = match.loc[match["state"] != MARKED]
            profile = (active if len(active) else match).iloc[0]
            assert row["profile_id"] == profile["profile_id"], key
            assert bool(row["deleted"]) == (profile["state"] == MARKED), key
            for p in SYNCED:
                assert row[p] == profile[p], (key, p)
            assert row["last_synced"] is not None, key


@pytest.fixture
def sites(tmp_path, profile_store_url, postgres_server):
    gamma = _gamma_database(postgres_server, "site_gamma")
    env = Sites(tmp_path, profile_store_url, gamma)
    env.sync()
    yield env
    env.h.close()
    for url in env.urls.values():
        make_engine(url).dispose()


def _list_everyone(sites: Sites) -> None:
    for name, people in (("alpha", ALPHA), ("beta", BETA), ("gamma", GAMMA)):
        list_people(sites.urls[name], people, sites.tables[name])


def test_the_first_push_creates_the_lists_and_listed_people_get_their_profiles(sites):
    for name in ("alpha", "beta", "gamma"):
        first = sites.push(name)
        assert first["status"] == "success"
        assert (first["mode"], first["full_reason"]) == ("full", "no watermark yet (first push to this site)")
        assert first["listed"] == first["written"] == 0
        assert sites.rows(name) == {}  # created empty: a site learns about people itself
        assert sites.watermark(name)["watermark"]["properties"] == list(SYNCED)
    _list_everyone(sites)
    for name, people in (("alpha", ALPHA), ("beta", BETA), ("gamma", GAMMA)):
        step = sites.push(name)
        assert step["mode"] == "incremental"
        matched = len([p for p in people if "guest" not in p])
        assert (step["listed"], step["matched"], step["first_synced"]) == (len(people), matched, matched)
        assert step["written"] == matched
        sites.assert_converged(name)
        assert set(sites.rows(name)) == set(people)  # nobody added by the push
        doc = sites.history(name)
        assert (doc["dag_id"], doc["site"], doc["status"], doc["kind"]) == ("profile_sync_sites", name, "success",
                                                                            "site_push")
        assert doc["sites_run_id"] == sites.last_run
    alpha = sites.rows("alpha")
    p3 = alpha[claims("p3@contoso.com")]
    assert (p3["title"], p3["job_title"], p3["manager"], p3["user_principal_name"]) == (
        "Title 3", "Title 3", claims("p1@contoso.com"), "p3@contoso.com")
    assert alpha["i:0#.f|membership|guest@fabrikam.com"]["last_synced"] is None  # no profile: left alone
    # Only the properties marked "sync to sites" exist on a site.
    columns = set(next(iter(alpha.values())))
    assert {"public_site_redirect", "hide_from_address_lists", "picture", "about_me"}.isdisjoint(columns)
    again = sites.push("alpha")
    assert (again["mode"], again["written"], again["unchanged"]) == ("incremental", 0, 10)


def test_incremental_pushes_changes_renames_deletes_and_returners(sites):
    _list_everyone(sites)
    for name in ("alpha", "beta", "gamma"):
        sites.push(name)
    before = {name: sites.rows(name) for name in ("alpha", "beta", "gamma")}
    d = sites.directory
    d.person(3, "Person 3", upn="p3@contoso.com", manager=f"CN=Person 1,{USERS}", title="Promoted")
    d.person(4, "Person 4", upn="p4.renamed@contoso.com", manager=f"CN=Person 2,{USERS}", title="Title 4")
    d.remove(f"CN=Person 5,{USERS}")
    d.person(21, "Person 21", upn="p21@contoso.com", title="New")
    sites.sync()

    alpha = sites.push("alpha")
    assert alpha["mode"] == "incremental"
    assert alpha["considered"] < alpha["listed"]  # only the people whose profiles changed were looked at
    assert (alpha["deletes"], alpha["renames"], alpha["rename_conflicts"]) == (1, 1, 0)
    rows = sites.rows("alpha")
    assert claims("p4@contoso.com") not in rows
    p4 = rows[claims("p4.renamed@contoso.com")]
    assert (p4["user_principal_name"], p4["profile_id"]) == (
        "p4.renamed@contoso.com", before["alpha"][claims("p4@contoso.com")]["profile_id"])
    assert rows[claims("p8@contoso.com")]["manager"] == claims("p4.renamed@contoso.com")  # Person 8 reports to 4
    assert rows[claims("p3@contoso.com")]["title"] == "Promoted"
    assert rows[claims("p5@contoso.com")]["deleted"]
    assert not any("p21@" in k for k in rows)  # not listed: never added
    unchanged = rows[claims("p7@contoso.com")]
    assert unchanged["last_synced"] == before["alpha"][claims("p7@contoso.com")]["last_synced"]
    assert alpha["written"] == len([k for k in rows if rows[k]["last_synced"] != before["alpha"].get(
        k if k != claims("p4.renamed@contoso.com") else claims("p4@contoso.com"), {}).get("last_synced")])
    for name in ("beta", "gamma"):
        step = sites.push(name)
        assert step["deletes"] == 1
        sites.assert_converged(name)
    sites.assert_converged("alpha")

    d.person(5, "Person 5", upn="p5@contoso.com", manager=f"CN=Person 2,{USERS}", title="Back")
    sites.sync()
    for name in ("alpha", "beta", "gamma"):
        step = sites.push(name)
        assert step["restores"] == 1
        assert sites.rows(name)[claims("p5@contoso.com")]["deleted"] is False
        assert sites.rows(name)[claims("p5@contoso.com")]["title"] == "Back"
        sites.assert_converged(name)


def test_edits_by_others_reach_sites_through_the_change_log(sites):
    _list_everyone(sites)
    for name in ("alpha", "gamma"):
        sites.push(name)
    # Someone edits a profile in the store (not Profile Sync: logged by the triggers, updated_at untouched).
    sites.h.execute("UPDATE user_profiles SET work_phone = '+1 555 0199' WHERE user_principal_name = 'p2@contoso.com'")
    step = sites.push("alpha")
    assert (step["mode"], step["updates"]) == ("incremental", 1)
    assert sites.rows("alpha")[claims("p2@contoso.com")]["work_phone"] == "+1 555 0199"
    # The synchronization prunes change-log entries it has read: a site that did not read them yet must
    # read everything rather than miss the edit.
    sites.h.execute("UPDATE user_profiles SET office = 'Annex' WHERE user_principal_name = 'p3@contoso.com'")
    sites.h.execute("DELETE FROM profile_store_changes")
    step = sites.push("gamma")
    assert step["mode"] == "full" and "change log" in step["full_reason"]
    assert sites.history("gamma")["full_reason"] == step["full_reason"]
    rows = sites.rows("gamma")
    assert rows[claims("p3@contoso.com")]["office"] == "Annex"
    assert rows[claims("p2@contoso.com")]["work_phone"] == "+1 555 0199"
    sites.assert_converged("gamma")


def test_full_on_request_and_when_the_synced_properties_change(sites):
    _list_everyone(sites)
    sites.push("beta")
    full = sites.push("beta", mode="full")
    assert (full["mode"], full["full_reason"], full["written"]) == ("full", "full push requested", 11)
    # An upgrade that syncs one more property: the watermark of the last push lists fewer.
    engine = create_engine(sites.urls["beta"])
    with engine.begin() as conn:
        doc = sites.watermark("beta")["watermark"]
        doc["properties"] = [p for p in doc["properties"] if p != "manager"]
        conn.execute(text("UPDATE profile_sync_site_watermark SET watermark = :w WHERE site = 'beta'"),
                     {"w": __import__("json").dumps(doc)})
        conn.execute(text("UPDATE people_of_beta SET manager = NULL"))
    engine.dispose()
    step = sites.push("beta")
    assert step["mode"] == "full"
    assert "properties synced to sites changed" in step["full_reason"] and "manager" in step["full_reason"]
    sites.assert_converged("beta")
    assert sites.push("beta")["mode"] == "incremental"


def test_a_list_owned_by_another_application(sites):
    """The site's own table, with columns of its own and without Profile Sync's: columns are added, the
    site's own are left alone; a table without account_name is refused with a clear error."""
    url = sites.urls["alpha"]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE user_information_list (account_name VARCHAR(400) PRIMARY KEY, "
                          "title VARCHAR(256), favourite_colour VARCHAR(20))"))
        conn.execute(text("INSERT INTO user_information_list VALUES (:a, 'old', 'green')"),
                     {"a": claims("p2@contoso.com")})
    step = sites.push("alpha")
    assert step["mode"] == "full"
    assert set(step["columns_added"]) == {"profile_id", "deleted", "last_synced", *SYNCED} - {"account_name", "title"}
    with engine.connect() as conn:
        row = conn.execute(text("SELECT title, favourite_colour, deleted, work_email FROM user_information_list")
                           ).one()
    assert tuple(row) == ("Title 2", "green", 0, None)
    sites.assert_converged("alpha")
    engine.dispose()
    engine = create_engine(sites.urls["beta"])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people_of_beta (login VARCHAR(100))"))
    engine.dispose()
    with pytest.raises(SiteError, match=r"site 'beta': table 'people_of_beta' has no 'account_name' column"):
        sites.push("beta")
    assert sites.history("beta")["status"] == "failed"


def test_the_gate_stops_a_mass_delete_and_an_override_lets_it_through(sites):
    _list_everyone(sites)
    for name in ("alpha", "gamma"):
        sites.push(name)
    sites.sites = [{**s, "gates": {"max_delete_percent": 20, "min_count_for_percent_limits": 2}}
                   for s in sites.sites]
    for i in range(11, 18):  # 7 of gamma's 20 people (35 %), none of alpha's
        sites.directory.remove(f"CN=Person {i},{USERS}")
    sites.sync(gates={"max_delete_percent": 50})
    wm_before, rows_before = sites.watermark("gamma"), sites.rows("gamma")
    with pytest.raises(GateFailedError, match=r"site_deletes \[gamma\]: 7 listed people would be flagged deleted "
                                              r"\(35.0% of 20\)"):
        sites.push("gamma")
    doc = sites.history("gamma")
    assert doc["status"] == "failed"
    report = doc["steps"][0]["gate_report"]
    assert (report["gate"], report["checks"][0]["observed"]["flagged"]) == ("validate_site_push", 7)
    assert len(report["checks"][0]["samples"]) == 7
    assert sites.watermark("gamma") == wm_before and sites.rows("gamma") == rows_before  # nothing written
    assert sites.push("alpha")["status"] == "success"  # the other sites go on

    dry = sites.push("gamma", dry_run=True, override_gates=True, override_reason="wave 3 leavers")
    assert dry["xcom"]["dry_run"] and sites.watermark("gamma") == wm_before
    step = sites.push("gamma", override_gates=True, override_reason="wave 3 leavers, CHG-42")
    assert step["deletes"] == 7
    doc = sites.history("gamma")
    assert [c["name"] for c in doc["overrides"][0]["checks"]] == ["site_deletes"]
    assert "OVERRIDDEN" in format_run(doc) and "(site_deletes)" in format_run(doc)  # `make run`'s report
    assert doc["overrides"][0]["reason"] == "wave 3 leavers, CHG-42"
    sites.assert_converged("gamma")


def test_a_site_stopped_mid_push_fails_alone_and_the_next_push_converges(tmp_path, profile_store_url):
    """A PostgreSQL site killed while its UPDATE waits: its push fails as unavailable (retried by Airflow),
    its rows and watermark stay as they were; the other sites are pushed; the next push converges."""
    from tests.servers.fixtures import serve
    from tests.servers.postgres import PostgresServer

    with serve("PostgreSQL", PostgresServer) as server:
        env = Sites(tmp_path, profile_store_url, _gamma_database(server, "site_gamma"))
        try:
            env.sync()
            _list_everyone(env)
            for name in ("alpha", "beta", "gamma"):
                env.push(name)
            env.directory.person(3, "Person 3", upn="p3@contoso.com", manager=f"CN=Person 1,{USERS}",
                                 title="Promoted")
            env.sync()
            wm_before, rows_before = env.watermark("gamma"), env.rows("gamma")

            # Another session holds the list so that the push's UPDATE waits; then the server dies.
            blocker = create_engine(env.urls["gamma"]).connect()
            blocker.execute(text("BEGIN"))
            blocker.execute(text(f"LOCK TABLE {GAMMA_TABLE} IN EXCLUSIVE MODE"))
            outcome: dict = {}

            def run() -> None:
                try:
                    outcome["step"] = env.push("gamma")
                except Exception as exc:  # noqa: BLE001  (asserted below)
                    outcome["error"] = exc

            pushing = threading.Thread(target=run)
            pushing.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = server.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      f"AND query LIKE 'UPDATE {GAMMA_TABLE}%'", database="site_gamma")
                if waiting.strip() == "1":
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the push never reached its UPDATE")
            server.kill()
            pushing.join(60)
            assert not pushing.is_alive()
            assert isinstance(outcome.get("error"), SiteUnavailableError), outcome
            assert not outcome["error"].terminal  # Airflow retries it
            doc = env.history("gamma")
            assert doc["status"] == "failed" and doc["attempts"][0]["transient"]

            for name in ("alpha", "beta"):  # the others are pushed meanwhile
                assert env.push(name)["status"] == "success"
                env.assert_converged(name)

            server.start()  # back after a crash: the transaction never committed
            blocker.invalidate()
            assert env.watermark("gamma") == wm_before
            assert env.rows("gamma") == rows_before
            assert env.rows("gamma")[claims("p3@contoso.com")]["title"] == "Title 3"
            step = env.push("gamma")
            assert (step["status"], step["mode"], step["updates"]) == ("success", "incremental", 1)
            env.assert_converged("gamma")
            assert env.watermark("gamma")["watermark"]["position"] != wm_before["watermark"]["position"]
        finally:
            env.h.close()
            for url in env.urls.values():
                make_engine(url).dispose()


def test_a_push_planned_from_a_watermark_that_moved_writes_nothing(sites):
    """Two pushes to one site never interleave: a write planned from a stale watermark is refused (retried)."""
    from datetime import datetime, timezone

    import pandas as pd

    from profile_sync.sites.errors import SiteConflictError
    from profile_sync.sites.site_list import ROW_COLUMNS, STAGE_KEY, inspect_site, write_push

    _list_everyone(sites)
    sites.push("beta")
    url, table = sites.urls["beta"], sites.tables["beta"]
    stale = inspect_site(make_engine(url), "beta", table).watermark
    sites.push("beta", mode="full")  # another push commits meanwhile
    before = (sites.watermark("beta"), sites.rows("beta"))
    key = claims("p5@contoso.com")
    writes = pd.DataFrame([{STAGE_KEY: key, **{c: None for c in ROW_COLUMNS if c != "last_synced"},
                            "account_name": key, "deleted": True}])
    with pytest.raises(SiteConflictError) as info:
        write_push(make_engine(url), "beta", table, writes, planned_from=stale, watermark="{}",
                   now=datetime.now(timezone.utc), run_id="late", mode="incremental")
    assert not info.value.terminal
    assert (sites.watermark("beta"), sites.rows("beta")) == before
