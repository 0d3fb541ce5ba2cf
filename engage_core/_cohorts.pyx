# Cohort kernels: each user's cohort-defining row, lifecycle states and first-week
# engagement (retention has its own kernels in _retention.pyx).
#
# Users are dense ids; per-user day sets come as CSR from _activity.actor_days. Counts are
# accumulated per thread and summed at the end, so results do not depend on threads.
from cython.parallel cimport prange, threadid
from libc.stdint cimport INT64_MIN, int16_t, int32_t, int64_t, intptr_t, uint8_t

from engage_core._columns cimport Int64Chunks
from engage_core._hash cimport RowWalk, actor_chunk, chunk_at, int64_at, next_piece, thread_rows, touch_pages

cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil

import numpy as np


cdef struct FirstRow:
    int64_t ts
    int32_t day     # -1: no row yet
    int32_t seg
    int16_t rem


cdef packed struct FirstPlain:  # first_rows without segments or remainders: 12 bytes
    int64_t ts
    int32_t day     # -1: no row yet


cdef inline bint earlier(int64_t t, int16_t rm, int32_t sg, const FirstRow* b) noexcept nogil:
    """Whether a row at (t, rm, sg) comes before the best row ``b`` so far."""
    return (b.day < 0 or t < b.ts
            or (t == b.ts and (rm < b.rem or (rm == b.rem and sg < b.seg))))


def first_rows(const int32_t[::1] user, const int64_t[::1] ts, const int32_t[::1] day,
               mask, seg, int64_t n_users, int nthreads=1, rem=None):
    """Each user's first qualifying row: its day and segment code.

    ``day`` must be >= 0 (offsets from the first day of data): -1 marks "no row".

    The first row is the one with the smallest timestamp; among rows with that timestamp
    the smallest segment code wins. Users without a qualifying row get day -1.
    Returns ``(first_day[n_users], first_seg[n_users], first_ts[n_users])``.

    Each thread takes a contiguous range of rows and keeps the best row of every user in
    its own array (one record per user, fetched 16 rows ahead); then each user's best
    rows of the threads are compared (the order of (time, remainder, segment) is total,
    so the result does not depend on the thread count).
    """
    if seg is None and rem is None:
        return _first_rows_plain(user, ts, day, mask, n_users, nthreads)
    cdef int64_t n = user.shape[0]
    cdef int64_t[::1] best_ts = np.empty(n_users, dtype=np.int64)
    cdef int32_t[::1] best_day = np.empty(n_users, dtype=np.int32)
    cdef int32_t[::1] best_seg = np.empty(n_users, dtype=np.int32)
    cdef FirstRow[:, ::1] best = np.zeros((nthreads, max(n_users, 1)), dtype=np.dtype(
        [("ts", np.int64), ("day", np.int32), ("seg", np.int32), ("rem", np.int16)],
        align=True))
    cdef const uint8_t[::1] m
    cdef const int32_t[::1] s
    cdef bint use_mask = mask is not None
    cdef bint use_seg = seg is not None
    cdef bint use_rem = rem is not None
    cdef const int16_t[::1] r = rem if use_rem else np.zeros(1, dtype=np.int16)
    cdef int16_t rm
    cdef int64_t i, u, t, a, b
    cdef int th, q
    cdef int32_t sg
    cdef FirstRow* x
    cdef FirstRow* y
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    s = seg if use_seg else np.zeros(1, dtype=np.int32)
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            for u in range(n_users):
                best[th, u].day = -1
            a = n * th // nthreads
            b = n * (th + 1) // nthreads
            for i in range(a, b):
                if i + 16 < b:
                    ENGAGE_PREFETCH(&best[th, user[i + 16]])
                u = user[i]
                if use_mask and not m[i]:
                    continue
                t = ts[i]
                sg = s[i] if use_seg else 0
                rm = r[i] if use_rem else 0
                x = &best[th, u]
                if earlier(t, rm, sg, x):
                    x.ts = t
                    x.rem = rm
                    x.day = day[i]
                    x.seg = sg
        for u in prange(n_users, num_threads=nthreads, schedule="static"):
            x = &best[0, u]
            for q in range(1, nthreads):
                y = &best[q, u]
                if y.day >= 0 and earlier(y.ts, y.rem, y.seg, x):
                    x = y
            best_ts[u] = x.ts
            best_day[u] = x.day
            best_seg[u] = x.seg if x.day >= 0 else 0
    return np.asarray(best_day), np.asarray(best_seg), np.asarray(best_ts)


