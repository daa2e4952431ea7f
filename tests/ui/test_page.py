"""The Profile Sync page in the real Airflow 3 UI, against a throwaway Airflow with a real scheduler.

One Airflow (API server, DAG processor, scheduler with the LocalExecutor) with three users — ``admin``
(role ADMIN), ``viewer`` (VIEWER: may read DAGs, not run them) and ``nobody`` (no role: may do nothing) —
and a 30-person LDIF directory with a disabled person, one outside the selected containers and two
objects sharing an anchor (quarantined). Headless Chromium logs in through Airflow's login form and
opens the page from Airflow's navigation (``/plugin/profile-sync``: the page in Airflow's frame).

In order: every route refuses anonymous and unauthorised callers; the scheduler's full run and a manual
incremental run show their figures in every view; a person's lineage follows a title changed in the
directory; a run that would mark 12 of 30 profiles for deletion waits (``awaiting_input``), is approved
in the page and exports, with the approval in the run history; another one is rejected and writes
nothing; no password appears. Screenshots of each view: ``$PROFILE_SYNC_SCREENSHOTS`` (default
``.local/screenshots/``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers.directory import BASE, USERS, FakeDirectory
from tests.servers.fixtures import serve
from tests.ui.airflow_server import ANONYMOUS, AirflowServer
from tests.ui.browser import By, Chromedriver, WebDriver, quit_browser, wait_css, wait_for
from tests.ui.conftest import screenshot_dir

pytestmark = pytest.mark.timeout(900)

FULL, INCREMENTAL = "profile_sync_full", "profile_sync_incremental"
ROLES = {"admin": "ADMIN", "viewer": "VIEWER", "nobody": ""}
FULL_SCHEDULE = "0 3 1 1 *"  # yearly: unpausing creates one scheduled run now, the next one next 1 January
PEOPLE = 30
SECRET = "TopSecret-4711"


def page_directory() -> FakeDirectory:
    """30 people (names, e-mail, title, manager), a group of them, a disabled person, one outside the
    selected containers, and two objects sharing one objectGUID (both quarantined at import)."""
    d = FakeDirectory()
    dns = []
    for i in range(1, PEOPLE + 1):
        dns.append(d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}",
                            manager=f"CN=Person {i // 2},{USERS}" if i > 1 else None,
                            displayName=f"Person {i}", givenName=f"Given{i}", sn=f"Family{i}",
                            proxyAddresses=[f"SMTP:person.{i}@contoso.com", f"SIP:p{i}@contoso.com"],
                            department=f"Dept {i % 3}"))
    d.group(1000, "Everyone", dns)
    d.person(101, "Disabled Dora", upn="dora@contoso.com", uac=514, displayName="Disabled Dora")
    d.person(102, "Outside Olga", upn="olga@contoso.com", ou=f"OU=Elsewhere,{BASE}", displayName="Outside Olga")
    d.person(103, "Twin One", upn="twin1@contoso.com", displayName="Twin One")
    d.person(103, "Twin Two", upn="twin2@contoso.com", displayName="Twin Two")
    return d


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[AirflowServer]:
    def make() -> AirflowServer:
        return AirflowServer(directory=page_directory(), users=ROLES, scheduler=True,
                             config={"schedule": {"full": FULL_SCHEDULE, "incremental": None},
                                     "approval": {"timeout_minutes": 60}})

    with serve("Airflow with a scheduler", make) as s:
        yield s


@pytest.fixture(scope="module")
def admin_browser(chromedriver: Chromedriver, server: AirflowServer) -> Iterator[WebDriver]:
    driver = chromedriver.new_browser()
    try:
        login(driver, server, "admin")
        yield driver
    finally:
        quit_browser(driver)


@pytest.fixture(scope="module")
def full_run(server: AirflowServer) -> dict[str, Any]:
    """The run the scheduler creates when profile_sync_full is unpaused (its yearly schedule's latest
    interval), finished."""
    status, body = server.api("PATCH", f"/api/v2/dags/{FULL}", {"is_paused": False})
    assert status == 200, body
    run = wait_for("the scheduled full run", lambda: next(
        (r for r in server.dag_runs(FULL) if r["run_type"] == "scheduled"), None), timeout=120, interval=1)
    return wait_finished(server, FULL, run["dag_run_id"])


@pytest.fixture(scope="module")
def incremental_run(server: AirflowServer, full_run: dict[str, Any]) -> dict[str, Any]:
    """Person 5's title changed in the directory, then a manual incremental run, finished."""
    server.directory.entries[f"CN=Person 5,{USERS}"]["title"] = ["Title 5 (acting)"]
    server.directory.write(server.ldif)
    assert server.api("PATCH", f"/api/v2/dags/{INCREMENTAL}", {"is_paused": False})[0] == 200
    return wait_finished(server, INCREMENTAL, trigger(server, INCREMENTAL))


