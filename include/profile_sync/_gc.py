"""Pausing Python's cyclic garbage collector while a bulk load allocates millions of small objects.

Reading 100,000 directory entries creates a few million lists, dicts and bytes, none of them in
reference cycles; the collector still walks every live container each time its thresholds trip,
which doubled the CPU time of the read and of building the connector space (measured in
``tests/bench``). Reference counting frees everything as usual while the collector is paused; it
runs again (once) when the block ends.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested blocks are fine; it resumes as it was)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def release_memory() -> None:
    """Hand memory the last step freed back to the operating system before the next step of the same process.

    Steps that run one after the other in one process (the in-process runner, a fused task) would otherwise
    each start from the high-water mark of the one before: glibc keeps freed heap for reuse and Arrow's
    allocator keeps freed pages cached. Best effort: nothing happens where neither applies."""
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


_LIBC: list = []


def _libc():  # noqa: ANN202 - a ctypes handle or None
    if not _LIBC:
        import ctypes
        import ctypes.util

        handle = None
        name = ctypes.util.find_library("c")
        try:
            handle = ctypes.CDLL(name) if name else None
            if handle is not None and not hasattr(handle, "malloc_trim"):  # not glibc (musl, macOS)
                handle = None
        except OSError:
            handle = None
        _LIBC.append(handle)
    return _LIBC[0]