# rows per piece of first_rows' dynamic schedule
DEF ROW_PIECE = 1 << 16


def _first_rows_plain(const int32_t[::1] user, const int64_t[::1] ts, const int32_t[::1] day,
                      mask, int64_t n_users, int nthreads):
    """first_rows without segments or remainders: rows at the same instant have the same
    day, so a user's record is only its time and day, 12 bytes instead of 24 (1M users on
    2 threads: 24 MB of records instead of 48, which fit in this machine's 32 MB cache)."""
    cdef int64_t n = user.shape[0]
    cdef int64_t[::1] best_ts = np.empty(n_users, dtype=np.int64)
    cdef int32_t[::1] best_day = np.empty(n_users, dtype=np.int32)
    cdef FirstPlain[:, ::1] best = np.empty((nthreads, max(n_users, 1)), dtype=np.dtype(
        [("ts", np.int64), ("day", np.int32)]))
    cdef bint use_mask = mask is not None
    cdef const uint8_t[::1] m = mask if use_mask else np.ones(1, dtype=np.uint8)
    cdef int64_t i, u, t, a, b, piece
    cdef int th, q
    cdef FirstPlain* x
    cdef FirstPlain* y
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            for u in range(n_users):
                best[th, u].day = -1
        # pieces of rows handed out as threads come free (the earliest row is the same
        # whichever thread reads it): in a log in time order the later rows span more
        # users, and halves left the second thread 45% more misses
        for piece in prange((n + ROW_PIECE - 1) // ROW_PIECE, num_threads=nthreads,
                            schedule="dynamic", chunksize=1):
            th = threadid()
            a = piece * ROW_PIECE
            b = min(a + ROW_PIECE, n)
            for i in range(a, b):
                if i + 16 < n:
                    ENGAGE_PREFETCH(&best[th, user[i + 16]])
                if use_mask and not m[i]:
                    continue
                t = ts[i]
                x = &best[th, user[i]]
                if x.day < 0 or t < x.ts:
                    x.ts = t
                    x.day = day[i]
        for u in prange(n_users, num_threads=nthreads, schedule="static"):
            x = &best[0, u]
            for q in range(1, nthreads):
                y = &best[q, u]
                if y.day >= 0 and (x.day < 0 or y.ts < x.ts):
                    x = y
            best_ts[u] = x.ts
            best_day[u] = x.day
    return np.asarray(best_day), np.zeros(n_users, dtype=np.int32), np.asarray(best_ts)