# --------------------------------------------------------------------------- helpers


def login(driver: WebDriver, server: AirflowServer, user: str) -> None:
    """Log in through Airflow's login form; lands on the Profile Sync page in Airflow's navigation."""
    driver.get(f"{server.url}/auth/login?next=%2Fplugin%2Fprofile-sync")
    wait_css(driver, "input[name=username]", timeout=30).send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(server.passwords[user])
    button = driver.find_element(By.CSS_SELECTOR, "button[type=submit]")
    wait_for("Sign in enabled", button.is_enabled, timeout=5)
    button.click()
    wait_for("the Profile Sync page after login",
             lambda: "/plugin/profile-sync" in driver.current_url and "login" not in driver.current_url, timeout=30)


def open_view(driver: WebDriver, server: AirflowServer, view: str, timeout: float = 30) -> None:
    """Open the page in Airflow's frame (``/plugin/profile-sync``) at ``#view``, switch into the frame and
    wait until the view is loaded. On the page already, the frame just follows the new ``#view``."""
    driver.switch_to.default_content()
    frames = driver.find_elements(By.CSS_SELECTOR, "iframe[title='Profile Sync']") \
        if "/plugin/profile-sync" in driver.current_url else []
    if frames:
        driver.switch_to.frame(frames[0])
        driver.execute_script(
            "document.getElementById('view').dataset.loaded = '';"
            "if (location.hash === '#' + arguments[0]) window.dispatchEvent(new HashChangeEvent('hashchange'));"
            "else location.hash = arguments[0];", view)
    else:
        driver.get(f"{server.url}/plugin/profile-sync/profile-sync/#{view}")
        driver.switch_to.frame(wait_css(driver, "iframe[title='Profile Sync']", timeout=timeout))
    wait_for(f"view {view} loaded", lambda: driver.find_element(By.ID, "view").get_attribute("data-loaded") == view,
             timeout=timeout)
    errors = driver.find_elements(By.CSS_SELECTOR, "[data-testid=error]")
    assert not errors, errors[0].text


def shot(driver: WebDriver, name: str) -> None:
    """A screenshot of the whole Airflow window (navigation and page) into the screenshot folder."""
    driver.switch_to.default_content()
    driver.save_screenshot(str(screenshot_dir() / f"{name}.png"))
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "iframe[title='Profile Sync']"))


def text(driver: WebDriver, css: str) -> str:
    return wait_css(driver, css).text


