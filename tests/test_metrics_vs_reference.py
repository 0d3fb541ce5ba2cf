"""Each engine metric against the pure-Python reference (tests/reference.py) on generated
logs: int64/int32/uint64 and string ids (ids at the int64 limits), nulls everywhere, ties,
empty logs, one user, s/ms/us/ns timestamps with and without zones and date columns, four
zones across DST changes, Sunday weeks, breakdowns with nulls, 1-3 record batches."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engage_core as ec
import reference as ref
from enginecheck import assert_matches, assert_report, prepare, reference_log, resolve_end_day
from strategies import cases

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EVENTS = st.sampled_from([None, ["a"], ["a", "b"], ["zzz"], ["signup", "c"]])
BREAKDOWN = st.sampled_from([None, "platform"])
THREADS = st.sampled_from([1, 2, None])
END = st.one_of(st.none(), st.integers(0, 20))
PERIODS = st.sampled_from(["day", "week", "month", "quarter"])


@SETTINGS
@given(case=cases())
def test_prepare_events_report(case):
    """rows_read, the two skip counts (null user counted first), num_rows, first/last day."""
    ev = prepare(case)
    assert_report(ev, reference_log(case), ["rows_read", "rows_skipped_null_user",
                                            "rows_skipped_null_timestamp", "num_rows",
                                            "first_day", "last_day"])


@SETTINGS
@given(case=cases())
def test_prepare_events_num_users_counts_kept_users(case):
    """num_users = distinct users among the kept rows (a user seen only on a row skipped for a
    null timestamp is not in the prepared events)."""
    assert_report(prepare(case), reference_log(case), ["num_users"])


@SETTINGS
@given(case=cases(), windows=st.one_of(st.just((1, 7, 30)),
                                       st.lists(st.integers(1, 35), min_size=1, max_size=4, unique=True)),
       events=EVENTS, breakdown=BREAKDOWN, end=END, threads=THREADS)
def test_active_users(case, windows, events, breakdown, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.active_users(prepare(case), windows=tuple(windows), events=events, breakdown=breakdown,
                          end_day=end_day, threads=threads)
    want = ref.active_users(log, windows=tuple(windows), events=events, breakdown=breakdown,
                            end_day=end_day)
    assert_matches("active_users", got, want)


@SETTINGS
@given(case=cases(), mau=st.sampled_from([30, 1, 7, 28]), events=EVENTS, breakdown=BREAKDOWN,
       end=END, threads=THREADS)
def test_engagement_daily(case, mau, events, breakdown, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.engagement_daily(prepare(case), mau_window=mau, events=events, breakdown=breakdown,
                              end_day=end_day, threads=threads)
    want = ref.engagement_daily(log, mau_window=mau, events=events, breakdown=breakdown,
                                end_day=end_day)
    assert_matches("engagement_daily", got, want)


@SETTINGS
@given(case=cases(), period=PERIODS, events=EVENTS, breakdown=BREAKDOWN, end=END, threads=THREADS)
def test_stickiness(case, period, events, breakdown, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.stickiness(prepare(case), period=period, events=events, breakdown=breakdown,
                        end_day=end_day, threads=threads)
    want = ref.stickiness(log, period=period, events=events, breakdown=breakdown, end_day=end_day)
    assert_matches("stickiness", got, want)


@settings(SETTINGS, max_examples=120)
@given(case=cases(), period=PERIODS, max_offset=st.sampled_from([12, 0, 1, 3]),
       start_events=EVENTS, return_events=EVENTS, breakdown=BREAKDOWN, end=END, threads=THREADS)
def test_retention(case, period, max_offset, start_events, return_events, breakdown, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.retention(prepare(case), period=period, max_offset=max_offset,
                       start_events=start_events, return_events=return_events,
                       breakdown=breakdown, end_day=end_day, threads=threads)
    want = ref.retention(log, period=period, max_offset=max_offset, start_events=start_events,
                         return_events=return_events, breakdown=breakdown, end_day=end_day)
    assert_matches("retention", got, want)


@SETTINGS
@given(case=cases(), period=PERIODS, events=EVENTS, end=END, threads=THREADS)
def test_lifecycle(case, period, events, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.lifecycle(prepare(case), period=period, events=events, end_day=end_day, threads=threads)
    want = ref.lifecycle(log, period=period, events=events, end_day=end_day)
    assert_matches("lifecycle", got, want)


@SETTINGS
@given(case=cases(), events=EVENTS, breakdown=BREAKDOWN, end=END, threads=THREADS)
def test_first_week(case, events, breakdown, end, threads):
    log = reference_log(case)
    end_day = resolve_end_day(log, end)
    got = ec.first_week(prepare(case), events=events, breakdown=breakdown, end_day=end_day,
                        threads=threads)
    want = ref.first_week(log, events=events, breakdown=breakdown, end_day=end_day)
    assert_matches("first_week", got, want)
