"""The column kernels (engage_core/_columns.pyx) against plain references: dense ids built
in parallel for integer keys in a narrow range (RangeIndex) number users exactly as the
one-pass hash index does, whatever the thread count and chunking; local days of
microsecond instants equal zoneinfo's; min / max."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import engage_core as ec
from engage_core import _columns, _gather, _ingest
from engage_core.calendar import Calendar
from engage_core.range_index import RangeIndex, column_keys

UTC = dt.timezone.utc


def _first_appearance(values):
    """Reference: ids 0, 1, 2, ... in order of first appearance (None: no id)."""
    ids, out = {}, []
    for v in values:
        out.append(None if v is None else ids.setdefault(v, len(ids)))
    return out, list(ids)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.integers(-50, 50)), min_size=1, max_size=300),
       base=st.sampled_from([0, -(2**63), 2**63 - 200, 10**12]),
       cuts=st.lists(st.integers(0, 300), max_size=4),
       threads=st.integers(1, 4))
def test_range_index_numbers_keys_by_first_appearance(values, base, cuts, threads):
    keys = [None if v is None else min(max(base + v, -(2**63)), 2**63 - 1) for v in values]
    bounds = sorted({0, len(keys), *(min(c, len(keys)) for c in cuts)})
    column = pa.chunked_array([pa.array(keys[a:b], pa.int64()) for a, b in zip(bounds, bounds[1:])],
                              type=pa.int64())
    rows = np.full(len(keys), -7, dtype=np.int32)
    index = RangeIndex.build(column, threads, rows)
    if all(k is None for k in keys):
        assert index is None
        return
    want, distinct = _first_appearance(keys)
    assert rows.tolist() == [-1 if w is None else w for w in want]  # the rows, as numbered
    got = []
    for chunk in column.chunks:
        valid = None if chunk.null_count == 0 else np.asarray(chunk.is_valid(), dtype=np.uint8)
        raw = np.asarray(chunk.fill_null(0), dtype=np.int64)
        got += index.encode(raw, valid).tolist()
    assert got == [-1 if w is None else w for w in want]
    assert index.keys().tolist() == distinct and len(index) == len(distinct)


def test_range_index_declines_spread_out_keys():
    sparse = pa.chunked_array([pa.array([0, 2**40, 5], pa.int64())])
    assert RangeIndex.build(sparse, 2) is None
    dense = pa.chunked_array([pa.array(np.arange(1000, dtype=np.int64)[::-1])])
    assert RangeIndex.build(dense, 2).keys().tolist() == list(range(999, -1, -1))


@pytest.mark.parametrize("id_type", [pa.int8(), pa.uint16(), pa.int32(), pa.uint64()])
def test_prepare_events_gives_the_same_users_on_any_thread_count(id_type):
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 100, 5000)
    t = pa.table({"user_id": pa.array(ids, id_type),
                  "ts": pa.array(rng.integers(0, 10**15, 5000), pa.timestamp("us"))})
    t = pa.concat_tables([t.slice(0, 1234), t.slice(1234)])  # two chunks
    runs = [ec.prepare_events(t, event=None, threads=n) for n in (1, 2, 3)]
    want, distinct = _first_appearance(ids.tolist())
    for ev in runs:
        assert ev.user.tolist() == want
        assert ev.user_ids().to_pylist() == distinct and ev.user_ids().type == id_type


ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
         "Pacific/Chatham", "America/St_Johns"]


@settings(max_examples=80, deadline=None)
@given(zone=st.sampled_from(ZONES),
       micros=st.lists(st.integers(-2_000_000_000_000_000, 4_000_000_000_000_000), min_size=1,
                       max_size=200),
       threads=st.integers(1, 3))
def test_local_days_of_microsecond_instants_equal_zoneinfo(zone, micros, threads):
    col = pa.array(micros, pa.timestamp("us"))
    got = ec.local_days(col, Calendar(zone), threads=threads).to_pylist()
    z = ZoneInfo(zone)
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert got == [(epoch + dt.timedelta(microseconds=m)).astimezone(z).date() for m in micros]


def test_local_days_at_the_edges_of_a_transition():
    # New York, 2025-03-09 07:00 UTC: 02:00 EST becomes 03:00 EDT; 2025-11-02 06:00 UTC:
    # 02:00 EDT becomes 01:00 EST. One microsecond either side of each, and local midnights.
    z = ZoneInfo("America/New_York")
    points = []
    for instant in (dt.datetime(2025, 3, 9, 7, tzinfo=UTC), dt.datetime(2025, 11, 2, 6, tzinfo=UTC),
                    dt.datetime(2025, 3, 9, 5, tzinfo=UTC), dt.datetime(2025, 11, 3, 5, tzinfo=UTC),
                    dt.datetime(2025, 11, 2, 4, tzinfo=UTC)):
        points += [instant + dt.timedelta(microseconds=d) for d in (-1, 0, 1)]
    col = pa.array(points, pa.timestamp("us", tz="UTC"))
    got = ec.local_days(col, Calendar("America/New_York"), threads=2).to_pylist()
    assert got == [p.astimezone(z).date() for p in points]


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=100),
       valid=st.lists(st.booleans(), max_size=100), threads=st.integers(1, 4))
def test_minmax_of_valid_values(values, valid, threads):
    v = np.asarray(values, dtype=np.int64)
    mask = np.asarray((valid + [True] * len(values))[:len(values)], dtype=np.uint8)
    kept = [x for x, m in zip(values, mask) if m]
    want = (min(kept), max(kept)) if kept else (None, None)
    assert _columns.chunks_minmax(_columns.Int64Chunks([v], [mask]), threads) == want
    assert _columns.chunks_minmax(_columns.Int64Chunks([v]), threads) == (
        (min(values), max(values)) if values else (None, None))


def test_int64_index_and_range_index_agree_on_a_large_log():
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 300_000, 2_000_000).astype(np.int64)
    hashed = _ingest.Int64Index(1 << 10).encode(keys)
    for threads in (1, 2, 4):
        index = RangeIndex.build(pa.chunked_array([pa.array(keys)]), threads)
        assert np.array_equal(index.encode(keys), hashed)


def _split(values, cuts):
    bounds = sorted({0, len(values), *(min(c, len(values)) for c in cuts)})
    return [values[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.integers(0, 40)), max_size=200),
       cuts=st.lists(st.integers(0, 200), max_size=6), threads=st.integers(1, 5))
def test_chunked_kernels_read_chunks_as_one_column(values, cuts, threads):
    # threads split the rows wherever the chunks end: each kernel equals a plain loop
    pieces = _split(values, cuts)
    arrays = [np.asarray([0 if v is None else v + 1000 for v in p], dtype=np.int64) for p in pieces]
    valids = [None if None not in p else np.asarray([v is not None for v in p], dtype=np.uint8)
              for p in pieces]
    chunks = _columns.Int64Chunks(arrays, valids)
    assert len(chunks) == len(values)
    kept = [v + 1000 for v in values if v is not None]
    assert _columns.chunks_minmax(chunks, threads) == ((min(kept), max(kept)) if kept else (None, None))
    table = np.full(41, -1, dtype=np.int32)
    rows = np.full(len(values), -7, dtype=np.int32)
    ids = _columns.first_ids(chunks, 1000, 41, table, threads, rows)
    want, distinct = _first_appearance(values)
    assert ids.tolist() == distinct
    assert rows.tolist() == [-1 if w is None else w for w in want]  # numbered as it went
    got = _columns.gather_ids(chunks, 1000, table, threads)
    assert got.tolist() == [-1 if w is None else w for w in want]
    # numbered in place from each row's slot (key - lo, as RangeIndex.deferred leaves them)
    present = [v for v in values if v is not None]
    slots = np.asarray(present, dtype=np.int32)
    table2 = np.full(41, -1, dtype=np.int32)
    ids2 = _columns.first_ids(_columns.Int64Chunks([slots.astype(np.int64)]), 0, 41, table2,
                              threads, slots, slots=True)
    want2, distinct2 = _first_appearance(present)
    assert ids2.tolist() == distinct2 and slots.tolist() == want2
    assert np.array_equal(table2[distinct2], np.arange(len(distinct2)))


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES),
       micros=st.lists(st.integers(1_600_000_000_000_000, 1_800_000_000_000_000), max_size=120),
       cuts=st.lists(st.integers(0, 120), max_size=5), threads=st.integers(1, 4))
def test_days_of_chunks_and_their_bounds(zone, micros, cuts, threads):
    from engage_core.calendar import DayMapper

    z = ZoneInfo(zone)
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    want = [((epoch + dt.timedelta(microseconds=m)).astimezone(z).date() - dt.date(1970, 1, 1)).days
            for m in micros]
    mapper = DayMapper(Calendar(zone), threads, "ts")
    chunks = _columns.Int64Chunks([np.asarray(p, dtype=np.int64) for p in _split(micros, cuts)])
    assert mapper(chunks).tolist() == want
    assert mapper.bounds == ((min(want), max(want)) if want else (None, None))


FIRST_US = (dt.datetime(1, 1, 2, tzinfo=UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
LAST_US = (dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
           - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(["UTC", "Etc/GMT+5", "Etc/GMT-14", "GMT", "Etc/GMT+12"]),
       micros=st.lists(st.integers(FIRST_US + 86_400_000_000, LAST_US - 86_400_000_000),
                       max_size=60),
       threads=st.integers(1, 3))
def test_days_in_fixed_offset_zones_need_no_range_pass(zone, micros, threads):
    # a zone with one offset for all time maps any instant of years 1..9999 without first
    # finding the instants' range (one table entry covers every day)
    from engage_core.calendar import DayMapper

    z = ZoneInfo(zone)
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    want = [((epoch + dt.timedelta(microseconds=m)).astimezone(z).date() - dt.date(1970, 1, 1)).days
            for m in micros]
    mapper = DayMapper(Calendar(zone), threads, "ts")
    assert Calendar(zone).fixed_offset is not None
    assert mapper(np.asarray(micros, dtype=np.int64)).tolist() == want
    assert mapper.bounds == ((min(want), max(want)) if want else (None, None))


# the builds of _days.h this CPU runs: plain, AVX2 (x86-64 level 3), AVX-512 (level 4)
DAY_LEVELS = [lv for lv in (0, 3, 4) if lv <= _columns.SIMD_LEVEL]


@pytest.mark.parametrize("level", DAY_LEVELS)
@pytest.mark.parametrize("offset_hours", [0, -5, 14, -12])
def test_fixed_offset_days_are_the_same_on_every_kernel_build(level, offset_hours):
    # _days.h builds the kernel per x86-64 level (plain, AVX2 written out, AVX-512 by the
    # compiler): each the floor of (instant + offset) / day, for instants across years
    # 1..9999, on day edges, and in lengths that leave a tail after the 4-wide steps
    from engage_core.calendar import MIN_DAY, MAX_DAY

    day = 86_400_000_000
    off = offset_hours * 3600 * 1_000_000
    lo_us, hi_us = MIN_DAY * day, (MAX_DAY + 1) * day
    rng = np.random.default_rng(level + 100 * (offset_hours + 12))
    edges = np.array([k * day + d - off for k in (MIN_DAY + 1, -1, 0, 1, 20_000, MAX_DAY - 1)
                      for d in (-1, 0, 1)], dtype=np.int64)
    ts = np.concatenate([rng.integers(lo_us, hi_us, 2001), edges,
                         [lo_us, hi_us - 1]]).astype(np.int64)
    want = (ts + off) // day
    table = (np.full(1, offset_hours * 3600, dtype=np.int64), np.full(1, 86400, dtype=np.int64),
             np.full(1, offset_hours * 3600, dtype=np.int64))
    for n in (len(ts), 3, 0):
        for threads in (1, 2):
            days, outside, lo, hi = _columns.local_days(ts[:n], MIN_DAY, *table, threads, None,
                                                        MAX_DAY - MIN_DAY + 1, level=level)
            assert days.tolist() == want[:n].tolist()
            assert outside == 0
            if n:
                assert (lo.min(), hi.max()) == (want[:n].min(), want[:n].max())
    # instants outside the table's days are counted (the caller widens the table)
    days, outside, _, _ = _columns.local_days(np.array([lo_us - 1, 0, hi_us, 5], dtype=np.int64),
                                              MIN_DAY, *table, 1, None, MAX_DAY - MIN_DAY + 1,
                                              level=level)
    assert outside == 2


def test_zones_that_change_offset_are_not_fixed():
    assert Calendar("Europe/London").fixed_offset is None
    assert Calendar("Asia/Kolkata").fixed_offset is None  # fixed today, not in 1941
    assert Calendar("Etc/GMT-3").fixed_offset == 3 * 3600


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "Europe/Berlin"])
def test_instants_outside_the_years_1_to_9999_are_an_error(zone):
    from engage_core.errors import SchemaError

    t = pa.table({"user_id": [1, 2], "ts": pa.array([0, LAST_US + 86_400_000_000 * 2],
                                                    pa.timestamp("us"))})
    with pytest.raises(SchemaError, match="outside the years 1..9999"):
        ec.prepare_events(t, event=None, calendar=Calendar(zone))


@pytest.mark.parametrize("ids", ["narrow int", "sparse int", "string", "large_binary"])
def test_prepare_events_on_many_chunks_equals_one_chunk(ids):
    # a table of many record batches is read in one pass per column (ids in one hash
    # table sized once): the same users, days and ids as one batch
    rng = np.random.default_rng(11)
    n = 20_000
    raw = rng.integers(5, 3000, n)
    user = {"narrow int": pa.array(raw, pa.int32()),
            "sparse int": pa.array(raw * 2**40, pa.int64()),
            "string": pa.array([f"u{x:x}" for x in raw]),
            "large_binary": pa.array([b"\x00" * (x % 5) + bytes(str(x), "ascii") for x in raw],
                                     pa.large_binary())}[ids]
    t = pa.table({"user_id": user,
                  "ts": pa.array(rng.integers(1_700_000_000_000_000, 1_720_000_000_000_000, n),
                                 pa.timestamp("us", tz="UTC")),
                  "event": pa.array(rng.choice(["a", "b"], n))})
    many = pa.Table.from_batches(t.to_batches(max_chunksize=777))
    one = ec.prepare_events(t.combine_chunks(), threads=1, calendar=Calendar("Europe/London"))
    for threads in (1, 2, 3):
        ev = ec.prepare_events(many, threads=threads, calendar=Calendar("Europe/London"))
        assert np.array_equal(ev.user, one.user) and np.array_equal(ev.day, one.day)
        assert np.array_equal(ev.ts, one.ts) and np.array_equal(ev.event, one.event)
        assert (ev.first_day, ev.last_day) == (one.first_day, one.last_day)
        assert ev.user_ids().equals(one.user_ids())


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 140), st.integers(0, 99)), min_size=1,
                     max_size=400),
       base=st.sampled_from([0, -(2**62), 10**15]), chunk=st.sampled_from([None, 1, 7, 50]),
       ordered=st.booleans(), masked=st.booleans(), period_len=st.sampled_from([None, 7, 31]),
       known=st.booleans(), threads=st.integers(1, 3))
@example(rows=[(0, 0), (4, 1), (0, 1), (9, 3)], base=0, chunk=1, ordered=True, masked=False,
         period_len=None, known=False, threads=2)
def test_day_bitmaps_read_a_deferred_index_s_slots_from_its_keys(rows, base, chunk, ordered,
                                                                  masked, period_len, known,
                                                                  threads):
    # a RangeIndex not numbered yet: in time order, day_bitmaps reads each row's slot
    # (key - least key) from the keys, chunk by chunk, each thread carrying which days it
    # has cleared from one chunk to the next; out of order, it has the slots written. Both
    # give the bitmaps of the slots as int32 users, by day or by period, masked or not
    from engage_core import _activity
    if ordered:
        rows = sorted(rows, key=lambda r: r[1])
    user = np.asarray([u for u, _ in rows], dtype=np.int32)
    day = np.asarray([d for _, d in rows], dtype=np.int32) + 700
    flat = pa.array(base + user.astype(np.int64) * 3, pa.int64())
    step = chunk or len(flat)
    keys = pa.chunked_array([flat[i:i + step] for i in range(0, len(flat), step)], pa.int64())
    out = np.empty(len(rows), dtype=np.int32)
    index = RangeIndex.deferred(column_keys(keys), threads, out)
    slots = (base + user.astype(np.int64) * 3 - index.lo).astype(np.int32)
    mask = (np.arange(len(rows)) % 3 > 0).astype(np.uint8) if masked else None
    of_day = None if period_len is None else (np.arange(100) // period_len).astype(np.int32)
    width = int(slots.max()) + 1
    n_rows = 100 if of_day is None else int(of_day[-1]) + 1
    n = len(rows)
    parts = [day[n * t // threads:n * (t + 1) // threads] for t in range(threads)]
    thread_days = ((np.asarray([p.min() if len(p) else 2**31 - 1 for p in parts], np.int32),
                    np.asarray([p.max() if len(p) else -2**31 for p in parts], np.int32))
                   if known else None)
    want = _activity.day_bitmaps(slots, day, mask, width, n_rows, threads, 700, of_day,
                                 thread_days)
    got = _activity.day_bitmaps(index, day, mask, width, n_rows, threads, 700, of_day,
                                thread_days)
    assert np.array_equal(got, want)
    assert index.pending  # counting users did not number them
    index.number()  # from the keys, or from the slots when they were written
    assert out.tolist() == _first_appearance(user.tolist())[0]


@settings(max_examples=40, deadline=None)
@given(users=st.lists(st.integers(0, 60), min_size=1, max_size=400),
       base=st.sampled_from([0, -(2**62), 10**15]),
       days=st.lists(st.integers(0, 90), min_size=1, max_size=400),
       period=st.sampled_from(["week", "month"]), threads=st.integers(1, 3),
       chunk=st.sampled_from([None, 1, 7, 50]), ordered=st.booleans())
def test_counting_metrics_read_user_slots_before_the_users_are_numbered(users, base, days,
                                                                       period, threads,
                                                                       chunk, ordered):
    # 64-bit ids of an in-memory table are numbered on first use: active users and
    # calendar retention count bits at each user's slot (key - least key) instead, and
    # equal the tables of the same log with 32-bit ids (numbered up front) and of the same
    # Events once numbered
    # (the slots come from the table's chunks, in time order or not)
    n = min(len(users), len(days))
    days = sorted(days[:n]) if ordered else days
    ts = [dt.datetime(2025, 1, 1, tzinfo=UTC) + dt.timedelta(days=d, hours=i % 24)
          for i, d in enumerate(days[:n])]
    wide = pa.table({"user_id": pa.array([base + 7 * u for u in users[:n]], pa.int64()), "ts": ts})
    if chunk:
        wide = pa.Table.from_batches(wide.to_batches(max_chunksize=chunk))
    narrow = pa.table({"user_id": pa.array(users[:n], pa.int32()), "ts": ts})
    lazy = ec.prepare_events(wide, event=None, threads=threads)
    assert lazy.user_slots() is not None  # not numbered yet
    au = ec.active_users(lazy, windows=[1, 7, 30], threads=threads)
    ret = ec.retention(lazy, period=period, max_offset=6, threads=threads)
    assert lazy.user_slots() is not None  # neither metric needed the numbers
    eager = ec.prepare_events(narrow, event=None, threads=threads)
    assert eager.user_slots() is None
    assert au.equals(ec.active_users(eager, windows=[1, 7, 30], threads=threads))
    assert ret.equals(ec.retention(eager, period=period, max_offset=6, threads=threads))
    numbered = ec.prepare_events(wide, event=None, threads=threads)
    assert numbered.num_users == len(set(users[:n])) and numbered.user_slots() is None
    assert au.equals(ec.active_users(numbered, windows=[1, 7, 30], threads=threads))
    assert ret.equals(ec.retention(numbered, period=period, max_offset=6, threads=threads))
    # numbering after the counting metrics: by first appearance, as always
    want, _ = _first_appearance(users[:n])
    assert lazy.user.tolist() == want and lazy.num_users == len(set(users[:n]))



@pytest.mark.parametrize("threads", [1, 2, 3])
def test_take_and_take_chunks_equal_numpy_gathers(threads):
    rng = np.random.default_rng(40 + threads)
    values = rng.integers(-2**62, 2**62, 10_000)
    cuts = [0, 1, 1, 2500, 7001, 10_000]  # an empty chunk and a one-row chunk among them
    chunks = _columns.Int64Chunks([values[a:b] for a, b in zip(cuts, cuts[1:])])
    for sel in (np.zeros(0, np.int64), np.array([0]), np.array([9999]),
                np.flatnonzero(rng.random(10_000) < 0.3), np.arange(10_000),
                np.array([1, 2, 2499, 2500, 2501, 7000, 7001])):
        sel = sel.astype(np.int64)
        assert np.array_equal(_gather.take_chunks(sel, chunks, threads), values[sel])
        assert np.array_equal(_gather.take(sel, values, threads), values[sel])
        narrow = values.astype(np.int32)
        got = _gather.take(sel, narrow, threads)
        assert got.dtype == np.int32 and np.array_equal(got, narrow[sel])
    with pytest.raises(IndexError, match="1 positions outside the 10000 values"):
        _gather.take(np.array([3, 10_000], np.int64), values, threads)
    with pytest.raises(IndexError, match="not ascending or outside the 10000 rows"):
        _gather.take_chunks(np.array([5, 9000, 100], np.int64), chunks, 1)
    with pytest.raises(IndexError, match="outside the 10000 rows"):
        _gather.take_chunks(np.array([-1], np.int64), chunks, threads)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_take_with_int32_positions_on_every_value_type(threads):
    """int32 positions take the branch-free loop built per CPU level: bytes (widened when
    the table is small, the scalar loop when it is large), int32, int64 and float64 values,
    with a shift; a position outside the values (either end) is an IndexError."""
    rng = np.random.default_rng(60 + threads)
    n = 100_003  # not a multiple of any vector width
    for m in (1, 5, 180, 70_000):
        codes = rng.integers(-1, m - 1, n).astype(np.int32)  # -1 + shift 1: the first value
        tables = (rng.integers(0, 256, m).astype(np.uint8),
                  rng.integers(-2**31, 2**31 - 1, m).astype(np.int32),
                  rng.integers(-2**62, 2**62, m),
                  rng.standard_normal(m))
        for values in tables:
            got = _gather.take(codes, values, threads, 1)
            assert got.dtype == values.dtype and np.array_equal(got, values[codes + 1])
            for bad in (np.int32(-2), np.int32(m - 1)):  # below 0, past the end (+ shift)
                sel = codes.copy()
                sel[n // 2] = bad
                with pytest.raises(IndexError, match=f"1 positions outside the {m} values"):
                    _gather.take(sel, values, threads, 1)
    assert len(_gather.take(np.zeros(0, np.int32), np.zeros(0, np.uint8), threads)) == 0
    with pytest.raises(IndexError, match="outside the 0 values"):
        _gather.take(np.zeros(3, np.int32), np.zeros(0, np.float64), threads)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_counts_equal_bincount(threads):
    """_gather.counts (tally's counts and exact sums) against np.bincount, on int32 and
    int64 indexes, long enough to be split between threads; its errors."""
    rng = np.random.default_rng(80 + threads)
    for n, size in ((0, 5), (10, 3), (200_003, 700)):
        index = rng.integers(0, size, n)
        weights = rng.integers(-1000, 1000, n).astype(np.float64)
        for idx in (index, index.astype(np.int32)):
            got = _gather.counts(idx, size, None, threads)
            assert got.dtype == np.int64
            assert np.array_equal(got, np.bincount(index, minlength=size))
            sums = _gather.counts(idx, size, weights, threads)
            assert np.array_equal(sums, np.bincount(index, weights, minlength=size))
    with pytest.raises(IndexError, match=r"2 indexes outside \[0, 4\)"):
        _gather.counts(np.array([0, 4, -1, 3]), 4, None, threads)
    with pytest.raises(ValueError, match="3 indexes but 2 weights"):
        _gather.counts(np.array([0, 1, 2]), 4, np.ones(2), threads)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_flatnonzero_equals_numpy(threads):
    """_gather.flatnonzero against np.flatnonzero: empty, all-zero, all-set, sparse and
    dense masks, lengths around its 64-row blocks and long enough to split by thread."""
    rng = np.random.default_rng(90 + threads)
    for density in (0.0, 0.02, 0.5, 1.0):
        for n in (0, 1, 63, 64, 65, 129, 300_001):
            mask = (rng.random(n) < density).astype(np.uint8)
            mask[mask > 0] = rng.integers(1, 256, int(mask.sum()))  # any non-zero byte
            got = _gather.flatnonzero(mask, threads)
            assert got.dtype == np.int64 and np.array_equal(got, np.flatnonzero(mask))
    as_bool = rng.random(300_001) < 0.3
    assert np.array_equal(_gather.flatnonzero(as_bool.view(np.uint8), threads),
                          np.flatnonzero(as_bool))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_join_equals_concatenate(threads):
    """_gather.join (Events.ts of a table in chunks) against np.concatenate: empty and
    one-row chunks among them, threads' ranges across chunk ends."""
    rng = np.random.default_rng(100 + threads)
    for cuts in ([0], [0, 0], [0, 5], [0, 1, 1, 300_000, 300_001, 700_000]):
        values = rng.integers(-2**63, 2**63 - 1, cuts[-1], dtype=np.int64)
        parts = [values[a:b] for a, b in zip(cuts, cuts[1:])]
        got = _gather.join(_columns.Int64Chunks(parts), threads)
        assert got.dtype == np.int64 and np.array_equal(got, values)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_shifted_equals_numpy(threads):
    rng = np.random.default_rng(120 + threads)
    for n in (0, 3, 300_001):
        days = rng.integers(-20_000, 40_000, n).astype(np.int32)
        for shift in (0, -20_089, 7):
            got = _gather.shifted(days, shift, threads)
            assert got.dtype == np.int32 and np.array_equal(got, days + np.int32(shift))
