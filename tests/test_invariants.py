"""Identities the metrics must satisfy whatever the input (lifecycle, retention), results
independent of threads and of record-batch splitting, and small hand-computed logs."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engage_core as ec
import reference as ref
from enginecheck import expected_type, prepare, reference_log
from strategies import cases, to_table

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PERIODS = st.sampled_from(["day", "week", "month", "quarter"])
EVENTS = st.sampled_from([None, ["a"], ["a", "b"]])
NY = ZoneInfo("America/New_York")


@SETTINGS
@given(case=cases(), period=PERIODS, events=EVENTS)
def test_lifecycle_identities(case, period, events):
    log = reference_log(case)
    rows = ec.lifecycle(prepare(case), period=period, events=events).to_pylist()
    active = {}          # period start -> users active in it (reference)
    for e in log.events:
        if ref.qualifies(e, events):
            p = ref.period_start(e.day, period, case.week_start)
            active.setdefault(p, set()).add(e.user)
    for r in rows:
        p = r["period_start"]
        prev = ref.shift_period(p, period, -1)
        assert len(active.get(p, ())) == r["new_users"] + r["returning_users"] + r["resurrecting_users"]
        assert len(active.get(prev, ())) == r["returning_users"] + r["dormant_users"]
        assert min(r["new_users"], r["returning_users"], r["resurrecting_users"], r["dormant_users"]) >= 0


@SETTINGS
@given(case=cases(), period=PERIODS, breakdown=st.sampled_from([None, "platform"]))
def test_retention_identities(case, period, breakdown):
    rows = ec.retention(prepare(case), period=period, max_offset=6, breakdown=breakdown).to_pylist()
    by_cohort = {}
    for r in rows:
        by_cohort.setdefault((r["cohort_start"], r["segment"]), []).append(r)
        assert r["retained_users_unbounded"] >= r["retained_users"]
        assert r["cohort_size"] >= r["retained_users_unbounded"]
    for cells in by_cohort.values():
        cells.sort(key=lambda r: r["period_offset"])
        assert cells[0]["period_offset"] == 0
        assert cells[0]["retained_users"] == cells[0]["cohort_size"] > 0
        unbounded = [r["retained_users_unbounded"] for r in cells]
        assert unbounded == sorted(unbounded, reverse=True)


def _all_metrics(ev, threads, breakdown):
    return [ec.active_users(ev, windows=(1, 3, 7), breakdown=breakdown, threads=threads),
            ec.engagement_daily(ev, breakdown=breakdown, threads=threads),
            ec.stickiness(ev, period="week", breakdown=breakdown, threads=threads),
            ec.retention(ev, period="week", breakdown=breakdown, threads=threads),
            ec.retention(ev, period="day", return_events=["a"], breakdown=breakdown, threads=threads),
            ec.lifecycle(ev, period="month", threads=threads),
            ec.first_week(ev, breakdown=breakdown, threads=threads)]


@SETTINGS
@given(case=cases(max_rows=60), breakdown=st.sampled_from([None, "platform"]))
def test_threads_and_batches_do_not_change_results(case, breakdown):
    one = _all_metrics(prepare(case, batches=1), 1, breakdown)
    two = _all_metrics(prepare(case, batches=1), 2, breakdown)
    split = _all_metrics(prepare(case, batches=3), 2, breakdown)
    as_batches = _all_metrics(prepare(case, table=prepare_batches(case)), 1, breakdown)
    for a, b, c, d in zip(one, two, split, as_batches):
        assert a.equals(b) and a.equals(c) and a.equals(d)


def prepare_batches(case):
    """The log as a plain list of record batches (prepare_events accepts an iterable)."""
    table = to_table(case, batches=3)
    batches = table.to_batches()
    if not batches:      # a zero-row table has no batch; a list needs one to carry the schema
        batches = [pa.record_batch([pa.array([], f.type) for f in table.schema], schema=table.schema)]
    return batches


# ----------------------------------------------------------------------------- by hand

def _table(users, stamps, events=None, platform=None, ts_type=pa.timestamp("us")):
    cols = {"user_id": users, "ts": pa.array(stamps, ts_type),
            "event": pa.array(events or ["a"] * len(users), pa.string())}
    cols["platform"] = pa.array(platform or [None] * len(users), pa.string())
    return pa.table(cols)


def _prep(table, tz="UTC", week_start="monday"):
    return ec.prepare_events(table, user_id="user_id", timestamp="ts", event="event",
                             breakdowns=["platform"], calendar=ec.Calendar(timezone=tz, week_start=week_start))


def test_new_york_dst_day():
    # 03:30 EDT on 2025-03-09 (07:30 UTC) is that day; 04:30 UTC on 2025-03-09 is 23:30 EST on
    # 2025-03-08; 03:59 UTC on 2025-03-10 is 23:59 EDT on 2025-03-09.
    stamps = [datetime(2025, 3, 9, 3, 30, tzinfo=NY), datetime(2025, 3, 9, 4, 30, tzinfo=timezone.utc),
              datetime(2025, 3, 10, 3, 59, tzinfo=timezone.utc)]
    ev = _prep(_table([1, 2, 3], stamps, ts_type=pa.timestamp("us", tz="UTC")), tz="America/New_York")
    assert (ev.first_day, ev.last_day) == (date(2025, 3, 8), date(2025, 3, 9))
    got = ec.active_users(ev, windows=(1, 7)).to_pylist()
    assert [(r["day"], r["window_days"], r["active_users"]) for r in got] == [
        (date(2025, 3, 8), 1, 1), (date(2025, 3, 8), 7, 1),
        (date(2025, 3, 9), 1, 2), (date(2025, 3, 9), 7, 3)]
    naive = _prep(_table([1, 2, 3], [datetime(2025, 3, 9, 7, 30), datetime(2025, 3, 9, 4, 30),
                                     datetime(2025, 3, 10, 3, 59)]), tz="America/New_York")
    assert ec.active_users(naive, windows=(1, 7)).equals(ec.active_users(ev, windows=(1, 7)))


def test_sunday_week_stickiness():
    ev = _prep(_table([1, 1, 1], [date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 15)],
                      ts_type=pa.date32()), week_start="sunday")
    got = ec.stickiness(ev, period="week").to_pylist()
    want = [(date(2025, 3, 2), k, int(k == 1), True) for k in range(1, 8)] + \
           [(date(2025, 3, 9), k, int(k == 2), True) for k in range(1, 8)]
    assert [(r["period_start"], r["days_active"], r["users"], r["is_complete"]) for r in got] == want


def test_one_user_log():
    ev = _prep(_table(["solo"] * 3, [date(2025, 1, 1), date(2025, 1, 3), date(2025, 1, 9)],
                      ts_type=pa.date32()))
    fw = ec.first_week(ev).to_pylist()
    assert fw == [{"cohort_day": date(2025, 1, 1), "segment": "all", "new_users": 1,
                   "returned_users": 1, "returned_rate": 1.0, "avg_active_days": 2.0,
                   "is_complete": True}]
    ret = ec.retention(ev, period="week").to_pylist()
    assert [(r["cohort_start"], r["period_offset"], r["cohort_size"], r["retained_users"],
             r["retained_users_unbounded"], r["is_complete"]) for r in ret] == [
        (date(2024, 12, 30), 0, 1, 1, 1, True), (date(2024, 12, 30), 1, 1, 1, 1, False)]


def test_cohort_segment_tie_smallest_text_null_last():
    t = datetime(2025, 5, 1, 12)
    ev = _prep(_table([1, 1, 1, 2, 2], [t, t, t, t, t], platform=["b", None, "a", None, "b"]))
    rows = ec.first_week(ev, breakdown="platform").to_pylist()
    assert [(r["segment"], r["new_users"]) for r in rows] == [("a", 1), ("all", 2), ("b", 1)]


def test_users_before_1970_are_cohorted():
    # 1969-12-31 22:00 UTC is day -1 of the Unix epoch; the user must still have a cohort.
    ev = _prep(_table([7], [datetime(1969, 12, 31, 22)]))
    assert ev.first_day == date(1969, 12, 31)
    assert [(r["cohort_start"], r["cohort_size"]) for r in ec.retention(ev, period="day").to_pylist()] == [
        (date(1969, 12, 31), 1)]
    assert [(r["cohort_day"], r["new_users"]) for r in ec.first_week(ev).to_pylist()] == [
        (date(1969, 12, 31), 1)]


@pytest.mark.parametrize("user_type", [pa.int64(), pa.string(), pa.large_string(),
                                       pa.dictionary(pa.int32(), pa.string())])
def test_empty_log_gives_empty_tables_with_the_right_columns(user_type):
    ev = _prep(_table(pa.array([], user_type), []))
    assert (ev.rows_read, ev.num_rows, ev.first_day, ev.last_day) == (0, 0, None, None)
    for metric, table in zip(["active_users", "engagement_daily", "stickiness", "retention",
                              "retention", "lifecycle", "first_week"], _all_metrics(ev, 1, "platform")):
        assert table.num_rows == 0
        assert table.column_names == ref.COLUMNS[metric]
        assert [f.type for f in table.schema] == [expected_type(c) for c in ref.COLUMNS[metric]]


def test_end_day_before_last_day_is_an_error():
    ev = _prep(_table([1], [datetime(2025, 5, 1, 12)]))
    with pytest.raises(ValueError):
        ec.active_users(ev, end_day=date(2025, 4, 30))


def test_primary_keys_stay_unique_when_a_breakdown_value_is_all():
    # METRICS.md 4: "The primary key is listed; a load replaces rows by key", and section 3
    # reserves 'all' for the whole population: a segment whose value is the text 'all' must
    # not produce a second row with the same key as the population's row.
    ev = _prep(_table([1, 2], [datetime(2025, 1, 1), datetime(2025, 1, 1)], platform=["all", "web"]))
    metrics = ["active_users", "engagement_daily", "stickiness", "retention", "retention",
               "lifecycle", "first_week"]
    for metric, table in zip(metrics, _all_metrics(ev, 1, "platform")):
        keys = [tuple(r[k] for k in ref.PRIMARY_KEYS[metric]) for r in table.to_pylist()]
        assert len(keys) == len(set(keys)), (metric, sorted(keys))
