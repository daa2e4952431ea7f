"""Run history: one document per run, readable by later tools (and the UI page).

Stored in the coordination database (``profile_sync_runs`` and ``profile_sync_run_steps``),
not beside the Parquet files: a failure is recorded even when the state store's disk
is full or its object store is unreachable, and two tasks of one run recording their
steps at the same moment never overwrite each other (one row per step attempt).

Document shape::

    {"run_id", "run_key", "dag_id", "requested_mode", "mode", "full_reason", "dry_run",
     "status": "waiting" | "running" | "success" | "failed" | "abandoned" | "skipped",
     "started_at", "finished_at", "error", "overrides": [...],
     "steps": [{"step", "connection", "started_at", "duration_s", "status",
                "adds", "updates", "deletes", "unchanged", "errors", ...,
                "attempt", "attempts": [earlier attempts: {"attempt", "started_at", "status", "error"}]}]}
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import func, insert, select, update

from profile_sync.state.coordination import RUNS, STEPS, Coordination, dumps

RunStatus = Literal["waiting", "running", "success", "failed", "abandoned", "skipped"]
OPEN_STATUSES = ("waiting", "running")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunHistory:
    """Reads and writes run-history documents of one state store."""

    def __init__(self, coordination: Coordination) -> None:
        self.coordination = coordination

    @property
    def name(self) -> str:
        return self.coordination.name

    def get(self, run_key: str) -> dict[str, Any] | None:
        with self.coordination.reading() as conn:
            row = conn.execute(select(RUNS.c.document).where(RUNS.c.name == self.name, RUNS.c.run_key == run_key)
                               ).first()
            if row is None:
                return None
            steps = conn.execute(select(STEPS.c.record).where(STEPS.c.name == self.name, STEPS.c.run_key == run_key)
                                 .order_by(STEPS.c.attempt)).all()
        return self._document(json.loads(row[0]), [json.loads(r[0]) for r in steps])

    @staticmethod
    def _document(doc: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
        """The run document with its steps: the latest attempt of each, earlier ones under ``attempts``."""
        latest: dict[tuple, dict[str, Any]] = {}
        earlier: dict[tuple, list[dict[str, Any]]] = {}
        for r in records:  # ordered by attempt
            key = (r.get("step"), r.get("connection"))
            if key in latest:
                prev = latest[key]
                earlier.setdefault(key, []).append(
                    {k: prev.get(k) for k in ("attempt", "started_at", "status", "duration_s", "error")})
            latest[key] = r
        steps = []
        for key, r in sorted(latest.items(), key=lambda kv: (kv[1].get("started_at") or "", kv[1].get("attempt", 0))):
            steps.append({**r, "attempts": earlier.get(key, [])})
        doc["steps"] = steps
        return doc

    @staticmethod
    def _base(run_key: str) -> dict[str, Any]:
        return {"run_key": run_key, "run_id": run_key.split("/", 1)[-1], "status": "running", "started_at": _now(),
                "overrides": []}

    def start(self, run_key: str, **fields: Any) -> dict[str, Any]:
        """Create the run's document (or update it when a task is retried)."""
        return self._write(run_key, fields, base=self._base(run_key))

    def update(self, run_key: str, **fields: Any) -> dict[str, Any]:
        return self._write(run_key, fields, base=self._base(run_key))

    def update_if(self, run_key: str, statuses: tuple[str, ...], **fields: Any) -> bool:
        """Update only while the run's status is one of ``statuses`` (atomically); whether it did."""
        c = self.coordination
        with c.transaction() as conn:
            row = self._lock(conn, run_key)
            if row is None or json.loads(row)["status"] not in statuses:
                return False
            self._store(conn, run_key, {**json.loads(row), **fields}, exists=True)
        return True

    def _lock(self, conn, run_key: str) -> str | None:  # noqa: ANN001
        """Lock the run's row for a read-modify-write (an UPDATE first: row lock / SQLite write lock)."""
        conn.execute(update(RUNS).where(RUNS.c.name == self.name, RUNS.c.run_key == run_key)
                     .values(status=RUNS.c.status))
        row = conn.execute(select(RUNS.c.document).where(RUNS.c.name == self.name, RUNS.c.run_key == run_key)).first()
        return row[0] if row is not None else None

    def _write(self, run_key: str, fields: dict[str, Any], base: dict[str, Any], conn=None) -> dict[str, Any]:  # noqa: ANN001
        if conn is None:
            with self.coordination.transaction() as conn:
                return self._write(run_key, fields, base, conn)
        current = self._lock(conn, run_key)
        doc = json.loads(current) if current is not None else dict(base)
        doc.update(fields)
        doc.pop("steps", None)
        self._store(conn, run_key, doc, exists=current is not None)
        return doc

    def _store(self, conn, run_key: str, doc: dict[str, Any], exists: bool) -> None:  # noqa: ANN001
        values = {"dag_id": doc.get("dag_id"), "run_id": doc.get("run_id"), "status": doc.get("status", "running"),
                  "started_at": doc.get("started_at"), "finished_at": doc.get("finished_at"),
                  "document": dumps(doc)}
        if exists:
            conn.execute(update(RUNS).where(RUNS.c.name == self.name, RUNS.c.run_key == run_key).values(**values))
        else:
            conn.execute(insert(RUNS).values(name=self.name, run_key=run_key, **values))

    def record_step(self, run_key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Add the record of one step attempt (a retry adds another; the document shows every attempt)."""
        connection = record.get("connection") or ""
        with self.coordination.transaction() as conn:
            if self._lock(conn, run_key) is None:
                self._store(conn, run_key, self._base(run_key), exists=False)
            where = (STEPS.c.name == self.name, STEPS.c.run_key == run_key, STEPS.c.step == record.get("step"),
                     STEPS.c.connection == connection)
            attempt = int(conn.execute(select(func.coalesce(func.max(STEPS.c.attempt), 0)).where(*where))
                          .scalar_one()) + 1
            record = {**record, "attempt": attempt}
            conn.execute(insert(STEPS).values(name=self.name, run_key=run_key, step=record.get("step"),
                                              connection=connection, attempt=attempt, record=dumps(record)))
        return record

    def finish(self, run_key: str, status: RunStatus, conn=None, **fields: Any) -> dict[str, Any]:  # noqa: ANN001
        """Record the run's end (``conn``: inside that transaction, e.g. the state switch's)."""
        return self._write(run_key, {"status": status, "finished_at": _now(), **fields}, base=self._base(run_key),
                           conn=conn)

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` run documents, newest first (two queries, whatever the limit)."""
        with self.coordination.reading() as conn:
            rows = conn.execute(select(RUNS.c.run_key, RUNS.c.document).where(RUNS.c.name == self.name)
                                .order_by(RUNS.c.started_at.desc(), RUNS.c.run_key.desc()).limit(limit)).all()
            records: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in rows}
            for i in range(0, len(rows), 500):
                chunk = [key for key, _ in rows[i:i + 500]]
                for key, record in conn.execute(
                        select(STEPS.c.run_key, STEPS.c.record)
                        .where(STEPS.c.name == self.name, STEPS.c.run_key.in_(chunk)).order_by(STEPS.c.attempt)):
                    records[key].append(json.loads(record))
        return [self._document(json.loads(doc), records[key]) for key, doc in rows]

    def open_runs(self) -> list[dict[str, Any]]:
        """Runs recorded as waiting or running."""
        with self.coordination.reading() as conn:
            keys = [r[0] for r in conn.execute(select(RUNS.c.run_key).where(
                RUNS.c.name == self.name, RUNS.c.status.in_(OPEN_STATUSES))).all()]
        return [d for d in (self.get(k) for k in keys) if d is not None]
