"""Frame values as JSON: lists for arrays, a size for binary values, None for missing ones."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` (from a frame or a run-history document) in a form ``json.dumps`` takes."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"binary": True, "bytes": len(bytes(value))}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    return [{c: jsonable(v) for c, v in zip(cols, row)} for row in frame[cols].itertuples(index=False, name=None)]


def text(value: Any) -> str:
    """A searchable text of a value: list items joined by spaces, binary values empty."""
    if value is None or isinstance(value, (bytes, bytearray)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(text(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)
