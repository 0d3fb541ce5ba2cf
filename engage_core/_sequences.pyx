# Sequence kernels shared by the catalogue metrics (sessions, funnel, conversion, commerce,
# cohort_revenue, survey, engagement_score): each key's rows in time order, each actor's
# rows grouped into (actor, period) runs, and exact per-bucket medians.
#
# Every per-actor result is computed by one thread in the actor's own row order, and float
# totals are summed afterwards in actor order (see _common.run_sums), so results do not
# depend on the thread count.
from cython.parallel cimport prange
from libc.stdint cimport INT32_MIN, INT64_MIN, int32_t, int64_t, intptr_t, uint8_t, uint64_t
from libc.math cimport NAN, fabs
from libc.stdlib cimport free, malloc, qsort

from engage_core._columns cimport Int64Chunks
from engage_core._hash cimport (RowWalk, actor_chunk, count_runs, int64_at, next_piece,
                                thread_places, thread_rows, touch_pages, zero_fill)
from engage_core._rowsort cimport RowKey, sort_rowkeys

import numpy as np

from engage_core._columns import as_chunks


cdef extern from "_partition.h":
    int engage_partition_place(const int32_t* key, int64_t n, int64_t n_keys,
                               const uint8_t* mask, const int32_t* major, int32_t base,
                               const int64_t* ts_addr, const int64_t* ts_start,
                               const int32_t* pay, const int64_t* offsets, const int32_t* pos,
                               int T, int32_t* rows, int32_t* smaj, int64_t* sts,
                               int32_t* spay, int nthreads) noexcept nogil
    int engage_sort_key_by_time(int32_t* rows, int32_t* smaj, int64_t* sts, int32_t* spay,
                                int64_t n) noexcept nogil


cdef extern from "_sumsort.h":
    uint64_t engage_double_key(double x) noexcept nogil
    double engage_sum_keys_ascending(uint64_t* keys, uint64_t* buf, int64_t n) noexcept nogil


cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #define ENGAGE_PREFETCH_W(p) __builtin_prefetch((const void*)(p), 1)
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    void ENGAGE_PREFETCH_W(const void* p) noexcept nogil

# rows between a prefetch and its use in the counting sort's passes
DEF AHEAD = 16
# a key's rows up to this many are sorted on the stack (no malloc)
DEF SMALL_SORT = 32


ctypedef fused row_t:
    int32_t
    int64_t


cdef int cmp_int64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0]
    cdef int64_t y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef inline bint before(const int32_t* major, const int64_t* ts, int64_t r, int64_t s) noexcept nogil:
    """Whether row r sorts before row s by (major, ts, row)."""
    if major[r] != major[s]:
        return major[r] < major[s]
    if ts[r] != ts[s]:
        return ts[r] < ts[s]
    return r < s


cdef int sort_bucket(row_t* rows, int64_t n, const int32_t* major, const int64_t* ts) noexcept nogil:
    """Sort ``rows[0:n]`` by (major, ts, row); returns 1 if out of memory, else 0."""
    cdef int64_t i, j, r
    cdef bint ordered = True
    cdef RowKey* tmp
    for i in range(1, n):
        if before(major, ts, rows[i], rows[i - 1]):
            ordered = False
            break
    if ordered:
        return 0
    if n <= 32:
        for i in range(1, n):
            r = rows[i]
            j = i - 1
            while j >= 0 and before(major, ts, r, rows[j]):
                rows[j + 1] = rows[j]
                j -= 1
            rows[j + 1] = <row_t>r
        return 0
    tmp = <RowKey*>malloc(n * sizeof(RowKey))
    if tmp == NULL:
        return 1
    for i in range(n):
        r = rows[i]
        tmp[i].major = major[r]
        tmp[i].ts = ts[r]
        tmp[i].row = r
    sort_rowkeys(tmp, n)
    for i in range(n):
        rows[i] = <row_t>tmp[i].row
    free(tmp)
    return 0


