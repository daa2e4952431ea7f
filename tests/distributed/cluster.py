"""A real distributed Airflow on this machine: CeleryExecutor, Redis broker, PostgreSQL metadata database
and Celery result backend, scheduler, api-server, dag-processor and Celery workers that share nothing
but the servers.

Layout (one private temp dir, removed by :meth:`AirflowCluster.close`)::

    control/    AIRFLOW_HOME of the scheduler, api-server and dag-processor (they run the checkout's
                dags/ and plugins/), their configuration and logs
    worker-a/   one Celery worker: its own HOME, TMPDIR, working directory, AIRFLOW_HOME, a private
    worker-b/   copy of the project (dags/, include/, plugins/) and of the Profile Sync configuration

Workers get no metadata-database URL and no JWT secret: like workers on other machines they reach
Airflow only through the broker, the Celery result backend and the execution API of the api-server
(``[core] execution_api_server_url``), which also serves them the Connections. Each reports its own
host name on the task instances it runs (``[core] hostname_callable``), so a test can tell them apart.

Every process is started in its own session and process group with ``PR_SET_PDEATHSIG`` (see
tests/servers/_util.py) and stopped by its PID. Airflow's task supervisor puts each task in a process
group of its own, so stopping a component also kills every process left in its *session*
(:func:`session_members`): :meth:`AirflowCluster.kill_worker` is a machine dying, task processes included.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.servers import PostgresServer, RedisServer
from tests.servers._util import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    pid_alive,
    remove_tree,
    run,
    wait_until,
)

__all__ = ["AirflowCluster", "Worker", "reap_orphans", "session_members"]

ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = ("profile_sync_full", "profile_sync_incremental")
PROJECT_PARTS = ("dags", "include", "plugins", "airflow_settings.yaml")
FINISHED = {"success", "failed"}

# The worker's host name, as Airflow records it on task instances: ``[core] hostname_callable`` names
# this module's function (written into each worker's private site directory).
_IDENTITY_MODULE = "psync_worker_identity"
_IDENTITY_SOURCE = '''"""This Celery worker's host name (tests/distributed: several workers share one machine)."""
import os


def hostname() -> str:
    return os.environ["PSYNC_WORKER_HOSTNAME"]
