"""A minimal W3C WebDriver client over the standard library, driving headless Chromium.

``Chromedriver`` starts ``/usr/bin/chromedriver --port=<free port>`` as a subprocess (its own
process group, stopped by PID); ``Browser`` is one WebDriver session on it. Only what the UI
tests need: navigate, find elements (CSS / XPath), click, type, read attributes, run a
script, screenshots. Every request has a timeout and every wait a deadline. Loopback only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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

__all__ = ["Browser", "Chromedriver", "Element", "WebDriverError", "find_chromium", "stop_process_group"]

T = TypeVar("T")

# The W3C key for element references in requests and responses.
_ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(ServerError):
    """A WebDriver command failed; ``error`` is the W3C error code (``no such element``, ...)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


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
        return bool(_request("GET", f"{self.url}/status", timeout=2)["value"].get("ready"))

    def new_session(self, *, width: int = 1400, height: int = 1000) -> Browser:
        """A headless Chromium session with a fresh temp profile."""
        profile = make_temp_dir("chromium-profile", self.workdir)
        args = ["--headless=new", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--proxy-server=direct://", "--proxy-bypass-list=*", "--lang=en-US",
                "--disable-breakpad", "--disable-crash-reporter"]
        # (chrome_crashpad_handler runs in a session of its own, outside chromedriver's process
        # group; it exits with the browser it serves, also when that browser is SIGKILLed.)
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 15_000, "implicit": 0},
            "goog:chromeOptions": {"binary": self.chromium, "args": args},
        }}}
        value = _request("POST", f"{self.url}/session", caps, timeout=60)["value"]
        return Browser(self.url, value["sessionId"], profile)

    def close(self) -> None:
        """Stop chromedriver by its PID (process group: the browsers it started go too)."""
        try:
            stop_process_group(self.process)
        finally:
            remove_tree(self.workdir)


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


def _request(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback chromedriver
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            value = json.loads(exc.read()).get("value", {})
        except (ValueError, AttributeError):
            value = {}
        raise WebDriverError(value.get("error", f"HTTP {exc.code}"),
                             str(value.get("message", "")).splitlines()[0] if value.get("message") else "") from None


class Element:
    """A reference to one DOM element of a session."""

    def __init__(self, browser: Browser, element_id: str) -> None:
        self.browser = browser
        self.id = element_id

    def _cmd(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.browser._cmd(method, f"/element/{self.id}{path}", body)

    def click(self) -> None:
        self._cmd("POST", "/click")

    def clear(self) -> None:
        self._cmd("POST", "/clear")

    def send_keys(self, text: str) -> None:
        self._cmd("POST", "/value", {"text": text})

    @property
    def text(self) -> str:
        return self._cmd("GET", "/text")

    def attribute(self, name: str) -> str | None:
        return self._cmd("GET", f"/attribute/{name}")

    def prop(self, name: str) -> Any:
        return self._cmd("GET", f"/property/{name}")

    def enabled(self) -> bool:
        return bool(self._cmd("GET", "/enabled"))

    def displayed(self) -> bool:
        return bool(self._cmd("GET", "/displayed"))

    def find(self, css: str) -> Element:
        return self.browser._element(self._cmd("POST", "/element", {"using": "css selector", "value": css}))

    def find_all(self, css: str) -> list[Element]:
        return [self.browser._element(v) for v in
                self._cmd("POST", "/elements", {"using": "css selector", "value": css})]


class Browser:
    """One WebDriver session: ``quit()`` ends it (chromedriver stops the browser process)."""

    def __init__(self, driver_url: str, session_id: str, profile: Path) -> None:
        self.base = f"{driver_url}/session/{session_id}"
        self.profile = profile

    def _cmd(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 45) -> Any:
        return _request(method, f"{self.base}{path}", body, timeout=timeout).get("value")

    def _element(self, value: dict[str, str]) -> Element:
        return Element(self, value[_ELEMENT_KEY])

    def get(self, url: str) -> None:
        self._cmd("POST", "/url", {"url": url})

    @property
    def current_url(self) -> str:
        return self._cmd("GET", "/url")

    @property
    def page_source(self) -> str:
        return self._cmd("GET", "/source")

    def execute(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; ``arguments`` holds ``args``; Elements are passed as references)."""
        wire = [{_ELEMENT_KEY: a.id} if isinstance(a, Element) else a for a in args]
        value = self._cmd("POST", "/execute/sync", {"script": script, "args": wire})
        if isinstance(value, dict) and _ELEMENT_KEY in value:
            return self._element(value)
        return value

    def find_all(self, css: str) -> list[Element]:
        return [self._element(v) for v in self._cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def find_all_xpath(self, xpath: str) -> list[Element]:
        return [self._element(v) for v in self._cmd("POST", "/elements", {"using": "xpath", "value": xpath})]

    def wait_for(self, what: str, predicate: Callable[[], T], timeout: float = 20, interval: float = 0.1) -> T:
        """Poll ``predicate`` until truthy (exceptions count as "not yet"); bounded by ``timeout``."""
        return wait_until(predicate, timeout, what, interval=interval)

    def wait_css(self, css: str, timeout: float = 20, displayed: bool = True) -> Element:
        """The first element matching ``css`` (displayed, by default), waited for."""
        def first() -> Element | None:
            return next((e for e in self.find_all(css) if not displayed or e.displayed()), None)
        return self.wait_for(f"element {css!r}", first, timeout)

    def wait_xpath(self, xpath: str, timeout: float = 20, displayed: bool = True) -> Element:
        def first() -> Element | None:
            return next((e for e in self.find_all_xpath(xpath) if not displayed or e.displayed()), None)
        return self.wait_for(f"element {xpath!r}", first, timeout)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._cmd("GET", "/screenshot")))
        return path

    def quit(self) -> None:
        try:
            self._cmd("DELETE", "", timeout=20)
        except (WebDriverError, OSError):
            pass  # chromedriver's process group is stopped afterwards anyway
        remove_tree(self.profile)

