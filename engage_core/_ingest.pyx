# Ingest kernels: dense ids for integer keys (a hash table, or a direct table for packed keys),
# dictionary codes and validity bitmaps. (Byte strings: _bytes_index.pyx; days: _columns.pyx.)
#
# Arrow buffers arrive through the buffer protocol (typed memoryviews over pyarrow.Buffer):
# nothing here links against libarrow.
from cython.parallel cimport prange
from libc.stdint cimport (INT64_MAX, INT64_MIN, int8_t, int16_t, int32_t, int64_t, intptr_t, uint8_t,
                          uint16_t, uint32_t, uint64_t)
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from engage_core._hash cimport big_alloc, chunk_at, estimate_distinct, mix64, table_cap

import numpy as np


cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    typedef struct { int64_t key; int32_t id; int32_t pad; } ISlot;  /* id -1: empty */
    #include "_idpart.h"
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    ctypedef struct ISlot:
        int64_t key
        int32_t id       # -1: empty
        int32_t pad
    int encode_partitioned "engage_encode_partitioned"(
        const int64_t* addr, const int64_t* start, int64_t n_chunks, ISlot* slots,
        int64_t cap, int nthreads, int32_t* out, int64_t* id_key, int64_t* size) noexcept nogil
    int64_t partitions_for "engage_id_partitions"(int64_t cap) noexcept nogil
    int64_t estimate_ids "engage_id_estimate"(const int64_t* addr, const int64_t* start,
                                              int64_t n_chunks, int nthreads) noexcept nogil


# rows between a slot's prefetch and its probe (measured on 10M random 64-bit ids, 1M
# distinct: 16 rows ahead 165 ms, 48 ahead 147 ms)
DEF AHEAD = 48


