# Retention kernels: for every user, the set of cohort offsets in which they had a return
# event (a bitset) and the largest such offset; then cohort counts for classic, unbounded
# and bracketed retention. Calendar offsets count periods; rolling offsets count fixed
# lengths of time from the user's first start instant.
from cython.parallel cimport prange, threadid
from libc.stdint cimport INT64_MAX, int32_t, int64_t, intptr_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset

from engage_core._columns cimport Int64Chunks
from engage_core._hash cimport RowWalk, floordiv, next_piece, thread_rows, zero_fill

cdef extern from *:
    """
    #include "_simd.h"
    #define ENGAGE_PREFETCH(p) __builtin_prefetch((const void*)(p))

    /* Cohort counts of a few 64-user columns of period bitmaps (tally_from_bitmaps), each
       column's P words in a row: a user's cohort is their first period with a bit, so the
       users of cohort p are new = per[p] & ~(the periods before); classic retention at
       offset k counts new & per[p + k], unbounded new & (per[p + k] | per[p + k + 1] | ...),
       a bracket new & (the ORed periods of its offsets). */
    ENGAGE_POPCNT_CLONES
    static void engage_retention_columns(const uint64_t* per, int64_t ncols, int64_t P,
                                         int64_t K, const int32_t* br, int64_t B,
                                         uint64_t* suf, int64_t* size, int64_t* ret,
                                         int64_t* unb, int64_t* bret) {
        for (int64_t j = 0; j < ncols; j++) {
            const uint64_t* col = per + j * P;
            uint64_t seen = 0;
            suf[P] = 0;
            for (int64_t p = P - 1; p >= 0; p--) suf[p] = suf[p + 1] | col[p];
            for (int64_t p = 0; p < P; p++) {
                uint64_t fresh = col[p] & ~seen;
                seen |= col[p];
                if (!fresh) continue;
                size[p] += __builtin_popcountll(fresh);
                int64_t kn = K < P - p ? K : P - p;
                for (int64_t k = 0; k < kn; k++) {
                    ret[p * K + k] += __builtin_popcountll(fresh & col[p + k]);
                    unb[p * K + k] += __builtin_popcountll(fresh & suf[p + k]);
                }
                for (int64_t b = 0; b < B; b++) {
                    uint64_t any = 0;
                    for (int64_t k = br[2 * b]; k <= br[2 * b + 1] && p + k < P; k++)
                        any |= col[p + k];
                    bret[p * B + b] += __builtin_popcountll(fresh & any);
                }
            }
        }
    }
    """
    int ctz64 "__builtin_ctzll"(unsigned long long) nogil
    int clz64 "__builtin_clzll"(unsigned long long) nogil
    void ENGAGE_PREFETCH(const void* p) noexcept nogil
    void retention_columns "engage_retention_columns"(
        const uint64_t* per, int64_t ncols, int64_t P, int64_t K, const int32_t* br,
        int64_t B, uint64_t* suf, int64_t* size, int64_t* ret, int64_t* unb,
        int64_t* bret) noexcept nogil

import numpy as np

from engage_core._scratch import per_thread

cdef int64_t MAX_K = 2147483647


cdef inline int64_t rolling_offset(int64_t delta, int64_t length_us,
                                   double inv_length) noexcept nogil:
    """``min(delta // length_us, MAX_K)`` for ``delta >= 0``: a float estimate, corrected to
    be exact."""
    cdef int64_t k = <int64_t>(<double>delta * inv_length)
    if k * length_us > delta:
        k = k - 1
    elif (k + 1) * length_us <= delta:
        k = k + 1
    return MAX_K if k > MAX_K else k


