"""Never a mass delete from an empty import (LSC's rule: refuse to act on an empty source).

``empty_source_check`` is the ``source_not_empty`` check of the export gate
(``export_gate.py``), per connection; ``basic_gate`` is the foundation's
one-check gate, kept for callers that want only this rule.
"""

from __future__ import annotations

from profile_sync.gates.report import CheckResult, GateReport


def empty_source_check(in_scope_people: int, active_profiles: int, planned_deletes: int) -> CheckResult:
    """Fail when the directory brought no people but the export would mark profiles for deletion."""
    bad = in_scope_people == 0 and active_profiles > 0 and planned_deletes > 0
    return CheckResult(
        name="source_not_empty",
        passed=not bad,
        observed={"in_scope_people": in_scope_people, "planned_deletes": planned_deletes},
        allowed="at least one person in scope when profiles would be marked for deletion",
        description="An empty import never becomes a mass delete.",
    )


def basic_gate(in_scope_people: int, active_profiles: int, planned_deletes: int) -> GateReport:
    return GateReport("validate_export", [empty_source_check(in_scope_people, active_profiles, planned_deletes)])
