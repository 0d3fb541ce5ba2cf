# Column kernels: local days of timestamps, min / max, and dense ids for integer keys
# packed in a narrow range (numbered by first appearance, built in parallel).
#
# Arrays arrive as typed memoryviews over numpy / Arrow buffers; nothing here links
# against libarrow.
from cython.parallel cimport prange
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint64_t

from engage_core._hash cimport touch_pages

import numpy as np


cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #define ENGAGE_US_PER_DAY 86400000000LL
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    const int64_t US_PER_DAY "ENGAGE_US_PER_DAY"


# rows between a table entry's prefetch and its read
DEF AHEAD = 16


def local_days(const int64_t[::1] ts_us, const uint8_t[::1] valid, bint all_valid,
               int64_t lo_day, const int64_t[::1] off_before, const int64_t[::1] trans_sec,
               const int64_t[::1] off_after, int nthreads, out_array=None):
    """Local day numbers (days since 1970-01-01 in the zone) of UTC microsecond instants.

    The zone is given per UTC day ``lo_day + k``: its UTC offset in seconds before
    ``trans_sec[k]`` seconds into that day, and ``off_after[k]`` from then on (a day without
    a transition has ``trans_sec[k] = 86400``). Rows not valid get day 0. Returns the days
    (written to ``out_array`` when given) and how many valid instants fall outside the
    table's UTC days (their day is not computed: the caller widens the table and redoes).

    One division per row (by a constant: a multiply): the UTC day and the time into it;
    an offset under a day moves the local day by at most one either way.
    """
    cdef int64_t n = ts_us.shape[0], k, n_tab = trans_sec.shape[0], outside = 0
    cdef int32_t[::1] out = np.empty(n, dtype=np.int32) if out_array is None else out_array
    cdef int64_t[::1] trans_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t[::1] before_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t[::1] after_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t i, t, ud, off, lo_us, hi_us
    cdef bint fixed = False
    for k in range(n_tab):
        trans_us[k] = trans_sec[k] * 1000000
        before_us[k] = off_before[k] * 1000000
        after_us[k] = off_after[k] * 1000000
    for k in range(1, n_tab):
        if (before_us[k] != before_us[0] or after_us[k] != before_us[0]
                or trans_us[k] != trans_us[0]):
            break
    else:
        fixed = n_tab > 0 and after_us[0] == before_us[0]  # one offset all along: UTC, Etc/...
    with nogil:
        if n:
            touch_pages(&out[0], n * sizeof(int32_t))
        if fixed and all_valid:
            # the day of (instant + offset), and a count of instants outside the table
            off = before_us[0]
            lo_us = lo_day * US_PER_DAY
            hi_us = (lo_day + n_tab) * US_PER_DAY
            for i in prange(n, num_threads=nthreads, schedule="static"):
                t = ts_us[i]
                outside += (t < lo_us) | (t >= hi_us)
                t = t + off
                ud = t // US_PER_DAY
                out[i] = <int32_t>(ud - ((ud * US_PER_DAY) > t))
        else:
            _local_days_table(ts_us, valid, all_valid, lo_day, before_us, trans_us, after_us,
                              out, &outside, nthreads)
    return np.asarray(out), outside


cdef void _local_days_table(const int64_t[::1] ts_us, const uint8_t[::1] valid, bint all_valid,
                            int64_t lo_day, const int64_t[::1] before_us,
                            const int64_t[::1] trans_us, const int64_t[::1] after_us,
                            int32_t[::1] out, int64_t* outside_count,
                            int nthreads) noexcept nogil:
    """local_days for a zone whose offset changes: the table's offset before / after the
    change of each UTC day."""
    cdef int64_t n = ts_us.shape[0], n_tab = trans_us.shape[0], i, t, ud, rem, x, k
    cdef int64_t outside = 0
    for i in prange(n, num_threads=nthreads, schedule="static"):
        if not all_valid and not valid[i]:
            out[i] = 0
            continue
        t = ts_us[i]
        ud = t // US_PER_DAY
        rem = t - ud * US_PER_DAY
        if rem < 0:
            ud = ud - 1
            rem = rem + US_PER_DAY
        k = ud - lo_day
        if k < 0 or k >= n_tab:
            out[i] = 0
            outside += 1
            continue
        x = rem + (before_us[k] if rem < trans_us[k] else after_us[k])
        out[i] = <int32_t>(ud + (x >= US_PER_DAY) - (x < 0))
    outside_count[0] = outside


ctypedef fused minmax_t:
    int32_t
    int64_t