def trigger(server: AirflowServer, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    status, body = server.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
    assert status == 200, body
    return body["dag_run_id"]


def run_state(server: AirflowServer, dag_id: str, run_id: str) -> dict[str, Any]:
    status, body = server.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
    assert status == 200, body
    return body


def wait_finished(server: AirflowServer, dag_id: str, run_id: str, timeout: float = 420) -> dict[str, Any]:
    run = wait_for(f"run {run_id} to finish", lambda: (lambda r: r if r["state"] in ("success", "failed") else None)(
        run_state(server, dag_id, run_id)), timeout=timeout, interval=2)
    return {**run, "tasks": server.task_states(dag_id, run_id)}


def wait_awaiting_approval(server: AirflowServer, dag_id: str, run_id: str, timeout: float = 300) -> None:
    def parked() -> bool:
        tasks = server.task_states(dag_id, run_id)
        assert run_state(server, dag_id, run_id)["state"] == "running", (run_id, tasks)
        return tasks.get("approve_export") == "awaiting_input"

    wait_for(f"{run_id}: approve_export awaiting_input", parked, timeout=timeout, interval=2)
    # Answering before the scheduler took the parked process's end would get the resumed attempt killed
    # (an Airflow bug, see AirflowServer.executor_event_drained): an administrator reads the report first.
    wait_for(f"{run_id}: the scheduler took the parked approve_export's end",
             lambda: server.executor_event_drained(dag_id, run_id, "approve_export"), timeout=60, interval=0.5)


def engine(server: AirflowServer):  # noqa: ANN201
    """The engine's view of this server's state store (run history, committed manifest)."""
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext

    return RunContext(run_id="ui-test", settings=load_settings(server.config_path))


def profiles(server: AirflowServer) -> dict[str, tuple]:
    with sqlite3.connect(server.home / "profiles.db") as db:
        return {r[0]: r[1:] for r in db.execute("SELECT user_principal_name, title, state FROM user_profiles")}


def remove_people(server: AirflowServer, numbers: list[int]) -> None:
    """Delete people from the directory, and from the group's member list (as a directory does)."""
    gone = {f"CN=Person {i},{USERS}" for i in numbers}
    for dn in gone:
        server.directory.remove(dn)
    for record in server.directory.entries.values():
        if "member" in record:
            record["member"] = [m for m in record["member"] if m not in gone]
    server.directory.write(server.ldif)


def card_number(driver: WebDriver, key: str) -> str:
    return text(driver, f"[data-testid=count-{key}] .big")


def person_rows(driver: WebDriver) -> dict[str, dict[str, str]]:
    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "[data-testid=property]"):
        cell = {k: tr.find_element(By.CSS_SELECTOR, f"[data-testid={k}]").text
                for k in ("value", "connection", "source", "transform", "changed-in")}
        rows[tr.get_attribute("data-property")] = cell
    return rows


def open_person(driver: WebDriver, server: AirflowServer, query: str, name: str) -> dict[str, dict[str, str]]:
    """Search from the person view, click the profile called ``name``, return its property rows."""
    open_view(driver, server, "person")
    box = wait_css(driver, "[data-testid=person-query]")
    box.send_keys(query)
    driver.find_element(By.CSS_SELECTOR, "[data-testid=person-search] button").click()
    link = wait_for(f"search result {name}", lambda: next(
        (a for a in driver.find_elements(By.CSS_SELECTOR, "[data-testid=result][data-kind=profile] a")
         if a.text == name), None))
    link.click()
    wait_for(f"lineage of {name}", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid=person-name]").text == name)
    return person_rows(driver)


def expand_run(driver: WebDriver, run_id: str):  # noqa: ANN201
    details = wait_css(driver, f"[data-testid=run][data-run-id='{run_id}']")
    if details.get_attribute("open") is None:
        details.find_element(By.TAG_NAME, "summary").click()
    return details


def step_counts(details, step: str) -> list[str]:  # noqa: ANN001
    row = details.find_element(By.CSS_SELECTOR, f"tr[data-step='{step}']")
    return [td.text for td in row.find_elements(By.CSS_SELECTOR, "td.num")]


# --------------------------------------------------------------------------- security


