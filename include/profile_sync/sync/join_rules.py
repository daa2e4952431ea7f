"""Join and projection: linking connector-space objects to metaverse objects.

A CS object already linked keeps its metaverse object (the link survives
renames, moves, leaving scope and coming back). An in-scope person without a
link is first offered to the connection's *join rules* (``directories[].join``):
the first rule whose value matches exactly one metaverse person fed by a
connection of higher precedence links it there (two forests, one person).
Otherwise it is *projected* (unless ``project: false``): a new metaverse object
whose id is derived from the connection and the anchor, so the same directory
object always lands on the same profile, in every run and every store.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Callable, Iterable

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.sync.connector_space import attr_column
from profile_sync.sync.transforms import TRANSFORMS

JOIN_REPORT_COLUMNS = ["connection", "anchor", "dn", "rule", "reason"]
Joiner = Callable[[pd.DataFrame], tuple[pd.Series, pd.DataFrame]]
"""Candidates (CS rows) → (mv_id per candidate or None, report of ambiguous matches)."""

LINK_COLUMNS = ["connection", "anchor", "mv_id", "object_type", "connected"]
"""``connected``: the CS object exists and is in scope in the last import."""

_MV_NAMESPACE = uuid.UUID("5f0c9a8e-2f4c-4c1e-9d38-7b1c0a9e6d21")


def projected_id(connection: str, object_type: str, anchor: str) -> str:
    """The metaverse id of a projected object (also its profile_id / group_id)."""
    return str(uuid.uuid5(_MV_NAMESPACE, f"{connection}\x1f{object_type}\x1f{anchor}"))


def projected_ids(connection: str, object_types: Iterable[str], anchors: Iterable[str]) -> list[str]:
    """:func:`projected_id` of many objects: the same UUIDv5 (RFC 4122: SHA-1 of the namespace and the name,
    version 5, RFC 4122 variant), spelled without building a ``uuid.UUID`` each (a third of the time)."""
    prefix = _MV_NAMESPACE.bytes + connection.encode("utf-8") + b"\x1f"
    sha1 = hashlib.sha1
    out = []
    for object_type, anchor in zip(object_types, anchors):
        h = bytearray(sha1(prefix + f"{object_type}\x1f{anchor}".encode("utf-8")).digest()[:16])
        h[6] = (h[6] & 0x0F) | 0x50
        h[8] = (h[8] & 0x3F) | 0x80
        x = h.hex()
        out.append(f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}")
    return out


def empty_links() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="bool" if c == "connected" else "object") for c in LINK_COLUMNS})


def link_connection(space: pd.DataFrame, connection: str, previous: pd.DataFrame,
                    joiner: Joiner | None = None, project: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Links of one connection after an import of ``space`` (people and groups only), and a join report.

    Previous links are kept (disconnected when their object is gone or out of
    scope); in-scope people without a link are joined by ``joiner`` when it
    finds their metaverse person, the rest (and groups) projected when ``project``.
    """
    objects = space.loc[space["object_type"].isin(["person", "group"]), ["anchor", "object_type", "in_scope"]]
    prev = previous.loc[previous["connection"] == connection, ["anchor", "mv_id", "object_type"]]
    merged = prev.merge(objects, on="anchor", how="outer", suffixes=("_link", ""), indicator=True)
    # An anchor can change object type only by a delete + re-create in another class: re-project then.
    type_changed = (merged["_merge"] == "both") & (merged["object_type"] != merged["object_type_link"])
    merged.loc[type_changed, "mv_id"] = None
    merged["object_type"] = merged["object_type"].where(merged["object_type"].notna(), merged["object_type_link"])
    new = merged["mv_id"].isna() & merged["in_scope"].fillna(False).astype(bool)
    report = pd.DataFrame(columns=JOIN_REPORT_COLUMNS)
    if joiner is not None:
        people = new & (merged["object_type"] == "person")
        if people.any():
            candidates = space.set_index("anchor").loc[merged.loc[people, "anchor"]].reset_index()
            joined, report = joiner(candidates)
            merged.loc[people, "mv_id"] = joined.to_numpy()
            new = merged["mv_id"].isna() & merged["in_scope"].fillna(False).astype(bool)
    if not project:
        new &= merged["object_type"] != "person"
    merged.loc[new, "mv_id"] = projected_ids(connection, merged.loc[new, "object_type"], merged.loc[new, "anchor"])
    merged = merged.loc[merged["mv_id"].notna()]
    merged["connected"] = merged["in_scope"].fillna(False).astype(bool)
    merged["connection"] = connection
    return merged[LINK_COLUMNS].reset_index(drop=True), report


def make_joiner(directory: ResolvedDirectory, metaverse_people: pd.DataFrame, taken: set[str],
                account_name_format: str) -> Joiner:
    """A joiner applying ``directory``'s join rules against ``metaverse_people`` (active, by precedence).

    ``taken``: metaverse ids that already have a connected object of this connection.
    """

    def norm(values: pd.Series) -> pd.Series:
        v = values.astype(object)
        return v.where(v.isna(), v.astype(str).str.strip().str.lower()).replace("", None)

    def join(candidates: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
        result = pd.Series(None, index=candidates.index, dtype=object)
        reports: list[pd.DataFrame] = []
        for rule in directory.connection.join:
            todo = result.isna()
            if not todo.any() or rule.metaverse not in metaverse_people.columns:
                continue
            source = attr_column(rule.source)
            multi = rule.source.lower() in directory.multi_valued_attributes
            keys = norm(TRANSFORMS[rule.transform](candidates.loc[todo, source],
                                                   account_name_format=account_name_format, multi=multi))
            mv = metaverse_people.loc[~metaverse_people["mv_id"].isin(taken), ["mv_id", rule.metaverse]].copy()
            mv["key"] = norm(mv[rule.metaverse])
            mv = mv.dropna(subset=["key"])
            counts = mv["key"].value_counts()
            unique = mv.loc[mv["key"].map(counts) == 1].set_index("key")["mv_id"]
            matched = keys.map(unique)
            ambiguous_mv = keys.isin(counts.index[counts > 1])
            # Two objects of this connection matching one metaverse person: join neither.
            clash = matched.notna() & matched.duplicated(keep=False)
            why = pd.Series(None, index=keys.index, dtype=object)
            why[ambiguous_mv] = "several metaverse people match"
            why[clash] = "several objects of this connection match one metaverse person"
            matched[clash] = None
            result.loc[matched.index] = matched
            bad = why.notna()
            if bad.any():
                rows = candidates.loc[why.index[bad]]
                reports.append(pd.DataFrame({
                    "connection": directory.name, "anchor": rows["anchor"].to_numpy(), "dn": rows["dn"].to_numpy(),
                    "rule": f"{rule.source} = {rule.metaverse}", "reason": why[bad].to_numpy()}))
        report = pd.concat(reports, ignore_index=True) if reports else pd.DataFrame(columns=JOIN_REPORT_COLUMNS)
        unjoined = set(candidates.loc[result.isna(), "anchor"])
        report = report.loc[report["anchor"].isin(unjoined)].drop_duplicates("anchor", keep="last")
        return result, report.reset_index(drop=True)

    return join