def offset_bits(const int32_t[::1] user, ts, const int32_t[::1] dayoff,
                mask, const int32_t[::1] cohort, const int64_t[::1] t0,
                const int32_t[::1] period_of_day, bint rolling, int64_t length_us,
                int n_bits, int64_t n_users, int nthreads):
    """Per user: a bitset of the offsets ``0 <= k < n_bits`` with a return event, and the
    largest offset with one (-1 if none).

    Calendar: ``k = period(row) - cohort[user]``. Rolling: ``k = floor((ts - t0[user]) /
    length_us)`` for rows at or after ``t0``. ``ts``: the instants, an int64 array or the
    prepared chunks (_columns.Int64Chunks; read only by rolling windows). Returns
    ``(bits[n_users * words], max_k)``.
    """
    from engage_core._columns import as_chunks
    cdef Int64Chunks ts_col = as_chunks(ts)
    cdef const int64_t[::1] tsv
    cdef int64_t words = (n_bits + 63) // 64
    cdef int64_t n = user.shape[0]
    cdef uint64_t[::1] bits = np.empty(max(n_users * words, 1), dtype=np.uint64)
    cdef int32_t[::1] max_k = np.full(n_users, -1, dtype=np.int32)
    cdef const uint8_t[::1] m
    cdef bint use_mask = mask is not None
    cdef int t
    cdef int64_t i, u, lo, hi, k, delta
    cdef int32_t c
    cdef double inv_length = 1.0 / length_us if length_us > 0 else 0.0
    m = mask if use_mask else np.ones(1, dtype=np.uint8)
    if rolling and ts_col.n != n:
        raise ValueError(f"offset_bits: {ts_col.n} instants for {n} rows")
    if rolling and n_bits < 64:
        return _rolling_bits(user, ts_col, m, use_mask, cohort, t0, length_us, n_bits, n_users,
                             nthreads)
    if not rolling:
        tsv = np.zeros(1, dtype=np.int64)  # not read
    elif len(ts_col.arrays) == 1:
        tsv = ts_col.arrays[0][0]
    else:
        from engage_core._gather import join
        tsv = join(ts_col, nthreads)
    with nogil:
        zero_fill(&bits[0], bits.shape[0] * sizeof(uint64_t), nthreads)
        # Each thread owns a contiguous range of users: no two threads write the same word.
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            lo = n_users * t // nthreads
            hi = n_users * (t + 1) // nthreads
            for i in range(n):
                u = user[i]
                if u < lo or u >= hi or (use_mask and not m[i]):
                    continue
                c = cohort[u]
                if c < 0:
                    continue
                if rolling:
                    delta = tsv[i] - t0[u]
                    if delta < 0:
                        continue
                    k = rolling_offset(delta, length_us, inv_length)
                else:
                    k = period_of_day[dayoff[i]] - c
                    if k < 0:
                        continue
                if k > max_k[u]:
                    max_k[u] = <int32_t>k
                if k < n_bits:
                    bits[u * words + (k >> 6)] |= (<uint64_t>1) << (k & 63)
    return np.asarray(bits), np.asarray(max_k)


