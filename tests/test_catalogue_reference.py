"""The rest of the catalogue (sessions, funnel, conversion, commerce, cohort_revenue, survey,
engagement_score, user_scores) against slow, obviously-right references written from
METRICS.md, on generated logs: ties, nulls, DST zones, integer and string ids, breakdowns
with nulls, empty logs, one user; every engine table is also compared across thread counts.
"""

import datetime as dt
import math
import statistics
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engage_core as ec

UTC = dt.timezone.utc
NONE = "(none)"


# ---------------------------------------------------------------- calendar and segments

def period_start(day, period):
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_period(start, period):
    if period in ("day", "week"):
        return start + dt.timedelta(days=1 if period == "day" else 7)
    m = start.month - 1 + (1 if period == "month" else 3)
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def period_end(start, period):
    return next_period(start, period) - dt.timedelta(days=1)


class Log:
    """The kept rows of a generated log, with the calendar facts every reference needs."""

    def __init__(self, rows, zone, breakdown, extra_days=0):
        self.zone = ZoneInfo(zone)
        self.rows = [dict(r, row=i) for i, r in enumerate(rows)
                     if r["user_id"] is not None and r["ts"] is not None]
        for r in self.rows:
            r["day"] = r["ts"].astimezone(self.zone).date()
            v = r.get(breakdown) if breakdown else None
            r["seg"] = NONE if v is None else v
        self.breakdown = breakdown
        self.empty = not self.rows
        if self.empty:
            return
        self.first_day = min(r["day"] for r in self.rows)
        self.end_day = max(r["day"] for r in self.rows) + dt.timedelta(days=extra_days)
        values = sorted({r["seg"] for r in self.rows if r["seg"] != NONE})
        has_none = any(r["seg"] == NONE for r in self.rows)
        self.segments = ["all"] + (values + ([NONE] if has_none else []) if breakdown else [])

    def days(self):
        d = self.first_day
        while d <= self.end_day:
            yield d
            d += dt.timedelta(days=1)

    def periods(self, period):
        p = period_start(self.first_day, period)
        while p <= self.end_day:
            yield p
            p = next_period(p, period)

    def in_segment(self, s):
        """Activity metrics: a segment's rows are only that segment's events."""
        return [r for r in self.rows if s == "all" or r["seg"] == s]

    def cohort_key(self, r):
        """Cohort metrics: earliest row wins; at one instant the smallest value (null last)."""
        return (r["ts"], r["seg"] == NONE, r["seg"])


def by_user(rows):
    out = {}
    for r in rows:
        out.setdefault(r["user_id"], []).append(r)
    return out


def rate(num, den):
    return None if den == 0 else num / den


# ---------------------------------------------------------------- references

def ref_sessions(log, gap, events=None):
    out = []
    if log.empty:
        return out
    for s in log.segments:
        per_day = {}  # day -> list of (user, duration seconds, events)
        for user, rs in by_user(log.in_segment(s)).items():
            rs = sorted((r for r in rs if events is None or r["event"] in events),
                        key=lambda r: r["ts"])
            session = []
            for r in rs + [None]:
                if session and (r is None or r["day"] != session[-1]["day"]
                                or (r["ts"] - session[-1]["ts"]).total_seconds() > gap):
                    dur = (session[-1]["ts"] - session[0]["ts"]).total_seconds()
                    per_day.setdefault(session[0]["day"], []).append((user, dur, len(session)))
                    session = []
                if r is not None:
                    session.append(r)
        for d in log.days():
            ss = per_day.get(d, [])
            n, users = len(ss), len({u for u, _, _ in ss})
            out.append({"day": d, "segment": s, "sessions": n, "users": users,
                        "sessions_per_user": rate(n, users),
                        "avg_session_seconds": rate(sum(x for _, x, _ in ss), n),
                        "median_session_seconds": statistics.median([x for _, x, _ in ss]) if ss else None,
                        "events_per_session": rate(sum(e for _, _, e in ss), n)})
    return out