def test_every_route_refuses_anonymous_and_unauthorised_callers(server):
    """No credentials → 401 on every route; a user whose role may not read the Profile Sync DAGs → 403;
    a viewer reads (2xx, or 404 for an unknown id) but may not approve (403); an admin may (409: nothing
    waits)."""
    from profile_sync_airflow.page.app import ROUTES

    values = {"{run_id}": "no-such-run", "{profile_id}": "no-such-profile", "{connection}": "contoso",
              "{dag_id}": FULL}
    for method, route in ROUTES:
        path = "/profile-sync" + route
        for key, value in values.items():
            path = path.replace(key, value)
        if route == "/api/objects/{connection}":
            path += "?anchor=x"
        body = {"decision": "approve", "comment": "x"} if method == "POST" else None
        anonymous = server.request(method, path, body, token=None)
        assert anonymous[0] == 401, (method, path, anonymous)
        nobody = server.request(method, path, body, token=server.token("nobody"))
        assert nobody[0] == 403, (method, path, nobody)
        viewer = server.request(method, path, body, token=server.token("viewer"))
        if method == "POST":
            assert viewer[0] == 403, (method, path, viewer)
            admin = server.request(method, path, body, token=server.token("admin"))
            assert admin[0] == 409, (method, path, admin)  # allowed; no run waits for an approval
        else:
            assert viewer[0] in (200, 404), (method, path, viewer)
    page = server.request("GET", "/profile-sync/", token=None)
    assert page[0] == 401 and "/auth/login" in page[1]
    status, me = server.api("GET", "/profile-sync/api/me", user="viewer")
    assert status == 200 and me == {"user": "viewer", "can_approve": {FULL: False, INCREMENTAL: False}}
    assert server.api("GET", "/profile-sync/api/me")[1]["can_approve"] == {FULL: True, INCREMENTAL: True}


# --------------------------------------------------------------------------- after the scheduled full run


def test_each_view_after_the_scheduled_full_run(server, admin_browser, full_run):
    b, run_id = admin_browser, full_run["dag_run_id"]
    assert full_run["state"] == "success", full_run
    assert full_run["tasks"]["approve_export"] == "skipped"  # the gate passed: no approval asked

    open_view(b, server, "status")
    assert wait_css(b, "[data-testid=state] .state").get_attribute("data-state") == "idle"
    last_full = wait_css(b, "[data-testid=last-full]")
    assert last_full.get_attribute("data-run-id") == run_id and "success" in last_full.text
    assert "none yet" in text(b, "[data-testid=last-incremental]")
    assert {k: card_number(b, k) for k in ("people", "groups", "memberships", "marked_for_deletion", "quarantined")} \
        == {"people": "30", "groups": "1", "memberships": "30", "marked_for_deletion": "0", "quarantined": "2"}
    now = datetime.now(timezone.utc)
    next_full = f"{now.year + 1}-01-01 03:00:00 UTC"
    assert next_full in text(b, f"[data-testid=schedule-{FULL}]")
    assert "paused" in text(b, f"[data-testid=schedule-{INCREMENTAL}]")
    shot(b, "status-after-full")

    open_view(b, server, "runs")
    runs = b.find_elements(By.CSS_SELECTOR, "[data-testid=run]")
    assert [r.get_attribute("data-run-id") for r in runs] == [run_id]
    details = expand_run(b, run_id)
    assert details.get_attribute("data-mode") == "full" and "scheduled" in details.text
    # adds, updates, deletes, errors, duration: 31 objects (30 people, 1 group) imported, 2 held back;
    # 30 profiles exported.
    assert step_counts(details, "import_directory")[:4] == ["31", "0", "0", "2"]
    assert step_counts(details, "export_profile_store")[:3] == ["30", "0", "0"]
    assert "contoso: full read" in details.text
    grid = details.find_element(By.LINK_TEXT, "open in Airflow's grid")
    assert grid.get_attribute("href").endswith(f"/dags/{FULL}/runs/{quote(run_id, safe='')}")
    assert len(b.find_elements(By.CSS_SELECTOR, "[data-testid=chart] rect.bar")) == 1

    open_view(b, server, "quarantine")
    assert text(b, "[data-testid=quarantine-total]") == "2"
    rows = b.find_elements(By.CSS_SELECTOR, "[data-testid=quarantined]")
    assert sorted(r.get_attribute("data-dn").split(",")[0] for r in rows) == ["CN=Twin One", "CN=Twin Two"]
    assert all("duplicate anchor" in r.text for r in rows)
    shot(b, "quarantine")

    props = open_person(b, server, "person 5", "Person 5")
    assert props["title"] == {"value": "Title 5", "connection": "contoso", "source": "title",
                              "transform": "copy", "changed-in": props["title"]["changed-in"]}
    assert props["title"]["changed-in"].startswith(f"{FULL}/{run_id} (")  # the run key: which job, which run
    assert props["work_email"]["value"] == "person.5@contoso.com"
    assert (props["work_email"]["source"], props["work_email"]["transform"]) == ("proxyAddresses", "proxy_primary_smtp")
    assert props["manager"]["value"].startswith("i:0#.f|membership|p2@contoso.com")
    assert props["manager"]["transform"] == "reference"
    assert props["about_me"]["connection"] == "profile store"  # no connection maps it
    shot(b, "person-after-full")


