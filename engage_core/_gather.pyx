# Parallel gathers and tallies over whole columns, where numpy's run on one thread: values
# at positions (also across a table's chunks), the positions of a mask, a table's chunks
# joined, counts and exact sums per index.
#
# Arrays arrive as typed memoryviews over numpy / Arrow buffers; nothing here links
# against libarrow.
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, intptr_t, uint8_t, uint64_t
from libc.math cimport fabs, floor
from libc.string cimport memcpy

from engage_core._columns cimport Int64Chunks
from engage_core._hash cimport chunk_at

import numpy as np


cdef extern from *:
    """
    #include <stdint.h>
    #include "_simd.h"
    /* values[sel[i] + shift] for int32 positions, branch-free (a position outside the m
       values reads values[0] and is counted) so that the loop compiles to vector gathers
       where the CPU has them; returns how many positions were outside. m >= 1. */
    #define ENGAGE_TAKE32(NAME, OUT_T, VAL_T) \
        ENGAGE_V3_V4_CLONES static int64_t NAME(const int32_t* sel, int64_t n, \
                                                const VAL_T* values, int64_t m, \
                                                int64_t shift, OUT_T* out) { \
            int64_t bad = 0; \
            for (int64_t i = 0; i < n; i++) { \
                int64_t k = (int64_t)sel[i] + shift; \
                int ok = (uint64_t)k < (uint64_t)m; \
                out[i] = (OUT_T)values[ok ? k : 0]; \
                bad += !ok; \
            } \
            return bad; \
        }
    ENGAGE_TAKE32(engage_take32_u8, uint8_t, int32_t)
    ENGAGE_TAKE32(engage_take32_i32, int32_t, int32_t)
    ENGAGE_TAKE32(engage_take32_i64, int64_t, int64_t)
    ENGAGE_TAKE32(engage_take32_f64, double, double)
    """
    int ctz64 "__builtin_ctzll"(unsigned long long) noexcept nogil
    int64_t take32_u8 "engage_take32_u8"(const int32_t* sel, int64_t n, const int32_t* values,
                                         int64_t m, int64_t shift, uint8_t* out) noexcept nogil
    int64_t take32_i32 "engage_take32_i32"(const int32_t* sel, int64_t n, const int32_t* values,
                                           int64_t m, int64_t shift, int32_t* out) noexcept nogil
    int64_t take32_i64 "engage_take32_i64"(const int32_t* sel, int64_t n, const int64_t* values,
                                           int64_t m, int64_t shift, int64_t* out) noexcept nogil
    int64_t take32_f64 "engage_take32_f64"(const int32_t* sel, int64_t n, const double* values,
                                           int64_t m, int64_t shift, double* out) noexcept nogil

# byte values up to this many are widened to int32 for take's vector gathers
DEF SMALL_BYTES = 1 << 16


ctypedef fused take_t:
    uint8_t
    int32_t
    int64_t
    double

ctypedef fused pos_t:
    int32_t
    int64_t


def take(const pos_t[::1] sel, const take_t[::1] values, int nthreads=1, int64_t shift=0):
    """``values[sel + shift]`` (positions in ``values``, or codes into a small table of
    values: event masks, each row's period, weights by event), split between threads
    (numpy's gather runs on one thread: an event mask or each row's period over 10M rows
    took 15-20 ms there). Raises IndexError for a position outside ``values``.

    int32 positions take a branch-free loop built per CPU level (vector gathers: an event
    mask over 10M rows in 7 ms instead of 17 on one thread)."""
    cdef int64_t n = sel.shape[0], m = values.shape[0], i, k, a, b
    cdef int64_t bad = 0
    cdef int th
    cdef const int32_t[::1] wide
    out_array = np.empty(n, dtype=np.uint8 if take_t is uint8_t else np.int32
                         if take_t is int32_t else np.int64 if take_t is int64_t else np.float64)
    cdef take_t[::1] out = out_array
    if n and pos_t is int32_t and m and (take_t is not uint8_t or m <= SMALL_BYTES):
        if take_t is uint8_t:
            wide = np.asarray(values).astype(np.int32)
        with nogil:
            for th in prange(nthreads, num_threads=nthreads, schedule="static"):
                a = n * th // nthreads
                b = n * (th + 1) // nthreads
                if a < b:
                    if take_t is uint8_t:
                        bad += take32_u8(<const int32_t*>&sel[a], b - a, &wide[0], m, shift, &out[a])
                    elif take_t is int32_t:
                        bad += take32_i32(<const int32_t*>&sel[a], b - a, &values[0], m, shift, &out[a])
                    elif take_t is int64_t:
                        bad += take32_i64(<const int32_t*>&sel[a], b - a, &values[0], m, shift, &out[a])
                    else:
                        bad += take32_f64(<const int32_t*>&sel[a], b - a, &values[0], m, shift, &out[a])
    else:
        with nogil:
            for i in prange(n, num_threads=nthreads, schedule="static"):
                k = sel[i] + shift
                if <uint64_t>k < <uint64_t>m:
                    out[i] = values[k]
                else:
                    out[i] = 0
                    bad += 1
    if bad:
        raise IndexError(f"take: {bad} positions outside the {m} values")
    return out_array


