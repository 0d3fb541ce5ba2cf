# Activity kernels: per-actor sets of active days, rolling-window distinct counts,
# first-day counts and the days-active histogram.
#
# An "actor" is a user (for the 'all' rows) or a (user, segment) pair (for breakdown rows);
# each actor belongs to one output group. Days are offsets from the first day of data.
# Every kernel accumulates integer counts into per-thread arrays that are summed at the
# end, so results do not depend on the thread count.
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, intptr_t, uint8_t, uint64_t
from libc.stdlib cimport qsort

from engage_core._columns cimport Int64Chunks
from engage_core._hash cimport RowWalk, actor_chunk, next_piece, thread_rows, touch_pages, zero_fill

import numpy as np

from engage_core import _grouped
from engage_core._scratch import per_thread


cdef int cmp_int32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0]
    cdef int32_t y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


cdef inline int64_t sort_unique(int32_t* v, int64_t n) noexcept nogil:
    """Sort ``v[0:n]`` ascending in place and drop repeats; returns the new length."""
    cdef int64_t i, j, k
    cdef int32_t x
    cdef bint ordered = True
    if n <= 1:
        return n
    for i in range(1, n):
        if v[i] < v[i - 1]:
            ordered = False
            break
    if not ordered:
        if n <= 24:
            for i in range(1, n):
                x = v[i]
                j = i - 1
                while j >= 0 and v[j] > x:
                    v[j + 1] = v[j]
                    j -= 1
                v[j + 1] = x
        else:
            qsort(v, n, sizeof(int32_t), cmp_int32)
    k = 1
    for i in range(1, n):
        if v[i] != v[k - 1]:
            v[k] = v[i]
            k += 1
    return k


cdef extern from *:
    int popcount64 "__builtin_popcountll"(unsigned long long) nogil
    int ctz64 "__builtin_ctzll"(unsigned long long) nogil

