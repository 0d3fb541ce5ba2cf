"""Retention variants (METRICS.md "retention variants"; docs/retention.md) against a slow,
obviously-right reference: rolling windows, brackets, the summary and quarters."""

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engage_core as ec

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
LENGTH = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "month": dt.timedelta(days=30)}
NONE = "(none)"


def period_start(day: dt.date, period: str, week_start: str = "monday") -> dt.date:
    if period == "day":
        return day
    if period == "week":
        back = day.weekday() if week_start == "monday" else (day.weekday() + 1) % 7
        return day - dt.timedelta(days=back)
    if period == "month":
        return day.replace(day=1)
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_period(start: dt.date, period: str) -> dt.date:
    if period in ("day", "week"):
        return start + dt.timedelta(days=1 if period == "day" else 7)
    months = 1 if period == "month" else 3
    m = start.month - 1 + months
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def reference(rows, zone, period, max_offset, window, brackets, breakdown,
              start_events=None, return_events=None):
    """Rows of engage_retention and engage_retention_brackets, from first principles."""
    z = ZoneInfo(zone)
    kept = [r for r in rows if r["user_id"] is not None and r["ts"] is not None]
    if not kept:
        return [], []
    local = lambda ts: ts.astimezone(z).date()
    last_day = max(local(r["ts"]) for r in kept)
    nxt = last_day + dt.timedelta(days=1)
    end_instant = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    starts = [r for r in kept if start_events is None or r["event"] in start_events]
    first = {}
    for r in starts:
        seg = r.get(breakdown) if breakdown else None
        key = (r["ts"], seg is None, seg or "")
        if r["user_id"] not in first or key < first[r["user_id"]][0]:
            first[r["user_id"]] = (key, r)
    cohorts = {}  # (segment, cohort_start) -> {user: t0}
    for user, (_, r) in first.items():
        c0 = period_start(local(r["ts"]), period)
        segs = ["all"] + ([NONE if r.get(breakdown) is None else r.get(breakdown)] if breakdown else [])
        for s in segs:
            cohorts.setdefault((s, c0), {})[user] = r["ts"]
    returns = {}
    for r in kept:
        if return_events is None or r["event"] in return_events:
            returns.setdefault(r["user_id"], []).append(r["ts"])

    def offsets_of(user, c0, t0):
        out = set()
        for ts in returns.get(user, []):
            if window == "rolling":
                if ts >= t0:
                    out.add((ts - t0) // LENGTH[period])
            else:
                p, k = c0, 0
                target = period_start(local(ts), period)
                if target < c0:
                    continue
                while p < target:
                    p, k = next_period(p, period), k + 1
                out.add(k)
        return out

    def cell(c0, t0s, k):
        """(exists, complete) for offset k of a cohort."""
        if window == "rolling":
            return (min(t0s) + k * LENGTH[period] < end_instant,
                    max(t0s) + (k + 1) * LENGTH[period] <= end_instant)
        p = c0
        for _ in range(k):
            p = next_period(p, period)
        return p <= last_day, next_period(p, period) - dt.timedelta(days=1) <= last_day

    ret_rows, br_rows = [], []
    for (s, c0), members in cohorts.items():
        offs = {u: offsets_of(u, c0, t0) for u, t0 in members.items()}
        size = len(members)
        for k in range(max_offset + 1):
            exists, complete = cell(c0, list(members.values()), k)
            if not exists:
                continue
            ret = sum(1 for o in offs.values() if k in o)
            unb = sum(1 for o in offs.values() if o and max(o) >= k)
            ret_rows.append({"cohort_start": c0, "period": period, "segment": s, "period_offset": k,
                             "cohort_size": size, "retained_users": ret,
                             "retained_users_unbounded": unb, "retention_rate": ret / size,
                             "retention_rate_unbounded": unb / size, "is_complete": complete})
        for lo, hi in brackets or []:
            exists, _ = cell(c0, list(members.values()), lo)
            if not exists:
                continue
            _, complete = cell(c0, list(members.values()), hi)
            ret = sum(1 for o in offs.values() if any(lo <= k <= hi for k in o))
            br_rows.append({"cohort_start": c0, "period": period, "segment": s, "bracket_start": lo,
                            "bracket_end": hi, "cohort_size": size, "retained_users": ret,
                            "retention_rate": ret / size, "is_complete": complete})
    return ret_rows, br_rows


def _table(rows):
    return pa.table({
        "user_id": pa.array([r["user_id"] for r in rows], pa.int64()),
        "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC")),
        "event": pa.array([r["event"] for r in rows], pa.string()),
        "platform": pa.array([r["platform"] for r in rows], pa.string()),
    })


