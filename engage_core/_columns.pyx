# Column kernels: local days of timestamps, min / max, and dense ids for integer keys
# packed in a narrow range (numbered by first appearance, built in parallel).
#
# Arrays arrive as typed memoryviews over numpy / Arrow buffers; nothing here links
# against libarrow.
from cython.parallel cimport prange
from libc.stdint cimport (INT64_MAX, INT64_MIN, int16_t, int32_t, int64_t, intptr_t, uint8_t,
                          uint64_t)

from engage_core._hash cimport RowWalk, next_piece, thread_rows, touch_pages

import numpy as np


cdef extern from *:
    """
    #include "_days.h"
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))

    /* chunks_minmax's rows without nulls: least and greatest value (vectorised) */
    ENGAGE_V3_V4_CLONES
    static void engage_minmax(const int64_t* p, int64_t n, int64_t* mn, int64_t* mx) {
        int64_t a = *mn, b = *mx;
        for (int64_t i = 0; i < n; i++) {
            a = p[i] < a ? p[i] : a;
            b = p[i] > b ? p[i] : b;
        }
        *mn = a;
        *mx = b;
    }

    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    const int64_t US_PER_DAY "ENGAGE_US_PER_DAY"
    void minmax_values "engage_minmax"(const int64_t* p, int64_t n, int64_t* mn,
                                       int64_t* mx) noexcept nogil
    int x86_level "engage_x86_level"() noexcept nogil
    void fixed_days "engage_fixed_days"(int level, const int64_t* ts, int64_t n, int64_t off,
                                        int64_t lo_us, int64_t hi_us, int32_t* out,
                                        int64_t* outside, int32_t* dmin,
                                        int32_t* dmax) noexcept nogil


# the x86-64 level of the kernels built per level (_days.h): 4, 3 or 0
SIMD_LEVEL = x86_level()


# rows between a table entry's prefetch and its read
DEF AHEAD = 16
# first_ids' rows: its count of keys waits on each row's entry
DEF NUMBER_AHEAD = 128


cdef class Int64Chunks:
    """int64 arrays (each with a uint8 validity array, or None: all valid) read by the
    kernels below as one column: each thread takes a contiguous range of the rows wherever
    the chunks end, so a table of many record batches costs one parallel pass, not one per
    batch (a parallel region costs tens of microseconds to start here). Its fields are
    declared in _columns.pxd, for the kernels of other modules."""

    def __init__(self, arrays, valids=None):
        cdef const int64_t[::1] mv
        cdef const uint8_t[::1] vv
        cdef int64_t k
        valids = [None] * len(arrays) if valids is None else list(valids)
        kept = [(np.ascontiguousarray(a, dtype=np.int64),
                 None if v is None else np.ascontiguousarray(v, dtype=np.uint8))
                for a, v in zip(arrays, valids) if len(a)]
        self.arrays = kept  # the buffers stay alive as long as this object
        self.data = np.zeros(max(len(kept), 1), dtype=np.int64)
        self.valid = np.zeros(max(len(kept), 1), dtype=np.int64)
        self.start = np.zeros(len(kept) + 1, dtype=np.int64)
        for k in range(len(kept)):
            mv = kept[k][0]
            self.data[k] = <int64_t><intptr_t>&mv[0]
            if kept[k][1] is not None:
                vv = kept[k][1]
                self.valid[k] = <int64_t><intptr_t>&vv[0]
            self.start[k + 1] = self.start[k] + mv.shape[0]
        self.n = self.start[len(kept)]
        self.all_valid = all(v is None for _, v in kept)

    def __len__(self):
        return self.n


def as_chunks(values, valid=None):
    """``values`` as Int64Chunks (an int64 array, with its validity, is one chunk)."""
    return values if isinstance(values, Int64Chunks) else Int64Chunks([values], [valid])


def local_days(ts, int64_t lo_day, const int64_t[::1] off_before, const int64_t[::1] trans_sec,
               const int64_t[::1] off_after, int nthreads, out_array=None, int64_t n_days=-1,
               level=None):
    """Local day numbers (days since 1970-01-01 in the zone) of UTC microsecond instants
    (an int64 array or Int64Chunks, every value valid).

    The zone is given per UTC day ``lo_day + k``: its UTC offset in seconds before
    ``trans_sec[k]`` seconds into that day, and ``off_after[k]`` from then on (a day without
    a transition has ``trans_sec[k] = 86400``). The table covers ``n_days`` UTC days (default:
    one per entry); a one-entry table of a zone without transitions may cover any number of
    days (its one offset holds on all of them). Returns the days (written to ``out_array``
    when given), how many instants fall outside the table's UTC days (their day is not
    computed: the caller widens the table and redoes), and the least and greatest day of
    each thread's rows (``thread_rows``; int32 arrays, 2**31 - 1 and -2**31 for a thread
    without rows; meaningful when none is outside). A zone with one offset runs the
    vectorised kernel built for ``SIMD_LEVEL``, or for ``level`` if lower (tests run each).

    One division per row (by a constant: a multiply): the UTC day and the time into it;
    an offset under a day moves the local day by at most one either way.
    """
    cdef Int64Chunks col = as_chunks(ts)
    cdef int64_t n = col.n, k, n_tab = trans_sec.shape[0]
    cdef int32_t[::1] out = np.empty(n, dtype=np.int32) if out_array is None else out_array
    cdef int64_t[::1] trans_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t[::1] before_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t[::1] after_us = np.empty(max(n_tab, 1), dtype=np.int64)
    cdef int64_t[::1] outside = np.zeros(nthreads, dtype=np.int64)
    cdef int32_t[::1] day_lo = np.full(nthreads, 2**31 - 1, dtype=np.int32)
    cdef int32_t[::1] day_hi = np.full(nthreads, -2**31, dtype=np.int32)
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] start = col.start
    cdef int64_t a, b, c, i, e, s0, t, ud, rem, x, off, lo_us, hi_us, cnt
    cdef int32_t d, dmin, dmax
    cdef const int64_t* p
    cdef int th
    cdef RowWalk rw
    cdef bint fixed = False
    cdef int lv = SIMD_LEVEL if level is None else min(int(level), SIMD_LEVEL)
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
    off = before_us[0]
    lo_us = lo_day * US_PER_DAY
    if n_days < 0 or not (fixed and n_tab == 1):
        n_days = n_tab
    hi_us = (lo_day + n_days) * US_PER_DAY
    with nogil:
        if n and out_array is None:
            touch_pages(&out[0], n * sizeof(int32_t), nthreads)
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            cnt = 0
            dmin = 2147483647
            dmax = -2147483647 - 1
            while next_piece(&rw, start):
                a, e, c = rw.lo, rw.hi, rw.chunk
                p = <const int64_t*><intptr_t>data[c]
                s0 = start[c]
                if fixed:
                    fixed_days(lv, p + (a - s0), e - a, off, lo_us, hi_us, &out[0] + a, &cnt,
                               &dmin, &dmax)
                else:
                    for i in range(a, e):
                        t = p[i - s0]
                        ud = t // US_PER_DAY
                        rem = t - ud * US_PER_DAY
                        if rem < 0:
                            ud = ud - 1
                            rem = rem + US_PER_DAY
                        k = ud - lo_day
                        if k < 0 or k >= n_tab:
                            out[i] = 0
                            cnt = cnt + 1
                            continue
                        x = rem + (before_us[k] if rem < trans_us[k] else after_us[k])
                        d = <int32_t>(ud + (x >= US_PER_DAY) - (x < 0))
                        out[i] = d
                        dmin = min(dmin, d)
                        dmax = max(dmax, d)
            outside[th] = cnt
            day_lo[th] = dmin
            day_hi[th] = dmax
    return np.asarray(out), int(np.asarray(outside).sum()), np.asarray(day_lo), np.asarray(day_hi)


def chunks_minmax(Int64Chunks col, int nthreads=1):
    """(min, max) of the valid values of ``col``; (None, None) when there is none."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] vdata = col.valid
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = col.n, a, b, c, e, s0, i, mn, mx, cnt
    cdef int64_t[::1] lo = np.full(nthreads, INT64_MAX, dtype=np.int64)
    cdef int64_t[::1] hi = np.full(nthreads, INT64_MIN, dtype=np.int64)
    cdef int64_t[::1] count = np.zeros(nthreads, dtype=np.int64)
    cdef const int64_t* p
    cdef const uint8_t* v
    cdef int th
    cdef RowWalk rw
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            mn = INT64_MAX
            mx = INT64_MIN
            cnt = 0
            while next_piece(&rw, start):
                a, e, c = rw.lo, rw.hi, rw.chunk
                p = <const int64_t*><intptr_t>data[c]
                v = <const uint8_t*><intptr_t>vdata[c]
                s0 = start[c]
                if v == NULL:
                    minmax_values(p + (a - s0), e - a, &mn, &mx)
                    cnt = cnt + (e - a)
                else:
                    for i in range(a - s0, e - s0):
                        if v[i]:
                            mn = min(mn, p[i])
                            mx = max(mx, p[i])
                            cnt = cnt + 1
            lo[th] = mn
            hi[th] = mx
            count[th] = cnt
    if sum(count) == 0:
        return None, None
    return int(min(lo)), int(max(hi))


