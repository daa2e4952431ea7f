"""The state store: frames as immutable Parquet objects, switched by a manifest in the coordination database.

Two halves (see coordination.py):

* **Objects** — ``objects/<key>.<uuid>.parquet`` in a folder or an object store
  (location.py). Written once under a new name, never overwritten or renamed.
* **Manifests** — which object is the current frame of each key, plus small JSON
  values (watermarks, fingerprints, gate reports). The committed manifest is a row
  of ``profile_sync_state``; a run's working state is one *part* per step (and
  connection) in ``profile_sync_run_parts``.

The commit protocol:

1. A step writes its frames as new objects, then commits its part (one row, replaced
   atomically, fenced by the lease). Its view of the state is the committed manifest
   overlaid with the parts of the run's earlier steps; a part never includes another
   task's keys, so parallel mapped tasks (one per directory) cannot lose each other's work.
2. ``promote`` folds the parts over the committed manifest and switches it in one
   transaction: the lease is still this run's, and ``version`` is still the one the run
   started from (``UPDATE … WHERE version = :base``). The parts are deleted in the same
   transaction. Nothing before the switch is visible to anyone else; after it, all of it is.
3. Objects referenced by neither the committed manifest nor any remaining part are
   garbage, deleted by the lease holder (at promotion, at a take-over, at a failed run's
   release).

A step that dies before committing its part leaves only unreferenced objects; a run that
dies before the switch leaves the committed state exactly as it was.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from profile_sync.state.coordination import EMPTY_MANIFEST, Coordination
from profile_sync.state import patches
from profile_sync.state.errors import StateError
from profile_sync.state.files import slug
from profile_sync.state.location import Location, arrow_to_frame, matching
from profile_sync.state.patches import Patch

if TYPE_CHECKING:
    from sqlalchemy import Connection

OBJECTS = "objects"
CHECK_PATCHES = "PROFILE_SYNC_CHECK_PATCHES"
"""Environment variable: when "1", every patch written is read back and compared with its frame."""


def object_names(entry: str | list[str]) -> list[str]:
    """The objects of a manifest's frame entry: one name, or a chain (a base object, then its patches)."""
    return [entry] if isinstance(entry, str) else list(entry)


def _clean_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with None for missing values, whatever pandas' string default is."""
    out = frame
    for col in frame.columns:
        if pd.api.types.is_string_dtype(frame[col].dtype) and frame[col].dtype != object:
            if out is frame:
                out = frame.copy()
            out[col] = pd.Series(frame[col].to_numpy(dtype=object, na_value=None), index=frame.index, dtype=object)
    return out


