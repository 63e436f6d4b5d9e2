"""Memory the process no longer uses goes back to the system.

pandas allocates and frees many medium-sized arrays while rollups merge and sections
compute; glibc keeps freed heap pages for reuse, so without a trim the process stays as
large as the most it ever held at once, and the next stage starts from there.
"""
from __future__ import annotations

import ctypes
from typing import Any

import pyarrow as pa

_LIBC: Any = None


def trim() -> None:
    """Free heap pages back to the system (glibc's malloc_trim; nothing elsewhere) and
    Arrow's pool's unused memory."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
    pa.default_memory_pool().release_unused()