def minmax(const minmax_t[::1] values, valid=None, int nthreads=1):
    """(min, max) of the values (int32 or int64) where ``valid`` (uint8, or None: all) is
    set; (None, None) when there is none."""
    cdef int64_t n = values.shape[0], i, a, b, x, mn, mx, c
    cdef const uint8_t[::1] v = np.ones(1, dtype=np.uint8) if valid is None else valid
    cdef bint all_valid = valid is None
    cdef int64_t[::1] lo = np.full(nthreads, INT64_MAX, dtype=np.int64)
    cdef int64_t[::1] hi = np.full(nthreads, INT64_MIN, dtype=np.int64)
    cdef int64_t[::1] cnt = np.zeros(nthreads, dtype=np.int64)
    cdef int t
    with nogil:
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            a = n * t // nthreads
            b = n * (t + 1) // nthreads
            mn = INT64_MAX
            mx = INT64_MIN
            c = 0
            if all_valid:  # a branch-free loop the compiler vectorises
                for i in range(a, b):
                    mn = min(mn, <int64_t>values[i])
                    mx = max(mx, <int64_t>values[i])
                c = b - a
            else:
                for i in range(a, b):
                    if v[i]:
                        x = values[i]
                        mn = min(mn, x)
                        mx = max(mx, x)
                        c = c + 1
            lo[t] = mn
            hi[t] = mx
            cnt[t] = c
    if sum(cnt) == 0:
        return None, None
    return int(min(lo)), int(max(hi))


def new_keys(const int64_t[::1] keys, valid, int64_t lo, uint64_t[:, ::1] seen,
             int nthreads=1):
    """Each thread takes a contiguous range of rows and lists the keys (as ``key - lo``,
    all in ``[0, span)``) of its range that its bitset ``seen[t]`` (``span`` bits) does not
    hold yet, in order of first appearance, adding them to it; the lists are returned one
    after the other, in thread order. Called on successive chunks with the same ``seen``,
    every key's first row is listed before any later listing of it: ``assign_first`` then
    numbers keys in first-row order."""
    cdef int64_t n = keys.shape[0], i, a, b, cnt, r, cap
    cdef const uint8_t[::1] v = np.ones(1, dtype=np.uint8) if valid is None else valid
    cdef bint all_valid = valid is None
    cdef int64_t span = seen.shape[1] * 64
    cdef int64_t[::1] count = np.zeros(nthreads, dtype=np.int64)
    cdef int32_t[::1] out
    cdef int t
    cap = min((n + nthreads - 1) // nthreads, span)
    cdef int32_t[:, ::1] lists = np.empty((nthreads, max(cap, 1)), dtype=np.int32)
    with nogil:
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            a = n * t // nthreads
            b = n * (t + 1) // nthreads
            cnt = 0
            for i in range(a, b):
                if all_valid or v[i]:
                    r = keys[i] - lo
                    if not (seen[t, r >> 6] >> (r & 63)) & 1:
                        seen[t, r >> 6] |= (<uint64_t>1) << (r & 63)
                        lists[t, cnt] = <int32_t>r
                        cnt = cnt + 1
            count[t] = cnt
    out = np.empty(sum(count), dtype=np.int32)
    a = 0
    for t in range(nthreads):
        out[a:a + count[t]] = lists[t, :count[t]]
        a += count[t]
    return np.asarray(out)


def assign_first(const int32_t[::1] rels, int32_t[::1] table, int64_t next_id):
    """Give ``table[r]`` the next id for every ``r`` of ``rels`` (in order) that has none
    (-1). Returns the keys that got one, in id order (as ``r``)."""
    cdef int64_t n = rels.shape[0], i, k = 0
    cdef int32_t[::1] fresh = np.empty(n, dtype=np.int32)
    cdef int32_t r
    with nogil:
        for i in range(n):
            r = rels[i]
            if table[r] < 0:
                table[r] = <int32_t>(next_id + k)
                fresh[k] = r
                k += 1
    return np.asarray(fresh[:k])


def gather_ids(const int64_t[::1] keys, valid, int64_t lo, const int32_t[::1] table,
             int nthreads=1, out_array=None):
    """``table[key - lo]`` for every valid key, -1 for the others (int32; written to
    ``out_array`` when given)."""
    cdef int64_t n = keys.shape[0], i
    cdef int32_t[::1] out = np.empty(n, dtype=np.int32) if out_array is None else out_array
    cdef const uint8_t[::1] v = np.ones(1, dtype=np.uint8) if valid is None else valid
    cdef bint all_valid = valid is None
    with nogil:
        if n:
            touch_pages(&out[0], n * sizeof(int32_t))
        for i in prange(n, num_threads=nthreads, schedule="static"):
            if i + AHEAD < n:
                ENGAGE_PREFETCH(&table[keys[i + AHEAD] - lo])
            if all_valid or v[i]:
                out[i] = table[keys[i] - lo]
            else:
                out[i] = -1
    return np.asarray(out)


def touched(array):
    """``array`` (contiguous) with its pages faulted in by this thread: parallel kernels
    then write it without faulting from several threads at once (see _hash.touch_pages)."""
    cdef uint8_t[::1] raw = array.reshape(-1).view(np.uint8)
    if raw.shape[0]:
        with nogil:
            touch_pages(&raw[0], raw.shape[0])
    return array