cdef class Int64Index:
    """Maps int64 keys to dense ids 0, 1, 2, ... in order of first appearance.

    Keys packed in a narrow range get a direct table (one array read per row); others go
    to an open-addressing hash table (linear probing, at most half full) whose slots hold
    key and id side by side. The encode loop prefetches the slot of the row AHEAD rows
    later, so the misses of a table larger than the cache overlap.
    """
    cdef ISlot* slots
    cdef int64_t* id_key
    cdef int64_t cap
    cdef int64_t id_cap
    cdef int64_t size
    cdef int64_t hsize
    cdef int32_t* direct
    cdef int64_t direct_lo
    cdef int64_t direct_span
    cdef bint direct_decided

    def __cinit__(self, int64_t expected=1024):
        cdef int64_t cap = 1024
        self.direct = NULL
        self.direct_span = 0
        self.direct_lo = 0
        self.direct_decided = False
        while cap < 2 * expected:
            cap <<= 1
        self.cap = cap
        self.slots = <ISlot*>big_alloc(cap * sizeof(ISlot))
        self.id_cap = cap // 2
        self.id_key = <int64_t*>malloc(self.id_cap * sizeof(int64_t))
        if self.slots == NULL or self.id_key == NULL:
            raise MemoryError()
        memset(self.slots, 0xff, cap * sizeof(ISlot))
        self.size = 0
        self.hsize = 0

    def __dealloc__(self):
        free(self.slots)
        free(self.id_key)
        free(self.direct)

    def __len__(self):
        return self.size

    def release_table(self):
        """Free the hash table once no more keys will be encoded (prepare_events' end: a
        10M-row log with 1M random ids keeps 32 MB less while its metrics run); the keys by
        id stay (``keys``, ``len``). A later ``encode`` rebuilds the table from them."""
        if self.direct == NULL and self.slots != NULL:
            free(self.slots)
            self.slots = NULL

    cdef int _table_back(self) noexcept nogil:
        # The hash table again after release_table: an empty one (_grow_to, with no old
        # slots to move), every key by id put back (ids kept).
        cdef int64_t i, s
        if self.slots != NULL:
            return 0
        self.cap = 0
        if self._grow_to(table_cap(1024, self.size)) != 0:
            return -1
        for i in range(self.size):
            s = <int64_t>(mix64(<uint64_t>self.id_key[i]) & <uint64_t>(self.cap - 1))
            while self.slots[s].id != -1:
                s = (s + 1) & (self.cap - 1)
            self.slots[s].key = self.id_key[i]
            self.slots[s].id = <int32_t>i
        return 0

    cdef int _grow(self) noexcept nogil:
        return self._grow_to(self.cap * 2)

    cdef int _grow_to(self, int64_t new_cap) noexcept nogil:
        cdef ISlot* ns = <ISlot*>big_alloc(new_cap * sizeof(ISlot))
        cdef int64_t i, s, m = new_cap - 1
        if ns == NULL:
            return -1
        memset(ns, 0xff, new_cap * sizeof(ISlot))
        for i in range(self.cap):
            if self.slots[i].id == -1:
                continue
            s = <int64_t>(mix64(<uint64_t>self.slots[i].key) & <uint64_t>m)
            while ns[s].id != -1:
                s = (s + 1) & m
            ns[s] = self.slots[i]
        free(self.slots)
        self.slots = ns
        self.cap = new_cap
        return 0

    cdef int _ensure_ids(self) noexcept nogil:
        # Room in id_key for one more id (the direct table does not grow the hash part).
        cdef int64_t* nid
        if self.size < self.id_cap:
            return 0
        nid = <int64_t*>realloc(self.id_key, 2 * self.id_cap * sizeof(int64_t))
        if nid == NULL:
            return -1
        self.id_key = nid
        self.id_cap *= 2
        return 0

    cdef int64_t _encode(self, const int64_t[::1] keys, const uint8_t[::1] valid,
                         bint all_valid, int32_t[::1] out) noexcept nogil:
        cdef int64_t i, s, n = keys.shape[0]
        cdef int64_t m = self.cap - 1
        cdef int64_t k, rel
        cdef int32_t* direct = self.direct
        cdef int64_t lo = self.direct_lo
        cdef uint64_t span = <uint64_t>self.direct_span
        cdef ISlot* slot
        for i in range(n):
            if i + AHEAD < n:
                k = keys[i + AHEAD]
                rel = <int64_t>(<uint64_t>k - <uint64_t>lo)
                if <uint64_t>rel < span:
                    ENGAGE_PREFETCH(&direct[rel])
                else:
                    ENGAGE_PREFETCH(&self.slots[mix64(<uint64_t>k) & <uint64_t>m])
            if not all_valid and not valid[i]:
                out[i] = -1
                continue
            k = keys[i]
            rel = <int64_t>(<uint64_t>k - <uint64_t>lo)
            if <uint64_t>rel < span:
                if direct[rel] < 0:
                    if self._ensure_ids() != 0:
                        return -1
                    direct[rel] = <int32_t>self.size
                    self.id_key[self.size] = k
                    self.size += 1
                out[i] = direct[rel]
                continue
            s = <int64_t>(mix64(<uint64_t>k) & <uint64_t>m)
            while True:
                slot = &self.slots[s]
                if slot.id == -1:
                    if self._ensure_ids() != 0:
                        return -1
                    if 2 * (self.hsize + 1) > self.cap:
                        if self._grow() != 0:
                            return -1
                        m = self.cap - 1
                        s = <int64_t>(mix64(<uint64_t>k) & <uint64_t>m)
                        continue
                    slot.key = k
                    slot.id = <int32_t>self.size
                    self.id_key[self.size] = k
                    out[i] = <int32_t>self.size
                    self.size += 1
                    self.hsize += 1
                    break
                if slot.key == k:
                    out[i] = slot.id
                    break
                s = (s + 1) & m
        return 0

    def encode(self, const int64_t[::1] keys, valid=None, int nthreads=1):
        """Dense ids for ``keys`` (int32; -1 where ``valid`` is 0); ``nthreads`` threads
        estimate how large the table will get (ids do not depend on it)."""
        cdef int64_t expected, cap
        cdef int32_t[::1] out = np.empty(keys.shape[0], dtype=np.int32)
        cdef const uint8_t[::1] v
        cdef bint all_valid = valid is None
        cdef int64_t rc
        if all_valid:
            v = np.ones(1, dtype=np.uint8)
        else:
            v = valid
        if not self.direct_decided and keys.shape[0] > 0:
            self._decide_direct(np.asarray(keys), valid)
        if self._table_back() != 0:
            raise MemoryError()
        with nogil:
            rc = 0
            if self.direct == NULL and self.size == 0 and keys.shape[0] >= (1 << 16):
                # a first large batch of spread-out keys: size the hash table once
                expected = estimate_distinct(<const uint64_t*>&keys[0], keys.shape[0], True,
                                             nthreads)
                cap = self.cap
                while cap < 2 * expected:
                    cap <<= 1
                if cap > self.cap:
                    rc = self._grow_to(cap)
            if rc == 0:
                rc = self._encode(keys, v, all_valid, out)
        if rc != 0:
            raise MemoryError()
        return np.asarray(out)

    def encode_parts(self, parts, int nthreads=1, key_range=None):
        """``encode`` of the int64 arrays ``parts`` (a column's chunks, no nulls, read where
        they are) as one array. ``key_range``: their least and greatest key, when known.

        A first batch of over 2**20 keys, too spread out for a direct table, on several
        threads, is numbered by ``engage_encode_partitioned`` (``_idpart.h``): the table
        cut into regions probed in cache, every thread at work; the ids are the same."""
        cdef int64_t n = sum(len(p) for p in parts), expected, cap, size = 0
        cdef int64_t[::1] addr
        cdef int64_t[::1] start
        cdef int32_t[::1] out
        cdef int64_t* nid
        cdef int rc
        if self._table_back() != 0:
            raise MemoryError()

        def row_by_row():
            return self.encode(parts[0] if len(parts) == 1 else np.concatenate(parts), None,
                               nthreads)

        lo, hi = key_range if key_range is not None else (None, None)
        spread = lo is not None and (hi - lo + 1 > max(8 * n, 1 << 22) or hi - lo + 1 > (1 << 27))
        if (nthreads < 2 or self.size or self.direct != NULL or n < (1 << 20)
                or n > (1 << 31) - 2 or not (spread or self.direct_decided)):
            return row_by_row()
        self.direct_decided = True  # (no direct table: the keys are spread out)
        parts = [np.ascontiguousarray(p, dtype=np.int64) for p in parts if len(p)]
        addr = np.array([p.ctypes.data for p in parts], dtype=np.int64)
        start = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        out = np.empty(n, dtype=np.int32)
        with nogil:
            expected = estimate_ids(&addr[0], &start[0], start.shape[0] - 1, nthreads)
        cap = table_cap(self.cap, expected)
        if partitions_for(cap) < 4 * nthreads or cap > (1 << 31):  # few keys: their table
            # is in cache anyway (or slots past int32, which the records hold)
            return row_by_row()
        if cap > self.cap and self._grow_to(cap) != 0:
            raise MemoryError()
        if self.id_cap < self.cap:
            nid = <int64_t*>realloc(self.id_key, self.cap * sizeof(int64_t))
            if nid == NULL:
                raise MemoryError()
            self.id_key, self.id_cap = nid, self.cap
        with nogil:
            rc = encode_partitioned(&addr[0], &start[0], start.shape[0] - 1, self.slots,
                                    self.cap, nthreads, &out[0], self.id_key, &size)
        if rc == 2:
            raise MemoryError()
        if rc == 1:  # more keys than the estimate said: row by row (the table grows)
            return row_by_row()
        self.size = self.hsize = size
        if self.id_cap > max(size, self.cap // 2):  # (room for the 3/4 it might have taken)
            nid = <int64_t*>realloc(self.id_key, max(size, self.cap // 2) * sizeof(int64_t))
            if nid != NULL:
                self.id_key, self.id_cap = nid, max(size, self.cap // 2)
        return np.asarray(out)

    def _decide_direct(self, keys, valid):
        # Keys packed in a narrow range (the usual auto-increment ids) get a direct table:
        # one array read per row instead of a hash probe. Keys outside it use the hash.
        cdef int64_t span_c
        self.direct_decided = True
        kv = keys if valid is None else keys[np.asarray(valid, dtype=bool)]
        if len(kv) == 0:
            return
        lo, hi = int(kv.min()), int(kv.max())
        span = hi - lo + 1  # a Python int: may exceed int64 for ids at both limits
        if span > max(8 * len(kv), 1 << 22) or span > (1 << 27):
            return
        span_c = min(max(span * 2, 1 << 16), 1 << 27)  # room for ids that arrive later
        self.direct = <int32_t*>malloc(span_c * sizeof(int32_t))
        if self.direct == NULL:
            return
        memset(self.direct, 0xff, span_c * sizeof(int32_t))
        self.direct_lo = lo
        self.direct_span = span_c

    def keys(self):
        """The distinct keys, by dense id (int64)."""
        cdef int64_t[::1] out = np.empty(self.size, dtype=np.int64)
        if self.size:
            memcpy(&out[0], self.id_key, self.size * sizeof(int64_t))
        return np.asarray(out)


ctypedef fused index_t:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t


def gather_codes(const int32_t[::1] codes, const index_t[::1] indices, valid=None,
                 int nthreads=1, out_array=None):
    """``codes[indices]`` as int32 (-1 where ``valid`` is 0 or the index is out of range):
    the dense ids of a dictionary array's rows from the ids of its dictionary (written to
    ``out_array`` when given). 8- and 16-bit indices read every index value's code from a
    table (-1 out of range or negative), without a branch (10M int8 indices on one
    thread: 3 ms; the per-chunk calls they replace in prepare_events took ~6)."""
    cdef int64_t i, n = indices.shape[0], k = codes.shape[0]
    cdef int32_t[::1] out = np.empty(n, dtype=np.int32) if out_array is None else out_array
    cdef const uint8_t[::1] v = np.ones(1, dtype=np.uint8) if valid is None else valid
    cdef bint all_valid = valid is None
    cdef int64_t j
    cdef int32_t[::1] lut
    cdef bint small = sizeof(index_t) <= 2
    if small:
        lut = np.full(256 if sizeof(index_t) == 1 else 65536, -1, dtype=np.int32)
        # a signed type's negative values land past its positive ones (unsigned casts)
        j = lut.shape[0] // 2 if (index_t is int8_t or index_t is int16_t) else lut.shape[0]
        lut[:min(k, j)] = codes[:min(k, j)]
    else:
        lut = np.zeros(1, dtype=np.int32)
    with nogil:
        for i in prange(n, num_threads=nthreads, schedule="static"):
            if small:
                j = lut[<uint16_t>indices[i] if sizeof(index_t) == 2 else <uint8_t>indices[i]]
            else:
                j = codes[<int64_t>indices[i]] if 0 <= <int64_t>indices[i] < k else -1
            out[i] = <int32_t>j if all_valid or v[i] else -1
    return np.asarray(out)


def unpack_validity(const uint8_t[::1] bitmap, int64_t offset, int64_t n):
    """uint8 mask (1 = valid) of ``n`` bits of an Arrow validity bitmap from bit ``offset``."""
    cdef uint8_t[::1] out = np.empty(n, dtype=np.uint8)
    cdef int64_t i, b
    with nogil:
        for i in range(n):
            b = offset + i
            out[i] = (bitmap[b >> 3] >> (b & 7)) & 1
    return np.asarray(out)


cdef inline void float64_piece(const uint64_t* src, const uint8_t* bits, int64_t offset,
                               uint64_t* dst, uint8_t* valid, int64_t a, int64_t b) noexcept nogil:
    """Slots a..b of one float64 array into dst / valid: no value, no null, or masked."""
    cdef int64_t i, j
    cdef uint64_t ok
    for i in range(a, b):
        if src == NULL:
            dst[i - a] = 0
            valid[i - a] = 0
        elif bits == NULL:
            dst[i - a] = src[i]
            valid[i - a] = 1
        else:
            j = offset + i
            ok = (bits[j >> 3] >> (j & 7)) & 1
            dst[i - a] = src[i] & (0 - ok)
            valid[i - a] = <uint8_t>ok


def float64_chunks(list raws, list bitmaps, list offsets, list lengths, double[::1] values,
                   uint8_t[::1] valid, int nthreads=1):
    """Float64 Arrow arrays (a column's chunks) written side by side into ``values`` (0.0
    for a null) and ``valid`` (1 = valid): ``raws[c]`` (float64 values from the chunk's
    first slot, or None: every slot null), ``bitmaps[c]`` (validity bytes, bit
    ``offsets[c]`` onwards, or None: all valid), ``lengths[c]`` its slots. One parallel pass
    over all the rows (each thread a contiguous range, across chunk ends), nothing
    allocated (the per-batch cast, fill_null and copies took most of a pipeline's
    prepare); a null's bits are masked off rather than branched on (a column of 10% orders
    mispredicted: 10M rows 14 ms, then 2-3)."""
    cdef int64_t k = len(raws), c, n = values.shape[0], a, b, e
    cdef int64_t[::1] src = np.zeros(max(k, 1), dtype=np.int64)
    cdef int64_t[::1] bit = np.zeros(max(k, 1), dtype=np.int64)
    cdef int64_t[::1] off = np.zeros(max(k, 1), dtype=np.int64)
    cdef int64_t[::1] start = np.zeros(k + 1, dtype=np.int64)
    cdef const double[::1] rv
    cdef const uint8_t[::1] bv
    cdef int t
    cdef int T = nthreads if n >= 1 << 16 else 1
    for c in range(k):
        rv = raws[c] if raws[c] is not None else None
        if rv is not None and rv.shape[0]:
            src[c] = <int64_t><intptr_t>&rv[0]
        if bitmaps[c] is not None and src[c]:
            bv = bitmaps[c]
            bit[c] = <int64_t><intptr_t>&bv[0]
        off[c] = offsets[c]
        start[c + 1] = start[c] + <int64_t>lengths[c]
    if k == 0 or n == 0:
        return
    if start[k] != n:
        raise ValueError(f"float64_chunks: {start[k]} slots for {n} rows")
    with nogil:
        for t in prange(T, num_threads=T, schedule="static"):
            a = n * t // T
            b = n * (t + 1) // T
            c = chunk_at(start, a) if a < b else k
            while a < b:
                e = min(b, start[c + 1])
                float64_piece(<const uint64_t*><intptr_t>src[c], <const uint8_t*><intptr_t>bit[c],
                              off[c], <uint64_t*>&values[a], &valid[a], a - start[c],
                              e - start[c])
                a = e
                c = c + 1


