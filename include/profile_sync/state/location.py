"""Where the state store's Parquet objects live: a folder or an object store, through fsspec.

``file://path`` (relative paths against the project root) is a local or shared folder;
``s3://bucket/prefix``, ``gs://…``, ``abfs://…`` are object stores, reached through the
fsspec filesystem the caller provides (the Airflow layer builds it from a Connection
with ``ObjectStoragePath``; without Airflow, fsspec's own defaults and environment
credentials). The store never renames: every object is written once under a new
name, and read whole.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote, urlparse

from profile_sync.config.settings import STATE_STORE_SCHEMES
from profile_sync.state.errors import StateError, StateUnavailableError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from fsspec import AbstractFileSystem

SCHEMES = STATE_STORE_SCHEMES

FilesystemFactory = Callable[[str, "str | None"], "AbstractFileSystem"]
"""(url, conn_id) → the fsspec filesystem that reaches ``url``."""


def default_filesystem(url: str, conn_id: str | None) -> "AbstractFileSystem":
    """fsspec's filesystem for ``url`` with its default credentials (environment, instance roles)."""
    if conn_id:
        raise StateError(
            f"state store {url!r}: state_store.conn_id {conn_id!r} is an Airflow Connection; run through Airflow "
            "(or give the credentials in the environment, e.g. AWS_ACCESS_KEY_ID, and leave conn_id out)")
    import fsspec

    return fsspec.filesystem(urlparse(url).scheme)


