"""Keep freed activation memory in the process instead of returning it to the OS.

numpy allocates every activation with ``malloc``. glibc serves large blocks with fresh
``mmap`` pages (or trims the heap after a free), so each run of a model with big activations
pays a page fault per 4 KiB the first time it writes them: 4,000 faults and ~15% of a
super-resolution run. Raising glibc's mmap and trim thresholds keeps freed blocks in the heap
for the next allocation, which is what onnxruntime's CPU memory arena does with its own pool.
The setting is process-wide and sticky (as an arena is); it is a no-op where libc has no
``mallopt`` (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["enable_memory_arena"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap
_TRIM_THRESHOLD = (1 << 31) - 1  # never trim the heap's top after a free


@functools.cache
def enable_memory_arena() -> bool:
    """Tune glibc's malloc once per process; True if it took effect."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
