"""pandas settings of the engine, applied by every package that builds frames.

pandas 3 infers the "str" dtype for text; with pyarrow storage its isin/isna/merge
on 100k identifiers are ~10x slower than on Python objects (isin builds a pyarrow
scalar per element). Python storage keeps the same dtype semantics and the fast
hash-table paths. Importing pandas here (not in ``profile_sync/__init__``) keeps
``profile_sync.config`` light enough for DAG parsing.

Text read from Arrow (the connector-space build, every state-store read) becomes ``object`` arrays
through :func:`strings_to_objects`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

pd.set_option("mode.string_storage", "python")


SAMPLE_ROWS = 1000
"""Rows looked at to tell a column of repeated values (departments, titles, states) from one of distinct
values (DNs, anchors, e-mail addresses)."""


def strings_to_objects(column: "pa.ChunkedArray | pa.Array") -> "np.ndarray":
    """An Arrow string column as a numpy ``object`` array (``str``, None for null).

    Where values repeat (fewer distinct values than half the first ``SAMPLE_ROWS``), equal values become one
    Python object: a column of 100,000 departments holds ~50 strings instead of 100,000 (~6 MB less), and is
    converted faster. Columns of distinct values convert value by value (hashing them would only cost)."""
    if _repeats(column):
        obj = np.dtype(object)
        return column.to_pandas(deduplicate_objects=True, types_mapper=lambda _t: obj).to_numpy()
    return column.to_numpy(zero_copy_only=False)


def is_string_list(data_type: "pa.DataType") -> bool:
    """Whether an Arrow type is a list of text (multi-valued directory attributes)."""
    import pyarrow as pa

    return ((pa.types.is_list(data_type) or pa.types.is_large_list(data_type))
            and (pa.types.is_string(data_type.value_type) or pa.types.is_large_string(data_type.value_type)))


def lists_to_objects(column: "pa.ChunkedArray | pa.Array") -> "np.ndarray":
    """An Arrow list-of-text column as a numpy ``object`` array of numpy ``object`` arrays of ``str`` (None for a
    null list), converted by Arrow.

    Arrow's ``to_pandas`` deduplicates the strings by default, hashing every value: where they repeat (object
    classes) that is quicker and shares them, where they do not (e-mail addresses, members) it doubled the
    time (100,000 rows of ``proxyAddresses``: 0.17 s against 0.075 s). As for :func:`strings_to_objects`,
    the first ``SAMPLE_ROWS`` values decide."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    repeated = bool(chunks) and _repeats(chunks[0].values)
    return column.to_pandas(deduplicate_objects=repeated).to_numpy(dtype=object)


def _repeats(values: "pa.ChunkedArray | pa.Array") -> bool:
    """Whether the first ``SAMPLE_ROWS`` values hold fewer distinct values than half of them."""
    import pyarrow.compute as pc

    sample = values.slice(0, SAMPLE_ROWS)
    return len(sample) > 0 and pc.count_distinct(sample).as_py() * 2 < len(sample)


def value_lengths(values: "pd.Series") -> np.ndarray:
    """``len`` of each value (``float64``; NaN where the value is null or has no length) — what
    ``Series.str.len()`` gives an ``object`` column, in half its time: the text values of a column (nearly
    all of them) are measured inline, anything else by :func:`_length`."""
    return np.fromiter((len(v) if v.__class__ is str else _length(v) for v in values.to_numpy(dtype=object)),
                       dtype=np.float64, count=len(values))


def _length(value: object) -> float:
    if value is None:
        return np.nan
    try:
        return float(len(value))  # type: ignore[arg-type]
    except TypeError:  # numbers, NaN, booleans: no length
        return np.nan