def best_step(events, steps, i1, window):
    """Brute force: the most steps reachable from events[i1] using distinct events with
    non-decreasing times within the window (events: list of (ts, name))."""
    t1 = events[i1][0]

    def go(k, prev, used):
        if k == len(steps):
            return k
        best = k
        for j, (t, name) in enumerate(events):
            if j not in used and name == steps[k] and t >= prev and (t - t1).total_seconds() <= window:
                best = max(best, go(k + 1, t, used | {j}))
                if best == len(steps):
                    break
        return best

    return go(1, t1, {i1})


def ref_funnel(log, name, steps, window, period):
    out = []
    if log.empty:
        return out
    cells = {}  # (period start, segment) -> list of best steps
    for user, rs in by_user(log.rows).items():
        rs = sorted(rs, key=lambda r: r["ts"])
        evs = [(r["ts"], r["event"]) for r in rs]
        entries = {}
        for i, r in enumerate(rs):
            if r["event"] == steps[0]:
                entries.setdefault(period_start(r["day"], period), []).append(i)
        for p, idx in entries.items():
            best = max(best_step(evs, steps, i, window) for i in idx)
            seg = min((rs[i] for i in idx), key=log.cohort_key)["seg"]
            for s in ["all"] + ([seg] if log.breakdown else []):
                cells.setdefault((p, s), []).append(best)
    extra = math.ceil(window / 86400)
    for (p, s), bests in cells.items():
        users = [sum(1 for b in bests if b >= k) for k in range(1, len(steps) + 1)]
        for k in range(len(steps)):
            out.append({"period_start": p, "period": period, "segment": s, "funnel": name,
                        "step": k + 1, "step_name": steps[k], "users": users[k],
                        "conversion_from_start": users[k] / users[0],
                        "conversion_from_previous": rate(users[k], users[max(k - 1, 0)]),
                        "is_complete": period_end(p, period) + dt.timedelta(days=extra) <= log.end_day})
    return out


def ref_conversion(log, name, den, num, period):
    out = []
    if log.empty:
        return out
    for s in log.segments:
        rows = log.in_segment(s)
        for p in log.periods(period):
            in_p = [r for r in rows if period_start(r["day"], period) == p]
            d = {r["user_id"] for r in in_p if den is None or r["event"] in den}
            n = {r["user_id"] for r in in_p if num is None or r["event"] in num} & d
            out.append({"period_start": p, "period": period, "segment": s, "name": name,
                        "denominator_users": len(d), "numerator_users": len(n),
                        "rate": rate(len(n), len(d))})
    return out


def revenue_reason(v):
    if v is None:
        return "revenue_null"
    if not math.isfinite(v):
        return "revenue_not_finite"
    return "revenue_negative" if v < 0 else None


def orders_of(log, purchase_events):
    """(accepted orders, rejected (row, reason) pairs)."""
    ok, bad = [], []
    for r in log.rows:
        if r["event"] in purchase_events:
            why = revenue_reason(r["revenue"])
            (bad.append((r["row"], why)) if why else ok.append(r))
    return ok, bad


def ref_commerce(log, purchase_events, period):
    out = []
    if log.empty:
        return out
    orders, _ = orders_of(log, purchase_events)
    for s in log.segments:
        mine = [r for r in orders if s == "all" or r["seg"] == s]
        for p in log.periods(period):
            in_p = by_user([r for r in mine if period_start(r["day"], period) == p])
            earlier = {r["user_id"] for r in mine if period_start(r["day"], period) < p}
            cust = len(in_p)
            n = sum(len(v) for v in in_p.values())
            rev = sum(r["revenue"] for v in in_p.values() for r in v)
            rep = sum(1 for v in in_p.values() if len(v) >= 2)
            ret = sum(1 for u in in_p if u in earlier)
            out.append({"period_start": p, "period": period, "segment": s, "customers": cust,
                        "orders": n, "revenue": float(rev), "avg_order_value": rate(rev, n),
                        "purchase_frequency": rate(n, cust), "repeat_customers": rep,
                        "repeat_purchase_rate": rate(rep, cust), "returning_customers": ret,
                        "returning_customer_rate": rate(ret, cust)})
    return out


