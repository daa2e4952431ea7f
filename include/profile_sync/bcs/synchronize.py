"""Plan, then apply: business-system rows → pending exports of the properties they own.

``plan_bcs_exports`` is step 10 (``synchronize_bcs``): one in-memory join of
the connector space with the people of the profile store on the normalised
key, then a comparison with what the store holds. Nothing here touches a
database. Rules (DESIGN §3):

- only people who exist and are active are augmented; a row never creates a
  profile, and frozen people (disabled under ``freeze``) are left alone;
- only the properties the connection maps are written (it owns them);
- a person whose row disappeared loses those properties (set to NULL);
- rows that match nobody are counted and sampled, never an error;
- bad rows are per-row errors and the rest proceeds: a row without a key is
  skipped; rows sharing a key (1:1 connections, or 1:many rows that disagree
  on a single-valued property) and keys matching several people leave those
  people as they are; a value that does not fit its property's type or length
  leaves that property of that person as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from profile_sync.bcs.connector_space import source_column
from profile_sync.bcs.keys import normalize_keys
from profile_sync.bcs.values import convert, nones, to_text
from profile_sync.config.business_systems import BusinessSystem
from profile_sync.config.properties import PropertySpec
from profile_sync.sync.pending_exports import ACTIVE, values_equal

ErrorKind = Literal["null_key", "duplicate_key", "ambiguous_key", "invalid_value"]
ERROR_COLUMNS = ["row", "key", "kind", "property", "reason", "value"]
UNMATCHED_COLUMNS = ["row", "key", "key_norm"]
VALUE_COLUMNS = ["profile_id", "property", "position", "value"]
CHANGED_PREFIX = "changed."
_SEP = "\x1f"


@dataclass(frozen=True)
class BcsPlan:
    """The change-set of one business system for the profile store."""

    updates: pd.DataFrame
    """``profile_id``, ``changed`` (comma-separated properties), the single-valued properties' new values,
    then one boolean ``changed.<property>`` per owned property."""
    values: pd.DataFrame
    """New values of the changed multi-valued properties: ``profile_id``, ``property``, ``position``, ``value``
    (a changed property with no row here is emptied)."""
    errors: pd.DataFrame
    """Per-row errors (``ERROR_COLUMNS``)."""
    unmatched: pd.DataFrame
    """Rows whose key matches no person (``UNMATCHED_COLUMNS``)."""
    single: tuple[str, ...]
    multi: tuple[str, ...]
    stats: dict[str, int] = field(default_factory=dict)


def changed_flag(prop: str) -> str:
    """Name of the boolean column of ``BcsPlan.updates`` saying whether ``prop`` changes for that person."""
    return CHANGED_PREFIX + prop


def owned_properties(bs: BusinessSystem, specs: dict[str, PropertySpec]) -> tuple[list[str], list[str]]:
    """The properties ``bs`` owns: (single-valued, multi-valued), in mapping order."""
    single = [p for p in bs.mappings if not specs[p].multi_valued]
    multi = [p for p in bs.mappings if specs[p].multi_valued]
    return single, multi


def _errors(rows: pd.DataFrame, kind: ErrorKind, reasons: list[str] | pd.Series, prop: str | None = None,
            values: pd.Series | None = None) -> pd.DataFrame:
    return pd.DataFrame({
        "row": rows["row"].to_numpy(dtype="int64"), "key": rows["key"].to_numpy(dtype=object),
        "kind": kind, "property": prop,
        "reason": np.asarray(reasons, dtype=object),
        "value": (values.map(lambda v: str(v)[:200], na_action="ignore").to_numpy(dtype=object)
                  if values is not None else None),
    }, columns=ERROR_COLUMNS)


def _signature(long: pd.DataFrame) -> pd.Series:
    """(profile_id, property) → the values in order, joined (for comparing lists)."""
    if long.empty:
        return pd.Series([], dtype=object, index=pd.MultiIndex.from_arrays([[], []], names=["profile_id", "property"]))
    ordered = long.sort_values(["profile_id", "property", "position"], kind="stable")
    return ordered.groupby(["profile_id", "property"], sort=False)["value"].agg(_SEP.join)


def _changed_names(changed: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Per row of a boolean matrix, the comma-joined names of its true columns (one join per distinct row)."""
    if not changed.size:
        return np.empty(len(changed), dtype=object)
    codes = changed.astype(np.int64) @ (np.int64(1) << np.arange(changed.shape[1], dtype=np.int64))
    distinct, inverse = np.unique(codes, return_inverse=True)
    joined = np.array([",".join(names[(c >> np.arange(len(names))) & 1 == 1]) for c in distinct], dtype=object)
    return joined[inverse]