'''


def session_members(sid: int) -> list[int]:
    """PIDs of live processes (zombies excluded) in session ``sid``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(stat.parent.name))
    return members


def reap_orphans() -> list[int]:
    """SIGKILL processes left behind by a cluster whose test process died without stopping it (a killed
    pytest: ``PR_SET_PDEATHSIG`` reaches only each component's first process). They are found by PID: their
    working directory is a ``psync-airflow-celery-<pid>-*`` dir of a test process that no longer runs."""
    pattern = re.compile(rf"^{re.escape(tempfile.gettempdir())}/psync-airflow-celery-(\d+)-")
    killed = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            match = pattern.match(os.readlink(cwd))
        except OSError:
            continue  # exited meanwhile, or not ours to read
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(cwd.parent.name), signal.SIGKILL)
                killed.append(int(cwd.parent.name))
    return killed


def _kill_session(sid: int, timeout: float = 10) -> None:
    """SIGKILL every process of session ``sid`` (found by PID in /proc) until none is left (bounded)."""
    def gone() -> bool:
        for pid in session_members(sid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return not session_members(sid)

    wait_until(gone, timeout, f"the processes of session {sid} to die", interval=0.1)


@dataclass
class Worker:
    """One Celery worker: ``name`` is its Celery node name and the host name on its task instances."""

    name: str
    root: Path
    env: dict[str, str]
    process: ServerProcess | None = None

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    def task_logs(self) -> list[Path]:
        return sorted((self.airflow_home / "logs").rglob("*.log"))


class AirflowCluster:
    """``AirflowCluster(...).start()``, trigger runs through :meth:`api`, ``close()`` always.

    ``profile_sync_config``: the Profile Sync configuration (a dict, written as YAML for every component).
    ``connections``: Airflow Connections (``conn_id`` → JSON form), stored in the metadata database
    through the REST API. ``heartbeat_timeout``: seconds without a task heartbeat before the scheduler
    fails the task instance (and retries it) — low, so a killed worker is noticed quickly.
    """

    def __init__(
        self,
        *,
        postgres: PostgresServer,
        redis: RedisServer,
        profile_sync_config: Mapping[str, Any],
        connections: Mapping[str, Mapping[str, Any]] = (),
        workers: Iterable[str] = ("worker-a", "worker-b"),
        heartbeat_timeout: int = 20,
        start_timeout: float = 240.0,
    ) -> None:
        self.postgres = postgres
        self.redis = redis
        self.profile_sync_config = dict(profile_sync_config)
        self.connections = {k: dict(v) for k, v in dict(connections).items()}
        self.heartbeat_timeout = heartbeat_timeout
        self.start_timeout = start_timeout
        reap_orphans()
        self.root = make_temp_dir("airflow-celery")
        self.control = self.root / "control"
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        self.api_port = free_port()
        self.url = f"http://{LOOPBACK}:{self.api_port}"
        self._admin_password = secrets.token_urlsafe(16)
        self._token: str | None = None
        self.processes: dict[str, ServerProcess] = {}
        self.timings: dict[str, float] = {}
        self.metadata_db_url = self._database("airflow")
        self.result_backend = "db+" + self._database("celery_results")
        self.control_env = self._control_environment()
        self.workers = {name: self._make_worker(name) for name in workers}

    # ------------------------------------------------------------------ environment

    def _database(self, name: str) -> str:
        pg = self.postgres
        pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg.psql(f'CREATE DATABASE "{name}" OWNER "{pg.user}"')
        return f"postgresql+psycopg2://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{name}"

    def _base_environment(self) -> dict[str, str]:
        """What every component gets: no AIRFLOW_*/PROFILE_SYNC_* of the test process, the shared servers."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "PROFILE_SYNC", "PYTHONPATH", "PSYNC_"))}
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        })
        return env

    def _write_config(self, folder: Path) -> Path:
        path = folder / "profile_sync.yaml"
        path.write_text(yaml.safe_dump(self.profile_sync_config, sort_keys=False))
        return path

    def _control_environment(self) -> dict[str, str]:
        self.control.mkdir()
        (self.control / "passwords.json").write_text(json.dumps({"admin": self._admin_password}))
        env = self._base_environment()
        env.update({
            "HOME": str(self.control),
            "AIRFLOW_HOME": str(self.control / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db_url,
            # Generated here, never printed; 64 bytes keeps PyJWT from warning about short keys.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.control / "passwords.json"),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",  # the next task of a run starts sooner
            # Parse once at start-up; the DAG files do not change during a test session.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "PROFILE_SYNC_HOME": str(ROOT),
            "PROFILE_SYNC_CONFIG": str(self._write_config(self.control)),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]),
        })
        return env

    def _make_worker(self, name: str) -> Worker:
        root = self.root / name
        project, site = root / "project", root / "site"
        for folder in (root / "home", root / "tmp", root / "airflow", project, site):
            folder.mkdir(parents=True)
        for part in PROJECT_PARTS:  # a deployment of its own: nothing read from the checkout
            src = ROOT / part
            if src.is_dir():
                shutil.copytree(src, project / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, project / part)
        (site / f"{_IDENTITY_MODULE}.py").write_text(_IDENTITY_SOURCE)
        env = self._base_environment()
        env.update({
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{_IDENTITY_MODULE}.hostname",
            "PSYNC_WORKER_HOSTNAME": name,
            "PROFILE_SYNC_HOME": str(project),
            "PROFILE_SYNC_CONFIG": str(self._write_config(root)),
            "PYTHONPATH": os.pathsep.join([str(project / "include"), str(project / "plugins"), str(project),
                                           str(site)]),
        })
        return Worker(name=name, root=root, env=env)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AirflowCluster:
        t0 = time.monotonic()
        for worker in self.workers.values():  # workers need no metadata database: start them meanwhile
            self.start_worker(worker.name, wait=False)
        run([self.airflow, "db", "migrate"], timeout=600, env=self.control_env, cwd=self.control,
            what="airflow db migrate")
        self.timings["db_migrate"] = time.monotonic() - t0
        t1 = time.monotonic()
        # The project's pools (airflow_settings.yaml), loaded while the components start; no run is triggered
        # before start() returns.
        loader = self._spawn("settings-loader", [sys.executable, "-m", "profile_sync_airflow.settings_loader",
                                                 str(ROOT / "airflow_settings.yaml")], self.control_env, self.control)
        self._spawn("api-server", [self.airflow, "api-server", "--host", LOOPBACK, "--port", str(self.api_port),
                                   "--workers", "1"], self.control_env, self.control)
        self._spawn("dag-processor", [self.airflow, "dag-processor"], self.control_env, self.control)
        self._spawn("scheduler", [self.airflow, "scheduler"], self.control_env, self.control)
        try:
            wait_until(lambda: not loader.alive(), 300, "airflow_settings.yaml to be loaded", interval=0.2)
            if loader.popen.returncode != 0:
                raise ServerError(f"loading airflow_settings.yaml failed:\n{loader.log_tail()}")
            self.processes.pop("settings-loader").stop()
            wait_until(self._healthy, self.start_timeout, f"Airflow API server and scheduler on {self.url}",
                       interval=0.5, alive=self._all_alive)
            for conn_id, conn in self.connections.items():
                self.put_connection(conn_id, conn)
            wait_until(self._dags_serialized, self.start_timeout, f"DAGs {DAG_IDS} serialized",
                       interval=0.5, alive=self._all_alive)
            for worker in self.workers.values():
                self._wait_worker_ready(worker)
        except ServerError as exc:
            raise ServerError(f"{exc}\n{self.diagnostics()}") from None
        self.timings["components"] = time.monotonic() - t1
        self.timings["start"] = time.monotonic() - t0
        return self

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str], cwd: Path) -> ServerProcess:
        process = ServerProcess(args, env=env, cwd=cwd, log_path=cwd / f"{name}.log")
        self.processes[name] = process
        return process

    def start_worker(self, name: str, *, wait: bool = True) -> Worker:
        """(Re)start worker ``name``: ``airflow celery worker`` in its private directory."""
        worker = self.workers[name]
        worker.process = self._spawn(name, [
            self.airflow, "celery", "worker", "--celery-hostname", name, "--concurrency", "1",
            "--skip-serve-logs", "--pid", str(worker.root / "worker.pid")], worker.env, worker.root)
        if wait:
            self._wait_worker_ready(worker)
        return worker

    def _wait_worker_ready(self, worker: Worker) -> None:
        process = worker.process
        assert process is not None
        wait_until(lambda: f"{worker.name} ready." in process.log_tail(200_000), self.start_timeout,
                   f"Celery worker {worker.name} to be ready", interval=0.5, alive=process.alive)

    def _all_alive(self) -> bool:
        return all(p.alive() for p in self.processes.values())

    def _healthy(self) -> bool:
        status, body = self.api("GET", "/api/v2/monitor/health", timeout=3, auth=False)
        return (status == 200 and body["metadatabase"]["status"] == "healthy"
                and body["scheduler"]["status"] == "healthy")

    def _dags_serialized(self) -> bool:
        status, errors = self.api("GET", "/api/v2/importErrors", timeout=5)
        if status == 200 and errors["total_entries"]:
            raise ServerError(f"DAG import errors: {errors['import_errors']}")
        return all(self.api("GET", f"/api/v2/dags/{dag_id}/details", timeout=5)[0] == 200 for dag_id in DAG_IDS)

    def kill_worker(self, name: str) -> None:
        """The machine of worker ``name`` dies: SIGKILL to its process group, then to every process left in
        its session (task processes have process groups of their own)."""
        worker = self.workers[name]
        if worker.process is None:
            return
        sid = worker.process.pid
        worker.process.kill()
        _kill_session(sid)

    def _stop(self, name: str, process: ServerProcess, timeout: float = 5) -> None:
        sid, t0 = process.pid, time.monotonic()
        try:
            process.stop(timeout=timeout)
        finally:
            _kill_session(sid)
            self.timings[f"stop {name}"] = time.monotonic() - t0

    def close(self) -> None:
        """Stop every component by PID (SIGTERM to all, up to 5 s each, then SIGKILL of what is left in
        their sessions), then remove the temp dir."""
        try:
            running = [(n, p) for n, p in self.processes.items() if p.alive()]
            for _, process in running:  # SIGTERM to all first: they shut down in parallel
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
            errors = []
            for name, process in running:
                try:
                    self._stop(name, process)
                except Exception as exc:  # noqa: BLE001 - stop the others, report at the end
                    errors.append(f"{name}: {exc}")
            for name, process in self.processes.items():
                if not process.alive():
                    with contextlib.suppress(OSError, ServerError):
                        _kill_session(process.pid)
            if os.environ.get("PSYNC_CLUSTER_TIMINGS"):
                print("cluster timings:", {k: round(v, 1) for k, v in self.timings.items()})
            if errors:
                raise ServerError("could not stop: " + "; ".join(errors))
        finally:
            if os.environ.get("PSYNC_KEEP_CLUSTER_DIR"):
                print(f"cluster directory kept: {self.root}")
            else:
                remove_tree(self.root)

    # ------------------------------------------------------------------ REST

    def token(self) -> str:
        """A JWT from the simple auth manager (``POST /auth/token``), fetched once."""
        if self._token is None:
            status, body = self.api("POST", "/auth/token", {"username": "admin", "password": self._admin_password},
                                    auth=False)
            if status not in (200, 201):
                raise ServerError(f"POST /auth/token: HTTP {status}: {body}")
            self._token = body["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float = 30,
            auth: bool = True) -> tuple[int, Any]:
        """``(HTTP status, decoded JSON)`` of a REST call; error statuses are returned, not raised."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test server
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def _ok(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        status, answer = self.api(method, path, body)
        if status >= 300:
            raise AssertionError(f"{method} {path}: HTTP {status}: {answer}")
        return answer

    def put_connection(self, conn_id: str, conn: Mapping[str, Any]) -> None:
        """Create or replace an Airflow Connection in the metadata database (REST)."""
        body = {"connection_id": conn_id, **{k: v for k, v in conn.items() if k != "extra"}}
        if "extra" in conn:
            body["extra"] = json.dumps(conn["extra"])
        self.api("DELETE", f"/api/v2/connections/{urllib.parse.quote(conn_id)}")
        self._ok("POST", "/api/v2/connections", body)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger ``dag_id`` (``POST /api/v2/dags/{dag_id}/dagRuns``); returns the run id."""
        run = self._ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self._ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
                               "?limit=100")
        return body["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (``…/taskInstances/{task_id}[/{map_index}]/tries``)."""
        mapped = f"/{map_index}" if map_index >= 0 else ""
        body = self._ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                               f"{task_id}{mapped}/tries")
        return sorted(body["task_instances"], key=lambda t: t["try_number"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """Poll the run until it is finished (bounded); returns it. Raises with logs if it does not finish."""
        try:
            return wait_until(lambda: (r := self.dag_run(dag_id, run_id))["state"] in FINISHED and r,
                              timeout, f"{dag_id} run {run_id} to finish", interval=1.0)
        except ServerError as exc:
            raise AssertionError(f"{exc}\n{self.describe_run(dag_id, run_id)}\n{self.diagnostics()}") from None

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                      timeout: float = 180) -> dict[str, Any]:
        """Poll until ``task_id`` of the run is in one of ``states`` (bounded); returns the task instance."""
        def reached() -> dict[str, Any] | None:
            run_state = self.dag_run(dag_id, run_id)["state"]
            for ti in self.task_instances(dag_id, run_id):
                if ti["task_id"] == task_id and ti["state"] in states:
                    return ti
            if run_state in FINISHED:
                raise AssertionError(f"run {run_id} finished ({run_state}) before {task_id} was {states}")
            return None

        try:
            return wait_until(reached, timeout, f"{task_id} of {run_id} to be {sorted(states)}", interval=0.2)
        except ServerError as exc:
            raise AssertionError(f"{exc}\n{self.describe_run(dag_id, run_id)}") from None

    # ------------------------------------------------------------------ diagnostics

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """Task instances of a run (state, try, host) and the logs of the failed ones."""
        lines = [f"--- task instances of {dag_id} {run_id}:"]
        try:
            tis = self.task_instances(dag_id, run_id)
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            return f"{lines[0]} unavailable: {exc}"
        for ti in sorted(tis, key=lambda t: (t["start_date"] or "", t["task_id"])):
            lines.append(f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} try {ti['try_number']} "
                         f"on {ti['hostname']}")
        failed = {ti["task_id"] for ti in tis if ti["state"] in ("failed", "up_for_retry", "upstream_failed")}
        for worker in self.workers.values():
            for log in worker.task_logs():
                if any(f"task_id={t}" in str(log) for t in failed):
                    lines.append(f"--- {worker.name}: {log.relative_to(worker.airflow_home)}")
                    lines.append(log.read_text(errors="replace")[-3000:])
        return "\n".join(lines)

    def diagnostics(self, chars: int = 2500) -> str:
        out = []
        for name, process in self.processes.items():
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            out.append(f"--- {name} ({state}), log tail:\n{process.log_tail(chars)}")
        return "\n".join(out)