# --------------------------------------------------------------------------- after an incremental run


def test_each_view_after_an_incremental_run_and_the_lineage_follows_the_directory(
        server, admin_browser, full_run, incremental_run):
    b = admin_browser
    full_id, inc_id = full_run["dag_run_id"], incremental_run["dag_run_id"]
    assert incremental_run["state"] == "success", incremental_run

    open_view(b, server, "status")
    last_inc = wait_css(b, "[data-testid=last-incremental]")
    assert last_inc.get_attribute("data-run-id") == inc_id and "success" in last_inc.text
    assert "+0 ~1 −0" in last_inc.text
    assert wait_css(b, "[data-testid=last-full]").get_attribute("data-run-id") == full_id
    assert card_number(b, "people") == "30" and card_number(b, "quarantined") == "2"
    shot(b, "status")

    open_view(b, server, "runs")
    assert [r.get_attribute("data-run-id") for r in b.find_elements(By.CSS_SELECTOR, "[data-testid=run]")] == [
        inc_id, full_id]
    details = expand_run(b, inc_id)
    assert details.get_attribute("data-mode") == "incremental" and "manual by admin" in details.text
    assert step_counts(details, "export_profile_store")[:3] == ["0", "1", "0"]
    bars = b.find_elements(By.CSS_SELECTOR, "[data-testid=chart] rect.bar")
    assert [x.get_attribute("data-run-id") for x in bars] == [full_id, inc_id]
    points = b.find_elements(By.CSS_SELECTOR, "[data-testid=chart] circle")
    assert [p.get_attribute("data-changes") for p in points] == ["30", "1"]
    shot(b, "runs")

    props = open_person(b, server, "person.5@contoso", "Person 5")
    assert props["title"]["value"] == "Title 5 (acting)"
    assert props["title"]["changed-in"].startswith(f"{INCREMENTAL}/{inc_id} (")
    assert props["job_title"]["changed-in"].startswith(f"{INCREMENTAL}/{inc_id} (")
    assert props["first_name"]["changed-in"].startswith(f"{FULL}/{full_id} (")  # unchanged since the full run
    shot(b, "person")

    # People without a profile, and why.
    expected = {"dora": ("disabled", "account disabled"),
                "olga": ("out_of_scope", "outside the selected containers"),
                "twin": ("quarantined", "duplicate anchor")}
    for query, (code, why) in expected.items():
        open_view(b, server, f"person?q={query}")
        results = wait_for(f"results for {query}",
                           lambda: b.find_elements(By.CSS_SELECTOR, "[data-testid=result][data-kind=object]"))
        assert {r.get_attribute("data-why") for r in results} == {code}, [r.text for r in results]
        assert all(why in r.text for r in results)
        if query == "dora":
            shot(b, "person-no-profile")
    open_view(b, server, "person?q=nobody-by-this-name")
    assert "never seen" in text(b, "[data-testid=never-seen]")

    # From inside Airflow's frame, the grid link takes the Airflow UI itself to the run.
    open_view(b, server, "runs")
    expand_run(b, inc_id).find_element(By.LINK_TEXT, "open in Airflow's grid").click()
    b.switch_to.default_content()
    wait_for("Airflow's grid of the incremental run",
             lambda: b.current_url.endswith(f"/dags/{INCREMENTAL}/runs/{quote(inc_id, safe='')}"), timeout=15)


