"""The in-memory join planner (step 10) on frames: augmentation only, convergence, per-row errors."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from profile_sync.bcs.connector_space import build_connector_space, import_counts
from profile_sync.bcs.synchronize import VALUE_COLUMNS, plan_bcs_exports
from profile_sync.config.business_systems import BusinessSystem
from profile_sync.config.properties import PropertySpec
from profile_sync.profile_store.store import empty_values

SPECS = {"user_name": PropertySpec("string", 256), "cc": PropertySpec("string", 4),
         "level": PropertySpec("integer"), "tags": PropertySpec("string", 3, multi_valued=True)}


def system(multi: bool = False) -> BusinessSystem:
    mappings = {"cc": "cc", "level": "level", **({"tags": "tag"} if multi else {})}
    return BusinessSystem(name="hr", type="file", path="x.csv", mappings=mappings,
                          join={"profile_property": "user_name", "source_column": "login",
                                "normalize": ["strip", "lower", "domain_user"]})


def people(*rows: tuple) -> pd.DataFrame:
    """(profile_id, user_name, state, cc, level)."""
    return pd.DataFrame(list(rows), columns=["profile_id", "user_name", "state", "cc", "level"], dtype=object)


def space(bs: BusinessSystem, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=bs.columns, dtype=object)
    return build_connector_space(bs, frame)


def test_joins_on_the_normalised_key_and_only_writes_what_changed():
    bs = system()
    ps = people(("p1", "ann", "active", "A1", 1), ("p2", "bob", "active", None, None),
                ("p3", "cy", "marked_for_deletion", None, None))
    plan = plan_bcs_exports(bs, space(bs, [{"login": "CONTOSO\\Ann", "cc": "A1", "level": "2"},
                                           {"login": " contoso\\BOB", "cc": "B1", "level": None},
                                           {"login": "CONTOSO\\cy", "cc": "C1", "level": "3"}]), ps,
                            empty_values(), SPECS)
    assert plan.updates.to_dict("records") == [
        {"profile_id": "p1", "changed": "level", "cc": "A1", "level": 2, "changed.cc": False, "changed.level": True},
        {"profile_id": "p2", "changed": "cc", "cc": "B1", "level": None, "changed.cc": True, "changed.level": False}]
    # The marked profile is not augmented; its row counts as matching nobody.
    assert plan.unmatched["key"].tolist() == ["CONTOSO\\cy"]
    assert plan.stats["matched_people"] == 2 and plan.stats["people"] == 2


def test_frozen_people_are_not_planned():
    bs = system()
    ps = people(("p1", "ann", "active", None, None))
    plan = plan_bcs_exports(bs, space(bs, [{"login": "ann", "cc": "A1", "level": "1"}]), ps, empty_values(), SPECS,
                            frozen={"p1"})
    assert plan.updates.empty and plan.stats["people"] == 0


def test_rows_without_a_key_and_keys_of_nobody():
    bs = system()
    plan = plan_bcs_exports(bs, space(bs, [{"login": None, "cc": "X"}, {"login": "CONTOSO\\", "cc": "Y"},
                                           {"login": "zed", "cc": "Z"}]),
                            people(("p1", "ann", "active", None, None)), empty_values(), SPECS)
    assert plan.errors[["row", "kind", "reason"]].values.tolist() == [
        [0, "null_key", "no join value"], [1, "null_key", "join value 'CONTOSO\\\\' is empty after normalising"]]
    assert plan.unmatched["row"].tolist() == [2]


def test_one_to_many_collects_values_in_order_and_holds_conflicts():
    bs = system(multi=True)
    ps = people(("p1", "ann", "active", None, None), ("p2", "bob", "active", None, None))
    plan = plan_bcs_exports(bs, space(bs, [
        {"login": "ann", "cc": "A1", "tag": "z"}, {"login": "ann", "cc": None, "tag": "a"},
        {"login": "ann", "cc": "A1", "tag": "toolong"}, {"login": "ann", "cc": "A1", "tag": "z"},
        {"login": "bob", "cc": "B1", "tag": "x"}, {"login": "bob", "cc": "B2", "tag": "y"}]), ps, empty_values(), SPECS)
    # ann: one cost centre across her rows, tags in row order without repeats; a too-long tag leaves
    # her tags as they are (here: none), so only cc changes.
    assert plan.updates[["profile_id", "changed", "cc", "changed.tags"]].to_dict("records") == [
        {"profile_id": "p1", "changed": "cc", "cc": "A1", "changed.tags": False}]
    assert plan.values.empty
    assert set(plan.errors["kind"]) == {"invalid_value", "duplicate_key"}
    assert plan.errors.loc[plan.errors["kind"] == "duplicate_key", "row"].tolist() == [4, 5]


def test_multi_valued_changes_replace_the_whole_list():
    bs = system(multi=True)
    ps = people(("p1", "ann", "active", "A1", None))
    current = pd.DataFrame([("p1", "tags", 0, "b"), ("p1", "tags", 1, "a")], columns=VALUE_COLUMNS)
    rows = [{"login": "ann", "cc": "A1", "tag": "a"}, {"login": "ann", "cc": "A1", "tag": "b"}]
    plan = plan_bcs_exports(bs, space(bs, rows), ps, current, SPECS)
    assert plan.updates[["profile_id", "changed"]].values.tolist() == [["p1", "tags"]]
    assert plan.values[["property", "position", "value"]].values.tolist() == [["tags", 0, "a"], ["tags", 1, "b"]]
    same = plan_bcs_exports(bs, space(bs, rows[::-1]), ps, current, SPECS)
    assert same.updates.empty


def test_import_counts_by_key():
    bs = system()
    before = space(bs, [{"login": "a", "cc": "1"}, {"login": "b", "cc": "2"}, {"login": "c", "cc": "3"}])
    after = space(bs, [{"login": "b", "cc": "2"}, {"login": "c", "cc": "X"}, {"login": "d", "cc": "4"}])
    assert import_counts(before, after) == {"adds": 1, "updates": 1, "deletes": 1, "unchanged": 1}
    assert import_counts(None, after)["adds"] == 3


# -- properties that hold for any data ----------------------------------------------------------------
NAMES = st.sampled_from(["ann", "bob", "cy", "dee", "eve", "ANN ", "x\\bob", None, ""])
VALUES = st.one_of(st.none(), st.sampled_from(["A", "B", "C1", "TOOLONG", "", "7", "x"]))


def _apply(ps: pd.DataFrame, current: pd.DataFrame, plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What export_bcs does, in memory."""
    ps = ps.set_index("profile_id", drop=False).copy()
    for rec in plan.updates.to_dict("records"):
        for prop in rec["changed"].split(","):
            if prop in plan.single:
                value = rec[prop]
                ps.at[rec["profile_id"], prop] = None if pd.isna(value) else value
    pairs = {(pid, p) for pid, names in zip(plan.updates["profile_id"], plan.updates["changed"].str.split(","))
             for p in names if p in plan.multi}
    keep = [(pid, p) not in pairs for pid, p in zip(current["profile_id"], current["property"])]
    current = pd.concat([current.loc[keep], plan.values], ignore_index=True)
    return ps.reset_index(drop=True), current