def ref_cohort_revenue(log, purchase_events, period, max_offset):
    out = []
    if log.empty:
        return out
    orders, _ = orders_of(log, purchase_events)
    cohorts = {}  # (segment, cohort start) -> {user: their orders}
    for user, rs in by_user(orders).items():
        first = min(rs, key=log.cohort_key)
        c0 = period_start(first["day"], period)
        for s in ["all"] + ([first["seg"]] if log.breakdown else []):
            cohorts.setdefault((s, c0), {})[user] = rs
    for (s, c0), members in cohorts.items():
        p, cum = c0, 0.0
        for k in range(max_offset + 1):
            if p > log.end_day:
                break
            in_p = {u: [r for r in rs if period_start(r["day"], period) == p] for u, rs in members.items()}
            rev = sum(r["revenue"] for rs in in_p.values() for r in rs)
            cum += rev
            out.append({"cohort_start": c0, "period": period, "segment": s, "period_offset": k,
                        "cohort_size": len(members),
                        "active_customers": sum(1 for rs in in_p.values() if rs),
                        "revenue": float(rev), "cumulative_revenue": cum,
                        "ltv": cum / len(members), "is_complete": period_end(p, period) <= log.end_day})
            p = next_period(p, period)
    return out


SCALES = {"nps": (0, 10), "csat": (1, 5)}


def score_reason(kind, v):
    lo, hi = SCALES[kind]
    if v is None:
        return "score_null"
    if not (lo <= v <= hi):  # NaN compares false: out of range
        return "score_out_of_range"
    return None if v == int(v) else "score_not_whole"


def ref_survey(log, surveys, period):
    out, bad = [], []
    for kind, event in surveys:
        for r in log.rows:
            if r["event"] == event and score_reason(kind, r["score"]):
                bad.append((r["row"], score_reason(kind, r["score"])))
    if log.empty:
        return out, bad
    for s in log.segments:
        for p in log.periods(period):
            for kind, event in surveys:
                latest = {}
                for r in log.in_segment(s):
                    if (r["event"] == event and not score_reason(kind, r["score"])
                            and period_start(r["day"], period) == p):
                        key = (r["ts"], r["score"])
                        if r["user_id"] not in latest or key > latest[r["user_id"]]:
                            latest[r["user_id"]] = key
                sc = [v for _, v in latest.values()]
                n = len(sc)
                row = {"period_start": p, "period": period, "segment": s, "survey": kind,
                       "responses": n, "promoters": None, "passives": None, "detractors": None,
                       "satisfied": None}
                if kind == "nps":
                    pro, det = sum(v >= 9 for v in sc), sum(v <= 6 for v in sc)
                    row.update(promoters=pro, passives=sum(7 <= v <= 8 for v in sc), detractors=det,
                               score=rate(100.0 * (pro - det), n))
                else:
                    sat = sum(v >= 4 for v in sc)
                    row.update(satisfied=sat, score=rate(100.0 * sat, n))
                out.append(row)
    return out, bad


def user_period_scores(rows, weights, default, events, period):
    scores = {}
    for r in rows:
        if events is None or r["event"] in events:
            key = (period_start(r["day"], period), r["user_id"])
            scores[key] = scores.get(key, 0.0) + weights.get(r["event"], default)
    return scores


def tier_of(score, tiers):
    return next((name for name, th in tiers.items() if score >= th), NONE)


