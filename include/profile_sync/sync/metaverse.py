"""The metaverse: one row per person or group, fed by every directory connection.

``build_metaverse`` is the synchronization of DESIGN §2 step 3 up to the
metaverse: join/projection (``join_rules``), import attribute flow with
precedence (``attribute_flow``), then references (``references``).

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

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.settings import DisabledAccountPolicy
from profile_sync.sync.attribute_flow import REF_PREFIX, flow_in, import_properties
from profile_sync.sync.connector_space import attr_column
from profile_sync.sync.join_rules import JOIN_REPORT_COLUMNS, empty_links, link_connection, make_joiner
from profile_sync.sync.transforms import first_value
from profile_sync.sync.references import resolve_memberships, resolve_person_references

SOURCE_COLUMNS = ["source_connection", "source_anchor", "source_dn"]


@dataclass(frozen=True)
class Metaverse:
    people: pd.DataFrame
    groups: pd.DataFrame
    memberships: pd.DataFrame
    links: pd.DataFrame
    unresolved: pd.DataFrame
    joins: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=JOIN_REPORT_COLUMNS))
    """People no join rule could join unambiguously (``join_rules.JOIN_REPORT_COLUMNS``)."""


def build_metaverse(
    spaces: dict[str, pd.DataFrame],
    directories: list[ResolvedDirectory],
    previous_links: pd.DataFrame | None,
    account_name_format: str,
    disabled_policy: DisabledAccountPolicy,
    precedence: dict[str, tuple[str, ...]] | None = None,
) -> Metaverse:
    """Join, project and flow every connector space into the metaverse.

    ``directories`` is in precedence order (first wins for a property, unless
    ``precedence`` names another order for that property). A connection's join
    rules see the people of the connections before it.
    """
    prev = previous_links if previous_links is not None else empty_links()
    prev = prev.loc[prev["connection"].isin([d.name for d in directories])]

    link_frames: list[pd.DataFrame] = []
    join_reports: list[pd.DataFrame] = []
    person_parts: list[pd.DataFrame] = []
    group_parts: list[pd.DataFrame] = []
    properties: list[str] = []
    for rank, d in enumerate(directories):
        space = spaces[d.name]
        joiner = None
        if d.connection.join and person_parts:
            so_far = _by_precedence(person_parts, precedence)
            taken = set(prev.loc[(prev["connection"] == d.name) & prev["connected"], "mv_id"])
            joiner = make_joiner(d, so_far, taken, account_name_format)
        links, report = link_connection(space, d.name, prev, joiner, d.connection.project)
        link_frames.append(links)
        join_reports.append(report)

        conn_links = links.loc[links["connected"], ["anchor", "mv_id"]]
        connected = space.merge(conn_links, on="anchor", how="inner")
        connected["rank"] = rank
        connected["source_connection"] = d.name
        connected = connected.rename(columns={"anchor": "source_anchor", "dn": "source_dn"})
        people = connected.loc[connected["object_type"] == "person"].reset_index(drop=True)
        flows = flow_in(people, d, account_name_format)
        frozen = people["disabled"].astype(bool) & (disabled_policy == "freeze")
        person_parts.append(pd.concat(
            [people[["mv_id", "rank", *SOURCE_COLUMNS]], frozen.rename("frozen"), flows], axis=1))
        for p in import_properties(d):
            if p not in properties:
                properties.append(p)
        groups = connected.loc[connected["object_type"] == "group"].reset_index(drop=True)
        groups["name"] = first_value(groups[attr_column(d.group_name_attribute)])
        group_parts.append(groups[["mv_id", "rank", "name", *SOURCE_COLUMNS]])
    links = pd.concat(link_frames, ignore_index=True) if link_frames else empty_links()

    people = _by_precedence(person_parts, precedence)
    groups = _by_precedence(group_parts)

    # MV objects whose every link is disconnected are deleted (their profiles get marked).
    gone = links.loc[~links["mv_id"].isin(pd.concat([people["mv_id"], groups["mv_id"]])), ["mv_id", "object_type"]]
    gone = gone.drop_duplicates("mv_id")
    people = pd.concat([people.assign(state="active"),
                        pd.DataFrame({"mv_id": gone.loc[gone["object_type"] == "person", "mv_id"],
                                      "state": "deleted"})], ignore_index=True)
    groups = pd.concat([groups.assign(state="active"),
                        pd.DataFrame({"mv_id": gone.loc[gone["object_type"] == "group", "mv_id"],
                                      "state": "deleted"})], ignore_index=True)
    people["frozen"] = people["frozen"].fillna(False).astype(bool)

    people, unresolved_people = resolve_person_references(people, spaces, links, directories)
    memberships, unresolved_members = resolve_memberships(spaces, links, directories)
    # Memberships only between active objects; a deleted or out-of-scope person's memberships drop.
    active = set(people.loc[people["state"] == "active", "mv_id"]) | set(groups.loc[groups["state"] == "active", "mv_id"])
    memberships = memberships.loc[memberships["group_id"].isin(active) & memberships["member_id"].isin(active)]

    for p in properties:
        if p not in people.columns:
            people[p] = None
    people = people[["mv_id", "state", "frozen", *SOURCE_COLUMNS, *properties]]
    groups = groups[["mv_id", "state", "name", *SOURCE_COLUMNS]]
    unresolved = pd.concat([unresolved_people, unresolved_members], ignore_index=True)
    joins = pd.concat(join_reports, ignore_index=True)
    return Metaverse(people.reset_index(drop=True), groups.reset_index(drop=True),
                     memberships.reset_index(drop=True), links, unresolved, joins)


def _by_precedence(parts: list[pd.DataFrame], precedence: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """One row per mv_id: for each column the first non-null value in precedence order.

    ``precedence`` gives, per property, its own order of connections (others rank last).
    """
    if not parts:
        return pd.DataFrame({"mv_id": pd.Series(dtype=object)})
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


def reference_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(REF_PREFIX)]