cdef extern from *:
    """
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #define ENGAGE_ATOMIC_OR(p, x) __atomic_fetch_or((p), (x), __ATOMIC_RELAXED)

    #include <string.h>
    #include "_simd.h"
    #include "_bitmaps.h"

    /* The window counts of a tile of 64-user columns (words j0..j1) of day bitmaps
       (bitmap_window_counts), each day's words of the tile side by side, so that every
       loop runs across the tile's words (vectorised: ORs, and popcounts where the CPU has
       a vector popcount): users whose first day is each day; per window W, the users of
       each W-day window ending on each day, by van Herk / Gil-Werman: ORs over blocks of W
       days from each block's start (pre) and to its end (suf), a window being
       suf[start] | pre[end]. pre and suf hold D rows of the tile's words. */
    static inline __attribute__((always_inline)) void engage_windows_body(
            const uint64_t* bits, int64_t words, int64_t D, int64_t j0, int64_t j1,
            const int32_t* win, int nw, uint64_t* pre, uint64_t* suf, uint64_t* seen,
            int64_t* counts, int64_t* first, int avx2) {
        const int64_t w = j1 - j0;
        for (int64_t j = 0; j < w; j++) seen[j] = 0;
        for (int64_t d = 0; d < D; d++) {
            const uint64_t* row = bits + d * words + j0;
            int64_t f = 0;
    #if ENGAGE_X86_DISPATCH
            if (avx2) f = engage_popsum_new_avx2(row, seen, w); else
    #endif
            for (int64_t j = 0; j < w; j++) {
                f += __builtin_popcountll(row[j] & ~seen[j]);
                seen[j] |= row[j];
            }
            first[d] += f;
        }
        for (int k = 0; k < nw; k++) {
            const int64_t W = win[k];
            int64_t* cnt = counts + (int64_t)k * D;
            if (W == 1) {
                for (int64_t d = 0; d < D; d++) {
                    const uint64_t* row = bits + d * words + j0;
                    int64_t s = 0;
    #if ENGAGE_X86_DISPATCH
                    if (avx2) s = engage_popsum_or_avx2(row, NULL, w); else
    #endif
                    for (int64_t j = 0; j < w; j++) s += __builtin_popcountll(row[j]);
                    cnt[d] += s;
                }
                continue;
            }
            for (int64_t d = 0; d < D; d++) {
                const uint64_t* row = bits + d * words + j0;
                uint64_t* p = pre + d * w;
                if (d % W == 0) for (int64_t j = 0; j < w; j++) p[j] = row[j];
                else for (int64_t j = 0; j < w; j++) p[j] = p[j - w] | row[j];
            }
            for (int64_t d = D - 1; d >= 0; d--) {
                const uint64_t* row = bits + d * words + j0;
                uint64_t* q = suf + d * w;
                if (d % W == W - 1 || d == D - 1) for (int64_t j = 0; j < w; j++) q[j] = row[j];
                else for (int64_t j = 0; j < w; j++) q[j] = q[j + w] | row[j];
            }
            for (int64_t e = 0; e < D; e++) {
                const uint64_t* p = pre + e * w;
                int64_t s = 0;
                const uint64_t* q = e < W - 1 ? NULL : suf + (e - W + 1) * w;
    #if ENGAGE_X86_DISPATCH
                if (avx2) s = engage_popsum_or_avx2(p, q, w); else
    #endif
                if (!q) {
                    for (int64_t j = 0; j < w; j++) s += __builtin_popcountll(p[j]);
                } else {
                    for (int64_t j = 0; j < w; j++) s += __builtin_popcountll(q[j] | p[j]);
                }
                cnt[e] += s;
            }
        }
    }
    #define ENGAGE_WINDOWS_ARGS const uint64_t* bits, int64_t words, int64_t D, int64_t j0, \
        int64_t j1, const int32_t* win, int nw, uint64_t* pre, uint64_t* suf, uint64_t* seen, \
        int64_t* counts, int64_t* first
    #define ENGAGE_WINDOWS_CALL bits, words, D, j0, j1, win, nw, pre, suf, seen, counts, first
    static void engage_windows_default(ENGAGE_WINDOWS_ARGS) {
        engage_windows_body(ENGAGE_WINDOWS_CALL, 0);
    }
    #if ENGAGE_X86_DISPATCH
    /* built for CPUs with AVX-512 and its vector popcount, and for those with popcnt;
       engage_column_windows picks one when first called */
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq")))
    static void engage_windows_vpopcnt(ENGAGE_WINDOWS_ARGS) {
        engage_windows_body(ENGAGE_WINDOWS_CALL, 0);
    }
    /* AVX2 (no vector popcount): the ORs 4 words wide, popcounts by nibble lookups */
    __attribute__((target("avx2,popcnt")))
    static void engage_windows_avx2(ENGAGE_WINDOWS_ARGS) {
        engage_windows_body(ENGAGE_WINDOWS_CALL, 1);
    }
    __attribute__((target("popcnt")))
    static void engage_windows_popcnt(ENGAGE_WINDOWS_ARGS) {
        engage_windows_body(ENGAGE_WINDOWS_CALL, 0);
    }
    #endif
    /* the build engage_column_windows runs: 3 vector popcount, 2 AVX2, 1 popcnt, 0 default */
    static int engage_windows_level(void) {
    #if ENGAGE_X86_DISPATCH
        __builtin_cpu_init();
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
                && __builtin_cpu_supports("avx512vpopcntdq")) ? 3
               : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) ? 2
               : __builtin_cpu_supports("popcnt") ? 1 : 0;
    #else
        return 0;
    #endif
    }
    static void engage_column_windows(int level, ENGAGE_WINDOWS_ARGS) {
    #if ENGAGE_X86_DISPATCH
        if (level == 3) { engage_windows_vpopcnt(ENGAGE_WINDOWS_CALL); return; }
        if (level == 2) { engage_windows_avx2(ENGAGE_WINDOWS_CALL); return; }
        if (level == 1) { engage_windows_popcnt(ENGAGE_WINDOWS_CALL); return; }
    #endif
        engage_windows_default(ENGAGE_WINDOWS_CALL);
    }
    """
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    void atomic_or "ENGAGE_ATOMIC_OR"(uint64_t* p, uint64_t x) noexcept nogil
    void fill_bitmaps "engage_fill_bitmaps"(
        const int32_t* user, const int32_t* day, const uint8_t* mask, const int32_t* of_day,
        int32_t first, int64_t a, int64_t b, uint64_t* bits, int64_t words,
        const uint8_t* shared, int shuffled, int32_t own, int32_t own_end) noexcept nogil
    void fill_bitmaps_keys "engage_fill_bitmaps_keys"(
        const int64_t* key, int64_t s0, int64_t lo, const int32_t* day, const uint8_t* mask,
        const int32_t* of_day, int32_t first, int64_t a, int64_t b, uint64_t* bits,
        int64_t words, const uint8_t* shared, int32_t* clear) noexcept nogil
    void clear_rest "engage_clear_rest"(uint64_t* bits, int64_t words, const uint8_t* shared,
                                        int32_t clear, int32_t own_end) noexcept nogil
    int windows_level "engage_windows_level"() noexcept nogil
    void column_windows "engage_column_windows"(
        int level, const uint64_t* bits, int64_t words, int64_t D, int64_t j0, int64_t j1,
        const int32_t* win, int nw, uint64_t* pre, uint64_t* suf, uint64_t* seen,
        int64_t* counts, int64_t* first) noexcept nogil


