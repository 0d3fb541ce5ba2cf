"""Hand-computed cases for the shapes that break naive catalogue code: sessions across local
midnight and DST changes, funnels with shared timestamps and repeated step names, a user
with many events, rejected rows of every reason, empty logs, argument errors, and results
that do not depend on the thread count."""

import datetime as dt
import math
import time
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

import engage_core as ec

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def log(rows, zone="UTC", **kw):
    """rows: (user, aware or naive-UTC datetime, event[, platform[, revenue[, score]]])."""
    rows = [tuple(r) + (None,) * (6 - len(r)) for r in rows]
    cols = list(zip(*rows)) if rows else [[]] * 6
    t = pa.table({
        "user_id": pa.array(cols[0], pa.string() if rows and isinstance(rows[0][0], str) else pa.int64()),
        "ts": pa.array([None if v is None else (v if v.tzinfo else v.replace(tzinfo=UTC))
                        for v in cols[1]], pa.timestamp("us", tz="UTC")),
        "event": pa.array(cols[2], pa.string()),
        "platform": pa.array(cols[3], pa.string()),
        "revenue": pa.array(cols[4], pa.float64()),
        "score": pa.array(cols[5], pa.float64()),
    })
    return ec.prepare_events(t, breakdowns=["platform"], numeric=["revenue", "score"],
                             calendar=ec.Calendar(zone), **kw)


def by(table, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in table.to_pylist()}


# ---------------------------------------------------------------- sessions

def test_session_split_at_local_midnight_not_utc_midnight():
    # 23:50 and 00:05 New York time: 15 minutes apart but on two local days -> two sessions;
    # 19:50 and 20:05 New York time cross UTC midnight but not local midnight -> one session
    ev = log([(1, dt.datetime(2025, 1, 6, 23, 50, tzinfo=NY), "view"),
              (1, dt.datetime(2025, 1, 7, 0, 5, tzinfo=NY), "view"),
              (1, dt.datetime(2025, 1, 7, 19, 50, tzinfo=NY), "view"),
              (1, dt.datetime(2025, 1, 7, 20, 5, tzinfo=NY), "view")], "America/New_York")
    out = by(ec.sessions(ev), "day")
    d6, d7 = out[dt.date(2025, 1, 6)], out[dt.date(2025, 1, 7)]
    assert (d6["sessions"], d6["users"], d6["avg_session_seconds"]) == (1, 1, 0.0)
    assert (d7["sessions"], d7["users"], d7["events_per_session"]) == (2, 1, 1.5)
    assert d7["avg_session_seconds"] == 450.0  # durations 0 and 900 s
    assert d7["median_session_seconds"] == 450.0


def test_session_gaps_are_elapsed_time_across_dst_changes():
    ev = log([
        # spring forward: 01:50 EST and 03:05 EDT are 15 minutes apart
        (1, dt.datetime(2025, 3, 9, 1, 50, tzinfo=NY), "view"),
        (1, dt.datetime(2025, 3, 9, 3, 5, tzinfo=NY), "view"),
        # fall back: 01:50 EDT, then 01:10 EST (20 minutes later), then 01:45 EST (+35 min)
        (2, dt.datetime(2025, 11, 2, 1, 50, tzinfo=NY), "view"),
        (2, dt.datetime(2025, 11, 2, 1, 10, fold=1, tzinfo=NY), "view"),
        (2, dt.datetime(2025, 11, 2, 1, 45, fold=1, tzinfo=NY), "view"),
    ], "America/New_York")
    out = by(ec.sessions(ev, session_gap=1800), "day")
    spring, fall = out[dt.date(2025, 3, 9)], out[dt.date(2025, 11, 2)]
    assert (spring["sessions"], spring["avg_session_seconds"]) == (1, 900.0)
    assert (fall["sessions"], fall["events_per_session"]) == (2, 1.5)
    assert fall["median_session_seconds"] == 600.0  # durations 1200 s and 0 s
    quiet = out[dt.date(2025, 6, 1)]  # a day without events in between: zeros and NULLs
    assert (quiet["sessions"], quiet["users"], quiet["avg_session_seconds"]) == (0, 0, None)