@settings(max_examples=150, deadline=None)
@given(
    person_rows=st.lists(st.tuples(NAMES, st.sampled_from(["active", "active", "marked_for_deletion"]), VALUES),
                         max_size=8),
    source_rows=st.lists(st.tuples(NAMES, VALUES, st.sampled_from([None, "1", "2", "x"]), VALUES), max_size=12),
    multi=st.booleans(),
)
def test_augments_only_existing_active_people_and_converges(person_rows, source_rows, multi):
    bs = system(multi=multi)
    ps = people(*[(f"p{i}", n, s, cc, None) for i, (n, s, cc) in enumerate(person_rows)])
    rows = [{"login": n, "cc": cc, "level": lv, "tag": tag} for n, cc, lv, tag in source_rows]
    cs = space(bs, rows)
    plan = plan_bcs_exports(bs, cs, ps, empty_values(), SPECS)
    active = set(ps.loc[ps["state"] == "active", "profile_id"])
    # Augmentation only: every change is for an existing active person, at most once.
    assert set(plan.updates["profile_id"]) <= active
    assert plan.updates["profile_id"].is_unique
    assert set(plan.values["profile_id"]) <= set(plan.updates["profile_id"])
    # Every value planned fits its column.
    assert all(len(v) <= 4 for v in plan.updates["cc"].dropna())
    assert all(len(v) <= 3 for v in plan.values["value"])
    # Rows are accounted for: a row matches nobody, or carries an error, or matched someone.
    assert plan.stats["unmatched_rows"] + plan.stats["matched_rows"] <= len(cs)
    assert plan.stats["cleared"] <= plan.stats["updates"]
    # Applying the plan and planning again changes nothing.
    after, values_after = _apply(ps, empty_values(), plan)
    again = plan_bcs_exports(bs, cs, after, values_after, SPECS)
    assert again.updates.empty, again.updates
