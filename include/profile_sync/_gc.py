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
