"""Per-thread scratch rows for the kernels, laid out so that threads do not share cache
lines.

Kernels keep small per-thread state in ``scratch[threadid(), :]`` (a funnel's last pick
per slot, a column's suffix ORs, counts per period). When a row is a few dozen bytes, the
rows of two threads share a 64-byte cache line and every write by one thread evicts the
line from the other core: the kernel then runs no faster on two threads than on one
(measured: the funnel's best-step pass, whose rows were 24 bytes, took 99 ms on two threads
and 97 on one). Here each row is followed by PAD_BYTES that no thread uses.
"""

from __future__ import annotations

import numpy as np

PAD_BYTES = 128


def per_thread(nthreads: int, n: int, dtype=np.int64, fill=0) -> np.ndarray:
    """A C-contiguous ``(nthreads, n + pad)`` array filled with ``fill``, of which each
    thread uses the first ``n`` entries of its row (``pad`` entries make PAD_BYTES).

    >>> a = per_thread(2, 3)
    >>> a.shape, a.strides[0] - 3 * 8 >= PAD_BYTES
    ((2, 19), True)
    """
    pad = -(-PAD_BYTES // np.dtype(dtype).itemsize)
    return np.full((nthreads, int(n) + pad), fill, dtype=dtype)
