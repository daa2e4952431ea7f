"""References (``manager``, group ``member``) resolved once every object is known.

References are DNs within one connection. They resolve through that
connection's connector space (DN → anchor) and its links (anchor → metaverse
object), whatever the order the objects arrived in. A reference to an object
that is missing or out of scope is reported and left empty, never fatal.
Cycles (A manages B manages A; G1 contains G2 contains G1) are data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.sync.attribute_flow import REF_PREFIX
from profile_sync.sync.connector_space import KnownDns, attr_column

UNRESOLVED_COLUMNS = ["source_connection", "source_dn", "property", "target_dn", "reason"]
MEMBERSHIP_COLUMNS = ["group_id", "member_type", "member_id"]


def reference_targets(spaces: dict[str, pd.DataFrame], links: pd.DataFrame,
                      directories: list[ResolvedDirectory]) -> pd.DataFrame:
    """Every CS object addressable by DN: connection, dn_norm → mv_id (if connected), object type.

    One row per (connection, dn_norm), the first object of the space with that DN; ``mv_id`` is that of the
    first connected link of its anchor. Looked up by one key per connection (anchors within a connection,
    DNs within a connection), which is what a merge on (connection, anchor) and a ``drop_duplicates`` on
    (connection, dn_norm) gave, row order included."""
    connected = links.loc[links["connected"], ["connection", "anchor", "mv_id"]]
    frames = []
    for d in directories:
        s = spaces[d.name][["dn_norm", "anchor", "object_type", "in_scope"]]
        s = s.loc[~s["dn_norm"].duplicated()]
        mine = connected.loc[connected["connection"] == d.name].drop_duplicates("anchor")
        mv_id = _take(mine["mv_id"], pd.Index(mine["anchor"]).get_indexer(s["anchor"]), np.nan)
        frames.append(s.assign(connection=pd.Series(d.name, index=s.index, dtype=object),
                               mv_id=pd.Series(mv_id, index=s.index, dtype=object)))
    if not frames:
        return pd.DataFrame(columns=["dn_norm", "anchor", "object_type", "in_scope", "connection", "mv_id"])
    return pd.concat(frames, ignore_index=True)


def _take(values: pd.Series, at: np.ndarray, missing: object) -> np.ndarray:
    """``values`` at positions ``at`` (an object array); ``missing`` where ``at`` is -1 (not found)."""
    out = np.append(values.to_numpy(dtype=object), np.array([missing], dtype=object))
    return out[at]  # -1: the appended ``missing``


def _lookup(targets: pd.DataFrame, connection: str) -> tuple[pd.Index, pd.DataFrame]:
    """One connection's targets: their ``dn_norm`` as an index (unique: ``reference_targets``) and their rows."""
    mine = targets.loc[targets["connection"] == connection].reset_index(drop=True)
    return pd.Index(mine["dn_norm"]), mine


def _reason(found: pd.Series, resolved: pd.Series, nameless: pd.Series | None = None) -> pd.Series:
    out = pd.Series("not found in the directory", index=found.index, dtype=object).where(
        ~found, pd.Series("out of scope", index=found.index, dtype=object))
    if nameless is not None:
        out = out.where(~nameless, "the person it names has no account name (quarantined)")
    return out.where(~resolved, None)