def test_session_median_even_and_odd_and_gap_boundary():
    t0 = dt.datetime(2025, 1, 6, 8)
    m = lambda minutes: t0 + dt.timedelta(minutes=minutes)
    rows = [(1, m(0), "a"), (1, m(30), "a"),              # gap exactly 30 min: one session, 1800 s
            (2, m(0), "a"), (2, m(10), "a"),              # 600 s
            (3, m(0), "a"), (3, m(30) + dt.timedelta(microseconds=1), "a"),  # two sessions of 0 s
            (4, m(0), "a"), (4, m(0), "a")]               # two events at one instant: 0 s
    r = by(ec.sessions(log(rows)), "day")[dt.date(2025, 1, 6)]
    assert (r["sessions"], r["users"]) == (5, 4)
    assert r["median_session_seconds"] == 0.0  # 0, 0, 0, 600, 1800
    assert r["avg_session_seconds"] == pytest.approx(2400 / 5)
    r = by(ec.sessions(log(rows[:4])), "day")[dt.date(2025, 1, 6)]
    assert r["median_session_seconds"] == 1200.0  # mean of 600 and 1800
    # a breakdown segment sees only its own events: user 1's web events are 2 sessions
    seg = log([(1, m(0), "a", "web"), (1, m(20), "a", "ios"), (1, m(40), "a", "web")])
    out = by(ec.sessions(seg, breakdown="platform"), "segment")
    assert (out["all"]["sessions"], out["web"]["sessions"], out["ios"]["sessions"]) == (1, 2, 1)


# ---------------------------------------------------------------- funnels

def steps_of(table):
    return [r["users"] for r in table.to_pylist() if r["segment"] == "all"]


def test_funnel_steps_sharing_a_timestamp_in_any_row_order():
    t = dt.datetime(2025, 1, 6, 12)
    ev = log([(1, t, "purchase"), (1, t, "add_to_cart"), (1, t, "view"),   # written backwards
              (2, t, "view"), (2, t - dt.timedelta(seconds=1), "add_to_cart")])  # cart before view
    out = ec.funnel(ev, name="buy", steps=["view", "add_to_cart", "purchase"])
    assert steps_of(out) == [2, 1, 1]
    rows = out.to_pylist()
    assert [r["conversion_from_previous"] for r in rows] == [1.0, 0.5, 1.0]
    assert [r["step_name"] for r in rows] == ["view", "add_to_cart", "purchase"]


def test_funnel_repeated_step_name_needs_distinct_events():
    t = dt.datetime(2025, 1, 6, 12)
    s = lambda k: t + dt.timedelta(minutes=k)
    ev = log([(1, s(0), "view"), (1, s(1), "purchase"),                    # one view: step 1
              (2, s(0), "view"), (2, s(1), "view"), (2, s(2), "purchase"),  # all 3
              (3, s(0), "view"), (3, s(1), "purchase"), (3, s(2), "view"),  # purchase too early: 2
              (4, s(5), "view"), (4, s(5), "view"), (4, s(5), "purchase")])  # one instant: all 3
    out = ec.funnel(ev, name="f", steps=["view", "view", "purchase"])
    assert steps_of(out) == [4, 3, 2]


def test_funnel_window_boundary_best_start_and_completeness():
    t = dt.datetime(2025, 1, 6, 12)  # a Monday
    ev = log([(1, t, "view"), (1, t + dt.timedelta(hours=1), "purchase"),
              (2, t, "view"), (2, t + dt.timedelta(hours=1, microseconds=1), "purchase"),
              # an early view that cannot convert, then a later one that can, same week
              (3, t - dt.timedelta(days=3), "view", "ios"), (3, t + dt.timedelta(days=2), "view", "web"),
              (3, t + dt.timedelta(days=2, minutes=5), "purchase", "web")])
    out = ec.funnel(ev, name="f", steps=["view", "purchase"], conversion_window=3600,
                    breakdown="platform", period="week", end_day=dt.date(2025, 1, 13))
    cells = {(str(r["period_start"]), r["segment"], r["step"]): (r["users"], r["is_complete"])
             for r in out.to_pylist()}
    # user 3 enters in two weeks; in the week of 6 January their first view is on web
    assert cells[("2025-01-06", "all", 1)] == (3, True)   # week ends 12 Jan + 1 day <= 13 Jan
    assert cells[("2025-01-06", "all", 2)] == (2, True)
    assert cells[("2025-01-06", "web", 2)] == (1, True)
    assert cells[("2024-12-30", "ios", 2)] == (0, True)
    assert cells[("2025-01-06", "(none)", 1)] == (2, True)
    assert ("2024-12-30", "web", 1) not in cells  # only segments with entrants get rows


