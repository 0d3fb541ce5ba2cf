# Session kernel: split each actor's qualifying events (sorted by local day, then time) into
# sessions and tally them per (group, day). A session continues while consecutive events are
# at most ``gap_us`` apart and on the same local day.
#
# Counts and durations (integer microseconds) are accumulated per thread and summed at the
# end; every session's duration is also written out (in actor order) for the exact median.
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t

from engage_core._hash cimport actor_chunk

import numpy as np


def session_stats(const int64_t[::1] offsets, const int32_t[::1] dayoff, const int64_t[::1] ts,
                  const int32_t[::1] group, int n_groups, int n_days, int64_t gap_us,
                  int nthreads):
    """Each actor's rows are ``offsets[a]:offsets[a + 1]`` of ``dayoff`` and ``ts``, sorted by
    day then time (sorted copies: _common.sorted_records).

    Per (group, day): sessions, actors with a session, events and the summed duration
    (us), as ``int64[4, G, D]``; plus every session's key ``group * n_days + day`` and
    duration (us), for medians."""
    cdef int64_t n_actors = offsets.shape[0] - 1
    cdef int64_t[:, :, :, ::1] acc = np.zeros((nthreads, 4, n_groups, n_days), dtype=np.int64)
    cdef int64_t[::1] start = np.zeros(n_actors + 1, dtype=np.int64)
    cdef int64_t a, j, r, k, cnt, t0, tp, n_ev
    cdef int32_t d, dp
    cdef int t, g
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            if offsets[a + 1] <= offsets[a]:
                continue
            t = threadid()
            g = group[a]
            cnt = 0
            r = offsets[a]
            dp = dayoff[r]
            tp = ts[r]
            t0 = tp
            n_ev = 0
            acc[t, 1, g, dp] += 1
            for j in range(offsets[a], offsets[a + 1]):
                r = j
                d = dayoff[r]
                if d != dp or ts[r] - tp > gap_us:
                    acc[t, 0, g, dp] += 1
                    acc[t, 2, g, dp] += n_ev
                    acc[t, 3, g, dp] += tp - t0
                    cnt = cnt + 1
                    if d != dp:
                        acc[t, 1, g, d] += 1
                    t0 = ts[r]
                    n_ev = 0
                dp = d
                tp = ts[r]
                n_ev = n_ev + 1
            acc[t, 0, g, dp] += 1
            acc[t, 2, g, dp] += n_ev
            acc[t, 3, g, dp] += tp - t0
            start[a + 1] = cnt + 1
        for a in range(n_actors):
            start[a + 1] += start[a]
    cdef int64_t total = start[n_actors]
    cdef int64_t[::1] keys = np.empty(total, dtype=np.int64)
    cdef int64_t[::1] durs = np.empty(total, dtype=np.int64)
    with nogil:
        for a in prange(n_actors, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_actors, nthreads)):
            if offsets[a + 1] <= offsets[a]:
                continue
            g = group[a]
            k = start[a]
            r = offsets[a]
            dp = dayoff[r]
            tp = ts[r]
            t0 = tp
            for j in range(offsets[a], offsets[a + 1]):
                r = j
                d = dayoff[r]
                if d != dp or ts[r] - tp > gap_us:
                    keys[k] = <int64_t>g * n_days + dp
                    durs[k] = tp - t0
                    k = k + 1
                    t0 = ts[r]
                dp = d
                tp = ts[r]
            keys[k] = <int64_t>g * n_days + dp
            durs[k] = tp - t0
    return np.asarray(acc).sum(axis=0), np.asarray(keys), np.asarray(durs)
