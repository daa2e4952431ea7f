"""Business-system values → typed profile-property values, or a reason why not.

Each distinct value of a column is converted once (HR columns repeat a lot:
dates, cost centres), so a 100,000-row column costs one Python call per
distinct value, not per row. A value that does not fit the property's type or
length gets a reason; the row's other values go on.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd

from profile_sync.config.properties import PropertySpec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class Converted(NamedTuple):
    """A converted column: typed values (None where missing or invalid) and reasons (None where fine)."""

    values: pd.Series
    reasons: pd.Series


class _Invalid(NamedTuple):
    reason: str


def _as_text(v: Any) -> str | _Invalid:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return _Invalid("binary value that is not UTF-8 text")
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, Decimal) and v == v.to_integral_value():
        return str(int(v))
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


def _as_integer(v: Any) -> int | _Invalid:
    if isinstance(v, (bool, np.bool_)):
        return _Invalid("not an integer (a boolean)")
    if isinstance(v, (int, np.integer)):
        n = int(v)
    elif isinstance(v, (float, np.floating, Decimal)):
        if not float(v).is_integer():
            return _Invalid("not an integer (has a fractional part)")
        n = int(v)
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return _Invalid("not an integer")
        if not d.is_finite() or d != d.to_integral_value():
            return _Invalid("not an integer")
        n = int(d)
    else:
        return _Invalid(f"not an integer ({type(v).__name__})")
    if not INT64_MIN <= n <= INT64_MAX:
        return _Invalid("integer out of range (64-bit)")
    return n


def _as_boolean(v: Any) -> bool | _Invalid:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and int(v) in (0, 1):
        return bool(v)
    if isinstance(v, str):
        t = v.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
    return _Invalid("not a boolean (true/false, yes/no, 1/0)")


def _as_date(v: Any) -> date | _Invalid:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, str):
        t = v.strip()
        try:
            return date.fromisoformat(t)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(t).date()
        except ValueError:
            return _Invalid("not a date (ISO 8601, e.g. 2024-03-31)")
    return _Invalid(f"not a date ({type(v).__name__})")


def _as_binary(v: Any) -> bytes | _Invalid:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    return _Invalid(f"not binary ({type(v).__name__})")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _as_text, "text": _as_text, "integer": _as_integer, "boolean": _as_boolean,
    "date": _as_date, "binary": _as_binary,
}


def nones(index: pd.Index) -> pd.Series:
    """An object Series of None (not NaN: typed columns with NaN do not round-trip through Parquet)."""
    return pd.Series(np.full(len(index), None, dtype=object), index=index, dtype=object)


def _blank(v: Any) -> bool:
    return isinstance(v, str) and not v.strip()


def convert(values: pd.Series, spec: PropertySpec, prop: str) -> Converted:
    """Convert a source column for property ``prop``; values that do not fit get a reason.

    NULL, NaN and blank text are no value. Each distinct value is converted once,
    then the results are spread back over the rows by position.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.Series(values.dt.to_pydatetime(), index=values.index, dtype=object)
    raw = values.to_numpy(dtype=object)
    n = len(raw)
    out = np.full(n, None, dtype=object)
    reasons = np.full(n, None, dtype=object)
    present = ~pd.isna(values).to_numpy()
    if not present.any():
        return Converted(pd.Series(out, index=values.index), pd.Series(reasons, index=values.index))
    conv = CONVERTERS[spec.type]
    try:
        uniques, codes = _factorize(raw[present])
    except TypeError:  # unhashable values (arrays from a Parquet list column): one call per row
        uniques, codes = raw[present], np.arange(int(present.sum()))
    typed_u = np.empty(len(uniques), dtype=object)
    reason_u = np.full(len(uniques), None, dtype=object)
    empty_u = np.zeros(len(uniques), dtype=bool)
    limit = spec.max_length if spec.type == "string" else None
    for i, u in enumerate(uniques):
        if _blank(u):
            empty_u[i] = True
            continue
        v = conv(u)
        if isinstance(v, _Invalid):
            reason_u[i] = f"{prop}: {v.reason}"
        elif limit is not None and len(v) > limit:
            reason_u[i] = f"{prop}: value too long ({len(v)} > {limit} characters)"
        else:
            typed_u[i] = v
    ok_u = ~empty_u & pd.isna(reason_u)
    where = np.flatnonzero(present)
    typed_u[~ok_u] = None
    out[where] = typed_u[codes]
    reasons[where] = reason_u[codes]
    return Converted(pd.Series(out, index=values.index), pd.Series(reasons, index=values.index))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and, per value, the position of its distinct value (hash-based, like ``pd.factorize``)."""
    codes, uniques = pd.factorize(values)
    return np.asarray(uniques, dtype=object), codes


def to_text(value: Any) -> str:
    """The text a typed value is stored as in ``profile_property_values`` (dates ISO, booleans true/false)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
