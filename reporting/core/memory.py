"""Memory the process no longer uses goes back to the system.

pandas allocates and frees many medium-sized arrays while rollups merge and sections
compute; glibc keeps freed heap pages for reuse, so without a trim the process stays as
large as the most it ever held at once, and the next stage starts from there.

A trim releases free pages, not the heap's extent. After a long load the heap is large
and mostly free (26 large weeks: 1.8 GiB, 0.4 GiB of it in use): a later stage's
allocations land on its released pages and touch them again, and what they free stays
resident, so a long computation creeps back to the heap's whole size (the incidents
did, 1.1 GiB over their start) unless it trims as it goes, after each piece of work.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any

import pyarrow as pa

_LIBC: Any = None
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
GROWTH = 64 << 20        # resident bytes grown since the last trim that call for another
_after_trim = 0          # resident bytes after the last trim (or the least seen since)


def trim() -> None:
    """Free heap pages back to the system (glibc's malloc_trim; nothing elsewhere) and
    Arrow's pool's unused memory."""
    global _LIBC, _after_trim
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
    pa.default_memory_pool().release_unused()
    _after_trim = resident()


def trim_if_grown() -> None:
    """`trim` when the process has grown by GROWTH since the last one: what a long
    computation calls after each piece of work. A trim walks the whole heap (2-4 ms
    after a long load), so one after each of a hundred signals cost a one-week build's
    sections a third of their time; a look at /proc costs 20 us."""
    global _after_trim
    now = resident()
    if now - _after_trim >= GROWTH:
        trim()
    else:
        _after_trim = min(_after_trim, now)


def resident() -> int:
    """The process's resident bytes (0 where /proc is not there: never a trim)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0
