# Funnel kernel: the best step each user reaches from their step-1 events of each period.
#
# Input: each (user, slot) list of rows sorted by time, where a slot is one distinct step
# name. From a step-1 event at t1 the greedy choice (for each next step, the earliest unused
# event of its name at or after the previous step's time) reaches the most steps: any valid
# choice of distinct events can be exchanged, step by step, for the greedy one without
# delaying any step. Per slot the greedy picks move forward through the slot's list, so "the
# earliest unused at or after T" is a binary search from one past the slot's last pick.
#
# Cost per user: O(m * n_steps * log L) for m distinct step-1 timestamps and lists of at
# most L events, plus the scan; a period stops evaluating once a user completes the funnel.
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t

from engage_core._hash cimport actor_chunk, touch_pages

import numpy as np

from engage_core._scratch import per_thread


cdef inline int64_t first_at_or_after(const int64_t* tsr, int64_t lo, int64_t hi,
                                      int64_t t) noexcept nogil:
    """First position q in [lo, hi) with tsr[q] >= t (hi if none)."""
    cdef int64_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if tsr[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline int greedy(const int64_t* off, const int64_t* tsr, const int32_t* steps,
                       int n_steps, int n_slots, int64_t base, int64_t i1, int64_t window,
                       int64_t* last) noexcept nogil:
    """Steps reached from the step-1 event at sorted position ``i1`` (its slot's first
    position with that timestamp). ``last`` is scratch space of ``n_slots`` entries."""
    cdef int s, j, reached = 1
    cdef int64_t t1 = tsr[i1], cur = tsr[i1], lo, hi, q
    for s in range(n_slots):
        last[s] = -1
    last[steps[0]] = i1
    for j in range(1, n_steps):
        s = steps[j]
        lo = off[base + s]
        hi = off[base + s + 1]
        if last[s] + 1 > lo:
            lo = last[s] + 1
        q = first_at_or_after(tsr, lo, hi, cur)
        if q >= hi or tsr[q] - t1 > window:
            break
        last[s] = q
        cur = tsr[q]
        reached = reached + 1
    return reached


def best_steps(const int64_t[::1] offsets, const int64_t[::1] tsr, const int32_t[::1] period,
               seg, const int32_t[::1] steps, int n_slots, int64_t n_users, int64_t window,
               int n_groups, int n_periods, int nthreads):
    """Users per (group, period, best step reached), as ``int64[G, P, n_steps + 1]``.

    ``offsets`` is the CSR of key ``user * n_slots + slot``; ``tsr``, ``period`` and ``seg``
    are aligned with the sorted positions. A user enters every period holding one of their
    step-1 events; their group there is 1 + the smallest segment code among the rows at
    their first step-1 instant of the period (group 0, 'all', always counts).
    """
    cdef int n_steps = steps.shape[0]
    cdef int64_t[:, :, :, ::1] hist = np.zeros((nthreads, n_groups, n_periods, n_steps + 1),
                                               dtype=np.int64)
    cdef int64_t[:, ::1] last = per_thread(nthreads, max(n_slots, 1))
    cdef const int32_t[::1] sg
    cdef bint use_seg = seg is not None
    cdef int64_t u, i, a1, b1, base, tf
    cdef int32_t p, g
    cdef int t, best, got
    sg = seg if use_seg else np.zeros(1, dtype=np.int32)
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                       chunksize=actor_chunk(n_users, nthreads)):
            t = threadid()
            base = u * n_slots
            a1 = offsets[base + steps[0]]
            b1 = offsets[base + steps[0] + 1]
            i = a1
            while i < b1:
                p = period[i]
                tf = tsr[i]
                g = sg[i] if use_seg else 0
                best = 0
                while i < b1 and period[i] == p:
                    if use_seg and tsr[i] == tf and sg[i] < g:
                        g = sg[i]
                    if best < n_steps and (i == a1 or tsr[i] != tsr[i - 1]):
                        got = greedy(&offsets[0], &tsr[0], &steps[0], n_steps, n_slots, base,
                                     i, window, &last[t, 0])
                        if got > best:
                            best = got
                    i = i + 1
                hist[t, 0, p, best] += 1
                if use_seg:
                    hist[t, g + 1, p, best] += 1
    return np.asarray(hist).sum(axis=0)


ctypedef fused key_t:
    int32_t
    int64_t


def slot_keys(const int32_t[::1] user, const int32_t[::1] event, const int64_t[::1] slot_of,
              int64_t n_slots, key_t[::1] out, int nthreads):
    """Write each row's key ``user * n_slots + slot`` to ``out`` (int32 when every key fits),
    where ``slot_of[event + 1]`` is the slot of its event code (-1: not a step; then the key
    is -1)."""
    cdef int64_t n = user.shape[0], i, s
    with nogil:
        if n:
            touch_pages(&out[0], n * sizeof(key_t), nthreads)
        for i in prange(n, num_threads=nthreads, schedule="static"):
            s = slot_of[event[i] + 1]
            out[i] = <key_t>(user[i] * n_slots + s) if s >= 0 else -1
    return np.asarray(out)
