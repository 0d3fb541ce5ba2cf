"""Dense user ids for integer keys packed in a narrow range, built in parallel.

When the whole id column is at hand (an in-memory table) and its keys span a range no
larger than the log (the usual auto-increment ids), ``RangeIndex.build`` numbers the keys
in order of first appearance, as ``_ingest.Int64Index`` does, but with the rows split
between threads: each thread numbers the keys new to its share of the rows in a table of
its own (one entry per possible key), the later threads' numbers are then merged in row
order into the first thread's table, and their rows renumbered, in parallel. Ids do not
depend on the thread count. Other columns go to ``_ingest.Int64Index`` (a hash table, one pass).

``RangeIndex.deferred`` leaves the numbering to the first use of the index: until then a
row's user is its key's slot (``key - lo``), which is all that metrics that only count users
need (see ``Events.user_slots``); their kernels read the slots from the keys, or have them
written once (``slots``).

First-appearance ids keep the users active at the same time close together, so the
per-user state of the metric kernels is touched with far better locality than with ids in
key order (measured: the active-days pass takes 0.07 s instead of 0.11 s on 10M rows).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _columns, arrow_io

# the range may exceed the number of rows by this much (a few ids never seen) ...
MIN_SPAN = 1 << 22
# ... but the table (4 bytes per possible key) stays under 1 GiB
MAX_SPAN = 1 << 28


def column_keys(column: pa.ChunkedArray) -> "_columns.Int64Chunks":
    """An integer column's chunks as int64 (uint64 bit for bit) with their validity, read
    by the kernels as one column."""
    chunks = [c for c in column.chunks if len(c)]
    return _columns.Int64Chunks([arrow_io.int64_keys(c) for c in chunks],
                                [arrow_io.validity(c) for c in chunks])


class RangeIndex:
    """Maps integer keys in ``[lo, lo + len(table))`` to 0, 1, 2, ... by first appearance."""

    def __init__(self, lo: int, span: int, table: np.ndarray | None, fresh: list, threads: int):
        self.lo = lo
        self.span = span  # possible keys: lo .. lo + span - 1
        self._table = table
        # keys as offsets from ``lo`` (int32, half the memory of int64 keys)
        self._rel = (np.concatenate(fresh) if len(fresh) != 1 else fresh[0]) if fresh else None
        self._threads = threads
        self._deferred = None  # (keys, out): numbered on first use (see ``deferred``)

    @staticmethod
    def _range(keys, threads: int, bounds=None):
        """(lo, span) of the keys when they suit a RangeIndex, else None. ``bounds``: their
        least and greatest key (``_columns.chunks_minmax``), when already found."""
        lo, hi = _columns.chunks_minmax(keys, threads) if bounds is None else bounds
        if lo is None:
            return None
        span = hi - lo + 1  # a Python int: ids at both ends of int64 do not overflow
        if span > max(len(keys), MIN_SPAN) or span > MAX_SPAN:
            return None
        return lo, span

    @classmethod
    def build(cls, column, threads: int, out: np.ndarray | None = None,
              bounds=None) -> "RangeIndex | None":
        """The index of every key of ``column`` (a ChunkedArray of any integer type, no
        dictionary, or its ``column_keys``), or None when the keys are too spread out
        (then a hash table serves better). With ``out`` (int32, one per row), the rows'
        ids are written there as they are numbered (as ``encode`` would, without reading
        the keys again)."""
        keys = column if isinstance(column, _columns.Int64Chunks) else column_keys(column)
        found = cls._range(keys, threads, bounds)
        if found is None:
            return None
        lo, span = found
        table = np.full(span, -1, dtype=np.int32)
        fresh = _columns.first_ids(keys, lo, span, table, threads, out)
        return cls(lo, span, table, [fresh], threads)

    @classmethod
    def deferred(cls, keys: "_columns.Int64Chunks", threads: int, out: np.ndarray,
                 bounds=None) -> "RangeIndex | None":
        """As ``build`` with ``out``, for keys without nulls, but the keys are numbered on
        first use of the index (or ``number``): until then each row's user is its slot
        ``key - lo`` (``span`` slots), which is all the metrics that only count users need
        (active users, calendar retention: their day bitmaps are indexed by slot), read
        from ``slot_keys`` or written to ``out`` by ``slots``. ``keys`` must stay valid
        until then (views of the table's columns)."""
        found = cls._range(keys, threads, bounds)
        if found is None:
            return None
        lo, span = found
        index = cls(lo, span, None, [], threads)
        index._deferred = (keys, out)
        index._slots_written = False
        return index

    @property
    def pending(self) -> bool:
        """Whether the keys are not numbered yet (rows' users are slots ``key - lo``)."""
        return self._deferred is not None

    def slot_keys(self):
        """``(keys, lo)`` while the keys are not numbered: a row's slot is ``key - lo``."""
        return self._deferred[0], self.lo

    def slots(self) -> np.ndarray:
        """Each row's slot ``key - lo`` (int32, in ``out``; written on first call), while
        the keys are not numbered."""
        keys, out = self._deferred
        if not self._slots_written:
            _columns.key_offsets(keys, self.lo, out, self._threads)
            self._slots_written = True
        return out

    def number(self) -> None:
        """Number the keys now, if deferred: ``out`` gets each row's id."""
        if self._deferred is None:
            return
        keys, out = self._deferred
        self._table = np.full(self.span, -1, dtype=np.int32)
        # numbered from the slots when ``out`` holds them (4 bytes a row, not the 8 of the
        # keys), else from the keys
        self._rel = _columns.first_ids(keys, self.lo, self.span, self._table, self._threads,
                                       out, slots=self._slots_written)
        self._deferred = None

    def __len__(self) -> int:
        self.number()
        return len(self._rel)

    def encode(self, keys, valid=None, nthreads: int | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Dense ids of ``keys`` (an int64 array with its ``valid`` mask, or Int64Chunks;
        every valid key known to the index); -1 where not valid. Written to ``out`` (int32)
        when given."""
        self.number()
        return _columns.gather_ids(_columns.as_chunks(keys, valid), self.lo, self._table,
                                   nthreads or self._threads, out)

    def keys(self) -> np.ndarray:
        """The distinct keys, by dense id (int64)."""
        self.number()
        keys = self._rel.astype(np.int64)
        keys += self.lo
        return keys