def test_funnel_user_with_many_events_is_fast_and_exact():
    n = 40_000
    t0 = dt.datetime(2025, 1, 6)
    rows = [(1, t0 + dt.timedelta(seconds=10 * i), "view") for i in range(n)]
    rows += [(1, t0 + dt.timedelta(seconds=10 * n + 5), "add_to_cart"),
             (1, t0 + dt.timedelta(seconds=10 * n + 6), "purchase")]
    # a second user who alternates view/add_to_cart thousands of times but never purchases
    rows += [(2, t0 + dt.timedelta(seconds=i), "view" if i % 2 else "add_to_cart") for i in range(n)]
    ev = log(rows)
    start = time.perf_counter()
    out = ec.funnel(ev, name="f", steps=["view", "view", "add_to_cart", "purchase"],
                    conversion_window=60, period="month")
    elapsed = time.perf_counter() - start
    # user 1: the last two views (10 s apart) then the cart and the purchase within 60 s
    # user 2: view, view, cart reached from any early view; no purchase
    assert steps_of(out) == [2, 2, 2, 1]
    assert elapsed < 5.0  # quadratic per-user work would take minutes


# ---------------------------------------------------------------- conversion

def test_conversion_needs_both_events_in_the_same_period():
    w1, w2 = dt.datetime(2025, 1, 6), dt.datetime(2025, 1, 13)
    ev = log([(1, w1, "email_open"), (1, w1, "email_click"),
              (2, w1, "email_open"), (2, w2, "email_click"),   # click in the next week
              (3, w1, "email_click")])                          # click without an open
    out = by(ec.conversion(ev, name="ctr", denominator=["email_open"], numerator="email_click",
                           end_day=dt.date(2025, 1, 20)), "period_start")
    assert [(r["denominator_users"], r["numerator_users"], r["rate"]) for r in out.values()] == [
        (2, 1, 0.5), (0, 0, None), (0, 0, None)]


# ---------------------------------------------------------------- commerce

def test_commerce_rejects_each_reason_and_counts_the_rest():
    d = lambda day: dt.datetime(2025, 1, day, 12)
    rows = [(None, d(1), "purchase", None, 99.0),             # row 0: skipped (null user)
            (1, d(1), "purchase", "web", 10.0),                # row 1
            (1, d(2), "purchase", "web", None),                # row 2: revenue_null
            (1, d(3), "purchase", "web", -5.0),                # row 3: revenue_negative
            (2, d(3), "purchase", "ios", math.nan),            # row 4: revenue_not_finite
            (2, d(4), "purchase", "ios", math.inf),            # row 5: revenue_not_finite
            (2, d(5), "view", "ios", None),                    # row 6: not an order
            (1, d(6), "purchase", "ios", 30.0),                # row 7
            (1, dt.datetime(2025, 2, 1), "purchase", "web", 0.0)]  # row 8: free order counts
    rejected = []
    out = by(ec.commerce(log(rows), breakdown="platform", rejected=rejected), "period_start", "segment")
    assert rejected[0].to_pylist() == [
        {"metric": "commerce", "reason": r, "row": i}
        for i, r in [(2, "revenue_null"), (3, "revenue_negative"), (4, "revenue_not_finite"),
                     (5, "revenue_not_finite")]]
    jan, feb = dt.date(2025, 1, 1), dt.date(2025, 2, 1)
    a = out[(jan, "all")]
    assert (a["customers"], a["orders"], a["revenue"], a["avg_order_value"]) == (1, 2, 40.0, 20.0)
    assert (a["repeat_customers"], a["returning_customers"], a["purchase_frequency"]) == (1, 0, 2.0)
    assert out[(jan, "ios")]["customers"] == 1 and out[(jan, "ios")]["repeat_customers"] == 0
    assert out[(feb, "all")]["returning_customers"] == 1
    assert out[(feb, "web")]["returning_customer_rate"] == 1.0  # web order in January
    assert out[(feb, "ios")]["customers"] == 0 and out[(feb, "ios")]["avg_order_value"] is None
    with pytest.raises(ec.SchemaError, match="'amount'"):
        ec.commerce(log(rows), revenue="amount")


