"""Reading a state frame: string columns come back as ``object`` (``str``, None for null) exactly as
``to_pandas()`` + the store's string cleaning gave them, other columns as ``to_pandas()`` gives them."""

from __future__ import annotations

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
