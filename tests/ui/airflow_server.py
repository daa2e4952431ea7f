"""A throwaway Airflow 3 (API server + DAG processor, optionally a scheduler) with this project's DAGs.

Its own temp ``AIRFLOW_HOME`` (SQLite metadata DB, ``airflow db migrate``, the pools of
``airflow_settings.yaml``), the project's ``dags/`` and ``plugins/``, a Profile Sync configuration
reading an LDIF directory in the same temp dir, ``airflow dag-processor`` to serialize the DAGs and
``airflow api-server`` on a free 127.0.0.1 port.

- ``users=None``: the simple auth manager with everybody admin (the UI records the user as
  "Anonymous"); ``users={"admin": "ADMIN", "viewer": "VIEWER", "nobody": ""}``: those users with those
  roles (an empty role may do nothing), random passwords in a passwords file of the temp home, login
  through the UI's form or ``POST /auth/token``.
- ``scheduler=True``: ``airflow scheduler`` with the LocalExecutor too, so triggered runs run (tasks
  talk to this API server's execution API).

``close()`` stops every process by PID (process group: SIGTERM, then SIGKILL) and removes the temp dir.
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

import yaml

from tests.helpers.directory import USERS, FakeDirectory, team
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
ANONYMOUS = None


class AirflowServer:
    """``AirflowServer(...).start()`` → UI and REST API at ``.url``; ``close()`` always."""

    def __init__(self, *, directory: FakeDirectory | None = None, users: dict[str, str] | None = None,
                 scheduler: bool = False, config: dict[str, Any] | None = None,
                 start_timeout: float = 180.0) -> None:
        self.start_timeout = start_timeout
        self.home = make_temp_dir("airflow-ui")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.users = users
        self.passwords = {name: secrets.token_urlsafe(12) for name in users or {}}
        self.with_scheduler = scheduler
        self.processes: dict[str, ServerProcess] = {}
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        self.directory = directory if directory is not None else team(5)
        self.directory.write(self.ldif)
        self.config_path = self._write_config(config or {})
        self.env = self._environment()
        self._tokens: dict[str, str] = {}

    @property
    def ldif(self) -> Path:
        return self.home / "directory.ldif"

    def _write_config(self, extra: dict[str, Any]) -> Path:
        config = {
            "state_store": {"url": f"file://{self.home / 'state'}"},
            "profile_store": {"url": f"sqlite:///{self.home / 'profiles.db'}"},
            "directories": [{"name": "contoso", "type": "ldif", "path": str(self.ldif), "containers": [USERS]}],
            "lease": {"poke_seconds": 1, "wait_seconds": 30},
            **extra,
        }
        path = self.home / "profile_sync.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # The scheduler's "Received executor event" lines: tests wait for them (executor_event_drained).
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow.jobs.scheduler_job_runner=INFO",
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
            "PROFILE_SYNC_CONFIG": str(self.config_path),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]),
        })
        if self.users is None:
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
        else:
            passwords = self.home / "passwords.json"
            passwords.write_text(json.dumps(self.passwords))
            passwords.chmod(0o600)
            env.update({
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in self.users.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            })
        if self.with_scheduler:
            env.update({
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
            })
        return env

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AirflowServer:
        run([self.airflow, "db", "migrate"], timeout=300, env=self.env, what="airflow db migrate", cwd=self.home)
        run([sys.executable, "-m", "profile_sync_airflow.settings_loader", str(ROOT / "airflow_settings.yaml")],
            timeout=120, env=self.env, what="pools from airflow_settings.yaml", cwd=self.home)
        commands = {"dag-processor": [self.airflow, "dag-processor"],
                    "api-server": [self.airflow, "api-server", "--host", LOOPBACK, "--port", str(self.port),
                                   "--workers", "1"]}
        if self.with_scheduler:
            commands["scheduler"] = [self.airflow, "scheduler"]
        for name, args in commands.items():
            self.processes[name] = ServerProcess(args, env=self.env, cwd=self.home, log_path=self.home / f"{name}.log")
        try:
            wait_until(self._healthy, self.start_timeout, f"Airflow API server health on {self.url}",
                       interval=0.25, alive=self._all_alive)
            wait_until(self._dags_serialized, self.start_timeout, f"DAGs {DAG_IDS} serialized",
                       interval=0.25, alive=self._all_alive)
        except ServerError as exc:
            raise ServerError(f"{exc}\n{self.logs()}") from None
        return self

    def logs(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {name} log:\n{p.log_tail(chars)}" for name, p in self.processes.items())

    def executor_event_drained(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> bool:
        """Whether the scheduler has taken the executor's report of that attempt's process ending.

        A task parked for input (``awaiting_input``) ends its process; the executor reports "success" for
        it and the scheduler drains that report some seconds later. Resumed before that (an answer within
        those seconds), the attempt is running when the stale report arrives, and the scheduler fails it
        as "killed externally" (apache/airflow#72716, open for 3.3). Tests answer after this is True."""
        log = self.home / "scheduler.log"
        if not log.exists():
            return False
        key = f"dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', try_number={try_number},"
        return any("Received executor event with state" in line and key in line
                   for line in log.read_text(errors="replace").splitlines())

    def task_log(self, dag_id: str, run_id: str, task_id: str, chars: int = 4000) -> str:
        """The end of each attempt's log of one task instance (for a failing test's message)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        files = sorted(folder.glob("attempt=*.log")) if folder.is_dir() else []
        return "\n".join(f"--- {f.name}:\n{f.read_text(errors='replace')[-chars:]}" for f in files) or \
            f"(no log under {folder})"

    def _all_alive(self) -> bool:
        return all(p.alive() for p in self.processes.values())

    def _healthy(self) -> bool:
        status, body = self.api("GET", "/api/v2/monitor/health", timeout=2, user=ANONYMOUS)
        return status == 200 and body["metadatabase"]["status"] == "healthy"

    def _dags_serialized(self) -> bool:
        status, errors = self.api("GET", "/api/v2/importErrors", timeout=5)
        if status == 200 and errors["total_entries"]:
            raise ServerError(f"DAG import errors: {errors['import_errors']}")
        return all(self.api("GET", f"/api/v2/dags/{dag_id}/details", timeout=5)[0] == 200 for dag_id in DAG_IDS)

    def close(self) -> None:
        """Stop every process by PID (its process group), then remove the temp home."""
        try:
            for name in ("scheduler", "api-server", "dag-processor"):
                process = self.processes.get(name)
                if process is not None:
                    try:
                        stop_process_group(process, timeout=15)
                    except ServerError:
                        pass  # keep stopping the others; the group got SIGKILL
        finally:
            remove_tree(self.home)

    # ------------------------------------------------------------------ auth and REST

    @property
    def admin(self) -> str | None:
        """The user the REST helpers act as by default (None in all-admins mode: no token needed)."""
        if self.users is None:
            return None
        return next(u for u, r in self.users.items() if r.upper() == "ADMIN")

    def token(self, user: str) -> str:
        """A JWT for ``user`` from ``POST /auth/token`` (cached)."""
        if user not in self._tokens:
            status, body = self.request("POST", "/auth/token", {"username": user, "password": self.passwords[user]},
                                        token=None)
            if status not in (200, 201):
                raise AssertionError(f"POST /auth/token for {user}: HTTP {status}: {body}")
            self._tokens[user] = body["access_token"]
        return self._tokens[user]

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                timeout: float = 15, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """``(HTTP status, decoded JSON or text)``; error statuses are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test server
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 15,
            user: str | None = "admin") -> tuple[int, Any]:
        """A REST call as ``user`` (the admin by default; ``ANONYMOUS``: no credentials)."""
        who = self.admin if user == "admin" else user
        return self.request(method, path, body, token=self.token(who) if who else None, timeout=timeout)

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")
        if status != 200:
            raise AssertionError(f"GET dagRuns of {dag_id}: HTTP {status}: {body}")
        return body["dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        from urllib.parse import quote

        status, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
                                       "?limit=100")
        if status != 200:
            raise AssertionError(f"GET taskInstances of {run_id}: HTTP {status}: {body}")
        return {t["task_id"]: t["state"] for t in body["task_instances"] if t.get("map_index", -1) in (-1, 0)}
