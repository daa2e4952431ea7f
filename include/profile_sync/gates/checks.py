"""The checks of the export gate, defined as data (DESIGN §5).

Each :class:`CheckSpec` names a check, says what it protects against, which
limit in ``gates`` (``config.settings.GateLimits``) bounds it, how it is
observed (a Great Expectations expectation on a staged frame, or a metric
computed with pandas) and whether an administrator may override it for one run.

Structural checks (anchors, account names, column lengths, an empty source)
cannot be overridden: letting them through would corrupt the profile store or
turn a broken import into a mass delete. Blast-radius limits can.
Object-level problems never fail the gate on their own: those objects are
quarantined (``sync/quarantine.py``) and the checks run on what remains.
"""

from __future__ import annotations

from dataclasses import dataclass

from profile_sync.gates.report import Engine, Stage

EMAIL_REGEX = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
"""A valid e-mail address: the WHATWG HTML definition, with a dotted domain."""


@dataclass(frozen=True)
class CheckSpec:
    """One check of the gate."""

    name: str
    stage: Stage
    description: str
    """What it protects against (shown in reports)."""
    observed: str
    """How it is observed, on which frame."""
    limits: tuple[str, ...]
    """The ``gates`` keys that bound it (empty: a fixed rule)."""
    engine: Engine
    overridable: bool
    per_connection: bool = True


CHECKS: tuple[CheckSpec, ...] = (
    # -- import completeness -------------------------------------------------------------
    CheckSpec(
        "source_not_empty", "import",
        "An empty import never becomes a mass delete.",
        "people in scope of the connection, when its profiles would be marked for deletion",
        (), "metric", overridable=False),
    CheckSpec(
        "source_shrink", "import",
        "The source did not shrink sharply since the last good import (a narrowed base DN, lost read access).",
        "people in scope now against the last import a run finished with",
        ("max_shrink_percent", "min_count_for_percent_limits"), "metric", overridable=True),
    CheckSpec(
        "anchors_present", "import",
        "Every object in the connector space has its anchor (objects without one are quarantined).",
        "ExpectColumnValuesToNotBeNull(anchor) on the connector space (people and groups)",
        (), "great_expectations", overridable=False),
    CheckSpec(
        "anchors_unique", "import",
        "No two objects of the connector space share an anchor (duplicates are quarantined).",
        "ExpectColumnValuesToBeUnique(anchor) on the connector space (people and groups)",
        (), "great_expectations", overridable=False),
    # -- pending exports -----------------------------------------------------------------
    CheckSpec(
        "account_names_unique", "export",
        "Every active profile has an account name, and no two share one, after the export (people without one "
        "and duplicates are quarantined).",
        "ExpectColumnValuesToBeUnique and ExpectColumnValuesToNotBeNull(account_name, case-insensitive, blank = "
        "missing) on the active profiles after the export",
        (), "great_expectations", overridable=False, per_connection=False),
    CheckSpec(
        "values_fit_columns", "export",
        "Every value written fits its profile-store column (longer values are quarantined).",
        "ExpectColumnValueLengthsToBeBetween(max = column length) per string property of the adds and updates",
        (), "great_expectations", overridable=False, per_connection=False),
    CheckSpec(
        "email_syntax", "export",
        "Work e-mail addresses are e-mail addresses (a wrong mapping or transform shows here).",
        "ExpectColumnValuesToMatchRegex(work_email, WHATWG e-mail syntax, mostly) on the people in scope",
        ("max_invalid_email_percent", "min_count_for_percent_limits"), "great_expectations", overridable=True),
    CheckSpec(
        "reference_resolution", "export",
        "References (manager, group member) resolve: a low rate means objects went missing or out of scope.",
        "resolved / all manager and member references of the connection's objects in scope",
        ("min_reference_resolution_percent", "min_count_for_percent_limits"), "metric", overridable=True),
    CheckSpec(
        "people_deletes", "export",
        "Not too many profiles are marked for deletion in one run.",
        "profiles the export would mark for deletion: count, and % of the connection's active profiles",
        ("max_deletes", "max_delete_percent", "min_count_for_percent_limits"), "metric", overridable=True),
    CheckSpec(
        "group_deletes", "export",
        "Not too many groups are marked for deletion in one run.",
        "groups the export would mark for deletion: count, and % of the connection's active groups",
        ("max_deletes", "max_delete_percent", "min_count_for_percent_limits"), "metric", overridable=True),
    CheckSpec(
        "updates", "export",
        "Not too many profiles are rewritten in one run (a changed mapping or filter).",
        "profiles whose mapped properties the export would change, in % of the connection's active profiles",
        ("max_update_percent", "min_count_for_percent_limits"), "metric", overridable=True),
    CheckSpec(
        "property_blanking", "export",
        "No property is emptied for many people at once (lost read access to an attribute, a broken mapping).",
        "per property: profiles whose value would go from a value to empty, in % of the active profiles",
        ("max_blank_percent", "min_count_for_percent_limits"), "metric", overridable=True),
)

BY_NAME: dict[str, CheckSpec] = {c.name: c for c in CHECKS}