cdef int sort_sorted_copies(row_t* rows, int32_t* smaj, int64_t* sts, int32_t* spay,
                            int64_t n) noexcept nogil:
    """Sort one key's rows and their sorted copies of major and ts together by (major, ts,
    row), unless already in order, and (``spay`` not NULL) the copies of ``payload`` with
    them; returns 1 if out of memory, else 0."""
    cdef int64_t i
    cdef bint ordered = True
    cdef RowKey* tmp
    for i in range(1, n):
        if (smaj[i] < smaj[i - 1] or (smaj[i] == smaj[i - 1] and (
                sts[i] < sts[i - 1] or (sts[i] == sts[i - 1] and rows[i] < rows[i - 1])))):
            ordered = False
            break
    if ordered:
        return 0
    cdef int packed = 1
    if row_t is int32_t:  # as 64-bit numbers where (time, position) packs into them
        packed = engage_sort_key_by_time(rows, smaj, sts, spay, n)
        if packed != 1:
            return packed == 2
    cdef RowKey small[SMALL_SORT]
    if n <= SMALL_SORT:
        tmp = &small[0]
    else:
        tmp = <RowKey*>malloc(n * sizeof(RowKey))
    if tmp == NULL:
        return 1
    for i in range(n):
        tmp[i].major = smaj[i]
        tmp[i].pay = spay[i] if spay != NULL else 0
        tmp[i].ts = sts[i]
        tmp[i].row = rows[i]
    sort_rowkeys(tmp, n)
    for i in range(n):
        smaj[i] = tmp[i].major
        sts[i] = tmp[i].ts
        rows[i] = <row_t>tmp[i].row
        if spay != NULL:  # the payload's placed copies ride along (no gather by row:
            # 10M shuffled rows, 560 -> 360 ms)
            spay[i] = tmp[i].pay
    if n > SMALL_SORT:
        free(tmp)
    return 0


ctypedef fused key_t:
    int32_t
    int64_t


def sort_rows(const key_t[::1] key, major, ts, mask, int64_t n_keys, int nthreads,
              bint copies=False, int32_t major_base=0, payload=None):
    """The rows of each key sorted by ``(major, ts, row)``, as CSR ``(offsets[n_keys + 1],
    rows)``, and with ``copies`` the sorted copies of ``major - major_base`` (zeros when
    ``major`` is None) and ``ts`` too: ``(offsets, rows, major_sorted, ts_sorted)``. Rows
    with ``key < 0`` or ``mask == 0`` are left out. ``key``: int32 or int64 (no widened copy
    of user numbers); ``ts``: an int64 array or, with ``copies``, ``_columns.Int64Chunks``
    (a table's chunks, not joined first); ``rows``: int32 while they fit, else int64. With
    ``copies`` and ``payload`` (int32 per row, not a sort key), its sorted copy comes last:
    ``(offsets, rows, major_sorted, ts_sorted, payload_sorted)``.

    A stable counting sort by key (O(n + n_keys)) that, with ``copies``, writes each row's
    major and ts next to its place (random writes, cheaper than the random reads of
    gathering them afterwards); then each key's rows are sorted unless already in order
    (the usual case for logs written in time order; when ``(major, ts)`` never goes down
    along the rows, which the placement notes as it reads them, no key is even looked at:
    a 3-step funnel on 10M time-ordered events, 1 thread, 0.37-0.42 -> 0.35 s). With
    several threads, each counts and places the rows of its own range (per-thread counts
    of every key, while there are no more counters than twice the rows: the orders of 10M
    events, 1M rows of about one per user, 15 -> 13 ms on 2 threads against counting them
    on one): the order is the same for any thread count. A large log in no time order is
    placed in two passes that stay in cache, and its keys' rows sorted as packed 64-bit
    numbers there (_partition.h); the order is the same.
    """
    cdef int64_t n = key.shape[0]
    cdef int T = nthreads if nthreads > 1 and nthreads * n_keys <= max(2 * n, 1 << 16) else 1
    cdef bint narrow = n < 2**31
    # places as row numbers: int32 while they fit (half the cache of int64 counters: 10M
    # rows, 1M keys, 2 threads: 7 -> 3.5 ms to count)
    pos = np.empty((T, n_keys + 1), dtype=np.int32 if narrow else np.int64)  # zeroed in _count
    cdef int64_t[::1] offsets = np.zeros(n_keys + 1, dtype=np.int64)
    cdef int64_t[::1] block = np.zeros(nthreads + 1, dtype=np.int64)
    cdef const uint8_t[::1] m
    cdef const int32_t[::1] mj
    cdef Int64Chunks tcol = as_chunks(ts)
    cdef bint use_mask = mask is not None
    if tcol.n != n:
        raise ValueError(f"sort_rows: {n} keys but {tcol.n} times")
    if not copies and len(tcol.arrays) > 1:
        raise ValueError("sort_rows: times in chunks need copies=True")
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    mj = major if major is not None else np.zeros(max(n, 1), dtype=np.int32)
    if narrow:
        _count[key_t, int32_t](key, m, use_mask, pos, offsets, block, T, nthreads)
    else:
        _count[key_t, int64_t](key, m, use_mask, pos, offsets, block, T, nthreads)
    total = offsets[n_keys]
    rows = np.empty(total, dtype=np.int32 if narrow else np.int64)
    # without a major key, its sorted copy is zeros (calloc: pages never written)
    smaj = (np.empty(total if copies else 1, dtype=np.int32) if major is not None
            else np.zeros(total if copies else 1, dtype=np.int32))
    sts = np.empty(total if copies else 1, dtype=np.int64)
    cdef bint has_pay = copies and payload is not None
    cdef const int32_t[::1] pay = payload if has_pay else np.zeros(1, dtype=np.int32)
    spay = np.empty(total if has_pay else 1, dtype=np.int32)
    if total:
        if rows.dtype == np.int32:
            fail = _place[key_t, int32_t](key, mj, major_base, major is not None, tcol, m,
                                         use_mask, pos, offsets, rows, smaj, sts, T, nthreads,
                                         copies, pay, spay, has_pay)
        else:
            fail = _place[key_t, int64_t](key, mj, major_base, major is not None, tcol, m,
                                         use_mask, pos, offsets, rows, smaj, sts, T, nthreads,
                                         copies, pay, spay, has_pay)
        if fail:
            raise MemoryError()
    if copies:
        out = np.asarray(offsets), rows, smaj[:total], sts[:total]
        return out + (spay[:total],) if has_pay else out
    return np.asarray(offsets), rows