def ref_scores(log, weights, default, tiers, events, period):
    tier_rows, user_rows = [], []
    if log.empty:
        return tier_rows, user_rows
    per_seg = {s: user_period_scores(log.in_segment(s), weights, default, events, period)
               for s in log.segments}
    names = list(tiers) + ([NONE] if any(tier_of(v, tiers) == NONE for sc in per_seg.values()
                                         for v in sc.values()) else [])
    for s, sc in per_seg.items():
        for p in log.periods(period):
            for t in names:
                vals = [v for (pp, _), v in sc.items() if pp == p and tier_of(v, tiers) == t]
                tier_rows.append({"period_start": p, "period": period, "segment": s, "tier": t,
                                  "users": len(vals), "avg_score": rate(sum(vals), len(vals))})
    for (p, u), v in per_seg["all"].items():
        user_rows.append({"period_start": p, "period": period, "user_id": u, "score": v,
                          "tier": tier_of(v, tiers)})
    return tier_rows, user_rows


# ---------------------------------------------------------------- comparison

def same(got: pa.Table, want: list, keys, columns=None):
    if columns is not None:
        assert got.column_names == columns
    rows = got.to_pylist()
    assert [tuple(r[k] for k in keys) for r in rows] == sorted(tuple(r[k] for k in keys) for r in rows), "sorted by key"
    got_rows = {tuple(r[k] for k in keys): r for r in rows}
    assert len(got_rows) == len(rows), "primary key is unique"
    want_rows = {tuple(r[k] for k in keys): r for r in want}
    assert sorted(got_rows) == sorted(want_rows)
    for key, w in want_rows.items():
        for col, value in w.items():
            g = got_rows[key][col]
            if isinstance(value, float) and g is not None:
                assert g == pytest.approx(value, rel=1e-9, abs=1e-9), (key, col, g, value)
            else:
                assert g == value, (key, col, g, value)


def both_threads(fn, *args, **kwargs):
    """Run with 1 and 2 threads; the tables must be identical."""
    one = fn(*args, threads=1, **kwargs)
    two = fn(*args, threads=2, **kwargs)
    assert one.equals(two)
    return one


# ---------------------------------------------------------------- generated logs

BASE = dt.datetime(2025, 2, 20, tzinfo=UTC)
EVENTS = ["view", "add_to_cart", "purchase", "app_open", "nps_response", "csat_response", None]


@st.composite
def logs(draw, max_size=45):
    n_users = draw(st.sampled_from([1, 3, 8]))
    text_ids = draw(st.booleans())
    size = draw(st.sampled_from([0, 1, 4, 15, 30, max_size]))
    # two thirds of the hours fall in a few hours around New York's spring-forward (local
    # midnight at hour 413, DST at 415) or Lord Howe's autumn change (local midnight at hour
    # 1045, DST at 1047), so users have sessions and funnels across midnight and DST;
    # minutes make ties and gaps either side of 30 minutes
    lo, hi = draw(st.sampled_from([(410, 417), (1042, 1049)]))
    hour = st.one_of(st.integers(lo, hi), st.integers(lo, hi), st.integers(0, 75 * 24))
    minute = st.sampled_from([0, 0, 5, 29, 30, 31, 45, 59])
    ts = st.builds(lambda h, m, s: BASE + dt.timedelta(hours=h, minutes=m, seconds=s),
                   hour, minute, st.sampled_from([0, 0, 1]))
    ids = [None] + list(range(1, n_users + 1)) * 4
    rows = draw(st.lists(st.fixed_dictionaries({
        "user_id": st.sampled_from(ids),
        "ts": st.one_of(st.none(), *[ts] * 8),
        "event": st.sampled_from(EVENTS),
        "platform": st.sampled_from(["ios", "web", "android", None]),
        "revenue": st.sampled_from([None, 0.0, 5.5, 10.0, 19.99, -1.0, math.nan, math.inf]),
        "score": st.sampled_from([None, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1, 4.5, math.nan]),
    }), min_size=size, max_size=size))
    if text_ids:
        for r in rows:
            r["user_id"] = None if r["user_id"] is None else f"u{r['user_id']}"
    return rows


