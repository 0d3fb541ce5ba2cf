# Kernels over rows grouped first: the users of each day (day bitmaps of a log in no time
# order), and each user's rows in time order (their distinct days and first row, read off
# the order the sequence metrics sort the rows in).
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from engage_core._hash cimport actor_chunk, count_runs, thread_places, zero_fill

import numpy as np


# a log in no time order of at least this many rows: its users grouped by day first
BY_DAY_FROM = 1 << 16


def bitmaps_by_day(const int32_t[::1] user, const int32_t[::1] day, const uint8_t[::1] m,
                   bint use_mask, const int32_t[::1] od, bint use_od, int32_t first,
                   int n_days, int64_t words, int nthreads):
    """day_bitmaps of a log in no time order: its users grouped by day (or period) first, a
    counting sort whose few hundred write streams stay in cache, then each day's bits set
    by one thread in that day's bitmap alone (in cache) with no atomic. Setting each row's
    bit where it falls reads and writes all the bitmaps at random (10M shuffled rows, 180
    days, 1M users: 22 MB)."""
    cdef int64_t n = user.shape[0], i, j, total
    cdef int64_t[:, ::1] at = np.zeros((nthreads, n_days + 1), dtype=np.int64)
    cdef int64_t[::1] start = np.zeros(n_days + 1, dtype=np.int64)
    cdef uint64_t[:, ::1] bits = np.empty((max(n_days, 1), max(words, 1)), dtype=np.uint64)
    cdef int32_t[::1] grouped
    cdef int32_t d, u
    cdef int t
    cdef uint64_t* row
    with nogil:
        zero_fill(&bits[0, 0], bits.shape[0] * bits.shape[1] * sizeof(uint64_t), nthreads)
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            for i in range(n * t // nthreads, n * (t + 1) // nthreads):
                if user[i] >= 0 and (not use_mask or m[i]):
                    d = day[i] - first
                    at[t, od[d] if use_od else d] += 1
        thread_places(&at[0, 0], at.shape[1], nthreads, n_days, &start[0])
    total = start[n_days]
    grouped = np.empty(max(total, 1), dtype=np.int32)
    with nogil:
        for t in prange(nthreads, num_threads=nthreads, schedule="static"):
            for i in range(n * t // nthreads, n * (t + 1) // nthreads):
                u = user[i]
                if u >= 0 and (not use_mask or m[i]):
                    d = day[i] - first
                    if use_od:
                        d = od[d]
                    grouped[at[t, d]] = u
                    at[t, d] += 1
        for d in prange(n_days, num_threads=nthreads, schedule="dynamic", chunksize=1):
            row = &bits[d, 0]
            for j in range(start[d], start[d + 1]):
                u = grouped[j]
                row[u >> 6] |= (<uint64_t>1) << (u & 63)
    return np.asarray(bits)[:n_days]


def days_of_sorted(const int64_t[::1] offsets, const int32_t[::1] dayoff, int nthreads):
    """Each user's distinct days as CSR ``(offsets[n_users + 1], days)``, as
    _activity.actor_days gives them, read off the users' rows sorted by day (``offsets``:
    each user's rows; ``dayoff``: their day offsets in that order, non-decreasing within a
    user): two passes in row order instead of a bitset per user written at random."""
    cdef int64_t n_users = offsets.shape[0] - 1, u, j, cnt, acc
    cdef int64_t[::1] out_off = np.zeros(n_users + 1, dtype=np.int64)
    cdef int32_t[::1] days
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            out_off[u + 1] = count_runs(&dayoff[0], offsets[u], offsets[u + 1])
        acc = 0
        for u in range(n_users):
            acc = acc + out_off[u + 1]
            out_off[u + 1] = acc
    days = np.empty(max(out_off[n_users], 1), dtype=np.int32)
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            cnt = out_off[u]
            for j in range(offsets[u], offsets[u + 1]):
                if j == offsets[u] or dayoff[j] != dayoff[j - 1]:  # as count_runs
                    days[cnt] = dayoff[j]
                    cnt = cnt + 1
    return np.asarray(out_off), np.asarray(days)[:out_off[n_users]]


def split_by_slot(const int64_t[::1] offsets, const int32_t[::1] codes,
                  const int64_t[::1] slot_of, int64_t n_slots, const int64_t[::1] ts,
                  const int32_t[::1] dayoff, const int32_t[::1] of_day, rows, int nthreads):
    """The users' time order split by slot: what sort_rows gives for the key ``user *
    n_slots + slot`` (``slot_of[code + 1]``, -1: no slot, left out), read off the users'
    rows already sorted by time (``offsets``, ``codes``, ``ts``, ``dayoff``: the order's
    CSR and copies) instead of sorted again: ``(offsets[n_users * n_slots + 1], times,
    periods (of_day of the day offsets), rows or None)``, each key's rows in time order.
    ``rows``: the order's row numbers (int32), to carry along, or None."""
    cdef int64_t n_users = offsets.shape[0] - 1, u, j, k, s, p
    cdef int64_t n_keys = n_users * n_slots
    cdef int64_t[::1] at = np.zeros(n_keys + 1, dtype=np.int64)
    cdef bint carry = rows is not None
    cdef const int32_t[::1] rv = rows if carry else np.zeros(1, dtype=np.int32)
    cdef int64_t[::1] out_ts
    cdef int32_t[::1] out_per
    cdef int32_t[::1] out_rows
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            k = u * n_slots + 1  # the user's first key's count
            for j in range(offsets[u], offsets[u + 1]):
                s = slot_of[codes[j] + 1]
                if s >= 0:
                    at[k + s] += 1
        for k in range(n_keys):
            at[k + 1] += at[k]
    key_offsets = np.asarray(at).copy()
    out_ts = np.empty(max(at[n_keys], 1), dtype=np.int64)
    out_per = np.empty(max(at[n_keys], 1), dtype=np.int32)
    out_rows = np.empty(max(at[n_keys], 1) if carry else 1, dtype=np.int32)
    with nogil:
        for u in prange(n_users, num_threads=nthreads, schedule="dynamic",
                        chunksize=actor_chunk(n_users, nthreads)):
            for j in range(offsets[u], offsets[u + 1]):
                s = slot_of[codes[j] + 1]
                if s >= 0:
                    p = at[u * n_slots + s]
                    at[u * n_slots + s] = p + 1
                    out_ts[p] = ts[j]
                    out_per[p] = of_day[dayoff[j]]
                    if carry:
                        out_rows[p] = rv[j]
    total = key_offsets[n_keys]
    return (key_offsets, np.asarray(out_ts)[:total], np.asarray(out_per)[:total],
            np.asarray(out_rows)[:total] if carry else None)
