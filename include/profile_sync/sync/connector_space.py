"""Connector spaces: directory entries in, one pandas frame out.

A directory connector space (CS) holds every object of one connection as last
seen, one row per object, keyed by its anchor:

========================  ==========================================================
column                    meaning
========================  ==========================================================
``anchor``                immutable id (canonical GUID string for objectGUID)
``dn`` / ``dn_norm``      DN as read / normalised for reference resolution
``object_type``           ``person`` | ``group`` (other entries are not kept)
``disabled``              account disabled (bit 0x2 of userAccountControl)
``in_scope``              in the selected containers, classes and filter, enabled
``scope_reason``          why an object is out of scope (None when in scope)
``position``              line / result index it came from
``row_hash``              hash of every imported value; equal hash ⇒ unchanged
``a.<attribute>``         one column per attribute the engine reads (lower case):
                          str, bytes (binary) or list of str (multi-valued)
========================  ==========================================================

Objects that cannot be imported (no anchor, duplicate anchor, undecodable
value, invalid DN, no objectClass, a record the reader says may be cut short)
go to a separate *held* frame with a reason; the rest of the import goes on.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from itertools import repeat
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from profile_sync._gc import paused_gc
from profile_sync._pandas import is_string_list, lists_to_objects, strings_to_objects
from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.dn import member_has_optional_uid, normalize_dns
from profile_sync.directory.entries import Entry

ATTR_PREFIX = "a."
CS_BASE_COLUMNS = [
    "anchor", "dn", "dn_norm", "object_type", "disabled", "in_scope", "scope_reason", "position", "row_hash",
]
HELD_COLUMNS = ["anchor", "dn", "position", "reason"]


def attr_column(attribute: str) -> str:
    """Name of the CS column holding ``attribute``."""
    return ATTR_PREFIX + attribute.lower()


@dataclass(frozen=True)
class ImportedSpace:
    """The result of building a connector space from entries."""

    objects: pd.DataFrame
    """The connector space (see module docstring)."""
    held: pd.DataFrame
    """Objects held back, with the reason (columns ``HELD_COLUMNS``)."""
    ignored: int = 0
    """Entries that are neither people nor groups (containers, computers, contacts)."""


def format_anchor(attribute: str, value: bytes) -> str:
    """The canonical text of an anchor value (objectGUID → GUID string)."""
    if attribute == "objectguid":
        if len(value) != 16:
            raise ValueError(f"objectGUID must be 16 bytes, got {len(value)}")
        return str(uuid.UUID(bytes_le=value))
    return value.decode("utf-8").strip().lower()


def build_connector_space(entries: Iterable[Entry], directory: ResolvedDirectory) -> ImportedSpace:
    """Decode ``entries`` into a connector space frame (scope is applied by ``scope.py``).

    One light pass over the entries gathers each object's raw values (object type, anchor, row hash);
    decoding is then done per column by pyarrow (UTF-8 validated in C), not per value in Python. The
    cyclic garbage collector is paused meanwhile, reading included when ``entries`` is a reader's
    generator (see ``profile_sync._gc``).
    """
    with paused_gc():
        return _build(entries, directory)


def _build(entries: Iterable[Entry], directory: ResolvedDirectory) -> ImportedSpace:
    attrs = directory.attributes
    anchor_attr = directory.anchor
    person_classes = directory.person_object_classes
    group_classes = directory.group_object_classes
    excluded_classes = directory.excluded_object_classes
    class_cache: dict[tuple[bytes, ...], str | None] = {}

    anchors: list[str | None] = []
    dns: list[str] = []
    positions: list[int] = []
    types: list[str] = []
    digests: list[bytes] = []
    rows: list[list[list[bytes] | tuple[()]]] = []  # raw values of the objects not decoded yet (a chunk at most)
    held: list[tuple[str | None, str, int, str]] = []
    ignored = 0
    blake = hashlib.blake2b
    empty: tuple[bytes, ...] = ()
    no_value = repeat(empty)
    value_sep, attr_sep = b"\x1f", b"\x1e"
    join_values = value_sep.join
    multi = directory.multi_valued_attributes | set(directory.member_attributes)
    columns = [_ColumnDecoder(a, a in directory.binary_attributes, a in multi) for a in attrs]
    decoded_rows = 0

    def decode_chunk() -> None:
        # Raw values are decoded (into compact Arrow arrays) and released a chunk at a time, so the raw and
        # the decoded values of the whole directory are never in memory together.
        nonlocal decoded_rows
        if rows:
            for column, raw in zip(columns, zip(*rows)):
                column.add(raw, decoded_rows)
            decoded_rows += len(rows)
            rows.clear()

    for entry in entries:
        values = entry.attributes
        raw_classes = tuple(values.get("objectclass", empty))
        if entry.problem is not None or not raw_classes:
            # Cut short (an LDIF record the file ends inside, or one without objectClass): never synchronized
            # as read; held with its anchor when it has one, so its profile keeps its last good state.
            reason = entry.problem or "no objectClass: the record is cut short, or objectClass is not readable"
            held.append((_anchor_or_none(anchor_attr, values), entry.dn, entry.position, reason))
            continue
        object_type = class_cache.get(raw_classes, "?")
        if object_type == "?":
            classes = {c.decode("utf-8", "replace").lower() for c in raw_classes}
            object_type = (None if classes & excluded_classes else "person" if classes & person_classes
                           else "group" if classes & group_classes else None)
            class_cache[raw_classes] = object_type
        if object_type is None:
            ignored += 1  # containers, computers, contacts...: not synchronized, not an error
            continue
        anchor = None  # anchor "dn": filled from dn_norm below
        if anchor_attr != "dn":
            raw = values.get(anchor_attr)
            if not raw:
                held.append((None, entry.dn, entry.position, f"missing anchor attribute {anchor_attr!r}"))
                continue
            try:
                anchor = format_anchor(anchor_attr, raw[0])
            except ValueError as exc:  # UnicodeDecodeError included
                held.append((None, entry.dn, entry.position, f"invalid anchor: {exc}"))
                continue
        row = list(map(values.get, attrs, no_value))
        anchors.append(anchor)
        dns.append(entry.dn)
        positions.append(entry.position)
        types.append(object_type)
        rows.append(row)
        # Row hash over the DN and every raw value read: equal hash ⇒ unchanged object.
        digests.append(blake(entry.dn.encode("utf-8") + attr_sep.join(map(join_values, row)) + attr_sep,
                             digest_size=8).digest())
        if len(rows) >= DECODE_CHUNK:
            decode_chunk()
    decode_chunk()

    # An object with an undecodable value is held (the first such attribute, in attribute order, named).
    decoded: dict[str, object] = {}
    bad: dict[int, str] = {}
    for a, column in zip(attrs, columns):
        decoded[attr_column(a)] = column.result()
        for i, reason in column.failures.items():
            bad.setdefault(i, f"undecodable value (not UTF-8) in {a!r}: {reason}")

    n = len(anchors)
    frame = pd.DataFrame({
        "anchor": pd.Series(anchors, dtype="object"),
        "dn": pd.Series(dns, dtype="object"),
        "position": pd.Series(positions, dtype="int64"),
        "object_type": pd.Series(types, dtype="object"),
        **{k: pd.Series(v, dtype="object") for k, v in decoded.items()},
        "row_hash": pd.Series(np.frombuffer(b"".join(digests), dtype="<u8", count=n).astype("uint64"))
                    if n else pd.Series([], dtype="uint64"),
    })
    if bad:
        undecodable = np.zeros(n, dtype=bool)
        undecodable[list(bad)] = True
        for i in sorted(bad):
            held.append((anchors[i], dns[i], positions[i], bad[i]))
        frame = frame.loc[~undecodable].reset_index(drop=True)
    frame["dn_norm"] = pd.Series(normalize_dns(frame["dn"].tolist()), index=frame.index, dtype="object")
    bad_dn = frame["dn_norm"].isna()
    for row in frame.loc[bad_dn, ["anchor", "dn", "position"]].itertuples(index=False):
        held.append((row.anchor, row.dn, row.position, "invalid DN"))
    frame = frame.loc[~bad_dn]
    if anchor_attr == "dn":
        frame["anchor"] = frame["dn_norm"]

    dup = frame["anchor"].duplicated(keep=False)
    for row in frame.loc[dup, ["anchor", "dn", "position"]].itertuples(index=False):
        held.append((row.anchor, row.dn, row.position, f"duplicate anchor {row.anchor!r}"))
    frame = frame.loc[~dup].reset_index(drop=True)

    frame["disabled"] = _disabled(frame, directory)
    frame["in_scope"] = True
    frame["scope_reason"] = pd.Series(None, index=frame.index, dtype="object")
    ordered = CS_BASE_COLUMNS + [attr_column(a) for a in attrs]
    held_frame = pd.DataFrame(held, columns=HELD_COLUMNS).astype({"position": "int64"})
    return ImportedSpace(objects=frame[ordered], held=held_frame, ignored=ignored)


DECODE_CHUNK = 10_000
"""Objects decoded at a time (see ``decode_chunk``)."""
_BINARY_LISTS = pa.list_(pa.binary())
_STRING_LISTS = pa.list_(pa.string())


class _ColumnDecoder:
    """One attribute's values, decoded a chunk at a time: text into Arrow arrays (UTF-8 checked in C),
    binary values kept as they are. ``result()``: an object array of str / list of str (``multi``) /
    bytes / list of bytes (``binary``), None where there is no value; ``failures``: row → why its value
    is not UTF-8 (the row's value is None then)."""

    def __init__(self, attribute: str, binary: bool, multi: bool) -> None:
        self.attribute = attribute
        self.binary = binary
        self.multi = multi
        self.failures: dict[int, str] = {}
        self._chunks: list[pa.Array] = []
        self._objects: list[object] = []

    def add(self, raw: Sequence[Sequence[bytes]], offset: int) -> None:
        """Decode the next rows (``raw``: a sequence of values per object; ``offset``: the first row's index)."""
        if self.binary:
            self._objects.extend((list(v) if self.multi else v[0]) if v else None for v in raw)
            return
        if self.multi:
            source, target = pa.array([v or None for v in raw], type=_BINARY_LISTS), _STRING_LISTS
        else:
            source, target = pa.array([v[0] if v else None for v in raw], type=pa.binary()), pa.string()
        try:
            self._chunks.append(source.cast(target))
            return
        except pa.ArrowInvalid:  # not UTF-8 somewhere: find the objects (rare), decode the others
            pass
        ok = np.ones(len(raw), dtype=bool)
        for i, values in enumerate(raw):
            for v in (values if self.multi else values[:1]):
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.failures[offset + i] = exc.reason
                    ok[i] = False
                    break
        self._chunks.append(pc.if_else(pa.array(ok), source, pa.nulls(len(source), source.type)).cast(target))

    def result(self) -> np.ndarray:
        if self.binary:
            out = np.empty(len(self._objects), dtype=object)
            out[:] = self._objects
            return out
        values = pa.chunked_array(self._chunks, type=_STRING_LISTS if self.multi else pa.string())
        return _to_objects(values)


def _to_objects(array: pa.ChunkedArray) -> np.ndarray:
    """An Arrow array as a numpy object array (lists become numpy arrays of str; nulls None). Equal strings
    become one Python object where values repeat (directories repeat titles, departments, object classes...;
    ``strings_to_objects``)."""
    if array.num_chunks == 0:
        return np.empty(0, dtype=object)
    if pa.types.is_string(array.type):
        return strings_to_objects(array)
    if is_string_list(array.type):
        return lists_to_objects(array)
    return array.to_pandas(deduplicate_objects=True).to_numpy(dtype=object, na_value=None)


def _anchor_or_none(anchor_attr: str, values: dict[str, list[bytes]]) -> str | None:
    """The anchor of a held entry when it can be read (to keep its last good state), else None."""
    raw = values.get(anchor_attr) if anchor_attr != "dn" else None
    try:
        return format_anchor(anchor_attr, raw[0]) if raw else None
    except ValueError:
        return None


def _disabled(frame: pd.DataFrame, directory: ResolvedDirectory) -> pd.Series:
    """AD accounts are disabled when bit 0x2 of userAccountControl is set (a bit test, never ``== 2``)."""
    if directory.disabled_attribute is None:
        return pd.Series(False, index=frame.index, dtype=bool)
    uac = pd.to_numeric(frame[attr_column(directory.disabled_attribute)], errors="coerce").fillna(0).astype("int64")
    return (uac & 0x2) != 0


class KnownDns:
    """DNs normalised by looking them up among the DNs of a connector space's objects first.

    A reference (``manager``, a ``member`` value) is nearly always spelled exactly as the directory spells the
    DN of the object it names, and that object's ``dn_norm`` is the normal form of that very string (the
    connector-space build made it with ``normalize_dns``): one hash lookup instead of parsing the DN. Values
    spelled any other way (other case or spacing, a DN outside the space, a ``uniqueMember`` value with a
    ``#`` that may carry a UID) are normalised as ``normalize_dns`` normalises them, so the result is the same
    list ``normalize_dns`` returns. In a fresh process (each Airflow task) the DN cache is cold: 114,000
    member values took 0.35 s to normalise and take 0.07 s to look up.
    """

    def __init__(self, *spaces: pd.DataFrame | None) -> None:
        frames = [s[["dn", "dn_norm"]] for s in spaces if s is not None and len(s)]
        known = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"dn": [], "dn_norm": []})
        known = known.loc[known["dn"].notna()].drop_duplicates("dn")
        self._index = pd.Index(known["dn"].to_numpy(dtype=object), dtype=object)
        self._norms = known["dn_norm"].to_numpy(dtype=object)

    def normalize(self, values: Iterable[str | None] | np.ndarray | pd.Series, *,
                  optional_uid: bool = False) -> list[str | None]:
        """``normalize_dns(values, optional_uid=optional_uid)``, mostly by lookup."""
        array = _objects(values)
        if not len(array) or not len(self._index):
            return normalize_dns(array.tolist(), optional_uid=optional_uid)
        position = self._index.get_indexer(array)
        out = self._norms.take(np.maximum(position, 0))
        unknown = position < 0
        if optional_uid:  # a '#' may start a UID (``…#'0101'B``), which the normal form drops: parse those
            unknown |= pd.Series(array, dtype=object).str.contains("#", regex=False).fillna(True).to_numpy(bool)
        if unknown.any():
            out[unknown] = _objects(normalize_dns(array[unknown].tolist(), optional_uid=optional_uid))
        return out.tolist()

    def normalize_members(self, values: Iterable[str | None] | np.ndarray | pd.Series,
                          attribute: str) -> list[str | None]:
        """``normalize_member_dns(values, attribute)``, mostly by lookup."""
        return self.normalize(values, optional_uid=member_has_optional_uid(attribute))


def _objects(values: Iterable[object] | np.ndarray | pd.Series) -> np.ndarray:
    """``values`` as a one-dimensional numpy ``object`` array (each value one element, whatever it is)."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        return values
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