def resolve_person_references(
    people: pd.DataFrame, connection: str, targets: pd.DataFrame, names: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace each ``ref.<property>`` DN of one connection's people by the referenced person's ``account_name``.

    ``targets``: every CS object by (connection, dn_norm) → mv_id (``reference_targets``);
    ``names``: active metaverse people's ``mv_id`` → ``account_name``.
    """
    ref_cols = [c for c in people.columns if c.startswith(REF_PREFIX)]
    out = people.drop(columns=ref_cols)
    unresolved: list[pd.DataFrame] = []
    targets = targets.loc[targets["connection"] == connection]
    names = names.rename(columns={"mv_id": "mv_id_target", "account_name": "_value"})
    for col in ref_cols:
        prop = col[len(REF_PREFIX):]
        refs = people.loc[people[col].notna(), ["mv_id", "source_dn", col]]
        m = refs.merge(targets, left_on=col, right_on="dn_norm", how="left", suffixes=("", "_target"))
        m = m.merge(names, on="mv_id_target", how="left")
        # A person without an account name (held in quarantine) cannot be referenced: blank counts as none
        # (judged on the names referenced, not on every person's).
        present = (m["_value"].astype("string").str.strip().fillna("") != "").to_numpy(dtype=bool)
        m["_value"] = m["_value"].where(present, None)
        resolved = m["mv_id_target"].notna() & (m["object_type"] == "person") & m["_value"].notna()
        values = m.loc[resolved, ["mv_id", "_value"]].drop_duplicates("mv_id").set_index("mv_id")["_value"]
        out[prop] = out["mv_id"].map(values).astype(object)
        out[prop] = out[prop].where(out[prop].notna(), None)
        bad = m.loc[~resolved]
        if len(bad):
            unresolved.append(pd.DataFrame({
                "source_connection": connection,
                "source_dn": bad["source_dn"].to_numpy(),
                "property": prop,
                "target_dn": bad[col].to_numpy(),
                "reason": _reason(bad["dn_norm"].notna(), pd.Series(False, index=bad.index),
                                  bad["mv_id_target"].notna() & (bad["object_type"] == "person")
                                  & bad["_value"].isna()).to_numpy(),
            }))
    frame = pd.concat(unresolved, ignore_index=True) if unresolved else pd.DataFrame(columns=UNRESOLVED_COLUMNS)
    return out, frame


def resolve_memberships(
    spaces: dict[str, pd.DataFrame], links: pd.DataFrame, directories: list[ResolvedDirectory],
    known: dict[str, KnownDns], targets: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group ``member`` / ``uniqueMember`` values → (group_id, member_type, member_id); nested groups kept as
    group→group. A ``uniqueMember`` value's optional UID (``…,dc=x#'0101'B``) is not part of the name: the
    member is the object with that DN, as for ``member``. ``known``: each connection's :class:`KnownDns`;
    ``targets``: :func:`reference_targets` of the same spaces and links."""
    edges: list[pd.DataFrame] = []
    unresolved: list[pd.DataFrame] = []
    for d in directories:
        space = spaces[d.name]
        groups = space.loc[(space["object_type"] == "group") & space["in_scope"]]
        conn_links = links.loc[(links["connection"] == d.name) & links["connected"], ["anchor", "mv_id"]]
        groups = groups.merge(conn_links, on="anchor", how="inner")
        by_dn, mine = _lookup(targets, d.name)
        for attr in d.member_attributes:
            col = attr_column(attr)
            if col not in groups.columns:
                continue
            exploded = groups[["mv_id", "dn", col]].explode(col).dropna(subset=[col])
            if exploded.empty:
                continue
            norm = known[d.name].normalize_members(exploded[col], attr)  # uniqueMember: UID dropped
            at = by_dn.get_indexer(norm)
            found = at >= 0
            member_id = _take(mine["mv_id"], at, None)
            member_type = _take(mine["object_type"], at, None)
            ok = pd.notna(member_id) & pd.Series(member_type).isin(["person", "group"]).to_numpy()
            edges.append(pd.DataFrame({
                "group_id": exploded["mv_id"].to_numpy()[ok],
                "member_type": member_type[ok],
                "member_id": member_id[ok],
            }))
            if not ok.all():
                unresolved.append(pd.DataFrame({
                    "source_connection": d.name,
                    "source_dn": exploded["dn"].to_numpy()[~ok],
                    "property": "member",
                    "target_dn": exploded[col].to_numpy()[~ok],
                    "reason": _reason(pd.Series(found[~ok]), pd.Series(False, index=range(int((~ok).sum())))
                                      ).to_numpy(),
                }))
    memberships = (pd.concat(edges, ignore_index=True).drop_duplicates() if edges
                   else pd.DataFrame({c: pd.Series(dtype=object) for c in MEMBERSHIP_COLUMNS}))
    frame = pd.concat(unresolved, ignore_index=True) if unresolved else pd.DataFrame(columns=UNRESOLVED_COLUMNS)
    return memberships.reset_index(drop=True), frame
