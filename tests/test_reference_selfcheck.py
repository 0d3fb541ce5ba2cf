"""The reference (tests/reference.py) on small logs whose results are worked out by hand."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from reference import Log, compute, instant_and_day, period_start, shift_period

UTC = timezone.utc
NY = ZoneInfo("America/New_York")


def row(user, ts, event="a", **extra):
    return {"user_id": user, "ts": ts, "event": event, **extra}


def test_local_day_across_new_york_dst():
    # 2025-03-09 03:30 EDT is 07:30 UTC; 2025-03-09 04:30 UTC is 23:30 EST on March 8.
    assert instant_and_day(datetime(2025, 3, 9, 3, 30, tzinfo=NY), NY)[1] == date(2025, 3, 9)
    assert instant_and_day(datetime(2025, 3, 9, 4, 30), NY)[1] == date(2025, 3, 8)
    assert instant_and_day(date(2025, 3, 9), NY)[1] == date(2025, 3, 9)
    ns = 1741505400 * 10**9 + 5        # 2025-03-09 07:30 UTC (+5 ns)
    assert instant_and_day(ns, NY) == (ns, date(2025, 3, 9))


def test_periods():
    assert period_start(date(2025, 3, 9), "week") == date(2025, 3, 3)             # Sunday
    assert period_start(date(2025, 3, 9), "week", "sunday") == date(2025, 3, 9)
    assert period_start(date(2025, 3, 8), "week", "sunday") == date(2025, 3, 2)
    assert period_start(date(2025, 5, 17), "quarter") == date(2025, 4, 1)
    assert shift_period(date(2025, 11, 1), "quarter", 1) == date(2026, 2, 1)
    assert shift_period(date(2025, 1, 1), "month", -1) == date(2024, 12, 1)


def test_skip_counts_count_null_user_first():
    log = Log([row(None, None), row(1, None), row(2, datetime(2025, 1, 1)), row(None, date(2025, 1, 2))],
              UTC)
    assert (log.rows_read, log.rows_skipped_null_user, log.rows_skipped_null_timestamp) == (4, 2, 1)
    assert (log.num_rows, log.first_day, log.last_day) == (1, date(2025, 1, 1), date(2025, 1, 1))


def test_active_users_and_engagement_by_hand():
    rows = [row(1, datetime(2025, 1, 1, 10), platform="ios"),
            row(2, datetime(2025, 1, 1, 11), platform=None),
            row(1, datetime(2025, 1, 3, 9), platform="web")]
    got = compute("active_users", rows, UTC, windows=(1, 2), breakdown="platform")
    table = {(r["day"].day, r["window_days"], r["segment"]): r["active_users"] for r in got}
    assert table == {
        (1, 1, "all"): 2, (1, 2, "all"): 2, (2, 1, "all"): 0, (2, 2, "all"): 2,
        (3, 1, "all"): 1, (3, 2, "all"): 1,
        (1, 1, "ios"): 1, (1, 2, "ios"): 1, (2, 1, "ios"): 0, (2, 2, "ios"): 1,
        (3, 1, "ios"): 0, (3, 2, "ios"): 0,
        (1, 1, "(none)"): 1, (1, 2, "(none)"): 1, (2, 1, "(none)"): 0, (2, 2, "(none)"): 1,
        (3, 1, "(none)"): 0, (3, 2, "(none)"): 0,
        (1, 1, "web"): 0, (1, 2, "web"): 0, (2, 1, "web"): 0, (2, 2, "web"): 0,
        (3, 1, "web"): 1, (3, 2, "web"): 1}
    eng = compute("engagement_daily", rows, UTC, mau_window=2, breakdown="platform")
    web = [r for r in eng if r["segment"] == "web"]
    assert [(r["dau"], r["mau"], r["new_users"], r["total_users"]) for r in web] == [
        (0, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 1)]
    assert web[0]["stickiness"] is None and web[0]["engagement_rate"] is None
    day2 = [r for r in eng if r["segment"] == "all"][1]
    assert (day2["dau"], day2["mau"], day2["stickiness"], day2["engagement_rate"]) == (0, 2, 0.0, 1.0)


def test_stickiness_sunday_week():
    rows = [row(1, date(2025, 3, 9)), row(1, date(2025, 3, 10)), row(2, date(2025, 3, 15)),
            row(2, date(2025, 3, 15))]
    got = compute("stickiness", rows, UTC, "sunday", period="week")
    assert [(r["period_start"], r["days_active"], r["users"]) for r in got if r["users"]] == [
        (date(2025, 3, 9), 1, 1), (date(2025, 3, 9), 2, 1)]
    assert len(got) == 7 and all(r["is_complete"] for r in got)
    monday = compute("stickiness", rows, UTC, "monday", period="week")
    assert [(r["period_start"], r["days_active"], r["users"]) for r in monday if r["users"]] == [
        (date(2025, 3, 3), 1, 1), (date(2025, 3, 10), 1, 2)]
    assert [r["is_complete"] for r in monday if r["days_active"] == 1] == [True, False]


def test_retention_by_hand():
    rows = [row(1, datetime(2025, 1, 1), "signup", p="b"), row(1, datetime(2025, 1, 1), "x", p="a"),
            row(1, datetime(2025, 2, 3), "x", p="z"), row(2, datetime(2025, 1, 20), "signup", p=None),
            row(2, datetime(2025, 3, 5), "x", p="b")]
    got = compute("retention", rows, UTC, period="month", max_offset=5, breakdown="p")
    key = {(r["segment"], r["period_offset"]): (r["cohort_size"], r["retained_users"],
                                                r["retained_users_unbounded"], r["is_complete"])
           for r in got}
    assert key == {("all", 0): (2, 2, 2, True), ("all", 1): (2, 1, 2, True), ("all", 2): (2, 1, 1, False),
                   ("a", 0): (1, 1, 1, True), ("a", 1): (1, 1, 1, True), ("a", 2): (1, 0, 0, False),
                   ("(none)", 0): (1, 1, 1, True), ("(none)", 1): (1, 0, 1, True),
                   ("(none)", 2): (1, 1, 1, False)}
    starts = compute("retention", rows, UTC, period="month", start_events=["signup"],
                     return_events=["x"], max_offset=1)
    assert [(r["retained_users"], r["retention_rate"]) for r in starts] == [(1, 0.5), (1, 0.5)]


def test_lifecycle_by_hand():
    rows = [row(1, date(2025, 1, 6)), row(2, date(2025, 1, 6)), row(1, date(2025, 1, 13)),
            row(2, date(2025, 1, 20)), row(3, date(2025, 1, 20))]
    got = compute("lifecycle", rows, UTC, period="week")
    assert [(r["new_users"], r["returning_users"], r["resurrecting_users"], r["dormant_users"])
            for r in got] == [(2, 0, 0, 0), (0, 1, 0, 1), (1, 0, 1, 1)]
    assert {r["segment"] for r in got} == {"all"}


def test_first_week_by_hand():
    rows = [row(1, date(2025, 1, 1), p="b"), row(1, date(2025, 1, 1), p="a"), row(1, date(2025, 1, 7)),
            row(1, date(2025, 1, 8)), row(2, date(2025, 1, 1), p=None), row(3, date(2025, 1, 2), "z")]
    got = compute("first_week", rows, UTC, events=["a"], breakdown="p", end_day=date(2025, 1, 7))
    assert [(r["cohort_day"], r["segment"], r["new_users"], r["returned_users"], r["avg_active_days"],
             r["is_complete"]) for r in got] == [
        (date(2025, 1, 1), "(none)", 1, 0, 1.0, True),
        (date(2025, 1, 1), "a", 1, 1, 2.0, True), (date(2025, 1, 1), "all", 2, 1, 1.5, True)]


def test_empty_log():
    for metric in ("active_users", "stickiness", "lifecycle", "first_week"):
        assert compute(metric, [], UTC) == []
