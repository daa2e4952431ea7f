"""Run history: one JSON document per run, readable by later tools (and the UI page).

Document shape::

    {"run_id", "dag_id", "requested_mode", "mode", "full_reason", "dry_run",
     "status": "running" | "success" | "failed", "started_at", "finished_at",
     "overrides": [...],
     "steps": [{"step", "connection", "started_at", "duration_s",
                "adds", "updates", "deletes", "unchanged", "errors",
                "details": {...}}]}

A step that is retried replaces its own earlier record.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from profile_sync.state.files import read_json, slug, write_json

RunStatus = Literal["running", "success", "failed"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunHistory:
    """Reads and writes run-history documents under ``<state root>/history``."""

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / "history"

    def path(self, run_id: str) -> Path:
        return self.folder / f"{slug(run_id)}.json"

    def get(self, run_id: str) -> dict[str, Any] | None:
        return read_json(self.path(run_id))

    def start(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Create the run's document (or update it when a task is retried)."""
        doc = self.get(run_id) or {"run_id": run_id, "status": "running", "started_at": _now(),
                                   "steps": [], "overrides": []}
        doc.update(fields)
        write_json(self.path(run_id), doc)
        return doc

    def update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        doc = self.get(run_id) or self.start(run_id)
        doc.update(fields)
        write_json(self.path(run_id), doc)
        return doc

    def record_step(self, run_id: str, record: dict[str, Any]) -> None:
        """Add (or replace, on retry) the record of one step."""
        doc = self.get(run_id) or self.start(run_id)
        key = (record.get("step"), record.get("connection"))
        doc["steps"] = [s for s in doc["steps"] if (s.get("step"), s.get("connection")) != key] + [record]
        write_json(self.path(run_id), doc)

    def finish(self, run_id: str, status: RunStatus) -> dict[str, Any]:
        return self.update(run_id, status=status, finished_at=_now())

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` run documents, newest first."""
        if not self.folder.exists():
            return []
        docs = [read_json(p) for p in self.folder.glob("*.json")]
        docs = [d for d in docs if d]
        docs.sort(key=lambda d: d.get("started_at") or "", reverse=True)
        return docs[:limit]
