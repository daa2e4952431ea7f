"""Write-back: profile store → directory (steps 6–8), planned here, applied by the directory writer.

Properties mapped with ``direction: export`` or ``both`` (the picture → ``thumbnailPhoto`` /
``jpegPhoto``) are written to the directory when the profile store's value differs from the
directory connector space's value. Plan, then apply: :func:`plan_directory_exports` returns the
change-set; ``directory.ldap.writer`` applies it object by object and ``confirm_directory``
re-reads what was written.

**Two-way properties (``both``) and the rule that prevents flip-flops.** The connector space and
the profile store are compared with the *baseline*: the value both sides agreed on at the end of the
last run (a hash per object and property, ``wb/<connection>`` in the state store). Whichever side
differs from the baseline changed since, and wins:

* only the directory changed → the import flows it to the profile store (the directory wins, as for
  every mapped property);
* only the profile store changed (someone set a picture) → the synchronization keeps the profile
  store's value (:func:`hold_profile_changes`), so the directory's *old* value never overwrites it
  before the write-back; step 6 then plans the export;
* both changed between two runs → the directory wins (it is the authority for mapped properties);
* no baseline yet (first run with write-back) → the directory wins, except that a value in the
  profile store where the directory has none is written back.

After a write-back the confirming import puts the written value into the connector space and the
baseline, so the next import brings back exactly the profile store's value: nothing flips back.
A refused write leaves the baseline as it was, so the next run tries again (and reports again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.settings import PropertyMapping
from profile_sync.sync.connector_space import attr_column

BASELINE_COLUMNS = ["anchor", "property", "value_hash"]
PENDING_COLUMNS = ["profile_id", "anchor", "dn", "property", "attribute", "value", "value_hash"]
"""One row per object and property to write: ``value`` is bytes, or None to remove the values."""


def writeback_mappings(directory: ResolvedDirectory) -> dict[str, PropertyMapping]:
    """Properties written back to this directory (``export`` or ``both``)."""
    return {p: m for p, m in directory.mappings.items() if m.direction in ("export", "both")}


def two_way_mappings(directory: ResolvedDirectory) -> dict[str, PropertyMapping]:
    return {p: m for p, m in directory.mappings.items() if m.direction == "both"}


def value_bytes(value: object) -> bytes | None:
    """The directory form of a value: bytes, or None when empty (first value of a multi-valued one)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        value = value[0] if len(value) else None
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        out = bytes(value)
    elif isinstance(value, (bool, np.bool_)):
        out = b"TRUE" if value else b"FALSE"
    else:
        out = str(value).encode("utf-8")
    return out or None


def value_hash(value: object) -> str | None:
    raw = value_bytes(value)
    return None if raw is None else hashlib.blake2b(raw, digest_size=16).hexdigest()


def empty_baseline() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in BASELINE_COLUMNS})


def empty_pending() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PENDING_COLUMNS})


def _people_links(links: pd.DataFrame | None, connection: str) -> pd.DataFrame:
    if links is None or links.empty:
        return pd.DataFrame({"anchor": pd.Series(dtype=object), "mv_id": pd.Series(dtype=object)})
    keep = (links["connection"] == connection) & links["connected"].astype(bool) & (links["object_type"] == "person")
    return links.loc[keep, ["anchor", "mv_id"]]


def _baseline_lookup(baseline: pd.DataFrame | None, prop: str) -> dict[str, str | None]:
    if baseline is None or baseline.empty:
        return {}
    rows = baseline.loc[baseline["property"] == prop]
    return dict(zip(rows["anchor"], rows["value_hash"]))


@dataclass(frozen=True)
class DirectoryExportPlan:
    """Pending directory exports of one connection and the baseline after the agreed values."""

    pending: pd.DataFrame
    """``PENDING_COLUMNS``."""
    baseline: pd.DataFrame
    """``BASELINE_COLUMNS``: agreed values now; pending ones keep their previous value until confirmed."""
    agreed: int


def plan_directory_exports(directory: ResolvedDirectory, space: pd.DataFrame, links: pd.DataFrame | None,
                           store_people: pd.DataFrame | None, baseline: pd.DataFrame | None) -> DirectoryExportPlan:
    """Compare the profile store with the directory connector space for every write-back property."""
    mappings = writeback_mappings(directory)
    people = _people_links(links, directory.name)
    if not mappings or people.empty or store_people is None or store_people.empty:
        return DirectoryExportPlan(empty_pending(), baseline if baseline is not None else empty_baseline(), 0)
    active = store_people.loc[store_people["state"] == "active"]
    cs = space.loc[space["in_scope"] & (space["object_type"] == "person")]
    columns = ["anchor", "dn", *{attr_column(m.source) for m in mappings.values() if attr_column(m.source) in cs}]
    joined = people.merge(cs[columns], on="anchor", how="inner").merge(
        active[["profile_id", *[p for p in mappings if p in active.columns]]],
        left_on="mv_id", right_on="profile_id", how="inner")
    pending_parts: list[pd.DataFrame] = []
    agreed_parts: list[pd.DataFrame] = []
    for prop, mapping in mappings.items():
        column = attr_column(mapping.source)
        if prop not in joined.columns:
            continue
        current = joined[column] if column in joined.columns else pd.Series(None, index=joined.index, dtype=object)
        want = [value_bytes(v) for v in joined[prop]]
        have = [value_bytes(v) for v in current]
        differs = np.fromiter((w != h for w, h in zip(want, have)), dtype=bool, count=len(want))
        todo = joined.loc[differs]
        pending_parts.append(pd.DataFrame({
            "profile_id": todo["profile_id"].to_numpy(), "anchor": todo["anchor"].to_numpy(),
            "dn": todo["dn"].to_numpy(), "property": prop, "attribute": mapping.source,
            "value": pd.Series([w for w, d in zip(want, differs) if d], dtype=object).to_numpy(),
            "value_hash": [value_hash(w) for w, d in zip(want, differs) if d]}, columns=PENDING_COLUMNS))
        same = joined.loc[~differs]
        agreed_parts.append(pd.DataFrame({
            "anchor": same["anchor"].to_numpy(), "property": prop,
            "value_hash": [value_hash(h) for h, d in zip(have, differs) if not d]}, columns=BASELINE_COLUMNS))
    pending = pd.concat(pending_parts, ignore_index=True) if pending_parts else empty_pending()
    agreed = pd.concat(agreed_parts, ignore_index=True) if agreed_parts else empty_baseline()
    return DirectoryExportPlan(pending.astype(object), merge_baseline(baseline, agreed), len(agreed))


