"""Why does this person's property have its value — and why has that person no profile?

Everything here is recomputed from what the engine keeps in the committed state:

- the profile-store connector space ``ps/people`` (the store as the last run confirmed it),
- the metaverse ``mv/people`` and its links ``mv/links`` (which connector-space objects feed a person),
- the directory connector spaces ``cs/<connection>`` (every object as last seen, in scope or why not),
- the quarantine (``quarantine``),
- the mappings of the configuration: a person's connected objects are run through the same import
  attribute flow (``sync.attribute_flow.flow_in``) and precedence as the synchronization, so the
  connection, source attribute and transform shown are the ones that produced the value,
- ``lineage/last_changed`` (and ``lineage/last_changed/<business system>``): per person and property,
  the run whose export last changed it. This is the one thing the engine records for the page:
  :func:`record_changes` is called by the gate steps (``run/gate_step.py``, ``run/bcs_steps.py``) with
  the run's pending exports, and lands in the committed state only when the run finishes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from profile_sync.config.loader import resolved_directories
from profile_sync.config.presets import ResolvedDirectory
from profile_sync.config.settings import Settings
from profile_sync.profile_store.schema import property_specs
from profile_sync.state.patches import Patch
from profile_sync.status.frames import CommittedState
from profile_sync.status.values import jsonable, text
from profile_sync.sync.attribute_flow import REF_PREFIX, flow_in
from profile_sync.sync.connector_space import attr_column

LAST_CHANGED_KEY = "lineage/last_changed"
"""Frame: ``profile_id``, then per property (and ``state``) the id of the run that last changed it."""
STATE = "state"
SOURCE_COLUMNS = ("source_connection", "source_anchor", "source_dn")
SEARCH_PROPERTIES = ("account_name", "user_name", "user_principal_name", "preferred_name", "first_name",
                     "last_name", "work_email")
"""Properties a search looks in (account name, names, e-mail)."""
MAX_RESULTS = 50
MIN_QUERY = 2
CS_BASE = ["anchor", "dn", "object_type", "disabled", "in_scope", "scope_reason"]


# --------------------------------------------------------------------------- recording


def last_changed_key(business_system: str | None = None) -> str:
    """The frame a gate step records into: one for the directories, one per business system (mapped tasks
    of one run never write the same frame)."""
    return LAST_CHANGED_KEY if business_system is None else f"{LAST_CHANGED_KEY}/{business_system}"


def record_changes(previous: pd.DataFrame | None, exports: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """The last-changed frame after this run's pending exports of people.

    ``exports``: ``profile_id``, ``changed`` (comma-separated properties) and, for the directory export,
    ``operation`` (``add`` | ``update`` | ``unmark`` | ``mark``). Every property in ``changed`` gets
    ``run_id``; adds, marks and unmarks also set ``state``. Vectorised: the rows each property gets are
    gathered as positions (adds share one list of properties, looked up once; updates are exploded), and
    each column is written once (``.loc`` per property looked 100,000 labels up again for each of ~20
    properties of a first full run: 0.40 s of its gate, sampled).
    """
    out = previous.set_index("profile_id") if previous is not None and len(previous.columns) else \
        pd.DataFrame(index=pd.Index([], dtype=object, name="profile_id"))
    if exports.empty:
        return out.reset_index()
    operation = exports["operation"] if "operation" in exports.columns else \
        pd.Series("update", index=exports.index, dtype=object)
    changed = exports["changed"].fillna("").astype(str)
    # The people known keep their place; new ones come last (what ``changes_patch`` tells the state store).
    ids = out.index.append(pd.Index(exports["profile_id"].unique()).difference(out.index, sort=False))
    out = out.reindex(ids)
    out.index.name = "profile_id"
    rows_of: dict[str, list[np.ndarray]] = {}
    """Property → positions (in ``out``) of the rows it is set on, in the order properties are first met."""

    def assign(rows: np.ndarray, prop: str) -> None:
        rows_of.setdefault(prop, []).append(rows)

    adds = operation == "add"
    # Adds share one list of properties (every managed column): their rows are looked up once.
    for props, group in exports.loc[adds].groupby(changed[adds]):
        rows = out.index.get_indexer(group["profile_id"])
        for prop in (p for p in str(props).split(",") if p and p not in SOURCE_COLUMNS):
            assign(rows, prop)
    rest = ~adds & (changed != "")
    if rest.any():
        pairs = pd.DataFrame({"profile_id": exports.loc[rest, "profile_id"].to_numpy(),
                              "property": changed[rest].str.split(",").to_numpy()}).explode("property")
        pairs = pairs.loc[~pairs["property"].isin([*SOURCE_COLUMNS, ""])]
        for prop, group in pairs.groupby("property"):
            assign(out.index.get_indexer(group["profile_id"]), str(prop))
    stated = operation.isin(["add", "mark", "unmark"])
    if stated.any():
        assign(out.index.get_indexer(exports.loc[stated, "profile_id"]), STATE)
    for prop, parts in rows_of.items():
        column = out[prop].to_numpy(dtype=object, copy=True) if prop in out.columns else \
            np.full(len(out), None, dtype=object)
        column[np.concatenate(parts)] = run_id
        out[prop] = column
    return out.reset_index()


def changes_patch(previous: pd.DataFrame | None, exports: pd.DataFrame) -> Patch:
    """How :func:`record_changes`' frame differs from ``previous`` (for the state store, ``state.patches``):
    the exported people's rows replaced in place, the people new to it last."""
    known = pd.Index(previous["profile_id"]) if previous is not None and "profile_id" in previous.columns \
        else pd.Index([], dtype=object)
    exported = pd.Index(exports["profile_id"].unique())
    return Patch("profile_id", appended=int((~exported.isin(known)).sum()), replaced=exported)