def _key(row, names):
    return tuple(row[n] for n in names)


def _same(got: pa.Table, want: list, keys):
    got_rows = {_key(r, keys): r for r in got.to_pylist()}
    want_rows = {_key(r, keys): r for r in want}
    assert sorted(got_rows) == sorted(want_rows)
    for k, w in want_rows.items():
        g = got_rows[k]
        for col, value in w.items():
            if isinstance(value, float):
                assert g[col] == pytest.approx(value, abs=1e-12), (k, col)
            else:
                assert g[col] == value, (k, col)


BASE = dt.datetime(2025, 2, 20, tzinfo=UTC)  # spans the 2025-03-09 / 03-30 DST changes
rows_strategy = st.lists(st.fixed_dictionaries({
    "user_id": st.one_of(st.none(), st.integers(1, 8)),
    "ts": st.one_of(st.none(), st.integers(0, 75 * 24).map(lambda h: BASE + h * HOUR
                                                            + dt.timedelta(minutes=17 * (h % 3)))),
    "event": st.sampled_from(["signup", "open", "buy", None]),
    "platform": st.sampled_from(["ios", "web", None]),
}), max_size=60)

RET_KEYS = ["cohort_start", "period", "segment", "period_offset"]
BR_KEYS = ["cohort_start", "period", "segment", "bracket_start", "bracket_end"]


@settings(max_examples=120, deadline=None)
@given(rows=rows_strategy, period=st.sampled_from(["day", "week", "month"]),
       window=st.sampled_from(["calendar", "rolling"]),
       zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]),
       breakdown=st.sampled_from([None, "platform"]),
       events=st.sampled_from([(None, None), (["signup"], None), (["signup"], ["buy", "open"])]))
def test_retention_and_brackets_match_reference(rows, period, window, zone, breakdown, events):
    brackets = [[1, 3], [0, 0], [4, 7]]
    ev = ec.prepare_events(_table(rows), breakdowns=["platform"], calendar=ec.Calendar(zone))
    opts = dict(period=period, max_offset=5, window=window, breakdown=breakdown,
                start_events=events[0], return_events=events[1])
    want_ret, want_br = reference(rows, zone, period, 5, window, brackets, breakdown, *events)
    for threads in (1, 2):
        _same(ec.retention(ev, threads=threads, **opts), want_ret, RET_KEYS)
        _same(ec.retention_brackets(ev, brackets=brackets, threads=threads, **opts), want_br, BR_KEYS)
        # both tables from one count (what the pipeline runs when brackets are configured)
        ret, br = ec.retention_with_brackets(ev, brackets=brackets, threads=threads, **opts)
        _same(ret, want_ret, RET_KEYS)
        _same(br, want_br, BR_KEYS)


def test_rolling_day_is_24_hours_across_spring_forward():
    z = ZoneInfo("America/New_York")
    t0 = dt.datetime(2025, 3, 8, 22, 0, tzinfo=z)  # the night before DST begins
    rows = [{"user_id": 1, "ts": t0, "event": "signup", "platform": None},
            # 23:30 later on the wall clock but only 22:30 hours later: still rolling day 0
            {"user_id": 1, "ts": dt.datetime(2025, 3, 9, 21, 30, tzinfo=z), "event": "open", "platform": None},
            {"user_id": 1, "ts": dt.datetime(2025, 3, 9, 23, 30, tzinfo=z), "event": "open", "platform": None},
            {"user_id": 2, "ts": dt.datetime(2025, 3, 12, 9, 0, tzinfo=z), "event": "open", "platform": None}]
    ev = ec.prepare_events(_table(rows), calendar=ec.Calendar("America/New_York"))
    out = ec.retention(ev, period="day", max_offset=2, window="rolling", start_events=["signup"],
                       return_events=["open"])
    cells = {r["period_offset"]: (r["retained_users"], r["is_complete"]) for r in out.to_pylist()}
    # 21:30 on 9 March is 22.5 hours after t0 (offset 0); 23:30 is 24.5 hours (offset 1).
    assert cells == {0: (1, True), 1: (1, True), 2: (0, True)}
    calendar = ec.retention(ev, period="day", max_offset=2, start_events=["signup"],
                            return_events=["open"])
    assert [r["retained_users"] for r in calendar.to_pylist()] == [0, 1, 0]


