"""Reading a state frame: string columns come back as ``object`` (``str``, None for null) exactly as
``to_pandas()`` + the store's string cleaning gave them, other columns as ``to_pandas()`` gives them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from profile_sync.state.location import arrow_to_frame
from profile_sync.state.store import _clean_strings

FRAMES = {
    "mixed": pd.DataFrame({"anchor": ["a", None, "c"], "n": [1, 2, 3], "ok": [True, False, True],
                           "x": [1.5, None, 2.0], "values": [["p", "q"], [], None],
                           "when": pd.to_datetime(["2026-01-01", None, "2026-12-06"], utc=True)}),
    "strings only": pd.DataFrame({"a": ["é", "", None], "b": [None, None, None]}, dtype=object),
    "empty": pd.DataFrame({"anchor": pd.Series([], dtype=object), "n": pd.Series([], dtype="int64")}),
    "no string": pd.DataFrame({"n": [1, 2]}),
}


@pytest.mark.parametrize("name", list(FRAMES))
def test_same_frame_as_to_pandas_and_cleaning(name):
    table = pa.Table.from_pandas(FRAMES[name], preserve_index=False)
    got = arrow_to_frame(table)
    want = _clean_strings(table.to_pandas())
    pd.testing.assert_frame_equal(got, want)
    assert list(got.columns) == list(FRAMES[name].columns)
    for c in got.columns:
        if pa.types.is_string(table.schema.field(c).type):
            assert got[c].dtype == object
            assert all(v is None or isinstance(v, str) for v in got[c])


def test_a_large_string_and_a_chunked_column():
    table = pa.concat_tables([pa.table({"a": pa.array(["x", None], pa.large_string())}),
                              pa.table({"a": pa.array(["y"], pa.large_string())})])
    assert table.column("a").num_chunks == 2
    assert arrow_to_frame(table)["a"].tolist() == ["x", None, "y"]


def test_repeated_values_become_one_object_each_distinct_values_stay_as_they_are():
    n = 5000
    table = pa.table({"department": [f"Department {i % 7}" if i % 11 else None for i in range(n)],
                      "mail": [f"user{i}@example.org" for i in range(n)],
                      "late": ["same"] * 1000 + [f"v{i}" for i in range(n - 1000)]})
    got = arrow_to_frame(table)
    pd.testing.assert_frame_equal(got, _clean_strings(table.to_pandas()))
    assert len({id(v) for v in got["department"] if v is not None}) == 7
    assert len({id(v) for v in got["mail"]}) == n
    # Only the first rows are sampled: a column that repeats there is deduplicated, and still right.
    assert got["late"].tolist() == table.column("late").to_pylist()


def test_the_connector_space_build_shares_repeated_values():
    from profile_sync.sync.connector_space import _to_objects

    titles = _to_objects(pa.chunked_array([pa.array(["Engineer", "Manager", None] * 2000)]))
    assert titles.dtype == object and titles[:3].tolist() == ["Engineer", "Manager", None]
    assert len({id(v) for v in titles if v is not None}) == 2


def _same_lists(got, want) -> None:
    """Row by row: None where to_pandas() gives None, else a numpy object array with the same values."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            assert isinstance(g, np.ndarray) and g.dtype == object
            assert g.tolist() == w.tolist()


LISTS = {
    "nulls, empty lists, null values": pa.array([["a", "b"], None, [], ["c", None], None], pa.list_(pa.string())),
    "every list the same length": pa.array([["a", "b"], ["c", "d"], ["e", "f"]], pa.list_(pa.string())),
    "large lists of large strings": pa.array([["x"], None, ["y", "z"]], pa.large_list(pa.large_string())),
    "all null": pa.array([None, None], pa.list_(pa.string())),
    "empty": pa.array([], pa.list_(pa.string())),
    "a slice": pa.array([["a"], ["b", "c"], None, ["d"], ["e"]], pa.list_(pa.string())).slice(1, 3),
    # A null list may stand over values (the Arrow format allows it): they must not shift the next rows.
    "a null over values": pa.ListArray.from_arrays(
        pa.array([0, 2, 3, 5], pa.int32()), pa.array(["a", "b", "hidden", "c", "d"]),
        mask=pa.array([False, True, False])),
}


@pytest.mark.parametrize("name", list(LISTS))
def test_lists_of_text_come_back_as_to_pandas_gives_them(name):
    from profile_sync._pandas import lists_to_objects

    array = LISTS[name]
    _same_lists(lists_to_objects(array), array.to_pandas().tolist())
    table = pa.table({"v": pa.chunked_array([array, array], array.type)})
    got = arrow_to_frame(table)["v"]
    assert got.dtype == object
    _same_lists(got.tolist(), table.column("v").to_pandas().tolist())


def test_repeated_list_values_become_one_object_each():
    n = 3000
    got = arrow_to_frame(pa.table({"objectclass": [["top", "person", "user"]] * n}))["objectclass"]
    assert len({id(v) for row in got for v in row}) == 3
    assert got[n - 1].tolist() == ["top", "person", "user"]


def test_the_connector_space_build_converts_lists_alike():
    from profile_sync.sync.connector_space import _to_objects

    lists = pa.chunked_array([pa.array([["smtp:a@x", "SMTP:b@x"], None], pa.list_(pa.string())),
                              pa.array([["c@x"]], pa.list_(pa.string()))])
    _same_lists(_to_objects(lists), [np.array(["smtp:a@x", "SMTP:b@x"], dtype=object), None,
                                     np.array(["c@x"], dtype=object)])


def test_value_lengths_are_what_str_len_gives_an_object_column():
    from profile_sync._pandas import value_lengths

    values = pd.Series([None, "", "abc", "é" * 5, float("nan"), 12, True, ["a", "b"],
                        np.array(["x"], dtype=object), b"\x00\x01", pd.NA, ("t",)], dtype=object)
    want = pd.Series([np.nan if pd.isna(n) else float(n) for n in values.str.len()])
    got = pd.Series(value_lengths(values))
    pd.testing.assert_series_equal(got, want)
    assert got.isna().tolist() == [True, False, False, False, True, True, True, False, False, False, True, False]
