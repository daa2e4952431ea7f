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
from typing import Iterable

import pandas as pd

from profile_sync.config.presets import ResolvedDirectory
from profile_sync.directory.dn import normalize_dns
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
    """Decode ``entries`` into a connector space frame (scope is applied by ``scope.py``)."""
    attrs = directory.attributes
    multi = directory.multi_valued_attributes | set(directory.member_attributes)
    # Per attribute: (name, is binary, is multi-valued), resolved once.
    kinds = [(a, a in directory.binary_attributes, a in multi) for a in attrs]
    anchor_attr = directory.anchor
    person_classes = directory.person_object_classes
    group_classes = directory.group_object_classes
    excluded_classes = directory.excluded_object_classes
    class_cache: dict[tuple[bytes, ...], str | None] = {}

    anchors: list[str | None] = []
    dns: list[str] = []
    positions: list[int] = []
    types: list[str] = []
    hashes: list[int] = []
    columns: list[list[object]] = [[] for _ in attrs]
    held: list[tuple[str | None, str, int, str]] = []
    ignored = 0
    blake = hashlib.blake2b
    empty: tuple[bytes, ...] = ()

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
        # The anchor is known from here on: a held object keeps its last good state (sync/quarantine.py).
        try:
            decoded = []
            for a, is_binary, is_multi in kinds:
                vals = values.get(a)
                if not vals:
                    decoded.append(None)
                elif is_binary:
                    decoded.append(list(vals) if is_multi else vals[0])
                elif is_multi:
                    decoded.append([v.decode("utf-8") for v in vals])
                else:
                    decoded.append(vals[0].decode("utf-8"))
        except UnicodeDecodeError as exc:
            held.append((anchor, entry.dn, entry.position, f"undecodable value (not UTF-8) in {a!r}: {exc.reason}"))
            continue
        anchors.append(anchor)
        dns.append(entry.dn)
        positions.append(entry.position)
        types.append(object_type)
        for column, value in zip(columns, decoded):
            column.append(value)
        # Row hash over the DN and every raw value read: equal hash ⇒ unchanged object.
        digest = blake(entry.dn.encode("utf-8"), digest_size=8)
        for a, _, _ in kinds:
            digest.update(b"\x1f".join(values.get(a, empty)))
            digest.update(b"\x1e")
        hashes.append(int.from_bytes(digest.digest(), "little"))

    rows: dict[str, object] = {"anchor": anchors, "dn": dns, "position": positions, "object_type": types}
    rows.update({attr_column(a): column for a, column in zip(attrs, columns)})
    frame = pd.DataFrame({k: pd.Series(v, dtype="object") for k, v in rows.items()})
    frame["position"] = frame["position"].astype("int64")
    frame["row_hash"] = pd.Series(hashes, dtype="uint64")
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
