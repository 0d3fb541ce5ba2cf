"""Polars formulations of the benchmark's tasks (lazy API; bench/README.md explains each).
Every function takes an in-memory ``pyarrow.Table`` (``pl.from_arrow``, no copy where it
can) or a Parquet path (``pl.read_parquet``, Polars' own reader, inside the timing)."""

from __future__ import annotations

import pyarrow as pa

from canon import (FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, US_PER_DAY,
                   US_PER_WEEK, WINDOWS)

def _polars_df(src, columns):
    import polars as pl

    if isinstance(src, str):
        return pl.read_parquet(src, columns=list(columns))
    return pl.from_arrow(src.select(list(columns)))


DAY_BITS = 20  # days since the first day fit in 20 bits


def _polars_keys(table: pa.Table, weeks: bool):
    """Sorted distinct (user, day) -- or (user, Monday week) -- pairs packed into one int64
    ``k = user << 20 | day``. Small-range integer ids are packed as they are (one cheap
    sort-unique); other ids (sparse 64-bit, strings) get a dense rank first. Returns the
    lazy frame of ``k`` and the first day number."""
    import polars as pl

    df = _polars_df(table, ["user_id", "ts"])
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


def _polars_frame(table: pa.Table, columns):
    """(u, t) -- plus ``e`` when asked -- with t the timestamp in microseconds; and whether
    the rows are already in time order (then a stable sort by user alone orders them by
    (user, time), which is cheaper than a two-key sort)."""
    import polars as pl

    df = _polars_df(table, columns)
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


