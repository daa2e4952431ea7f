"""A throwaway Airflow 3 API server (UI + REST) with this project's DAGs, for browser tests.

Its own temp ``AIRFLOW_HOME`` (SQLite metadata DB, ``airflow db migrate``), the project's
``dags/`` and ``plugins/``, a Profile Sync configuration reading a small LDIF sample in the
same temp dir, the simple auth manager with everybody admin (the UI records the user as
"Anonymous"), ``airflow dag-processor`` to serialize the DAGs and ``airflow api-server`` on a
free 127.0.0.1 port. No scheduler: triggered runs stay queued, which is all the form tests
look at. ``close()`` stops both processes by PID (process group: SIGTERM, then SIGKILL) and
removes the temp dir.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers.config import write_ldif_config
from tests.helpers.directory import team
from tests.servers._util import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    remove_tree,
    run,
    wait_until,
)
from tests.ui.browser import stop_process_group

__all__ = ["AirflowServer"]

ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = ("profile_sync_full", "profile_sync_incremental")


class AirflowServer:
    """``AirflowServer().start()`` → UI and REST API at ``.url``; ``close()`` always."""

    def __init__(self, start_timeout: float = 120.0) -> None:
        self.start_timeout = start_timeout
        self.home = make_temp_dir("airflow-ui")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.api_server: ServerProcess | None = None
        self.dag_processor: ServerProcess | None = None
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        team(5).write(self.home / "directory.ldif")
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.url,
            # Generated here, never printed; 64 bytes keeps PyJWT from warning about short keys.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
            # Parse once at start-up; the DAG files do not change during a test session.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "PROFILE_SYNC_HOME": str(ROOT),
            "PROFILE_SYNC_CONFIG": str(write_ldif_config(self.home)),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]),
        })
        return env

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AirflowServer:
        run([self.airflow, "db", "migrate"], timeout=300, env=self.env, what="airflow db migrate", cwd=self.home)
        self.dag_processor = ServerProcess([self.airflow, "dag-processor"], env=self.env, cwd=self.home,
                                           log_path=self.home / "dag-processor.log")
        self.api_server = ServerProcess([self.airflow, "api-server", "--host", LOOPBACK, "--port", str(self.port),
                                         "--workers", "1"], env=self.env, cwd=self.home,
                                        log_path=self.home / "api-server.log")
        try:
            wait_until(self._healthy, self.start_timeout, f"Airflow API server health on {self.url}",
                       interval=0.25, alive=self._both_alive)
            wait_until(self._dags_serialized, self.start_timeout, f"DAGs {DAG_IDS} serialized",
                       interval=0.25, alive=self._both_alive)
        except ServerError as exc:
            raise ServerError(f"{exc}\n--- api-server log:\n{self.api_server.log_tail(1500)}"
                              f"\n--- dag-processor log:\n{self.dag_processor.log_tail(1500)}") from None
        return self

    def _both_alive(self) -> bool:
        return all(p is not None and p.alive() for p in (self.api_server, self.dag_processor))

    def _healthy(self) -> bool:
        status, body = self.api("GET", "/api/v2/monitor/health", timeout=2)
        return status == 200 and body["metadatabase"]["status"] == "healthy"

    def _dags_serialized(self) -> bool:
        status, errors = self.api("GET", "/api/v2/importErrors", timeout=5)
        if status == 200 and errors["total_entries"]:
            raise ServerError(f"DAG import errors: {errors['import_errors']}")
        return all(self.api("GET", f"/api/v2/dags/{dag_id}/details", timeout=5)[0] == 200 for dag_id in DAG_IDS)

    def close(self) -> None:
        """Stop both processes by PID (their process groups), then remove the temp home."""
        try:
            if self.api_server is not None:
                stop_process_group(self.api_server, timeout=15)
        finally:
            try:
                if self.dag_processor is not None:
                    stop_process_group(self.dag_processor, timeout=15)
            finally:
                remove_tree(self.home)

    # ------------------------------------------------------------------ REST

    def api(self, method: str, path: str, body: dict[str, Any] | None = None,
            timeout: float = 15) -> tuple[int, Any]:
        """``(HTTP status, decoded JSON)`` of a REST call; error statuses are returned, not raised.

        The simple auth manager in all-admins mode needs no token."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test server
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")
        if status != 200:
            raise AssertionError(f"GET dagRuns of {dag_id}: HTTP {status}: {body}")
        return body["dag_runs"]
