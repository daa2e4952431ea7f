"""Join and projection: linking connector-space objects to metaverse objects.

A CS object already linked keeps its metaverse object (the link survives
renames, moves, leaving scope and coming back). An in-scope object without a
link is *projected*: a new metaverse object whose id is derived from the
connection and the anchor, so the same directory object always lands on the
same profile, in every run and every store.
"""

from __future__ import annotations

import uuid

import pandas as pd

LINK_COLUMNS = ["connection", "anchor", "mv_id", "object_type", "connected"]
"""``connected``: the CS object exists and is in scope in the last import."""

_MV_NAMESPACE = uuid.UUID("5f0c9a8e-2f4c-4c1e-9d38-7b1c0a9e6d21")


def projected_id(connection: str, object_type: str, anchor: str) -> str:
    """The metaverse id of a projected object (also its profile_id / group_id)."""
    return str(uuid.uuid5(_MV_NAMESPACE, f"{connection}\x1f{object_type}\x1f{anchor}"))


def empty_links() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="bool" if c == "connected" else "object") for c in LINK_COLUMNS})


def link_connection(space: pd.DataFrame, connection: str, previous: pd.DataFrame) -> pd.DataFrame:
    """Links of one connection after an import of ``space`` (people and groups only).

    Previous links are kept (disconnected when their object is gone or out of
    scope); in-scope objects without a link are projected.
    """
    objects = space.loc[space["object_type"].isin(["person", "group"]), ["anchor", "object_type", "in_scope"]]
    prev = previous.loc[previous["connection"] == connection, ["anchor", "mv_id", "object_type"]]
    merged = prev.merge(objects, on="anchor", how="outer", suffixes=("_link", ""), indicator=True)
    # An anchor can change object type only by a delete + re-create in another class: re-project then.
    type_changed = (merged["_merge"] == "both") & (merged["object_type"] != merged["object_type_link"])
    merged.loc[type_changed, "mv_id"] = None
    merged["object_type"] = merged["object_type"].where(merged["object_type"].notna(), merged["object_type_link"])
    new = merged["mv_id"].isna() & merged["in_scope"].fillna(False).astype(bool)
    merged.loc[new, "mv_id"] = [
        projected_id(connection, t, a) for t, a in zip(merged.loc[new, "object_type"], merged.loc[new, "anchor"])
    ]
    merged = merged.loc[merged["mv_id"].notna()].copy()
    merged["connected"] = merged["in_scope"].fillna(False).astype(bool)
    merged["connection"] = connection
    return merged[LINK_COLUMNS].reset_index(drop=True)
