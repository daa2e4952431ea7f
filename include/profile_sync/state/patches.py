"""Frames stored as a patch of the previous frame: a delta run writes what changed, not the whole frame.

An incremental run changes a few rows of large frames (the connector space, the metaverse people, the profile
store's people, the lineage) and used to write them whole again. A step that knows which rows it changed says
so (:class:`Patch`); the store then writes only those rows, and the manifest names the frame as a *chain*: the
base object, then its patches in order. Reading a chain works the row order out on the key column alone
(:func:`chain`), then takes the rows column by column as they convert, so the frame read is the frame written,
row for row and in the same order.

A patch object holds the rows that replace a row of the frame before it in place (same key), the rows
appended at the end (new keys, or keys moved there from their place), and the keys of the rows deleted, each
row marked by :data:`PATCH_OP`; the key column's name is in its schema metadata. The rows are cast to the
base's schema when written, so a chain always reads as one table.

What a writer claims is checked where it is cheap: the keys are unique on both sides, the frame's rows before
the appended ones are the previous frame's rows in their order (deleted ones left out), and the patch casts
to the base's schema. Whether an unchanged row really is unchanged is the writer's word: with
``PROFILE_SYNC_CHECK_PATCHES=1`` (the test suite sets it) every patch is read back and compared with the
frame, and a difference is an error. A chain is written whole again (*compacted*) when it would grow past
:data:`MAX_CHAIN` patches or its patches past :data:`MAX_SHARE` of the frame's rows, and whenever the columns
change; a full run writes every frame whole.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PATCH_OP = "__patch_op"
"""The column marking each row of a patch object: :data:`REPLACE`, :data:`APPEND` or :data:`DELETE`."""
REPLACE, APPEND, DELETE = 0, 1, 2
KEY_META = b"profile_sync.patch_key"
MAX_CHAIN = 8
"""Patches on one base at the most; the next write is whole."""
MAX_SHARE = 0.2
"""The rows of a chain's patches (replaced, appended, deleted) at the most, as a share of the frame's rows."""


@dataclass(frozen=True)
class Patch:
    """How a frame differs from the previous frame of its key (as the step writing it sees it: the committed
    frame, or this run's if an earlier step wrote it), in the words of the step that made it.

    ``key``: the column that names a row (unique in both frames). ``appended``: the frame's last rows that
    are new or were moved to the end (a changed object re-appended). ``replaced``: keys of the other rows
    whose values changed in place. Every other row is the previous frame's row with that key, unchanged;
    rows of the previous frame whose key the frame no longer has are deleted."""

    key: str
    appended: int = 0
    replaced: Collection = ()


@dataclass(frozen=True)
class _Plan:
    replaced: np.ndarray
    """Positions in the frame of the rows replaced in place."""
    appended: np.ndarray
    """Positions in the frame of the appended rows."""
    deleted: np.ndarray
    """Keys of the previous frame's rows that are gone."""

    @property
    def rows(self) -> int:
        return len(self.replaced) + len(self.appended) + len(self.deleted)


def plan(previous_keys: pa.ChunkedArray | pa.Array, frame: pd.DataFrame, patch: Patch) -> _Plan | None:
    """What to write for ``frame`` as a patch of the frame whose keys are ``previous_keys``; None when the
    writer's description does not hold (keys not unique, the unchanged rows not in the previous order, more
    appended rows than the frame has): then the frame is written whole. Keys are compared in Arrow (hashing
    100,000 keys there takes a few milliseconds; a pandas index of Python strings, ten times that)."""
    n = len(frame)
    if patch.key not in frame.columns or not 0 <= patch.appended <= n:
        return None
    before = previous_keys.combine_chunks() if isinstance(previous_keys, pa.ChunkedArray) else previous_keys
    try:
        keys = pa.array(frame[patch.key].to_numpy(dtype=object), type=before.type, from_pandas=True)
        replaced = pa.array(list(patch.replaced), type=before.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return None
    if keys.null_count or before.null_count or not (_unique(keys) and _unique(before)):
        return None
    head, tail = keys.slice(0, n - patch.appended), keys.slice(n - patch.appended)
    in_head = _mask(pc.is_in(before, value_set=head))
    if int(in_head.sum()) != len(head) or not before.filter(pa.array(in_head)).equals(head):
        return None  # a row before the appended ones is new or out of its previous place
    in_tail = _mask(pc.is_in(before, value_set=tail))
    at = pc.index_in(replaced, value_set=head).drop_null().to_numpy(zero_copy_only=False)
    deleted = before.filter(pa.array(~in_head & ~in_tail)).to_numpy(zero_copy_only=False)
    return _Plan(np.unique(at).astype(np.int64), np.arange(n - patch.appended, n), deleted)


def _unique(keys: pa.Array) -> bool:
    return pc.count_distinct(keys).as_py() == len(keys)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False).astype(bool)


def patch_table(frame: pd.DataFrame, p: _Plan, key: str, schema: pa.Schema) -> pa.Table | None:
    """The patch object's table: the replaced and appended rows cast to the base's ``schema``, then the
    deleted keys; None when the rows do not cast to it (a column's type changed: written whole)."""
    rows = frame.iloc[np.concatenate([p.replaced, p.appended])].reset_index(drop=True)
    try:
        table = pa.Table.from_pandas(rows, preserve_index=False).cast(schema)
        deleted = pa.array(list(p.deleted), type=schema.field(key).type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError, KeyError):
        return None
    ops = np.concatenate([np.full(len(p.replaced), REPLACE, np.int8), np.full(len(p.appended), APPEND, np.int8)])
    table = table.append_column(PATCH_OP, pa.array(ops, pa.int8()))
    if len(deleted):
        gone = pa.table({key: deleted, PATCH_OP: pa.array(np.full(len(deleted), DELETE, np.int8), pa.int8())})
        table = pa.concat_tables([table, gone], promote_options="default")
    return table.replace_schema_metadata({**(schema.metadata or {}), KEY_META: key.encode()})


def patch_key(table: pa.Table) -> str:
    """The key column of a patch object."""
    return (table.schema.metadata or {})[KEY_META].decode()


def apply(table: pa.Table, changes: list[pa.Table], key: str) -> pa.Table:
    """``table`` (with its ``key`` column) after each patch of ``changes`` in order (each read with the same
    columns and :data:`PATCH_OP`)."""
    rows, order = chain(table, changes, key)
    return rows.take(pa.array(order))


def chain(table: pa.Table, changes: list[pa.Table], key: str) -> tuple[pa.Table, np.ndarray]:
    """The rows of ``table`` and of each patch of ``changes`` (one table) and the positions, in it, of the
    frame's rows in order: the order is worked out on the keys alone, and a caller takes the rows column by
    column (``location.arrow_to_frame``), so no second copy of the whole table is ever made."""
    parts = [table]
    size = table.num_rows
    order = np.arange(size, dtype=np.int64)
    keys = table.column(key)
    every_key = list(keys.chunks)
    for patch in changes:
        ops = patch.column(PATCH_OP).to_numpy()
        patch_keys = patch.column(key).combine_chunks()
        at_replaced = np.flatnonzero(ops == REPLACE)
        at_appended = np.flatnonzero(ops == APPEND)
        if len(order):
            dropped = pc.is_in(keys, value_set=patch_keys.take(np.flatnonzero(ops != REPLACE)))
            dropped = dropped.to_numpy(zero_copy_only=False).astype(bool)
        else:
            dropped = np.zeros(0, bool)
        if len(at_replaced) and len(order):
            found = pc.index_in(keys, value_set=patch_keys.take(at_replaced)).fill_null(-1).to_numpy()
            hit = found >= 0
            order = order.copy()
            order[hit] = size + at_replaced[found[hit]]
        order = np.concatenate([order[~dropped], size + at_appended])
        parts.append(patch.select(table.column_names).cast(table.schema))
        every_key.append(patch_keys)
        size += patch.num_rows
        keys = pa.chunked_array(every_key, type=table.schema.field(key).type).take(pa.array(order))
    return pa.concat_tables(parts), order