# Per-actor bitsets are used while they take at most this many bytes (and no more than
# twice the sorted-buffer path would), else a counting sort by actor.
BITSET_BUDGET = 256 << 20


def actor_days(const int32_t[::1] actor, const int32_t[::1] day, mask, int64_t n_actors,
               int n_days, int nthreads, int32_t first=0):
    """Sorted distinct days (``0 <= day - first < n_days``, given as offsets from ``first``)
    of each actor, as CSR ``(offsets[n_actors + 1], days)``.

    Rows with ``actor < 0`` or (when ``mask`` is given) ``mask == 0`` are left out. Short
    histories use one bitset per actor (one memory access per row, no sort); long ones a
    counting sort by actor followed by a per-actor sort.
    """
    cdef int64_t words = (n_days + 63) // 64
    cdef int64_t n = actor.shape[0]
    if n_actors * words * 8 <= max(BITSET_BUDGET, 8 * n) and n_actors * words * 8 <= 2 * BITSET_BUDGET:
        return _actor_days_bitset(actor, day, mask, n_actors, words, nthreads, first)
    return _actor_days_sort(actor, day, mask, n_actors, nthreads, first)


def _actor_days_bitset(const int32_t[::1] actor, const int32_t[::1] day, mask,
                       int64_t n_actors, int64_t words, int nthreads, int32_t first=0):
    cdef int64_t n = actor.shape[0]
    cdef uint64_t[::1] bits = np.empty(max(n_actors * words, 1), dtype=np.uint64)
    cdef int64_t[::1] offsets = np.zeros(n_actors + 1, dtype=np.int64)
    cdef int32_t[::1] out
    cdef const uint8_t[::1] m
    cdef bint use_mask = mask is not None
    cdef int64_t i, a, w, k, base
    cdef int d
    cdef uint64_t x
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    with nogil:
        zero_fill(&bits[0], bits.shape[0] * sizeof(uint64_t), nthreads)
        # Threads take contiguous ranges of rows; a bit is set by an atomic OR, and only
        # when it is not set yet (most rows repeat a user-day already seen: no write).
        for i in prange(n, num_threads=nthreads, schedule="static"):
            if i + 16 < n:  # the word of the row 16 ahead: its miss overlaps this row's
                a = actor[i + 16]
                if a >= 0:
                    ENGAGE_PREFETCH(&bits[a * words + ((day[i + 16] - first) >> 6)])
            a = actor[i]
            if a < 0 or (use_mask and not m[i]):
                continue
            d = day[i] - first
            x = (<uint64_t>1) << (d & 63)
            if not (bits[a * words + (d >> 6)] & x):
                atomic_or(&bits[a * words + (d >> 6)], x)
        for a in prange(n_actors, num_threads=nthreads, schedule="static"):
            k = 0
            for w in range(words):
                k = k + popcount64(bits[a * words + w])
            offsets[a + 1] = k
        for a in range(n_actors):
            offsets[a + 1] += offsets[a]
    out = np.empty(offsets[n_actors], dtype=np.int32)
    with nogil:
        if offsets[n_actors]:
            touch_pages(&out[0], offsets[n_actors] * sizeof(int32_t), nthreads)
        for a in prange(n_actors, num_threads=nthreads, schedule="static"):
            k = offsets[a]
            for w in range(words):
                x = bits[a * words + w]
                base = w * 64
                while x:
                    out[k] = <int32_t>(base + ctz64(x))
                    k = k + 1
                    x = x & (x - 1)
    return np.asarray(offsets), np.asarray(out)


