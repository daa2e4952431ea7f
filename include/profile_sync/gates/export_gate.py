"""The gate before the profile-store export: every check of ``checks.CHECKS`` on the staged frames.

``evaluate_export_gate`` is pure (frames in, report out): it runs the Great
Expectations expectations through one :class:`~profile_sync.gates.expectations.GxRunner`
and computes the blast-radius metrics, per directory connection with that
connection's limits, then applies an administrator's override to the failed
checks that allow one. The step (``run/steps.validate_export``) records the
report and raises ``GateFailedError`` when the report does not allow the export.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.properties import PropertySpec
from profile_sync.config.settings import GateLimits
from profile_sync.gates import metrics
from profile_sync.gates.basic import empty_source_check
from profile_sync.gates.checks import BY_NAME, EMAIL_REGEX
from profile_sync.gates.expectations import Expect, GxRunner, Outcome
from profile_sync.gates.report import CheckResult, GateOverride, GateReport
from profile_sync.sync.pending_exports import ACTIVE, PendingExports

GATE = "validate_export"
SAMPLE = 20


@dataclass(frozen=True)
class GateInputs:
    """The staged frames the gate validates (all read from the run's state)."""

    directories: list[ResolvedDirectory]
    spaces: dict[str, pd.DataFrame]
    """Connector space per directory connection (after quarantine: held objects are not in it)."""
    pending: PendingExports
    store_people: pd.DataFrame
    """The profile store's people as imported by step 2 (before the export): at least the columns of
    :data:`STORE_PEOPLE_COLUMNS`, every row."""
    store_groups: pd.DataFrame
    mv_people: pd.DataFrame
    """The metaverse people: at least the columns of :data:`MV_PEOPLE_COLUMNS` (those the gate reads)."""
    unresolved: pd.DataFrame
    specs: dict[str, PropertySpec]
    limits: dict[str, GateLimits]
    """Effective limits per connection (top-level ``gates`` with the connection's overrides)."""
    baselines: dict[str, int | None] = field(default_factory=dict)
    """People in scope at the last good import, per connection (None: no good import yet)."""
    previous_space: Callable[[str], pd.DataFrame | None] = lambda name: None
    """The connector space of the last good import (read only to show samples of a shrink)."""
    store_touched: pd.DataFrame | None = None
    """The managed properties of the ``store_people`` rows the pending exports update (what the blanking
    check compares with); None: ``store_people`` has them (or nothing is updated)."""
    changed: ChangedRows | None = None
    """What changed since the last committed run; GX then validates only those rows (whole-set counts,
    uniqueness and ``mostly`` shares are still computed on every row, vectorised). None: GX validates
    every row (no committed state to compare with)."""


@dataclass(frozen=True)
class ChangedRows:
    """What changed since the last committed run (whose gate validated the rest)."""

    anchors: dict[str, frozenset[str]]
    """Per connection: anchors of the connector-space objects added or changed (``sync.delta.changed_objects``)."""
    profiles: frozenset[str]
    """Profiles the pending exports add, update, unmark or mark."""


def _result(name: str, passed: bool, observed: Any, allowed: Any, message: str, *,
            connection: str | None = None, samples: list[Any] | None = None) -> CheckResult:
    spec = BY_NAME[name]
    where = f" [{connection}]" if connection else ""
    return CheckResult(name=name, passed=passed, observed=observed, allowed=allowed, samples=samples or [],
                       description=spec.description, connection=connection, stage=spec.stage,
                       engine=spec.engine, overridable=spec.overridable,
                       message=f"{name}{where}: {message}")


def _records(frame: pd.DataFrame, columns: list[str], n: int = SAMPLE) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in frame.columns]
    head = frame[cols].head(n).astype(object)
    return head.where(head.notna(), None).to_dict("records")


def _over(count: int, whole: int, limit: float | None, floor: int) -> bool:
    """A percentage limit trips: ``count`` > ``floor`` objects and more than ``limit`` % of ``whole``."""
    return limit is not None and whole > 0 and count > floor and 100.0 * count / whole > limit


def _percent_text(limit: float | None, floor: int, of: str) -> str:
    if limit is None:
        return "no % limit"
    return f"≤ {limit:g}% of {of}, once more than {floor}"


def _gx_failure(outcome: Outcome) -> str:
    return f"Great Expectations could not evaluate {outcome.expect.kind}({outcome.expect.column}): {outcome.error}"


