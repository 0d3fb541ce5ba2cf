"""The two benchmark tasks, written for each engine, plus a pure-Python reference.

Tasks (UTC days; the log has ``user_id`` and naive-UTC ``ts``):

- **active users**: for windows 1, 7 and 30 and every day from the first to the last day
  of data, the distinct users with an event in the window ending on that day;
- **retention**: weekly cohorts (cohort = Monday week of a user's first event), classic
  retained users per offset 0..12 (users with an event in week cohort + offset).

Each engine function takes the in-memory ``pyarrow.Table`` and returns the engine's own
result (timed as is); ``canonical_*`` turns any engine's result into sorted numpy arrays
(outside the timing) so that results can be compared exactly.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict

import numpy as np
import pyarrow as pa

WINDOWS = (1, 7, 30)
MAX_OFFSET = 12
EPOCH = dt.date(1970, 1, 1)  # a Thursday: Monday-based weekday of day n is (n + 3) % 7


# --------------------------------------------------------------------------- Engage

def engage_prepare(table: pa.Table, threads=None):
    import engage_core as ec

    return ec.prepare_events(table, user_id="user_id", timestamp="ts", event=None,
                             calendar=ec.Calendar(timezone="UTC", week_start="monday"),
                             threads=threads)


def engage_active_users(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.active_users(ev, windows=WINDOWS, threads=threads)


def engage_retention(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.retention(ev, period="week", max_offset=MAX_OFFSET, threads=threads)


# --------------------------------------------------------------------------- DuckDB
# Per user-day distinct; then each user's coverage of the days "in a W-day window after one
# of my active days" is a set of disjoint intervals [max(d, previous d + W), d + W): +1 at
# the start, -1 at the end, and a running sum over the days gives the active users. This
# touches each user-day once per window (no W-fold expansion, no range join).
DUCKDB_ACTIVE_USERS = """
with ud as (select distinct user_id as u, ts::date as d from events),
l as (select d, lag(d) over (partition by u order by d) as p from ud),
w(w) as (values {windows}),
iv as (select w.w, case when p is null or p + w.w < d then d else p + w.w end as s,
              d + w.w as e
       from l cross join w),
deltas as (select w, s as day, count(*) as c from iv group by all
           union all
           select w, e as day, -count(*) as c from iv group by all),
bounds as (select min(d) as lo, max(d) as hi from ud),
cal as (select w.w, unnest(generate_series(lo, hi, interval 1 day))::date as day
        from bounds cross join w)
select cal.w as window_days, cal.day,
       sum(coalesce(sum(deltas.c), 0)) over (partition by cal.w order by cal.day
                                             rows unbounded preceding)::bigint as active_users
