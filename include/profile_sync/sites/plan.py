"""Plan a push: listed people × their profiles → the rows to write (pure pandas, no I/O).

Which profile a listed person is, in order (the first that exists wins):

1. the active profile the row follows (``profile_id``, written by an earlier push) —
   so a renamed person keeps their row, which takes the new account name;
2. the active profile with the row's account name (case-insensitive) — a person the
   site just learned about, or one whose old profile was replaced by a new one;
3. the row's own profile when it is marked for deletion;
4. the marked profile with the row's account name (the most recently updated one).

No profile at all (a guest, a service account, a profile purged long ago): the
row is left as it is (``unmatched``). A matched row gets every synced property
of its profile, ``deleted`` = the profile is marked for deletion (a person who
comes back is un-flagged), and ``profile_id``. A rename whose new account name
another row of the list already holds is not applied (``rename_conflicts``); the
row's other properties still are.

Incremental pushes write only rows where something differs (or that were never
synced); a full push writes every matched row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from profile_sync.sites.config import KEY, SYNCED
from profile_sync.sites.site_list import ROW_COLUMNS, STAGE_KEY
from profile_sync.sync.pending_exports import ACTIVE, MARKED

SAMPLE = 20
PROPERTIES = [p for p in SYNCED if p != KEY]


@dataclass(frozen=True)
class SitePlan:
    """The rows one push writes, and what it found."""

    writes: pd.DataFrame
    """``_site_key`` (the row's current account name) and the new values of ``ROW_COLUMNS`` but ``last_synced``."""
    flagged: pd.DataFrame
    """Rows newly flagged ``deleted`` (``account_name``, ``profile_id``): what the gate counts."""
    stats: dict[str, int]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _lower(series: pd.Series) -> pd.Series:
    out = series.astype(object).str.lower()
    return out.where(out.notna(), None).astype(object)


def as_flag(series: pd.Series) -> np.ndarray:
    """A ``deleted`` column as booleans (NULL: not deleted)."""
    return series.astype(object).where(series.notna(), False).astype(bool).to_numpy()


def _by_name(profiles: pd.DataFrame, state: str) -> pd.Series:
    """lower(account_name) → profile_id among profiles in ``state`` (latest ``updated_at`` first)."""
    part = profiles.loc[(profiles["state"] == state) & profiles[KEY].notna()]
    if state == MARKED and len(part):
        part = part.assign(_t=pd.to_datetime(part["updated_at"], utc=True, errors="coerce")).sort_values(
            "_t", ascending=False, na_position="last")
    index = _lower(part[KEY])
    out = pd.Series(part["profile_id"].to_numpy(dtype=object), index=index.to_numpy(dtype=object), dtype=object)
    return out[~out.index.duplicated(keep="first")]


def _differs(old: pd.Series, new: pd.Series) -> pd.Series:
    """Null-safe ``old != new``, element-wise."""
    both_missing = old.isna().to_numpy() & new.isna().to_numpy()
    equal = old.to_numpy(dtype=object) == new.to_numpy(dtype=object)
    return pd.Series(~(equal | both_missing), index=old.index)


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    head = frame[columns].head(SAMPLE).astype(object)
    return head.where(head.notna(), None).to_dict("records")


def plan_site_push(rows: pd.DataFrame, profiles: pd.DataFrame, listed_keys: pd.Series, *, full: bool
                   ) -> SitePlan:
    """Plan the push of ``profiles`` onto ``rows`` (``ROW_COLUMNS`` of the listed people considered).

    ``listed_keys``: every account name in the list (for rename conflicts). ``full``: write every matched row.
    """
    rows = rows.reset_index(drop=True)
    lname = _lower(rows[KEY])
    pid = rows["profile_id"].astype(object)
    state_by_id = pd.Series(profiles["state"].to_numpy(dtype=object),
                            index=profiles["profile_id"].to_numpy(dtype=object), dtype=object)
    own_state = pid.map(state_by_id)
    match = (pid.where(own_state == ACTIVE)
             .combine_first(lname.map(_by_name(profiles, ACTIVE)))
             .combine_first(pid.where(own_state.notna()))
             .combine_first(lname.map(_by_name(profiles, MARKED))))
    matched = match.notna().to_numpy()
    cur = rows.loc[matched].reset_index(drop=True)
    cur_lname = lname.loc[matched].reset_index(drop=True)
    target = profiles.set_index("profile_id").loc[match[matched].to_numpy()].reset_index()

    # Renames: the row takes the profile's account name unless another row of the list holds it already.
    new_key = target[KEY].where(target[KEY].notna(), cur[KEY])
    new_lname = _lower(new_key)
    renamed = (new_lname != cur_lname).to_numpy(dtype=bool, copy=True)
    conflict = np.zeros(len(cur), dtype=bool)
    if renamed.any():
        taken = set(_lower(listed_keys).dropna())
        conflict = renamed & (new_lname.isin(taken).to_numpy() | new_lname.duplicated(keep=False).to_numpy())
    renamed = renamed & ~conflict
    new_key = new_key.where(renamed, cur[KEY])  # a change of case alone is no rename

    new = pd.DataFrame({STAGE_KEY: cur[KEY].to_numpy(dtype=object), KEY: new_key.to_numpy(dtype=object),
                        "profile_id": target["profile_id"].to_numpy(dtype=object)})
    for p in PROPERTIES:
        new[p] = target[p].to_numpy(dtype=object)
    new["deleted"] = (target["state"] == MARKED).to_numpy()
    was_deleted = as_flag(cur["deleted"])

    changed_props = np.zeros(len(cur), dtype=bool)
    for p in PROPERTIES:
        changed_props |= _differs(cur[p], new[p]).to_numpy()
    relinked = _differs(cur["profile_id"], new["profile_id"]).to_numpy()
    flagged = new["deleted"].to_numpy() & ~was_deleted
    restored = ~new["deleted"].to_numpy() & was_deleted
    never = cur["last_synced"].isna().to_numpy()
    write = (np.ones(len(cur), dtype=bool) if full
             else changed_props | renamed | relinked | flagged | restored | never)

    writes = new.loc[write].reset_index(drop=True)
    stats = {
        "considered": len(rows),
        "matched": int(matched.sum()),
        "unmatched": int((~matched).sum()),
        "written": int(write.sum()),
        "updates": int((write & (changed_props | renamed)).sum()),
        "deletes": int(flagged.sum()),
        "restores": int(restored.sum()),
        "renames": int(renamed.sum()),
        "rename_conflicts": int(conflict.sum()),
        "relinked": int(relinked.sum()),
        "first_synced": int(never.sum()),
        "unchanged": int((~write).sum()),
    }
    flagged_rows = new.loc[flagged, [STAGE_KEY, "profile_id"]].rename(columns={STAGE_KEY: KEY}).reset_index(drop=True)
    samples = {
        "updates": records(new.loc[write & (changed_props | renamed)], [STAGE_KEY, KEY, "profile_id"]),
        "deletes": records(flagged_rows, [KEY, "profile_id"]),
        "restores": records(new.loc[restored], [KEY, "profile_id"]),
        "rename_conflicts": records(pd.DataFrame({KEY: cur.loc[conflict, KEY],
                                                   "new_account_name": target.loc[conflict, KEY]}),
                                     [KEY, "new_account_name"]),
        "unmatched": records(rows.loc[~matched], [KEY]),
    }
    return SitePlan(writes[[STAGE_KEY, *[c for c in ROW_COLUMNS if c != "last_synced"]]], flagged_rows, stats,
                    {k: v for k, v in samples.items() if v})


__all__ = ["SitePlan", "plan_site_push"]