def take_chunks(const int64_t[::1] sel, Int64Chunks col, int nthreads=1):
    """The values of ``col`` (its validity not read) at the ascending rows ``sel``, split
    between threads: each thread finds the chunk of its first row, then walks forward."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = sel.shape[0], nrows = col.n, i, a, b, c, r
    cdef int th
    cdef int64_t bad = 0
    out_array = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] out = out_array
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            a = n * th // nthreads
            b = n * (th + 1) // nthreads
            c = chunk_at(start, sel[a]) if a < b and 0 <= sel[a] < nrows else 0
            for i in range(a, b):
                r = sel[i]
                if r < start[c] or r >= nrows:  # not ascending, or outside the rows
                    out[i] = 0
                    bad += 1
                    continue
                while r >= start[c + 1]:
                    c = c + 1
                out[i] = (<const int64_t*><intptr_t>data[c])[r - start[c]]
    if bad:
        raise IndexError(f"take_chunks: {bad} rows not ascending or outside the {nrows} rows")
    return out_array


def counts(const pos_t[::1] index, int64_t size, weights=None, int nthreads=1):
    """Per index in ``[0, size)``: how many entries hold it (``weights`` None: int64) or the
    sum of their ``weights`` (float64; only for sums exact in any order, such as whole
    numbers under 2**53 in total: the caller checks, _common.adds_exactly). Split between
    threads, each with a table of ``size`` (np.bincount runs on one thread: the pipeline
    counts millions of runs into a few hundred cells, about 10 ms there). Raises
    IndexError for an index outside ``[0, size)``."""
    cdef int64_t n = index.shape[0], i, k
    cdef int64_t bad = 0
    cdef bint weighted = weights is not None
    cdef const double[::1] w = weights if weighted else np.zeros(1)
    cdef int T = nthreads if n >= 1 << 16 else 1
    cdef int th
    cdef int64_t[:, ::1] c = np.zeros((T, max(size, 1) + 8), dtype=np.int64)  # 8: no line shared
    cdef double[:, ::1] s = np.zeros((T if weighted else 1, max(size, 1) + 8))
    if weighted and w.shape[0] != n:
        raise ValueError(f"counts: {n} indexes but {w.shape[0]} weights")
    with nogil:
        for th in prange(T, num_threads=T, schedule="static"):
            for i in range(n * th // T, n * (th + 1) // T):
                k = index[i]
                if <uint64_t>k >= <uint64_t>size:
                    bad += 1
                elif weighted:
                    s[th, k] += w[i]
                else:
                    c[th, k] += 1
    if bad:
        raise IndexError(f"counts: {bad} indexes outside [0, {size})")
    if weighted:
        return np.asarray(s)[:, :size].sum(axis=0)
    return np.asarray(c)[:, :size].sum(axis=0)


def whole_max(const double[::1] values, int nthreads=1):
    """``(whether every value is a whole number, the largest magnitude)`` in one pass split
    between threads (a NaN is not whole, an infinity is): what _common.adds_exactly asks of
    a million sums, where numpy's rint, compare, abs and max made four passes on one thread
    (the pipeline's tallies: 5 ms)."""
    cdef int64_t n = values.shape[0], i
    cdef int T = nthreads if n >= 1 << 16 else 1
    cdef int th
    cdef int64_t frac = 0
    cdef double x, m
    cdef double[::1] top = np.zeros(8 * T)  # each thread's largest, a line apart
    with nogil:
        for th in prange(T, num_threads=T, schedule="static"):
            m = 0.0
            for i in range(n * th // T, n * (th + 1) // T):
                x = fabs(values[i])
                frac += x != floor(x)  # NaN != NaN
                m = x if x > m else m
            top[8 * th] = m
    return frac == 0, float(np.max(np.asarray(top))) if n else 0.0


def tiers(const double[::1] score, const double[::1] thresholds, int nthreads=1, cell=None):
    """Each score's tier (int64): how many of the ``thresholds`` (non-increasing) lie above
    it, so the first tier it reaches comes after those; a NaN reaches none
    (``len(thresholds)``). With ``cell`` (int32 or int64, one per score), each score's
    tally cell instead: ``cell * (len(thresholds) + 1) + tier``. One pass split between
    threads (numpy's compare and add per threshold, then the cells, on one thread: 10 ms
    of a pipeline's engagement score)."""
    cdef int64_t n = score.shape[0], i
    cdef int64_t n_th = thresholds.shape[0], j, c
    cdef int T = nthreads if n >= 1 << 16 else 1
    cdef bint has_cell = cell is not None
    cdef bint wide = has_cell and cell.dtype == np.int64
    cdef const int32_t[::1] c32 = cell if has_cell and not wide else np.zeros(1, np.int32)
    cdef const int64_t[::1] c64 = cell if wide else np.zeros(1, np.int64)
    cdef double x
    if has_cell and (c64.shape[0] if wide else c32.shape[0]) != n:
        raise ValueError(f"tiers: {n} scores but {len(cell)} cells")
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    with nogil:
        for i in prange(n, num_threads=T, schedule="static"):
            x = score[i]
            c = 0
            for j in range(n_th):
                c = c + (thresholds[j] > x)
            c = n_th if x != x else c
            if has_cell:
                c = (c64[i] if wide else c32[i]) * (n_th + 1) + c
            o[i] = c
    return out


def any_nonzero(const uint8_t[::1] mask):
    """Whether any byte of ``mask`` is not 0, reading 8 bytes at a time and stopping at the
    first (np.any reads every byte: an event filter's mask of 10M rows, 1-2 ms a metric,
    while most masks select a row within their first bytes)."""
    cdef int64_t n = mask.shape[0], i = 0
    cdef const uint8_t* p = &mask[0] if n else NULL
    cdef uint64_t w
    cdef bint found = False
    with nogil:
        while i + 8 <= n:
            memcpy(&w, p + i, 8)
            if w:
                found = True
                break
            i += 8
        while not found and i < n:
            found = p[i] != 0
            i += 1
    return found


def flatnonzero(const uint8_t[::1] mask, int nthreads=1):
    """The positions (int64, ascending) where ``mask`` (uint8 or bool viewed as uint8) is
    not 0, as np.flatnonzero, by all threads: each counts its range, then writes its
    positions after the earlier ranges', 64 rows at a time through a bit mask (a branch per
    position found, not per row; numpy's runs on one thread: 10M rows, 4 ms)."""
    cdef int64_t n = mask.shape[0], i, a, b, k, j, hi
    cdef int T = nthreads if n >= 1 << 18 else 1
    cdef int th
    cdef uint64_t bits
    cdef int64_t[::1] at = np.zeros(T + 1, dtype=np.int64)
    with nogil:
        for th in prange(T, num_threads=T, schedule="static"):
            k = 0
            for i in range(_block_start(n, th, T), _block_start(n, th + 1, T)):
                k = k + (mask[i] != 0)
            at[th + 1] = k
        for th in range(T):
            at[th + 1] += at[th]
    out_array = np.empty(at[T], dtype=np.int64)
    cdef int64_t[::1] out = out_array
    if at[T] == 0:
        return out_array
    with nogil:
        for th in prange(T, num_threads=T, schedule="static"):
            k = at[th]
            a = _block_start(n, th, T)
            b = _block_start(n, th + 1, T)
            i = a
            while i < b:
                hi = min(i + 64, b)
                bits = 0
                for j in range(i, hi):
                    bits = bits | (<uint64_t>(mask[j] != 0) << (j - i))
                while bits:
                    out[k] = i + ctz64(bits)
                    k = k + 1
                    bits = bits & (bits - 1)
                i = hi
    return out_array


cdef inline int64_t _block_start(int64_t n, int t, int T) noexcept nogil:
    """Where thread ``t`` of ``T`` starts on ``n`` rows: a multiple of 64 (n for t = T)."""
    return n if t >= T else (n * t // T) & ~(<int64_t>63)


def join(Int64Chunks col, int nthreads=1):
    """The values of ``col``'s chunks in one int64 array (validity not read), each thread
    copying its range of rows (np.concatenate copies on one thread: 10M times, 4 ms)."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = col.n, a, b, c, hi
    cdef int th
    cdef int T = nthreads if n >= 1 << 18 else 1
    out_array = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] out = out_array
    if n == 0:
        return out_array
    with nogil:
        for th in prange(T, num_threads=T, schedule="static"):
            a = n * th // T
            b = n * (th + 1) // T
            c = chunk_at(start, a) if a < b else 0
            while a < b:
                hi = min(b, start[c + 1])
                memcpy(&out[a], (<const int64_t*><intptr_t>data[c]) + (a - start[c]),
                       (hi - a) * sizeof(int64_t))
                a = hi
                c = c + 1
    return out_array


def shifted(const int32_t[::1] values, int64_t shift, int nthreads=1):
    """``values + shift`` as int32 (each day as an offset from the first), by all threads
    (numpy's subtraction runs on one: 10M days, 5 ms)."""
    cdef int64_t n = values.shape[0], i
    cdef int T = nthreads if n >= 1 << 18 else 1
    out_array = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] out = out_array
    with nogil:
        for i in prange(n, num_threads=T, schedule="static"):
            out[i] = <int32_t>(values[i] + shift)
    return out_array