def split_url(url: str, project_root: Path) -> tuple[str, str]:
    """(scheme, root path as the filesystem spells it) of a state-store URL."""
    parsed = urlparse(url)
    scheme = parsed.scheme
    if scheme not in SCHEMES:
        raise StateError(f"state store {url!r}: unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    if scheme == "file":
        raw = Path(unquote(parsed.netloc + parsed.path))
        return scheme, str(raw if raw.is_absolute() else (project_root / raw))
    if not parsed.netloc:
        raise StateError(f"state store {url!r}: no bucket or container (expected {scheme}://bucket/prefix)")
    return scheme, f"{parsed.netloc}{parsed.path}".rstrip("/")


_FILESYSTEMS: dict[tuple, "AbstractFileSystem"] = {}
"""One filesystem (and its connection pool) per URL, Connection and factory, per process."""


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    modified: float | None


class Location:
    """A folder of immutable objects on one filesystem."""

    def __init__(self, fs: "AbstractFileSystem", root: str, display: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.display = display
        self.local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self.io = {"reads": 0, "writes": 0, "read_s": 0.0, "write_s": 0.0, "bytes_written": 0}
        """What this location did (for the step's summary: the cost of state I/O)."""

    @classmethod
    def from_url(cls, url: str, project_root: Path, conn_id: str | None = None,
                 factory: FilesystemFactory | None = None) -> "Location":
        scheme, root = split_url(url, project_root)
        if scheme == "file":
            from fsspec.implementations.local import LocalFileSystem

            return cls(LocalFileSystem(), root, f"file://{root}")
        key = (url, conn_id, factory)
        fs = _FILESYSTEMS.get(key)
        if fs is None:
            fs = _FILESYSTEMS[key] = (factory or default_filesystem)(url, conn_id)
        return cls(fs, root, url)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def write_frame(self, rel: str, frame: "pd.DataFrame") -> None:
        """Write ``frame`` as Parquet to the new object ``rel`` (never overwritten; a failed write leaves nothing)."""
        import pyarrow as pa

        t0 = time.perf_counter()
        self.write_table(rel, pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), t0)

    def write_table(self, rel: str, table: "pa.Table", started: float | None = None) -> None:
        """Write an Arrow ``table`` as Parquet to the new object ``rel`` (as :meth:`write_frame`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        t0 = time.perf_counter() if started is None else started
        target = self.path(rel)
        try:
            if self.local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, target)
                size = Path(target).stat().st_size
            else:
                sink = pa.BufferOutputStream()
                pq.write_table(table, sink)
                data = sink.getvalue().to_pybytes()
                self.fs.pipe_file(target, data)
                size = len(data)
        except BaseException as exc:
            self._remove_quietly(target)
            if isinstance(exc, OSError):
                raise StateUnavailableError(
                    f"state store {self.display}: could not write {rel} ({exc}); nothing was committed") from exc
            raise
        self.io["writes"] += 1
        self.io["bytes_written"] += size
        self.io["write_s"] += time.perf_counter() - t0

    def read_frame(self, rel: str, columns: list[str] | None = None,
                   where: "tuple[str, Collection[Any]] | None" = None) -> "pd.DataFrame":
        """The frame of object ``rel``: only ``columns`` (those it has) when given; only the rows whose column
        ``where[0]`` holds one of the values ``where[1]`` when given (filtered in Arrow, before any Python
        object is made: a few rows of a large frame cost the read of its columns, not their conversion)."""
        t0 = time.perf_counter()
        frame = arrow_to_frame(select_rows(self.read_table(rel, columns), where))
        self.io["read_s"] += time.perf_counter() - t0
        return frame

    def read_table(self, rel: str, columns: list[str] | None = None) -> "pa.Table":
        """Object ``rel`` as an Arrow table (only ``columns``, those it has, when given; schema metadata kept).
        Counted as a read; its time is counted by the caller that converts it (:meth:`read_frame`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = self.path(rel)
        try:
            # One ParquetFile: the footer is parsed once (schema and columns), without pyarrow.dataset's layer.
            file = pq.ParquetFile(target if self.local else pa.BufferReader(self.fs.cat_file(target)))
        except FileNotFoundError as exc:
            raise StateError(f"state store {self.display}: object {rel} is missing (it is referenced by the "
                             "committed state: the store was changed outside Profile Sync)") from exc
        except OSError as exc:
            raise StateUnavailableError(f"state store {self.display}: could not read {rel} ({exc})") from exc
        try:
            present = set(file.schema_arrow.names)
            cols = [c for c in columns if c in present] if columns is not None else None
            table = file.read(columns=cols)
        finally:
            file.close()
        self.io["reads"] += 1
        return table

    def schema(self, rel: str) -> "pa.Schema":
        """The Arrow schema of object ``rel`` (its footer only, where the filesystem reads ranges)."""
        import pyarrow.parquet as pq

        target = self.path(rel)
        try:
            if self.local:
                return pq.read_schema(target)
            with self.fs.open(target, "rb") as f:
                return pq.read_schema(f)
        except FileNotFoundError as exc:
            raise StateError(f"state store {self.display}: object {rel} is missing") from exc
        except OSError as exc:
            raise StateUnavailableError(f"state store {self.display}: could not read {rel} ({exc})") from exc

    def list(self, rel: str) -> list[ObjectInfo]:
        """Objects directly under ``rel`` (names relative to it), with their modification time when known."""
        folder = self.path(rel)
        try:
            entries = self.fs.ls(folder, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        out = []
        for e in entries:
            if e.get("type") == "directory":
                continue
            modified = e.get("mtime") or e.get("LastModified") or e.get("updated")
            if hasattr(modified, "timestamp"):
                modified = modified.timestamp()
            out.append(ObjectInfo(posixpath.basename(e["name"].rstrip("/")), modified))
        return out

    def delete(self, rel: str, names: list[str]) -> None:
        if not names:
            return
        paths = [self.path(rel, n) for n in names]
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            for p in paths:
                self._remove_quietly(p)

    def _remove_quietly(self, target: str) -> None:
        try:
            self.fs.rm(target)
        except Exception:  # noqa: BLE001 - best effort: an unreferenced object is garbage-collected later
            pass


def select_rows(table: "pa.Table", where: "tuple[str, Collection[Any]] | None") -> "pa.Table":
    """The rows of ``table`` whose column ``where[0]`` holds one of the values ``where[1]`` (all when None)."""
    return table if where is None else table.filter(matching(table, where))


def matching(table: "pa.Table", where: "tuple[str, Collection[Any]]") -> "np.ndarray":
    """Which rows of ``table`` hold in column ``where[0]`` one of the values ``where[1]`` (none when ``table``
    has no such column)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    key, values = where
    if key not in table.column_names or not table.num_rows:  # (an empty frame's column may be untyped)
        return np.zeros(table.num_rows, dtype=bool)
    wanted = pa.array(list(values), type=table.schema.field(key).type)
    return pc.is_in(table.column(key), value_set=wanted).to_numpy(zero_copy_only=False).astype(bool)


def arrow_to_frame(table: "pa.Table", order: "np.ndarray | None" = None) -> "pd.DataFrame":
    """``table`` as a DataFrame whose string columns are ``object`` (``str``, None for null) — what every step
    works with — converted by Arrow in one pass each (``_pandas.strings_to_objects``; lists of text, the
    multi-valued attributes, by ``_pandas.lists_to_objects``). (``to_pandas()`` under
    pandas 3 builds its ``str`` dtype first, validating every value, and turning that into ``object`` again
    cost twice as much.) Other columns convert as ``to_pandas()`` converts them.

    ``order``: the frame is these rows of ``table``, taken column by column as each is converted (a chain of
    patches, ``state.patches.chain``: never a second copy of the whole table)."""
    import pandas as pd
    import pyarrow as pa

    def is_string(t: "pa.DataType") -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)

    from profile_sync._pandas import is_string_list, lists_to_objects, strings_to_objects

    convert = {f.name: strings_to_objects if is_string(f.type) else lists_to_objects
               for f in table.schema if is_string(f.type) or is_string_list(f.type)}
    rows = None if order is None else pa.array(order, type=pa.int64())

    def taken(t: "pa.Table | pa.ChunkedArray") -> "pa.Table | pa.ChunkedArray":
        return t if rows is None else t.take(rows)

    if not convert:
        return taken(table).to_pandas()
    others = [n for n in table.column_names if n not in convert]
    rest = taken(table.select(others)).to_pandas() if others else None
    columns = {n: (pd.Series(convert[n](taken(table.column(n))), dtype=object, copy=False)
                   if n in convert else rest[n]) for n in table.column_names}
    return pd.DataFrame(columns, copy=False) if columns else \
        pd.DataFrame(index=range(table.num_rows if rows is None else len(rows)))
