"""Import attribute flow: connector-space attributes → metaverse properties.

For each connection the mapping (preset + overrides) is applied column by
column with the transforms of ``transforms.py``. Reference properties
(``transform: reference``) carry the referenced DN, normalised, in a column
``ref.<property>``; ``references.py`` resolves them once every object is known.
"""

from __future__ import annotations

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.dn import normalize_dns
from profile_sync.sync.connector_space import KnownDns, attr_column
from profile_sync.sync.transforms import TRANSFORMS

REF_PREFIX = "ref."


def import_properties(directory: ResolvedDirectory) -> list[str]:
    """Properties this connection feeds (import or both directions), in mapping order."""
    return [p for p, m in directory.mappings.items() if m.direction in ("import", "both")]


def reference_properties(directory: ResolvedDirectory) -> list[str]:
    return [p for p, m in directory.mappings.items()
            if m.transform == "reference" and m.direction in ("import", "both")]


def flow_in(space: pd.DataFrame, directory: ResolvedDirectory, account_name_format: str,
            references_only: bool = False, known: KnownDns | None = None) -> pd.DataFrame:
    """Property values for every row of ``space`` (same index).

    Non-reference properties get their value; reference properties get
    ``ref.<property>`` = the normalised DN they point at (or None).
    ``references_only``: only the ``ref.<property>`` columns (to count what does not resolve).
    ``known``: the connection's DNs (``KnownDns``), to normalise references by lookup.
    """
    out = pd.DataFrame(index=space.index)
    for prop, mapping in directory.mappings.items():
        if mapping.direction not in ("import", "both"):
            continue
        if references_only and mapping.transform != "reference":
            continue
        values = space[attr_column(mapping.source)]
        multi = mapping.source.lower() in directory.multi_valued_attributes
        result = TRANSFORMS[mapping.transform](values, account_name_format=account_name_format, multi=multi)
        if mapping.transform == "reference":
            out[REF_PREFIX + prop] = _normalized(result, known)
        else:
            out[prop] = result
    return out


def _normalized(dns: pd.Series, known: KnownDns | None = None) -> pd.Series:
    """Each DN normalised (None where missing or invalid); each distinct DN once (many share a manager)."""
    present = dns.dropna()
    distinct = pd.unique(present.to_numpy(dtype=object))
    lookup = dict(zip(distinct, known.normalize(distinct) if known is not None else normalize_dns(distinct.tolist())))
    return pd.Series([lookup[v] for v in present], index=present.index, dtype=object).reindex(dns.index).astype(
        object).where(dns.notna(), None)
