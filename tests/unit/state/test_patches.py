"""Patches of frames (state/patches.py), without a store: a chain of random patches reads back as the frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from profile_sync.state import patches
from profile_sync.state.location import arrow_to_frame
from profile_sync.state.patches import Patch


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def _change(frame: pd.DataFrame, rng: np.random.Generator, serial: int) -> tuple[pd.DataFrame, Patch]:
    """A random delta of ``frame`` as the steps make them: rows deleted, changed in place, changed and moved
    last, new rows last."""
    n = len(frame)
    pick = rng.permutation(n)
    deleted, in_place, moved = (pick[:rng.integers(0, 4)], pick[4:4 + rng.integers(0, 4)],
                                pick[8:8 + rng.integers(0, 4)])
    out = frame.copy()
    for i in in_place:
        out.iat[i, 1] = None if rng.random() < 0.3 else f"changed {serial}.{i}"
    tail = out.iloc[moved].copy()
    tail["number"] = -tail["number"] - 1
    new = pd.DataFrame({"key": [f"new{serial}.{j}" for j in range(rng.integers(0, 3))]})
    new["text"] = pd.Series([f"n{j}" for j in range(len(new))], dtype=object)
    new["number"] = np.arange(len(new), dtype="int64") + 10_000
    new["values"] = [[f"v{j}"] for j in range(len(new))]
    head = out.drop(index=out.index[np.concatenate([deleted, moved])])
    result = pd.concat([head, tail, new], ignore_index=True)
    return result, Patch("key", appended=len(tail) + len(new), replaced=list(frame["key"].iloc[in_place]))


@pytest.mark.parametrize("seed", range(25))
def test_a_chain_of_random_patches_reads_back_as_the_last_frame(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 60))
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(n)],
                          "text": pd.Series([None if i % 4 == 0 else f"t{i}" for i in range(n)], dtype=object),
                          "number": np.arange(n, dtype="int64"),
                          "values": [[f"m{i}", "x"] if i % 3 else [] for i in range(n)]})
    base = _table(frame)
    chain = []
    for serial in range(int(rng.integers(1, 5))):
        previous = patches.apply(base, chain, "key") if chain else base
        frame, patch = _change(frame, rng, serial)
        plan = patches.plan(previous.column("key"), frame, patch)
        assert plan is not None
        table = patches.patch_table(frame, plan, "key", base.schema)
        assert table is not None and patches.patch_key(table) == "key"
        assert table.num_rows == plan.rows < len(frame) + plan.rows  # the changed rows, not the frame
        chain.append(table)
    got = arrow_to_frame(patches.apply(base, chain, "key"))
    want = arrow_to_frame(_table(frame))
    pd.testing.assert_frame_equal(got, want)
    # Reading some columns (the key among them) gives those columns of the same frame.
    some = patches.apply(base.select(["key", "number"]), [c.select(["key", "number", patches.PATCH_OP])
                                                          for c in chain], "key")
    assert some.column("number").to_pylist() == frame["number"].tolist()


def test_a_description_that_does_not_hold_gives_no_plan():
    frame = pd.DataFrame({"key": ["a", "b", "c", "d"], "number": [1, 2, 3, 4]})
    keys = _table(frame).column("key")
    assert patches.plan(keys, frame.iloc[[1, 0, 2, 3]], Patch("key")) is None  # out of order
    assert patches.plan(keys, pd.concat([frame, frame.iloc[[0]]]), Patch("key", appended=1)) is None  # twice
    assert patches.plan(keys, frame.assign(key=["a", "b", "x", "d"]), Patch("key")) is None  # new, not last
    assert patches.plan(keys, frame, Patch("key", appended=5)) is None
    assert patches.plan(keys, frame, Patch("other")) is None
    moved = patches.plan(keys, frame.iloc[[0, 2, 3, 1]], Patch("key", appended=1))
    assert moved is not None and moved.appended.tolist() == [3] and moved.rows == 1
    gone = patches.plan(keys, frame.iloc[[0, 3]], Patch("key", replaced=["d", "b"]))
    assert gone.replaced.tolist() == [1] and sorted(gone.deleted) == ["b", "c"]
