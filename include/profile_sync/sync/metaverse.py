"""The metaverse: one row per person or group, fed by every directory connection.

``build_metaverse`` is the synchronization of DESIGN §2 step 3 up to the
metaverse: join/projection (``join_rules``), import attribute flow with
precedence (``attribute_flow``), then references (``references``).

A *delta* synchronization passes ``only`` (the metaverse people that may have
changed, see ``delta.py``) and the previous metaverse: attribute flow and
references are computed for those people only and merged into the previous
people; links, groups and memberships are recomputed whole (vectorised, cheap).
The references that do not resolve (``unresolved``, what the gate's
``reference_resolution`` check counts) are one definition on every path: every
connected person's reference and every in-scope group's member, delta or not.

Frames produced:

- ``people``: ``mv_id``, ``state`` (``active`` | ``deleted``), ``frozen``,
  ``source_connection``, ``source_anchor``, ``source_dn``, one column per property
- ``groups``: ``mv_id``, ``state``, ``name``, ``source_connection``, ``source_anchor``, ``source_dn``
- ``memberships``: ``group_id``, ``member_type`` (``person`` | ``group``), ``member_id``
- ``links``: see ``join_rules.LINK_COLUMNS``
- ``unresolved``: references that could not be resolved (reported, never fatal)
- ``joins``: people no join rule could join unambiguously (reported)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.settings import DisabledAccountPolicy
from profile_sync.sync.attribute_flow import REF_PREFIX, flow_in, import_properties
from profile_sync.sync.connector_space import KnownDns, attr_column
from profile_sync.sync.join_rules import JOIN_REPORT_COLUMNS, empty_links, link_connection, make_joiner
from profile_sync.sync.references import (
    UNRESOLVED_COLUMNS,
    reference_targets,
    resolve_memberships,
    resolve_person_references,
)
from profile_sync.sync.delta import DirtySet, reference_dependents
from profile_sync.sync.transforms import first_value

SOURCE_COLUMNS = ["source_connection", "source_anchor", "source_dn"]
ACTIVE = "active"


@dataclass(frozen=True)
class Metaverse:
    people: pd.DataFrame
    groups: pd.DataFrame
    memberships: pd.DataFrame
    links: pd.DataFrame
    unresolved: pd.DataFrame
    joins: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=JOIN_REPORT_COLUMNS))
    """People no join rule could join unambiguously (``join_rules.JOIN_REPORT_COLUMNS``)."""
    computed: frozenset[str] | None = None
    """The people whose rows this synchronization computed (None: everyone, a full synchronization)."""


def build_metaverse(
    spaces: dict[str, pd.DataFrame],
    directories: list[ResolvedDirectory],
    previous_links: pd.DataFrame | None,
    account_name_format: str,
    disabled_policy: DisabledAccountPolicy,
    precedence: dict[str, tuple[str, ...]] | None = None,
    *,
    only: DirtySet | None = None,
    previous_people: pd.DataFrame | None = None,
    previous_unresolved: pd.DataFrame | None = None,
) -> Metaverse:
    """Join, project and flow every connector space into the metaverse.

    ``directories`` is in precedence order (first wins for a property, unless
    ``precedence`` names another order for that property). A connection's join
    rules see the people of the connections before it. With ``only`` (a delta
    synchronization) people are computed for the dirty set only and merged into
    ``previous_people``; the references of the others that did not resolve are the rows of
    ``previous_unresolved`` (the last run's ``unresolved``) that are theirs (when not given: resolved again).
    """
    prev = previous_links if previous_links is not None else empty_links()
    prev = prev.loc[prev["connection"].isin([d.name for d in directories])]
    delta = only is not None and previous_people is not None
    known = {d.name: KnownDns(spaces[d.name]) for d in directories}  # references normalised by lookup

    link_frames: list[pd.DataFrame] = []
    join_reports: list[pd.DataFrame] = []
    person_parts: list[pd.DataFrame] = []
    group_parts: list[pd.DataFrame] = []
    properties: list[str] = []
    for rank, d in enumerate(directories):
        space = spaces[d.name]
        joiner = None
        if d.connection.join and (person_parts or delta):
            so_far = _by_precedence(person_parts, precedence)
            if delta:
                # Join candidates may match anyone in the metaverse, not only the recomputed people.
                earlier = previous_people.loc[(previous_people["state"] == ACTIVE)
                                              & ~previous_people["mv_id"].isin(so_far["mv_id"])]
                so_far = pd.concat([earlier, so_far], ignore_index=True)
            taken = set(prev.loc[(prev["connection"] == d.name) & prev["connected"], "mv_id"])
            joiner = make_joiner(d, so_far, taken, account_name_format)
        links, report = link_connection(space, d.name, prev, joiner, d.connection.project)
        link_frames.append(links)
        join_reports.append(report)
        ids = only.people(pd.concat(link_frames, ignore_index=True)) if delta else None
        person_parts.append(_person_part(space, d, links, rank, ids, account_name_format, disabled_policy,
                                         known=known[d.name]))
        for p in import_properties(d):
            if p not in properties:
                properties.append(p)
        groups = space.loc[space["object_type"] == "group"].merge(
            links.loc[links["connected"], ["anchor", "mv_id"]], on="anchor", how="inner")  # in the space's order
        groups["name"] = first_value(groups[attr_column(d.group_name_attribute)])
        groups = groups.rename(columns={"anchor": "source_anchor", "dn": "source_dn"}).assign(
            rank=rank, source_connection=d.name)
        group_parts.append(groups[["mv_id", "rank", "name", *SOURCE_COLUMNS]])
    links = pd.concat(link_frames, ignore_index=True) if link_frames else empty_links()
    targets = reference_targets(spaces, links, directories)
    computed_ids = None
    if delta:
        # Every connection's rows of every dirty person, plus the people whose references point at them.
        dirty_ids = only.all_people(links)
        dirty_ids |= reference_dependents(spaces, directories, links, targets, only, dirty_ids, known)
        computed_ids = frozenset(dirty_ids)
        person_parts = [_person_part(spaces[d.name], d, links.loc[links["connection"] == d.name], rank,
                                     computed_ids, account_name_format, disabled_policy, known=known[d.name])
                        for rank, d in enumerate(directories)]

    # Account names first (references resolve to them), then each connection's references.
    people = _by_precedence([p.drop(columns=[c for c in p.columns if c.startswith(REF_PREFIX)])
                             for p in person_parts], precedence)
    names = people[["mv_id", "account_name"]] if "account_name" in people.columns else \
        pd.DataFrame({"mv_id": people["mv_id"], "account_name": people["mv_id"]})
    if delta and "account_name" in previous_people.columns:
        keep = previous_people.loc[(previous_people["state"] == ACTIVE) & ~previous_people["mv_id"].isin(computed_ids)]
        names = pd.concat([keep[["mv_id", "account_name"]], names], ignore_index=True)
    resolved_parts, unresolved = [], []
    for rank, (d, part) in enumerate(zip(directories, person_parts)):
        resolved, missing = resolve_person_references(part, d.name, targets, names)
        resolved_parts.append(resolved)
        if delta and previous_unresolved is not None:
            # What does not resolve is one set whatever the path (full, delta, nothing changed): every
            # connected person's references. The people not recomputed have the same rows as last run.
            missing = _with_unchanged(missing, previous_unresolved, spaces[d.name], d.name, links, computed_ids,
                                      [c[len(REF_PREFIX):] for c in part.columns if c.startswith(REF_PREFIX)])
        elif delta:
            every = _person_part(spaces[d.name], d, links.loc[links["connection"] == d.name], rank, None,
                                 account_name_format, disabled_policy, references_only=True, known=known[d.name])
            missing = resolve_person_references(every, d.name, targets, names)[1]
        unresolved.append(missing)
    people = _by_precedence(resolved_parts, precedence)
    groups = _by_precedence(group_parts)

    # MV objects whose every link is disconnected are deleted (their profiles get marked).
    linked_people = links.loc[links["object_type"] == "person", "mv_id"].drop_duplicates()
    if delta:
        linked_people = linked_people.loc[linked_people.isin(computed_ids)]
    gone_people = linked_people.loc[~linked_people.isin(people["mv_id"])]
    linked_groups = links.loc[links["object_type"] == "group", "mv_id"].drop_duplicates()
    gone_groups = linked_groups.loc[~linked_groups.isin(groups["mv_id"])]
    people = pd.concat([people.assign(state=ACTIVE), pd.DataFrame({"mv_id": gone_people, "state": "deleted"})],
                       ignore_index=True)
    groups = pd.concat([groups.assign(state=ACTIVE), pd.DataFrame({"mv_id": gone_groups, "state": "deleted"})],
                       ignore_index=True)
    people["frozen"] = people["frozen"].fillna(False).astype(bool)
    for p in properties:
        if p not in people.columns:
            people[p] = None
    people = people[["mv_id", "state", "frozen", *SOURCE_COLUMNS, *properties]]
    if delta:
        kept = previous_people.loc[~previous_people["mv_id"].isin(computed_ids)]
        people = pd.concat([kept.reindex(columns=people.columns), people], ignore_index=True)

    memberships, unresolved_members = resolve_memberships(spaces, links, directories, known, targets)
    # Memberships only between active objects; a deleted or out-of-scope person's memberships drop.
    active = np.concatenate([people.loc[people["state"] == ACTIVE, "mv_id"].to_numpy(dtype=object),
                             groups.loc[groups["state"] == ACTIVE, "mv_id"].to_numpy(dtype=object)])
    memberships = memberships.loc[memberships["group_id"].isin(active) & memberships["member_id"].isin(active)]

    groups = groups[["mv_id", "state", "name", *SOURCE_COLUMNS]]
    unresolved_frame = pd.concat([*unresolved, unresolved_members], ignore_index=True) if unresolved else \
        pd.DataFrame(columns=UNRESOLVED_COLUMNS)
    joins = pd.concat(join_reports, ignore_index=True)
    return Metaverse(people.reset_index(drop=True), groups.reset_index(drop=True),
                     memberships.reset_index(drop=True), links, unresolved_frame, joins, computed_ids)


def _person_part(space: pd.DataFrame, d: ResolvedDirectory, links: pd.DataFrame, rank: int,
                 ids: set[str] | frozenset[str] | None, account_name_format: str,
                 disabled_policy: DisabledAccountPolicy, references_only: bool = False,
                 known: KnownDns | None = None) -> pd.DataFrame:
    """Attribute flow for one connection's connected people (only ``ids`` when given; only the
    ``ref.<property>`` columns with ``references_only``; ``known``: the connection's DNs)."""
    linked = links.loc[links["connected"], ["anchor", "mv_id"]]
    person = space["object_type"] == "person"
    if ids is not None:  # only their rows: a delta merges a few rows, not every person's
        linked = linked.loc[linked["mv_id"].isin(ids)]
        person &= space["anchor"].isin(linked["anchor"])
    connected = space.loc[person].merge(linked, on="anchor", how="inner")
    people = connected.rename(columns={"anchor": "source_anchor", "dn": "source_dn"}).reset_index(drop=True)
    people["rank"] = rank
    people["source_connection"] = d.name
    flows = flow_in(people, d, account_name_format, references_only, known)
    frozen = people["disabled"].astype(bool) & (disabled_policy == "freeze")
    return pd.concat([people[["mv_id", "rank", *SOURCE_COLUMNS]], frozen.rename("frozen"), flows], axis=1)


def _with_unchanged(computed: pd.DataFrame, previous: pd.DataFrame, space: pd.DataFrame, connection: str,
                    links: pd.DataFrame, computed_ids: frozenset[str], properties: list[str]) -> pd.DataFrame:
    """One connection's unresolved person references in a delta: ``computed`` (the recomputed people's) and
    the last run's rows of every other connected person, in the order a full synchronization gives them
    (by property, then by the person's place in the connector space).

    A person not recomputed has the rows it had: its object did not change (same DN, same values), and
    neither did what its references name — a target added, deleted, renamed, moved in or out of scope or
    recomputed makes the people naming it dirty (``delta.reference_dependents``)."""
    persons = space.loc[space["object_type"] == "person", ["anchor", "dn"]]
    persons = persons.loc[~persons["dn"].duplicated()]
    connected = links.loc[(links["connection"] == connection) & links["connected"]
                          & ~links["mv_id"].isin(computed_ids), "anchor"]
    unchanged = persons.loc[persons["anchor"].isin(connected), "dn"]
    kept = previous.loc[(previous["source_connection"] == connection) & previous["source_dn"].isin(unchanged)
                        & previous["property"].isin(properties)]
    rows = pd.concat([kept.reindex(columns=UNRESOLVED_COLUMNS), computed.reindex(columns=UNRESOLVED_COLUMNS)],
                     ignore_index=True)
    if rows.empty:
        return rows
    place = pd.Index(persons["dn"]).get_indexer(rows["source_dn"])
    rank = pd.Index(properties).get_indexer(rows["property"])
    return rows.iloc[np.lexsort((place, rank))].reset_index(drop=True)


def _by_precedence(parts: list[pd.DataFrame], precedence: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """One row per mv_id: for each column the first non-null value in precedence order.

    ``precedence`` gives, per property, its own order of connections (others rank last).
    """
    if not parts:
        return pd.DataFrame({"mv_id": pd.Series(dtype=object), "rank": pd.Series(dtype="int64")}).drop(columns="rank")
    frame = pd.concat(parts, ignore_index=True)
    if frame["mv_id"].is_unique:
        return frame.drop(columns="rank")
    frame = frame.sort_values("rank", kind="stable")
    out = frame.groupby("mv_id", sort=False, as_index=False).first()
    for prop, order in (precedence or {}).items():
        if prop not in frame.columns:
            continue
        ranks = {name: i for i, name in enumerate(order)}
        ranked = frame.assign(_r=frame["source_connection"].map(ranks).fillna(len(order)))
        ranked = ranked.sort_values(["_r", "rank"], kind="stable")
        best = ranked.groupby("mv_id", sort=False)[prop].first()
        out[prop] = out["mv_id"].map(best)
    return out.drop(columns="rank")

