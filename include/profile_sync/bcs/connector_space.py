"""The business-system connector space: every source row as last read, with its join key.

========================  ==========================================================
column                    meaning
========================  ==========================================================
``row``                   position in the source (0-based), for error reports
``key``                   the join value as read (text)
``key_norm``              the join value normalised (None: no usable key)
``row_hash``              hash of the key and every mapped value; equal ⇒ unchanged
``c.<column>``            one column per configured source column, values as read
========================  ==========================================================

Values are kept as read (types are the properties' business, decided in
``synchronize``); a column Parquet cannot store as read (mixed types) is kept
as text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.bcs.keys import key_text, normalize_keys
from profile_sync.config.business_systems import BusinessSystem

COLUMN_PREFIX = "c."
BASE_COLUMNS = ["row", "key", "key_norm", "row_hash"]


def source_column(column: str) -> str:
    """Name of the connector-space column holding source column ``column``."""
    return COLUMN_PREFIX + column


def build_connector_space(bs: BusinessSystem, rows: pd.DataFrame) -> pd.DataFrame:
    """The connector space of ``bs`` from the rows of one bulk read."""
    import pyarrow as pa

    join = bs.join.source_column or ""
    raw = rows[join]
    present = raw.notna().to_numpy()
    key = pd.Series(np.full(len(rows), None, dtype=object), index=rows.index)
    key[present] = raw[present].map(key_text).to_numpy(dtype=object)
    out = {"row": np.arange(len(rows), dtype="int64"), "key": key.to_numpy(dtype=object),
           "key_norm": normalize_keys(raw, bs.join.normalize).to_numpy(dtype=object)}
    for c in bs.columns:
        values = rows[c]
        if values.dtype == object:
            try:
                pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                values = values.map(key_text, na_action="ignore")
        out[source_column(c)] = values.to_numpy()
    frame = pd.DataFrame(out)
    frame["row_hash"] = _row_hash(frame, ["key", *[source_column(c) for c in bs.columns]])
    return frame[[*BASE_COLUMNS, *[source_column(c) for c in bs.columns]]]


def _row_hash(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's values (equal values ⇒ equal hash), column by column, vectorised."""
    out = np.zeros(len(frame), dtype="uint64")
    for c in columns:
        values = frame[c].to_numpy(dtype=object)
        try:
            h = pd.util.hash_array(values)
        except TypeError:  # unhashable (arrays from a Parquet list column)
            h = pd.util.hash_array(np.array([repr(v) for v in values], dtype=object))
        out = (out * np.uint64(0x100000001B3)) ^ h
    return out


def import_counts(previous: pd.DataFrame | None, space: pd.DataFrame) -> dict[str, int]:
    """Pending imports against the previous connector space, by normalised key: adds, updates, deletes."""
    def by_key(frame: pd.DataFrame) -> pd.Series:
        keyed = frame.loc[frame["key_norm"].notna(), ["key_norm", "row_hash"]]
        # Order-independent combination of the rows of a key (1:many sources have several).
        return keyed.groupby("key_norm", sort=False)["row_hash"].sum()

    now = by_key(space)
    if previous is None or previous.empty:
        return {"adds": len(now), "updates": 0, "deletes": 0, "unchanged": 0}
    before = by_key(previous)
    both = now.index.intersection(before.index)
    same = int((now[both] == before[both]).sum())
    return {"adds": len(now.index.difference(before.index)), "updates": len(both) - same,
            "deletes": len(before.index.difference(now.index)), "unchanged": same}
