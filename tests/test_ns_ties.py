"""Nanosecond timestamps: a user's first row is the earliest to the nanosecond."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import engage_core as ec


def test_cohort_segment_follows_sub_microsecond_order():
    t = pa.table({"user_id": pa.array([0, 0, 0], pa.int32()),
                  "ts": pa.array([1_741_503_600_000_001_001, None, 1_741_503_600_000_001_000],
                                 pa.timestamp("ns")),
                  "event": ["a"] * 3, "platform": ["android", "ios", "ios"]})
    ev = ec.prepare_events(t, breakdowns=["platform"], calendar=ec.Calendar("America/New_York"))
    # 'ios' is 1 ns earlier, so it wins although 'android' is the smaller value
    assert ec.retention(ev, period="day", breakdown="platform").column("segment").to_pylist() == ["all", "ios"]
    assert ec.first_week(ev, breakdown="platform").column("segment").to_pylist() == ["all", "ios"]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=300),
       threads=st.integers(1, 3))
def test_to_us_floors_nanoseconds_like_numpy(values, threads):
    # the parallel cut of nanosecond timestamps equals numpy's // 1000 and % 1000, negative
    # values (before 1970) and both ends of int64 included
    from engage_core import _columns

    ns = np.asarray(values + [-1, -999, -1000, -1001, 0, 999, 1000, -(2**63), 2**63 - 1],
                    dtype=np.int64)
    us = np.empty(len(ns), np.int64)
    rem = np.empty(len(ns), np.int16)
    _columns.to_us(_columns.Int64Chunks([ns]), 0, us, rem, threads)
    assert np.array_equal(us, ns // 1000) and np.array_equal(rem, (ns % 1000).astype(np.int16))
    only_rem = np.empty(len(ns), np.int16)
    _columns.to_us(_columns.Int64Chunks([ns[:5], ns[5:]]), 0, None, only_rem, threads)
    assert np.array_equal(only_rem, rem)


@settings(max_examples=30, deadline=None)
@given(offsets=st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=200),
       chunk=st.sampled_from([None, 1, 7]), threads=st.integers(1, 3))
def test_ns_timestamps_prepare_as_the_same_instants_in_microseconds(offsets, chunk, threads):
    # an in-memory table of nanosecond timestamps (chunked or not, on any thread count)
    # gives the microseconds, days and sub-microsecond remainders of the plain arithmetic
    base = 1_741_503_600_000_000_000  # 2025-03-09, a DST change in New York
    ns = np.asarray([base + o * 997 for o in offsets], dtype=np.int64)
    flat = pa.table({"user_id": pa.array(np.arange(len(ns)) % 5, pa.int64()),
                     "ts": pa.array(ns, pa.timestamp("ns"))})
    step = chunk or len(ns)
    t = pa.Table.from_batches(flat.to_batches(max_chunksize=step))
    cal = ec.Calendar("America/New_York")
    ev = ec.prepare_events(t, event=None, calendar=cal, threads=threads)
    assert np.array_equal(ev.ts, ns // 1000)
    assert np.array_equal(ev.ts_rem, ns % 1000)
    want_days = ec.local_days(pa.array(ns // 1000, pa.timestamp("us")), cal)
    assert np.array_equal(ev.day, want_days.cast(pa.int32()).to_numpy())