cdef void _count(const key_t[::1] key, const uint8_t[::1] m, bint use_mask,
                 row_t[:, ::1] pos, int64_t[::1] offsets, int64_t[::1] block, int T,
                 int nthreads) noexcept nogil:
    """sort_rows' first half: each thread counts the rows of each key in its range, then
    ``pos[t, k]`` becomes thread t's first place for key k and ``offsets`` the CSR."""
    cdef int64_t n = key.shape[0], n_keys = offsets.shape[0] - 1, i, k, a, b, acc
    cdef int t, c
    zero_fill(&pos[0, 0], T * (n_keys + 1) * sizeof(row_t), nthreads)
    for t in prange(T, num_threads=T, schedule="static"):
        a = n * t // T
        b = n * (t + 1) // T
        for i in range(a, b):
            # (only rows that count: a selection of a tenth of the rows fetched every
            # row's counter, 102 -> 60 ms for 1M of 10M rows)
            if i + AHEAD < b and key[i + AHEAD] >= 0 and (not use_mask or m[i + AHEAD]):
                ENGAGE_PREFETCH_W(&pos[t, key[i + AHEAD]])
            k = key[i]
            if k >= 0 and (not use_mask or m[i]):
                pos[t, k] += 1
    # each thread's first place for each key: the key's start plus the earlier threads'
    # (each thread a block of keys: their rows, then their places from the earlier
    # blocks' total; 4M funnel keys, 2 threads: a serial 7 ms halved)
    for t in prange(T, num_threads=T, schedule="static"):
        acc = 0
        for k in range(n_keys * t // T, n_keys * (t + 1) // T):
            for c in range(T):
                acc = acc + pos[c, k]
        block[t + 1] = acc
    for t in range(T):
        block[t + 1] += block[t]
    for t in prange(T, num_threads=T, schedule="static"):
        acc = block[t]
        for k in range(n_keys * t // T, n_keys * (t + 1) // T):
            offsets[k] = acc
            for c in range(T):
                i = pos[c, k]
                pos[c, k] = <row_t>acc
                acc = acc + i
    offsets[n_keys] = block[T]


cdef int64_t _place(const key_t[::1] key, const int32_t[::1] mj, int32_t base, bint has_major,
                    Int64Chunks tcol, const uint8_t[::1] m, bint use_mask,
                    row_t[:, ::1] pos, const int64_t[::1] offsets, row_t[::1] rows,
                    int32_t[::1] smaj, int64_t[::1] sts, int T, int nthreads, bint copies,
                    const int32_t[::1] pay, int32_t[::1] spay, bint has_pay):
    """sort_rows' second half: each thread places the rows of its range (and with
    ``copies`` their major and ts) at their key's places, then each key is sorted."""
    cdef int64_t n = key.shape[0], n_keys = offsets.shape[0] - 1, i, k, p, a, e, c
    cdef int64_t fail = 0
    cdef const int64_t[::1] start = tcol.start
    cdef const int64_t[::1] tdata = tcol.data
    cdef const int64_t* tp
    cdef RowWalk rw
    cdef int t, placed
    cdef int down = 0
    cdef int64_t tprev, tcur
    cdef int32_t mprev, mcur
    with nogil:
        touch_pages(&rows[0], rows.shape[0] * sizeof(row_t), nthreads)
        if copies:
            if has_major:
                touch_pages(&smaj[0], smaj.shape[0] * sizeof(int32_t), nthreads)
            if has_pay:
                touch_pages(&spay[0], spay.shape[0] * sizeof(int32_t), nthreads)
            touch_pages(&sts[0], sts.shape[0] * sizeof(int64_t), nthreads)
        placed = 1  # in two passes that stay in cache, where that pays (_partition.h)
        if key_t is int32_t and row_t is int32_t:
            if copies and n > 0:
                placed = engage_partition_place(
                    &key[0], n, n_keys, &m[0] if use_mask else NULL,
                    &mj[0] if has_major else NULL, base, &tdata[0], &start[0],
                    &pay[0] if has_pay else NULL, &offsets[0], &pos[0, 0], T, &rows[0],
                    &smaj[0], &sts[0], &spay[0], nthreads)
        if placed == 2:
            fail = 1
        if placed == 1:
            for t in prange(T, num_threads=T, schedule="static"):
                rw = thread_rows(start, n, t, T)  # rows n * t // T onwards, chunk by chunk
                tprev = INT64_MIN
                mprev = INT32_MIN
                while next_piece(&rw, start):
                    a, e, c = rw.lo, rw.hi, rw.chunk
                    tp = <const int64_t*><intptr_t>tdata[c] - start[c]
                    for i in range(a, e):
                        # does (major, ts) ever go down along the rows? if not, no key is sorted
                        tcur = tp[i]
                        mcur = mj[i]
                        down |= (tcur < tprev) | (mcur < mprev)
                        tprev = tcur
                        mprev = mcur
                        # the key's place two steps ahead: its counter, then where it points
                        if (i + 2 * AHEAD < e and key[i + 2 * AHEAD] >= 0
                                and (not use_mask or m[i + 2 * AHEAD])):
                            ENGAGE_PREFETCH_W(&pos[t, key[i + 2 * AHEAD]])
                        if i + AHEAD < e and key[i + AHEAD] >= 0 and (not use_mask or m[i + AHEAD]):
                            p = pos[t, key[i + AHEAD]]
                            ENGAGE_PREFETCH_W(&rows[p])
                            if copies:
                                ENGAGE_PREFETCH_W(&sts[p])
                                if has_major:
                                    ENGAGE_PREFETCH_W(&smaj[p])
                                if has_pay:
                                    ENGAGE_PREFETCH_W(&spay[p])
                        k = key[i]
                        if k >= 0 and (not use_mask or m[i]):
                            p = pos[t, k]
                            rows[p] = <row_t>i
                            if copies:
                                if has_major:
                                    smaj[p] = mj[i] - base
                                sts[p] = tp[i]
                                if has_pay:
                                    spay[p] = pay[i]
                            pos[t, k] = <row_t>(p + 1)
            for t in range(1, T):  # ... nor from one thread's last row to the next's first
                i = n * t // T
                if 0 < i < n and (mj[i] < mj[i - 1] or int64_at(tdata, start, i)
                                  < int64_at(tdata, start, i - 1)):
                    down = 1
            if not down:
                placed = 0
        # placed in two passes: every key's rows sorted there (0), or some keys' sorts
        # declined (3: sorted here, the others found in order); or in one pass, the rows
        # in (major, ts) order already (0)
        if placed != 0:
            for k in prange(n_keys, num_threads=nthreads, schedule="dynamic",
                            chunksize=actor_chunk(n_keys, nthreads)):
                if offsets[k + 1] - offsets[k] > 1:
                    if copies:
                        fail += sort_sorted_copies(&rows[0] + offsets[k], &smaj[0] + offsets[k],
                                                   &sts[0] + offsets[k],
                                                   &spay[0] + offsets[k] if has_pay else NULL,
                                                   offsets[k + 1] - offsets[k])
                    else:
                        fail += sort_bucket(&rows[0] + offsets[k], offsets[k + 1] - offsets[k],
                                            &mj[0], <const int64_t*><intptr_t>tdata[0])
    return fail


def runs(const int64_t[::1] offsets, const int32_t[::1] period, const int64_t[::1] ts,
         const double[::1] value, const uint8_t[::1] flags, int nthreads, bint want_last=True):
    """Group each actor's rows ``offsets[a]:offsets[a + 1]`` (sorted copies, by day then
    time: _common.sorted_records) into (actor, period) runs.

    Per run: actor, period, rows, the sum of ``value`` in sorted order, the ``value`` of the
    latest row (largest ts; ties: the largest value; only ``want_last``: else ``ts`` is not
    read), the OR of ``flags`` and whether it is the actor's first run.
    """
    cdef int64_t n_actors = offsets.shape[0] - 1
    cdef int64_t[::1] start = np.zeros(n_actors + 1, dtype=np.int64)
    cdef int64_t a, j, r, k, cnt
    cdef int32_t p, cur
    cdef double s, last_v
    cdef int64_t last_t
    cdef uint8_t fl
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            start[a + 1] = count_runs(&period[0], offsets[a], offsets[a + 1])
        for a in range(n_actors):
            start[a + 1] += start[a]
    cdef int64_t total = start[n_actors]
    cdef int32_t[::1] o_actor = np.empty(total, dtype=np.int32)
    cdef int32_t[::1] o_period = np.empty(total, dtype=np.int32)
    cdef int64_t[::1] o_rows = np.empty(total, dtype=np.int64)
    cdef double[::1] o_sum = np.empty(total, dtype=np.float64)
    cdef double[::1] o_last = np.empty(total, dtype=np.float64)
    cdef uint8_t[::1] o_flags = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] o_first = np.empty(total, dtype=np.uint8)
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            # the current run's totals kept in locals, stored when it ends (a store and a
            # load of the same slot every row made each row wait on the previous one)
            k = start[a] - 1
            cur = -1
            cnt = 0
            s = 0.0
            fl = 0
            last_v = 0.0
            last_t = 0
            for j in range(offsets[a], offsets[a + 1]):
                p = period[j]
                if k < start[a] or p != cur:
                    if k >= start[a]:
                        o_rows[k] = cnt
                        o_sum[k] = s
                        o_flags[k] = fl
                        o_last[k] = last_v
                    k = k + 1
                    cur = p
                    o_actor[k] = <int32_t>a
                    o_period[k] = p
                    o_first[k] = k == start[a]
                    cnt = 0
                    s = 0.0
                    fl = 0
                    if want_last:
                        last_v = value[j]
                        last_t = ts[j]
                cnt = cnt + 1
                s = s + value[j]
                fl = fl | flags[j]
                if want_last and (ts[j] > last_t or (ts[j] == last_t and value[j] > last_v)):
                    last_t = ts[j]
                    last_v = value[j]
            if k >= start[a]:
                o_rows[k] = cnt
                o_sum[k] = s
                o_flags[k] = fl
                o_last[k] = last_v
    out = {"actor": np.asarray(o_actor), "period": np.asarray(o_period),
           "rows": np.asarray(o_rows), "sum": np.asarray(o_sum),
           "flags": np.asarray(o_flags), "first": np.asarray(o_first).astype(bool)}
    if want_last:
        out["last"] = np.asarray(o_last)
    return out


cdef int64_t select_kth(int64_t* a, int64_t n, int64_t k) noexcept nogil:
    """Reorder ``a[0:n]`` so that ``a[k]`` holds the k-th smallest value, smaller or equal
    values before it and greater or equal after (quickselect with a median-of-three pivot;
    a range still unsettled after 64 rounds is sorted outright). Returns ``a[k]``."""
    cdef int64_t lo = 0, hi = n - 1, i, j, mid, x, y, z, pivot, tmp
    cdef int rounds = 0
    while hi > lo:
        rounds += 1
        if rounds > 64:
            qsort(a + lo, hi - lo + 1, sizeof(int64_t), cmp_int64)
            break
        mid = lo + (hi - lo) // 2
        x = a[lo]
        y = a[mid]
        z = a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        # a[lo..j] <= pivot, a[j+1..i-1] == pivot, a[i..hi] >= pivot
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


def bucket_medians(const int64_t[::1] key, const int64_t[::1] value, int64_t n_keys,
                   int nthreads):
    """The exact median of ``value`` per key (the mean of the two middle values for an even
    count), as float64; NaN for keys without values."""
    offsets_arr, buf_arr = group_values(key, n_keys, value, nthreads)
    cdef const int64_t[::1] offsets = offsets_arr
    cdef int64_t[::1] buf = buf_arr if len(buf_arr) else np.zeros(1, dtype=np.int64)
    cdef double[::1] out = np.full(n_keys, np.nan, dtype=np.float64)
    cdef int64_t k, lo, cnt, j, upper, lower
    with nogil:
        for k in prange(n_keys, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_keys, nthreads)):
            lo = offsets[k]
            cnt = offsets[k + 1] - lo
            if cnt == 0:
                continue
            # the middle value(s) by selection, not a sort: linear time on average
            upper = select_kth(&buf[0] + lo, cnt, cnt // 2)
            if cnt % 2 == 1:
                out[k] = <double>upper
            else:
                lower = buf[lo]  # the largest value before the upper middle one
                for j in range(lo + 1, lo + cnt // 2):
                    lower = max(lower, buf[j])
                out[k] = (<double>lower + <double>upper) / 2.0
    return np.asarray(out)


DEF TWO53 = 9007199254740992.0


def segment_sums(const int64_t[::1] offsets, const double[::1] values, int nthreads):
    """The sum of each segment ``values[offsets[s]:offsets[s + 1]]``, its terms added in
    ascending order (NaN last), left to right: a sum that depends only on the segment's
    multiset of values, not on their order (what ``_common.tally`` promises)."""
    cdef int64_t n_seg = offsets.shape[0] - 1, s, j, k, lo, hi
    cdef double[::1] out = np.zeros(max(n_seg, 0), dtype=np.float64)
    cdef double acc, x, mag
    cdef uint64_t* keys
    cdef bint ordered, whole
    cdef int64_t fail = 0
    with nogil:
        for s in prange(n_seg, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_seg, nthreads)):
            lo = offsets[s]
            hi = offsets[s + 1]
            ordered = True
            whole = True
            mag = 0.0
            for j in range(lo, hi):
                x = values[j]
                # not (previous <= this), with NaN last: out of order
                if j > lo and not (values[j - 1] <= x or x != x):
                    ordered = False
                # whole numbers whose magnitudes add up to under 2**53: every partial sum
                # is exact in any order, so the sum needs no sort (event weights, counts)
                if whole:
                    if fabs(x) < TWO53 and x == <double>(<int64_t>x):
                        mag = mag + fabs(x)
                    else:
                        whole = False
                if not ordered and not whole:
                    break
            acc = 0.0
            if ordered or (whole and mag < TWO53):
                for j in range(lo, hi):
                    acc = acc + values[j]
            else:
                keys = <uint64_t*>malloc(2 * (hi - lo) * sizeof(uint64_t))
                if keys == NULL:
                    fail += 1
                    continue
                for j in range(lo, hi):
                    keys[j - lo] = engage_double_key(values[j])
                acc = engage_sum_keys_ascending(keys, keys + (hi - lo), hi - lo)
                free(keys)
            if acc != acc:  # one NaN for every NaN sum (its sign and payload would vary)
                acc = NAN
            out[s] = acc
    if fail:
        raise MemoryError()
    return np.asarray(out)


ctypedef fused group_t:
    int64_t
    double


def group_values(const int64_t[::1] index, int64_t size, const group_t[::1] values,
                 int nthreads=1):
    """``(offsets[size + 1], values grouped by index)``: a stable counting sort (``index``
    in ``[0, size)``; int64 or float64 values). With few groups for the values, each
    thread counts and places a contiguous range of them (a group's values stay in input
    order; tally's revenue sums, 1M values: one thread was 3 ms of a pipeline)."""
    cdef int64_t n = index.shape[0], i, k
    cdef int T = nthreads if nthreads > 1 and n >= 1 << 16 and size * nthreads <= n else 1
    cdef int t
    cdef int64_t[::1] offsets = np.zeros(size + 1, dtype=np.int64)
    cdef int64_t[:, ::1] fill = np.zeros((T, size + 1), dtype=np.int64)
    cdef group_t[::1] out = np.empty(n, dtype=np.int64 if group_t is int64_t else np.float64)
    with nogil:
        for t in prange(T, num_threads=T, schedule="static"):
            for i in range(n * t // T, n * (t + 1) // T):
                fill[t, index[i]] += 1
        thread_places(&fill[0, 0], fill.shape[1], T, size, &offsets[0])
        for t in prange(T, num_threads=T, schedule="static"):
            for i in range(n * t // T, n * (t + 1) // T):
                k = index[i]
                out[fill[t, k]] = values[i]
                fill[t, k] += 1
    return np.asarray(offsets), np.asarray(out)