def arrow(rows, text_ids=None):
    ids = [r["user_id"] for r in rows]
    text = text_ids if text_ids is not None else any(isinstance(i, str) for i in ids)
    return pa.table({
        "user_id": pa.array(ids, pa.string() if text else pa.int64()),
        "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC")),
        "event": pa.array([r["event"] for r in rows], pa.string()),
        "platform": pa.array([r["platform"] for r in rows], pa.string()),
        "revenue": pa.array([r["revenue"] for r in rows], pa.float64()),
        "score": pa.array([r["score"] for r in rows], pa.float64()),
    })


def prepared(rows, zone):
    return ec.prepare_events(arrow(rows), breakdowns=["platform"], numeric=["revenue", "score"],
                             calendar=ec.Calendar(zone))


ZONES = st.sampled_from(["America/New_York", "Australia/Lord_Howe", "UTC"])
BREAKDOWNS = st.sampled_from([None, "platform"])
PERIODS = st.sampled_from(["day", "week", "month"])
EXTRA = st.sampled_from([0, 0, 9])
SETTINGS = settings(max_examples=80, deadline=None)


def end_of(log):
    return None if log.empty else log.end_day


# ---------------------------------------------------------------- the comparisons

@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA,
       gap=st.sampled_from([0, 1800, 4 * 3600]), events=st.sampled_from([None, ["view", "app_open"]]))
def test_sessions(rows, zone, breakdown, extra, gap, events):
    log = Log(rows, zone, breakdown, extra)
    got = both_threads(ec.sessions, prepared(rows, zone), session_gap=gap, events=events,
                       breakdown=breakdown, end_day=end_of(log))
    same(got, ref_sessions(log, gap, events), ["day", "segment"],
         ["day", "segment", "sessions", "users", "sessions_per_user", "avg_session_seconds",
          "median_session_seconds", "events_per_session"])


FUNNELS = st.sampled_from([["view", "add_to_cart", "purchase"], ["view", "view", "purchase"],
                           ["purchase", "view", "purchase", "view"], ["app_open"]])


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, steps=FUNNELS,
       window=st.sampled_from([0, 3600, 86400 + 1, 7 * 86400]), period=PERIODS)
def test_funnel(rows, zone, breakdown, extra, steps, window, period):
    log = Log(rows, zone, breakdown, extra)
    got = both_threads(ec.funnel, prepared(rows, zone), name="f", steps=steps,
                       conversion_window=window, period=period, breakdown=breakdown,
                       end_day=end_of(log))
    same(got, ref_funnel(log, "f", steps, window, period),
         ["period_start", "period", "segment", "funnel", "step"],
         ["period_start", "period", "segment", "funnel", "step", "step_name", "users",
          "conversion_from_start", "conversion_from_previous", "is_complete"])


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, period=PERIODS,
       spec=st.sampled_from([(["view"], ["purchase"]), ("app_open", ["add_to_cart", "purchase"]),
                             (None, "purchase"), ("view", None), (None, None),
                             (["no_such_event"], ["purchase"])]))
def test_conversion(rows, zone, breakdown, extra, period, spec):
    log = Log(rows, zone, breakdown, extra)
    den, num = spec
    got = both_threads(ec.conversion, prepared(rows, zone), name="c", denominator=den,
                       numerator=num, period=period, breakdown=breakdown, end_day=end_of(log))
    as_list = lambda x: [x] if isinstance(x, str) else x
    same(got, ref_conversion(log, "c", as_list(den), as_list(num), period),
         ["period_start", "period", "segment", "name"],
         ["period_start", "period", "segment", "name", "denominator_users", "numerator_users", "rate"])


def rejected_pairs(tables, metric):
    assert len(tables) == 1
    t = tables[0]
    assert t.column_names == ["metric", "reason", "row"]
    assert set(t.column("metric").to_pylist()) <= {metric}
    return sorted(zip(t.column("row").to_pylist(), t.column("reason").to_pylist()))


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, period=PERIODS,
       purchase=st.sampled_from([["purchase"], ["purchase", "add_to_cart"]]))
