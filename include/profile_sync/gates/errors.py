"""Gate errors: a failed gate stops the export and carries its report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profile_sync.errors import TerminalError

if TYPE_CHECKING:
    from profile_sync.gates.report import GateReport


class GateFailedError(TerminalError):
    """A data-quality gate failed: the export must not start (never retried)."""

    def __init__(self, report: "GateReport") -> None:
        self.report = report
        failed = [c for c in report.checks if not c.passed]
        lines = "; ".join(f"{c.name}: observed {c.observed}, allowed {c.allowed}" for c in failed)
        super().__init__(f"gate {report.gate!r} failed ({len(failed)} check(s)): {lines}")
