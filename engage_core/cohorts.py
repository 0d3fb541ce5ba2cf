"""Cohort metrics: lifecycle and first-week engagement (retention has its own module).
METRICS.md section 4: lifecycle, first_week.

A cohort metric's segment is the breakdown value on the row that put the user in the
cohort (their first qualifying event); among rows at that instant, the smallest value wins.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _cohorts
from engage_core import _common as c
from engage_core.events import Events


def _first(ev: Events, mask, seg, first: int, nthreads: int = 1):
    """Each user's first qualifying day (offset from the first day of data, -1 for none)
    and output group."""
    first_day, first_seg, _ = c.first_rows(ev, first, mask, seg, nthreads)
    group = (first_seg + 1).astype(np.int32) if seg is not None else np.zeros(ev.num_users, np.int32)
    return first_day, group


def lifecycle(ev: Events, *, period="week", events=None, end_day=None, threads=None) -> pa.Table:
    """New, returning, resurrecting and dormant users per period (segment 'all')."""
    nthreads = c.threads_or_default(threads)
    first, n_days = c.day_range(ev, end_day)
    if n_days == 0:
        c.periods(ev, period, 0, 1)
        counts = np.zeros((4, 0), dtype=np.int64)
        starts = np.zeros(0, dtype=np.int64)
    else:
        pm = c.periods(ev, period, first, n_days)
        offsets, days = c.user_days(ev, first, events, nthreads)
        counts = _cohorts.lifecycle_counts(offsets, days, pm.of_day, pm.count, nthreads)
        starts = pm.starts
    n = len(starts)
    return c.table({
        "period_start": c.dates(starts),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": pa.array([c.ALL] * n, type=pa.string()),
        "new_users": pa.array(counts[0], type=pa.int64()),
        "returning_users": pa.array(counts[1], type=pa.int64()),
        "resurrecting_users": pa.array(counts[2], type=pa.int64()),
        "dormant_users": pa.array(counts[3], type=pa.int64()),
    }, ["period_start", "period", "segment"])


def first_week(ev: Events, *, events=None, breakdown=None, end_day=None, threads=None) -> pa.Table:
    """First-week engagement of each daily cohort of new users."""
    nthreads = c.threads_or_default(threads)
    first, n_days = c.day_range(ev, end_day)
    seg = ev.segment(breakdown)
    labels = c.labels_for(seg)
    if n_days == 0:
        counts = np.zeros((3, len(labels), 0), dtype=np.int64)
    else:
        mask = ev.event_mask(events)
        d0, group = _first(ev, mask, seg, first, nthreads)
        offsets, days = c.user_days(ev, first, events, nthreads)
        counts = _cohorts.first_week_counts(d0, group, len(labels), offsets, days, n_days, nthreads)
    gi, di = c.grid(len(labels), n_days)
    new = counts[0].ravel()
    keep = new > 0
    gi, di, new = gi[keep], di[keep], new[keep]
    returned = counts[1].ravel()[keep]
    active = counts[2].ravel()[keep]
    return c.table({
        "cohort_day": c.dates(first + di),
        "segment": c.text(gi, labels),
        "new_users": pa.array(new, type=pa.int64()),
        "returned_users": pa.array(returned, type=pa.int64()),
        "returned_rate": c.ratio(returned, new),
        "avg_active_days": c.ratio(active, new),
        "is_complete": pa.array(di + 6 <= n_days - 1, type=pa.bool_()),
    }, ["cohort_day", "segment"])
