"""Plan, then apply: pending exports to the profile store.

``plan_profile_store_exports`` compares the metaverse (what the profile store
should hold) with the profile-store connector space (what it holds) and returns
a change-set; ``profile_store.writer`` applies it. Nothing here touches a
database.

Rules (DESIGN §3): the directory wins for mapped properties; properties no
connection maps are never touched; deleted or out-of-scope people are *marked
for deletion*, never dropped; a person who comes back is un-marked; frozen
people (disabled under the ``freeze`` policy) are kept and not updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import pandas as pd

from profile_sync._pandas import value_lengths
from profile_sync.config.properties import PropertySpec
from profile_sync.sync.metaverse import SOURCE_COLUMNS, Metaverse

Operation = Literal["add", "update", "mark", "unmark"]
ACTIVE = "active"
MARKED = "marked_for_deletion"
HELD_COLUMNS = ["profile_id", "source_connection", "source_dn", "reason"]
STORE_KEY_COLUMNS = ["profile_id", "state", "source_connection"]
"""The profile store people's columns the plan reads of every row (the others: of the people it compares)."""


@dataclass(frozen=True)
class PendingExports:
    """The change-set for the profile store."""

    people: pd.DataFrame
    """``profile_id``, ``operation``, ``changed`` (comma-separated columns), then the desired values."""
    groups: pd.DataFrame
    """``group_id``, ``operation``, ``changed``, ``name`` and source columns."""
    memberships: pd.DataFrame
    """``group_id``, ``member_type``, ``member_id``, ``operation`` (``add`` | ``remove``)."""
    held: pd.DataFrame
    """People held back with a reason (``HELD_COLUMNS``): their profile is left as it is."""
    managed: tuple[str, ...]
    """Properties the directory owns (written on add/update)."""
    unchanged_people: int
    unchanged_groups: int

    def counts(self) -> dict[str, int]:
        ops = self.people["operation"].value_counts()
        gops = self.groups["operation"].value_counts()
        mops = self.memberships["operation"].value_counts()
        return {
            "adds": int(ops.get("add", 0)),
            "updates": int(ops.get("update", 0) + ops.get("unmark", 0)),
            "deletes": int(ops.get("mark", 0)),
            "unchanged": self.unchanged_people,
            "errors": len(self.held),
            "group_adds": int(gops.get("add", 0)),
            "group_updates": int(gops.get("update", 0) + gops.get("unmark", 0)),
            "group_deletes": int(gops.get("mark", 0)),
            "membership_adds": int(mops.get("add", 0)),
            "membership_removes": int(mops.get("remove", 0)),
        }

    def is_empty(self) -> bool:
        return self.people.empty and self.groups.empty and self.memberships.empty


