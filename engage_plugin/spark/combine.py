"""Combine the shards' partial tables (:mod:`engage_plugin.spark.partials`) into the tables
the local engine writes, exactly. Runs on the driver, over small Arrow tables.

Rules (each shard holds ALL the events of its users, on the same day axis):
- counts of distinct users, orders, sessions, events and microseconds add up;
- ratios are recomputed from the added numerators and denominators (NULL over 0);
- sums of money or score are recomputed from the shipped terms, added in ascending order
  as the engine adds them; the median session length from every session's duration;
- ``retention_summary`` is computed from the combined ``retention``;
- rolling-retention rows: a row exists when it exists in some shard; ``is_complete`` when
  every shard holding the cohort holds the row complete; ``cohort_size`` is the cohort's;
- tables with a row for every (day or period, segment) pair get the pairs some shard lacked
  (a segment absent from a shard) with zero counts, as the local engine writes them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engage_core import _common as c
from engage_core import _sequences
from engage_core.retention import retention_summary

SEG = "segment"


def _np(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _concat(parts: list[pa.Table]) -> pa.Table:
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")


def _sum(table: pa.Table, keys, cols, first=()) -> pa.Table:
    """Group by ``keys``: sum of ``cols`` (nulls count as 0), first value of ``first``."""
    aggs = [(k, "sum") for k in cols] + [(k, "first") for k in first]
    out = table.group_by(list(keys), use_threads=False).aggregate(aggs)
    ren = {f"{k}_sum": k for k in cols} | {f"{k}_first": k for k in first}
    return out.rename_columns([ren.get(n, n) for n in out.column_names])


def _fill_grid(table: pa.Table, keys, zero_cols, const=()) -> pa.Table:
    """Add the (other keys x segment) rows missing from ``table`` with 0 in ``zero_cols``."""
    other = [k for k in keys if k != SEG]
    frame = table.select(other + list(const)).group_by(other, use_threads=False).aggregate(
        [(k, "first") for k in const])
    frame = frame.rename_columns([n[:-6] if n.endswith("_first") else n
                                  for n in frame.column_names])
    segs = pc.unique(table[SEG])
    i, j = c.grid(frame.num_rows, len(segs))
    full = frame.take(pa.array(i)).append_column(SEG, segs.take(pa.array(j)))
    have = table.drop_columns(list(const))
    out = full.join(have, keys=list(keys), join_type="left outer", use_threads=False)
    for k in zero_cols:
        out = out.set_column(out.column_names.index(k), k, out[k].fill_null(0))
    return out


def _finish(table: pa.Table, columns: dict, keys) -> pa.Table:
    """The output table: ``columns`` (name -> (array, type)) sorted by the primary key."""
    out = pa.table({k: pa.array(v, type=t) if not isinstance(v, (pa.Array, pa.ChunkedArray))
                    else v.cast(t) for k, (v, t) in columns.items()})
    return out.sort_by([(k, "ascending") for k in keys]) if out.num_rows else out


def _ratio(num, den) -> pa.Array:
    return c.ratio(num, den)


def exact_sums(terms: pa.Table, keys) -> pa.Table:
    """Per key: the sum of the ``value`` terms (each ``n`` times) added in ascending order of
    value from 0.0, as ``engage_core._common.tally`` adds them."""
    if terms.num_rows == 0:
        return terms.select(list(keys)).append_column("sum", pa.array([], pa.float64()))
    t = terms.sort_by([(k, "ascending") for k in keys] + [("value", "ascending")])
    start = np.zeros(t.num_rows, dtype=bool)
    start[0] = True
    for k in keys:
        col = t[k].combine_chunks()
        start[1:] |= ~_np(pc.equal(col.slice(1), col.slice(0, len(col) - 1)))
    gid = np.cumsum(start) - 1
    n = _np(t["n"]).astype(np.int64)
    sums = np.bincount(np.repeat(gid, n), weights=np.repeat(_np(t["value"]), n),
                       minlength=int(gid[-1]) + 1)
    return t.select(list(keys)).filter(pa.array(start)).append_column(
        "sum", pa.array(sums, pa.float64()))


def _join_sums(table, terms, keys) -> np.ndarray:
    s = exact_sums(terms, keys)
    out = table.join(s, keys=list(keys), join_type="left outer", use_threads=False)
    out = out.sort_by([(k, "ascending") for k in keys])
    return out, _np(out["sum"].fill_null(0.0)).astype(np.float64)


# --- activity tables: a row for every (day or period, segment) --------------------------

def active_users(parts, keys):
    t = _fill_grid(_sum(_concat(parts), keys, ["active_users"]), keys, ["active_users"])
    return _finish(t, {"day": (t["day"], pa.date32()), "window_days": (t["window_days"], pa.int32()),
                       SEG: (t[SEG], pa.string()), "active_users": (t["active_users"], pa.int64())}, keys)


def engagement_daily(parts, keys):
    cols = ["dau", "wau", "mau", "new_users", "total_users"]
    t = _fill_grid(_sum(_concat(parts), keys, cols), keys, cols)
    dau, mau, total = (_np(t[k]) for k in ("dau", "mau", "total_users"))
    return _finish(t, {"day": (t["day"], pa.date32()), SEG: (t[SEG], pa.string()),
                       **{k: (t[k], pa.int64()) for k in ("dau", "wau", "mau")},
                       "stickiness": (_ratio(dau, mau), pa.float64()),
                       "new_users": (t["new_users"], pa.int64()),
                       "total_users": (t["total_users"], pa.int64()),
                       "engagement_rate": (_ratio(mau, total), pa.float64())}, keys)


def stickiness(parts, keys):
    t = _fill_grid(_sum(_concat(parts), keys, ["users"], ["is_complete"]), keys, ["users"],
                   ["is_complete"])
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "days_active": (t["days_active"], pa.int32()),
                       "users": (t["users"], pa.int64()),
                       "is_complete": (t["is_complete"], pa.bool_())}, keys)


def lifecycle(parts, keys):
    cols = ["new_users", "returning_users", "resurrecting_users", "dormant_users"]
    t = _sum(_concat(parts), keys, cols)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       **{k: (t[k], pa.int64()) for k in cols}}, keys)


def conversion(parts, keys):
    cols = ["denominator_users", "numerator_users"]
    t = _fill_grid(_sum(_concat(parts), keys, cols), keys, cols)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "name": (t["name"], pa.string()),
                       **{k: (t[k], pa.int64()) for k in cols},
                       "rate": (_ratio(_np(t["numerator_users"]), _np(t["denominator_users"])),
                                pa.float64())}, keys)


def survey(parts, keys):
    cols = ["responses", "promoters", "passives", "detractors", "satisfied"]
    t = _fill_grid(_sum(_concat(parts), keys, cols), keys, cols)
    csat = _np(pc.equal(t["survey"], "csat"))
    a = np.where(csat, _np(t["satisfied"]), _np(t["promoters"])).astype(np.int64)
    b, d, resp = (_np(t[k]).astype(np.int64) for k in ("passives", "detractors", "responses"))
    points = np.where(csat, a, a - d)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "survey": (t["survey"], pa.string()), "responses": (resp, pa.int64()),
                       "promoters": (pa.array(a, mask=csat, type=pa.int64()), pa.int64()),
                       "passives": (pa.array(b, mask=csat, type=pa.int64()), pa.int64()),
                       "detractors": (pa.array(d, mask=csat, type=pa.int64()), pa.int64()),
                       "satisfied": (pa.array(a, mask=~csat, type=pa.int64()), pa.int64()),
                       "score": (_ratio(100.0 * points, resp), pa.float64())}, keys)


def sessions_daily(parts, durations, keys):
    cols = ["sessions", "users", "events", "duration_us"]
    t = _fill_grid(_sum(_concat(parts), keys, cols), keys, cols)
    t = t.sort_by([(k, "ascending") for k in keys])
    n_sess, users, n_ev, dur = (_np(t[k]).astype(np.int64) for k in cols)
    d = _concat(durations)
    index = t.select(list(keys)).append_column("i", pa.array(np.arange(t.num_rows)))
    d = d.join(index, keys=list(keys), join_type="inner", use_threads=False)
    n = _np(d["n"]).astype(np.int64)
    med = _sequences.bucket_medians(np.repeat(_np(d["i"]).astype(np.int64), n),
                                    np.repeat(_np(d["duration_us"]).astype(np.int64), n),
                                    t.num_rows, 1)
    us = 1_000_000
    return _finish(t, {"day": (t["day"], pa.date32()), SEG: (t[SEG], pa.string()),
                       "sessions": (n_sess, pa.int64()), "users": (users, pa.int64()),
                       "sessions_per_user": (_ratio(n_sess, users), pa.float64()),
                       "avg_session_seconds": (_ratio(dur / us, n_sess), pa.float64()),
                       "median_session_seconds": (pa.array(med / us, mask=np.isnan(med),
                                                           type=pa.float64()), pa.float64()),
                       "events_per_session": (_ratio(n_ev, n_sess), pa.float64())}, keys)


def commerce(parts, terms, keys):
    cols = ["customers", "orders", "repeat_customers", "returning_customers"]
    t = _fill_grid(_sum(_concat(parts), keys, cols), keys, cols)
    t, rev = _join_sums(t, _concat(terms), keys)
    cust, orders, rep, ret = (_np(t[k]).astype(np.int64) for k in cols)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "customers": (cust, pa.int64()), "orders": (orders, pa.int64()),
                       "revenue": (rev, pa.float64()),
                       "avg_order_value": (_ratio(rev, orders), pa.float64()),
                       "purchase_frequency": (_ratio(orders, cust), pa.float64()),
                       "repeat_customers": (rep, pa.int64()),
                       "repeat_purchase_rate": (_ratio(rep, cust), pa.float64()),
                       "returning_customers": (ret, pa.int64()),
                       "returning_customer_rate": (_ratio(ret, cust), pa.float64())}, keys)


def score_tiers(parts, terms, keys):
    t = _fill_grid(_sum(_concat(parts), keys, ["users"]), keys, ["users"])
    t, total = _join_sums(t, _concat(terms), keys)
    users = _np(t["users"]).astype(np.int64)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "tier": (t["tier"], pa.string()), "users": (users, pa.int64()),
                       "avg_score": (_ratio(total, users), pa.float64())}, keys)


# --- cohort tables: rows only for cohorts with users ------------------------------------

def first_week(parts, keys):
    t = _concat(parts)
    # avg_active_days = active days / new users: the shard's whole number of active days
    # is recovered exactly by rounding (far below 2**52)
    active = np.rint(_np(t["avg_active_days"].fill_null(0.0)) * _np(t["new_users"]))
    t = t.append_column("active", pa.array(active.astype(np.int64)))
    t = _sum(t, keys, ["new_users", "returned_users", "active"], ["is_complete"])
    new, ret, act = (_np(t[k]).astype(np.int64) for k in ("new_users", "returned_users", "active"))
    return _finish(t, {"cohort_day": (t["cohort_day"], pa.date32()), SEG: (t[SEG], pa.string()),
                       "new_users": (new, pa.int64()), "returned_users": (ret, pa.int64()),
                       "returned_rate": (_ratio(ret, new), pa.float64()),
                       "avg_active_days": (_ratio(act, new), pa.float64()),
                       "is_complete": (t["is_complete"], pa.bool_())}, keys)


def funnel(parts, keys):
    t = _sum(_concat(parts), keys, ["users"], ["step_name", "is_complete"])
    t = t.sort_by([(k, "ascending") for k in keys])
    users = _np(t["users"]).astype(np.int64)
    step = _np(t["step"]).astype(np.int64)
    # steps 1..n of one (period, segment, funnel) are consecutive rows once sorted
    entrants = users[np.arange(len(step)) - (step - 1)] if len(step) else users
    previous = np.where(step > 1, users[np.maximum(np.arange(len(step)) - 1, 0)], users)
    return _finish(t, {"period_start": (t["period_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "funnel": (t["funnel"], pa.string()), "step": (step, pa.int32()),
                       "step_name": (t["step_name"], pa.string()), "users": (users, pa.int64()),
                       "conversion_from_start": (_ratio(users, entrants), pa.float64()),
                       "conversion_from_previous": (_ratio(users, previous), pa.float64()),
                       "is_complete": (t["is_complete"], pa.bool_())}, keys)


def _cohort_cells(parts, keys, cols):
    """Sum ``cols`` and count the shards holding the row complete (``_done``); joined with
    the cohort's size and shard count, ``is_complete`` = every shard holding the cohort
    holds the row complete (rolling windows: each shard knows only its users' t0)."""
    t = _concat(parts)
    t = t.append_column("_done", pc.cast(t["is_complete"], pa.int64()))
    return _sum(t, keys, cols + ["_done"])


def _cohort_info(retention_parts):
    """Per (cohort_start, period, segment): size and the number of shards holding it."""
    sizes = []
    for p in retention_parts:
        z = p.filter(pc.equal(p["period_offset"], 0)).select(
            ["cohort_start", "period", SEG, "cohort_size"])
        sizes.append(z.append_column("_shards", pa.array(np.ones(z.num_rows, np.int64))))
    return _sum(_concat(sizes), ["cohort_start", "period", SEG], ["cohort_size", "_shards"])


def retention(parts, keys, info):
    t = _cohort_cells(parts, keys, ["retained_users", "retained_users_unbounded"])
    t = t.join(info, keys=["cohort_start", "period", SEG], join_type="inner", use_threads=False)
    size, ret, unb = (_np(t[k]).astype(np.int64) for k in
                      ("cohort_size", "retained_users", "retained_users_unbounded"))
    done = _np(t["_done"]) == _np(t["_shards"])
    return _finish(t, {"cohort_start": (t["cohort_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "period_offset": (t["period_offset"], pa.int32()),
                       "cohort_size": (size, pa.int64()), "retained_users": (ret, pa.int64()),
                       "retained_users_unbounded": (unb, pa.int64()),
                       "retention_rate": (_ratio(ret, size), pa.float64()),
                       "retention_rate_unbounded": (_ratio(unb, size), pa.float64()),
                       "is_complete": (done, pa.bool_())}, keys)


def retention_brackets(parts, keys, info):
    t = _cohort_cells(parts, keys, ["retained_users"])
    t = t.join(info, keys=["cohort_start", "period", SEG], join_type="inner", use_threads=False)
    size, ret = (_np(t[k]).astype(np.int64) for k in ("cohort_size", "retained_users"))
    done = _np(t["_done"]) == _np(t["_shards"])
    return _finish(t, {"cohort_start": (t["cohort_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "bracket_start": (t["bracket_start"], pa.int32()),
                       "bracket_end": (t["bracket_end"], pa.int32()),
                       "cohort_size": (size, pa.int64()), "retained_users": (ret, pa.int64()),
                       "retention_rate": (_ratio(ret, size), pa.float64()),
                       "is_complete": (done, pa.bool_())}, keys)


def cohort_revenue(parts, terms, keys):
    t = _sum(_concat(parts), keys, ["cohort_size", "active_customers"], ["is_complete"])
    t, rev = _join_sums(t, _concat(terms), keys)  # sorted: offsets ascend within a cohort
    size = _np(t["cohort_size"]).astype(np.int64)
    k = _np(t["period_offset"]).astype(np.int64)
    # cumulative revenue: added offset after offset from 0.0, as numpy's cumsum does
    cum = np.empty(len(rev))
    acc = 0.0
    for i in range(len(rev)):
        acc = rev[i] if k[i] == 0 else acc + rev[i]
        cum[i] = acc
    return _finish(t, {"cohort_start": (t["cohort_start"], pa.date32()),
                       "period": (t["period"], pa.string()), SEG: (t[SEG], pa.string()),
                       "period_offset": (k, pa.int32()), "cohort_size": (size, pa.int64()),
                       "active_customers": (t["active_customers"], pa.int64()),
                       "revenue": (rev, pa.float64()), "cumulative_revenue": (cum, pa.float64()),
                       "ltv": (_ratio(cum, size), pa.float64()),
                       "is_complete": (t["is_complete"], pa.bool_())}, keys)


def user_scores(parts, keys=None):
    t = _concat(parts)
    return t.sort_by([("period_start", "ascending"), ("user_id", "ascending")]) \
        if t.num_rows else t


def summary(retention_table: pa.Table) -> pa.Table:
    """``retention_summary`` of the combined retention, per period in the local engine's
    order (the mean of rates is a float sum in row order)."""
    return retention_summary(retention_table)