# -- import completeness -------------------------------------------------------------------
def _source_checks(inp: GateInputs, conn: str, active_people: pd.Series, marked_people: pd.Series) -> list[CheckResult]:
    space = inp.spaces[conn]
    now = metrics.in_scope_people(space)
    active = int(active_people.get(conn, 0))
    marks = int(marked_people.get(conn, 0))
    base = empty_source_check(now, active, marks)
    out = [_result("source_not_empty", base.passed, base.observed, base.allowed,
                   f"{now} people in scope, {marks} of {active} active profiles would be marked for deletion"
                   if not base.passed else f"{now} people in scope", connection=conn)]

    limits = inp.limits[conn]
    baseline = inp.baselines.get(conn)
    allowed = ("no % limit" if limits.max_shrink_percent is None else
               f"≤ {limits.max_shrink_percent:g}% fewer than at the last good import, "
               f"once more than {limits.min_count_for_percent_limits} fewer")
    if baseline is None:
        out.append(_result("source_shrink", True, {"in_scope_people": now, "last_good_import": None}, allowed,
                           "no good import yet: nothing to compare with", connection=conn))
        return out
    lost = max(baseline - now, 0)
    bad = _over(lost, baseline, limits.max_shrink_percent, limits.min_count_for_percent_limits)
    samples: list[Any] = []
    if bad:
        previous = inp.previous_space(conn)
        if previous is not None:
            gone = previous.loc[previous["in_scope"] & (previous["object_type"] == "person")]
            still = space.loc[space["in_scope"], "anchor"]
            samples = _records(gone.loc[~gone["anchor"].isin(still)], ["anchor", "dn"])
    out.append(_result(
        "source_shrink", not bad,
        {"in_scope_people": now, "last_good_import": baseline, "lost": lost, "lost_percent": metrics.pct(lost, baseline)},
        allowed,
        f"{now} people in scope, {baseline} at the last good import: {lost} fewer "
        f"({metrics.pct(lost, baseline)}%); allowed {allowed}",
        connection=conn, samples=samples))
    return out


def _anchor_checks(gx: GxRunner, inp: GateInputs, conn: str) -> list[CheckResult]:
    space = inp.spaces[conn]
    objects = space.loc[space["object_type"].isin(["person", "group"]), ["anchor", "dn"]].reset_index(drop=True)
    changed = None
    if inp.changed is not None:
        changed = objects["anchor"].isna() | objects["anchor"].isin(inp.changed.anchors.get(conn, frozenset()))
    present, unique = gx.validate_changed(f"cs_{conn}", objects,
                                          [Expect("not_null", "anchor"), Expect("unique", "anchor")], changed)
    out = []
    for name, o in (("anchors_present", present), ("anchors_unique", unique)):
        what = "without an anchor" if name == "anchors_present" else "sharing an anchor"
        msg = _gx_failure(o) if o.error else f"{o.unexpected_count} of {o.element_count} objects {what}"
        out.append(_result(name, o.success, {"objects": o.element_count, "unexpected": o.unexpected_count},
                           "0 (such objects are quarantined before the gate)", msg, connection=conn,
                           samples=_records(objects.iloc[o.unexpected_positions], ["anchor", "dn"])))
    return out


# -- pending exports ----------------------------------------------------------------------
def _after_export(inp: GateInputs) -> pd.DataFrame:
    """Active profiles once the pending exports are applied: profile_id, account_name, source_dn."""
    cols = ["profile_id", "account_name", "source_dn"]
    ops = inp.pending.people
    store = inp.store_people
    written = ops.loc[ops["operation"].isin(["add", "update", "unmark"])]
    frames = []
    if len(store):
        keep = (store["state"] == ACTIVE) & ~store["profile_id"].isin(ops["profile_id"])
        frames.append(store.loc[keep, [c for c in cols if c in store.columns]])
    frames.append(written[[c for c in cols if c in written.columns]])
    after = pd.concat(frames, ignore_index=True)
    for c in cols:
        if c not in after.columns:
            after[c] = None
    return after[cols]