def values_equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal (bytes, bools, strings alike)."""
    av = a.to_numpy(dtype=object)
    bv = b.to_numpy(dtype=object)
    an = pd.isna(a).to_numpy()
    bn = pd.isna(b).to_numpy()
    try:
        eq = np.asarray(av == bv, dtype=bool) if len(av) else np.zeros(0, bool)  # element-wise ==, in C
    except (ValueError, TypeError):  # an element whose == is not a bool (an array): one at a time
        eq = np.fromiter((bool(np.all(x == y)) for x, y in zip(av, bv)), dtype=bool, count=len(av))
    return (an & bn) | (~an & ~bn & eq)


def _changed_columns(desired: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> pd.Series:
    """For aligned frames: the comma-joined names of the columns that differ ('' when none)."""
    if not len(desired):
        return pd.Series([], dtype=object)
    diff = np.column_stack([~values_equal(desired[c], current[c]) for c in columns]) if columns else \
        np.zeros((len(desired), 0), dtype=bool)
    names = np.array(columns, dtype=object)
    return pd.Series([",".join(names[row]) for row in diff], index=desired.index, dtype=object)


def _too_long(people: pd.DataFrame, specs: dict[str, PropertySpec], columns: list[str]) -> pd.Series:
    reason = pd.Series(None, index=people.index, dtype=object)
    for c in columns:
        spec = specs.get(c)
        if spec is None or spec.type != "string" or spec.max_length is None:
            continue
        lengths = pd.Series(value_lengths(people[c]), index=people.index).fillna(0).astype("int64")
        bad = (lengths > spec.max_length) & reason.isna()
        reason[bad] = [f"value too long for {c} ({n} > {spec.max_length} characters)" for n in lengths[bad]]
    return reason


def _no_account_name(connections: pd.Series, sources: Mapping[str, str]) -> list[str]:
    """Why a person has no account name: the attribute that feeds it (per connection) had no value."""
    feeding = ", ".join(f"`{a}` of {c}" for c, a in sorted(sources.items())) or "none does"
    return [f"no value for `{sources[c]}`, which feeds `account_name`" if c in sources
            else f"no value for `account_name`: {c} does not map it, and no connection that does ({feeding}) "
                 "has this person" for c in connections]


def plan_profile_store_exports(
    mv: Metaverse,
    store_people: pd.DataFrame,
    store_groups: pd.DataFrame,
    store_memberships: pd.DataFrame,
    managed: list[str],
    specs: dict[str, PropertySpec],
    account_name_sources: Mapping[str, str] | None = None,
    store_examined: pd.DataFrame | None = None,
) -> PendingExports:
    """Compare the metaverse with the profile store and return the pending exports.

    After a delta synchronization (``mv.computed`` set) only the recomputed
    people are compared; everyone else is unchanged by construction.
    ``account_name_sources``: per connection, the attribute that feeds ``account_name``
    (named in the reason a person without one is held). ``store_examined``: the store's rows of (at least)
    the recomputed people with every compared column, when ``store_people`` holds only
    :data:`STORE_KEY_COLUMNS` (a delta reads no other person's properties); default ``store_people``.
    """
    compare = [*managed, *SOURCE_COLUMNS]
    people = mv.people.rename(columns={"mv_id": "profile_id"})
    active = people["state"] == ACTIVE
    examined = active if mv.computed is None else active & people["profile_id"].isin(mv.computed)
    desired = people.loc[examined]  # a new frame: pandas 3 copies on write
    for c in managed:
        if c not in desired.columns:
            desired[c] = None

    # Held back: no account name, values too long for their column, duplicate account names among active people.
    held_reason = pd.Series(None, index=desired.index, dtype=object)
    if "account_name" in managed:
        names = desired["account_name"]
        blank = (names.astype("string").str.strip().fillna("") == "") & ~desired["frozen"].astype(bool)
        held_reason[blank] = _no_account_name(desired.loc[blank, "source_connection"], account_name_sources or {})
    too_long = _too_long(desired, specs, managed)
    held_reason = held_reason.where(held_reason.notna(), too_long)
    if "account_name" in desired.columns:
        names = desired["account_name"].str.lower()
        others = people.loc[active & ~examined, "account_name"].dropna().str.lower() \
            if "account_name" in people.columns else pd.Series([], dtype=object)
        dup = names.notna() & (names.duplicated(keep=False) | names.isin(others))
        held_reason[dup & held_reason.isna()] = [
            f"duplicate account name {n!r}" for n in desired.loc[dup & held_reason.isna(), "account_name"]]
    is_held = held_reason.notna()
    held = pd.DataFrame({
        "profile_id": desired.loc[is_held, "profile_id"].to_numpy(),
        "source_connection": desired.loc[is_held, "source_connection"].to_numpy(),
        "source_dn": desired.loc[is_held, "source_dn"].to_numpy(),
        "reason": held_reason[is_held].to_numpy(),
    }, columns=HELD_COLUMNS)
    desired = desired.loc[~is_held]

    store = store_people.set_index("profile_id", drop=False) if len(store_people) else None
    in_store = desired["profile_id"].isin(store.index) if store is not None else pd.Series(False, index=desired.index)

    adds = desired.loc[~in_store & ~desired["frozen"]].assign(operation="add", changed=",".join(compare))
    existing = desired.loc[in_store & ~desired["frozen"]]
    unchanged = 0
    updates = existing.iloc[0:0].assign(operation=pd.Series(dtype=object), changed=pd.Series(dtype=object))
    if len(existing):
        full = store if store_examined is None else store_examined.set_index("profile_id", drop=False)
        current = full.loc[existing["profile_id"]].reset_index(drop=True)
        for c in compare:
            if c not in current.columns:
                current[c] = None
        ex = existing.reset_index(drop=True)
        changed = _changed_columns(ex, current, compare)
        was_marked = (current["state"] != ACTIVE).to_numpy()
        ex["changed"] = changed.to_numpy()
        ex["operation"] = np.where(was_marked, "unmark", "update")
        todo = (changed != "").to_numpy() | was_marked
        updates = ex.loc[todo]
        unchanged = int((~todo).sum())

    # Marks: profiles we sourced that are active in the store but not in the metaverse any more.
    keep = set(people.loc[people["state"] == ACTIVE, "profile_id"]) | set(held["profile_id"])
    marks = pd.DataFrame({"profile_id": pd.Series(dtype=object)})
    if store is not None:
        ours = store_people["source_connection"].notna() & (store_people["state"] == ACTIVE)
        marks = store_people.loc[ours & ~store_people["profile_id"].isin(keep), ["profile_id"]]
    marks = marks.assign(operation="mark", changed="state")
    if mv.computed is not None and store is not None:
        not_examined = ((store_people["state"] == ACTIVE) & ~store_people["profile_id"].isin(desired["profile_id"])
                        & ~store_people["profile_id"].isin(marks["profile_id"]))
        unchanged += int(not_examined.sum())

    value_cols = ["profile_id", "operation", "changed", *compare]
    people_ops = pd.concat([adds[value_cols], updates[value_cols], marks], ignore_index=True)[value_cols]

    groups_ops, unchanged_groups = _plan_groups(mv.groups, store_groups)
    final_people = (set(store_people.loc[store_people["state"] == ACTIVE, "profile_id"]) if len(store_people)
                    else set()) | set(adds["profile_id"]) | set(updates["profile_id"])
    final_people -= set(marks["profile_id"])
    member_ops = _plan_memberships(mv.memberships, store_memberships, final_people)
    return PendingExports(people_ops.reset_index(drop=True), groups_ops, member_ops, held,
                          tuple(managed), unchanged, unchanged_groups)


def _plan_groups(mv_groups: pd.DataFrame, store_groups: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    compare = ["name", *SOURCE_COLUMNS]
    groups = mv_groups.rename(columns={"mv_id": "group_id"})
    desired = groups.loc[groups["state"] == ACTIVE]
    cols = ["group_id", "operation", "changed", *compare]
    if not len(store_groups):
        return desired.assign(operation="add", changed=",".join(compare))[cols].reset_index(drop=True), 0
    store = store_groups.set_index("group_id", drop=False)
    in_store = desired["group_id"].isin(store.index)
    adds = desired.loc[~in_store].assign(operation="add", changed=",".join(compare))
    ex = desired.loc[in_store].reset_index(drop=True)
    current = store.loc[ex["group_id"]].reset_index(drop=True)
    changed = _changed_columns(ex, current, compare)
    was_marked = (current["state"] != ACTIVE).to_numpy()
    ex["changed"] = changed.to_numpy()
    ex["operation"] = np.where(was_marked, "unmark", "update")
    todo = (changed != "").to_numpy() | was_marked
    gone = store_groups.loc[(store_groups["state"] == ACTIVE) & store_groups["source_connection"].notna()
                            & ~store_groups["group_id"].isin(desired["group_id"]), ["group_id"]]
    marks = gone.assign(operation="mark", changed="state")
    out = pd.concat([adds[cols], ex.loc[todo, cols], marks], ignore_index=True)[cols]
    return out, int((~todo).sum())


def _plan_memberships(desired: pd.DataFrame, store: pd.DataFrame, people: set[str]) -> pd.DataFrame:
    key = ["group_id", "member_type", "member_id"]
    want = desired.loc[(desired["member_type"] != "person") | desired["member_id"].isin(people), key]
    have = store[key] if len(store) else pd.DataFrame({c: pd.Series(dtype=object) for c in key})
    m = want.merge(have, on=key, how="outer", indicator=True)
    adds = m.loc[m["_merge"] == "left_only", key].assign(operation="add")
    removes = m.loc[m["_merge"] == "right_only", key].assign(operation="remove")
    return pd.concat([adds, removes], ignore_index=True)