def _actor_days_sort(const int32_t[::1] actor, const int32_t[::1] day, mask, int64_t n_actors,
                     int nthreads, int32_t first=0):
    """Sorted distinct days of each actor, as CSR ``(offsets[n_actors + 1], days)``.

    Rows with ``actor < 0`` or (when ``mask`` is given) ``mask == 0`` are left out.
    """
    cdef int64_t n = actor.shape[0]
    cdef int64_t[::1] start = np.zeros(n_actors + 1, dtype=np.int64)
    cdef int64_t[::1] fill
    cdef int32_t[::1] buf
    cdef int64_t[::1] ucount = np.zeros(n_actors, dtype=np.int64)
    cdef int64_t[::1] offsets = np.zeros(n_actors + 1, dtype=np.int64)
    cdef int32_t[::1] out
    cdef const uint8_t[::1] m
    cdef bint use_mask = mask is not None
    cdef int64_t i, a, j, total
    cdef int32_t x
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    with nogil:
        for i in range(n):
            a = actor[i]
            if a >= 0 and (not use_mask or m[i]):
                start[a + 1] += 1
        for a in range(n_actors):
            start[a + 1] += start[a]
    total = start[n_actors]
    buf = np.empty(total, dtype=np.int32)
    fill = np.array(start[:n_actors], dtype=np.int64)
    with nogil:
        for i in range(n):
            a = actor[i]
            if a >= 0 and (not use_mask or m[i]):
                buf[fill[a]] = day[i] - first
                fill[a] += 1
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            ucount[a] = sort_unique(&buf[0] + start[a], start[a + 1] - start[a])
        for a in range(n_actors):
            offsets[a + 1] = offsets[a] + ucount[a]
    out = np.empty(offsets[n_actors], dtype=np.int32)
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            for j in range(ucount[a]):
                out[offsets[a] + j] = buf[start[a] + j]
    return np.asarray(offsets), np.asarray(out)


cdef bint mostly_ordered(const int32_t[::1] day) noexcept nogil:
    """Whether the days of up to 4096 pairs of neighbouring rows, spread over the log, rise or
    stay in at least 9 of 10 pairs (a log in time order; a shuffled one: about half)."""
    cdef int64_t n = day.shape[0], k, i, up = 0, pairs = min(4096, n - 1)
    if pairs <= 0:
        return True
    for k in range(pairs):
        i = k * (n - 1) // pairs
        up += day[i + 1] >= day[i]
    return 10 * up >= 9 * pairs