from cal left join deltas on deltas.w = cal.w and deltas.day = cal.day
group by cal.w, cal.day
order by 1, 2
"""

# Distinct (user, Monday week); the first week per user by a group-by, joined back.
DUCKDB_RETENTION = """
with uw as (select distinct user_id as u, date_trunc('week', ts)::date as wk from events),
f as (select u, min(wk) as c from uw group by u)
select f.c as cohort_start, ((uw.wk - f.c) // 7)::int as period_offset,
       count(*) as retained_users
from uw join f using (u)
where uw.wk - f.c <= {max_days}
group by all
order by 1, 2
"""


def duckdb_connect(threads=None):
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"set threads = {int(threads)}")
    con.execute("set TimeZone = 'UTC'")
    return con


def duckdb_active_users(con, table: pa.Table) -> pa.Table:
    con.register("events", table)
    try:
        sql = DUCKDB_ACTIVE_USERS.format(windows=", ".join(f"({w})" for w in WINDOWS))
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("events")


def duckdb_retention(con, table: pa.Table) -> pa.Table:
    con.register("events", table)
    try:
        return con.sql(DUCKDB_RETENTION.format(max_days=7 * MAX_OFFSET)).to_arrow_table()
    finally:
        con.unregister("events")


# --------------------------------------------------------------------------- Polars

DAY_BITS = 20  # days since the first day fit in 20 bits


def _polars_keys(table: pa.Table, weeks: bool):
    """Sorted distinct (user, day) -- or (user, Monday week) -- pairs packed into one int64
    ``k = user << 20 | day``. Small-range integer ids are packed as they are (one cheap
    sort-unique); other ids (sparse 64-bit, strings) get a dense rank first. Returns the
    lazy frame of ``k`` and the first day number."""
    import polars as pl

    df = pl.from_arrow(table.select(["user_id", "ts"]))
    day = pl.col("ts").dt.epoch("d").cast(pl.Int64)
    if weeks:
        day = day - (day + 3) % 7
    lo = int(df.select(pl.col("ts").min().dt.epoch("d")).item())
    lo -= (lo + 3) % 7
    u = pl.col("user_id")
    if df.schema["user_id"].is_integer():
        umin, umax = df.select(u.min().alias("lo"), u.max().alias("hi")).row(0)
        if umax - umin < (1 << (62 - DAY_BITS)):
            user = (u - umin).cast(pl.Int64)
        else:
            user = u.rank("dense").cast(pl.Int64)
    else:
        user = u.rank("dense").cast(pl.Int64)
    k = df.lazy().select((user * (1 << DAY_BITS) + (day - lo)).alias("k"))
    return k.unique().sort("k"), lo


def polars_active_users(table: pa.Table):
    """The same interval idea as the DuckDB query, in Polars' lazy API."""
    import polars as pl

    keys, lo = _polars_keys(table, weeks=False)
    ud = keys.select(
        (pl.col("k") // (1 << DAY_BITS)).alias("u"), (pl.col("k") % (1 << DAY_BITS)).cast(pl.Int32).alias("d"),
    ).with_columns(
        pl.when(pl.col("u") == pl.col("u").shift(1)).then(pl.col("d").shift(1)).alias("p")
    ).collect()
    hi = int(ud["d"].max())
    parts = []
    for w in WINDOWS:
        iv = ud.lazy().select(
            pl.max_horizontal(pl.col("d"), pl.col("p") + w).fill_null(pl.col("d")).alias("s"),
            (pl.col("d") + w).alias("e"),
        )
        deltas = pl.concat([
            iv.group_by("s").agg(pl.len().cast(pl.Int64).alias("c")).rename({"s": "day"}),
            iv.group_by("e").agg((-pl.len().cast(pl.Int64)).alias("c")).rename({"e": "day"}),
        ]).group_by("day").agg(pl.col("c").sum())
        first = int(ud["d"].min())
        days = pl.LazyFrame({"day": pl.int_range(first, hi + 1, dtype=pl.Int32, eager=True)})
        parts.append(
            days.join(deltas, on="day", how="left").sort("day").select(
                pl.lit(w, dtype=pl.Int32).alias("window_days"),
                (pl.col("day") + lo).alias("day"),
                pl.col("c").fill_null(0).cum_sum().alias("active_users"),
            ))
    return pl.concat(pl.collect_all(parts))


def polars_retention(table: pa.Table):
    """Distinct (user, week) keys; the first week per user is the first key of the user."""
    import polars as pl

    keys, lo = _polars_keys(table, weeks=True)
    uw = keys.select((pl.col("k") // (1 << DAY_BITS)).alias("u"), (pl.col("k") % (1 << DAY_BITS)).alias("wk"))
    return (uw.with_columns(pl.col("wk").first().over("u").alias("c"))
            .with_columns(((pl.col("wk") - pl.col("c")) // 7).alias("period_offset"))
            .filter(pl.col("period_offset") <= MAX_OFFSET)
            .group_by(["c", "period_offset"]).agg(pl.len().alias("retained_users"))
            .select((pl.col("c") + lo).alias("cohort_start"), "period_offset", "retained_users")
            .sort(["cohort_start", "period_offset"]).collect())


# --------------------------------------------------------------------------- reference

def _days_and_users(table: pa.Table):
    ts = table["ts"].cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    return table["user_id"].to_pylist(), (ts // 86_400_000_000).tolist()


def reference_active_users(table: pa.Table):
    """Pure Python, straight from the definition (small inputs only)."""
    users, days = _days_and_users(table)
    by_day = defaultdict(set)
    for u, d in zip(users, days):
        by_day[d].add(u)
    lo, hi = min(days), max(days)
    rows = []
    for w in WINDOWS:
        for d in range(lo, hi + 1):
            rows.append((w, d, len(set().union(*(by_day.get(x, ()) for x in range(d - w + 1, d + 1))))))
    return _arrays(rows)


def reference_retention(table: pa.Table):
    users, days = _days_and_users(table)
    weeks = defaultdict(set)
    for u, d in zip(users, days):
        weeks[u].add(d - (d + 3) % 7)
    cells = defaultdict(int)
    for wks in weeks.values():
        c = min(wks)
        for wk in wks:
            if (wk - c) // 7 <= MAX_OFFSET:
                cells[(c, (wk - c) // 7)] += 1
    return _arrays([(c, k, n) for (c, k), n in cells.items()])


# --------------------------------------------------------------------------- comparison

def _arrays(rows):
    a = np.array(sorted(rows), dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def _day_numbers(col) -> np.ndarray:
    col = pa.chunked_array([col]) if isinstance(col, pa.Array) else col
    if pa.types.is_date(col.type):
        col = col.cast(pa.date32()).cast(pa.int32())
    return np.asarray(col.to_numpy(), dtype=np.int64)


def _to_arrow(result) -> pa.Table:
    return result if isinstance(result, pa.Table) else result.to_arrow()


def canonical_active_users(result):
    """(window, day number, active users), sorted; from any engine's result."""
    t = _to_arrow(result)
    return _arrays(zip(np.asarray(t["window_days"].to_numpy(), dtype=np.int64).tolist(),
                       _day_numbers(t["day"]).tolist(),
                       np.asarray(t["active_users"].to_numpy(), dtype=np.int64).tolist()))


def canonical_retention(result):
    """(cohort day number, offset, retained users) for the non-zero cells, sorted."""
    t = _to_arrow(result)
    names = t.column_names
    cohort = _day_numbers(t[names[0] if "cohort_start" not in names else "cohort_start"])
    offset = t["period_offset" if "period_offset" in names else names[1]].to_numpy()
    count = t["retained_users" if "retained_users" in names else names[2]].to_numpy()
    keep = np.asarray(count) > 0
    return _arrays(zip(cohort[keep].tolist(), np.asarray(offset)[keep].astype(np.int64).tolist(),
                       np.asarray(count)[keep].astype(np.int64).tolist()))


def _equal(x, y) -> bool:
    if x.dtype.kind == "f" or y.dtype.kind == "f":  # seconds from float averages: a round trip
        return bool(np.allclose(x, y, rtol=1e-9, atol=1e-9))
    return bool(np.array_equal(x, y))


def same(a, b) -> bool:
    return (len(a) == len(b) and (not a or len(a[0]) == len(b[0]))
            and all(_equal(x, y) for x, y in zip(a, b)))


def _num(v):
    return int(v) if float(v).is_integer() else float(v)


def first_difference(a, b) -> str:
    """A short description of where two canonical results differ."""
    if not a or not b or len(a[0]) != len(b[0]):
        sa = set(zip(*(x.tolist() for x in a))) if a else set()
        sb = set(zip(*(x.tolist() for x in b))) if b else set()
        return (f"{len(a[0]) if a else 0} vs {len(b[0]) if b else 0} rows; only in first: "
                f"{sorted(sa - sb)[:3]}; only in second: {sorted(sb - sa)[:3]}")
    for i in range(len(a[0])):
        ra, rb = tuple(_num(x[i]) for x in a), tuple(_num(x[i]) for x in b)
        if not all(_equal(np.array([p]), np.array([q])) for p, q in zip(ra, rb)):
            return f"row {i}: {ra} vs {rb} (key day numbers since 1970-01-01)"
    return "no difference"


# =========================================================================== event-level tasks
# Sessions per day, a 3-step funnel and rolling weekly retention (see bench/README.md).

US_PER_DAY = 86_400_000_000
US_PER_WEEK = 7 * US_PER_DAY
SESSION_GAP_S = 1800
FUNNEL_STEPS = ("view", "add_to_cart", "purchase")
FUNNEL_WINDOW_S = 7 * 86400


def engage_prepare_with_events(table: pa.Table, threads=None):
    import engage_core as ec

    return ec.prepare_events(table, user_id="user_id", timestamp="ts", event="event",
                             calendar=ec.Calendar(timezone="UTC", week_start="monday"),
                             threads=threads)


def engage_sessions(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.sessions(ev, session_gap=SESSION_GAP_S, threads=threads)


def engage_funnel(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.funnel(ev, name="checkout", steps=list(FUNNEL_STEPS),
                     conversion_window=FUNNEL_WINDOW_S, period="week", threads=threads)


def engage_retention_rolling(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.retention(ev, period="week", max_offset=MAX_OFFSET, window="rolling",
                        threads=threads)


# --------------------------------------------------------------------------- DuckDB

# Sessions: one window pass over (user, UTC day) partitions ordered by time gives each
# event's previous and next timestamps, hence "starts a session" (no previous, or a gap over
# 30 minutes) and "ends a session" flags; a session's duration is then the time from its
# start row to the next end row (itself when it is both), a second, much smaller window pass
# over only those rows. Kept over the textbook lag / new-session flag / cumulative-sum /
# group-by-session form (DUCKDB_SESSIONS_CUMSUM), which gives the same result more slowly.
# Both must order tied timestamps with the session's start row first in their second window
# (``s desc``): the two windows may break ties differently, and a tied row sorted before the
# start row would otherwise join the previous session (the self-check's coarse-grid log
# catches exactly that).
DUCKDB_SESSIONS = """
with e as (select user_id as u, epoch_us(ts) as t, epoch_us(ts) // {day} as d from events),
f as (select u, d, t,
             coalesce(t - lag(t) over w > {gap}, true) as s,
             coalesce(lead(t) over w - t > {gap}, true) as x
      from e window w as (partition by u, d order by t)),
b as (select u, d, t, s, x, lead(t) over (partition by u, d order by t, s desc) as nt
      from f where s or x),
sess as (select u, d, case when x then 0 else nt - t end as dur from b where s)
select d as day, count(*) as sessions, count(distinct u) as users,
       sum(dur) as total_us, median(dur) as median_us
from sess group by d order by d
"""

DUCKDB_SESSIONS_CUMSUM = """
with e as (select user_id as u, epoch_us(ts) as t, epoch_us(ts) // {day} as d from events),
f as (select u, d, t, case when t - lag(t) over w <= {gap} then 0 else 1 end as s
      from e window w as (partition by u, d order by t)),
g as (select u, d, t, sum(s) over (partition by u, d order by t, s desc rows unbounded preceding) as sid
      from f),
sess as (select u, d, max(t) - min(t) as dur from g group by u, d, sid)
select d as day, count(*) as sessions, count(distinct u) as users,
       sum(dur) as total_us, median(dur) as median_us
from sess group by d order by d
"""

# Funnel (distinct step names): for a step-1 event at t1 the greedy choice -- the earliest
# step-2 event at or after t1, then the earliest step-3 event at or after that -- reaches a
# step whenever any choice does (later choices only shrink what is left of the window), so
# two ASOF joins give each step-1 event's best step exactly. The second join only sees the
# step-1 events whose step 2 is within the window (about 15% faster than joining them all).
# Then the best over a user's step-1 events of a Monday week, and users per step.
DUCKDB_FUNNEL = """
with s as (select user_id as u, epoch_us(ts) as t, event::varchar as e from events
           where event in ('{e1}', '{e2}', '{e3}')),
v as (select distinct u, t as t1 from s where e = '{e1}'),
a as (select u, t as t2 from s where e = '{e2}'),
p as (select u, t as t3 from s where e = '{e3}'),
va as (select v.u, v.t1, a.t2 from v asof left join a on v.u = a.u and a.t2 >= v.t1),
r2 as (select u, t1, t2 from va where t2 - t1 <= {window}),
r3 as (select r2.u, r2.t1 from r2 asof join p on r2.u = p.u and p.t3 >= r2.t2
       where p.t3 - r2.t1 <= {window}),
st as (select u, t1, case when t2 - t1 <= {window} then 2 else 1 end as st from va
       union all
       select u, t1, 3 from r3),
best as (select u, t1 // {day} - (t1 // {day} + 3) % 7 as wk, max(st) as st
         from st group by all)
select wk as period_start, count(*) as step1, count(*) filter (where st >= 2) as step2,
       count(*) filter (where st >= 3) as step3
from best group by wk order by wk
"""

# Rolling weekly retention: offset k of a user covers [t0 + k weeks, t0 + (k+1) weeks) from
# their first event t0; the cohort is the Monday week of t0.
DUCKDB_RETENTION_ROLLING = """
with e as (select user_id as u, epoch_us(ts) as t from events),
f as (select u, min(t) as t0 from e group by u),
x as (select distinct e.u, f.t0, (e.t - f.t0) // {week} as k from e join f using (u)
      where e.t - f.t0 < {max_us})
select t0 // {day} - (t0 // {day} + 3) % 7 as cohort_start, k::int as period_offset,
       count(*) as retained_users
from x group by all order by 1, 2
"""


def _duckdb_run(con, table: pa.Table, sql: str) -> pa.Table:
    con.register("events", table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("events")


def duckdb_sessions(con, table: pa.Table, variant: str = "lead") -> pa.Table:
    sql = DUCKDB_SESSIONS if variant == "lead" else DUCKDB_SESSIONS_CUMSUM
    return _duckdb_run(con, table, sql.format(day=US_PER_DAY, gap=SESSION_GAP_S * 1_000_000))


def duckdb_funnel(con, table: pa.Table) -> pa.Table:
    e1, e2, e3 = FUNNEL_STEPS
    return _duckdb_run(con, table, DUCKDB_FUNNEL.format(
        e1=e1, e2=e2, e3=e3, day=US_PER_DAY, window=FUNNEL_WINDOW_S * 1_000_000))


def duckdb_retention_rolling(con, table: pa.Table) -> pa.Table:
    return _duckdb_run(con, table, DUCKDB_RETENTION_ROLLING.format(
        week=US_PER_WEEK, day=US_PER_DAY, max_us=(MAX_OFFSET + 1) * US_PER_WEEK))


# --------------------------------------------------------------------------- Polars

def _polars_frame(table: pa.Table, columns):
    """(u, t) -- plus ``e`` when asked -- with t the timestamp in microseconds; and whether
    the rows are already in time order (then a stable sort by user alone orders them by
    (user, time), which is cheaper than a two-key sort)."""
    import polars as pl

    df = pl.from_arrow(table.select(columns))
    cols = [pl.col("user_id").alias("u"), pl.col("ts").dt.epoch("us").alias("t")]
    if "event" in columns:
        cols.append(pl.col("event").alias("e"))
    df = df.select(cols)
    time_ordered = bool(df.select((pl.col("t").diff() >= 0).all()).item())
    return df, time_ordered


def polars_sessions(table: pa.Table):
    """Sort by (user, time); flag rows that start a session (new user, new UTC day or a gap
    over 30 minutes) and rows that end one (the next row starts one); the k-th end row
    closes the k-th session, so durations are two filtered columns subtracted."""
    import polars as pl

    df, time_ordered = _polars_frame(table, ["user_id", "ts"])
    lf = df.lazy()
    lf = lf.sort("u", maintain_order=True) if time_ordered else lf.sort(["u", "t"])
    gap = SESSION_GAP_S * 1_000_000
    f = lf.with_columns((pl.col("t") // US_PER_DAY).alias("d")).with_columns(
        ((pl.col("u") != pl.col("u").shift(1)) | (pl.col("d") != pl.col("d").shift(1))
         | (pl.col("t") - pl.col("t").shift(1) > gap)).fill_null(True).alias("s"),
    ).with_columns(pl.col("s").shift(-1).fill_null(True).alias("x")).collect()
    starts = f.lazy().filter(pl.col("s")).select("u", "d", "t")
    ends = f.lazy().filter(pl.col("x")).select(pl.col("t").alias("te"))
    starts, ends = pl.collect_all([starts, ends])
    sess = pl.concat([starts, ends], how="horizontal").lazy()
    return (sess.select("u", "d", (pl.col("te") - pl.col("t")).alias("dur"))
            .group_by("d").agg(pl.len().alias("sessions"), pl.col("u").n_unique().alias("users"),
                               pl.col("dur").sum().alias("total_us"),
                               pl.col("dur").median().alias("median_us"))
            .sort("d").rename({"d": "day"}).collect())


def polars_funnel(table: pa.Table):
    """The two ASOF joins of the DuckDB query (forward strategy, by user)."""
    import polars as pl

    df, time_ordered = _polars_frame(table, ["user_id", "ts", "event"])
    e1, e2, e3 = FUNNEL_STEPS
    lf = df.lazy()
    if not time_ordered:
        lf = lf.sort("t")
    w = FUNNEL_WINDOW_S * 1_000_000
    v = lf.filter(pl.col("e") == e1).select("u", pl.col("t").alias("t1")).unique(maintain_order=True)
    a = lf.filter(pl.col("e") == e2).select("u", pl.col("t").alias("t2"))
    p = lf.filter(pl.col("e") == e3).select("u", pl.col("t").alias("t3"))
    va = v.join_asof(a, left_on="t1", right_on="t2", by="u", strategy="forward",
                     check_sortedness=False)
    # Only step-1 events whose step 2 is within the window can reach step 3.
    va = va.with_columns(pl.when(pl.col("t2") - pl.col("t1") <= w).then(pl.col("t2")).alias("t2"))
    reach2 = va.filter(pl.col("t2").is_not_null()).select("u", "t1", "t2").sort("t2")
    vap = reach2.join_asof(p, left_on="t2", right_on="t3", by="u", strategy="forward",
                     check_sortedness=False)
    three = vap.filter(pl.col("t3") - pl.col("t1") <= w).select("u", "t1", pl.lit(3).alias("st3"))
    wk = (pl.col("t1") // US_PER_DAY) - ((pl.col("t1") // US_PER_DAY) + 3) % 7
    best = (va.join(three, on=["u", "t1"], how="left")
            .select("u", wk.alias("wk"),
                    pl.coalesce(pl.col("st3"), pl.when(pl.col("t2").is_not_null()).then(2)
                                .otherwise(1)).alias("st"))
            .group_by("u", "wk").agg(pl.col("st").max()))
    return (best.group_by("wk").agg(pl.len().alias("step1"), (pl.col("st") >= 2).sum().alias("step2"),
                                    (pl.col("st") >= 3).sum().alias("step3"))
            .sort("wk").rename({"wk": "period_start"}).collect())


def polars_retention_rolling(table: pa.Table):
    import polars as pl

    df, _ = _polars_frame(table, ["user_id", "ts"])
    t0 = pl.col("t").min().over("u")
    x = (df.lazy().with_columns(t0.alias("t0"))
         .with_columns(((pl.col("t") - pl.col("t0")) // US_PER_WEEK).alias("k"))
         .filter(pl.col("k") <= MAX_OFFSET)
         .select("u", "t0", "k").unique(["u", "k"]))
    c = (pl.col("t0") // US_PER_DAY) - ((pl.col("t0") // US_PER_DAY) + 3) % 7
    return (x.group_by(c.alias("cohort_start"), pl.col("k").cast(pl.Int32).alias("period_offset"))
            .agg(pl.len().alias("retained_users")).sort("cohort_start", "period_offset").collect())


# --------------------------------------------------------------------------- reference

def _rows_us(table: pa.Table):
    ts = table["ts"].cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
    ev = table["event"].cast(pa.string()).to_pylist() if "event" in table.column_names else None
    return table["user_id"].to_pylist(), ts, ev


def reference_sessions(table: pa.Table):
    """Per UTC day: sessions, users, total and median duration (seconds), from the definition."""
    users, ts, _ = _rows_us(table)
    by_ud = defaultdict(list)
    for u, t in zip(users, ts):
        by_ud[(u, t // US_PER_DAY)].append(t)
    durs, us = defaultdict(list), defaultdict(set)
    for (u, d), tt in by_ud.items():
        tt.sort()
        begin = tt[0]
        for prev, t in zip(tt, tt[1:]):
            if t - prev > SESSION_GAP_S * 1_000_000:
                durs[d].append(prev - begin)
                begin = t
        durs[d].append(tt[-1] - begin)
        us[d].add(u)
    rows = []
    for d in sorted(durs):
        x = sorted(durs[d])
        n = len(x)
        med = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2
        rows.append((d, n, len(us[d]), sum(x) / 1e6, med / 1e6))
    return _columns(rows)


def reference_funnel(table: pa.Table):
    """Per Monday week of entry and step k: users reaching step k (best over their step-1
    events of the week), by a brute-force search over distinct events with non-decreasing
    timestamps (general: repeated step names would be handled too)."""
    users, ts, names = _rows_us(table)
    w = FUNNEL_WINDOW_S * 1_000_000
    per_user = defaultdict(list)
    for i, (u, t, e) in enumerate(zip(users, ts, names)):
        if e in FUNNEL_STEPS:
            per_user[u].append((t, i, e))

    def reach(evs, k, t1, prev, used):
        if k == len(FUNNEL_STEPS):
            return k
        best = k
        for t, i, e in evs:
            if e == FUNNEL_STEPS[k] and i not in used and prev <= t <= t1 + w:
                best = max(best, reach(evs, k + 1, t1, t, used | {i}))
                if best == len(FUNNEL_STEPS):
                    break
        return best

    best = {}
    for u, evs_all in per_user.items():
        evs_all.sort()
        times = [t for t, _, _ in evs_all]
        for j, (t1, i, e) in enumerate(evs_all):
            if e != FUNNEL_STEPS[0]:
                continue
            # every candidate has t1 <= t <= t1 + window (equal times: any order)
            evs = evs_all[bisect.bisect_left(times, t1):bisect.bisect_right(times, t1 + w)]
            d = t1 // US_PER_DAY
            key = (u, d - (d + 3) % 7)
            if best.get(key, 0) < len(FUNNEL_STEPS):
                best[key] = max(best.get(key, 0), reach(evs, 1, t1, t1, {i}))
    cells = defaultdict(int)
    for (u, wk), st in best.items():
        for k in range(1, st + 1):
            cells[(wk, k)] += 1
    return _arrays([(wk, k, n) for (wk, k), n in cells.items()])


def reference_retention_rolling(table: pa.Table):
    users, ts, _ = _rows_us(table)
    t0 = {}
    for u, t in zip(users, ts):
        t0[u] = min(t0.get(u, t), t)
    seen = set()
    for u, t in zip(users, ts):
        k = (t - t0[u]) // US_PER_WEEK
        if k <= MAX_OFFSET:
            seen.add((u, k))
    cells = defaultdict(int)
    for u, k in seen:
        d = t0[u] // US_PER_DAY
        cells[(d - (d + 3) % 7, k)] += 1
    return _arrays([(c, k, n) for (c, k), n in cells.items()])


# --------------------------------------------------------------------------- canonical forms

def _columns(rows):
    """Sorted rows as numpy columns: int64 for whole numbers, float64 for the rest."""
    rows = sorted(rows)
    if not rows:
        return ()
    cols = list(zip(*rows))
    return tuple(np.array(c, dtype=np.float64 if any(isinstance(v, float) for v in c)
                          else np.int64) for c in cols)


def canonical_sessions(result):
    """(day number, sessions, users, total seconds, median seconds) for days with sessions.
    Engage gives the average duration: total = average * sessions (compared with a relative
    tolerance of 1e-9, the float round trip; counts are compared exactly)."""
    t = _to_arrow(result)
    day = _day_numbers(t["day"])
    n = np.asarray(t["sessions"].to_numpy(zero_copy_only=False), dtype=np.int64)
    users = np.asarray(t["users"].to_numpy(zero_copy_only=False), dtype=np.int64)
    if "avg_session_seconds" in t.column_names:
        avg = t["avg_session_seconds"].fill_null(0).to_numpy()
        total = avg * n
        med = t["median_session_seconds"].fill_null(0).to_numpy()
    else:
        total = np.asarray(t["total_us"].to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6
        med = np.asarray(t["median_us"].to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6
    keep = n > 0
    return _columns(zip(day[keep].tolist(), n[keep].tolist(), users[keep].tolist(),
                        np.asarray(total)[keep].tolist(), np.asarray(med)[keep].tolist()))


def canonical_funnel(result):
    """(period start day number, step, users) for the steps with users (Engage's long table or
    the SQL engines' wide one)."""
    t = _to_arrow(result)
    start = _day_numbers(t["period_start"])
    if "step" in t.column_names:
        rows = zip(start.tolist(), t["step"].to_pylist(), t["users"].to_pylist())
    else:
        rows = [(d, k, n) for k, col in enumerate(("step1", "step2", "step3"), 1)
                for d, n in zip(start.tolist(), t[col].to_pylist())]
    return _arrays([r for r in rows if r[2] > 0])


canonical_retention_rolling = canonical_retention