def _account_name_check(gx: GxRunner, inp: GateInputs) -> CheckResult | None:
    """Every active profile has an account name (blank counts as none), and no two share one (any case)."""
    after = _after_export(inp)
    if "account_name" not in inp.pending.managed:
        return None
    frame = after.assign(account_name_folded=after["account_name"].map(
        lambda v: v.lower() if isinstance(v, str) and v.strip() else None))
    changed = frame["profile_id"].isin(inp.changed.profiles) if inp.changed is not None else None
    unique, present = gx.validate_changed("profiles_after_export", frame,
                                          [Expect("unique", "account_name_folded"),
                                           Expect("not_null", "account_name_folded")], changed)
    errors = [_gx_failure(o) for o in (unique, present) if o.error]
    msg = "; ".join(errors) if errors else (
        f"{unique.unexpected_count} of {unique.element_count} active profiles would share an account name, "
        f"{present.unexpected_count} would have none")
    positions = list(dict.fromkeys(unique.unexpected_positions + present.unexpected_positions))
    return _result("account_names_unique", unique.success and present.success,
                   {"profiles": unique.element_count, "unexpected": unique.unexpected_count,
                    "missing": present.unexpected_count},
                   "0 shared, 0 missing (such people are quarantined before the gate)", msg,
                   samples=_records(frame.iloc[positions], ["profile_id", "account_name", "source_dn"]))


def _values_fit_check(gx: GxRunner, inp: GateInputs) -> CheckResult:
    ops = inp.pending.people
    written = ops.loc[ops["operation"].isin(["add", "update", "unmark"])].reset_index(drop=True)
    limited = [p for p in inp.pending.managed if p in written.columns
               and inp.specs.get(p) is not None and inp.specs[p].type == "string" and inp.specs[p].max_length]
    frame = pd.DataFrame({p: pd.Series([v if isinstance(v, str) else None for v in written[p].to_numpy(dtype=object)],
                                       dtype=object) for p in limited})
    frame["profile_id"] = written["profile_id"].to_numpy()
    outcomes = gx.validate_changed("pending_people", frame,
                                   [Expect("max_length", p, max_length=inp.specs[p].max_length) for p in limited],
                                   None if inp.changed is None else [True] * len(frame))  # all written rows
    bad = {o.expect.column: o.unexpected_count for o in outcomes if not o.success}
    errors = [_gx_failure(o) for o in outcomes if o.error]
    samples = []
    for o in outcomes:
        for pos in o.unexpected_positions:
            value = frame.at[pos, o.expect.column]
            samples.append({"profile_id": frame.at[pos, "profile_id"], "property": o.expect.column,
                            "length": len(value) if isinstance(value, str) else None,
                            "max_length": o.expect.max_length})
    msg = "; ".join(errors) if errors else (
        f"{sum(bad.values())} values too long for their column ({', '.join(f'{k}: {v}' for k, v in bad.items())})"
        if bad else f"every value of {len(written)} profiles written fits its column")
    return _result("values_fit_columns", not bad and not errors,
                   {"profiles_written": len(written), "too_long": bad},
                   "0 (longer values are quarantined before the gate)", msg, samples=samples[:SAMPLE])


def _email_check(gx: GxRunner, inp: GateInputs, conn: str) -> CheckResult | None:
    limits = inp.limits[conn]
    if limits.max_invalid_email_percent is None or "work_email" not in inp.mv_people.columns:
        return None
    people = inp.mv_people
    held = set(inp.pending.held["profile_id"])
    mine = people.loc[(people["state"] == ACTIVE) & (people["source_connection"] == conn)
                      & ~people["mv_id"].isin(held), ["mv_id", "source_dn", "work_email"]].reset_index(drop=True)
    mostly = max(0.0, 1.0 - limits.max_invalid_email_percent / 100.0)
    changed = mine["mv_id"].isin(inp.changed.profiles) if inp.changed is not None else None
    (o,) = gx.validate_changed(f"people_{conn}", mine,
                               [Expect("regex", "work_email", regex=EMAIL_REGEX, mostly=mostly)], changed)
    with_email = o.element_count - o.missing_count
    passed = not o.error and (o.success or o.unexpected_count <= limits.min_count_for_percent_limits)
    allowed = _percent_text(limits.max_invalid_email_percent, limits.min_count_for_percent_limits,
                            "the addresses invalid")
    msg = _gx_failure(o) if o.error else (
        f"{o.unexpected_count} of {with_email} work e-mail addresses are not valid "
        f"({round(o.unexpected_percent, 2)}%); allowed {allowed}")
    return _result("email_syntax", passed,
                   {"with_email": with_email, "invalid": o.unexpected_count,
                    "invalid_percent": round(o.unexpected_percent, 2)},
                   allowed, msg, connection=conn,
                   samples=_records(mine.iloc[o.unexpected_positions].rename(columns={"mv_id": "profile_id"}),
                                    ["profile_id", "source_dn", "work_email"]))


