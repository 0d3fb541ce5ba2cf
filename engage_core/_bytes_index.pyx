# Dense ids for byte strings (Arrow string / binary values): one hash table of 8-byte slots
# (the top half of a value's hash and its id); each value's full hash, place in an arena of
# value bytes and length are kept by id.
#
# Measured on this 2-core machine (10M UUID rows, 1M distinct): hashing and the byte-for-byte
# check run in parallel; the pass that gives each row the id of its hash is sequential, with
# the slot of the row 16 ahead prefetched. A random read here costs about 3 ns in a table
# under 4 MB, 11 ns at 16 MB and 16 ns from 32 MB up (a C loop, prefetched 16 ahead):
# slots of 24 bytes (hash, place, length, id: a 48 MB table) took 0.30-0.39 s for that pass,
# 8-byte slots (16 MB) 0.20-0.25 s; the whole encode 0.68 -> 0.46 s on 2 threads. A
# partitioned table filled by all threads at once (rows grouped by partition so that each
# table stays in cache) was tried and was slower (0.66 s instead of 0.42 s): grouping the
# rows sends every row's bytes, offsets and id to random places, three misses per row
# instead of one prefetched one.
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, intptr_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

from engage_core._hash cimport (RowWalk, big_alloc, estimate_distinct, mix64, next_piece,
                                table_cap, thread_rows, touch_pages)

import numpy as np

# Tests narrow the hash to a few bits to force collisions (_collide_hashes_for_tests).
cdef uint64_t HASH_MASK = ~(<uint64_t>0)

def _collide_hashes_for_tests(int bits):
    """Keep only ``bits`` bits of every byte-string hash (64: the normal hash), so tests
    can check that colliding values still get exact ids."""
    global HASH_MASK
    HASH_MASK = ~(<uint64_t>0) if bits >= 64 else ((<uint64_t>1 << bits) - 1)


cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil


# rows between a slot's prefetch and its probe
DEF AHEAD = 16


cdef inline uint64_t hash_bytes(const uint8_t* p, int64_t n) noexcept nogil:
    # One multiply per 8 bytes (the dependency chain stays short), then a full splitmix64
    # finalisation: well spread bits for the partition (high) and the table (low).
    cdef uint64_t h = <uint64_t>0x9e3779b97f4a7c15ULL ^ (<uint64_t>n * <uint64_t>0xff51afd7ed558ccdULL)
    cdef uint64_t w
    cdef int64_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        h = (h ^ w) * <uint64_t>0xc2b2ae3d27d4eb4fULL
        h ^= h >> 29
        i += 8
    if i < n:
        if n >= 8:  # the last bytes as the top of an 8-byte load ending at the value's end
            memcpy(&w, p + n - 8, 8)
            w = w >> (8 * (8 - (n - i)))
        else:
            w = 0
            memcpy(&w, p + i, n - i)
        h = (h ^ w) * <uint64_t>0x165667b19e3779f9ULL
    return mix64(h) & HASH_MASK


cdef inline bint same_bytes(const uint8_t* a, const uint8_t* b, int64_t n) noexcept nogil:
    cdef uint64_t x, y
    cdef int64_t i = 0
    while i + 8 <= n:
        memcpy(&x, a + i, 8)
        memcpy(&y, b + i, 8)
        if x != y:
            return False
        i += 8
    if i == n:
        return True
    if n >= 8:  # the last 8 bytes (overlapping the words already compared)
        memcpy(&x, a + n - 8, 8)
        memcpy(&y, b + n - 8, 8)
        return x == y
    return memcmp(a + i, b + i, n - i) == 0


ctypedef struct BSlot:
    uint32_t tag     # the top 32 bits of the value's hash (the slot comes from the low bits)
    int32_t id       # -1: empty


cdef inline uint32_t tag_of(uint64_t h) noexcept nogil:
    return <uint32_t>(h >> 32)