def test_summary_pools_complete_cells_and_means_rates():
    table = pa.table({
        "cohort_start": pa.array([dt.date(2025, 1, 6)] * 2 + [dt.date(2025, 1, 13)] * 2),
        "period": ["week"] * 4, "segment": ["all"] * 4,
        "period_offset": pa.array([0, 1, 0, 1], pa.int32()),
        "cohort_size": pa.array([10, 10, 30, 30], pa.int64()),
        "retained_users": pa.array([10, 5, 30, 3], pa.int64()),
        "retained_users_unbounded": pa.array([10, 5, 30, 3], pa.int64()),
        "retention_rate": [1.0, 0.5, 1.0, 0.1],
        "retention_rate_unbounded": [1.0, 0.5, 1.0, 0.1],
        "is_complete": [True, True, True, False],
    })
    out = {r["period_offset"]: r for r in ec.retention_summary(table).to_pylist()}
    assert out[0]["cohorts"] == 2 and out[0]["cohort_users"] == 40 and out[0]["pooled_rate"] == 1.0
    # offset 1: only the first cohort's cell is complete
    assert (out[1]["cohorts"], out[1]["cohort_users"], out[1]["retained_users"]) == (1, 10, 5)
    assert out[1]["pooled_rate"] == 0.5 and out[1]["mean_rate"] == 0.5


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_summary_of_engine_output_matches_plain_aggregation(rows):
    ev = ec.prepare_events(_table(rows), breakdowns=["platform"])
    ret = ec.retention(ev, period="day", max_offset=4, breakdown="platform")
    groups = {}
    for r in ret.to_pylist():
        if r["is_complete"]:
            groups.setdefault((r["period"], r["segment"], r["period_offset"]), []).append(r)
    got = {(r["period"], r["segment"], r["period_offset"]): r
           for r in ec.retention_summary(ret).to_pylist()}
    assert sorted(got) == sorted(groups)
    for key, cells in groups.items():
        users = sum(c["cohort_size"] for c in cells)
        kept = sum(c["retained_users"] for c in cells)
        assert got[key]["cohorts"] == len(cells) and got[key]["cohort_users"] == users
        assert got[key]["pooled_rate"] == pytest.approx(kept / users)
        assert got[key]["mean_rate"] == pytest.approx(sum(c["retention_rate"] for c in cells) / len(cells))


def test_quarter_periods_and_rolling_quarter_rejected():
    rows = [{"user_id": 1, "ts": dt.datetime(2025, 2, 1, tzinfo=UTC), "event": "a", "platform": None},
            {"user_id": 1, "ts": dt.datetime(2025, 4, 1, 12, tzinfo=UTC), "event": "a", "platform": None},
            {"user_id": 2, "ts": dt.datetime(2025, 3, 31, tzinfo=UTC), "event": "a", "platform": None}]
    ev = ec.prepare_events(_table(rows))
    out = ec.retention(ev, period="quarter", max_offset=2)
    assert [(str(r["cohort_start"]), r["period_offset"], r["retained_users"], r["is_complete"])
            for r in out.to_pylist()] == [("2025-01-01", 0, 2, True), ("2025-01-01", 1, 1, False)]
    with pytest.raises(ec.ConfigError, match="rolling"):
        ec.retention(ev, period="quarter", window="rolling")
    with pytest.raises(ec.ConfigError, match="brackets"):
        ec.retention_brackets(ev, brackets=[[3, 1]])
