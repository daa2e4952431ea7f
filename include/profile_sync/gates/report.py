"""Gate reports: which check, observed against allowed, sample objects.

A report is what the run history keeps of a gate (``gate_report`` of a failed
step, ``report`` of a passed one) and what the UI shows: every check with its
connection, what was observed, what the limit allows, up to
``SAMPLE`` objects that break it, and whether an administrator's override let
it through.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Stage = Literal["import", "export"]
"""``import``: completeness of the import; ``export``: what the pending exports would do."""

Engine = Literal["great_expectations", "metric"]
"""How a check is observed: a Great Expectations expectation, or a metric computed with pandas."""


@dataclass(frozen=True)
class GateOverride:
    """An administrator's choice to let one run through the blast-radius limits."""

    by: str
    """Who: the Airflow user who triggered the run (or how it was triggered)."""
    reason: str
    """Why, as given with the trigger (``override_reason``)."""
    at: str
    """When the override was requested (ISO 8601, UTC)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    passed: bool
    observed: Any
    allowed: Any
    samples: list[Any] = field(default_factory=list)
    description: str = ""
    connection: str | None = None
    """The directory connection the check is about (None: all of them)."""
    stage: Stage = "export"
    engine: Engine = "metric"
    overridable: bool = False
    """Blast-radius limits can be overridden for one run; structural checks cannot."""
    overridden: bool = False
    """Failed, but an administrator's override let the run through."""
    message: str = ""
    """One readable line: what was observed against what is allowed."""


@dataclass(frozen=True)
class GateReport:
    """All checks of one gate."""

    gate: str
    checks: list[CheckResult]
    overridden_by: str | None = None
    override: GateOverride | None = None
    """The override requested for this run (recorded whether or not it was needed)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent: importing GX, validating with GX, computing metrics, in total."""

    @property
    def passed(self) -> bool:
        """Every check passed (an overridden check did not)."""
        return all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def overridden(self) -> bool:
        """Checks failed, and every one of them was let through by an override."""
        failed = self.failed_checks
        return bool(failed) and all(c.overridden for c in failed)

    @property
    def allows_export(self) -> bool:
        return self.passed or self.overridden

    def apply_override(self, override: GateOverride | None) -> "GateReport":
        """The report with ``override`` applied to every failed, overridable check."""
        if override is None:
            return self
        checks = [replace(c, overridden=True) if (not c.passed and c.overridable) else c for c in self.checks]
        report = replace(self, checks=checks, override=override)
        return replace(report, overridden_by=override.by if report.overridden else None)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "overridden": self.overridden,
                "overridden_by": self.overridden_by,
                "override": asdict(self.override) if self.override else None,
                "timings": dict(self.timings),
                "checks": [asdict(c) for c in self.checks]}