def _reference_check(inp: GateInputs, directory: ResolvedDirectory) -> CheckResult | None:
    conn = directory.name
    limits = inp.limits[conn]
    if limits.min_reference_resolution_percent is None:
        return None
    total = metrics.references(inp.spaces[conn], directory)
    unresolved = inp.unresolved.loc[inp.unresolved["source_connection"] == conn] if len(inp.unresolved) \
        else inp.unresolved
    bad = min(len(unresolved), total)
    rate = 100.0 - metrics.pct(bad, total) if total else 100.0
    failed = total > 0 and bad > limits.min_count_for_percent_limits and rate < limits.min_reference_resolution_percent
    allowed = (f"≥ {limits.min_reference_resolution_percent:g}% resolved, "
               f"once more than {limits.min_count_for_percent_limits} are not")
    return _result("reference_resolution", not failed,
                   {"references": total, "unresolved": bad, "resolved_percent": round(rate, 2)}, allowed,
                   f"{total - bad} of {total} references resolved ({round(rate, 2)}%); allowed {allowed}",
                   connection=conn,
                   samples=_records(unresolved, ["source_dn", "property", "target_dn", "reason"]) if failed else [])


def _delete_check(name: str, inp: GateInputs, conn: str, marked: pd.DataFrame, active: pd.Series,
                  what: str, key: str) -> CheckResult:
    limits = inp.limits[conn]
    mine = marked.loc[marked["source_connection"] == conn] if len(marked) else marked
    n, whole = len(mine), int(active.get(conn, 0))
    over_count = limits.max_deletes is not None and n > limits.max_deletes
    over_pct = _over(n, whole, limits.max_delete_percent, limits.min_count_for_percent_limits)
    count_text = f"≤ {limits.max_deletes}" if limits.max_deletes is not None else "no count limit"
    allowed = f"{count_text}, and {_percent_text(limits.max_delete_percent, limits.min_count_for_percent_limits, f'the active {what}')}"
    return _result(name, not (over_count or over_pct),
                   {"marked": n, "active": whole, "percent": metrics.pct(n, whole)}, allowed,
                   f"{n} {what} would be marked for deletion ({metrics.pct(n, whole)}% of {whole} active); "
                   f"allowed {allowed}", connection=conn,
                   samples=_records(mine, [key, "account_name", "name", "source_dn"]) if (over_count or over_pct) else [])


def _update_check(inp: GateInputs, conn: str, updated: pd.DataFrame, active: pd.Series) -> CheckResult | None:
    limits = inp.limits[conn]
    if limits.max_update_percent is None:
        return None
    mine = updated.loc[updated["source_connection"] == conn] if len(updated) else updated
    n, whole = len(mine), int(active.get(conn, 0))
    bad = _over(n, whole, limits.max_update_percent, limits.min_count_for_percent_limits)
    allowed = _percent_text(limits.max_update_percent, limits.min_count_for_percent_limits, "the active profiles")
    return _result("updates", not bad, {"updated": n, "active": whole, "percent": metrics.pct(n, whole)}, allowed,
                   f"{n} profiles would be updated ({metrics.pct(n, whole)}% of {whole} active); allowed {allowed}",
                   connection=conn, samples=_records(mine, ["profile_id", "account_name", "changed"]) if bad else [])