def day_bitmaps(users, const int32_t[::1] day, mask, int64_t n_users,
                int n_days, int nthreads, int32_t first=0, of_day=None, thread_days=None,
                by_day=None):
    """One bitmap of users per day (``uint64[n_days, ceil(n_users / 64)]``, bit ``u`` of day
    ``d - first`` set when user ``u`` has a row that day); with ``of_day`` (int32, a
    non-decreasing period number per day offset), one per period instead, ``n_days`` being
    the number of periods. Rows with ``user < 0`` or (when ``mask`` is given) ``mask == 0``
    are left out. ``thread_days``: the least and greatest day of each thread's share of
    the rows (``n * t // nthreads`` onwards), when known (then not read here).

    Each thread takes a contiguous range of rows. A day that only one thread's range
    reaches (in a time-ordered log, all but the days where the ranges meet) gets its bits
    by a plain OR, without a branch; a day that several reach, by an atomic OR when the bit
    is not set yet. A time-ordered log sets bits in the bitmaps of the days at hand, which
    stay in cache; a day's bitmap is cleared by its one thread just before (not all up
    front: on 10M time-ordered rows, 2 threads, 32 -> 23 ms here).

    ``users``: each row's user (int32), or a ``RangeIndex`` not numbered yet, whose slots
    ``key - lo`` are the users: in time order they are read from the keys as the bits are
    set (no pass writes them first: on 10M rows, 1 thread, ~35 -> ~22 ms in a C harness on
    the benchmark machine), else ``users.slots()`` writes them."""
    cdef int64_t words = (n_users + 63) // 64
    cdef int64_t n = day.shape[0], i, a, b, klo = 0
    cdef const int32_t[::1] user
    cdef Int64Chunks keys = None
    cdef const int64_t[::1] kdata, kstart
    cdef bint use_keys = False
    cdef RowWalk rw
    cdef int32_t clear
    # cleared below: each day's bitmap just before its bits are set (_bitmaps.h)
    cdef uint64_t[:, ::1] bits = np.empty((max(n_days, 1), max(words, 1)), dtype=np.uint64)
    cdef int32_t[::1] lo = np.full(nthreads, n_days, dtype=np.int32)
    cdef int32_t[::1] hi = np.full(nthreads, -1, dtype=np.int32)
    cdef uint8_t[::1] shared = np.zeros(max(n_days, 1), dtype=np.uint8)
    cdef const int32_t[::1] od
    cdef bint use_od = of_day is not None
    cdef const uint8_t[::1] m
    cdef bint use_mask = mask is not None
    cdef int32_t dmin, dmax
    cdef int t
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    od = of_day if use_od else np.zeros(1, dtype=np.int32)
    cdef bint shuffled = not mostly_ordered(day)
    if isinstance(users, np.ndarray):
        user = users
    elif shuffled:
        user = users.slots()
    else:
        keys, klo = users.slot_keys()
        use_keys = True
        if keys.n != n:
            raise ValueError("day_bitmaps: the index's keys and the days differ in length")
        user = np.zeros(1, dtype=np.int32)  # not read
    kdata = keys.data if use_keys else np.zeros(1, dtype=np.int64)
    kstart = keys.start if use_keys else np.zeros(2, dtype=np.int64)
    if by_day if by_day is not None else (shuffled and n >= _grouped.BY_DAY_FROM):
        return _grouped.bitmaps_by_day(user, day, m, use_mask, od, use_od, first, n_days,
                                       words, nthreads)
    cdef bint known = thread_days is not None and nthreads > 1
    if known:  # as found below (periods do not decrease with days)
        for t in range(nthreads):
            a, b = int(thread_days[0][t]) - first, int(thread_days[1][t]) - first
            if a <= b:
                lo[t] = od[a] if use_od else <int32_t>a
                hi[t] = od[b] if use_od else <int32_t>b
    with nogil:
        if nthreads > 1:  # pages faulted in by one thread; the days each thread's rows reach
            touch_pages(&bits[0, 0], bits.shape[0] * bits.shape[1] * sizeof(uint64_t),
                        nthreads)
        if nthreads > 1 and not known:
            for t in prange(nthreads, num_threads=nthreads, schedule="static"):
                a = n * t // nthreads
                b = n * (t + 1) // nthreads
                dmin = 2147483647
                dmax = -1
                for i in range(a, b):
                    dmin = min(dmin, day[i] - first)
                    dmax = max(dmax, day[i] - first)
                if dmin <= dmax and use_od:  # periods do not decrease with days
                    dmin = od[dmin]
                    dmax = od[dmax]
                lo[t] = dmin
                hi[t] = dmax
    if nthreads > 1:
        reach = np.zeros(max(n_days, 1) + 1, dtype=np.int32)
        for t in range(nthreads):
            if lo[t] <= hi[t]:
                reach[lo[t]] += 1
                reach[hi[t] + 1] -= 1
        reach = np.cumsum(reach[:-1])
        shared = (reach > 1).astype(np.uint8)
        np.asarray(bits)[reach != 1] = 0  # days of no thread's rows or of several
    else:
        lo[0], hi[0] = 0, n_days - 1  # every day is the one thread's to clear
    with nogil:
        # the same ranges of rows as above: a day not shared is written by one thread only
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            if not use_keys:
                fill_bitmaps(&user[0], &day[0], &m[0] if use_mask else NULL,
                             &od[0] if use_od else NULL, first, n * t // nthreads,
                             n * (t + 1) // nthreads, &bits[0, 0], bits.shape[1], &shared[0],
                             shuffled, lo[t], hi[t])
            else:  # the thread's rows (the same as above) chunk by chunk
                rw = thread_rows(kstart, n, t, nthreads)
                clear = lo[t]
                while next_piece(&rw, kstart):
                    fill_bitmaps_keys(<const int64_t*><intptr_t>kdata[rw.chunk],
                                      kstart[rw.chunk], klo, &day[0],
                                      &m[0] if use_mask else NULL, &od[0] if use_od else NULL,
                                      first, rw.lo, rw.hi, &bits[0, 0], bits.shape[1],
                                      &shared[0], &clear)
                clear_rest(&bits[0, 0], bits.shape[1], &shared[0], clear, hi[t])
    return np.asarray(bits)[:n_days]


# the build of the window-count kernel this CPU runs (see engage_column_windows)
WINDOWS_LEVEL = windows_level()


