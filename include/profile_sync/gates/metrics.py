"""Blast-radius metrics: what the pending exports would do, counted with pandas.

Pure functions over the staged frames (no I/O): deletes, updates and blanked
properties per connection, references per connection, and the people in
scope. Percentages are taken against the connection's *active* profiles in the
profile store before the export.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.sync.connector_space import attr_column
from profile_sync.sync.metaverse import SOURCE_COLUMNS
from profile_sync.sync.pending_exports import ACTIVE
from profile_sync.sync.transforms import MULTI

BOOKKEEPING_CHANGES = frozenset(SOURCE_COLUMNS)
"""Changes that move or rename a profile without rewriting it (not counted as updates)."""


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def in_scope_people(space: pd.DataFrame) -> int:
    return int((space["in_scope"] & (space["object_type"] == "person")).sum())


def active_by_connection(store: pd.DataFrame, state_column: str = "state") -> pd.Series:
    """Active rows of a profile-store frame per ``source_connection``."""
    if not len(store):
        return pd.Series(dtype="int64")
    active = store.loc[store[state_column] == ACTIVE]
    return active["source_connection"].value_counts()


def marked(ops: pd.DataFrame, store: pd.DataFrame, key: str) -> pd.DataFrame:
    """The store rows the pending ``mark`` operations would mark for deletion."""
    ids = ops.loc[ops["operation"] == "mark", key]
    if not len(store) or not len(ids):
        return store.iloc[0:0]
    return store.loc[store[key].isin(ids)]


def updates(people_ops: pd.DataFrame, managed: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Pending ``update`` operations that change at least one mapped property (not just a DN)."""
    ops = people_ops.loc[people_ops["operation"] == "update"]
    if ops.empty:
        return ops
    wanted = set(managed) - BOOKKEEPING_CHANGES
    touches = ops["changed"].fillna("").map(lambda text: bool(wanted.intersection(text.split(","))))
    return ops.loc[touches.astype(bool)]


def blanked(people_ops: pd.DataFrame, store: pd.DataFrame, managed: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """One row per (profile, property) the export would empty: ``profile_id``, ``source_connection``, ``property``."""
    cols = ["profile_id", "source_connection", "property"]
    ops = people_ops.loc[people_ops["operation"] == "update"]
    props = [p for p in managed if p in ops.columns and p in store.columns and p not in BOOKKEEPING_CHANGES]
    if ops.empty or not props or not len(store):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    current = store.set_index("profile_id").loc[ops["profile_id"], props]
    now_empty = ops[props].isna().to_numpy()
    had_value = current.notna().to_numpy()
    rows, columns = np.nonzero(now_empty & had_value)
    return pd.DataFrame({
        "profile_id": ops["profile_id"].to_numpy()[rows],
        "source_connection": ops["source_connection"].to_numpy()[rows],
        "property": np.array(props, dtype=object)[columns],
    }, columns=cols)


def _value_count_one(v: object) -> int:
    if isinstance(v, MULTI):
        return len(v)
    return 0 if v is None or (isinstance(v, float) and np.isnan(v)) else 1


def _value_count(values: pd.Series) -> int:
    """Number of values in a connector-space column (multi-valued cells count each value)."""
    return int(values.map(_value_count_one).sum()) if len(values) else 0


SPACE_COLUMNS = ["anchor", "dn", "dn_norm", "in_scope", "object_type", "row_hash"]
"""Connector-space columns the gate and the quarantine read (with :func:`reference_columns`)."""


def reference_columns(directory: ResolvedDirectory) -> list[str]:
    """Connector-space columns :func:`references` counts: reference properties and group members."""
    cols = [attr_column(m.source) for m in directory.mappings.values()
            if m.transform == "reference" and m.direction in ("import", "both")]
    return list(dict.fromkeys(cols + [attr_column(a) for a in directory.member_attributes]))


def references(space: pd.DataFrame, directory: ResolvedDirectory) -> int:
    """References the synchronization tries to resolve: reference properties of people, members of groups."""
    inside = space.loc[space["in_scope"]]
    people = inside.loc[inside["object_type"] == "person"]
    groups = inside.loc[inside["object_type"] == "group"]
    total = 0
    for mapping in directory.mappings.values():
        if mapping.transform == "reference" and mapping.direction in ("import", "both"):
            col = attr_column(mapping.source)
            if col in people.columns:
                total += int((people[col].map(_value_count_one) > 0).sum())
    for attr in directory.member_attributes:
        col = attr_column(attr)
        if col in groups.columns:
            total += _value_count(groups[col])
    return total
