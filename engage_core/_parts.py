"""The arrays ``prepare_events`` fills batch by batch (engage_core.events)."""

from __future__ import annotations

import numpy as np

from engage_core import _columns


class Parts(dict):
    """Per-batch results of each key. With the input's row count known, the result arrays
    are allocated once and filled batch by batch (no second copy of the rows at the end,
    half the peak memory of collecting and concatenating); otherwise they are collected."""

    def __init__(self, dtypes: dict, total: int | None, threads: int = 1):
        super().__init__({k: [] for k in dtypes})  # (dtype None: collected, never preallocated)
        self.total, self.dtypes, self.filled, self.threads = total, dtypes, {}, threads

    def add(self, key: str, values: np.ndarray) -> None:
        dtype = self.dtypes.get(key)
        if self.total is None or dtype is None:
            self[key].append(values)
            return
        if key not in self.filled:
            self[key] = [np.empty(self.total, dtype=dtype)]
            self.filled[key] = 0
        pos = self.filled[key]
        target = self[key][0][pos:pos + len(values)]
        if not np.shares_memory(target, values):  # written in place through ``slot``: no copy
            target[:] = values
        self.filled[key] = pos + len(values)

    def slot(self, key: str, n: int) -> np.ndarray | None:
        """The next ``n`` entries of ``key``'s preallocated array, for a kernel to write its
        batch in place (then ``add`` it), or None when the key is collected batch by batch."""
        dtype = self.dtypes.get(key)
        if self.total is None or dtype is None:
            return None
        if key not in self.filled:
            self[key] = [_columns.touched(np.empty(self.total, dtype=dtype), self.threads)]
            self.filled[key] = 0
        pos = self.filled[key]
        return self[key][0][pos:pos + n]

    def result(self, key: str, dtype) -> np.ndarray:
        if key in self.filled:
            return self[key][0][:self.filled[key]]
        chunks, self[key] = self[key], []  # the parts go as soon as they are joined
        if len(chunks) == 1:  # one batch: no copy
            return np.ascontiguousarray(chunks[0], dtype=dtype)
        out = np.empty(sum(len(c) for c in chunks), dtype=dtype)
        pos = 0
        while chunks:
            c = chunks.pop(0)
            out[pos:pos + len(c)] = c
            pos += len(c)
        return out
