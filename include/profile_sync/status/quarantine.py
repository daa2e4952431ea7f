"""The quarantine as the page shows it: what is held, why, since when, last seen."""

from __future__ import annotations

from typing import Any

from profile_sync.status.frames import CommittedState
from profile_sync.status.values import records

COLUMNS = ["connection", "dn", "anchor", "reason", "level", "profile_id", "kept_last_good", "first_seen", "last_seen"]


def quarantine(view: CommittedState, limit: int = 1000) -> dict[str, Any]:
    """Objects held back now (oldest first), with counts by level and connection."""
    frame = view.frame("quarantine")
    if frame is None or frame.empty:
        return {"total": 0, "by_level": {}, "by_connection": {}, "objects": [], "as_of_version": view.version}
    frame = frame.sort_values(["first_seen", "connection", "dn"], kind="stable")
    return {
        "total": len(frame),
        "by_level": {str(k): int(v) for k, v in frame["level"].value_counts().items()},
        "by_connection": {str(k): int(v) for k, v in frame["connection"].value_counts().items()},
        "objects": records(frame.head(limit), COLUMNS),
        "as_of_version": view.version,
    }
