"""Commerce metrics: orders and revenue per period, and revenue by customer cohort.
METRICS.md section 4: commerce, cohort_revenue.

Orders are events in ``purchase_events`` with their ``revenue`` (a numeric column given to
``prepare_events(numeric=[...])``). An order whose revenue is null, not finite (NaN, +-inf)
or negative is rejected: it counts nowhere, and is reported when ``rejected`` is a list.

``commerce`` is an activity metric (a segment's rows see only that segment's orders, so
"returning" means an order in an earlier period in that segment); ``cohort_revenue`` is a
cohort metric (a customer's segment is the one on their first order, ties at that instant
to the smallest value, and all their later orders count there).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _cohorts, _gather
from engage_core import _common as c
from engage_core.errors import ConfigError
from engage_core.events import Events


def _orders(ev: Events, purchase_events, revenue: str, metric: str, rejected):
    """(uint8 mask of accepted orders, revenue values); reports rejected orders. Checked
    once per (events, column) and kept on the Events: commerce and cohort revenue share it."""
    names = c.event_names(purchase_events, "purchase_events")
    values, valid = c.numeric_column(ev, revenue, "revenue")
    key = (c.names_key(names), revenue)
    cache = ev.__dict__.setdefault("_orders_cache", {})
    if key not in cache:
        mask = ev.event_mask(names, "purchase_events")
        # the checks read the candidate orders only (a tenth of the rows, say)
        sel = (np.arange(ev.num_rows) if mask is None
               else _gather.flatnonzero(np.asarray(mask).view(np.uint8), ev.threads))
        v = _gather.take(sel, values, ev.threads)
        present = _gather.take(sel, valid, ev.threads) != 0
        finite = np.isfinite(v)
        with np.errstate(invalid="ignore"):
            negative = present & finite & (v < 0)
        good = present & finite & ~negative
        ok = np.zeros(ev.num_rows, dtype=np.uint8)
        ok[sel[good]] = 1
        ok.flags.writeable = False
        reasons = [(why, sel[m]) for why, m in (
            ("revenue_null", ~present), ("revenue_negative", negative),
            ("revenue_not_finite", present & ~finite))]
        cache[key] = {"ok": ok, "reasons": reasons, "runs": {}}
    entry = cache[key]
    c.report_rejected(rejected, metric, ev, entry["reasons"])
    return entry, values


def _order_runs(ev: Events, entry, actor, n_actors, prow, pm, first, values, nthreads,
                keep: bool = True):
    """The (actor, period) runs of the accepted orders. The users' runs are kept with the
    orders for cohort revenue of the same period (the pipeline runs it right after
    commerce), which takes them (``keep=False``): they do not outlive the pair."""
    if actor is not ev.user:
        return c.actor_runs(ev, actor, n_actors, entry["ok"], prow, nthreads, first, value=values)
    key = (pm.kind, first, len(pm.of_day))
    runs = entry["runs"].pop(key, None)
    if runs is None:
        runs = c.actor_runs(ev, actor, n_actors, entry["ok"], prow, nthreads, first, value=values)
    if keep:
        entry["runs"][key] = runs
    return runs


def _axes(ev, period, breakdown, end_day):
    first, n_days = c.day_range(ev, end_day)
    seg = ev.segment(breakdown)
    pm = c.periods(ev, period, first if n_days else 0, max(n_days, 1))
    return first, n_days, seg, c.labels_for(seg), pm, (pm.count if n_days else 0)


def commerce(ev: Events, *, purchase_events=("purchase",), revenue="revenue", period="month",
             breakdown=None, end_day=None, rejected=None, threads=None) -> pa.Table:
    """Customers, orders, revenue, average order value, purchase frequency, repeat and
    returning customers per period and segment (every period from the first period of data
    to ``end_day``'s).

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, d) for d in (1, 2, 3)],
    ...               "event": ["purchase"] * 3, "revenue": [10.0, 20.0, 30.0]})
    >>> r = commerce(prepare_events(t, numeric=["revenue"])).to_pylist()[0]
    >>> r["customers"], r["orders"], r["revenue"], r["avg_order_value"], r["repeat_customers"]
    (2, 3, 60.0, 20.0, 1)
    """
    nthreads = c.threads_or_default(threads)
    accepted, values = _orders(ev, purchase_events, revenue, "commerce", rejected)
    first, n_days, seg, labels, pm, n_periods = _axes(ev, period, breakdown, end_day)
    size = len(labels) * n_periods
    cust, orders, repeat, returning = (np.zeros(size, dtype=np.int64) for _ in range(4))
    rev = np.zeros(size, dtype=np.float64)
    if n_days:
        prow = c.period_of_rows(ev, pm, first)
        for actor, n_actors, group in c.actor_passes(ev, breakdown):
            r = _order_runs(ev, accepted, actor, n_actors, prow, pm, first, values, nthreads)
            idx = c.run_index(group, r, n_periods)
            cust += c.tally(idx, size, None, nthreads)
            orders += c.tally(idx, size, r["rows"].astype(np.float64), nthreads).astype(np.int64)
            rev += c.tally(idx, size, r["sum"], nthreads)
            repeat += c.tally(idx[r["rows"] >= 2], size, None, nthreads)
            returning += c.tally(idx[~r["first"]], size, None, nthreads)
    gi, pi = c.grid(len(labels), n_periods)
    n = len(gi)
    return c.table({
        "period_start": c.dates(pm.starts[pi] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "customers": pa.array(cust, type=pa.int64()),
        "orders": pa.array(orders, type=pa.int64()),
        "revenue": pa.array(rev, type=pa.float64()),
        "avg_order_value": c.ratio(rev, orders),
        "purchase_frequency": c.ratio(orders, cust),
        "repeat_customers": pa.array(repeat, type=pa.int64()),
        "repeat_purchase_rate": c.ratio(repeat, cust),
        "returning_customers": pa.array(returning, type=pa.int64()),
        "returning_customer_rate": c.ratio(returning, cust),
    }, ["period_start", "period", "segment"])


def cohort_revenue(ev: Events, *, purchase_events=("purchase",), revenue="revenue",
                   period="month", max_offset=12, breakdown=None, end_day=None, rejected=None,
                   threads=None) -> pa.Table:
    """Revenue of each cohort of customers (by the period of their first order) in each
    later period, cumulative revenue and historical lifetime value per customer."""
    nthreads = c.threads_or_default(threads)
    if not isinstance(max_offset, int) or isinstance(max_offset, bool) or max_offset < 0:
        raise ConfigError(f"max_offset: expected a whole number >= 0, found {max_offset!r}")
    accepted, values = _orders(ev, purchase_events, revenue, "cohort_revenue", rejected)
    mask = accepted["ok"]
    first, n_days, seg, labels, pm, n_periods = _axes(ev, period, breakdown, end_day)
    n_groups, n_k = len(labels), max_offset + 1
    size = np.zeros((n_groups, n_periods), dtype=np.int64)
    active = np.zeros((n_groups, n_periods, n_k), dtype=np.int64)
    rev = np.zeros((n_groups, n_periods, n_k), dtype=np.float64)
    if n_days:
        prow = c.period_of_rows(ev, pm, first)
        r = _order_runs(ev, accepted, ev.user, ev.num_users, prow, pm, first, values, nthreads,
                        keep=False)
        if seg is None:
            # a customer's cohort is the period of their first run (runs come by user, then
            # period): no pass over the rows for each one's first order
            cohort = _cohorts.first_run_periods(r["actor"], r["period"],
                                                r["first"].view(np.uint8), ev.num_users,
                                                nthreads)
            groups = [None]
        else:  # the segment of each one's first order: from their first row
            first_day, first_seg, _ = c.first_rows(ev, first, mask, seg, nthreads)
            cohort = c.cohort_periods(first_day, pm.of_day, nthreads)
            groups = [None, np.ascontiguousarray(first_seg + 1, dtype=np.int32)]
        # each user's cohort cell and each run's (cohort, offset) cell; runs past max_offset
        # go to one cell past the last, dropped after the tally
        for g in groups:
            cells = _cohorts.cohort_cells(cohort, None, None, g, n_periods, 1, size.size,
                                          nthreads)
            size += c.tally(cells, size.size + 1, None, nthreads)[:-1].reshape(size.shape)
            idx = _cohorts.cohort_cells(cohort, r["actor"], r["period"], g, n_periods, n_k,
                                        active.size, nthreads)
            active += c.tally(idx, active.size + 1, None, nthreads)[:-1].reshape(active.shape)
            rev += c.tally(idx, rev.size + 1, r["sum"], nthreads)[:-1].reshape(rev.shape)
    cum = np.cumsum(rev, axis=2)
    gi, ci, ki = c.grid(n_groups, n_periods, n_k)
    keep = (size[gi, ci] > 0) & (ci + ki < n_periods) if len(gi) else np.zeros(0, bool)
    gi, ci, ki = gi[keep], ci[keep], ki[keep]
    n = len(gi)
    ends = pm.ends()
    last = first + n_days - 1
    sz = size[gi, ci]
    return c.table({
        "cohort_start": c.dates(pm.starts[ci] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "period_offset": pa.array(ki.astype(np.int32), type=pa.int32()),
        "cohort_size": pa.array(sz, type=pa.int64()),
        "active_customers": pa.array(active[gi, ci, ki], type=pa.int64()),
        "revenue": pa.array(rev[gi, ci, ki], type=pa.float64()),
        "cumulative_revenue": pa.array(cum[gi, ci, ki], type=pa.float64()),
        "ltv": c.ratio(cum[gi, ci, ki], sz),
        "is_complete": pa.array(ends[ci + ki] <= last if n else [], type=pa.bool_()),
    }, ["cohort_start", "period", "segment", "period_offset"])