# --------------------------------------------------------------------------- reading helpers


def _person_space(view: CommittedState, d: ResolvedDirectory) -> pd.DataFrame | None:
    """The people of one connector space with the columns lineage needs (no member lists, no photos)."""
    wanted = [*CS_BASE, *(attr_column(a) for a in d.attributes
                          if a not in d.member_attributes and a not in d.binary_attributes)]
    space = view.frame(f"cs/{d.name}", wanted)
    if space is None:
        return None
    return space.loc[space["object_type"] == "person"]


def _flow(row: pd.DataFrame, d: ResolvedDirectory, account_name_format: str) -> dict[str, Any]:
    """The import attribute flow of one connector-space row, as the synchronization computes it.

    Binary attributes (photos) are not read by the page: their properties come out as ``NOT_READ``."""
    missing = [attr_column(m.source) for m in d.mappings.values() if attr_column(m.source) not in row.columns]
    flow = flow_in(row.assign(**{c: None for c in missing}), d, account_name_format).iloc[0].to_dict()
    for prop, m in d.mappings.items():
        if attr_column(m.source) in missing and m.source.lower() in d.binary_attributes:
            flow[REF_PREFIX + prop if m.transform == "reference" else prop] = NOT_READ
    return flow


NOT_READ = object()
"""A binary value the page does not read (the connector space keeps it)."""
BINARY_NOT_READ = {"binary": True, "not_read": True}
"""What the page shows of a binary property (a photo): the connector space and profile store keep it."""


def _row(frame: pd.DataFrame | None, column: str, value: Any) -> dict[str, Any] | None:
    if frame is None or column not in frame.columns:
        return None
    hit = frame.loc[frame[column] == value]
    return None if hit.empty else hit.iloc[0].to_dict()


