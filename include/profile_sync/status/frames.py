"""A read-only view of the committed state for the status page.

Everything the page shows comes from what the engine already keeps, read
through the state store's public API only — ``committed_manifest()`` and
``read_committed_frame(key, columns)`` — never from files under the state
folder (the store may live on object storage). Frames are cached per committed
version: a page that is looked at often reads each frame once per run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol

import pandas as pd


class CommittedReader(Protocol):
    """What the view needs of a state store (``state.store.StateStore`` has it)."""

    def committed_manifest(self) -> dict[str, Any]: ...

    def read_committed_frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame | None: ...


_CACHE: "OrderedDict[tuple, pd.DataFrame | None]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_ENTRIES = 16
"""Frames kept in memory across requests (the newest committed version's, mostly)."""


class CommittedState:
    """The committed manifest of one moment and its frames (cached per version)."""

    def __init__(self, store: CommittedReader, cache_key: str | None = None) -> None:
        self.store = store
        self.manifest = store.committed_manifest()
        self.version: int = int(self.manifest.get("version") or 0)
        self.cache_key = cache_key

    @property
    def committed_at(self) -> str | None:
        return self.manifest.get("committed_at")

    def keys(self, prefix: str = "") -> list[str]:
        """Frame keys of the committed state starting with ``prefix``."""
        return sorted(k for k in self.manifest.get("frames", {}) if k.startswith(prefix))

    def value(self, key: str, default: Any = None) -> Any:
        return self.manifest.get("values", {}).get(key, default)

    def frame(self, key: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A committed frame (only ``columns``, those it has, when given), or None when the state has none."""
        if key not in self.manifest.get("frames", {}):
            return None
        ident = (self.cache_key, self.version, key, tuple(columns) if columns is not None else None)
        if self.cache_key is not None:
            with _CACHE_LOCK:
                if ident in _CACHE:
                    _CACHE.move_to_end(ident)
                    return _CACHE[ident]
        frame = self.store.read_committed_frame(key, columns=columns)
        if self.cache_key is not None:
            with _CACHE_LOCK:
                _CACHE[ident] = frame
                while len(_CACHE) > CACHE_ENTRIES:
                    _CACHE.popitem(last=False)
        return frame


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
