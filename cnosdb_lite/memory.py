"""Handing freed memory back to the system after the engine's large, short-lived allocations.

Opening a data directory parses the manifest (bloom filters as base64 text: about 11 MB of Python objects
at 10 M spans, dropped once the segments hold their filters), a checkpoint sorts and encodes a memtable,
a merge streams whole segments, and every write's parsing allocates Arrow scratch space.  Both allocators
keep what was freed for reuse: Arrow's pool (mimalloc) and glibc's heap, whose free pages below live
objects are never returned by `free` alone.  `release` asks both to return what they do not use (11 MB
less RSS after opening a 10 M-span store), `release_arrow` Arrow's pool only (cheap enough to call
often: ingesting 1 M spans peaks at 280 instead of 313 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None (another C library)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


_TRIM = _malloc_trim()


def release() -> None:
    """Return the memory freed since the last call to the system (both allocators)."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


def release_arrow() -> None:
    """Return what Arrow's pool freed: after each write and each merged row group (0.5 ms; mimalloc
    otherwise keeps the kernels' scratch space, 20-30 MB per write of 1,000 spans)."""
    pa.default_memory_pool().release_unused()