def _last_changed(view: CommittedState, profile_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in view.keys(LAST_CHANGED_KEY):
        row = _row(view.frame(key), "profile_id", profile_id)
        for prop, run in (row or {}).items():
            if prop != "profile_id" and isinstance(run, str):
                out[prop] = run
    return out


def _display_name(row: dict[str, Any]) -> str | None:
    for key in ("preferred_name",):
        if row.get(key):
            return str(row[key])
    first, last = row.get("first_name"), row.get("last_name")
    if first or last:
        return " ".join(str(x) for x in (first, last) if x)
    dn = row.get("source_dn") or row.get("dn")
    if dn:
        return str(dn).split(",", 1)[0].split("=", 1)[-1]
    return row.get("account_name")


def _precedence(settings: Settings, directories: list[ResolvedDirectory], prop: str) -> list[ResolvedDirectory]:
    """The connections feeding ``prop``, first wins (``precedence.<prop>``, then the connections' order)."""
    feeding = [d for d in directories if prop in d.mappings and d.mappings[prop].direction in ("import", "both")]
    order = settings.precedence.get(prop)
    if not order:
        return feeding
    rank = {name: i for i, name in enumerate(order)}
    return sorted(feeding, key=lambda d: (rank.get(d.name, len(order)), directories.index(d)))


# --------------------------------------------------------------------------- a person


def person(view: CommittedState, settings: Settings, profile_id: str) -> dict[str, Any] | None:
    """A profile's lineage: per property value, connection, source attribute, transform and the run that last
    changed it; the person's connector-space objects. None when no profile or metaverse person has this id."""
    specs = property_specs(settings)
    binary = [p for p, spec in specs.items() if spec.type == "binary"]
    # Photos are not read: a frame of 100,000 people's photos is hundreds of MB for one page view.
    wanted = ["profile_id", "mv_id", "state", "frozen", *SOURCE_COLUMNS, *(p for p in specs if p not in binary)]
    profile = _row(view.frame("ps/people", wanted), "profile_id", profile_id)
    mv = _row(view.frame("mv/people", wanted), "mv_id", profile_id)
    if profile is None and mv is None:
        return None
    directories = resolved_directories(settings)
    links = view.frame("mv/links")
    mine = links.loc[(links["mv_id"] == profile_id) & (links["object_type"] == "person")] if links is not None \
        else pd.DataFrame(columns=["connection", "anchor", "connected"])

    objects: list[dict[str, Any]] = []
    flows: dict[str, dict[str, Any]] = {}
    for d in directories:
        linked = mine.loc[mine["connection"] == d.name]
        if linked.empty:
            continue
        space = _person_space(view, d)
        for anchor, connected in zip(linked["anchor"], linked["connected"]):
            row = None if space is None else space.loc[space["anchor"] == anchor]
            obj = {"connection": d.name, "anchor": anchor, "connected": bool(connected)}
            if row is None or row.empty:
                obj.update(dn=None, in_scope=False, why=_gone(view, d.name, anchor))
            else:
                r = row.iloc[0]
                obj.update(dn=r["dn"], in_scope=bool(r["in_scope"]), disabled=bool(r["disabled"]),
                           why=None if r["in_scope"] else r["scope_reason"])
                if connected:
                    flows[d.name] = _flow(row, d, settings.account_name_format)
            objects.append(obj)

    last = _last_changed(view, profile_id)
    values = dict(profile if profile is not None else mv)
    values.update({p: BINARY_NOT_READ for p in binary})
    multi = [p for p, spec in specs.items() if spec.multi_valued]
    if multi:
        held = view.frame("ps/property_values")
        if held is not None and not held.empty:
            mine_values = held.loc[held["profile_id"] == profile_id].sort_values(["property", "position"])
            for p in multi:
                values[p] = mine_values.loc[mine_values["property"] == p, "value"].tolist() or None
    properties = []
    for prop in specs:
        properties.append(_property(settings, directories, prop, values, mv, flows, last))
    frozen = bool(mv.get("frozen")) if mv is not None else False
    quarantine = _quarantine_rows(view, profile_id=profile_id, anchors=list(mine["anchor"]))
    return {
        "profile_id": profile_id,
        "account_name": jsonable(values.get("account_name")),
        "name": _display_name(values),
        "profile": None if profile is None else {"state": profile.get("state"),
                                                 "source_connection": profile.get("source_connection"),
                                                 "source_dn": profile.get("source_dn")},
        "metaverse": None if mv is None else {"state": mv.get("state"), "frozen": frozen},
        "status": _profile_status(profile, mv, objects, quarantine),
        "state_last_changed_in": last.get(STATE),
        "properties": properties,
        "objects": objects,
        "quarantine": quarantine,
        "as_of_version": view.version,
    }


def _property(settings: Settings, directories: list[ResolvedDirectory], prop: str, values: dict[str, Any],
              mv: dict[str, Any] | None, flows: dict[str, dict[str, Any]], last: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"property": prop, "value": jsonable(values.get(prop)), "last_changed_in": last.get(prop)}
    feeding = _precedence(settings, directories, prop)
    bs = next((b for b in settings.business_systems if prop in b.mappings), None)
    if feeding:
        candidates = []
        for d in feeding:
            mapping = d.mappings[prop]
            flow = flows.get(d.name)
            if flow is None:
                continue
            raw = flow.get(REF_PREFIX + prop) if mapping.transform == "reference" else flow.get(prop)
            unknown = raw is NOT_READ
            candidates.append({"connection": d.name, "source_attribute": mapping.source,
                               "transform": mapping.transform, "value": None if unknown else jsonable(raw),
                               "has_value": None if unknown else
                               raw is not None and not (isinstance(raw, float) and raw != raw)})
        winner = next((c for c in candidates if c["has_value"]), None) or \
            next((c for c in candidates if c["has_value"] is None), None)
        first = candidates[0] if candidates else None
        chosen = winner or first
        entry.update(kind="directory",
                     connection=chosen["connection"] if chosen else None,
                     source_attribute=chosen["source_attribute"] if chosen else feeding[0].mappings[prop].source,
                     transform=chosen["transform"] if chosen else feeding[0].mappings[prop].transform,
                     direction=(feeding[0].mappings[prop].direction),
                     candidates=candidates)
        if chosen and chosen["transform"] == "reference":
            entry["reference_dn"] = chosen["value"]
        if mv is not None and prop in mv and not _same(mv.get(prop), values.get(prop)):
            entry["metaverse_value"] = jsonable(mv.get(prop))
        if not candidates:
            entry["note"] = "no connected connector-space object feeds it now"
    elif bs is not None:
        column = bs.mappings[prop]
        join = bs.join
        entry.update(kind="business_system", connection=bs.name,
                     source_attribute=getattr(column, "column", column),
                     transform=f"join {join.profile_property} = {join.source_column} "
                               f"(normalised: {', '.join(join.normalize)})")
    else:
        entry.update(kind="profile_store", connection=None, source_attribute=None, transform=None,
                     note="no connection maps it: set in the profile store, never synchronized")
    return entry


def _same(a: Any, b: Any) -> bool:
    a, b = jsonable(a), jsonable(b)
    return a == b


def _gone(view: CommittedState, connection: str, anchor: str) -> str:
    held = _quarantine_rows(view, anchors=[anchor], connection=connection)
    if held:
        return f"quarantined: {held[0]['reason']}"
    return "no longer in the directory"


def _profile_status(profile: dict[str, Any] | None, mv: dict[str, Any] | None, objects: list[dict[str, Any]],
                    quarantine: list[dict[str, Any]]) -> dict[str, str]:
    if profile is None:
        if quarantine:
            return {"code": "quarantined", "text": f"no profile yet: held back ({quarantine[0]['reason']})"}
        return {"code": "pending", "text": "in the metaverse, not in the profile store yet (the next export adds it)"}
    if profile.get("state") == "marked_for_deletion":
        why = next((o["why"] for o in objects if o.get("why")), None) or "no connected directory object"
        return {"code": "marked_for_deletion", "text": f"marked for deletion: {why}"}
    if mv is not None and mv.get("frozen"):
        return {"code": "frozen", "text": "frozen: the account is disabled and deletion.disabled_accounts is "
                                          "'freeze' (kept, no longer updated)"}
    if quarantine:
        return {"code": "quarantined", "text": f"held back, profile kept as it was: {quarantine[0]['reason']}"}
    return {"code": "active", "text": "active"}


def _quarantine_rows(view: CommittedState, *, profile_id: str | None = None, anchors: list[str] | None = None,
                     connection: str | None = None, dn: str | None = None) -> list[dict[str, Any]]:
    q = view.frame("quarantine")
    if q is None or q.empty:
        return []
    mask = pd.Series(False, index=q.index)
    if profile_id is not None:
        mask |= q["profile_id"] == profile_id
    if anchors:
        mask |= q["anchor"].isin(anchors)
    if dn is not None:
        mask |= q["dn"].fillna("").str.lower() == dn.lower()
    if connection is not None:
        mask &= q["connection"] == connection
    return [{k: jsonable(v) for k, v in r.items()} for r in q.loc[mask].to_dict("records")]


# --------------------------------------------------------------------------- no profile: why


def connector_object(view: CommittedState, settings: Settings, connection: str, anchor: str | None = None,
                     dn: str | None = None) -> dict[str, Any]:
    """One connector-space (or quarantined) object and why it has, or has not, a profile."""
    directories = {d.name: d for d in resolved_directories(settings)}
    d = directories.get(connection)
    space = _person_space(view, d) if d is not None else None
    row = None
    if space is not None:
        hit = space.loc[space["anchor"] == anchor] if anchor else space.loc[space["dn"].str.lower() == (dn or "").lower()]
        row = None if hit.empty else hit.iloc[0]
    held = _quarantine_rows(view, anchors=[anchor] if anchor else None, dn=None if anchor else dn,
                            connection=connection)
    out: dict[str, Any] = {"connection": connection, "anchor": anchor, "dn": dn, "quarantine": held}
    if row is not None:
        out.update(anchor=row["anchor"], dn=row["dn"], in_scope=bool(row["in_scope"]),
                   disabled=bool(row["disabled"]), scope_reason=row["scope_reason"])
    out["why"] = _why(view, settings, d, row, held)
    return out


def _why(view: CommittedState, settings: Settings, d: ResolvedDirectory | None, row: pd.Series | None,
         held: list[dict[str, Any]]) -> dict[str, str]:
    if d is None:
        return {"code": "unknown_connection", "text": "the connection is not configured (any more)"}
    if row is None:
        if held:
            h = held[0]
            return {"code": "quarantined", "text": f"quarantined since {h['first_seen']} (last seen {h['last_seen']}): "
                                                   f"{h['reason']}"}
        return {"code": "never_seen", "text": "not in the connector space: never seen by an import"}
    links = view.frame("mv/links")
    link = None
    if links is not None:
        hit = links.loc[(links["connection"] == d.name) & (links["anchor"] == row["anchor"])]
        link = None if hit.empty else hit.iloc[0]
    if held:
        h = held[0]
        return {"code": "quarantined", "text": f"quarantined since {h['first_seen']}: {h['reason']}"}
    if not row["in_scope"]:
        reason = row["scope_reason"] or "out of scope"
        code = "disabled" if reason == "account disabled" else "out_of_scope"
        if link is not None:
            return {"code": code, "text": f"out of scope ({reason}): its profile is marked for deletion",
                    "profile_id": link["mv_id"]}
        return {"code": code, "text": f"out of scope: {reason}"}
    if link is None or not link["connected"]:
        if not d.connection.project:
            return {"code": "not_joined", "text": "in scope, but no join rule matched a metaverse person and the "
                                                  "connection only joins (project: false)"}
        return {"code": "pending", "text": "in scope, not synchronized yet (the next run projects it)"}
    profile = _row(view.frame("ps/people", ["profile_id", "state"]), "profile_id", link["mv_id"])
    if profile is None:
        return {"code": "pending", "text": "in the metaverse, not in the profile store yet",
                "profile_id": link["mv_id"]}
    return {"code": "has_profile", "text": f"has a profile ({profile['state']})", "profile_id": link["mv_id"]}


# --------------------------------------------------------------------------- search


def search(view: CommittedState, settings: Settings, query: str) -> dict[str, Any]:
    """People matching ``query`` (account name, names, e-mail; case-insensitive, anywhere in the value):
    profiles first, then connector-space and quarantined objects without a profile, each with why."""
    q = (query or "").strip().lower()
    if len(q) < MIN_QUERY:
        return {"query": query, "results": [], "note": f"type at least {MIN_QUERY} characters"}
    results: list[dict[str, Any]] = []
    seen_profiles: set[str] = set()
    people = view.frame("ps/people", ["profile_id", "state", "source_dn", *SEARCH_PROPERTIES])
    if people is not None and not people.empty:
        mask = pd.Series(False, index=people.index)
        for c in SEARCH_PROPERTIES:
            if c in people.columns:
                mask |= people[c].fillna("").astype(str).str.lower().str.contains(q, regex=False)
        if {"first_name", "last_name"} <= set(people.columns):
            full = people["first_name"].fillna("").astype(str) + " " + people["last_name"].fillna("").astype(str)
            mask |= full.str.lower().str.contains(q, regex=False)
        mask |= people["source_dn"].fillna("").astype(str).str.lower().str.contains(q, regex=False)
        for r in people.loc[mask].head(MAX_RESULTS).to_dict("records"):
            seen_profiles.add(r["profile_id"])
            results.append({"kind": "profile", "profile_id": r["profile_id"], "name": _display_name(r),
                            "account_name": r.get("account_name"), "work_email": r.get("work_email"),
                            "state": r["state"]})
    links = view.frame("mv/links")
    for d in resolved_directories(settings):
        space = _person_space(view, d)
        if space is None or space.empty:
            continue
        sources = {attr_column(d.mappings[p].source) for p in SEARCH_PROPERTIES if p in d.mappings}
        mask = space["dn"].fillna("").str.lower().str.contains(q, regex=False)
        for c in sorted(sources & set(space.columns)):
            mask |= space[c].map(text).str.lower().str.contains(q, regex=False)
        hits = space.loc[mask]
        if links is not None and not hits.empty:
            linked = links.loc[links["connection"] == d.name].set_index("anchor")["mv_id"]
            hits = hits.assign(_mv=hits["anchor"].map(linked))
            hits = hits.loc[~hits["_mv"].isin(seen_profiles)]
        for _, r in hits.head(MAX_RESULTS).iterrows():
            obj = connector_object(view, settings, d.name, anchor=r["anchor"])
            pid = obj["why"].get("profile_id")
            if obj["why"]["code"] == "has_profile" and pid in seen_profiles:
                continue
            results.append({"kind": "object", "connection": d.name, "anchor": r["anchor"], "dn": r["dn"],
                            "name": _display_name({"dn": r["dn"]}), "why": obj["why"]})
    q_frame = view.frame("quarantine")
    if q_frame is not None and not q_frame.empty:
        covered = {(r["connection"], r.get("anchor")) for r in results if r["kind"] == "object"}
        hit = q_frame.loc[q_frame["dn"].fillna("").str.lower().str.contains(q, regex=False)
                          | q_frame["anchor"].fillna("").astype(str).str.lower().str.contains(q, regex=False)]
        for r in hit.head(MAX_RESULTS).to_dict("records"):
            if (r["connection"], r.get("anchor")) in covered or r.get("profile_id") in seen_profiles:
                continue
            results.append({"kind": "object", "connection": r["connection"], "anchor": jsonable(r.get("anchor")),
                            "dn": r["dn"], "name": _display_name({"dn": r["dn"]}),
                            "why": {"code": "quarantined",
                                    "text": f"quarantined since {r['first_seen']} (last seen {r['last_seen']}): "
                                            f"{r['reason']}"}})
    out: dict[str, Any] = {"query": query, "results": results[:MAX_RESULTS], "as_of_version": view.version}
    if not results:
        out["why"] = {"code": "never_seen",
                      "text": f"never seen: no profile, no connector-space object and nothing in quarantine matches "
                              f"{query.strip()!r}"}
    return out
