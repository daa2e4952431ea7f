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
        failed = report.failed_checks
        lines = "; ".join(c.message or f"{c.name}: observed {c.observed}, allowed {c.allowed}" for c in failed)
        blocking = [c.name for c in failed if not c.overridden]
        if report.override is not None:
            hint = (f" — the override requested by {report.override.by} does not cover "
                    f"{', '.join(blocking)} (structural checks cannot be overridden)")
        elif all(c.overridable for c in failed):
            hint = (" — if these changes are intended, trigger the run again with override_gates=true "
                    "and an override_reason")
        else:
            hint = ""
        super().__init__(f"gate {report.gate!r} failed ({len(failed)} check(s)): {lines}{hint}")


class GateOverrideError(TerminalError):
    """An override was requested without the information it needs (a reason)."""


class GateNotApprovedError(TerminalError):
    """A run waiting for approval of its tripped gate was rejected, timed out, or can no longer go on."""