def plan_bcs_exports(
    bs: BusinessSystem,
    space: pd.DataFrame,
    people: pd.DataFrame,
    current_values: pd.DataFrame,
    specs: dict[str, PropertySpec],
    frozen: set[str] | frozenset[str] = frozenset(),
) -> BcsPlan:
    """Join ``space`` to ``people`` (the profile-store connector space) and compare with what they hold.

    ``current_values`` are the stored values of multi-valued properties (``VALUE_COLUMNS``).
    """
    single, multi = owned_properties(bs, specs)
    errors: list[pd.DataFrame] = []

    # -- rows without a usable key ------------------------------------------------------------
    nokey = space["key_norm"].isna()
    if nokey.any():
        bad = space.loc[nokey]
        reasons = ["no join value" if pd.isna(k) else f"join value {k!r} is empty after normalising"
                   for k in bad["key"]]
        errors.append(_errors(bad, "null_key", reasons))
    keyed = space.loc[~nokey].reset_index(drop=True)

    # -- values → property types; a value that does not fit leaves that property as it is -------
    typed = pd.DataFrame({"key_norm": keyed["key_norm"]})
    invalid = pd.DataFrame(index=keyed.index)
    for p, mapping in bs.mappings.items():
        raw = keyed[source_column(mapping.column)]
        converted = convert(raw, specs[p], p)
        typed[p] = converted.values
        invalid[p] = converted.reasons.notna()
        if invalid[p].any():
            rows = keyed.loc[invalid[p]]
            errors.append(_errors(rows, "invalid_value", converted.reasons[invalid[p]], p, raw[invalid[p]]))

    # -- several rows for one key -------------------------------------------------------------
    counts = keyed["key_norm"].value_counts()
    repeated = counts.index[counts.to_numpy() > 1]
    held_keys: set[str] = set()
    if len(repeated):
        in_repeated = keyed["key_norm"].isin(repeated)
        if not multi:
            rows = keyed.loc[in_repeated]
            n = rows["key_norm"].map(counts)
            errors.append(_errors(rows, "duplicate_key", [f"duplicate join key {k!r} ({c} rows)"
                                                          for k, c in zip(rows["key_norm"], n)]))
            held_keys = set(repeated)
        else:
            group = typed.loc[in_repeated, ["key_norm", *single]]
            for p in single:
                ok = group[p].notna() & ~invalid.loc[in_repeated, p]
                distinct = group.loc[ok].groupby("key_norm")[p].nunique()
                conflict = set(distinct.index[distinct.to_numpy() > 1]) - held_keys
                if conflict:
                    rows = keyed.loc[keyed["key_norm"].isin(conflict)]
                    errors.append(_errors(rows, "duplicate_key", [
                        f"duplicate join key {k!r} with different values for {p}" for k in rows["key_norm"]], p))
                    held_keys |= conflict

    # -- the people side: active, not frozen; a key shared by several people is ambiguous ----
    prop = bs.join.profile_property
    eligible = people.loc[(people["state"] == ACTIVE) & ~people["profile_id"].isin(list(frozen))]
    join_values = eligible[prop] if prop in eligible.columns else nones(eligible.index)
    pkeys = normalize_keys(join_values, bs.join.normalize)
    pcounts = pkeys.value_counts()
    shared = set(pcounts.index[pcounts.to_numpy() > 1])
    row_keys = set(keyed["key_norm"])
    ambiguous = shared & row_keys
    if ambiguous:
        rows = keyed.loc[keyed["key_norm"].isin(ambiguous)]
        errors.append(_errors(rows, "ambiguous_key", [f"join value {k!r} matches {pcounts[k]} people"
                                                      for k in rows["key_norm"]]))
    person_keys = set(pkeys.dropna())
    unmatched_mask = ~keyed["key_norm"].isin(person_keys)
    unmatched = keyed.loc[unmatched_mask, UNMATCHED_COLUMNS].reset_index(drop=True)

    # -- one desired record per key ------------------------------------------------------------
    usable = ~keyed["key_norm"].isin(held_keys | ambiguous) & ~unmatched_mask
    if len(repeated):
        grouped = typed.loc[usable].groupby("key_norm", sort=False)
        agg = grouped[single].first() if single else pd.DataFrame(index=grouped.size().index)
        held_props = invalid.loc[usable].groupby(typed.loc[usable, "key_norm"], sort=False).any()
    else:
        agg = typed.loc[usable, ["key_norm", *single]].set_index("key_norm")
        held_props = invalid.loc[usable].set_index(typed.loc[usable, "key_norm"])
    long_parts = []
    for p in multi:
        ok = usable & typed[p].notna() & ~invalid[p]
        part = pd.DataFrame({"key_norm": typed.loc[ok, "key_norm"],
                             "value": typed.loc[ok, p].map(to_text)}).drop_duplicates()
        part["property"] = p
        part["position"] = part.groupby("key_norm", sort=False).cumcount().astype("int64")
        long_parts.append(part)

    # -- desired state of every eligible person who is not held ---------------------------------
    held_people = pkeys.isin(held_keys | ambiguous).to_numpy()
    target = eligible.loc[~held_people]
    tkeys = pkeys[~held_people]
    desired = pd.DataFrame({"profile_id": target["profile_id"].to_numpy(dtype=object),
                            "key_norm": tkeys.to_numpy(dtype=object)})
    if single:
        desired = desired.merge(agg, left_on="key_norm", right_index=True, how="left")
    matched = desired["key_norm"].isin(agg.index).to_numpy()
    keep = held_props.reindex(desired["key_norm"]).fillna(False).astype(bool).to_numpy() \
        if len(held_props.columns) else np.zeros((len(desired), 0), dtype=bool)
    keep_of = {p: keep[:, i] for i, p in enumerate(held_props.columns)}
    no_hold = np.zeros(len(desired), dtype=bool)

    changed = np.zeros((len(desired), len(single) + len(multi)), dtype=bool)
    had_value = np.zeros(len(desired), dtype=bool)
    for i, p in enumerate(single):
        current = target[p] if p in target.columns else nones(target.index)
        current = pd.Series(current.to_numpy(dtype=object), index=desired.index)
        changed[:, i] = ~values_equal(desired[p], current) & ~keep_of.get(p, no_hold)
        had_value |= current.notna().to_numpy()

    new_values = pd.DataFrame({c: pd.Series(dtype="int64" if c == "position" else object) for c in VALUE_COLUMNS})
    if multi:
        long = pd.concat(long_parts, ignore_index=True)
        key_to_person = desired[["profile_id", "key_norm"]].dropna()
        want = long.merge(key_to_person, on="key_norm", how="inner")[VALUE_COLUMNS]
        have = current_values.loc[current_values["property"].isin(multi)
                                  & current_values["profile_id"].isin(desired["profile_id"]), VALUE_COLUMNS]
        cmp = pd.concat([_signature(want).rename("want"), _signature(have).rename("have")], axis=1)
        differs = cmp["want"].fillna("\x00") != cmp["have"].fillna("\x00")
        pairs = cmp.index[differs.to_numpy()]
        position = pd.Series(np.arange(len(desired)), index=desired["profile_id"])
        had = have["profile_id"].unique()
        had_value[position[had].to_numpy()] = True
        for j, p in enumerate(multi):
            who = [pid for pid, prop_ in pairs if prop_ == p]
            rows = position[who].to_numpy() if who else np.zeros(0, dtype=int)
            col = np.zeros(len(desired), dtype=bool)
            col[rows] = True
            changed[:, len(single) + j] = col & ~keep_of.get(p, no_hold)
        changed_pairs = pd.DataFrame(
            [(pid, p) for pid, p in pairs], columns=["profile_id", "property"]) if len(pairs) else None
        if changed_pairs is not None:
            keep_pairs = changed_pairs.loc[
                changed[position[changed_pairs["profile_id"]].to_numpy(),
                        [len(single) + multi.index(p) for p in changed_pairs["property"]]]]
            new_values = want.merge(keep_pairs, on=["profile_id", "property"], how="inner")[VALUE_COLUMNS]
            new_values = new_values.sort_values(["profile_id", "property", "position"]).reset_index(drop=True)

    names = np.array([*single, *multi], dtype=object)
    any_change = changed.any(axis=1)
    updates = desired.loc[any_change, ["profile_id", *single]].copy()
    updates.insert(1, "changed", pd.Series(_changed_names(changed[any_change], names), index=updates.index,
                                           dtype=object))
    for i, p in enumerate(names):
        updates[changed_flag(p)] = changed[any_change, i]
    for p in single:
        if specs[p].type == "integer":
            updates[p] = pd.array([None if v is None or pd.isna(v) else int(v) for v in updates[p]], dtype="Int64")
        else:
            column = updates[p].astype(object)
            updates[p] = column.where(column.notna(), None)
    cleared = int((any_change & ~matched & had_value).sum())

    error_frame = (pd.concat(errors, ignore_index=True) if errors
                   else pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else object) for c in ERROR_COLUMNS}))
    error_frame = error_frame.sort_values(["row", "kind"], kind="stable").reset_index(drop=True)
    stats = {
        "rows": len(space),
        "matched_rows": int((usable & ~unmatched_mask).sum()),
        "matched_people": int(matched.sum()),
        "unmatched_rows": len(unmatched),
        "people": len(eligible),
        "people_with_values": int(had_value.sum()),
        "held_people": int(held_people.sum()),
        "updates": int(any_change.sum()),
        "cleared": cleared,
        "unchanged": int((~any_change).sum()),
        "error_rows": int(error_frame["row"].nunique()),
        **{f"errors_{k}": int((error_frame["kind"] == k).sum())
           for k in ("null_key", "duplicate_key", "ambiguous_key", "invalid_value")},
    }
    return BcsPlan(updates.reset_index(drop=True), new_values, error_frame, unmatched, tuple(single), tuple(multi),
                   stats)
