"""Airflow glue for Profile Sync: the hook layer and the task wrapper.

This is the only place where Airflow objects (Connections, the task context)
are turned into engine objects. The engine in ``include/`` never imports Airflow.
"""

from __future__ import annotations

import sys
from pathlib import Path

_INCLUDE = Path(__file__).resolve().parents[2] / "include"
if _INCLUDE.is_dir() and str(_INCLUDE) not in sys.path:
    sys.path.insert(0, str(_INCLUDE))
