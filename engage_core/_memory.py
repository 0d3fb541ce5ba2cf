"""Freed memory kept for reuse, on glibc.

The kernels allocate arrays of tens of megabytes (a column of dense ids, the day bitmaps,
sort buffers), and a pipeline run allocates and frees them metric after metric. glibc
hands every allocation over 32 MB straight back to the kernel when it is freed, so the next
one is fresh memory: each of its pages faults in and is zeroed by the kernel. Measured on
the benchmark's 2-core machine (10M events): a fifth of all the CPU time of every metric of
the demo pipeline went to zeroing pages, and prepare + active users took 67 ms instead of
58.

Like DuckDB's buffer pool and the allocator Polars installs for its process, Engage keeps
what it frees: when engage_core is imported, glibc is told to serve large allocations from
its heap (``M_MMAP_MAX = 0``) and not to trim the heap (``M_TRIM_THRESHOLD``), so freed
blocks are reused. The peak memory is unchanged (within a few percent: reuse can leave
gaps); the process keeps its peak until it exits (an Airflow task runs in its own process).
``ENGAGE_KEEP_MEMORY=0`` in the environment before the import turns this off. Other C
libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_kept = False


def keep_freed_memory() -> bool:
    """Apply the setting above; True when it took effect."""
    if os.environ.get("ENGAGE_KEEP_MEMORY", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the largest threshold an int holds: freed memory stays in the process
    global _kept
    _kept = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _kept


def release_free_memory() -> None:
    """Hand the free memory kept so far back to the kernel (glibc's malloc_trim: whole free
    pages anywhere in the heap), where the peak matters more than reuse: a record-batch
    stream's per-batch parts, freed as each column is joined, lie between the other
    columns' parts and cannot hold the next joined column (measured: 50M events streamed
    from Parquet peaked at 1.56 GB instead of 1.19 GB without this)."""
    if _kept:
        ctypes.CDLL(None).malloc_trim(0)
