"""The state store: frames as Parquet files, switched by a small manifest.

Layout under the store's root folder::

    manifest.json                 the committed state: frame key → file, values (watermarks)
    runs/<run>/manifest.json      a run's working state, committed at the end of each step
    objects/<key>.<uuid>.parquet  immutable frame files
    history/<run>.json            run history (see history.py)
    lease.json                    the lease (see lease.py)

A run starts from a copy of the committed manifest. Each step writes new files
and atomically replaces the run's working manifest, so a step that dies leaves
the last committed step intact and a retry converges. Only a run that finishes
promotes its manifest to ``manifest.json``: a failed run leaves the committed
state exactly as it was.
"""

from __future__ import annotations

import copy
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from profile_sync.state.errors import StateConflictError, StateError
from profile_sync.state.files import read_json, slug, write_json

EMPTY_MANIFEST: dict[str, Any] = {"version": 0, "run_id": None, "committed_at": None, "frames": {}, "values": {}}


def root_from_url(url: str, project_root: Path) -> Path:
    """The folder of a ``file://`` state-store URL (relative paths against ``project_root``)."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise StateError(f"state store {url!r}: only file:// URLs are supported")
    raw = unquote(parsed.netloc + parsed.path)
    path = Path(raw)
    return path if path.is_absolute() else (project_root / path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with None for missing values, whatever pandas' string default is."""
    out = frame
    for col in frame.columns:
        if pd.api.types.is_string_dtype(frame[col].dtype) and frame[col].dtype != object:
            if out is frame:
                out = frame.copy()
            out[col] = pd.Series(frame[col].to_numpy(dtype=object, na_value=None), index=frame.index, dtype=object)
    return out


class StateStore:
    """A state store in a local (or shared, POSIX) folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"

    @classmethod
    def from_url(cls, url: str, project_root: Path) -> "StateStore":
        return cls(root_from_url(url, project_root))

    # -- committed state ------------------------------------------------------
    def committed_manifest(self) -> dict[str, Any]:
        """The committed manifest (an empty one before the first successful run)."""
        return read_json(self.root / "manifest.json") or copy.deepcopy(EMPTY_MANIFEST)

    def read_committed_frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A frame of the committed state (only ``columns`` when given), or None."""
        return self._read(self.committed_manifest(), key, columns)

    def _read(self, manifest: dict[str, Any], key: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        name = manifest["frames"].get(key)
        if name is None:
            return None
        path = self.objects / name
        if not path.exists():
            raise StateError(f"state store {self.root}: frame {key!r} points to missing file {name}")
        if columns is not None:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return _clean_strings(pd.read_parquet(path, columns=columns))

    # -- runs -----------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / slug(run_id)

    def open_run(self, run_id: str) -> "RunState":
        """The working state of ``run_id``: resumed if the run already committed a step."""
        path = self.run_dir(run_id) / "manifest.json"
        manifest = read_json(path)
        if manifest is None:
            committed = self.committed_manifest()
            manifest = copy.deepcopy(committed)
            manifest["base_version"] = committed["version"]
            manifest["run_id"] = run_id
            write_json(path, manifest)
        return RunState(self, run_id, manifest)

    def promote(self, run_id: str) -> int:
        """Make ``run_id``'s working state the committed state; returns the new version."""
        path = self.run_dir(run_id) / "manifest.json"
        manifest = read_json(path)
        if manifest is None:
            raise StateError(f"run {run_id!r} has no working state to promote")
        committed = self.committed_manifest()
        if committed["version"] != manifest.get("base_version"):
            raise StateConflictError(
                f"run {run_id!r} started from state version {manifest.get('base_version')} but version "
                f"{committed['version']} was committed since (by run {committed.get('run_id')!r})"
            )
        manifest = dict(manifest)
        manifest["version"] = committed["version"] + 1
        manifest["committed_at"] = _now()
        manifest.pop("base_version", None)
        write_json(self.root / "manifest.json", manifest)
        self.discard_run(run_id)
        return manifest["version"]

    def discard_run(self, run_id: str) -> None:
        """Forget ``run_id``'s working state and delete files no manifest references."""
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        self.collect_garbage()

    def collect_garbage(self) -> int:
        """Delete frame files referenced by neither the committed nor any working manifest."""
        referenced = set(self.committed_manifest()["frames"].values())
        runs = self.root / "runs"
        if runs.exists():
            for m in runs.glob("*/manifest.json"):
                referenced |= set((read_json(m) or {}).get("frames", {}).values())
        removed = 0
        if self.objects.exists():
            for f in self.objects.glob("*.parquet"):
                if f.name not in referenced:
                    f.unlink(missing_ok=True)
                    removed += 1
        return removed


class RunState:
    """One run's working state: read committed frames, write new ones, commit per step."""

    def __init__(self, store: StateStore, run_id: str, manifest: dict[str, Any]) -> None:
        self.store = store
        self.run_id = run_id
        self.manifest = manifest

    def read_frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """The frame as this run last wrote it, else as committed, else None.

        ``columns``: read only these (those the frame has), for steps that need a few of many.
        """
        return self.store._read(self.manifest, key, columns)

    def write_frame(self, key: str, frame: pd.DataFrame) -> None:
        """Write ``frame`` to a new file; visible to other steps after ``commit_step``."""
        self.store.objects.mkdir(parents=True, exist_ok=True)
        name = f"{slug(key)}.{uuid.uuid4().hex}.parquet"
        frame.reset_index(drop=True).to_parquet(self.store.objects / name, index=False)
        self.manifest["frames"][key] = name

    def get_value(self, key: str, default: Any = None) -> Any:
        """A small JSON value (a watermark, a fingerprint)."""
        return copy.deepcopy(self.manifest["values"].get(key, default))

    def set_value(self, key: str, value: Any) -> None:
        self.manifest["values"][key] = copy.deepcopy(value)

    def commit_step(self) -> None:
        """Atomically switch this run's working manifest to what the step wrote."""
        write_json(self.store.run_dir(self.run_id) / "manifest.json", self.manifest)
