"""Safety gates before every export (DESIGN §5).

``checks.CHECKS`` lists the checks as data; ``export_gate.evaluate_export_gate``
runs them (Great Expectations for the frame expectations, pandas for the
blast-radius metrics) and returns a ``GateReport``; a report that does not
allow the export becomes a ``GateFailedError`` in the step. Objects that break
object-level checks are quarantined before the gate (``sync/quarantine.py``).
"""

from profile_sync.gates.errors import GateFailedError, GateOverrideError
from profile_sync.gates.report import CheckResult, GateOverride, GateReport

__all__ = ["CheckResult", "GateFailedError", "GateOverride", "GateOverrideError", "GateReport"]