def test_cohort_revenue_follows_first_order_segment_and_cumulates():
    rows = [(1, dt.datetime(2025, 1, 5), "purchase", "web", 10.0),
            (1, dt.datetime(2025, 1, 5), "purchase", "android", 1.0),  # same instant: android wins
            (1, dt.datetime(2025, 3, 2), "purchase", "ios", 5.0),
            (2, dt.datetime(2025, 1, 20), "purchase", "web", 4.0),
            (2, dt.datetime(2025, 1, 21), "purchase", "web", -4.0)]     # rejected
    rejected = []
    out = by(ec.cohort_revenue(log(rows), breakdown="platform", max_offset=3, rejected=rejected),
             "segment", "period_offset")
    assert [r["reason"] for r in rejected[0].to_pylist()] == ["revenue_negative"]
    assert sorted(out) == [("all", 0), ("all", 1), ("all", 2), ("android", 0), ("android", 1),
                           ("android", 2), ("web", 0), ("web", 1), ("web", 2)]
    a0, a2 = out[("all", 0)], out[("all", 2)]
    assert (a0["cohort_size"], a0["active_customers"], a0["revenue"], a0["ltv"]) == (2, 2, 15.0, 7.5)
    assert (a2["active_customers"], a2["revenue"], a2["cumulative_revenue"], a2["ltv"]) == (1, 5.0, 20.0, 10.0)
    assert out[("android", 2)]["revenue"] == 5.0 and out[("web", 0)]["cohort_size"] == 1
    assert [out[("all", k)]["is_complete"] for k in range(3)] == [True, True, False]


# ---------------------------------------------------------------- survey

def test_survey_latest_response_ties_and_rejections():
    d = lambda day, h=12: dt.datetime(2025, 1, day, h)
    rows = [(1, d(2), "nps_response", None, None, 3), (1, d(9), "nps_response", None, None, 9),
            (2, d(3), "nps_response", None, None, 6), (2, d(3), "nps_response", None, None, 10),
            (3, d(4), "nps_response", None, None, 7),
            (4, d(4), "nps_response", None, None, None),    # row 5: score_null
            (4, d(5), "nps_response", None, None, 11),      # row 6: score_out_of_range
            (4, d(6), "nps_response", None, None, 7.5),     # row 7: score_not_whole
            (5, d(6), "csat_response", None, None, 0),      # row 8: out of range for CSAT
            (5, d(7), "csat_response", None, None, 4),
            (6, d(7), "csat_response", None, None, 2),
            (6, d(8), "csat_response", None, None, math.nan)]  # row 11: out of range
    rejected = []
    out = by(ec.survey(log(rows), rejected=rejected), "survey")
    assert [(r["row"], r["reason"]) for r in rejected[0].to_pylist()] == [
        (5, "score_null"), (6, "score_out_of_range"), (7, "score_not_whole"),
        (8, "score_out_of_range"), (11, "score_out_of_range")]
    nps, csat = out["nps"], out["csat"]
    # latest: user 1 -> 9, user 2 -> 10 (tie at one instant: highest), user 3 -> 7
    assert (nps["responses"], nps["promoters"], nps["passives"], nps["detractors"]) == (3, 2, 1, 0)
    assert nps["score"] == pytest.approx(200 / 3) and nps["satisfied"] is None
    assert (csat["responses"], csat["satisfied"], csat["score"], csat["promoters"]) == (2, 1, 50.0, None)


# ---------------------------------------------------------------- scores

