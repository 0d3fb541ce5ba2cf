"""chDB (embedded ClickHouse) formulations of the benchmark's tasks, each checked equal to
Engage's by the harness before its time counts.

Active users: per-day ``groupBitmap`` states merged over each window for integer ids of a
small range (its fastest formulation there); ``uniqExact`` states otherwise (strings, and
sparse 64-bit ids, where bitmaps collapse: ``chdb_bitmap`` keeps the bitmap formulation to
measure that). Sessions: the events of a (user, day) as a sorted array, session starts
where the gap exceeds 30 minutes, durations by array functions, exact median by
``quantileExactInclusive`` (mean of the two middle ones). Funnel: the two forward ASOF joins
of the DuckDB query. Retention (calendar and rolling): distinct (user, period), first
period per user by a group-by, joined back.
"""

from __future__ import annotations

import pyarrow as pa

from canon import (FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, US_PER_DAY,
                   US_PER_WEEK, WINDOWS)

_STATE = {"bitmap": ("groupBitmapState(assumeNotNull(toUInt64(user_id)))", "groupBitmapMerge(b)"),
          "uniq": ("uniqExactState(user_id)", "uniqExactMerge(b)")}

# Day numbers from the integer microseconds, so the server time zone never matters.
_T = "toUnixTimestamp64Micro(ts)"
_D = f"toInt32(intDiv({_T}, {US_PER_DAY}))"

CHDB_ACTIVE_USERS = f"""
WITH ud AS (SELECT {_D} AS d, {{state}} AS b FROM Python(events) GROUP BY d),
agg AS (SELECT w, d + k AS day, {{merge}} AS c
        FROM ud ARRAY JOIN [{{windows}}] AS w ARRAY JOIN range(w) AS k GROUP BY w, day),
cal AS (SELECT w, toInt32(dn) AS day
        FROM (SELECT arrayJoin(range(min(d), max(d) + 1)) AS dn FROM ud)
        ARRAY JOIN [{{windows}}] AS w)
SELECT cal.w AS window_days, cal.day AS day, toInt64(coalesce(agg.c, 0)) AS active_users
FROM cal LEFT JOIN agg ON agg.w = cal.w AND agg.day = cal.day
ORDER BY 1, 2
SETTINGS join_use_nulls = 1
"""

CHDB_RETENTION = f"""
WITH uw AS (SELECT user_id AS u, {_D} - ({_D} + 3) % 7 AS wk FROM Python(events) GROUP BY u, wk),
f AS (SELECT u, min(wk) AS c FROM uw GROUP BY u)
SELECT c AS cohort_start, intDiv(wk - c, 7) AS period_offset, count() AS retained_users
FROM uw JOIN f USING (u) WHERE wk - c <= {7 * MAX_OFFSET}
GROUP BY c, period_offset ORDER BY 1, 2
"""

CHDB_RETENTION_ROLLING = f"""
WITH e AS (SELECT user_id AS u, {_T} AS t FROM Python(events)),
f AS (SELECT u, min(t) AS t0 FROM e GROUP BY u),
x AS (SELECT u, any(f.t0) AS t0, intDiv(e.t - f.t0, {US_PER_WEEK}) AS k
      FROM e JOIN f USING (u) WHERE e.t - f.t0 < {(MAX_OFFSET + 1) * US_PER_WEEK}
      GROUP BY u, k)
SELECT intDiv(t0, {US_PER_DAY}) - (intDiv(t0, {US_PER_DAY}) + 3) % 7 AS cohort_start,
       k AS period_offset, count() AS retained_users
FROM x GROUP BY cohort_start, period_offset ORDER BY 1, 2
"""

CHDB_SESSIONS = f"""
WITH g AS (SELECT intDiv(t[1], {US_PER_DAY}) AS d, t,
                  arrayFilter((i, x) -> i = 1 OR x > {SESSION_GAP_S * 1_000_000},
                              arrayEnumerate(t), arrayDifference(t)) AS s
           FROM (SELECT user_id, arraySort(groupArray(assumeNotNull({_T}))) AS t FROM Python(events)
                 GROUP BY user_id, {_D})),
h AS (SELECT d, length(s) AS n,
             arrayMap((a, b) -> t[b] - t[a], s,
                      arrayPushBack(arrayPopFront(arrayMap(x -> toUInt32(x - 1), s)), toUInt32(length(t)))) AS dur
      FROM g)
SELECT d AS day, sum(n) AS sessions, count() AS users,
       sum(arraySum(dur)) AS total_us, quantileExactInclusiveArray(0.5)(dur) AS median_us
FROM h GROUP BY d ORDER BY d
"""

