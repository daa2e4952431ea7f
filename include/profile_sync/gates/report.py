"""Gate reports: which check, observed against allowed, sample objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    passed: bool
    observed: Any
    allowed: Any
    samples: list[Any] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class GateReport:
    """All checks of one gate."""

    gate: str
    checks: list[CheckResult]
    overridden_by: str | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "overridden_by": self.overridden_by,
                "checks": [asdict(c) for c in self.checks]}