def tally(const int32_t[::1] cohort, const int32_t[::1] group, int n_groups, int n_periods,
          const uint64_t[::1] bits, int n_bits, const int32_t[::1] max_k, int max_offset,
          const int32_t[:, ::1] brackets, int nthreads):
    """Cohort sizes, classic and unbounded retained users per offset, and retained users
    per bracket, by (group, cohort period). Users count in group 0 ('all') and in
    ``group[u]`` when it is > 0.

    Per user, only the set offsets are visited (classic); unbounded retention counts the
    users by their largest offset (capped at max_offset + 1) and sums those from the top;
    a bracket is one AND with its offsets' mask."""
    cdef int64_t n_users = cohort.shape[0]
    cdef int64_t words = (n_bits + 63) // 64
    cdef int K = max_offset + 1
    cdef int B = brackets.shape[0]
    # per thread, padded apart (per_thread): cell (g, c) at g * n_periods + c
    cdef int64_t GP = n_groups * n_periods, BB = max(B, 1)
    cdef int64_t[:, ::1] size = per_thread(nthreads, GP)
    cdef int64_t[:, ::1] ret = per_thread(nthreads, GP * K)
    cdef int64_t[:, ::1] top = per_thread(nthreads, GP * (K + 1))
    cdef int64_t[:, ::1] bret = per_thread(nthreads, GP * BB)
    # each bracket's offsets as a mask of words
    cdef uint64_t[:, ::1] bmask = np.zeros((BB, words), dtype=np.uint64)
    cdef uint64_t w
    cdef int64_t u, base, cell, j
    cdef int t, g, gi, ng, k, b, hit, mk
    cdef int32_t c
    for b in range(B):
        for k in range(brackets[b, 0], min(brackets[b, 1], n_bits - 1) + 1):
            bmask[b, k >> 6] |= (<uint64_t>1) << (k & 63)
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="static"):
            c = cohort[u]
            if c < 0:
                continue
            t = threadid()
            g = group[u]
            ng = 2 if g > 0 else 1
            base = u * words
            mk = max_k[u] + 1
            if mk > K:
                mk = K
            for gi in range(ng):
                g = 0 if gi == 0 else group[u]
                cell = g * n_periods + c
                size[t, cell] += 1
                top[t, cell * (K + 1) + mk] += 1
                for j in range(words):
                    w = bits[base + j]
                    while w:
                        k = <int>(j * 64) + ctz64(w)
                        if k >= K:
                            break
                        ret[t, cell * K + k] += 1
                        w = w & (w - 1)
                for b in range(B):
                    hit = 0
                    for j in range(words):
                        if bits[base + j] & bmask[b, j]:
                            hit = 1
                    bret[t, cell * BB + b] += hit
    shape = (n_groups, n_periods)
    # users retained "on or after" offset k: those whose largest offset is k or more
    by_top = np.asarray(top)[:, :GP * (K + 1)].sum(axis=0).reshape(shape + (K + 1,))
    unb = np.cumsum(by_top[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]
    return (np.asarray(size)[:, :GP].sum(axis=0).reshape(shape),
            np.asarray(ret)[:, :GP * K].sum(axis=0).reshape(shape + (K,)),
            np.ascontiguousarray(unb),
            np.asarray(bret)[:, :GP * BB].sum(axis=0).reshape(shape + (BB,))[:, :, :B])


ctypedef fused roll_t:
    uint16_t
    uint32_t
    uint64_t


cdef void rolling_rows(roll_t* st, const int32_t* user, const int64_t* ts,
                       const uint8_t* m, bint use_mask, const int64_t* start,
                       int64_t length_us, int64_t a, int64_t b) noexcept nogil:
    """Rows a..b into one thread's states: bit min(k, width - 1) of the user's word
    (``ts[i]``: row i's instant)."""
    cdef int64_t i, k, t_i, s, top = sizeof(roll_t) * 8 - 1
    cdef int32_t u
    cdef double inv_length = 1.0 / length_us if length_us > 0 else 0.0
    for i in range(a, b):
        if i + 16 < b:
            u = user[i + 16]
            ENGAGE_PREFETCH(&start[u])
            ENGAGE_PREFETCH(&st[u])
        if use_mask and not m[i]:
            continue
        u = user[i]
        t_i = ts[i]
        s = start[u]
        if t_i < s:  # before the first start, or no cohort
            continue
        k = rolling_offset(t_i - s, length_us, inv_length)
        st[u] = st[u] | <roll_t>((<roll_t>1) << (k if k < top else top))


cdef void rolling_thread(roll_t* st, int64_t n_states, const int32_t* user,
                         const int64_t[::1] data, const int64_t[::1] chunk_start,
                         const uint8_t* m, bint use_mask, const int64_t* start,
                         int64_t length_us, int64_t n, int t, int nthreads) noexcept nogil:
    """Thread t's share of the rows (in the instants' chunks) into its zeroed states."""
    cdef RowWalk rw = thread_rows(chunk_start, n, t, nthreads)
    memset(st, 0, n_states * sizeof(roll_t))
    while next_piece(&rw, chunk_start):
        rolling_rows(st, user, (<const int64_t*><intptr_t>data[rw.chunk]) - chunk_start[rw.chunk],
                     m, use_mask, start, length_us, rw.lo, rw.hi)


cdef void rolling_merge(const roll_t* st, int64_t stride, int nthreads, int64_t n_users,
                        uint64_t keep, int n_bits, uint64_t* bits,
                        int32_t* max_k) noexcept nogil:
    """Each user's words ORed over the threads: the offsets under n_bits, and the largest
    offset capped at n_bits."""
    cdef int64_t u
    cdef uint64_t acc
    cdef int q, top
    for u in prange(n_users, num_threads=nthreads, schedule="static"):
        acc = 0
        for q in range(nthreads):
            acc = acc | st[q * stride + u]
        bits[u] = acc & keep
        top = 63 - clz64(acc) if acc else -1
        max_k[u] = top if top < n_bits else n_bits


def _rolling_bits(const int32_t[::1] user, Int64Chunks ts, const uint8_t[::1] m,
                  bint use_mask, const int32_t[::1] cohort, const int64_t[::1] t0,
                  int64_t length_us, int n_bits, int64_t n_users, int nthreads):
    """offset_bits for rolling windows and under 64 offsets. The users' first instants are
    read by every thread from one array (the log's users numbered in time order read it
    almost in sequence); each thread keeps, for its contiguous range of rows, one word of
    offsets per user: 16 bits under 16 offsets (1M users: 2 MB a thread, beside the 8 MB
    of instants, where 16-byte records of instant and offsets took 16 MB a thread and
    missed the cache on 2 threads). An offset past the word's width sets its top bit, so
    the largest offset comes out exact below n_bits and as n_bits above (tally asks at
    most n_bits - 1). The words are merged per user (OR)."""
    cdef uint64_t[::1] bits = np.empty(max(n_users, 1), dtype=np.uint64)
    cdef int32_t[::1] max_k = np.empty(max(n_users, 1), dtype=np.int32)
    cdef int64_t n = user.shape[0], u
    cdef const int64_t[::1] data = ts.data
    cdef const int64_t[::1] chunk_start = ts.start
    cdef uint64_t keep = ((<uint64_t>1) << n_bits) - 1
    cdef int width = 16 if n_bits < 16 else (32 if n_bits < 32 else 64)
    # a row of states per thread, padded to whole cache lines
    cdef int64_t stride = (max(n_users, 1) * width // 8 + 63) // 64 * 64 * 8 // width
    cdef bint no_start = False
    cdef int t
    if n == 0 or n_users == 0:
        return np.zeros(n_users, dtype=np.uint64), np.full(n_users, -1, dtype=np.int32)
    with nogil:
        for u in range(n_users):
            if cohort[u] < 0:
                no_start = True
                break
    # users without a cohort start never
    cdef const int64_t[::1] start = (np.where(np.asarray(cohort) >= 0, np.asarray(t0), INT64_MAX)
                                     if no_start else t0)
    state = np.empty(nthreads * stride, dtype={16: np.uint16, 32: np.uint32, 64: np.uint64}[width])
    cdef uint16_t[::1] s16 = state if width == 16 else None
    cdef uint32_t[::1] s32 = state if width == 32 else None
    cdef uint64_t[::1] s64 = state if width == 64 else None
    with nogil:
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            if width == 16:
                rolling_thread(&s16[t * stride], stride, &user[0], data, chunk_start, &m[0],
                               use_mask, &start[0], length_us, n, t, nthreads)
            elif width == 32:
                rolling_thread(&s32[t * stride], stride, &user[0], data, chunk_start, &m[0],
                               use_mask, &start[0], length_us, n, t, nthreads)
            else:
                rolling_thread(&s64[t * stride], stride, &user[0], data, chunk_start, &m[0],
                               use_mask, &start[0], length_us, n, t, nthreads)
        if width == 16:
            rolling_merge(&s16[0], stride, nthreads, n_users, keep, n_bits, &bits[0], &max_k[0])
        elif width == 32:
            rolling_merge(&s32[0], stride, nthreads, n_users, keep, n_bits, &bits[0], &max_k[0])
        else:
            rolling_merge(&s64[0], stride, nthreads, n_users, keep, n_bits, &bits[0], &max_k[0])
    return np.asarray(bits)[:n_users], np.asarray(max_k)[:n_users]


def offset_bits_from_days(const int64_t[::1] offsets, const int32_t[::1] days,
                          const int32_t[::1] cohort, const int32_t[::1] period_of_day,
                          int n_bits, int nthreads):
    """Calendar offset bitsets (as ``offset_bits``) from each user's sorted distinct return
    days (CSR), without another pass over the rows."""
    cdef int64_t n_users = cohort.shape[0]
    cdef int64_t words = (n_bits + 63) // 64
    cdef uint64_t[::1] bits = np.empty(max(n_users * words, 1), dtype=np.uint64)
    cdef int32_t[::1] max_k = np.full(n_users, -1, dtype=np.int32)
    cdef int64_t u, j, k
    cdef int32_t c
    with nogil:
        zero_fill(&bits[0], bits.shape[0] * sizeof(uint64_t), nthreads)
        for u in prange(n_users, num_threads=nthreads, schedule="static"):
            c = cohort[u]
            if c < 0:
                continue
            for j in range(offsets[u], offsets[u + 1]):
                k = period_of_day[days[j]] - c
                if k < 0:
                    continue
                max_k[u] = <int32_t>k  # days ascend, so the last one is the largest
                if k < n_bits:
                    bits[u * words + (k >> 6)] |= (<uint64_t>1) << (k & 63)
    return np.asarray(bits), np.asarray(max_k)


cdef inline void or_periods(const uint64_t* rows, int64_t words, int64_t R,
                            const int32_t* period_of_row, int64_t j0, int64_t j1, int64_t P,
                            uint64_t* per) noexcept nogil:
    """The words j0..j1 of bitmap rows ``rows[R, words]`` ORed into their periods' words:
    ``per[(j - j0) * P + period]``, each column's P periods side by side (sequential reads
    of each row's words)."""
    cdef int64_t q, d, j
    cdef int32_t p
    for q in range((j1 - j0) * P):
        per[q] = 0
    for d in range(R):
        p = period_of_row[d]
        for j in range(j0, j1):
            # the row two ahead, a cache line at a time: the rows' pieces are short runs
            # far apart, which the hardware does not fetch ahead (180 days to weeks:
            # 1 thread 7.0 -> 5.5 ms, 2 threads 4.5 -> 2.9)
            if (j & 7) == 0 and d + 2 < R:
                ENGAGE_PREFETCH(&rows[(d + 2) * words + j])
            per[(j - j0) * P + p] |= rows[d * words + j]


def offset_bits_from_bitmaps(const uint64_t[:, ::1] day_bits, const int32_t[::1] period_of_day,
                             int n_periods, int64_t n_users, int n_bits, int nthreads):
    """Cohorts and calendar offset bitsets (as ``offset_bits_from_days``) from the users'
    day bitmaps (``_activity.day_bitmaps``): ``(cohort, bits, max_k)``, the cohort being the
    period of each user's first day (-1: none).

    Threads take tiles of 64-user columns: each day's words of the tile are ORed into its
    period's words (sequential reads), then each active (user, period) pair is listed from
    its period word, and each user's periods give the cohort (the first) and the offsets."""
    cdef int64_t D = day_bits.shape[0], words = day_bits.shape[1] if D else 0
    cdef int64_t bw = (n_bits + 63) // 64
    cdef int64_t P = max(n_periods, 1), pw = (P + 63) // 64
    cdef int64_t width = max(1, min(256, (128 << 10) // (8 * P)))
    cdef int32_t[::1] cohort = np.full(n_users, -1, dtype=np.int32)
    cdef int32_t[::1] max_k = np.full(n_users, -1, dtype=np.int32)
    cdef uint64_t[::1] bits = np.empty(max(n_users * bw, 1), dtype=np.uint64)
    cdef uint64_t[:, ::1] per = per_thread(nthreads, width * P, np.uint64)
    cdef uint64_t[:, ::1] um = per_thread(nthreads, 64 * pw, np.uint64)
    cdef int64_t tiles = (words + width - 1) // width, tile, j0, j1, j, d, p, q, b, u, k, c, top, w
    cdef uint64_t x
    cdef int t
    if D == 0 or words == 0:
        return np.asarray(cohort), np.asarray(bits), np.asarray(max_k)
    with nogil:
        zero_fill(&bits[0], bits.shape[0] * sizeof(uint64_t), nthreads)
        for tile in prange(tiles, num_threads=nthreads, schedule="dynamic", chunksize=1):
            t = threadid()
            j0 = tile * width
            j1 = min(j0 + width, words)
            or_periods(&day_bits[0, 0], words, D, &period_of_day[0], j0, j1, P, &per[t, 0])
            for j in range(j0, j1):
                for q in range(64 * pw):
                    um[t, q] = 0
                for p in range(P):  # each active (user, period) pair of the column
                    x = per[t, (j - j0) * P + p]
                    while x:
                        b = ctz64(x)
                        um[t, b * pw + (p >> 6)] |= (<uint64_t>1) << (p & 63)
                        x = x & (x - 1)
                for b in range(64):
                    u = j * 64 + b
                    if u >= n_users:
                        break
                    c = -1  # the first period, then each period's offset from it
                    top = -1
                    for w in range(pw):
                        x = um[t, b * pw + w]
                        while x:
                            p = w * 64 + ctz64(x)
                            x = x & (x - 1)
                            if c < 0:
                                c = p
                            k = p - c
                            top = k
                            if k < n_bits:
                                bits[u * bw + (k >> 6)] |= (<uint64_t>1) << (k & 63)
                    cohort[u] = <int32_t>c
                    max_k[u] = <int32_t>top
    return np.asarray(cohort), np.asarray(bits), np.asarray(max_k)


# tally_from_bitmaps counts per 64-user column and period pair, the per-user path per user:
# the first is cheaper while there are fewer periods than users in a column
BITMAP_TALLY_MAX_PERIODS = 64


def tally_from_bitmaps(const uint64_t[:, ::1] row_bits, const int32_t[::1] period_of_row,
                       int n_periods, int max_offset, const int32_t[:, ::1] brackets,
                       int nthreads):
    """Calendar retention counts (``tally``'s four arrays, one group) straight from bitmaps
    of users per day or per period (``_activity.day_bitmaps``; ``period_of_row``: the
    non-decreasing period of each bitmap row), without a per-user pass.

    Threads take tiles of 64-user columns: each row's words of the tile are ORed into its
    period's words (sequential reads), then each column is counted by
    ``engage_retention_columns`` (popcounts of 64 users at a time)."""
    cdef int64_t R = row_bits.shape[0], words = row_bits.shape[1] if R else 0
    cdef int64_t P = max(n_periods, 1), K = max_offset + 1, B = brackets.shape[0]
    cdef int64_t width = max(1, min(256, (128 << 10) // (8 * P)))
    cdef int64_t[:, ::1] size = per_thread(nthreads, P)
    cdef int64_t[:, ::1] ret = per_thread(nthreads, P * K)
    cdef int64_t[:, ::1] unb = per_thread(nthreads, P * K)
    cdef int64_t[:, ::1] bret = per_thread(nthreads, P * max(B, 1))
    cdef uint64_t[:, ::1] per = per_thread(nthreads, width * P, np.uint64)
    cdef uint64_t[:, ::1] suf = per_thread(nthreads, P + 1, np.uint64)
    cdef int32_t[:, ::1] br = np.ascontiguousarray(brackets) if B else np.zeros((1, 2), np.int32)
    cdef int64_t tiles = (words + width - 1) // width, tile, j0, j1
    cdef int t
    with nogil:
        for tile in prange(tiles, num_threads=nthreads, schedule="dynamic", chunksize=1):
            t = threadid()
            j0 = tile * width
            j1 = min(j0 + width, words)
            or_periods(&row_bits[0, 0], words, R, &period_of_row[0], j0, j1, P, &per[t, 0])
            retention_columns(&per[t, 0], j1 - j0, P, K, &br[0, 0], B, &suf[t, 0],
                              &size[t, 0], &ret[t, 0], &unb[t, 0], &bret[t, 0])
    cdef int64_t used = max(n_periods, 1)
    P = n_periods
    return (np.asarray(size)[:, :used].sum(axis=0)[None, :P],
            np.asarray(ret)[:, :used * K].sum(axis=0).reshape(1, -1, K)[:, :P],
            np.asarray(unb)[:, :used * K].sum(axis=0).reshape(1, -1, K)[:, :P],
            np.asarray(bret)[:, :used * max(B, 1)].sum(axis=0).reshape(1, -1, max(B, 1))[:, :P, :B])


def cohort_instant_range(const int32_t[::1] cohort, const int32_t[::1] group,
                         const int64_t[::1] t0, int n_groups, int n_periods, int nthreads=1):
    """Earliest and latest first-start instant per (group, cohort period); users count in
    group 0 and in ``group[u]`` when it is > 0. Cells without users hold INT64_MAX / MIN.
    Each thread takes a range of users into cells of its own, merged at the end."""
    cdef int64_t GP = n_groups * n_periods
    cdef int64_t[:, ::1] lo = per_thread(nthreads, GP, np.int64, np.iinfo(np.int64).max)
    cdef int64_t[:, ::1] hi = per_thread(nthreads, GP, np.int64, np.iinfo(np.int64).min)
    cdef int64_t u, n = cohort.shape[0], cell
    cdef int32_t c
    cdef int g, gi, t
    with nogil:
        for u in prange(n, num_threads=nthreads, schedule="static"):
            c = cohort[u]
            if c < 0:
                continue
            t = threadid()
            for g in range(2):
                if g == 1 and group[u] <= 0:
                    break
                gi = 0 if g == 0 else group[u]
                cell = gi * n_periods + c
                if t0[u] < lo[t, cell]:
                    lo[t, cell] = t0[u]
                if t0[u] > hi[t, cell]:
                    hi[t, cell] = t0[u]
    shape = (n_groups, n_periods)
    return (np.asarray(lo)[:, :GP].min(axis=0).reshape(shape),
            np.asarray(hi)[:, :GP].max(axis=0).reshape(shape))