CHDB_FUNNEL = f"""
WITH s AS (SELECT user_id AS u, {_T} AS t, toString(event) AS e FROM Python(events)
           WHERE e IN ('{FUNNEL_STEPS[0]}', '{FUNNEL_STEPS[1]}', '{FUNNEL_STEPS[2]}')),
v AS (SELECT DISTINCT u, t AS t1 FROM s WHERE e = '{FUNNEL_STEPS[0]}'),
a AS (SELECT u, t AS t2 FROM s WHERE e = '{FUNNEL_STEPS[1]}'),
p AS (SELECT u, t AS t3 FROM s WHERE e = '{FUNNEL_STEPS[2]}'),
va AS (SELECT v.u AS u, v.t1 AS t1,
              if(a.t2 IS NOT NULL AND a.t2 - v.t1 <= {FUNNEL_WINDOW_S * 1_000_000}, a.t2, NULL) AS t2
       FROM v ASOF LEFT JOIN a ON v.u = a.u AND a.t2 >= v.t1),
r3 AS (SELECT r2.u AS u, r2.t1 AS t1 FROM (SELECT u, t1, assumeNotNull(t2) AS t2n FROM va
                                            WHERE t2 IS NOT NULL) AS r2
       ASOF JOIN p ON r2.u = p.u AND p.t3 >= r2.t2n
       WHERE p.t3 - r2.t1 <= {FUNNEL_WINDOW_S * 1_000_000}),
st AS (SELECT u, t1, if(t2 IS NULL, 1, 2) AS st FROM va
       UNION ALL SELECT u, t1, 3 AS st FROM r3),
best AS (SELECT u, intDiv(t1, {US_PER_DAY}) - (intDiv(t1, {US_PER_DAY}) + 3) % 7 AS wk,
                max(st) AS st FROM st GROUP BY u, wk)
SELECT wk AS period_start, count() AS step1, countIf(st >= 2) AS step2,
       countIf(st >= 3) AS step3
FROM best GROUP BY wk ORDER BY wk
SETTINGS join_use_nulls = 1
"""


def _chdb(sql: str, table, threads: int | None, columns=("user_id", "ts")):
    """Run a query over ``Python(events)`` (an in-memory table) or, for a Parquet path,
    over ``file(path, Parquet)`` (ClickHouse's own reader, inside the timing)."""
    import chdb

    if isinstance(table, str):
        sql = sql.replace("Python(events)", "file('{}', Parquet)".format(table.replace("'", "\\'")))
    else:
        events = table.select(list(columns))  # noqa: F841  (Python(events) reads it)
    if threads:
        sql = sql.rstrip() + (",\n" if "SETTINGS" in sql else "\nSETTINGS ") + \
            f"max_threads = {int(threads)}"
    return chdb.query(sql, "ArrowTable")


def _dense_int(table: pa.Table) -> bool:
    """Integer ids of a small non-negative range: where roaring bitmaps are compact."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if isinstance(table, str):  # a Parquet file: its row groups' statistics
        pf = pq.ParquetFile(table)
        if not pa.types.is_integer(pf.schema_arrow.field("user_id").type):
            return False
        i = pf.schema_arrow.get_field_index("user_id")
        stats = [pf.metadata.row_group(g).column(i).statistics for g in range(pf.num_row_groups)]
        if any(s is None or not s.has_min_max for s in stats):
            return False
        return min(s.min for s in stats) >= 0 and max(s.max for s in stats) < (1 << 32)
    col = table["user_id"]
    if not pa.types.is_integer(col.type):
        return False
    mm = pc.min_max(col).as_py()
    return mm["min"] is not None and mm["min"] >= 0 and mm["max"] < (1 << 32)


def chdb_active_users(table, threads: int | None = None, formulation: str = "auto"):
    if formulation == "auto":
        formulation = "bitmap" if _dense_int(table) else "uniq"
    state, merge = _STATE[formulation]
    windows = ", ".join(str(w) for w in WINDOWS)
    return _chdb(CHDB_ACTIVE_USERS.format(state=state, merge=merge, windows=windows),
                 table, threads)


def chdb_bitmap_active_users(table: pa.Table, threads: int | None = None):
    """Per-day bitmaps whatever the ids (integers only): issue 6's collapse on sparse ids."""
    return chdb_active_users(table, threads, formulation="bitmap")


def chdb_retention(table: pa.Table, threads: int | None = None):
    return _chdb(CHDB_RETENTION, table, threads)


def chdb_retention_rolling(table: pa.Table, threads: int | None = None):
    return _chdb(CHDB_RETENTION_ROLLING, table, threads)


def chdb_sessions(table: pa.Table, threads: int | None = None):
    return _chdb(CHDB_SESSIONS, table, threads)


def chdb_funnel(table: pa.Table, threads: int | None = None):
    return _chdb(CHDB_FUNNEL, table, threads, columns=("user_id", "ts", "event"))
