"""Browser tests: throwaway Airflow servers and headless Chromium (selenium + Debian's chromedriver).

- ``airflow_ui``: API server + DAG processor, everybody admin, no scheduler (the trigger-form tests:
  triggered runs stay queued);
- ``tests/ui/test_page.py`` starts its own with a scheduler and real users (admin, viewer, nobody).

Without ``PROFILE_SYNC_REQUIRE_SERVERS=1`` a missing Chromium/chromedriver, or an Airflow that does not
start, skips these tests (the reason names the package); with it (``make test``, CI) that is an error —
the convention of tests/servers/fixtures.py.

Screenshots land in ``$PROFILE_SYNC_SCREENSHOTS`` (default ``.local/screenshots/``, outside git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.fixtures import _server_or_skip, serve
from tests.ui.airflow_server import AirflowServer
from tests.ui.browser import Chromedriver, WebDriver, find_chromium, quit_browser

ROOT = Path(__file__).resolve().parents[2]


def screenshot_dir() -> Path:
    """Where the UI tests save their screenshots (created; never inside the git tree's tracked files)."""
    folder = Path(os.environ.get("PROFILE_SYNC_SCREENSHOTS") or ROOT / ".local" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _chromedriver() -> Chromedriver:
    find_chromium()  # before Airflow starts: a missing browser skips/fails at once
    return Chromedriver()  # started (it closes itself when it does not come up)


@pytest.fixture(scope="session")
def chromedriver() -> Iterator[Chromedriver]:
    with serve("Chromium + chromedriver", _chromedriver, prepare=lambda driver: None) as driver:
        yield driver


@pytest.fixture(scope="session")
def airflow_ui() -> Iterator[AirflowServer]:
    """A running Airflow API server (UI + REST v2) with the project's DAGs serialized; no scheduler."""
    with serve("Airflow API server", AirflowServer) as server:
        yield server


@pytest.fixture(scope="session")
def browser(chromedriver: Chromedriver) -> Iterator[WebDriver]:
    """One headless Chromium session; each test navigates to a fresh page."""
    with _server_or_skip("Chromium + chromedriver"):
        session = chromedriver.new_browser()
    try:
        yield session
    finally:
        quit_browser(session)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, save a screenshot and say where (for CI logs)."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    driver = funcargs.get("browser") or funcargs.get("admin_browser")
    if report.when == "call" and report.failed and driver is not None:
        try:
            path = screenshot_dir() / f"FAILED-{item.name}.png"
            driver.save_screenshot(str(path))
            report.sections.append(("ui screenshot", str(path)))
        except Exception as exc:  # noqa: BLE001 - the test's own failure is what matters
            report.sections.append(("ui screenshot", f"not taken: {exc!r}"))
    return report
