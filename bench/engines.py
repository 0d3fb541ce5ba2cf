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


def same(a, b) -> bool:
    return len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a, b))


def first_difference(a, b) -> str:
    """A short description of where two canonical results differ."""
    if len(a[0]) != len(b[0]):
        sa = set(zip(*(x.tolist() for x in a)))
        sb = set(zip(*(x.tolist() for x in b)))
        return (f"{len(a[0])} vs {len(b[0])} rows; only in first: {sorted(sa - sb)[:3]}; "
                f"only in second: {sorted(sb - sa)[:3]}")
    for i in range(len(a[0])):
        ra, rb = tuple(int(x[i]) for x in a), tuple(int(x[i]) for x in b)
        if ra != rb:
            return f"row {i}: {ra} vs {rb} (key day numbers since 1970-01-01)"
    return "no difference"
