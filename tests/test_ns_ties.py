"""Nanosecond timestamps: a user's first row is the earliest to the nanosecond."""

import pyarrow as pa

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