def test_commerce(rows, zone, breakdown, extra, period, purchase):
    log = Log(rows, zone, breakdown, extra)
    ev = prepared(rows, zone)
    rejected = []
    got = both_threads(ec.commerce, ev, purchase_events=purchase, period=period,
                       breakdown=breakdown, end_day=end_of(log), rejected=rejected)
    same(got, ref_commerce(log, purchase, period), ["period_start", "period", "segment"],
         ["period_start", "period", "segment", "customers", "orders", "revenue",
          "avg_order_value", "purchase_frequency", "repeat_customers", "repeat_purchase_rate",
          "returning_customers", "returning_customer_rate"])
    assert rejected[0].equals(rejected[1])
    assert rejected_pairs(rejected[:1], "commerce") == sorted(orders_of(log, purchase)[1])


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, period=PERIODS,
       max_offset=st.sampled_from([0, 2, 12]))
def test_cohort_revenue(rows, zone, breakdown, extra, period, max_offset):
    log = Log(rows, zone, breakdown, extra)
    rejected = []
    got = both_threads(ec.cohort_revenue, prepared(rows, zone), period=period,
                       max_offset=max_offset, breakdown=breakdown, end_day=end_of(log),
                       rejected=rejected)
    same(got, ref_cohort_revenue(log, ["purchase"], period, max_offset),
         ["cohort_start", "period", "segment", "period_offset"],
         ["cohort_start", "period", "segment", "period_offset", "cohort_size",
          "active_customers", "revenue", "cumulative_revenue", "ltv", "is_complete"])
    assert rejected_pairs(rejected[:1], "cohort_revenue") == sorted(orders_of(log, ["purchase"])[1])


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, period=PERIODS,
       surveys=st.sampled_from([("nps_response", "csat_response"), ("nps_response", None),
                                (None, "csat_response")]))
def test_survey(rows, zone, breakdown, extra, period, surveys):
    log = Log(rows, zone, breakdown, extra)
    rejected = []
    got = both_threads(ec.survey, prepared(rows, zone), nps_event=surveys[0],
                       csat_event=surveys[1], period=period, breakdown=breakdown,
                       end_day=end_of(log), rejected=rejected)
    configured = [(k, e) for k, e in zip(("nps", "csat"), surveys) if e is not None]
    want, bad = ref_survey(log, configured, period)
    same(got, want, ["period_start", "period", "segment", "survey"],
         ["period_start", "period", "segment", "survey", "responses", "promoters", "passives",
          "detractors", "satisfied", "score"])
    assert rejected_pairs(rejected[:1], "survey") == sorted(bad)


@SETTINGS
@given(rows=logs(), zone=ZONES, breakdown=BREAKDOWNS, extra=EXTRA, period=PERIODS,
       config=st.sampled_from([
           (None, 1.0, None, None),
           ({"purchase": 10.0, "view": 0.5}, 1.0, {"power": 12, "core": 2.5, "casual": 1}, None),
           ({"view": -2.0}, 0.25, {"hi": 1.0, "lo": 0.5}, ["view", "app_open"]),
       ]))
def test_engagement_score_and_user_scores(rows, zone, breakdown, extra, period, config):
    weights, default, tiers, events = config
    log = Log(rows, zone, breakdown, extra)
    ev = prepared(rows, zone)
    opts = dict(weights=weights, default_weight=default, tiers=tiers, events=events,
                period=period, end_day=end_of(log))
    want_tiers, want_users = ref_scores(log, weights or {}, default,
                                        tiers or {"power": 50, "core": 10, "casual": 0},
                                        events, period)
    same(both_threads(ec.engagement_score, ev, breakdown=breakdown, **opts), want_tiers,
         ["period_start", "period", "segment", "tier"],
         ["period_start", "period", "segment", "tier", "users", "avg_score"])
    users = both_threads(ec.user_scores, ev, **opts)
    same(users, want_users, ["period_start", "period", "user_id"],
         ["period_start", "period", "user_id", "score", "tier"])
    assert users.schema.field("user_id").type == ev.user_ids().type
