"""Browser tests: a throwaway Airflow API server and headless Chromium, once per session.

Without ``PROFILE_SYNC_REQUIRE_SERVERS=1`` a missing Chromium/chromedriver, or an Airflow
that does not start, skips these tests (the reason names the package); with it (``make
test``, CI) that is an error — the convention of tests/servers/fixtures.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.fixtures import _server_or_skip, serve
from tests.ui.airflow_server import AirflowServer
from tests.ui.browser import Browser, Chromedriver, find_chromium


def _chromedriver() -> Chromedriver:
    find_chromium()  # before Airflow starts: a missing browser skips/fails at once
    return Chromedriver()  # started (it closes itself when it does not come up)


@pytest.fixture(scope="session")
def chromedriver() -> Iterator[Chromedriver]:
    with serve("Chromium + chromedriver", _chromedriver, prepare=lambda driver: None) as driver:
        yield driver


@pytest.fixture(scope="session")
def airflow_ui() -> Iterator[AirflowServer]:
    """A running Airflow API server (UI + REST v2) with the project's DAGs serialized."""
    with serve("Airflow API server", AirflowServer) as server:
        yield server


@pytest.fixture(scope="session")
def browser(chromedriver: Chromedriver) -> Iterator[Browser]:
    """One headless Chromium session; each test navigates to a fresh page."""
    with _server_or_skip("Chromium + chromedriver"):
        session = chromedriver.new_session()
    try:
        yield session
    finally:
        session.quit()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, save a screenshot and say where (for CI logs)."""
    report = yield
    if report.when == "call" and report.failed and "browser" in getattr(item, "funcargs", {}):
        shots = Path(tempfile.gettempdir()) / "profile-sync-ui-screenshots"
        shots.mkdir(exist_ok=True)
        try:
            path = item.funcargs["browser"].screenshot(shots / f"{item.name}.png")
            report.sections.append(("ui screenshot", str(path)))
        except Exception as exc:  # noqa: BLE001 - the test's own failure is what matters
            report.sections.append(("ui screenshot", f"not taken: {exc!r}"))
    return report