def first_ids(Int64Chunks col, int64_t lo, int64_t span, int32_t[::1] table, int nthreads=1,
              out_array=None, bint slots=False):
    """Number the keys of ``col`` (as ``key - lo``, all in ``[0, span)``) 0, 1, 2, ... in
    order of first appearance: ``table[key - lo]`` (-1 for every key on entry) gets each
    key's number. Returns the keys (as ``key - lo``) in number order; with ``out_array``
    (int32, one per row) each row's number is written there too (-1 for a null).

    All in parallel, the same for any thread count: each thread takes a contiguous range of
    rows and numbers the keys new to its range 0, 1, 2, ... in a table of its own (thread
    0's is ``table``: its numbers are final), writing each row's number. Then, thread by
    thread, the keys of each later thread's list are renumbered: a key ``table`` holds
    already (an earlier thread's) keeps that number, the others take the next numbers in
    list order (the list split between threads); then the later threads' rows are
    renumbered, split between threads. Each row's key is looked up once (10M rows, 2
    threads: 22 + 13 ms when the rows were read again to look their numbers up).

    With ``slots``, ``out_array`` already holds every row's ``key - lo`` (no null:
    RangeIndex.deferred wrote them) and the rows are numbered in place from there: 4 bytes
    a row to read instead of 8 (``col`` gives only the row count)."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] vdata = col.valid
    cdef const int64_t[::1] start = col.start if not slots else np.array([0, col.n])
    cdef int64_t n = col.n, a, c, e, s0, i, r, cnt, cap, k, base, m, part, qe, total
    cdef bint write = out_array is not None
    cdef int32_t[::1] out = out_array if write else np.empty(1, dtype=np.int32)
    if slots and (not write or out.shape[0] != col.n):
        raise ValueError("first_ids: slots are read from out_array, one per row")
    cdef int32_t v, isnew
    cdef int64_t[::1] listed = np.zeros(nthreads, dtype=np.int64)
    cdef int64_t[::1] fresh_at = np.zeros(nthreads + 1, dtype=np.int64)
    cdef int64_t[::1] part_new = np.zeros(nthreads + 1, dtype=np.int64)
    cdef const int64_t* p
    cdef const uint8_t* vv
    cdef int32_t* tp
    cdef int32_t* rm
    cdef int th, q
    cdef RowWalk rw
    cap = min((n + nthreads - 1) // nthreads, span) + 1  # + 1: the branch-free store below
    cdef int32_t[:, ::1] lists = np.empty((nthreads, max(cap, 1)), dtype=np.int32)
    # the later threads' own tables, and their keys' final numbers by their own numbers
    cdef int32_t[:, ::1] local = np.full((max(nthreads - 1, 1), span if nthreads > 1 else 1),
                                         -1, dtype=np.int32)
    cdef int32_t[:, ::1] remap = np.empty((max(nthreads - 1, 1), max(cap, 1)), dtype=np.int32)
    with nogil:
        if write and n and not slots:
            touch_pages(&out[0], n * sizeof(int32_t), nthreads)
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            tp = &table[0] if th == 0 else &local[th - 1, 0]
            rw = thread_rows(start, n, th, nthreads)
            cnt = 0
            if slots:  # one chunk: the slots, numbered in place
                a, e = rw.lo, rw.end
                for i in range(a, e):
                    if i + NUMBER_AHEAD < e:
                        ENGAGE_PREFETCH(tp + out[i + NUMBER_AHEAD])
                    r = out[i]
                    v = tp[r]
                    isnew = v >> 31
                    v = (v & ~isnew) | (<int32_t>cnt & isnew)
                    tp[r] = v
                    lists[th, cnt] = <int32_t>r
                    cnt = cnt - isnew
                    out[i] = v
                rw.hi = rw.end  # no piece left to walk
            while next_piece(&rw, start):
                a, e, c = rw.lo, rw.hi, rw.chunk
                p = <const int64_t*><intptr_t>data[c]
                vv = <const uint8_t*><intptr_t>vdata[c]
                s0 = start[c]
                for i in range(a - s0, e - s0):
                    if i + NUMBER_AHEAD < e - s0:
                        ENGAGE_PREFETCH(tp + (p[i + NUMBER_AHEAD] - lo))
                    if vv != NULL and not vv[i]:
                        if write:
                            out[i + s0] = -1
                        continue
                    # no branch on "new or not" (a new key every few rows mispredicts):
                    # the number and the key are always stored, the count moves when new
                    r = p[i] - lo
                    v = tp[r]
                    isnew = v >> 31  # -1 when new (bit masks: a ternary became a branch)
                    v = (v & ~isnew) | (<int32_t>cnt & isnew)
                    tp[r] = v
                    lists[th, cnt] = <int32_t>r
                    cnt = cnt - isnew
                    if write:
                        out[i + s0] = v
            listed[th] = cnt
    # the keys in number order: thread 0's list, then each later thread's new keys
    cdef int32_t[::1] keys = np.empty(max(np.asarray(listed).sum(), 1), dtype=np.int32)
    keys[:listed[0]] = lists[0, :listed[0]]
    fresh_at[1] = listed[0]
    for th in range(1, nthreads):
        # thread th's keys: known ones take their number, new ones the next in list order,
        # the list split in nthreads parts (count the new, then number them)
        m = listed[th]
        with nogil:
            for q in prange(nthreads, num_threads=nthreads, schedule="static"):
                k = 0
                for i in range(m * q // nthreads, m * (q + 1) // nthreads):
                    v = table[lists[th, i]]
                    remap[th - 1, i] = v
                    k = k + (v < 0)
                part_new[q + 1] = k
        for q in range(nthreads):
            part_new[q + 1] += part_new[q]
        total = fresh_at[th]
        with nogil:
            for q in prange(nthreads, num_threads=nthreads, schedule="static"):
                base = total + part_new[q]
                for i in range(m * q // nthreads, m * (q + 1) // nthreads):
                    if remap[th - 1, i] < 0:
                        r = lists[th, i]
                        remap[th - 1, i] = <int32_t>base
                        table[r] = <int32_t>base
                        keys[base] = <int32_t>r
                        base = base + 1
        fresh_at[th + 1] = total + part_new[nthreads]
    if write and nthreads > 1:
        # the later threads' rows: own numbers to final ones, split between threads
        m = n // nthreads  # thread 0's rows end here (thread_rows)
        with nogil:
            for q in prange(nthreads, num_threads=nthreads, schedule="static"):
                a = m + (n - m) * q // nthreads
                e = m + (n - m) * (q + 1) // nthreads
                th = 1
                while n * (th + 1) // nthreads <= a and th < nthreads - 1:
                    th = th + 1
                while a < e:
                    qe = min(e, n * (th + 1) // nthreads)
                    rm = &remap[th - 1, 0]
                    for i in range(a, qe):
                        v = out[i]
                        if v >= 0:
                            out[i] = rm[v]
                    a = qe
                    th = th + 1
    return np.asarray(keys)[:fresh_at[nthreads]].copy()


def gather_ids(keys, int64_t lo, const int32_t[::1] table, int nthreads=1, out_array=None):
    """``table[key - lo]`` for every valid key of ``keys`` (Int64Chunks, or an int64 array:
    all valid), -1 for the others (int32; written to ``out_array`` when given)."""
    cdef Int64Chunks col = as_chunks(keys)
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] vdata = col.valid
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = col.n, a, b, c, e, s0, i
    cdef int32_t[::1] out = np.empty(n, dtype=np.int32) if out_array is None else out_array
    cdef const int64_t* p
    cdef const uint8_t* v
    cdef int th
    cdef RowWalk rw
    with nogil:
        if n and out_array is None:
            touch_pages(&out[0], n * sizeof(int32_t), nthreads)
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            while next_piece(&rw, start):
                a, e, c = rw.lo, rw.hi, rw.chunk
                p = <const int64_t*><intptr_t>data[c]
                v = <const uint8_t*><intptr_t>vdata[c]
                s0 = start[c]
                for i in range(a, e):
                    if i + AHEAD < e:
                        ENGAGE_PREFETCH(&table[p[i + AHEAD - s0] - lo])
                    if v == NULL or v[i - s0]:
                        out[i] = table[p[i - s0] - lo]
                    else:
                        out[i] = -1
    return np.asarray(out)


def touched(array, int nthreads=1):
    """``array`` (contiguous, fresh from np.empty or np.zeros) with its pages faulted in,
    by ``nthreads`` threads: parallel kernels then write it without faulting from several
    threads at once (see _hash.touch_pages)."""
    cdef uint8_t[::1] raw = array.reshape(-1).view(np.uint8)
    if raw.shape[0]:
        with nogil:
            touch_pages(&raw[0], raw.shape[0], nthreads)
    return array


def key_offsets(Int64Chunks col, int64_t lo, int32_t[::1] out, int nthreads=1):
    """``key - lo`` of every key of ``col`` (all valid, every offset under 2**31) into
    ``out``: each row's slot in a RangeIndex's key range, for the metrics that only count
    users (day bitmaps) while the ids are not numbered yet."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = col.n, a, c, e, s0, i
    cdef const int64_t* p
    cdef int th
    cdef RowWalk rw
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            while next_piece(&rw, start):
                a, e, c = rw.lo, rw.hi, rw.chunk
                p = <const int64_t*><intptr_t>data[c]
                s0 = start[c]
                for i in range(a, e):
                    out[i] = <int32_t>(p[i - s0] - lo)
    return np.asarray(out)