def _blank_check(inp: GateInputs, conn: str, blanks: pd.DataFrame, active: pd.Series) -> CheckResult | None:
    limits = inp.limits[conn]
    if limits.max_blank_percent is None:
        return None
    whole = int(active.get(conn, 0))
    mine = blanks.loc[blanks["source_connection"] == conn]
    per_property = mine["property"].value_counts()
    observed = {p: {"blanked": int(n), "percent": metrics.pct(int(n), whole)} for p, n in per_property.items()}
    worst = [p for p, n in per_property.items()
             if _over(int(n), whole, limits.max_blank_percent, limits.min_count_for_percent_limits)]
    allowed = f"per property {_percent_text(limits.max_blank_percent, limits.min_count_for_percent_limits, 'the active profiles')}"
    if worst:
        msg = "; ".join(f"{p} would be emptied for {observed[p]['blanked']} profiles ({observed[p]['percent']}% "
                        f"of {whole} active)" for p in worst) + f"; allowed {allowed}"
    elif len(per_property):
        top = per_property.index[0]
        msg = f"at most {observed[top]['blanked']} profiles lose a value of one property ({top})"
    else:
        msg = "no property would be emptied"
    samples = []
    if worst:
        store = inp.store_people.set_index("profile_id")
        bad = mine.loc[mine["property"].isin(worst)].head(SAMPLE)
        samples = [{"profile_id": r.profile_id, "account_name": store.at[r.profile_id, "account_name"]
                    if "account_name" in store.columns else None, "property": r.property}
                   for r in bad.itertuples(index=False)]
    return _result("property_blanking", not worst, {"active": whole, "properties": observed}, allowed, msg,
                   connection=conn, samples=samples)


STORE_PEOPLE_COLUMNS = ["profile_id", "state", "source_connection", "account_name", "source_dn"]
"""The profile store people's columns the gate and the quarantine read of every row (the property values:
``GateInputs.store_touched``)."""
MV_PEOPLE_COLUMNS = ["mv_id", "state", "source_connection", "source_anchor", "source_dn", "work_email"]
"""The metaverse people's columns the gate and the quarantine read (``work_email`` when it is mapped)."""


# -- the gate --------------------------------------------------------------------------------
def evaluate_export_gate(inp: GateInputs, override: GateOverride | None = None,
                         runner: GxRunner | None = None) -> GateReport:
    """Run every check on ``inp``; returns the report (with ``override`` applied)."""
    t0 = time.perf_counter()
    gx = runner or GxRunner(SAMPLE)
    metric_seconds = 0.0

    def timed(fn: Callable[[], Any]) -> Any:
        nonlocal metric_seconds
        t = time.perf_counter()
        try:
            return fn()
        finally:
            metric_seconds += time.perf_counter() - t

    pending = inp.pending
    active_people = timed(lambda: metrics.active_by_connection(inp.store_people))
    active_groups = timed(lambda: metrics.active_by_connection(inp.store_groups))
    marked_people = timed(lambda: metrics.marked(pending.people, inp.store_people, "profile_id"))
    marked_groups = timed(lambda: metrics.marked(pending.groups, inp.store_groups, "group_id"))
    marked_counts = marked_people["source_connection"].value_counts() if len(marked_people) else pd.Series(dtype="int64")
    updated = timed(lambda: metrics.updates(pending.people, pending.managed))
    blanks = timed(lambda: metrics.blanked(
        pending.people, inp.store_touched if inp.store_touched is not None else inp.store_people, pending.managed))

    conns = [d.name for d in inp.directories]
    checks: dict[str, list[CheckResult]] = {}

    def add(result: CheckResult | None) -> None:
        if result is not None:
            checks.setdefault(result.name, []).append(result)

    for conn in conns:
        for r in timed(lambda: _source_checks(inp, conn, active_people, marked_counts)):
            add(r)
        for r in _anchor_checks(gx, inp, conn):
            add(r)
    add(_account_name_check(gx, inp))
    add(_values_fit_check(gx, inp))
    for d in inp.directories:
        add(_email_check(gx, inp, d.name))
        add(timed(lambda: _reference_check(inp, d)))
        add(timed(lambda: _delete_check("people_deletes", inp, d.name, marked_people, active_people,
                                        "profiles", "profile_id")))
        add(timed(lambda: _delete_check("group_deletes", inp, d.name, marked_groups, active_groups,
                                        "groups", "group_id")))
        add(timed(lambda: _update_check(inp, d.name, updated, active_people)))
        add(timed(lambda: _blank_check(inp, d.name, blanks, active_people)))

    ordered = [r for spec_name in BY_NAME for r in checks.get(spec_name, [])]
    timings = {"gx_import_s": round(gx.import_seconds, 3), "gx_validate_s": round(gx.validate_seconds, 3),
               "gx_rows": gx.rows_validated, "whole_set_s": round(gx.whole_set_seconds, 3),
               "metrics_s": round(metric_seconds, 3), "total_s": round(time.perf_counter() - t0, 3)}
    return GateReport(GATE, ordered, timings=timings).apply_override(override)