def first_rows_in_order(const int32_t[::1] user, ts_col, const int32_t[::1] day,
                        int32_t day_shift, int64_t n_users, int nthreads):
    """first_rows without a mask, segments or remainders, for a log in time order whose
    users are numbered by first appearance (as prepare_events numbers them): each user's
    first row is then the row that first names them, found in two streaming passes with no
    per-user state to look up. ``ts_col``: an int64 array or the prepared chunks
    (_columns.Int64Chunks, not joined). Returns ``(first_day + day_shift, first_ts)``, or
    None when the log is not in that order (a timestamp smaller than the one before it, a
    user numbered out of turn, or a user without rows): the caller then takes first_rows.

    Pass 1: each thread checks its range of rows is in time order (and after the row
    before it) and finds its largest user; pass 2: each thread records the users its
    range names first, i.e. above the largest user of the ranges before it, which must
    come one by one in turn."""
    from engage_core._columns import as_chunks
    cdef Int64Chunks col = as_chunks(ts_col)
    cdef const int64_t[::1] data = col.data
    cdef const int64_t[::1] start = col.start
    cdef int64_t n = user.shape[0]
    cdef int64_t[::1] first_ts
    cdef int32_t[::1] first_day
    cdef int64_t[::1] top = np.full(nthreads, -1, dtype=np.int64)
    cdef int64_t[::1] nxt_at = np.zeros(nthreads + 1, dtype=np.int64)
    cdef uint8_t[::1] bad = np.zeros(nthreads, dtype=np.uint8)
    cdef int64_t i, a, b, hi, nxt, u, prev, s0, c, ua, ub
    cdef int64_t[::1] pos
    cdef const int64_t* p
    cdef int th, miss
    cdef RowWalk rw
    if col.n != n:
        raise ValueError(f"first_rows_in_order: {col.n} timestamps for {n} rows")
    if n == 0 or n_users == 0 or n < 64 * nthreads:
        nthreads = 1
    with nogil:
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            rw = thread_rows(start, n, th, nthreads)
            prev = int64_at(data, start, rw.lo - 1) if 0 < rw.lo < rw.end else INT64_MIN
            while next_piece(&rw, start):
                p = (<const int64_t*><intptr_t>data[rw.chunk]) - start[rw.chunk]
                for i in range(rw.lo, rw.hi):
                    if p[i] < prev:
                        bad[th] = 1
                        break
                    prev = p[i]
                if bad[th]:
                    break
            if not bad[th]:
                hi = -1
                for i in range(n * th // nthreads, n * (th + 1) // nthreads):
                    if user[i] > hi:
                        hi = user[i]
                top[th] = hi
    for th in range(nthreads):
        if bad[th]:
            return None
        nxt_at[th + 1] = max(nxt_at[th], top[th] + 1)
    if nxt_at[nthreads] != n_users:
        return None
    first_day = np.empty(n_users, dtype=np.int32)
    # each user's first row, then in its place the row's time; slot n_users + th takes
    # thread th's rows past its last user
    pos = np.empty(n_users + nthreads, dtype=np.int64)
    first_ts = pos
    with nogil:
        touch_pages(<uint8_t*>&pos[0], pos.shape[0] * sizeof(int64_t), nthreads)
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            a = n * th // nthreads
            b = n * (th + 1) // nthreads
            nxt = nxt_at[th]
            hi = nxt_at[th + 1]
            miss = 0
            # branch-free: the row is stored at the next user's slot whether or not it
            # names that user (a later row overwrites it until one does)
            for i in range(a, b):
                u = user[i]
                miss = miss | (u > nxt)
                pos[nxt if nxt < hi else n_users + th] = i
                nxt = nxt + (u == nxt)
            bad[th] = miss != 0
    for th in range(nthreads):
        if bad[th]:
            return None
    with nogil:
        # users' first rows ascend with the user: each thread walks the chunks forward
        for th in prange(nthreads, num_threads=nthreads, schedule="static"):
            ua = n_users * th // nthreads
            ub = n_users * (th + 1) // nthreads
            if ua < ub:
                c = chunk_at(start, pos[ua])
                for u in range(ua, ub):
                    i = pos[u]
                    while start[c + 1] <= i:
                        c = c + 1
                    first_day[u] = day[i] + day_shift
                    first_ts[u] = (<const int64_t*><intptr_t>data[c])[i - start[c]]
    return np.asarray(first_day), np.asarray(first_ts)[:n_users]


def run_heads(const int64_t[::1] offsets, const int32_t[::1] dayoff, const int64_t[::1] ts,
              int nthreads):
    """Each user's first row in the users' time order (CSR ``offsets`` over the rows'
    ``dayoff`` and ``ts``, at least one row): ``(first day offset, -1 for a user without
    rows; the instant of row min(offsets[u], rows - 1))``, in one pass by all threads with
    the rows 16 users ahead fetched meanwhile (numpy's minimum, where and two gathers took
    about 10 ms of the demo pipeline's first week on either thread count)."""
    cdef int64_t n_users = offsets.shape[0] - 1, n = ts.shape[0], u, h, g
    if n == 0 or dayoff.shape[0] != n:
        raise ValueError(f"run_heads: {dayoff.shape[0]} day offsets and {n} instants")
    first_day = np.empty(max(n_users, 0), dtype=np.int32)
    first_ts = np.empty(max(n_users, 0), dtype=np.int64)
    cdef int32_t[::1] fd = first_day
    cdef int64_t[::1] ft = first_ts
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="static"):
            if u + 16 < n_users:
                g = min(offsets[u + 16], n - 1)
                ENGAGE_PREFETCH(&dayoff[g])
                ENGAGE_PREFETCH(&ts[g])
            h = min(offsets[u], n - 1)
            fd[u] = dayoff[h] if offsets[u + 1] > offsets[u] else -1
            ft[u] = ts[h]
    return first_day, first_ts


def lifecycle_counts(const int64_t[::1] offsets, const int32_t[::1] days,
                     const int32_t[::1] period_of_day, int n_periods, int nthreads):
    """New, returning, resurrecting and dormant users per period: ``int64[4, P]``."""
    cdef int64_t n_users = offsets.shape[0] - 1
    cdef int64_t[:, :, ::1] out = np.zeros((nthreads, 4, n_periods + 1), dtype=np.int64)
    cdef int64_t u, j
    cdef int t
    cdef int32_t p, prev
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            if offsets[u + 1] <= offsets[u]:
                continue
            t = threadid()
            prev = -2
            for j in range(offsets[u], offsets[u + 1]):
                p = period_of_day[days[j]]
                if p == prev:
                    continue
                if prev == -2:
                    out[t, 0, p] += 1
                elif prev == p - 1:
                    out[t, 1, p] += 1
                else:
                    out[t, 2, p] += 1
                    out[t, 3, prev + 1] += 1
                prev = p
            out[t, 3, prev + 1] += 1
    return np.asarray(out).sum(axis=0)[:, :n_periods]