def to_us(Int64Chunks col, int64_t scale, us_out=None, rem_out=None, int nthreads=1):
    """Timestamps (every chunk of ``col``) as microseconds, one entry per row of all the
    chunks, in one parallel pass. ``scale`` 0: nanoseconds, cut at the microsecond:
    ``us_out`` (int64) gets each value floored (-1 ns is -1 us and 999 ns), ``rem_out``
    (int16) the nanoseconds below, either may be None (numpy's ``// 1000`` and ``% 1000``).
    ``scale`` 10**6 or 10**3: seconds or milliseconds times ``scale`` into ``us_out``
    (numpy's ``raw * scale``; slots of nulls get it wrapped). numpy runs on one thread.
    Returns False, ``us_out`` partly written, when a valid value's microseconds are out
    of the int64 range (never for nanoseconds)."""
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] vdata = col.valid
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = col.n, i, s0, v, q, r
    cdef int64_t limit = INT64_MAX // scale if scale > 0 else INT64_MAX
    cdef bint want_us = us_out is not None, want_rem = rem_out is not None
    cdef int64_t[::1] us = us_out if want_us else np.empty(1, dtype=np.int64)
    cdef int16_t[::1] rem = rem_out if want_rem else np.empty(1, dtype=np.int16)
    cdef const int64_t* p
    cdef const uint8_t* vv
    cdef int th
    cdef int bad = 0
    cdef RowWalk rw
    if (want_us and us.shape[0] != n) or (want_rem and rem.shape[0] != n):
        raise ValueError("to_us: the outputs need one entry per row")
    if scale < 0 or (scale > 0 and (want_rem or not want_us)):
        raise ValueError("to_us: seconds or milliseconds go to us_out only")
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            while next_piece(&rw, start):
                p = <const int64_t*><intptr_t>data[rw.chunk]
                vv = <const uint8_t*><intptr_t>vdata[rw.chunk]
                s0 = start[rw.chunk]
                for i in range(rw.lo, rw.hi):
                    v = p[i - s0]
                    if scale > 0:
                        if (v > limit or v < -limit) and (vv == NULL or vv[i - s0]):
                            bad += 1
                        us[i] = <int64_t>(<uint64_t>v * <uint64_t>scale)
                        continue
                    q = v / 1000  # C division truncates toward zero: floored below
                    r = v - q * 1000
                    if r < 0:
                        q = q - 1
                        r = r + 1000
                    if want_us:
                        us[i] = q
                    if want_rem:
                        rem[i] = <int16_t>r
    return bad == 0