# --------------------------------------------------------------------------- approval


def test_a_tripped_gate_waits_and_is_approved_in_the_page(server, admin_browser, incremental_run):
    b = admin_browser
    remove_people(server, list(range(19, 31)))  # 12 of 30 leave: people_deletes and source_shrink trip
    run_id = trigger(server, FULL)
    wait_awaiting_approval(server, FULL, run_id)
    before = profiles(server)

    open_view(b, server, "status")
    waiting = wait_css(b, "[data-testid=activities] li[data-kind=waiting_for_approval]")
    assert waiting.get_attribute("data-run-id") == run_id
    assert wait_css(b, "[data-testid=state] .state").get_attribute("data-state") == "waiting_for_approval"
    shot(b, "status-waiting-for-approval")

    open_view(b, server, "gates")
    card = wait_css(b, f"[data-testid=pending-approval][data-run-id='{run_id}']")
    failed = {tr.get_attribute("data-check") for tr in card.find_elements(By.CSS_SELECTOR, "tr[data-passed=false]")}
    assert failed == {"people_deletes", "source_shrink"}
    assert "12 profiles would be marked for deletion" in card.text
    items = card.find_elements(By.CSS_SELECTOR, "[data-testid=pending-check]")
    assert len(items) == 2
    for li in items:  # each check named once
        name = li.find_element(By.TAG_NAME, "strong").text
        assert name in failed and li.text.count(name) == 1, li.text
    card.find_element(By.CSS_SELECTOR, "[data-testid=approval-comment]").send_keys("12 contractors left (CHG-42)")
    b.execute_script("arguments[0].scrollIntoView({block: 'start'})", card)
    shot(b, "gates-waiting-for-approval")
    # The viewer may read the report but not answer it, even now that a run waits.
    status, body = server.api("POST", f"/profile-sync/api/approvals/{FULL}/{quote(run_id, safe='')}",
                              {"decision": "approve", "comment": "me too"}, user="viewer")
    assert status == 403, body
    assert profiles(server) == before  # nothing written while it waits
    card.find_element(By.CSS_SELECTOR, "[data-testid=approve]").click()
    result = wait_css(b, "[data-testid=approval-result] .state")
    assert result.get_attribute("data-state") == "approved", b.find_element(
        By.CSS_SELECTOR, "[data-testid=approval-result]").text

    run = wait_finished(server, FULL, run_id)
    assert run["state"] == "success", run
    assert run["tasks"]["approve_export"] == "success" and run["tasks"]["export_profile_store"] == "success"
    after = profiles(server)
    marked = {upn for upn, (_, state) in after.items() if state == "marked_for_deletion"}
    assert marked == {f"p{i}@contoso.com" for i in range(19, 31)}
    doc = engine(server).history.get(f"{FULL}/{run_id}")
    approval = doc["approval"]
    assert (approval["status"], approval["by"], approval["comment"]) == ("approved", "admin", "12 contractors left (CHG-42)")
    assert approval["at"] and {c["name"] for c in approval["checks"]} == {"people_deletes", "source_shrink"}
    (override,) = doc["overrides"]
    assert (override["via"], override["by"], override["reason"]) == ("approval", "admin", "12 contractors left (CHG-42)")

    open_view(b, server, "runs")
    details = expand_run(b, run_id)
    assert "Approval: approved by admin" in details.text and "12 contractors left (CHG-42)" in details.text
    assert step_counts(details, "export_profile_store")[:3] == ["0", "0", "12"]
    open_view(b, server, "gates")
    report = wait_css(b, f"[data-testid=gate-report][data-run-id='{run_id}']")
    assert report.get_attribute("data-outcome") == "approved"
    assert "no-pending" in [e.get_attribute("data-testid") for e in b.find_elements(By.CSS_SELECTOR, "[data-testid]")]
    shot(b, "gates-approved")
    open_view(b, server, "status")
    assert card_number(b, "people") == "18" and card_number(b, "marked_for_deletion") == "12"