def merge_baseline(baseline: pd.DataFrame | None, updates: pd.DataFrame) -> pd.DataFrame:
    """``baseline`` with the (anchor, property) rows of ``updates`` replaced or added."""
    if baseline is None or baseline.empty:
        return updates[BASELINE_COLUMNS].reset_index(drop=True).astype(object)
    if updates.empty:
        return baseline
    key = ["anchor", "property"]
    keep = baseline.merge(updates[key], on=key, how="left", indicator=True)["_merge"] == "left_only"
    out = pd.concat([baseline.loc[keep.to_numpy(), BASELINE_COLUMNS], updates[BASELINE_COLUMNS]], ignore_index=True)
    return out.astype(object)


def hold_profile_changes(people: pd.DataFrame, store_people: pd.DataFrame | None,
                         spaces: dict[str, pd.DataFrame], directories: list[ResolvedDirectory],
                         baselines: dict[str, pd.DataFrame | None]) -> tuple[pd.DataFrame, int]:
    """Metaverse people with profile-side changes of two-way properties kept (see the module docstring).

    ``people`` is the metaverse (``mv_id`` = ``profile_id``, ``source_connection``, ``source_anchor``,
    property columns); returns a new frame and how many values were held.
    """
    if store_people is None or store_people.empty:
        return people, 0
    out = people
    held_total = 0
    store = store_people.set_index("profile_id")
    for d in directories:
        both = two_way_mappings(d)
        space = spaces.get(d.name)
        if not both or space is None:
            continue
        mine = (people["source_connection"] == d.name) & (people["state"] == "active")
        if not mine.any():
            continue
        rows = people.loc[mine, ["mv_id", "source_anchor"]]
        cs = space.set_index("anchor")
        for prop, mapping in both.items():
            if prop not in people.columns or prop not in store.columns:
                continue
            column = attr_column(mapping.source)
            directory_values = cs[column].reindex(rows["source_anchor"]).to_numpy() if column in cs else \
                np.full(len(rows), None, dtype=object)
            store_values = store[prop].reindex(rows["mv_id"]).to_numpy()
            base = _baseline_lookup(baselines.get(d.name), prop)
            hold = np.zeros(len(rows), dtype=bool)
            for i, (anchor, dv, pv) in enumerate(zip(rows["source_anchor"], directory_values, store_values)):
                d_hash, p_hash = value_hash(dv), value_hash(pv)
                if anchor in base:
                    b = base[anchor]
                    hold[i] = p_hash != b and d_hash == b
                else:
                    hold[i] = d_hash is None and p_hash is not None
            if hold.any():
                if out is people:
                    out = people.copy()
                index = rows.index[hold]
                out.loc[index, prop] = pd.Series(list(store_values[hold]), index=index, dtype=object)
                held_total += int(hold.sum())
    return out, held_total


def exported_baseline(confirmed: pd.DataFrame) -> pd.DataFrame:
    """Baseline rows for confirmed writes: both sides now hold the written value."""
    return pd.DataFrame({"anchor": confirmed["anchor"].to_numpy(), "property": confirmed["property"].to_numpy(),
                         "value_hash": confirmed["value_hash"].to_numpy()}, columns=BASELINE_COLUMNS)


@dataclass(frozen=True)
class Confirmation:
    """What the confirming import found after a write-back."""

    space: pd.DataFrame
    """The connector space with the re-read objects replaced."""
    confirmed: pd.DataFrame
    """Written rows whose value the directory now holds."""
    mismatches: list[dict[str, object]]
    """Written rows the directory does not hold (with the problem)."""


def confirm_written(directory: ResolvedDirectory, written: pd.DataFrame, reread: pd.DataFrame,
                    space: pd.DataFrame) -> Confirmation:
    """Compare re-read objects (a connector-space frame) with what was written; refresh the connector space."""
    by_anchor = reread.set_index("anchor") if len(reread) else None
    ok = np.zeros(len(written), dtype=bool)
    problems: list[dict[str, object]] = []
    for i, r in enumerate(written.itertuples(index=False)):
        column = attr_column(r.attribute)
        if by_anchor is None or r.anchor not in by_anchor.index:
            problems.append({"profile_id": r.profile_id, "dn": r.dn, "attribute": r.attribute,
                             "problem": "object not found when re-read"})
            continue
        now = by_anchor.at[r.anchor, column] if column in by_anchor.columns else None
        if value_hash(now) == r.value_hash:
            ok[i] = True
        else:
            problems.append({"profile_id": r.profile_id, "dn": r.dn, "attribute": r.attribute,
                             "problem": f"{r.attribute} differs after the write"})
    refreshed = space
    if len(reread):
        keep = ~space["anchor"].isin(reread["anchor"])
        refreshed = pd.concat([space.loc[keep], reread[space.columns]], ignore_index=True)
    return Confirmation(refreshed, written.loc[ok], problems)
