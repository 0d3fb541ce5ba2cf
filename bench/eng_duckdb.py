"""DuckDB formulations of the benchmark's tasks (bench/README.md explains each one).

Every function takes a connection and a source: an in-memory ``pyarrow.Table`` (registered
as the view ``events``, read without copying) or the path of a Parquet file (then
``events`` is a view over ``read_parquet``, DuckDB's own reader, and the timed query
includes reading the file)."""

from __future__ import annotations

import pyarrow as pa

from canon import (FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, US_PER_DAY,
                   US_PER_WEEK, WINDOWS)

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



def duckdb_connect(threads=None):
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"set threads = {int(threads)}")
    con.execute("set TimeZone = 'UTC'")
    return con


def _duckdb_run(con, src, sql: str) -> pa.Table:
    if isinstance(src, str):  # a Parquet file: DuckDB reads it itself, inside the timing
        path = src.replace("'", "''")
        con.execute(f"create or replace temp view events as select * from read_parquet('{path}')")
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            con.execute("drop view if exists events")
    con.register("events", src)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("events")


def duckdb_active_users(con, src) -> pa.Table:
    return _duckdb_run(con, src, DUCKDB_ACTIVE_USERS.format(
        windows=", ".join(f"({w})" for w in WINDOWS)))


def duckdb_retention(con, src) -> pa.Table:
    return _duckdb_run(con, src, DUCKDB_RETENTION.format(max_days=7 * MAX_OFFSET))


def duckdb_sessions(con, src, variant: str = "lead") -> pa.Table:
    sql = DUCKDB_SESSIONS if variant == "lead" else DUCKDB_SESSIONS_CUMSUM
    return _duckdb_run(con, src, sql.format(day=US_PER_DAY, gap=SESSION_GAP_S * 1_000_000))


def duckdb_funnel(con, src) -> pa.Table:
    e1, e2, e3 = FUNNEL_STEPS
    return _duckdb_run(con, src, DUCKDB_FUNNEL.format(
        e1=e1, e2=e2, e3=e3, day=US_PER_DAY, window=FUNNEL_WINDOW_S * 1_000_000))


def duckdb_retention_rolling(con, src) -> pa.Table:
    return _duckdb_run(con, src, DUCKDB_RETENTION_ROLLING.format(
        week=US_PER_WEEK, day=US_PER_DAY, max_us=(MAX_OFFSET + 1) * US_PER_WEEK))
