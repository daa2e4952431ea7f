"""Quarantine: objects that break an object-level check are held back; the rest of the run goes on.

Two levels of checks put an object in quarantine, each with a reason:

- **import** (``connector_space.build_connector_space``): missing or duplicate
  anchor, undecodable value, invalid DN — the object cannot enter the
  connector space;
- **export** (``pending_exports.plan_profile_store_exports``): no account
  name (no value for the attribute that feeds ``account_name``), duplicate
  account name, value too long for its column — the person's profile is not
  written (a person who never had one gets none).

A quarantined object is never treated as deleted. An object that was already
synchronized keeps its last good connector-space row (``keep_last_good``), so
the metaverse and its profile stay exactly as they were; a profile held at the
export level is neither updated nor marked for deletion. Every run reads every
object again, so a quarantined object is retried each run and released once it
is fixed (or gone from the directory); releases are recorded in the run history.

The ``quarantine`` frame of the state store (``QUARANTINE_COLUMNS``) is what is
held now, with when each object was first and last seen in quarantine.
"""

from __future__ import annotations

import pandas as pd

from profile_sync.directory.dn import normalize_dns

QUARANTINE_COLUMNS = ["connection", "anchor", "dn", "reason", "level", "profile_id", "kept_last_good",
                      "first_seen", "last_seen"]
"""``level``: ``import`` | ``export``; ``kept_last_good``: the object's last good state is kept
(its profile is untouched) — False for an object never synchronized before."""
RELEASED_COLUMNS = ["connection", "anchor", "dn", "reason", "level", "first_seen", "released_at", "outcome"]
"""``reason``: why it had been quarantined; ``outcome``: ``synchronized`` | ``out of scope`` |
``no longer in the directory`` | ``connection no longer configured``."""


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=bool if c == "kept_last_good" else object) for c in QUARANTINE_COLUMNS})


def keep_last_good(objects: pd.DataFrame, held: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """``objects`` plus the last good connector-space row of every held object that had one.

    Held objects are matched to ``previous`` (the committed connector space) by
    anchor, or by DN when they have no anchor. A previous row is only carried
    when no imported object has its anchor now.
    """
    if previous is None or previous.empty or held.empty:
        return objects
    anchors = held["anchor"].dropna()
    dns = {d for d in normalize_dns(held.loc[held["anchor"].isna(), "dn"].tolist()) if d}
    match = previous["anchor"].isin(anchors) | previous["dn_norm"].isin(dns)
    carry = previous.loc[match & ~previous["anchor"].isin(objects["anchor"])].drop_duplicates("anchor")
    if carry.empty:
        return objects
    carry = carry.copy()
    for c in objects.columns:
        if c not in carry.columns:
            carry[c] = None  # an attribute read since (a new mapping): unknown in the last good state
    carry = carry[list(objects.columns)]
    if objects.empty:  # nothing imported but held objects: the last good rows are the connector space
        return carry.reset_index(drop=True)
    return pd.concat([objects, carry], ignore_index=True)


def current_entries(
    held: dict[str, pd.DataFrame],
    spaces: dict[str, pd.DataFrame],
    pending_held: pd.DataFrame,
    mv_people: pd.DataFrame,
    store_people: pd.DataFrame,
) -> pd.DataFrame:
    """What this run holds back, both levels, without the first/last-seen bookkeeping."""
    parts = []
    for conn, frame in held.items():
        if frame is None or frame.empty:
            continue
        space = spaces.get(conn)
        anchors = set(space["anchor"]) if space is not None else set()
        dns = set(space["dn_norm"].dropna()) if space is not None else set()
        norm = normalize_dns(frame["dn"].tolist())
        kept = [(a is not None and a == a and a in anchors) or (n is not None and n in dns and (a is None or a != a))
                for a, n in zip(frame["anchor"], norm)]
        parts.append(pd.DataFrame({
            "connection": conn, "anchor": frame["anchor"].to_numpy(dtype=object), "dn": frame["dn"].to_numpy(dtype=object),
            "reason": frame["reason"].to_numpy(dtype=object), "level": "import", "profile_id": None,
            "kept_last_good": kept,
        }))
    if pending_held is not None and len(pending_held):
        anchors = mv_people.set_index("mv_id")["source_anchor"] if len(mv_people) else pd.Series(dtype=object)
        in_store = set(store_people["profile_id"]) if len(store_people) else set()
        ids = pending_held["profile_id"]
        parts.append(pd.DataFrame({
            "connection": pending_held["source_connection"].to_numpy(dtype=object),
            "anchor": ids.map(anchors).to_numpy(dtype=object),
            "dn": pending_held["source_dn"].to_numpy(dtype=object),
            "reason": pending_held["reason"].to_numpy(dtype=object),
            "level": "export",
            "profile_id": ids.to_numpy(dtype=object),
            "kept_last_good": ids.isin(in_store).to_numpy(),
        }))
    if not parts:
        return empty_quarantine().drop(columns=["first_seen", "last_seen"])
    out = pd.concat(parts, ignore_index=True)
    out["anchor"] = out["anchor"].astype(object).where(out["anchor"].notna(), None)
    out["kept_last_good"] = out["kept_last_good"].astype(bool)
    return out


def _keys(frame: pd.DataFrame) -> pd.Series:
    """The identity of a quarantined object: its connection and anchor (or DN when it has none)."""
    ident = frame["anchor"].where(frame["anchor"].notna(), "dn:" + frame["dn"].fillna("").str.lower())
    return frame["connection"].fillna("") + "\x1f" + ident.astype(str)


def update_quarantine(
    previous: pd.DataFrame | None, current: pd.DataFrame, now: str, spaces: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The new quarantine frame and the objects released since ``previous``."""
    previous = previous if previous is not None else empty_quarantine()
    quarantine = current.copy()
    keys = _keys(quarantine) if len(quarantine) else pd.Series(dtype=object)
    if len(previous):
        prev_keys = _keys(previous)
        first = previous.assign(_key=prev_keys).groupby("_key")["first_seen"].min()
        quarantine["first_seen"] = keys.map(first).where(keys.isin(first.index), now).to_numpy(dtype=object)
        gone = previous.loc[~prev_keys.isin(set(keys))].drop_duplicates(subset=None)
    else:
        quarantine["first_seen"] = now
        gone = previous
    quarantine["last_seen"] = now
    quarantine = quarantine[QUARANTINE_COLUMNS].reset_index(drop=True)
    released = gone.assign(released_at=now, outcome=_outcomes(gone, spaces))[RELEASED_COLUMNS]
    return quarantine, released.reset_index(drop=True)


def _outcomes(released: pd.DataFrame, spaces: dict[str, pd.DataFrame]) -> list[str]:
    out = []
    norm = normalize_dns(released["dn"].tolist()) if len(released) else []
    index = {conn: (space.set_index("anchor")["in_scope"].to_dict(),
                    space.dropna(subset=["dn_norm"]).set_index("dn_norm")["in_scope"].to_dict())
             for conn, space in spaces.items()} if len(released) else {}
    for conn, anchor, dn_norm in zip(released["connection"], released["anchor"], norm):
        if conn not in index:
            out.append("connection no longer configured")
            continue
        by_anchor, by_dn = index[conn]
        found = by_anchor.get(anchor) if anchor is not None and anchor == anchor else by_dn.get(dn_norm)
        out.append("no longer in the directory" if found is None else "synchronized" if found else "out of scope")
    return out
