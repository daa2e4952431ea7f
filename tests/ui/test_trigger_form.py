"""The trigger form of the Profile Sync DAGs in the real Airflow 3 UI (headless Chromium).

A user opens the DAG page, opens *Trigger*, sets the four params and clicks *Trigger*; the run
the REST API then lists carries exactly that conf. Airflow's param validation refuses bad
values, and the default form can be submitted (``override_reason`` left empty: the regression
of ``Param("", type="string")``, which kept the Trigger button disabled).

Selectors come from the Airflow 3.3 UI itself: ``data-testid`` of the trigger buttons and
the params form, the dialog's ``role``, the ``element_<param>`` names the form gives its inputs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.ui.airflow_server import AirflowServer
from tests.ui.browser import By, WebDriver, WebElement, wait_css, wait_for, wait_xpath

pytestmark = pytest.mark.timeout(300)

FULL, INCREMENTAL = "profile_sync_full", "profile_sync_incremental"
TITLES = {"mode": "Mode", "dry_run": "Dry run", "override_gates": "Override safety gates",
          "override_reason": "Override reason"}

OPEN_TRIGGER = '[data-testid="trigger-dag-button"]'
DIALOG = '[role="dialog"][data-state="open"]'
PARAMS_FORM = f'{DIALOG} [data-testid="config-form"]'
SUBMIT = f'{DIALOG} [data-testid="trigger-dag-submit"]'


# --------------------------------------------------------------------------- helpers


def open_trigger_form(browser: WebDriver, server: AirflowServer, dag_id: str) -> WebElement:
    """The DAG page, *Trigger* clicked; returns the params form once all four fields are shown."""
    browser.get(f"{server.url}/dags/{dag_id}")
    wait_css(browser, OPEN_TRIGGER, timeout=30).click()
    form = wait_css(browser, PARAMS_FORM)
    wait_for("the four param fields", lambda: all(_inputs(browser, name) for name in TITLES))
    return form


def _inputs(browser: WebDriver, name: str) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, f'{DIALOG} [name="element_{name}"]')


def field_label(browser: WebDriver, name: str) -> str:
    """The label text of the param field whose input is ``element_<name>``."""
    (label,) = browser.find_elements(By.XPATH, 
        f"//*[@role='dialog']//*[@data-part='root' and @role='group'][.//*[@name='element_{name}']]"
        "//label[@data-part='label']")
    return label.text.replace("*", "").strip()


def field_help(browser: WebDriver, name: str) -> str:
    (helper,) = browser.find_elements(By.XPATH, 
        f"//*[@role='dialog']//*[@data-part='root' and @role='group'][.//*[@name='element_{name}']]"
        "//*[@data-part='helper-text']")
    return helper.text


def mode_value(browser: WebDriver) -> str | None:
    (hidden,) = _inputs(browser, "mode")
    return hidden.get_attribute("value")


def choose_mode(browser: WebDriver, value: str) -> None:
    """Open the Mode select (react-select) and click the option ``value``."""
    wait_css(browser, f'{DIALOG} #element_mode [role="combobox"]').click()
    option = wait_xpath(browser, f"//*[@id='element_mode']//*[@role='option' and normalize-space()='{value}']")
    option.click()
    wait_for(f"Mode = {value}", lambda: mode_value(browser) == value, timeout=5)


def switch_on(browser: WebDriver, name: str) -> None:
    """Click the switch of a boolean param (its visible label), and wait until it is on."""
    (box,) = _inputs(browser, name)
    assert box.get_property("checked") is False, f"{name} should start off"
    (switch,) = browser.find_elements(By.XPATH,
                                      f"//input[@name='element_{name}']/ancestor::label[@data-part='root'][1]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", switch)
    switch.click()
    wait_for(f"{name} switched on", lambda: box.get_property("checked") is True, timeout=5)


def type_reason(browser: WebDriver, text: str) -> None:
    (field,) = _inputs(browser, "override_reason")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.click()
    field.send_keys(text)
    wait_for("override reason typed", lambda: field.get_property("value") == text, timeout=5)


def submit_button(browser: WebDriver) -> WebElement:
    button = wait_css(browser, SUBMIT)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    return button


def run_ids(server: AirflowServer, dag_id: str) -> set[str]:
    return {r["dag_run_id"] for r in server.dag_runs(dag_id)}


def wait_new_run(server: AirflowServer, dag_id: str, before: set[str], timeout: float = 20) -> dict[str, Any]:
    """The one run of ``dag_id`` created since ``before`` was taken (polled through REST)."""
    deadline = time.monotonic() + timeout
    while True:
        new = [r for r in server.dag_runs(dag_id) if r["dag_run_id"] not in before]
        if new:
            assert len(new) == 1, f"one click, one run: {new}"
            return new[0]
        assert time.monotonic() < deadline, f"no new run of {dag_id} within {timeout} s"
        time.sleep(0.2)


def trigger_by_rest(server: AirflowServer, dag_id: str, conf: dict[str, Any]) -> tuple[int, Any]:
    # REST v2 requires logical_date in the body; null = a manual run without one.
    return server.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})


# --------------------------------------------------------------------------- the form


@pytest.mark.parametrize("dag_id", [FULL, INCREMENTAL])
def test_trigger_dialog_shows_the_four_params_with_titles_and_defaults(browser, airflow_ui, dag_id):
    open_trigger_form(browser, airflow_ui, dag_id)
    assert {name: field_label(browser, name) for name in TITLES} == TITLES
    assert "write nothing" in field_help(browser, "dry_run")
    assert "required with Override safety gates" in field_help(browser, "override_reason")
    assert mode_value(browser) == dag_id.removeprefix("profile_sync_")
    assert [b.get_property("checked") for b in (*_inputs(browser, "dry_run"),
                                                *_inputs(browser, "override_gates"))] == [False, False]
    assert _inputs(browser, "override_reason")[0].get_property("value") == ""


def test_form_values_become_the_run_conf(browser, airflow_ui):
    """Incremental DAG switched to a full, dry, gate-overriding run: the run carries exactly that."""
    reason = f"contractors offboarded (CHG-{uuid.uuid4().hex[:8]})"
    before = run_ids(airflow_ui, INCREMENTAL)
    open_trigger_form(browser, airflow_ui, INCREMENTAL)
    choose_mode(browser, "full")
    switch_on(browser, "dry_run")
    switch_on(browser, "override_gates")
    type_reason(browser, reason)
    button = submit_button(browser)
    assert button.is_enabled()
    button.click()

    run = wait_new_run(airflow_ui, INCREMENTAL, before)
    assert run["conf"] == {"mode": "full", "dry_run": True, "override_gates": True, "override_reason": reason}
    assert run["run_type"] == "manual"
    assert run["state"] == "queued"  # no scheduler in this session
    assert run["triggering_user_name"] == "Anonymous"  # simple auth manager, all admins
    wait_for("the trigger dialog to close", lambda: not browser.find_elements(By.CSS_SELECTOR, DIALOG), timeout=10)


@pytest.mark.parametrize("dag_id", [FULL, INCREMENTAL])
def test_the_default_form_triggers(browser, airflow_ui, dag_id):
    """Regression: with override_reason = Param("", type="string") this button stayed disabled."""
    before = run_ids(airflow_ui, dag_id)
    open_trigger_form(browser, airflow_ui, dag_id)
    button = submit_button(browser)
    wait_for("Trigger enabled with the default params", button.is_enabled, timeout=5)
    button.click()

    run = wait_new_run(airflow_ui, dag_id, before)
    kind = dag_id.removeprefix("profile_sync_")
    assert run["conf"] == {"mode": kind, "dry_run": False, "override_gates": False, "override_reason": None}


def test_the_form_shows_the_refusal_of_an_invalid_mode(browser, airflow_ui):
    """Mode cleared (null is not one of full/incremental): Airflow refuses the trigger, the
    dialog stays open with the validation error naming the param, and no run is created."""
    before = run_ids(airflow_ui, FULL)
    open_trigger_form(browser, airflow_ui, FULL)
    wait_css(browser, f'{DIALOG} #element_mode button[aria-label="Clear selected options"]').click()
    wait_for("Mode cleared", lambda: not mode_value(browser), timeout=5)
    submit_button(browser).click()

    alert = wait_css(browser, f'{DIALOG} [data-testid="error-alert"]', timeout=15)
    assert "400 Bad Request" in alert.text
    assert "Invalid input for param mode: None is not one of ['full', 'incremental']" in alert.text
    assert browser.find_elements(By.CSS_SELECTOR, PARAMS_FORM), "the dialog stays open for a correction"
    assert run_ids(airflow_ui, FULL) == before


# --------------------------------------------------------------------------- REST validation


@pytest.mark.parametrize(("conf", "param", "says"), [
    ({"mode": "partial"}, "mode", "'partial' is not one of ['full', 'incremental']"),
    ({"dry_run": "yes"}, "dry_run", "'yes' is not of type 'boolean'"),
    ({"override_reason": 42}, "override_reason", "42 is not of type 'null', 'string'"),
], ids=["mode", "dry_run", "override_reason"])
def test_rest_trigger_refuses_an_invalid_param(airflow_ui, conf, param, says):
    before = run_ids(airflow_ui, FULL)
    status, body = trigger_by_rest(airflow_ui, FULL, conf)
    assert status == 400, body
    assert f"Invalid input for param {param}:" in body["detail"]
    assert says in body["detail"]
    assert run_ids(airflow_ui, FULL) == before


def test_rest_trigger_accepts_a_valid_conf(airflow_ui):
    """The control for the refusals above: the same call with valid values creates the run."""
    conf = {"mode": "full", "dry_run": True, "override_gates": True, "override_reason": "REST check"}
    status, body = trigger_by_rest(airflow_ui, INCREMENTAL, conf)
    assert status == 200, body
    (run,) = [r for r in airflow_ui.dag_runs(INCREMENTAL) if r["dag_run_id"] == body["dag_run_id"]]
    assert run["conf"] == conf
    assert run["logical_date"] is None
