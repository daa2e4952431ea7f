"""Join-key normalisation: the same steps turn both sides of the join into comparable text.

The vocabulary is closed (``config.business_systems.NormalizeStep``) and checked
when the configuration loads. Every step is a vectorised string operation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Iterable

import pandas as pd

from profile_sync.config.business_systems import NormalizeStep


def key_text(value: object) -> str:
    """A join value as text: integral numbers without a decimal part, dates in ISO form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


STEPS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "strip": lambda s: s.str.strip(),
    "lower": lambda s: s.str.lower(),
    "domain_user": lambda s: s.str.replace(r"^.*\\", "", regex=True),
    "upn_local_part": lambda s: s.str.replace(r"@[^@]*$", "", regex=True),
    "claims": lambda s: s.str.replace(r"^.*\|", "", regex=True),
    "strip_leading_zeros": lambda s: s.str.replace(r"^0+(?=.)", "", regex=True),
}
"""Normalisation step → vectorised string operation (see ``NormalizeStep``)."""


def normalize_keys(values: pd.Series, steps: Iterable[NormalizeStep]) -> pd.Series:
    """``values`` as normalised join keys (object dtype; None where missing or empty after normalising)."""
    present = values.notna().to_numpy()
    text = values[present]
    if len(text) and pd.api.types.infer_dtype(text, skipna=True) != "string":
        text = text.map(key_text)
    text = text.astype(object)
    for name in steps:
        text = STEPS[name](text)
    out = pd.Series(None, index=values.index, dtype=object)
    out[present] = text.to_numpy(dtype=object)
    return out.where(out.notna() & (out != ""), None)