def bitmap_window_counts(const uint64_t[:, ::1] bits, const int32_t[::1] windows, int nthreads,
                         level=None):
    """Distinct users per (window, day) and users whose first day is each day, from
    ``day_bitmaps``: ``(counts[W, D], first[D])``, as ``window_counts`` gives them for one
    group. Threads take tiles of columns (64 users each) whose scratch rows (two per day)
    stay in cache; each day's words of a tile are read side by side. ``level``: a build of
    the kernel no higher than WINDOWS_LEVEL (tests run each)."""
    cdef int64_t D = bits.shape[0], words = bits.shape[1] if D else 0
    cdef int nw = windows.shape[0]
    cdef int64_t[:, :, ::1] counts = np.zeros((nthreads, nw, max(D, 1)), dtype=np.int64)
    cdef int64_t[:, ::1] first = np.zeros((nthreads, max(D, 1)), dtype=np.int64)
    cdef int64_t width = max(8, min(64, ((128 << 10) // (16 * max(D, 1))) // 8 * 8))
    cdef uint64_t[:, ::1] scratch = per_thread(nthreads, (2 * max(D, 1) + 1) * width, np.uint64)
    cdef int64_t tiles = (words + width - 1) // width, k
    cdef int t
    cdef int lv = WINDOWS_LEVEL if level is None else min(int(level), WINDOWS_LEVEL)
    if D == 0 or nw == 0:
        return np.zeros((nw, D), dtype=np.int64), np.zeros(D, dtype=np.int64)
    with nogil:
        for k in prange(tiles, num_threads=nthreads, schedule="dynamic", chunksize=1):
            t = threadid()
            column_windows(lv, &bits[0, 0], words, D, k * width, min(k * width + width, words),
                           &windows[0], nw, &scratch[t, 0], &scratch[t, width * D],
                           &scratch[t, 2 * width * D], &counts[t, 0, 0], &first[t, 0])
    return np.asarray(counts).sum(axis=0)[:, :D], np.asarray(first).sum(axis=0)[:D]


def window_counts(const int64_t[::1] offsets, const int32_t[::1] days,
                  const int32_t[::1] group, int n_groups, int n_days,
                  const int32_t[::1] windows, int nthreads):
    """Distinct actors per (window, group, day) and actors whose first day is each day.

    An actor is active in the window of ``W`` days ending on ``e`` when one of its days
    lies in ``[e - W + 1, e]``. Each actor's days are merged into covered intervals, which
    are added to a difference array and summed up at the end.
    Returns ``(counts[W, G, D], first[G, D])``.
    """
    cdef int64_t n_actors = offsets.shape[0] - 1
    cdef int n_win = windows.shape[0]
    cdef int64_t[:, :, :, ::1] diff = np.zeros((nthreads, n_win, n_groups, n_days + 1), dtype=np.int64)
    cdef int64_t[:, :, ::1] first = np.zeros((nthreads, n_groups, n_days), dtype=np.int64)
    cdef int64_t a, j, lo, hi
    cdef int w, t, g
    cdef int64_t s, e, d, width
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            lo = offsets[a]
            hi = offsets[a + 1]
            if hi <= lo:
                continue
            t = threadid()
            g = group[a]
            first[t, g, days[lo]] += 1
            for w in range(n_win):
                width = windows[w]
                s = days[lo]
                e = s + width - 1
                for j in range(lo + 1, hi):
                    d = days[j]
                    if d <= e + 1:
                        e = d + width - 1
                    else:
                        diff[t, w, g, s] += 1
                        diff[t, w, g, min(e, n_days - 1) + 1] -= 1
                        s = d
                        e = d + width - 1
                diff[t, w, g, s] += 1
                diff[t, w, g, min(e, n_days - 1) + 1] -= 1
    total = np.asarray(diff).sum(axis=0)
    counts = np.cumsum(total[:, :, :n_days], axis=2)
    return counts, np.asarray(first).sum(axis=0)


def days_active_hist(const int64_t[::1] offsets, const int32_t[::1] days,
                     const int32_t[::1] group, int n_groups,
                     const int32_t[::1] period_of_day, int n_periods, int max_len,
                     int nthreads):
    """Actors per (group, period, k) that were active on exactly k distinct days of the period."""
    cdef int64_t n_actors = offsets.shape[0] - 1
    cdef int64_t[:, :, :, ::1] hist = np.zeros((nthreads, n_groups, n_periods, max_len + 1), dtype=np.int64)
    cdef int64_t a, j, lo, hi
    cdef int t, g
    cdef int32_t p, cur, run
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            lo = offsets[a]
            hi = offsets[a + 1]
            if hi <= lo:
                continue
            t = threadid()
            g = group[a]
            cur = period_of_day[days[lo]]
            run = 0
            for j in range(lo, hi):
                p = period_of_day[days[j]]
                if p != cur:
                    hist[t, g, cur, run] += 1
                    cur = p
                    run = 0
                run = run + 1
            hist[t, g, cur, run] += 1
    return np.asarray(hist).sum(axis=0)
