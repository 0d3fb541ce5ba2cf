"""chDB (embedded ClickHouse) and pandas formulations of the benchmark's active-users and
weekly-retention tasks (bench/engines.py has Engage, DuckDB and Polars; the same results,
checked equal by run.py before any time counts).

chDB: per-day ``groupBitmap`` states merged over each window (its fastest formulation for
integer ids; string ids use ``uniqExact`` states, bitmaps need integers). pandas: distinct
(user, day) pairs, then the interval trick DuckDB's query uses, vectorised.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engines import MAX_OFFSET, WINDOWS

_STATE = {True: ("groupBitmapState(assumeNotNull(toUInt64(user_id)))", "groupBitmapMerge(b)"),
          False: ("uniqExactState(user_id)", "uniqExactMerge(b)")}

CHDB_ACTIVE_USERS = """
WITH ud AS (SELECT toDate(ts) AS d, {state} AS b FROM Python(events) GROUP BY d),
agg AS (SELECT w, d + k AS day, {merge} AS c
        FROM ud ARRAY JOIN [{windows}] AS w ARRAY JOIN range(w) AS k GROUP BY w, day),
cal AS (SELECT w, toDate(dn) AS day
        FROM (SELECT arrayJoin(range(toUInt32(min(d)), toUInt32(max(d)) + 1)) AS dn FROM ud)
        ARRAY JOIN [{windows}] AS w)
SELECT cal.w AS window_days, cal.day AS day, toInt64(coalesce(agg.c, 0)) AS active_users
FROM cal LEFT JOIN agg ON agg.w = cal.w AND agg.day = cal.day
ORDER BY 1, 2
SETTINGS join_use_nulls = 1
"""

CHDB_RETENTION = """
WITH uw AS (SELECT user_id AS u, toMonday(ts) AS wk FROM Python(events) GROUP BY u, wk),
f AS (SELECT u, min(wk) AS c FROM uw GROUP BY u)
SELECT c AS cohort_start, intDiv(dateDiff('day', c, wk), 7) AS period_offset,
       count() AS retained_users
FROM uw JOIN f USING (u) WHERE dateDiff('day', c, wk) <= {max_days}
GROUP BY c, period_offset ORDER BY 1, 2
"""


def _chdb(sql: str, table: pa.Table, threads: int | None):
    import chdb

    events = table.select(["user_id", "ts"])  # noqa: F841  (Python(events) reads it)
    if threads:
        sql = sql.rstrip() + (",\n" if "SETTINGS" in sql else "\nSETTINGS ") + \
            f"max_threads = {int(threads)}"
    return chdb.query(sql, "ArrowTable")


def chdb_active_users(table: pa.Table, threads: int | None = None):
    state, merge = _STATE[pa.types.is_integer(table.schema.field("user_id").type)]
    windows = ", ".join(str(w) for w in WINDOWS)
    return _chdb(CHDB_ACTIVE_USERS.format(state=state, merge=merge, windows=windows),
                 table, threads)


def chdb_retention(table: pa.Table, threads: int | None = None):
    return _chdb(CHDB_RETENTION.format(max_days=7 * MAX_OFFSET), table, threads)


def _pandas_user_days(table: pa.Table, weeks: bool):
    """Distinct (user code, day or Monday week) pairs, sorted by user then day."""
    import pandas as pd

    df = table.select(["user_id", "ts"]).to_pandas()
    day = df["ts"].to_numpy().astype("datetime64[D]").astype(np.int64)
    if weeks:
        day = day - (day + 3) % 7
    user = pd.factorize(df["user_id"], sort=False)[0].astype(np.int64)
    pairs = pd.DataFrame({"u": user, "d": day}).drop_duplicates().sort_values(["u", "d"])
    return pairs["u"].to_numpy(), pairs["d"].to_numpy()


def pandas_active_users(table: pa.Table, threads: int | None = None):
    import pandas as pd

    u, d = _pandas_user_days(table, weeks=False)
    prev = np.where(np.r_[False, u[1:] == u[:-1]], np.r_[0, d[:-1]], np.iinfo(np.int64).min // 2)
    lo, hi = int(d.min()), int(d.max())
    out = []
    for w in WINDOWS:
        start = np.maximum(d, prev + w)  # the window days this pair adds to its user's count
        end = d + w
        delta = pd.Series(np.r_[np.ones(len(start), np.int64), -np.ones(len(end), np.int64)],
                          index=np.r_[start, end]).groupby(level=0).sum()
        counts = delta.reindex(np.arange(lo, hi + 1), fill_value=0).cumsum().to_numpy()
        out.append(pa.table({"window_days": np.full(len(counts), w, np.int32),
                             "day": _dates(np.arange(lo, hi + 1)), "active_users": counts}))
    return pa.concat_tables(out)


def pandas_retention(table: pa.Table, threads: int | None = None):
    import pandas as pd

    u, wk = _pandas_user_days(table, weeks=True)
    first = np.r_[True, u[1:] != u[:-1]]
    cohort = np.maximum.accumulate(np.where(first, np.arange(len(u)), 0))
    c = wk[cohort]
    off = (wk - c) // 7
    keep = off <= MAX_OFFSET
    df = pd.DataFrame({"c": c[keep], "o": off[keep]})
    out = df.groupby(["c", "o"]).size()
    return pa.table({"cohort_start": _dates(out.index.get_level_values(0).to_numpy()),
                     "period_offset": out.index.get_level_values(1).to_numpy(),
                     "retained_users": out.to_numpy()})


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32)).cast(pa.date32())