def test_scores_tiers_and_user_scores():
    d = dt.datetime(2025, 1, 6, 12)
    rows = [("a", d, "purchase")] * 3 + [("a", d, "view")] * 4 + [("b", d, "view")] \
        + [("c", d, "refund")]
    ev = log(rows)
    opts = dict(weights={"purchase": 15, "refund": -5}, default_weight=1.0)
    tiers = by(ec.engagement_score(ev, **opts), "tier")
    assert {t: (r["users"], r["avg_score"]) for t, r in tiers.items()} == {
        "power": (0, None), "core": (1, 49.0), "casual": (1, 1.0),
        "(none)": (1, -5.0)}
    users = by(ec.user_scores(ev, **opts), "user_id")
    assert {u: (r["score"], r["tier"]) for u, r in users.items()} == {
        "a": (49.0, "core"), "b": (1.0, "casual"), "c": (-5.0, "(none)")}
    no_none = ec.engagement_score(ev, events=["view", "purchase"], **opts)
    assert "(none)" not in no_none.column("tier").to_pylist()
    with pytest.raises(ec.ConfigError, match="tiers"):
        ec.engagement_score(ev, tiers={"low": 0, "high": 10})


# ---------------------------------------------------------------- all metrics

METRICS = {
    "sessions": lambda ev, **kw: ec.sessions(ev, **kw),
    "funnel": lambda ev, **kw: ec.funnel(ev, name="f", steps=["view", "add_to_cart", "purchase"], **kw),
    "conversion": lambda ev, **kw: ec.conversion(ev, name="c", denominator="view",
                                                 numerator="purchase", **kw),
    "commerce": lambda ev, **kw: ec.commerce(ev, **kw),
    "cohort_revenue": lambda ev, **kw: ec.cohort_revenue(ev, **kw),
    "survey": lambda ev, **kw: ec.survey(ev, **kw),
    "engagement_score": lambda ev, **kw: ec.engagement_score(ev, **kw),
}


def random_log(n=40_000, users=2_000, seed=7):
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    t = pa.table({
        "user_id": rng.integers(0, users, n),
        "ts": pa.array(start + rng.integers(0, 90 * 86400, n) * 1_000_000, pa.timestamp("us", tz="UTC")),
        "event": pa.array(rng.choice(["view", "add_to_cart", "purchase", "app_open",
                                      "nps_response"], n)),
        "platform": pa.array(rng.choice(["ios", "web", "android"], n)),
        "revenue": rng.gamma(2.0, 20.0, n),
        "score": rng.integers(0, 11, n).astype(np.float64),
    })
    return ec.prepare_events(t, breakdowns=["platform"], numeric=["revenue", "score"],
                             calendar=ec.Calendar("Australia/Lord_Howe"))


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_thread_count_does_not_change_results(metric):
    ev = random_log()
    one = METRICS[metric](ev, breakdown="platform", threads=1)
    assert one.num_rows > 0
    assert one.equals(METRICS[metric](ev, breakdown="platform", threads=2))
    assert one.equals(METRICS[metric](ev, breakdown="platform", threads=3))


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_empty_log_gives_empty_tables_with_the_columns(metric):
    empty = log([(None, dt.datetime(2025, 1, 1), "view")])
    out = METRICS[metric](empty, breakdown="platform")
    assert out.num_rows == 0
    full = METRICS[metric](log([(1, dt.datetime(2025, 1, 6), "view", "web", 1.0, 5)]))
    assert out.schema == full.schema


def test_argument_errors_name_the_option():
    ev = log([(1, dt.datetime(2025, 1, 6), "view")])
    with pytest.raises(ec.ConfigError, match="session_gap"):
        ec.sessions(ev, session_gap=-1)
    with pytest.raises(ec.ConfigError, match="steps"):
        ec.funnel(ev, name="f", steps=[])
    with pytest.raises(ec.ConfigError, match="conversion_window"):
        ec.funnel(ev, name="f", steps=["view"], conversion_window=math.inf)
    with pytest.raises(ec.ConfigError, match="survey"):
        ec.survey(ev, nps_event=None, csat_event=None)
    with pytest.raises(ec.SchemaError, match="'points'"):
        ec.survey(ev, score="points")
    with pytest.raises(ec.ConfigError, match="max_offset"):
        ec.cohort_revenue(ev, max_offset=-1)
    with pytest.raises(ec.ConfigError, match="period"):
        ec.conversion(ev, name="c", denominator="view", numerator="view", period="year")
