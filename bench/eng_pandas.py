"""pandas formulations of the benchmark's tasks (vectorised with numpy, single-threaded as
pandas is), each checked equal to Engage's by the harness before its time counts.

Active users: distinct (user, day) pairs, then DuckDB's interval trick. Retention: distinct
(user, week) pairs sorted by user, the first week per user. Sessions: sort by (user, time),
start / end flags, the k-th end row closes the k-th session, a group-by per day. Funnel:
two forward ``merge_asof`` joins by user (the DuckDB query's ASOF joins). Rolling
retention: ``transform("min")`` per user, distinct (user, offset).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from canon import (FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, US_PER_DAY,
                   US_PER_WEEK, WINDOWS)


def _frame(table: pa.Table, event: bool = False):
    """(user code, microseconds[, event]) as a DataFrame."""
    import pandas as pd

    df = table.select(["user_id", "ts"] + (["event"] if event else [])).to_pandas()
    out = pd.DataFrame({"u": pd.factorize(df["user_id"], sort=False)[0].astype(np.int64),
                        "t": df["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)})
    if event:
        out["e"] = df["event"].astype(str) if df["event"].dtype != "category" else df["event"]
    return out


def _pandas_user_days(table: pa.Table, weeks: bool):
    """Distinct (user code, day or Monday week) pairs, sorted by user then day."""
    import pandas as pd

    df = _frame(table)
    day = df["t"].to_numpy() // US_PER_DAY
    if weeks:
        day = day - (day + 3) % 7
    pairs = pd.DataFrame({"u": df["u"].to_numpy(), "d": day}).drop_duplicates().sort_values(["u", "d"])
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
    out = pd.DataFrame({"c": c[keep], "o": off[keep]}).groupby(["c", "o"]).size()
    return pa.table({"cohort_start": _dates(out.index.get_level_values(0).to_numpy()),
                     "period_offset": out.index.get_level_values(1).to_numpy(),
                     "retained_users": out.to_numpy()})


def pandas_retention_rolling(table: pa.Table, threads: int | None = None):
    df = _frame(table)
    t0 = df.groupby("u")["t"].transform("min").to_numpy()
    k = (df["t"].to_numpy() - t0) // US_PER_WEEK
    keep = k <= MAX_OFFSET
    x = df.loc[keep, ["u"]].assign(k=k[keep], t0=t0[keep]).drop_duplicates(["u", "k"])
    d0 = x["t0"].to_numpy() // US_PER_DAY
    out = x.assign(c=d0 - (d0 + 3) % 7).groupby(["c", "k"]).size()
    return pa.table({"cohort_start": _dates(out.index.get_level_values(0).to_numpy()),
                     "period_offset": out.index.get_level_values(1).to_numpy(),
                     "retained_users": out.to_numpy()})


def pandas_sessions(table: pa.Table, threads: int | None = None):
    import pandas as pd

    df = _frame(table).sort_values(["u", "t"], kind="stable")
    u, t = df["u"].to_numpy(), df["t"].to_numpy()
    d = t // US_PER_DAY
    start = np.r_[True, (u[1:] != u[:-1]) | (d[1:] != d[:-1])
                  | (t[1:] - t[:-1] > SESSION_GAP_S * 1_000_000)]
    end = np.r_[start[1:], True]
    sess = pd.DataFrame({"d": d[start], "u": u[start], "dur": t[end] - t[start]})
    out = sess.groupby("d").agg(sessions=("dur", "size"), users=("u", "nunique"),
                                total_us=("dur", "sum"), median_us=("dur", "median"))
    return pa.table({"day": out.index.to_numpy(), "sessions": out["sessions"].to_numpy(),
                     "users": out["users"].to_numpy(), "total_us": out["total_us"].to_numpy(),
                     "median_us": out["median_us"].to_numpy()})


def pandas_funnel(table: pa.Table, threads: int | None = None):
    import pandas as pd

    df = _frame(table, event=True)
    e1, e2, e3 = FUNNEL_STEPS
    w = FUNNEL_WINDOW_S * 1_000_000
    e = df["e"]
    v = df.loc[e == e1, ["u", "t"]].drop_duplicates().rename(columns={"t": "t1"}).sort_values("t1")
    a = df.loc[e == e2, ["u", "t"]].rename(columns={"t": "t2"}).sort_values("t2")
    p = df.loc[e == e3, ["u", "t"]].rename(columns={"t": "t3"}).sort_values("t3")
    va = pd.merge_asof(v, a, left_on="t1", right_on="t2", by="u", direction="forward")
    st = np.where((va["t2"] - va["t1"]).to_numpy() <= w, 2, 1)  # NaN compares False
    r2 = va.loc[st == 2].assign(i=np.flatnonzero(st == 2))
    r2 = r2.astype({"t2": np.int64}).sort_values("t2")
    vap = pd.merge_asof(r2, p, left_on="t2", right_on="t3", by="u", direction="forward")
    reach3 = vap["i"].to_numpy()[(vap["t3"] - vap["t1"]).to_numpy() <= w]
    st[reach3] = 3
    day = va["t1"].to_numpy() // US_PER_DAY
    best = pd.DataFrame({"u": va["u"].to_numpy(), "wk": day - (day + 3) % 7, "st": st}) \
        .groupby(["u", "wk"])["st"].max()
    s = best.to_numpy()
    out = pd.DataFrame({"wk": best.index.get_level_values(1).to_numpy(), "s1": 1,
                        "s2": (s >= 2).astype(np.int64), "s3": (s >= 3).astype(np.int64)}) \
        .groupby("wk").sum()
    return pa.table({"period_start": out.index.to_numpy(), "step1": out["s1"].to_numpy(),
                     "step2": out["s2"].to_numpy(), "step3": out["s3"].to_numpy()})


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32)).cast(pa.date32())
