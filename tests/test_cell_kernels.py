"""The small kernels that turn runs into tally cells (engagement tiers, cohort revenue's
cells, the exact-sum check) and the all-null float column, against plain-Python
references on 1 to 3 threads, below and above the sizes where the threads split the work."""

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engage_core import _cohorts, _common, _gather, _ingest, arrow_io

SIZES = st.sampled_from([0, 1, 7, 1000, (1 << 16) + 3, 150_000])
SPECIAL = [0.0, -0.0, 0.5, -0.5, 1.0, -3.0, 2.0**52, 2.0**53 + 2, 1e300, -np.inf, np.inf,
           np.nan, 5e-324]


def _values(rng, n, kind):
    if kind == "whole":
        return rng.integers(-(10**6), 10**6, n).astype(np.float64)
    if kind == "money":
        return np.round(5.0 + rng.integers(0, 9500, n) / 100.0, 2)
    return rng.choice(SPECIAL, n)


@settings(max_examples=40, deadline=None)
@given(n=SIZES, kind=st.sampled_from(["whole", "money", "special"]),
       plant=st.sampled_from([None, 0.25, np.nan, np.inf, 2.0**60]),
       seed=st.integers(0, 2**32 - 1), threads=st.integers(1, 3))
@example(n=0, kind="whole", plant=None, seed=0, threads=2)
def test_whole_max_and_adds_exactly_match_plain_python(n, kind, plant, seed, threads):
    rng = np.random.default_rng(seed)
    v = _values(rng, n, kind)
    if plant is not None and n:
        v[rng.integers(0, n)] = plant  # one odd value anywhere, the last thread's part too
    whole, top = _gather.whole_max(v, threads)
    xs = v.tolist()
    want_whole = all(not math.isnan(x) and (math.isinf(x) or x == math.floor(x)) for x in xs)
    want_top = max((abs(x) for x in xs if not math.isnan(x)), default=0.0)
    assert whole == want_whole
    assert top == want_top
    # the numpy formula adds_exactly had before, for any number of terms
    for terms in (1, n, 2**40):
        with np.errstate(over="ignore", invalid="ignore"):
            old = bool(np.array_equal(v, np.rint(v))
                       and np.abs(v).max(initial=0.0) * max(terms, 1) < 2.0**52)
        assert _common.adds_exactly(v, terms, threads) == old


@settings(max_examples=40, deadline=None)
@given(n=SIZES, thresholds=st.lists(st.sampled_from([50.0, 10.0, 10.0, 0.0, -1.0, -np.inf]),
                                    min_size=1, max_size=4),
       seed=st.integers(0, 2**32 - 1), threads=st.integers(1, 3))
def test_tiers_count_the_thresholds_above_each_score(n, thresholds, seed, threads):
    th = np.asarray(sorted(thresholds, reverse=True), dtype=np.float64)  # highest first
    rng = np.random.default_rng(seed)
    score = rng.choice(np.concatenate([th, th + 0.5, th - 0.5, [np.nan, np.inf, -np.inf]]), n)
    got = _gather.tiers(score, th, threads)
    want = [len(th) if math.isnan(s) else sum(t > s for t in th.tolist()) for s in score.tolist()]
    assert got.dtype == np.int64
    assert got.tolist() == want
    for dtype in (np.int32, np.int64):  # each score's tally cell: cell * (tiers + '(none)') + tier
        cell = rng.integers(0, 1000, n).astype(dtype)
        got = _gather.tiers(score, th, threads, cell)
        assert got.tolist() == [c * (len(th) + 1) + w for c, w in zip(cell.tolist(), want)]
    with pytest.raises(ValueError, match="cells"):
        _gather.tiers(score, th, threads, np.zeros(n + 1, dtype=np.int32))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 64, 1001])
def test_any_nonzero_finds_one_byte_anywhere(n):
    mask = np.zeros(n, dtype=np.uint8)
    assert not _gather.any_nonzero(mask)
    for at in sorted({0, n // 2, n - 1}) if n else []:
        mask[:] = 0
        mask[at] = 1 << (at % 8)
        assert _gather.any_nonzero(mask)
        assert _gather.any_nonzero(mask[at:])
        assert not _gather.any_nonzero(mask[at + 1:])


def _runs(rng, n_actors, n_periods):
    """Runs as _sequences.runs gives them: by actor, then period, the first of each flagged."""
    actor, period, first = [], [], []
    for a in range(n_actors):
        ps = sorted(set(rng.integers(0, n_periods, rng.integers(0, 4)).tolist()))
        for j, p in enumerate(ps):
            actor.append(a)
            period.append(p)
            first.append(j == 0)
    return (np.asarray(actor, dtype=np.int32), np.asarray(period, dtype=np.int32),
            np.asarray(first, dtype=bool))


@settings(max_examples=30, deadline=None)
@given(n_actors=st.sampled_from([0, 1, 9, 40_000]), n_periods=st.integers(1, 9),
       n_k=st.integers(1, 4), grouped=st.booleans(), seed=st.integers(0, 2**32 - 1),
       threads=st.integers(1, 3))
def test_cohort_cells_match_plain_python(n_actors, n_periods, n_k, grouped, seed, threads):
    rng = np.random.default_rng(seed)
    actor, period, first = _runs(rng, n_actors, n_periods)
    cohort = _cohorts.first_run_periods(actor, period, first.view(np.uint8), n_actors, threads)
    want_cohort = [-1] * n_actors
    for a, p, f in zip(actor.tolist(), period.tolist(), first.tolist()):
        if f:
            want_cohort[a] = p
    assert cohort.dtype == np.int32 and cohort.tolist() == want_cohort
    if grouped and n_actors:  # a breakdown's cohorts come from first rows: some actors none
        cohort[rng.integers(0, n_actors, n_actors // 5 + 1)] = -1
    group = rng.integers(0, 3, n_actors).astype(np.int32) if grouped else None
    g = (lambda a: int(group[a])) if grouped else (lambda a: 0)
    none = 10**9
    cells = _cohorts.cohort_cells(cohort, actor, period, group, n_periods, n_k, none, threads)
    want = []
    for a, p in zip(actor.tolist(), period.tolist()):
        c = int(cohort[a])
        k = p - c
        want.append(none if c < 0 or not 0 <= k < n_k else (g(a) * n_periods + c) * n_k + k)
    assert cells.tolist() == want
    users = _cohorts.cohort_cells(cohort, None, None, group, n_periods, 1, none, threads)
    assert users.tolist() == [none if c < 0 else g(a) * n_periods + c
                              for a, c in enumerate(cohort.tolist())]
    with pytest.raises(ValueError, match="groups"):
        _cohorts.cohort_cells(cohort, None, None, np.zeros(n_actors + 1, np.int32), n_periods,
                              1, none, threads)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 5, (1 << 16) + 1])
def test_an_all_null_float_column_writes_zeros_and_invalid_over_old_bytes(n, threads):
    values = np.full(n, 7.5)  # what an earlier batch or a reused buffer left there
    valid = np.full(n, 1, dtype=np.uint8)
    arrow_io.float64_into(pa.nulls(n, pa.float64()), values, valid, threads)
    assert not values.any() and not np.signbit(values).any() and not valid.any()
    values[:] = 7.5
    valid[:] = 1
    _ingest.float64_chunks([None], [None], [0], [n], values, valid, threads)
    assert not values.any() and not valid.any()