cdef class BytesIndex:
    """Maps byte strings (Arrow string / binary values) to dense ids 0, 1, 2, ... (in order of
    first appearance, except that a value whose hash's top half matches an earlier value's
    in the same probe run (a few values in 2**32) gets its id at the end of its batch;
    kernels that rely on that order check it and fall back when it does not hold).

    Open addressing, linear probing, at most half full. A slot is 8 bytes: the top half of
    the value's hash and its id (a million values: a 16 MB table, which stays in the
    cache; full hashes, places and lengths are kept by id). Encoding a batch
    (``_encode_bytes``) touches one prefetched slot per row in its only sequential pass;
    hashing and the byte-for-byte check of every row against its id's value run in
    parallel, so ids are exact.
    """
    cdef BSlot* slots
    cdef uint64_t* id_hash
    cdef int64_t* id_off
    cdef uint8_t* arena
    cdef int64_t arena_len
    cdef int64_t arena_cap
    cdef int64_t cap
    cdef int64_t id_cap
    cdef int64_t size
    cdef int64_t width   # every value's length when they all have one (-1: mixed)

    def __cinit__(self, int64_t expected=1024):
        cdef int64_t cap = 1024
        while cap < 2 * expected:
            cap <<= 1
        self.cap = cap
        self.slots = <BSlot*>big_alloc(cap * sizeof(BSlot))
        self.id_cap = cap // 2
        self.id_off = <int64_t*>malloc((self.id_cap + 1) * sizeof(int64_t))
        self.id_hash = <uint64_t*>malloc((self.id_cap + 1) * sizeof(uint64_t))
        self.arena_cap = 1 << 16
        self.arena = <uint8_t*>malloc(self.arena_cap)
        if (self.slots == NULL or self.id_off == NULL or self.id_hash == NULL
                or self.arena == NULL):
            raise MemoryError()
        memset(self.slots, 0xff, cap * sizeof(BSlot))
        self.id_off[0] = 0
        self.arena_len = 0
        self.size = 0
        self.width = -1

    def __dealloc__(self):
        free(self.slots)
        free(self.id_off)
        free(self.id_hash)
        free(self.arena)

    def __len__(self):
        return self.size

    def release_table(self):
        """Free the hash table once no more values will be encoded (prepare_events' end: a
        10M-row log with 1M UUIDs keeps 48 MB less while its metrics run); the values by id
        stay (``values_buffers``, ``len``). A later encode rebuilds the table from them."""
        free(self.slots)
        self.slots = NULL

    cdef int _table_back(self) noexcept nogil:
        # The hash table again after release_table: an empty one (_grow_to, with no old
        # slots to move), every value by id put back (ids kept).
        cdef int64_t i, s
        cdef uint64_t h
        if self.slots != NULL:
            return 0
        self.cap = 0
        if self._grow_to(table_cap(1024, self.size)) != 0:
            return -1
        for i in range(self.size):
            h = self.id_hash[i]
            s = <int64_t>(h & <uint64_t>(self.cap - 1))
            while self.slots[s].id != -1:
                s = (s + 1) & (self.cap - 1)
            self.slots[s].tag = tag_of(h)
            self.slots[s].id = <int32_t>i
        return 0

    cdef int _grow(self) noexcept nogil:
        return self._grow_to(self.cap * 2)

    cdef int _reserve(self, int64_t expected, int64_t arena_bytes) noexcept nogil:
        # Room for ``expected`` values (at most half full) and ``arena_bytes`` of value
        # bytes before the table is first filled: no rehash, no arena copy on the way.
        cdef int64_t cap = self.cap
        cdef uint8_t* na
        while cap < 2 * expected:
            cap <<= 1
        if cap > self.cap and self._grow_to(cap) != 0:
            return -1
        if arena_bytes > self.arena_cap:
            na = <uint8_t*>realloc(self.arena, arena_bytes)
            if na == NULL:
                return -1
            self.arena = na
            self.arena_cap = arena_bytes
        return 0

    cdef int _grow_to(self, int64_t new_cap) noexcept nogil:
        cdef int64_t m = new_cap - 1
        cdef BSlot* ns = <BSlot*>big_alloc(new_cap * sizeof(BSlot))
        cdef int64_t* no = <int64_t*>realloc(self.id_off, (new_cap // 2 + 1) * sizeof(int64_t))
        cdef uint64_t* nh
        cdef int64_t i, s
        if no != NULL:
            self.id_off = no
        nh = <uint64_t*>realloc(self.id_hash, (new_cap // 2 + 1) * sizeof(uint64_t))
        if nh != NULL:
            self.id_hash = nh
        if ns == NULL or no == NULL or nh == NULL:
            free(ns)
            return -1
        self.id_cap = new_cap // 2
        memset(ns, 0xff, new_cap * sizeof(BSlot))
        for i in range(self.cap):
            if self.slots[i].id == -1:
                continue
            s = <int64_t>(self.id_hash[self.slots[i].id] & <uint64_t>m)
            while ns[s].id != -1:
                s = (s + 1) & m
            ns[s] = self.slots[i]
        free(self.slots)
        self.slots = ns
        self.cap = new_cap
        return 0

    cdef int32_t _lookup(self, uint64_t h, const uint8_t* p, int64_t n) noexcept nogil:
        cdef int64_t m = self.cap - 1
        cdef int64_t s = <int64_t>(h & <uint64_t>m)
        cdef BSlot* slot
        cdef int64_t new_cap
        cdef uint8_t* na
        if n > 2147483647:
            return -2
        while True:
            slot = &self.slots[s]
            if slot.id == -1:
                if 2 * (self.size + 1) > self.cap:
                    if self._grow() != 0:
                        return -2
                    m = self.cap - 1
                    s = <int64_t>(h & <uint64_t>m)
                    continue
                if self.arena_len + n > self.arena_cap:
                    new_cap = self.arena_cap * 2
                    while self.arena_len + n > new_cap:
                        new_cap *= 2
                    na = <uint8_t*>realloc(self.arena, new_cap)
                    if na == NULL:
                        return -2
                    self.arena = na
                    self.arena_cap = new_cap
                if n:
                    memcpy(self.arena + self.arena_len, p, n)
                slot.tag = tag_of(h)
                slot.id = <int32_t>self.size
                if self.size == 0:
                    self.width = n
                elif n != self.width:
                    self.width = -1  # (for good: no length is -1)
                self.id_hash[self.size] = h
                self.arena_len += n
                self.id_off[self.size + 1] = self.arena_len
                self.size += 1
                return slot.id
            if (slot.tag == tag_of(h) and self.id_hash[slot.id] == h
                    and self.id_off[slot.id + 1] - self.id_off[slot.id] == n
                    and same_bytes(self.arena + self.id_off[slot.id], p, n)):
                return slot.id
            s = (s + 1) & m

    def encode(self, offsets, data, valid=None, int nthreads=1):
        """Dense ids of the values of an Arrow (large_)string/binary array.

        ``offsets`` is the int32 or int64 offsets view (length n + 1, already shifted by
        the array's offset), ``data`` the uint8 values buffer, ``valid`` a uint8 mask or None.
        ``nthreads`` threads hash the values (ids do not depend on it).
        """
        return self.encode_chunks(BytesChunks([(offsets, data, valid)]), None, nthreads)

    def encode_chunks(self, BytesChunks chunks, out_array=None, int nthreads=1):
        """Dense ids of every value of ``chunks`` (-1 for nulls), written to ``out_array``
        (int32) when given: one parallel hashing pass over all the chunks, the table sized
        once from all their hashes, one sequential pass, one parallel check."""
        cdef int64_t n = chunks.n
        cdef int32_t[::1] out = (np.empty(max(n, 0), dtype=np.int32) if out_array is None
                                 else out_array)
        cdef int rc
        if n <= 0:
            return np.asarray(out)
        with nogil:
            rc = self._table_back()
            if rc == 0:
                rc = _encode_bytes(self, chunks, out, nthreads)
        if rc != 0:
            raise MemoryError()
        return np.asarray(out)

    def values_buffers(self):
        """(int64 offsets, uint8 data) of the distinct values, by dense id."""
        cdef int64_t[::1] offs = np.empty(self.size + 1, dtype=np.int64)
        cdef uint8_t[::1] data = np.empty(self.arena_len, dtype=np.uint8)
        memcpy(&offs[0], self.id_off, (self.size + 1) * sizeof(int64_t))
        if self.arena_len:
            memcpy(&data[0], self.arena, self.arena_len)
        return np.asarray(offs), np.asarray(data)


cdef class BytesChunks:
    """Arrow string / binary chunks (``(offsets, data, valid)`` each: int32 or int64 offsets,
    all of one width, already shifted by the array's offset; uint8 data; uint8 validity or
    None) read by ``BytesIndex.encode_chunks`` as one column."""
    cdef readonly list keep
    cdef int64_t[::1] offs
    cdef int64_t[::1] data
    cdef int64_t[::1] valid
    cdef int64_t[::1] start
    cdef readonly int64_t n
    cdef bint wide

    def __init__(self, parts):
        cdef const uint8_t[::1] d
        cdef const uint8_t[::1] v
        cdef const int32_t[::1] o32
        cdef const int64_t[::1] o64
        cdef int64_t k
        kept = []
        for offsets, data, valid in parts:
            if len(offsets) <= 1:
                continue
            data = data if len(data) else np.zeros(1, dtype=np.uint8)
            kept.append((offsets, np.ascontiguousarray(data, dtype=np.uint8),
                         None if valid is None else np.ascontiguousarray(valid, dtype=np.uint8)))
        widths = {np.dtype(o.dtype) for o, _, _ in kept}
        if len(widths) > 1 or widths - {np.dtype(np.int32), np.dtype(np.int64)}:
            raise TypeError(f"offsets: expected all int32 or all int64, found {widths}")
        self.wide = widths == {np.dtype(np.int64)}
        self.keep = kept  # the buffers stay alive as long as this object
        self.offs = np.zeros(max(len(kept), 1), dtype=np.int64)
        self.data = np.zeros(max(len(kept), 1), dtype=np.int64)
        self.valid = np.zeros(max(len(kept), 1), dtype=np.int64)
        self.start = np.zeros(len(kept) + 1, dtype=np.int64)
        for k in range(len(kept)):
            offsets, data, valid = kept[k]
            if self.wide:
                o64 = offsets
                self.offs[k] = <int64_t><intptr_t>&o64[0]
            else:
                o32 = offsets
                self.offs[k] = <int64_t><intptr_t>&o32[0]
            d = data
            self.data[k] = <int64_t><intptr_t>&d[0]
            if valid is not None:
                v = valid
                self.valid[k] = <int64_t><intptr_t>&v[0]
            self.start[k + 1] = self.start[k] + len(offsets) - 1
        self.n = self.start[len(kept)]

    def __len__(self):
        return self.n


cdef inline int64_t off_at(int64_t p, bint wide, int64_t j) noexcept nogil:
    return (<const int64_t*><intptr_t>p)[j] if wide else (<const int32_t*><intptr_t>p)[j]


cdef inline const uint8_t* value_at(int64_t offs, int64_t data, bint wide,
                                    int64_t j) noexcept nogil:
    """Where value ``j`` of a chunk starts (its offsets and data at these addresses)."""
    return <const uint8_t*><intptr_t>data + off_at(offs, wide, j)


cdef inline int64_t length_at(int64_t offs, bint wide, int64_t j) noexcept nogil:
    """How many bytes value ``j`` of a chunk has."""
    return off_at(offs, wide, j + 1) - off_at(offs, wide, j)


cdef int _encode_bytes(BytesIndex ix, BytesChunks ch, int32_t[::1] out,
                       int nthreads) noexcept nogil:
    """Four passes: hash every value (parallel, each thread a range of rows across chunks);
    give each row the id of the first slot with its hash's tag (one prefetched 8-byte slot
    per row); check every row's length and bytes against its id's stored value (parallel);
    look up exactly the rows that differ (a 32-bit tag collision in the same probe run:
    practically never, but ids are exact)."""
    cdef int64_t i, n = ch.n, bad = 0, a, c, e, s0, lo, ln, total = 0, s, m, width
    cdef int32_t r
    cdef uint32_t t
    cdef uint64_t h
    cdef BSlot* slots
    cdef int th
    cdef RowWalk rw
    cdef bint wide = ch.wide
    cdef const int64_t[::1] offs = ch.offs
    cdef const int64_t[::1] data = ch.data
    cdef const int64_t[::1] valid = ch.valid
    cdef const int64_t[::1] start = ch.start
    cdef const uint8_t* base
    cdef const uint8_t* v
    cdef uint64_t* hbuf = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
    if hbuf == NULL:
        return -1
    touch_pages(hbuf, n * sizeof(uint64_t), nthreads)
    touch_pages(&out[0], n * sizeof(int32_t), nthreads)
    for th in prange(nthreads, num_threads=nthreads, schedule="static"):
        rw = thread_rows(start, n, th, nthreads)
        while next_piece(&rw, start):
            a, e, c = rw.lo, rw.hi, rw.chunk
            s0 = start[c]
            for i in range(a, e):
                base = value_at(offs[c], data[c], wide, i - s0)
                ln = length_at(offs[c], wide, i - s0)
                hbuf[i] = hash_bytes(base, ln)
    if ix.size == 0 and n >= (1 << 16):
        # a first large input: size the table and the arena once (no rehash, no copy)
        for c in range(start.shape[0] - 1):
            total = total + (off_at(offs[c], wide, start[c + 1] - start[c]) - off_at(offs[c], wide, 0))
        lo = estimate_distinct(hbuf, n, False, nthreads)
        ln = <int64_t>((<double>total / n) * lo * 1.1) + 64
        if ix._reserve(lo, ln) != 0:
            free(hbuf)
            return -1
    # Each row gets the id of the first slot with its hash's tag (inserting the value when
    # there is none), reading nothing but the slots: the check below compares every row's
    # length and bytes with its id's value, and looks the rows that differ up exactly.
    slots, m = ix.slots, ix.cap - 1
    for c in range(start.shape[0] - 1):
        s0 = start[c]
        v = <const uint8_t*><intptr_t>valid[c]
        for i in range(s0, start[c + 1]):
            if i + AHEAD < n:
                ENGAGE_PREFETCH(&slots[hbuf[i + AHEAD] & <uint64_t>m])
            if v != NULL and not v[i - s0]:
                out[i] = -1
                continue
            h = hbuf[i]
            t = tag_of(h)
            s = <int64_t>(h & <uint64_t>m)
            while True:
                if slots[s].id == -1:
                    r = ix._lookup(h, value_at(offs[c], data[c], wide, i - s0),
                                   length_at(offs[c], wide, i - s0))
                    if r < 0:
                        free(hbuf)
                        return -1
                    slots, m = ix.slots, ix.cap - 1  # (the table may have grown)
                    break
                if slots[s].tag == t:
                    r = slots[s].id
                    break
                s = (s + 1) & m
            out[i] = r
    width = ix.width
    for th in prange(nthreads, num_threads=nthreads, schedule="static"):
        rw = thread_rows(start, n, th, nthreads)
        while next_piece(&rw, start):
            a, e, c = rw.lo, rw.hi, rw.chunk
            s0 = start[c]
            for i in range(a, e):
                # every value of one width (UUIDs, say): value r is at r * width, so the
                # prefetch needs no read of id_off
                if width >= 0:
                    if i + AHEAD < e:
                        ENGAGE_PREFETCH(ix.arena + <int64_t>out[i + AHEAD] * width)
                else:
                    if i + 2 * AHEAD < e and out[i + 2 * AHEAD] >= 0:
                        ENGAGE_PREFETCH(&ix.id_off[out[i + 2 * AHEAD]])
                    if i + AHEAD < e and out[i + AHEAD] >= 0:
                        ENGAGE_PREFETCH(ix.arena + ix.id_off[out[i + AHEAD]])
                r = out[i]
                if r < 0:
                    continue
                base = value_at(offs[c], data[c], wide, i - s0)
                ln = length_at(offs[c], wide, i - s0)
                lo = <int64_t>r * width if width >= 0 else ix.id_off[r]
                if ((width if width >= 0 else ix.id_off[r + 1] - lo) != ln
                        or not same_bytes(ix.arena + lo, base, ln)):
                    out[i] = -3
                    bad += 1
    if bad:
        for c in range(start.shape[0] - 1):
            for i in range(start[c], start[c + 1]):
                if out[i] == -3:  # (hbuf still holds the row's hash)
                    r = ix._lookup(hbuf[i], value_at(offs[c], data[c], wide, i - start[c]),
                                   length_at(offs[c], wide, i - start[c]))
                    if r < 0:
                        free(hbuf)
                        return -1
                    out[i] = r
    free(hbuf)
    return 0
