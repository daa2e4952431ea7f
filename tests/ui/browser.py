"""Headless Chromium driven by selenium (PyPI) through Debian's chromedriver.

``Chromedriver`` starts ``/usr/bin/chromedriver --port=<free port>`` in its own process group (stopped
by PID, with every browser it started); ``new_browser()`` opens a selenium ``Remote`` session on it with
a fresh temp profile. The small ``wait_*`` helpers bound every wait. Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.servers._util import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    remove_tree,
    require_binary,
    wait_until,
)

__all__ = ["By", "Chromedriver", "WebDriver", "WebElement", "find_chromium", "stop_process_group",
           "wait_css", "wait_for", "wait_xpath"]

T = TypeVar("T")


def find_chromium() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths, or MissingBinaryError naming the Debian package."""
    return require_binary("chromium", "chromium"), require_binary("chromedriver", "chromium-driver")


class Chromedriver:
    """A chromedriver process on a free loopback port; ``close()`` stops it (and its browsers)."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.chromium, driver = find_chromium()
        self.workdir = workdir or make_temp_dir("chromedriver")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process = ServerProcess(
            [driver, f"--port={self.port}", f"--allowed-ips={LOOPBACK}", "--log-level=WARNING"],
            log_path=self.workdir / "chromedriver.log",
            # Chromium's crash database, caches and scratch dirs: all inside the temp dir.
            env={**os.environ, "HOME": str(self.workdir), "XDG_CONFIG_HOME": str(self.workdir / "config"),
                 "XDG_CACHE_HOME": str(self.workdir / "cache"), "TMPDIR": str(self.workdir)},
        )
        try:
            wait_until(self._ready, 20, "chromedriver /status", interval=0.1, alive=self.process.alive)
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/status", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(json.loads(resp.read())["value"].get("ready"))

    def new_browser(self, *, width: int = 1400, height: int = 1000) -> WebDriver:
        """A headless Chromium session (selenium ``Remote``) with a fresh temp profile."""
        profile = make_temp_dir("chromium-profile", self.workdir)
        options = webdriver.ChromeOptions()
        options.binary_location = self.chromium
        for arg in ("--headless=new", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                    "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking", "--disable-sync",
                    "--proxy-server=direct://", "--proxy-bypass-list=*", "--lang=en-US",
                    "--disable-breakpad", "--disable-crash-reporter"):
            options.add_argument(arg)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        options.page_load_strategy = "normal"
        driver = webdriver.Remote(command_executor=self.url, options=options)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(15)
        driver.profile_dir = profile  # type: ignore[attr-defined]  (removed by quit())
        return driver

    def close(self) -> None:
        """Stop chromedriver by its PID (process group: the browsers it started go too)."""
        try:
            stop_process_group(self.process)
        finally:
            remove_tree(self.workdir)


def quit_browser(driver: WebDriver) -> None:
    with contextlib.suppress(Exception):  # chromedriver's process group is stopped afterwards anyway
        driver.quit()
    remove_tree(getattr(driver, "profile_dir", None))


def _live_group_members(pgid: int) -> list[int]:
    """PIDs in process group ``pgid`` that are still running (zombies excluded), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def stop_process_group(process: ServerProcess, timeout: float = 10) -> None:
    """Stop ``process`` (SIGTERM to its group, then SIGKILL), then make sure nothing of its group
    outlives it: a leader can exit before its children (browser zygotes, API server workers)."""
    pgid = process.pid
    process.stop(timeout=timeout)
    try:
        wait_until(lambda: not _live_group_members(pgid), timeout, f"process group {pgid} to exit", interval=0.1)
    except ServerError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        wait_until(lambda: not _live_group_members(pgid), 10, f"process group {pgid} to die on SIGKILL")


# --------------------------------------------------------------------------- bounded waits


def wait_for(what: str, predicate: Callable[[], T], timeout: float = 20, interval: float = 0.1) -> T:
    """Poll ``predicate`` until truthy (exceptions count as "not yet"); bounded by ``timeout``."""
    return wait_until(predicate, timeout, what, interval=interval)


def wait_css(driver: WebDriver | WebElement, css: str, timeout: float = 20, displayed: bool = True) -> WebElement:
    """The first element matching ``css`` (displayed, by default), waited for."""
    def first() -> WebElement | None:
        return next((e for e in driver.find_elements(By.CSS_SELECTOR, css) if not displayed or e.is_displayed()), None)
    return wait_for(f"element {css!r}", first, timeout)


def wait_xpath(driver: WebDriver, xpath: str, timeout: float = 20, displayed: bool = True) -> WebElement:
    def first() -> WebElement | None:
        return next((e for e in driver.find_elements(By.XPATH, xpath) if not displayed or e.is_displayed()), None)
    return wait_for(f"element {xpath!r}", first, timeout)
