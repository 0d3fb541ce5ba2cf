"""The Cython kernels against plain-Python references, on both code paths and thread counts
(scikit-learn's way of testing its kernels)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engage_core import _activity, _bytes_index, _cohorts, _columns, _ingest, _retention


def _ref_days(actor, day, mask, n_actors):
    out = [set() for _ in range(n_actors)]
    for i, (a, d) in enumerate(zip(actor.tolist(), day.tolist())):
        if a >= 0 and (mask is None or mask[i]):
            out[a].add(d)
    return [sorted(s) for s in out]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_actor_days_matches_reference_on_both_paths(seed, threads):
    rng = np.random.default_rng(seed)
    n, n_actors, n_days = int(rng.integers(0, 4000)), int(rng.integers(1, 200)), int(rng.integers(1, 300))
    actor = rng.integers(-1, n_actors, n).astype(np.int32)
    day = rng.integers(0, n_days, n).astype(np.int32)
    mask = rng.integers(0, 2, n).astype(np.uint8) if seed % 2 else None
    expected = _ref_days(actor, day, mask, n_actors)
    words = (n_days + 63) // 64
    first = int(rng.integers(-20000, 20000))  # days given as day numbers, offsets out
    shifted = (day + first).astype(np.int32)
    for offsets, days in (_activity._actor_days_bitset(actor, day, mask, n_actors, words, threads),
                          _activity._actor_days_sort(actor, day, mask, n_actors, threads),
                          _activity.actor_days(actor, day, mask, n_actors, n_days, threads),
                          _activity._actor_days_bitset(actor, shifted, mask, n_actors, words,
                                                       threads, first),
                          _activity._actor_days_sort(actor, shifted, mask, n_actors, threads,
                                                     first),
                          _activity.actor_days(actor, shifted, mask, n_actors, n_days, threads,
                                               first)):
        got = [days[offsets[a]:offsets[a + 1]].tolist() for a in range(n_actors)]
        assert got == expected


@pytest.mark.parametrize("seed", range(8))
def test_window_counts_match_reference_and_threads(seed):
    rng = np.random.default_rng(100 + seed)
    n_actors, n_days, n_groups = 60, int(rng.integers(1, 90)), 3
    actor = rng.integers(0, n_actors, 800).astype(np.int32)
    day = rng.integers(0, n_days, 800).astype(np.int32)
    group = rng.integers(0, n_groups, n_actors).astype(np.int32)
    windows = np.array([1, 3, 7, 30], dtype=np.int32)
    sets = _ref_days(actor, day, None, n_actors)
    offsets, days = _activity.actor_days(actor, day, None, n_actors, n_days, 1)
    results = [_activity.window_counts(offsets, days, group, n_groups, n_days, windows, t)
               for t in (1, 2, 4)]
    counts, first = results[0]
    for other_counts, other_first in results[1:]:
        assert np.array_equal(counts, other_counts) and np.array_equal(first, other_first)
    for wi, w in enumerate(windows.tolist()):
        for g in range(n_groups):
            for e in range(n_days):
                want = sum(1 for a in range(n_actors) if group[a] == g
                           and any(e - w + 1 <= d <= e for d in sets[a]))
                assert counts[wi, g, e] == want
    for g in range(n_groups):
        for d in range(n_days):
            assert first[g, d] == sum(1 for a in range(n_actors)
                                      if group[a] == g and sets[a] and sets[a][0] == d)


def test_first_rows_takes_earliest_then_smallest_segment():
    user = np.array([0, 0, 0, 1, 1, 2], dtype=np.int32)
    ts = np.array([50, 10, 10, 7, 7, 3], dtype=np.int64)
    day = np.array([5, 1, 1, 0, 0, 0], dtype=np.int32)
    seg = np.array([0, 4, 2, 3, 1, 0], dtype=np.int32)
    mask = np.array([1, 1, 1, 1, 1, 0], dtype=np.uint8)
    first_day, first_seg, first_ts = _cohorts.first_rows(user, ts, day, mask, seg, 3)
    assert first_day.tolist() == [1, 0, -1]
    assert first_seg[:2].tolist() == [2, 1]
    assert first_ts[:2].tolist() == [10, 7]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_first_rows_without_segments_match_reference(threads):
    """The 12-byte records of first_rows without segments or remainders: each user's
    earliest selected row (ties at one instant share their day), on any thread count."""
    rng = np.random.default_rng(70 + threads)
    n, n_users = 20_000, 900
    user = rng.integers(0, n_users, n).astype(np.int32)
    ts = rng.integers(-50, 400, n).astype(np.int64) * 1_000  # many rows at one instant
    day = (ts // 86_400 + 3).astype(np.int32)
    mask = (rng.random(n) < 0.7).astype(np.uint8)
    for m in (None, mask):
        keep = np.ones(n, bool) if m is None else m.view(bool)
        first_day, first_seg, first_ts = _cohorts.first_rows(user, ts, day, m, None, n_users,
                                                             threads)
        for u in range(n_users):
            rows = np.flatnonzero(keep & (user == u))
            if len(rows) == 0:
                assert first_day[u] == -1
                continue
            r = rows[np.argmin(ts[rows])]
            assert (first_ts[u], first_day[u], first_seg[u]) == (ts[r], day[r], 0)


@pytest.mark.parametrize("seed", range(6))
def test_lifecycle_and_retention_kernels_match_reference(seed):
    rng = np.random.default_rng(200 + seed)
    n_users, n_days = 40, 70
    user = rng.integers(0, n_users, 500).astype(np.int32)
    day = rng.integers(0, n_days, 500).astype(np.int32)
    period_of_day = (np.arange(n_days) // 7).astype(np.int32)
    n_periods, k_max = 10, 4
    offsets, days = _activity.actor_days(user, day, None, n_users, n_days, 2)
    sets = _ref_days(user, day, None, n_users)
    periods = [sorted({d // 7 for d in s}) for s in sets]
    life = _cohorts.lifecycle_counts(offsets, days, period_of_day, n_periods, 2)
    for p in range(n_periods):
        new = sum(1 for ps in periods if ps and ps[0] == p)
        ret = sum(1 for ps in periods if p in ps and p - 1 in ps)
        res = sum(1 for ps in periods if p in ps and p - 1 not in ps and any(q < p - 1 for q in ps))
        dor = sum(1 for ps in periods if p - 1 in ps and p not in ps)
        assert life[:, p].tolist() == [new, ret, res, dor]
    cohort = np.array([ps[0] if ps else -1 for ps in periods], dtype=np.int32)
    group = rng.integers(1, 3, n_users).astype(np.int32)
    brackets = np.array([[1, 2], [0, 5]], dtype=np.int32)
    for threads in (1, 2):
        bits, max_k = _retention.offset_bits(user, day.astype(np.int64), day, None, cohort,
                                             np.zeros(n_users, np.int64), period_of_day, False,
                                             1, 6, n_users, threads)
        size, ret, unb, bret = _retention.tally(cohort, group, 3, n_periods, bits, 6, max_k,
                                                k_max, brackets, threads)
        for c in range(n_periods):
            members = [u for u in range(n_users) if cohort[u] == c]
            assert size[0, c] == len(members)
            for k in range(k_max + 1):
                assert ret[0, c, k] == sum(1 for u in members if c + k in periods[u])
                assert unb[0, c, k] == sum(1 for u in members if any(q >= c + k for q in periods[u]))
                for g in (1, 2):
                    assert ret[g, c, k] == sum(1 for u in members
                                               if group[u] == g and c + k in periods[u])
            for b, (lo, hi) in enumerate(brackets.tolist()):
                assert bret[0, c, b] == sum(1 for u in members
                                            if any(c + k in periods[u] for k in range(lo, hi + 1)))


def test_rolling_offsets_count_fixed_lengths_from_the_first_instant():
    user = np.array([0, 0, 0, 0, 1], dtype=np.int32)
    ts = np.array([100, 99, 100 + 10, 100 + 35, 7], dtype=np.int64)
    day = np.zeros(5, dtype=np.int32)
    cohort = np.array([0, -1], dtype=np.int32)
    t0 = np.array([100, 0], dtype=np.int64)
    bits, max_k = _retention.offset_bits(user, ts, day, None, cohort, t0, np.zeros(1, np.int32),
                                         True, 10, 64, 2, 2)
    # 99 is before t0 (ignored); 100 -> k0, 110 -> k1, 135 -> k3; user 1 has no cohort.
    assert bits[0] == 0b1011 and max_k.tolist() == [3, -1]


def test_int64_index_dense_ids_in_first_appearance_order_across_batches():
    idx = _ingest.Int64Index(4)
    a = idx.encode(np.array([5, 7, 5, 2**62, -(2**63)], dtype=np.int64))
    b = idx.encode(np.array([7, 1000, 2**62, 6], dtype=np.int64),
                   np.array([1, 1, 1, 0], dtype=np.uint8))
    assert a.tolist() == [0, 1, 0, 2, 3]
    assert b.tolist() == [1, 4, 2, -1]
    assert idx.keys().tolist() == [5, 7, 2**62, -(2**63), 1000]


def test_int64_index_grows_past_its_initial_size_with_sparse_keys():
    rng = np.random.default_rng(3)
    keys = rng.integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64)
    keys = np.concatenate([keys, keys[::-1]])
    idx = _ingest.Int64Index(16)
    ids = idx.encode(keys)
    _, first = np.unique(keys, return_index=True)
    assert len(idx) == len(first)
    assert np.array_equal(idx.keys()[ids], keys)


def test_bytes_index_matches_python_dict():
    words = ["a", "", "bb", "a", "ccc" * 20, "", "bb", "é"]
    data = "".join(words).encode()
    offs = np.cumsum([0] + [len(w.encode()) for w in words]).astype(np.int32)
    idx = _bytes_index.BytesIndex(2)
    ids = idx.encode(offs, np.frombuffer(data, dtype=np.uint8))
    seen = {}
    assert ids.tolist() == [seen.setdefault(w, len(seen)) for w in words]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bytes_index_sized_from_an_estimate_matches_python_dict(threads):
    # a first batch of >= 65536 rows sizes the table from a distinct-count estimate; a
    # second batch brings new values past that size (the table grows as before)
    rng = np.random.default_rng(threads)
    first = [f"user-{v}" for v in rng.integers(0, 40_000, 100_000)]
    second = [f"user-{v}" for v in rng.integers(30_000, 90_000, 70_000)]
    idx = _bytes_index.BytesIndex(1 << 16)
    ids = []
    for words in (first, second):
        data = "".join(words).encode()
        offs = np.cumsum([0] + [len(w) for w in words]).astype(np.int64)
        ids += idx.encode(offs, np.frombuffer(data, dtype=np.uint8), None, threads).tolist()
    seen = {}
    assert ids == [seen.setdefault(w, len(seen)) for w in first + second]
    offs, data = idx.values_buffers()
    assert [bytes(data[offs[i]:offs[i + 1]]).decode() for i in range(len(idx))] == list(seen)


def test_int64_index_sized_from_an_estimate_keeps_first_appearance_order():
    rng = np.random.default_rng(5)
    keys = rng.integers(-(2**63), 2**63 - 1, 30_000, dtype=np.int64)[rng.integers(0, 30_000, 200_000)]
    idx = _ingest.Int64Index(16)
    ids = idx.encode(keys, None, 2)
    seen = {}
    assert ids.tolist() == [seen.setdefault(k, len(seen)) for k in keys.tolist()]
    assert idx.keys().tolist() == list(seen)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sort_rows_matches_a_plain_sort_on_any_thread_count(seed):
    # rows of each key by (major, ts, row), left out where key < 0 or mask == 0; with
    # ``copies``, the sorted major and ts come along; ties on (major, ts) are frequent
    from engage_core import _sequences

    rng = np.random.default_rng(seed)
    n, n_keys = 20_000, 300
    key = rng.integers(-1, n_keys, n).astype(np.int64)
    major = rng.integers(0, 4, n).astype(np.int32)
    ts = rng.integers(0, 50, n).astype(np.int64)
    mask = (rng.random(n) < 0.8).astype(np.uint8)
    want_rows = sorted((i for i in range(n) if key[i] >= 0 and mask[i]),
                       key=lambda i: (key[i], major[i], ts[i], i))
    counts = np.bincount(key[want_rows], minlength=n_keys)
    want_off = np.concatenate([[0], np.cumsum(counts)])
    # the times may come as a table's chunks (not joined), the major as days from a base
    chunks = _columns.Int64Chunks([ts[:7], ts[7:7000], ts[7000:7001], ts[7001:]])
    for threads in (1, 2, 3):
        off, rows, smaj, sts = _sequences.sort_rows(key, major, ts, mask, n_keys, threads, True)
        assert off.tolist() == want_off.tolist() and rows.tolist() == want_rows
        assert rows.dtype == np.int32  # row numbers fit: half the memory of int64
        assert np.array_equal(smaj, major[rows]) and np.array_equal(sts, ts[rows])
        off2, rows2 = _sequences.sort_rows(key, major, ts, mask, n_keys, threads)
        assert np.array_equal(off2, off) and np.array_equal(rows2, rows)
        off3, rows3, smaj3, sts3 = _sequences.sort_rows(key, major + 700, chunks, mask, n_keys,
                                                        threads, True, 700)
        assert np.array_equal(off3, off) and np.array_equal(rows3, rows)
        assert np.array_equal(smaj3, smaj) and np.array_equal(sts3, sts)
        # a payload (not a sort key) comes along in the same order
        payload = rng.integers(-5, 10**6, n).astype(np.int32)
        *_, spay = _sequences.sort_rows(key, major, chunks, mask, n_keys, threads, True, 0,
                                        payload)
        assert np.array_equal(spay, payload[rows])
    with pytest.raises(ValueError, match="copies=True"):
        _sequences.sort_rows(key, major, chunks, mask, n_keys, 1)


@pytest.mark.parametrize("case", ["shuffled", "masked, no major", "one huge key", "time order",
                                  "major not by time", "some keys' times too wide to pack"])
def test_sort_rows_of_many_shuffled_rows_place_in_two_passes_the_same(case):
    # over 2**20 rows of over 2**16 keys in no time order take the two-pass placement
    # (_partition.h); a key too large for it, or a time-ordered log, the one-pass one;
    # each key sorted by packed (time, position) unless a major goes down along time:
    # either way the plain sort's rows, copies and payload, on any thread count
    from engage_core import _sequences

    rng = np.random.default_rng(len(case))
    n, n_keys = 1_300_000, 90_000
    key = rng.integers(-1, n_keys, n).astype(np.int32)
    if case == "one huge key":
        key[rng.random(n) < 0.85] = 7
    ts = rng.integers(0, 3000, n).astype(np.int64) * 997  # ties within keys
    if case == "time order":
        ts.sort()
    major = None if case == "masked, no major" else (ts // 40_000).astype(np.int32)
    if case == "major not by time":  # each key's sort by packed times declines
        major = rng.integers(0, 3, n).astype(np.int32)
    if case == "some keys' times too wide to pack":  # those keys' sorts decline, the rest not
        wide = (key % 7 == 3) & (rng.random(n) < 0.3)
        ts[wide] = rng.integers(-(2**62), 2**62, int(wide.sum()))
        major = None
    mask = (rng.random(n) < 0.9).astype(np.uint8) if case == "masked, no major" else None
    payload = rng.integers(-1, 50, n).astype(np.int32)
    keep = (key >= 0) & (mask.astype(bool) if mask is not None else True)
    idx = np.flatnonzero(keep)
    zeros = np.zeros(n, np.int32)
    order = np.lexsort((idx, ts[idx], (major if major is not None else zeros)[idx], key[idx]))
    want_rows = idx[order]
    want_off = np.concatenate([[0], np.cumsum(np.bincount(key[want_rows], minlength=n_keys))])
    cut = [0, 1000, 640_000, 640_001, n]
    chunks = _columns.Int64Chunks([ts[a:b] for a, b in zip(cut, cut[1:])])
    for threads in (1, 2, 3):
        off, rows, smaj, sts, spay = _sequences.sort_rows(key, major, chunks, mask, n_keys,
                                                          threads, True, 5, payload)
        assert np.array_equal(off, want_off) and np.array_equal(rows, want_rows)
        want_major = (major[rows] - 5) if major is not None else np.zeros(len(rows), np.int32)
        assert np.array_equal(smaj, want_major) and np.array_equal(sts, ts[rows])
        assert np.array_equal(spay, payload[rows])


@pytest.mark.parametrize("case", ["in order", "time down at a thread boundary",
                                  "time down once", "major down once", "at a chunk boundary"])
def test_sort_rows_of_rows_in_time_order_skips_the_sorts_only_when_nothing_goes_down(case):
    # a log in (major, time) order is placed in one pass and its keys' rows are left as
    # placed; one step down anywhere (inside a thread's rows, between two threads' rows,
    # between two chunks, in the major alone) and the keys are sorted: the plain sort's
    # result either way, on any thread count
    from engage_core import _sequences

    rng = np.random.default_rng(len(case))
    n, n_keys = 30_000, 500
    key = rng.integers(0, n_keys, n).astype(np.int32)
    ts = np.sort(rng.integers(0, 5_000, n)).astype(np.int64) * 1000  # ties
    major = (ts // 700_000).astype(np.int32)
    if case == "time down at a thread boundary":  # on 2 threads, thread 1's first row
        ts[n // 2] = ts[n // 2 - 1] - 1
        key[n // 2] = key[n // 2 - 1]
    if case == "time down once":
        ts[12_345] = ts[12_344] - 1
        key[12_345] = key[12_344]
    if case == "major down once":
        major[20_001] = major[20_000] - 1
        key[20_001] = key[20_000]
    cut = [0, 9_000, 9_001, 21_000, n]
    if case == "at a chunk boundary":
        ts[21_000] = ts[20_999] - 1
        key[21_000] = key[20_999]
    chunks = _columns.Int64Chunks([ts[a:b] for a, b in zip(cut, cut[1:])])
    order = np.lexsort((np.arange(n), ts, major, key))
    want_off = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=n_keys))])
    for threads in (1, 2, 3):
        off, rows, smaj, sts = _sequences.sort_rows(key, major, chunks, None, n_keys, threads,
                                                    True)
        assert np.array_equal(off, want_off) and np.array_equal(rows, order)
        assert np.array_equal(smaj, major[order]) and np.array_equal(sts, ts[order])
        off2, rows2 = _sequences.sort_rows(key, major, ts, None, n_keys, threads)
        assert np.array_equal(off2, want_off) and np.array_equal(rows2, order)


@pytest.mark.parametrize("pattern", ["descending", "organ pipe", "few times", "random"])
def test_sort_rows_orders_long_keys_out_of_order(pattern):
    # one key's thousands of rows out of time order (the in-kernel introsort: partitions,
    # insertion sort of small ones), ties on the time broken by the major then the row
    from engage_core import _sequences

    n = 5000
    ts = {"descending": np.arange(n)[::-1],
          "organ pipe": np.concatenate([np.arange(n // 2), np.arange(n - n // 2)[::-1]]),
          "few times": np.arange(n) % 3,
          "random": np.random.default_rng(4).integers(0, 10**6, n)}[pattern].astype(np.int64)
    major = (np.arange(n) % 2).astype(np.int32)
    key = np.zeros(n, dtype=np.int32)
    want = sorted(range(n), key=lambda i: (major[i], ts[i], i))
    for threads in (1, 2):
        off, rows, smaj, sts = _sequences.sort_rows(key, major, ts, None, 1, threads, True)
        assert rows.tolist() == want and np.array_equal(sts, ts[want])
        off2, rows2 = _sequences.sort_rows(key, major, ts, None, 1, threads)
        assert rows2.tolist() == want


@pytest.mark.parametrize("threads", [1, 3])
def test_segment_sums_add_each_segment_in_ascending_order(threads):
    from engage_core import _common, _sequences

    rng = np.random.default_rng(threads)
    values = np.round(rng.normal(0, 1e6, 5000), 3)
    values[rng.integers(0, 5000, 20)] = np.nan
    lengths = rng.integers(0, 40, 300)
    lengths[-1] += 5000 - lengths.sum() if lengths.sum() < 5000 else 0
    offsets = np.concatenate([[0], np.minimum(np.cumsum(lengths), 5000)])
    got = _sequences.segment_sums(offsets, values, threads)
    for s in range(len(offsets) - 1):
        seg = values[offsets[s]:offsets[s + 1]]
        acc = 0.0
        for v in np.concatenate([np.sort(seg[~np.isnan(seg)]), seg[np.isnan(seg)]]):
            acc += v
        assert got[s] == acc or (np.isnan(got[s]) and np.isnan(acc))
    # tally: the same bits whatever the order of the terms
    index = rng.integers(0, 50, 5000)
    perm = rng.permutation(5000)
    a = _common.tally(index, 50, np.nan_to_num(values))
    b = _common.tally(index[perm], 50, np.nan_to_num(values)[perm])
    assert a.tobytes() == b.tobytes()


def _ascending_sum(values):
    acc = 0.0
    for v in sorted(v for v in values if v == v) + [v for v in values if v != v]:
        acc += v
    return acc


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(["normal", "tiny", "huge", "special", "equal", "money"]),
                      min_size=1, max_size=5),
       lengths=st.lists(st.integers(0, 3000), min_size=1, max_size=5),
       seed=st.integers(0, 2**32 - 1), threads=st.integers(1, 3))
@example(kinds=["special"], lengths=[3], seed=0, threads=1)  # NaNs of both signs, any order
def test_long_segment_sums_and_tally_add_in_ascending_order(kinds, lengths, seed, threads):
    # segments long enough for the radix sort (_sumsort.h): subnormals, signed zeros,
    # infinities, NaN of either sign, ties, magnitudes sharing their high bytes
    from engage_core import _common, _sequences

    rng = np.random.default_rng(seed)
    pools = {
        "normal": lambda n: rng.normal(0, 1e6, n),
        "tiny": lambda n: rng.normal(0, 1, n) * 5e-324 * rng.integers(1, 1000, n),
        "huge": lambda n: rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(250, 308, n),
        "special": lambda n: rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.5,
                                         -1.5, 2.0**-1074], n),
        "equal": lambda n: np.full(n, 0.1),
        "money": lambda n: np.round(5.0 + rng.integers(0, 9500, n) / 100.0, 2),
    }
    segments = [pools[kinds[k % len(kinds)]](n) for k, n in enumerate(lengths)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.concatenate(segments) if segments else np.zeros(0)
    got = _sequences.segment_sums(offsets, values, threads)
    for k, seg in enumerate(segments):
        want = _ascending_sum(seg.tolist())
        assert (got[k] == want and np.signbit(got[k]) == np.signbit(want)) or (
            np.isnan(got[k]) and np.isnan(want)), (k, got[k], want)
    # tally groups the terms by index first: each index's sum the same, in any row order
    index = np.repeat(np.arange(len(lengths)), lengths)
    perm = rng.permutation(len(values))
    for order in (np.arange(len(values)), perm):
        t = _common.tally(index[order], len(lengths), values[order], threads)
        assert np.array_equal(t, got, equal_nan=True)
        assert np.array_equal(np.signbit(t), np.signbit(got))


@settings(max_examples=80, deadline=None)
@given(groups=st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=300), min_size=1,
                       max_size=6),
       shape=st.sampled_from(["as drawn", "sorted", "reversed", "few values"]),
       threads=st.integers(1, 3))
def test_bucket_medians_equal_statistics_median(groups, shape, threads):
    # selection (not a sort) finds the middle values: any order, duplicates, even counts
    import statistics

    from engage_core import _sequences

    keys, values = [], []
    for k, g in enumerate(groups):
        g = {"sorted": sorted(g), "reversed": sorted(g, reverse=True),
             "few values": [x % 3 for x in g]}.get(shape, g)
        groups[k] = g
        keys += [k] * len(g)
        values += g
    order = np.random.default_rng(len(values)).permutation(len(values)) if shape == "as drawn" \
        else np.arange(len(values))
    got = _sequences.bucket_medians(np.asarray(keys, dtype=np.int64)[order],
                                    np.asarray(values, dtype=np.int64)[order], len(groups), threads)
    for k, g in enumerate(groups):
        if g:
            assert got[k] == (float(statistics.median(g)) if len(g) % 2 else
                              (float(sorted(g)[len(g) // 2 - 1]) + float(sorted(g)[len(g) // 2])) / 2)
        else:
            assert np.isnan(got[k])


@settings(max_examples=80, deadline=None)
@given(segments=st.lists(st.lists(st.one_of(st.integers(-10**6, 10**6).map(float),
                                            st.sampled_from([2.0**52, -(2.0**52), 2.0**53 + 2,
                                                             0.5, -0.0, 1e300])),
                                  max_size=40), min_size=1, max_size=8),
       threads=st.integers(1, 3))
def test_segment_sums_of_whole_numbers_skip_the_sort_with_the_same_bits(segments, threads):
    # whole numbers with small magnitudes add up exactly in any order; large ones (or a
    # fraction) take the sorted path: either way the bits of the ascending-order sum
    from engage_core import _sequences

    offsets = np.concatenate([[0], np.cumsum([len(s) for s in segments])]).astype(np.int64)
    values = np.asarray([x for s in segments for x in s], dtype=np.float64)
    got = _sequences.segment_sums(offsets, values, threads)
    for k, seg in enumerate(segments):
        acc = 0.0
        for x in sorted(seg):
            acc += x
        assert got[k] == acc and np.signbit(got[k]) == np.signbit(acc)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 140), st.integers(0, 99)), max_size=400),
       n_days=st.integers(100, 130), windows=st.sampled_from([[1], [1, 7, 30], [2, 64, 200]]),
       masked=st.booleans(), threads=st.integers(1, 3), ordered=st.booleans())
def test_day_bitmaps_give_the_window_counts_of_users_days(rows, n_days, windows, masked, threads,
                                                          ordered):
    # the bitmap path (users per day, ORs over 64-user columns) equals the sorted-days path
    if ordered:  # a time-ordered log: most days are one thread's, cleared as they are reached
        rows = sorted(rows, key=lambda r: r[1])
    user = np.asarray([u for u, _ in rows], dtype=np.int32)
    day = np.asarray([d for _, d in rows], dtype=np.int32) + 700
    mask = (np.arange(len(rows)) % 3 > 0).astype(np.uint8) if masked else None
    win = np.asarray(windows, dtype=np.int32)
    # the bitmaps are not allocated cleared: memory just freed, all bits set, is likely reused
    del_me = np.full((n_days, 3), ~np.uint64(0))
    del del_me
    bits = _activity.day_bitmaps(user, day, mask, 141, n_days, threads, 700)
    # each thread's day range given (as prepare_events finds it, or wider): the same bits
    n = len(rows)
    parts = [day[n * t // threads:n * (t + 1) // threads] for t in range(threads)]
    lo = np.asarray([p.min() if len(p) else 2**31 - 1 for p in parts], dtype=np.int32)
    hi = np.asarray([p.max() if len(p) else -2**31 for p in parts], dtype=np.int32)
    for known in ((lo, hi), (np.minimum(lo, 700), np.maximum(hi, 700 + n_days - 1))):
        assert np.array_equal(_activity.day_bitmaps(user, day, mask, 141, n_days, threads, 700,
                                                     None, known), bits)
    # the users grouped by day first (a large log in no time order), or not: the same bits
    for by_day in (True, False):
        assert np.array_equal(_activity.day_bitmaps(user, day, mask, 141, n_days, threads, 700,
                                                     None, None, by_day), bits)
    offsets, days = _activity.actor_days(user, day, mask, 141, n_days, 1, 700)
    want, want_first = _activity.window_counts(offsets, days, np.zeros(141, np.int32), 1, n_days,
                                               win, 1)
    # every build of the window kernel this CPU can run (default, popcnt, AVX2, vector popcount)
    for level in range(_activity.WINDOWS_LEVEL + 1):
        counts, first = _activity.bitmap_window_counts(bits, win, threads, level)
        assert np.array_equal(counts, want[:, 0, :]) and np.array_equal(first, want_first[0])


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 200), st.integers(0, 299)), max_size=500),
       period_len=st.sampled_from([1, 3, 7, 31]), n_bits=st.integers(1, 130),
       threads=st.integers(1, 3))
def test_retention_offsets_from_day_bitmaps_equal_those_from_sorted_days(rows, period_len, n_bits,
                                                                          threads):
    # cohorts, offset bitsets and largest offsets: the bitmap path equals the sorted-days one
    # (periods of 1 day give over 64 periods, past one word of periods per user)
    user = np.asarray([u for u, _ in rows], dtype=np.int32)
    day = np.asarray([d for _, d in rows], dtype=np.int32)
    n_days, n_users = 300, 201
    of_day = (np.arange(n_days) // period_len).astype(np.int32)
    n_periods = int(of_day[-1]) + 1
    bitmaps = _activity.day_bitmaps(user, day, None, n_users, n_days, threads, 0)
    cohort, bits, max_k = _retention.offset_bits_from_bitmaps(bitmaps, of_day, n_periods, n_users,
                                                              n_bits, threads)
    offsets, days = _activity.actor_days(user, day, None, n_users, n_days, 1, 0)
    has = offsets[1:] > offsets[:-1]
    first_day = days[np.minimum(offsets[:-1], max(len(days) - 1, 0))] if len(days) else offsets[:-1]
    want_cohort = np.where(has, of_day[np.clip(first_day, 0, None)], -1).astype(np.int32)
    want_bits, want_max = _retention.offset_bits_from_days(offsets, days, want_cohort, of_day,
                                                           n_bits, 1)
    assert np.array_equal(cohort, want_cohort)
    assert np.array_equal(bits, want_bits) and np.array_equal(max_k, want_max)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 200), st.integers(0, 299)), max_size=500),
       period_len=st.sampled_from([5, 7, 31, 100]), max_offset=st.integers(0, 70),
       brackets=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=3),
       per_period=st.booleans(), threads=st.integers(1, 3))
def test_retention_counts_from_bitmaps_equal_the_per_user_tally(rows, period_len, max_offset,
                                                                brackets, per_period, threads):
    # cohort sizes, classic, unbounded and bracket counts, 64 users at a time from day or
    # period bitmaps, equal those of the per-user offsets (sorted days, then tally)
    user = np.asarray([u for u, _ in rows], dtype=np.int32)
    day = np.asarray([d for _, d in rows], dtype=np.int32)
    n_days, n_users = 300, 201
    of_day = (np.arange(n_days) // period_len).astype(np.int32)
    n_periods = int(of_day[-1]) + 1
    br = np.asarray([sorted(b) for b in brackets], dtype=np.int32).reshape(-1, 2)
    if per_period:
        bitmaps = _activity.day_bitmaps(user, day, None, n_users, n_periods, threads, 0, of_day)
        of_row = np.arange(n_periods, dtype=np.int32)
        # users grouped by period first: the same bitmaps
        assert np.array_equal(_activity.day_bitmaps(user, day, None, n_users, n_periods,
                                                     threads, 0, of_day, None, True), bitmaps)
    else:
        bitmaps, of_row = _activity.day_bitmaps(user, day, None, n_users, n_days, threads, 0), of_day
    got = _retention.tally_from_bitmaps(bitmaps, of_row, n_periods, max_offset, br, threads)
    offsets, days = _activity.actor_days(user, day, None, n_users, n_days, 1, 0)
    has = offsets[1:] > offsets[:-1]
    first_day = days[np.minimum(offsets[:-1], max(len(days) - 1, 0))] if len(days) else offsets[:-1]
    cohort = np.where(has, of_day[np.clip(first_day, 0, None)], -1).astype(np.int32)
    n_bits = max(max_offset, int(br[:, 1].max()) if len(br) else 0) + 1
    bits, max_k = _retention.offset_bits_from_days(offsets, days, cohort, of_day, n_bits, 1)
    want = _retention.tally(cohort, np.zeros(n_users, np.int32), 1, n_periods, bits, n_bits,
                            max_k, max_offset, br, 1)
    for g, w in zip(got, want):
        assert g.shape == w.shape and np.array_equal(g, w)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 10**8)), max_size=300),
       length=st.sampled_from([1, 7, 10**6, 10**7]), n_bits=st.integers(1, 64),
       masked=st.booleans(), threads=st.integers(1, 3))
def test_rolling_offsets_of_packed_user_state_equal_the_general_pass(rows, length, n_bits, masked,
                                                                      threads):
    # offsets of under 64 bits take the packed per-user path (16-, 32- or 64-bit words),
    # whose largest offset is capped at n_bits (tally asks at most n_bits - 1); 64 and 65
    # bits the general one
    user = np.asarray([u for u, _ in rows], dtype=np.int32)
    ts = np.asarray([t for _, t in rows], dtype=np.int64)
    n_users = 41
    t0 = np.full(n_users, 10**9, dtype=np.int64)
    for u, t in rows:
        t0[u] = min(t0[u], t + (u % 3) * 1000)  # some rows fall before the user's start
    cohort = np.where(t0 < 10**9, np.arange(n_users) % 5, -1).astype(np.int32)
    mask = (np.arange(len(rows)) % 4 > 0).astype(np.uint8) if masked else None
    dayoff = np.zeros(len(rows), dtype=np.int32)
    of_day = np.zeros(1, dtype=np.int32)
    bits, top = _retention.offset_bits(user, ts, dayoff, mask, cohort, t0, of_day, True, length,
                                       n_bits, n_users, threads)
    # the instants in chunks (as prepared, not joined) give the same
    cut = len(ts) // 3
    chunked = _columns.Int64Chunks([ts[:cut], ts[cut:2 * cut], ts[2 * cut:]])
    if len(ts):  # one instant short: refused, not read past the end
        with pytest.raises(ValueError, match="instants for"):
            _retention.offset_bits(user, _columns.Int64Chunks([ts[:-1]]), dayoff, mask, cohort,
                                   t0, of_day, True, length, n_bits, n_users, threads)
    for nb in (n_bits, 65):
        got = _retention.offset_bits(user, chunked, dayoff, mask, cohort, t0, of_day, True,
                                     length, nb, n_users, threads)
        want = _retention.offset_bits(user, ts, dayoff, mask, cohort, t0, of_day, True, length,
                                      nb, n_users, threads)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    wide, wide_top = _retention.offset_bits(user, ts, dayoff, mask, cohort, t0, of_day, True,
                                            length, 65, n_users, threads)
    assert np.array_equal(top, np.minimum(wide_top, n_bits) if n_bits < 64 else wide_top)
    keep = np.uint64((1 << n_bits) - 1) if n_bits < 64 else np.uint64(2**64 - 1)
    assert np.array_equal(bits, wide.reshape(n_users, 2)[:, 0] & keep)
    k = min(n_bits, 13)  # and the counts from them are the same
    tallied = [_retention.tally(cohort, np.zeros(n_users, np.int32), 1, 5, b, nb, t, k - 1,
                                np.zeros((0, 2), np.int32), 1)
               for b, nb, t in ((bits, n_bits, top), (wide, 65, wide_top))]
    for g, w in zip(*tallied):
        assert np.array_equal(g, w)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_group_values_is_a_stable_grouping(threads):
    """_sequences.group_values (tally's and the session medians' grouping) against numpy's
    stable argsort: few groups (split between threads) and many (one thread)."""
    from engage_core import _sequences

    rng = np.random.default_rng(110 + threads)
    for n, size in ((0, 4), (9, 3), (200_003, 37), (70_000, 60_000)):
        index = rng.integers(0, size, n).astype(np.int64)
        order = np.argsort(index, kind="stable")
        for values in (rng.normal(size=n), rng.integers(-10**12, 10**12, n)):
            offsets, grouped = _sequences.group_values(index, size, values, threads)
            assert np.array_equal(offsets, np.concatenate([[0], np.cumsum(
                np.bincount(index, minlength=size))]))
            assert grouped.dtype == values.dtype and np.array_equal(grouped, values[order])


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-1, 6), st.integers(0, 2), st.integers(-10**15, 10**15)),
                     max_size=60), threads=st.integers(1, 3))
def test_cohort_instant_range_is_the_least_and_greatest_start_per_cell(rows, threads):
    # users of cohort -1 count nowhere; a user of group g > 0 counts in group 0 and in g
    cohort = np.asarray([c for c, _, _ in rows], dtype=np.int32)
    group = np.asarray([g for _, g, _ in rows], dtype=np.int32)
    t0 = np.asarray([t for _, _, t in rows], dtype=np.int64)
    lo, hi = _retention.cohort_instant_range(cohort, group, t0, 3, 7, threads)
    for g in range(3):
        for c in range(7):
            starts = [t for cc, gg, t in rows if cc == c and (g == 0 or gg == g)]
            assert lo[g, c] == (min(starts) if starts else np.iinfo(np.int64).max)
            assert hi[g, c] == (max(starts) if starts else np.iinfo(np.int64).min)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64,
                                   np.uint32, np.uint64])
@pytest.mark.parametrize("threads", [1, 3])
def test_gather_codes_equals_a_plain_lookup(dtype, threads):
    """Dictionary indices to codes, for every index type: negative and out-of-range indices
    and null rows give -1 (8- and 16-bit indices go through a table of every value)."""
    rng = np.random.default_rng(np.dtype(dtype).itemsize + threads)
    info = np.iinfo(dtype)
    n, k = 50_000, 100
    idx = rng.integers(max(info.min, -300), min(info.max, 300), n, endpoint=True).astype(dtype)
    idx[:4] = [0, k - 1, k, min(info.max, 7)]
    codes = rng.integers(0, 10**6, k).astype(np.int32)
    valid = (rng.random(n) > 0.2).astype(np.uint8)
    wide = idx.astype(np.int64) if dtype != np.uint64 else idx.view(np.int64)
    want = np.where((wide >= 0) & (wide < k), codes[np.clip(wide, 0, k - 1)], -1)
    assert np.array_equal(_ingest.gather_codes(codes, idx, None, threads), want)
    assert np.array_equal(_ingest.gather_codes(codes, idx, valid, threads),
                          np.where(valid == 1, want, -1))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_run_heads_are_each_users_first_row(threads):
    """_cohorts.run_heads against numpy: each user's first row of a CSR (-1 day for a user
    without rows, whose instant is that of the clipped head), users without rows at both
    ends and in runs."""
    rng = np.random.default_rng(threads)
    for n_users in (1, 7, 5_000):
        counts = rng.integers(0, 4, n_users) * (rng.random(n_users) < 0.7)
        counts[0] = 0
        counts[-1] = 0 if n_users > 1 else 1
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        n = int(offsets[-1])
        dayoff = rng.integers(0, 200, n).astype(np.int32)
        ts = rng.integers(-10**15, 10**15, n)
        day, first = _cohorts.run_heads(offsets, dayoff, ts, threads)
        head = np.minimum(offsets[:-1], n - 1)
        assert np.array_equal(day, np.where(counts > 0, dayoff[head], -1))
        assert day.dtype == np.int32 and np.array_equal(first, ts[head])
    with pytest.raises(ValueError):
        _cohorts.run_heads(np.zeros(2, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), 1)
