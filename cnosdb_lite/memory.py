"""Handing freed memory back to the system after the engine's large, short-lived allocations.

Opening a data directory parses the manifest (bloom filters as base64 text: about 11 MB of Python objects
at 10 M spans, dropped once the segments hold their filters), a checkpoint sorts and encodes a memtable,
a merge streams whole segments.  Both allocators keep what was freed for reuse: Arrow's pool (mimalloc)
and glibc's heap, whose free pages below live objects are never returned by `free` alone.  `release` asks
both to return what they do not use: measured 11 MB less RSS after opening a 10 M-span store.
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
    """Return the memory freed since the last call to the system."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
