"""A synchronization started by a real Airflow scheduler, to measure what Airflow adds to the engine.

The UI tests' throwaway Airflow (``tests/ui/airflow_server.py``: its own home, SQLite metadata DB,
``dag-processor`` + ``api-server``) plus ``airflow scheduler`` (LocalExecutor: every task a fresh
process, as in production), the pools of ``airflow_settings.yaml``, the bench's configuration and
Connections in ``AIRFLOW_CONN_*``. A run is triggered through the REST API and followed to its end.

Overhead = the run's wall time (queued → end) minus the engine's time (the sum of its steps'
``duration_s`` in the run history): scheduling, task start-up, imports, Airflow's task runner. Measured on
the second run after the scheduler started (a production scheduler is already running); the first run's
figure, which also pays the scheduler's start-up, is reported beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tests.servers._util import ServerProcess, run
from tests.ui.airflow_server import AirflowServer
from tests.ui.browser import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
SCHEDULER_IDLE_SLEEP_TIME = "0.25"
"""``[scheduler] scheduler_idle_sleep_time`` (Airflow's default: 1 s), as the README recommends."""


class ScheduledAirflow(AirflowServer):
    """AirflowServer with a scheduler, the project's pools, and the bench's configuration."""

    def __init__(self, config: Path, connections: dict[str, dict[str, Any]], metadata_url: str | None = None
                 ) -> None:
        super().__init__(start_timeout=300)
        if metadata_url:  # PostgreSQL, as in production (the default is the UI tests' SQLite file)
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url
        self.scheduler: ServerProcess | None = None
        self.env.update({
            "PROFILE_SYNC_CONFIG": str(config),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # What the README recommends for a deployment (and `make ui` uses): an idle scheduler loops every
            # 0.25 s instead of 1 s, so the next task of a run is queued sooner.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": SCHEDULER_IDLE_SLEEP_TIME,
        })
        for conn_id, info in connections.items():
            if info.get("uri"):  # a database: Airflow reads the URI form as it is (postgresql+psycopg2://…)
                self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = info["uri"]
                continue
            doc = {"conn_type": "generic", "host": info.get("host"), "login": info.get("login"),
                   "password": info.get("password"), "port": info.get("port"), "extra": info.get("extra") or {}}
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({k: v for k, v in doc.items() if v is not None})

    def start(self) -> ScheduledAirflow:
        super().start()
        run([sys.executable, "-m", "profile_sync_airflow.settings_loader", str(ROOT / "airflow_settings.yaml")],
            timeout=300, env=self.env, what="settings loader", cwd=self.home)
        self.scheduler = ServerProcess([self.airflow, "scheduler"], env=self.env, cwd=self.home,
                                       log_path=self.home / "scheduler.log")
        return self

    def close(self) -> None:
        try:
            if self.scheduler is not None:
                stop_process_group(self.scheduler, timeout=15)
        finally:
            super().close()

    def run_dag(self, dag_id: str, conf: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
        """Unpause, trigger, wait for the end; the run as the REST API shows it."""
        status, body = self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        if status != 200:
            raise RuntimeError(f"unpausing {dag_id}: HTTP {status}: {body}")
        status, run_doc = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        if status not in (200, 201):
            raise RuntimeError(f"triggering {dag_id}: HTTP {status}: {run_doc}")
        run_id = run_doc["dag_run_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, run_doc = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if status == 200 and run_doc["state"] in ("success", "failed"):
                break
            if self.scheduler is not None and not self.scheduler.alive():
                raise RuntimeError(f"the scheduler died:\n{self.scheduler.log_tail(2000)}")
            time.sleep(1)
        else:
            raise RuntimeError(f"{dag_id} run {run_id} did not finish in {timeout:.0f} s")
        if run_doc["state"] != "success":
            raise RuntimeError(f"{dag_id} run {run_id} failed; scheduler log:\n"
                               f"{self.scheduler.log_tail(2000) if self.scheduler else ''}")
        status, tis = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        run_doc["task_instances"] = tis.get("task_instances", []) if status == 200 else []
        return run_doc


def _seconds(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
            ).total_seconds()


def measure(config: Path, connections: dict[str, dict[str, Any]], dag_id: str, conf: dict[str, Any],
            metadata_url: str | None = None, before_each: Callable[[], str] | None = None) -> dict[str, Any]:
    """One scheduled run of ``dag_id``: its wall time, the engine's time, and the difference.

    ``before_each``: called before each of the two runs (the bench changes 1 % of the directory, so the runs
    synchronize a change, as a scheduled incremental run does); what it returns (a description) is reported."""
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext, run_key

    airflow = ScheduledAirflow(config, connections, metadata_url)
    try:
        airflow.start()
        # A production scheduler is already running when a run is triggered; the first run after start-up also
        # waits for the scheduler's and the dag-processor's first loops. So: one run to warm up (reported), then
        # the measured one.
        if before_each:
            before_each()
        first = airflow.run_dag(dag_id, conf)
        changes = before_each() if before_each else None  # what the measured run synchronizes
        run_doc = airflow.run_dag(dag_id, conf)
        keep = os.environ.get("PROFILE_SYNC_BENCH_AIRFLOW_LOGS")  # a folder: this Airflow's logs are kept there
        if keep:
            target = Path(keep) / config.stem
            shutil.copytree(airflow.home / "logs", target / "logs", dirs_exist_ok=True)
            for name in ("scheduler.log", "api-server.log", "dag-processor.log"):
                if (airflow.home / name).exists():
                    shutil.copy(airflow.home / name, target / name)
    finally:
        airflow.close()
    from profile_sync.run.context import ConnectionInfo

    infos = {k: ConnectionInfo(**v) for k, v in connections.items()}
    ctx = RunContext(run_id="bench-reader", settings=load_settings(config), project_root=config.parent,
                     resolve_connection=infos.__getitem__)
    history = ctx.history.get(run_key(dag_id, run_doc["dag_run_id"])) or {}
    if not history.get("steps"):
        raise RuntimeError(f"no run history for {dag_id} run {run_doc['dag_run_id']}")
    engine = sum(s.get("duration_s", 0) for s in history.get("steps", []))
    first_history = ctx.history.get(run_key(dag_id, first["dag_run_id"])) or {}
    first_wall = _seconds(first["queued_at"], first["end_date"])
    first_engine = sum(s.get("duration_s", 0) for s in first_history.get("steps", []))
    wall = _seconds(run_doc["queued_at"], run_doc["end_date"])
    tasks = [t for t in run_doc["task_instances"] if t.get("start_date") and t.get("end_date")]
    in_tasks = sum(_seconds(t["start_date"], t["end_date"]) for t in tasks)
    steps = {s["step"] + (f"[{s['connection']}]" if s.get("connection") else ""): round(s.get("duration_s", 0), 3)
             for s in history.get("steps", []) if s.get("step")}
    return {"dag_id": dag_id, "run_id": run_doc["dag_run_id"], "wall_s": round(wall, 3), "changes": changes,
            "engine_steps_s": steps,
            "metadata_db": "postgresql" if metadata_url else "sqlite",
            "engine_s": round(engine, 3), "overhead_s": round(wall - engine, 3),
            "tasks": len(tasks), "in_tasks_s": round(in_tasks, 3),
            "task_overhead_s": round(in_tasks - engine, 3), "between_tasks_s": round(wall - in_tasks, 3),
            "steps": len(history.get("steps", [])),
            "before_first_task_s": round(min(_seconds(run_doc["queued_at"], t["start_date"]) for t in tasks), 3),
            "first_run_after_start": {"wall_s": round(first_wall, 3), "engine_s": round(first_engine, 3),
                                      "overhead_s": round(first_wall - first_engine, 3)},
            # Per task, seconds from the run's queued_at: queued, started, ended (where the gaps are).
            "timeline": [{"task": t["task_id"] + (f"[{t['map_index']}]" if t.get("map_index", -1) >= 0 else ""),
                          "queued": round(_seconds(run_doc["queued_at"], t["queued_when"]), 2)
                          if t.get("queued_when") else None,
                          "start": round(_seconds(run_doc["queued_at"], t["start_date"]), 2),
                          "end": round(_seconds(run_doc["queued_at"], t["end_date"]), 2)}
                         for t in sorted(tasks, key=lambda t: t["start_date"])]}