def first_week_counts(const int32_t[::1] first, const int32_t[::1] group, int n_groups,
                      const int64_t[::1] offsets, const int32_t[::1] days, int n_days,
                      int nthreads):
    """Per (group, cohort day): new users, users back on d0+1..d0+6, and the sum of their
    distinct active days in d0..d0+6. Returns ``int64[3, G, D]``."""
    cdef int64_t n_users = first.shape[0]
    cdef int64_t[:, :, :, ::1] out = np.zeros((nthreads, 3, n_groups, n_days), dtype=np.int64)
    cdef int64_t u, j
    cdef int t, g, gi, ng
    cdef int32_t d0, d, active
    cdef bint back
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            d0 = first[u]
            if d0 < 0:
                continue
            t = threadid()
            g = group[u]
            ng = 2 if g > 0 else 1
            active = 0
            back = False
            for j in range(offsets[u], offsets[u + 1]):
                d = days[j]
                if d >= d0 and d <= d0 + 6:
                    active = active + 1
                    if d > d0:
                        back = True
            for gi in range(ng):
                out[t, 0, 0 if gi == 0 else g, d0] += 1
                out[t, 1, 0 if gi == 0 else g, d0] += back
                out[t, 2, 0 if gi == 0 else g, d0] += active
    return np.asarray(out).sum(axis=0)


def first_run_periods(const int32_t[::1] actor, const int32_t[::1] period,
                      const uint8_t[::1] first, int64_t n_actors, int nthreads=1):
    """Each actor's cohort, the period of its first run (int32; -1: no run), from runs
    that come by actor, then period (_sequences.runs; ``first`` marks each actor's first
    run, one per actor, so threads never write the same actor)."""
    cdef int64_t n = actor.shape[0], i
    cdef int T = nthreads if n >= 1 << 16 else 1
    out = np.empty(n_actors, dtype=np.int32)
    cdef int32_t[::1] o = out
    with nogil:
        for i in prange(n_actors, num_threads=T, schedule="static"):
            o[i] = -1
        for i in prange(n, num_threads=T, schedule="static"):
            if first[i]:
                o[actor[i]] = period[i]
    return out


def cohort_cells(const int32_t[::1] cohort, actor, period, group, int64_t n_periods,
                 int64_t n_k, int64_t none, int nthreads=1):
    """Cohort revenue's tally cells. Entry i stands for actor ``actor[i]`` (None: actor i)
    in period ``period[i]`` (None: its cohort's own); with the actor's cohort c
    (``cohort``, -1: none) and offset k = period - c, its cell is ``(g * n_periods + c) *
    n_k + k`` (g: ``group[actor]``, int32, or 0 when None), or ``none`` when the actor
    has no cohort or k is outside [0, n_k). One pass split between threads (numpy's
    gathers and boolean selections of a million runs, on one thread: 14 ms of a pipeline)."""
    cdef bint by_actor = actor is not None, by_period = period is not None
    cdef bint grouped = group is not None
    cdef const int32_t[::1] act = actor if by_actor else cohort
    cdef const int32_t[::1] per = period if by_period else cohort
    cdef const int32_t[::1] grp = group if grouped else cohort
    cdef int64_t n = act.shape[0], i, a, k, c
    cdef int T = nthreads if n >= 1 << 16 else 1
    if by_period and per.shape[0] != n:
        raise ValueError(f"cohort_cells: {n} actors but {per.shape[0]} periods")
    if grouped and grp.shape[0] != cohort.shape[0]:
        raise ValueError(f"cohort_cells: {cohort.shape[0]} cohorts but {grp.shape[0]} groups")
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    with nogil:
        for i in prange(n, num_threads=T, schedule="static"):
            a = act[i] if by_actor else i
            c = cohort[a]
            k = per[i] - c if by_period else 0
            if c < 0 or k < 0 or k >= n_k:
                o[i] = none
            else:
                o[i] = ((grp[a] if grouped else 0) * n_periods + c) * n_k + k
    return out
