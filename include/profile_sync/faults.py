"""Fault points: where the fault-table tests kill a run, to prove that any crash converges.

``PROFILE_SYNC_FAULT=<point>`` makes the process SIGKILL itself when it reaches
``<point>`` — no cleanup, no ``finally``, exactly like a worker that dies. Unset
(always, outside those tests) a point costs one dictionary lookup.

Points: ``step:<step>:before`` / ``step:<step>:after`` (after the step committed its
part, before it returns), ``export_profile_store:inside`` (the export's statements ran,
its transaction has not committed), ``promote:before_switch``, ``promote:after_switch``
(state committed, the run history and the garbage collection not done yet).
"""

from __future__ import annotations

import os
import signal

ENV = "PROFILE_SYNC_FAULT"


def point(name: str) -> None:
    """Die here if the fault-table test asked for it."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
