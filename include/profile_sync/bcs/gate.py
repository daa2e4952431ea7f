"""The ``validate_bcs`` gate: checks, defined as data, on one business system's pending exports.

Same report shape as the export gate (``gates/report.py``): every check says
what it protects against, what was observed and what is allowed; a failed
check stops ``export_bcs`` and the report lands in the run history. Per-row
problems (bad keys, bad values) never fail the gate on their own: those rows
are already left out by ``synchronize_bcs``; the gate looks at what would be
written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from profile_sync.bcs.synchronize import VALUE_COLUMNS
from profile_sync.config.business_systems import BcsGateLimits
from profile_sync.config.properties import PropertySpec
from profile_sync.gates.report import CheckResult, GateReport

SAMPLE = 20


@dataclass(frozen=True)
class BcsGateInput:
    """What the checks look at."""

    stats: dict[str, int]
    updates: pd.DataFrame
    values: pd.DataFrame
    people: pd.DataFrame
    """The profile-store people the join ran against."""
    specs: dict[str, PropertySpec]
    limits: BcsGateLimits


@dataclass(frozen=True)
class BcsCheck:
    """One check of the gate."""

    name: str
    description: str
    limits: tuple[str, ...]
    """The ``gates`` keys that bound it (empty: a fixed rule)."""
    run: Callable[[BcsGateInput], tuple[bool, Any, Any, list[Any]]]
    """→ (passed, observed, allowed, samples)."""
    overridable: bool = False
    """A blast-radius limit an administrator may let through for one run (``override_gates``)."""


def _source_not_empty(g: BcsGateInput) -> tuple[bool, Any, Any, list[Any]]:
    rows, cleared = g.stats["rows"], g.stats["cleared"]
    return (not (rows == 0 and cleared > 0), {"rows": rows, "cleared": cleared},
            "at least one row when people would lose their properties", [])


def _clear_limit(g: BcsGateInput) -> tuple[bool, Any, Any, list[Any]]:
    cleared, holders = g.stats["cleared"], g.stats["people_with_values"]
    limit = g.limits.max_clear_percent
    percent = round(100.0 * cleared / holders, 2) if holders else 0.0
    passed = limit is None or cleared <= g.limits.min_count_for_percent_limits or percent <= limit
    return (passed, {"cleared": cleared, "people_with_values": holders, "percent": percent},
            {"max_clear_percent": limit, "min_count_for_percent_limits": g.limits.min_count_for_percent_limits}, [])


def _profiles_exist(g: BcsGateInput) -> tuple[bool, Any, Any, list[Any]]:
    active = g.people.loc[g.people["state"] == "active", "profile_id"]
    ids = pd.concat([g.updates["profile_id"], g.values["profile_id"]]).drop_duplicates()
    unknown = ids.loc[~ids.isin(active)]
    return (unknown.empty, {"unknown_profiles": len(unknown)}, 0, unknown.head(SAMPLE).tolist())


def _values_fit(g: BcsGateInput) -> tuple[bool, Any, Any, list[Any]]:
    bad: list[dict[str, Any]] = []
    count = 0
    for p in [c for c in g.updates.columns if c in g.specs]:
        spec = g.specs[p]
        if spec.type == "string" and spec.max_length:
            lengths = g.updates[p].map(len, na_action="ignore")
            over = lengths > spec.max_length
            count += int(over.sum())
            bad += [{"profile_id": pid, "property": p, "length": int(n)}
                    for pid, n in zip(g.updates.loc[over, "profile_id"], lengths[over])][:SAMPLE]
    for p, part in g.values.groupby("property"):
        spec = g.specs.get(p)
        if spec is not None and spec.type == "string" and spec.max_length:
            lengths = part["value"].str.len()
            over = lengths > spec.max_length
            count += int(over.sum())
            bad += [{"profile_id": pid, "property": p, "length": int(n)}
                    for pid, n in zip(part.loc[over, "profile_id"], lengths[over])][:SAMPLE]
    return count == 0, {"values_too_long": count}, 0, bad[:SAMPLE]


CHECKS: tuple[BcsCheck, ...] = (
    BcsCheck("source_not_empty", "An empty business-system read never blanks everybody's properties.", (),
             _source_not_empty),
    BcsCheck("clear_limit", "Not too many people lose this connection's properties at once (a narrowed view, "
             "a changed key format).", ("max_clear_percent", "min_count_for_percent_limits"), _clear_limit, overridable=True),
    BcsCheck("profiles_exist", "Augmentation only: every pending export is for an active profile that exists.", (),
             _profiles_exist),
    BcsCheck("values_fit_columns", "Every value written fits its profile-store column.", (), _values_fit),
)
"""The checks of ``validate_bcs``, in the order they are reported."""


def bcs_gate(connection: str, data: BcsGateInput) -> GateReport:
    """Run every check of ``CHECKS`` on ``data``."""
    results = []
    for check in CHECKS:
        passed, observed, allowed, samples = check.run(data)
        results.append(CheckResult(name=check.name, passed=bool(passed), observed=observed, allowed=allowed,
                                   samples=samples, description=f"{connection}: {check.description}",
                                   connection=connection, overridable=check.overridable,
                                   message="" if passed else f"{check.name} [{connection}]: observed {observed}, "
                                                             f"allowed {allowed}"))
    return GateReport("validate_bcs", results)


__all__ = ["CHECKS", "VALUE_COLUMNS", "BcsGateInput", "bcs_gate"]