def overlay(base: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """``base`` with each part's frames and values applied in order."""
    out = copy.deepcopy(base)
    for p in parts:
        out["frames"].update(p.get("frames", {}))
        out["values"].update(copy.deepcopy(p.get("values", {})))
    return out


class StateStore:
    """The state store of one configuration: objects in ``location``, manifests in ``coordination``."""

    def __init__(self, location: Location, coordination: Coordination) -> None:
        self.location = location
        self.coordination = coordination
        self._committed: dict[str, Any] | None = None

    @property
    def display(self) -> str:
        """Where the objects are (for reports; never holds a secret)."""
        return self.location.display

    # -- committed state ------------------------------------------------------------
    def committed_manifest(self) -> dict[str, Any]:
        """The committed manifest (an empty one, version 0, before the first successful run)."""
        if self._committed is None:
            self._committed = self.coordination.committed()
        return copy.deepcopy(self._committed)

    def refresh(self) -> None:
        """Forget the cached committed manifest (another process may have committed)."""
        self._committed = None

    def read_committed_frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A frame of the committed state (only ``columns`` when given), or None."""
        return self.read(self.committed_manifest(), key, columns)

    def read(self, manifest: dict[str, Any], key: str, columns: list[str] | None = None,
             where: tuple[str, Collection[Any]] | None = None) -> pd.DataFrame | None:
        entry = manifest["frames"].get(key)
        if entry is None:
            return None
        if isinstance(entry, str):
            return _clean_strings(self.location.read_frame(f"{OBJECTS}/{entry}", columns, where))
        t0 = time.perf_counter()
        rows, order, key_column, _ = self._read_chain(entry, columns)
        if where is not None and where[0] in rows.column_names:  # the frame's rows, then those of them wanted
            order = order[matching(rows.select([where[0]]).take(order), where)]
        elif where is not None:
            order = order[:0]
        if columns is not None and key_column not in columns:
            rows = rows.drop_columns([key_column])
        frame = arrow_to_frame(rows, order)
        self.location.io["read_s"] += time.perf_counter() - t0
        return _clean_strings(frame)

    def _read_chain(self, chain: list[str], columns: list[str] | None) -> tuple[Any, Any, str, int]:
        """A chain's rows (``columns`` and the key column: ``patches.chain``), the positions of the frame's
        rows in them, the key column's name and how many of the rows are the base object's (the rest are its
        patches')."""
        base, *rest = chain
        changes = [self.location.read_table(f"{OBJECTS}/{name}") for name in rest]
        key = patches.patch_key(changes[0])
        table = self.location.read_table(f"{OBJECTS}/{base}", None if columns is None else [*columns, key])
        rows, order = patches.chain(table, [c.select([*table.column_names, patches.PATCH_OP]) for c in changes], key)
        return rows, order, key, table.num_rows

    def write_object(self, key: str, frame: pd.DataFrame) -> str:
        """Write ``frame`` as a new object; its name (to be referenced by a manifest)."""
        name = f"{slug(key)}.{uuid.uuid4().hex}.parquet"
        self.location.write_frame(f"{OBJECTS}/{name}", frame)
        return name

    def write_patch(self, key: str, frame: pd.DataFrame, patch: Patch, entry: str | list[str] | None
                    ) -> list[str] | None:
        """Write ``frame`` as a patch of the frame ``entry`` names (a manifest's entry for ``key``; see
        ``patches``); the chain that now names ``frame``, or None when it is better written whole (no previous
        frame, other columns, a chain too long or a patch too large, a claim of ``patch`` that does not hold)."""
        if entry is None:
            return None
        chain = object_names(entry)
        if len(chain) > patches.MAX_CHAIN:
            return None
        schema = self.location.schema(f"{OBJECTS}/{chain[0]}")
        if list(schema.names) != [str(c) for c in frame.columns] or patch.key not in schema.names:
            return None
        if len(chain) > 1:
            rows, order, _, base_rows = self._read_chain(chain, [patch.key])
            keys, earlier = rows.column(patch.key).take(order), rows.num_rows - base_rows
        else:
            keys, earlier = self.location.read_table(f"{OBJECTS}/{chain[0]}", [patch.key]).column(patch.key), 0
        plan = patches.plan(keys, frame, patch)
        if plan is None or earlier + plan.rows > patches.MAX_SHARE * max(len(frame), 1):
            return None
        table = patches.patch_table(frame, plan, patch.key, schema)
        if table is None:
            return None
        name = f"{slug(key)}.{uuid.uuid4().hex}.patch.parquet"
        self.location.write_table(f"{OBJECTS}/{name}", table)
        chain = [*chain, name]
        if os.environ.get(CHECK_PATCHES) == "1":
            self._check_patch(key, chain, frame)
        return chain

    def _check_patch(self, key: str, chain: list[str], frame: pd.DataFrame) -> None:
        """Read ``chain`` back and compare it with ``frame`` as a whole write would read (tests: CHECK_PATCHES)."""
        import pyarrow as pa

        got = self.read({"frames": {key: chain}}, key)
        schema = self.location.schema(f"{OBJECTS}/{chain[0]}")
        want = _clean_strings(arrow_to_frame(
            pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False).cast(schema)))
        try:
            pd.testing.assert_frame_equal(got, want)
        except AssertionError as exc:
            raise StateError(f"state store: the patch of {key!r} does not reproduce the frame written: {exc}") from exc

    # -- runs -------------------------------------------------------------------------
    def open_run(self, run_key: str, part: str = "run", owner: str | None = None) -> "RunState":
        """The working state of ``run_key`` as seen by the step that owns ``part``."""
        parts = self.coordination.parts(run_key)
        others = [p for p in parts if p["part"] != part]
        base = next((p["base_version"] for p in parts if "base_version" in p), None)
        seq = max((p["seq"] for p in others), default=0) + 1
        return RunState(self, run_key, part, overlay(self.committed_manifest(), others), seq, base, owner)

    def working_manifest(self, run_key: str) -> dict[str, Any]:
        """The committed manifest with every part of ``run_key`` applied (what promotion commits)."""
        return overlay(self.committed_manifest(), self.coordination.parts(run_key))

    def promote(self, run_key: str, owner: str,
                in_transaction: Callable[["Connection", int], None] | None = None) -> int:
        """Commit ``run_key``'s working state: one conditional switch (see the module docstring).

        ``in_transaction(conn, version)`` runs inside the switch's transaction (the run history's
        success record), so the switch and its record commit together.
        """
        parts = self.coordination.parts(run_key)
        base = next((p["base_version"] for p in parts if "base_version" in p), None)
        self.refresh()
        committed = self.committed_manifest()
        manifest = overlay(committed, parts)
        c = self.coordination
        with c.transaction() as conn:
            c.fence(conn, owner)
            version = c.switch(conn, committed["version"] if base is None else base, manifest, run_key)
            c.delete_parts(conn, run_key)
            if in_transaction is not None:
                in_transaction(conn, version)
        self.refresh()
        return version

    def discard_run(self, run_key: str) -> None:
        """Forget ``run_key``'s working state (its objects become garbage)."""
        with self.coordination.transaction() as conn:
            self.coordination.delete_parts(conn, run_key)

    def collect_garbage(self, grace_seconds: float = 0.0) -> int:
        """Delete objects referenced by neither the committed manifest nor any run's part.

        Only the lease holder calls this, with none of its steps in flight: every object
        written since by someone else belongs to a run that lost the lease and can never
        commit it. ``grace_seconds``: spare objects younger than this.
        """
        self.refresh()
        referenced = {n for e in self.committed_manifest()["frames"].values() for n in object_names(e)}
        for run_key in self.coordination.live_runs():
            for p in self.coordination.parts(run_key):
                referenced |= {n for e in p.get("frames", {}).values() for n in object_names(e)}
        now = time.time()
        garbage = [o.name for o in self.location.list(OBJECTS)
                   if o.name not in referenced and (o.modified is None or now - o.modified >= grace_seconds)]
        self.location.delete(OBJECTS, garbage)
        return len(garbage)


class RunState:
    """One step's view of a run's working state: read frames, write new ones, commit the step's part."""

    def __init__(self, store: StateStore, run_key: str, part: str, manifest: dict[str, Any], seq: int,
                 base_version: int | None, owner: str | None) -> None:
        self.store = store
        self.run_key = run_key
        self.part = part
        self.manifest = manifest
        self.seq = seq
        self.base_version = base_version
        self.owner = owner
        self._frames: dict[str, str | list[str]] = {}
        self._values: dict[str, Any] = {}
        self._own_base: int | None = None

    @property
    def run_id(self) -> str:  # older name, kept for callers that print it
        return self.run_key

    def read_frame(self, key: str, columns: list[str] | None = None,
                   where: tuple[str, Collection[Any]] | None = None) -> pd.DataFrame | None:
        """The frame as this run last wrote it, else as committed, else None.

        ``columns``: read only these (those the frame has), for steps that need a few of many; ``where``
        (column, values): only the rows whose column holds one of the values, for steps that need a few rows.
        """
        return self.store.read(self.manifest, key, columns, where)

    def write_frame(self, key: str, frame: pd.DataFrame, patch: Patch | None = None) -> None:
        """Write ``frame`` to a new object; visible to other steps after ``commit_step``.

        ``patch``: how ``frame`` differs from the frame of ``key`` this step sees (what :meth:`read_frame`
        returns; ``patches.Patch``): only the changed rows are written, as a patch of it, where that holds and
        pays (else the frame is written whole).
        """
        previous = self.manifest["frames"].get(key)
        entry = self.store.write_patch(key, frame, patch, previous) if patch is not None else None
        if entry is None:
            entry = self.store.write_object(key, frame)
        self.manifest["frames"][key] = entry
        self._frames[key] = entry

    def get_value(self, key: str, default: Any = None) -> Any:
        """A small JSON value (a watermark, a fingerprint)."""
        return copy.deepcopy(self.manifest["values"].get(key, default))

    def set_value(self, key: str, value: Any) -> None:
        self.manifest["values"][key] = copy.deepcopy(value)
        self._values[key] = copy.deepcopy(value)

    def commit_step(self, base_version: int | None = None) -> None:
        """Atomically replace this step's part with what it wrote (fenced by the lease)."""
        body: dict[str, Any] = {"frames": dict(self._frames), "values": copy.deepcopy(self._values)}
        if base_version is not None:
            self.base_version = self._own_base = base_version
        if self._own_base is not None:
            body["base_version"] = self._own_base
        self.store.coordination.write_part(self.run_key, self.part, self.seq, body, self.owner)


__all__ = ["EMPTY_MANIFEST", "Patch", "RunState", "StateStore", "object_names", "overlay"]
