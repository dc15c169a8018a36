"""How the process asks the C allocator (glibc) for memory: large blocks always mapped on their
own and handed back to the system when freed (`serve` and `worker` set it at start), and free
memory handed back after a one-off burst of small allocations (`trim`, after the embedding model
is loaded: parsing and rewriting its graph left 35 MB free but resident).

glibc raises its mmap threshold each time a mapped block is freed (up to 32 MB), after which
blocks of that size come from the heap and stay resident once freed. The embedding model's
passes free tens of MB of buffers each, so a replica's memory crept up search after search (a
32-row batch left 169 MB resident against 115 MB with a fixed threshold, peak 276 → 225 MB,
measured on the model alone). A fixed threshold turns that adjustment off. Where the C library
is not glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 256 * 1024  # glibc's initial value is 128 KiB; a fixed value stops it rising


def _libc_function(name: str) -> Any | None:
    found = ctypes.util.find_library("c")
    if not found:
        return None
    try:
        return getattr(ctypes.CDLL(found), name)
    except (OSError, AttributeError):  # not glibc (musl has neither mallopt nor malloc_trim)
        return None


def hand_back_large_blocks() -> bool:
    """Fix glibc's mmap threshold; True if it was set (False: not glibc)."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    return done


def trim() -> None:
    """Hand the heap's free memory back to the system (glibc's malloc_trim); nothing elsewhere."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim.argtypes = [ctypes.c_size_t]
        malloc_trim(0)
