"""Safety gates before every export (DESIGN §5)."""

from profile_sync.gates.errors import GateFailedError
from profile_sync.gates.report import CheckResult, GateReport

__all__ = ["CheckResult", "GateFailedError", "GateReport"]