def test_a_rejected_run_writes_nothing(server, admin_browser, incremental_run):
    b = admin_browser
    ctx = engine(server)
    active = [i for i in range(1, PEOPLE + 1) if f"CN=Person {i},{USERS}" in server.directory.entries]
    remove_people(server, active[-12:])  # at least 12 more would be marked for deletion
    run_id = trigger(server, FULL)
    wait_awaiting_approval(server, FULL, run_id)
    before, version = profiles(server), ctx.store.committed_manifest()["version"]

    open_view(b, server, "gates")
    card = wait_css(b, f"[data-testid=pending-approval][data-run-id='{run_id}']")
    card.find_element(By.CSS_SELECTOR, "[data-testid=approval-comment]").send_keys("not planned")
    card.find_element(By.CSS_SELECTOR, "[data-testid=reject]").click()
    assert wait_css(b, "[data-testid=approval-result] .state").get_attribute("data-state") == "rejected"

    run = wait_finished(server, FULL, run_id)
    assert run["state"] == "failed"
    assert (run["tasks"]["approve_export"], run["tasks"]["export_profile_store"], run["tasks"]["release_run"]) == (
        "failed", "upstream_failed", "success")
    assert profiles(server) == before
    assert ctx.store.committed_manifest()["version"] == version  # the run's state was discarded
    doc = ctx.history.get(f"{FULL}/{run_id}")
    assert doc["status"] == "failed"
    step = next((s for s in doc["steps"] if s["step"] == "approve_export"), None)
    why = (f"approve_export's record: {step}\napproval: {doc['approval']}\n"
           f"{server.task_log(FULL, run_id, 'approve_export')}\n{server.logs()}")
    assert step is not None and step["status"] == "failed" and "rejected by admin" in step["error"], why
    assert (doc["approval"]["status"], doc["approval"].get("by"), doc["approval"].get("comment")) == (
        "rejected", "admin", "not planned"), why

    open_view(b, server, "runs")
    details = expand_run(b, run_id)
    assert details.get_attribute("data-status") == "failed"
    assert "rejected by admin" in details.text and "nothing was written" in details.text
    open_view(b, server, "gates")
    report = wait_css(b, f"[data-testid=gate-report][data-run-id='{run_id}']")
    assert report.get_attribute("data-outcome") == "rejected"
    shot(b, "gates-rejected")


# --------------------------------------------------------------------------- secrets


def test_no_password_is_shown(server, admin_browser, incremental_run):
    """A run whose error names a database URL with its password (as a driver message might): the API and
    the page show the URL with the password masked, never the password."""
    ctx = engine(server)
    run_id = "manual__secret-check"
    ctx.history.start(run_id, dag_id=FULL, mode="full", requested_mode="full", started_at="2020-01-01T00:00:00+00:00")
    ctx.history.record_step(run_id, {"step": "export_profile_store", "status": "failed", "duration_s": 0.1,
                                     "error": f"could not connect to postgresql://svc:{SECRET}@db.example/profiles"})
    ctx.history.finish(run_id, "failed")
    for path in ("/profile-sync/api/runs", f"/profile-sync/api/runs/{run_id}", "/profile-sync/api/status",
                 "/profile-sync/api/gates"):
        status, body = server.request("GET", path, token=server.token("admin"))
        assert status == 200 and SECRET not in str(body), path
    assert "postgresql://svc:***@db.example/profiles" in str(server.api("GET", f"/profile-sync/api/runs/{run_id}")[1])
    open_view(admin_browser, server, "runs")
    details = expand_run(admin_browser, run_id)
    assert "svc:***@db.example" in details.text
    assert SECRET not in admin_browser.page_source
