"""Activity metrics: active users over rolling windows, the daily engagement table and the
stickiness (days-active) curve. METRICS.md section 4: active_users, engagement_daily,
stickiness.

A breakdown segment's rows are the metric computed over only that segment's events: the
kernels run once over users ('all') and once over (user, segment) actors.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _activity
from engage_core import _common as c
from engage_core.events import Events


def _activity_passes(ev: Events, events, breakdown, first: int, nthreads: int,
                     users: bool = True):
    """Yield ``(actor_offsets, actor_days, actor_group, n_groups)`` for 'all' (unless not
    ``users``) then segments."""
    if users:
        offsets, days = c.user_days(ev, first, events, nthreads)
        yield offsets, days, np.zeros(ev.num_users, dtype=np.int32), 1
    seg = ev.segment(breakdown)
    if seg is not None:
        offsets, days, actor_seg = c.segment_days(ev, first, events, breakdown, nthreads)
        yield offsets, days, actor_seg, seg.count


def _window_counts(ev, windows, events, breakdown, first, n_days, nthreads):
    """(counts[W, G, D], first_day_counts[G, D]) with group 0 = 'all'.

    The 'all' rows come from one bitmap of users per day when the users' sorted days are
    not at hand (a time-ordered log sets bits in the bitmaps of the days at hand, which stay
    in cache; the windows are ORs of 64-user columns over days), else from those days."""
    counts, firsts = [], []
    bitmaps = c.user_day_bitmaps(ev, events, first, n_days, nthreads, slots_ok=True)
    if bitmaps is not None:
        cnt, fst = _activity.bitmap_window_counts(bitmaps, windows, nthreads)
        counts.append(cnt[:, None, :])
        firsts.append(fst[None, :])
    for offsets, days, group, n_groups in _activity_passes(ev, events, breakdown, first,
                                                            nthreads, users=bitmaps is None):
        cnt, fst = _activity.window_counts(offsets, days, group, n_groups, n_days, windows, nthreads)
        counts.append(cnt)
        firsts.append(fst)
    return np.concatenate(counts, axis=1), np.concatenate(firsts, axis=0)


def active_users(ev: Events, *, windows=(1, 7, 30), events=None, breakdown=None,
                 end_day=None, threads=None) -> pa.Table:
    """Distinct users with a qualifying event in the window of ``window_days`` ending on ``day``.

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, d) for d in (1, 3, 3)]})
    >>> out = active_users(prepare_events(t, event=None), windows=[1, 7])
    >>> [(str(r["day"]), r["window_days"], r["active_users"]) for r in out.to_pylist()]
    [('2025-01-01', 1, 1), ('2025-01-01', 7, 1), ('2025-01-02', 1, 0), ('2025-01-02', 7, 1), ('2025-01-03', 1, 2), ('2025-01-03', 7, 2)]
    """
    nthreads = c.threads_or_default(threads)
    events = c.event_names(events, "events")  # a name or a list of names
    win = c.check_windows(windows, "windows")
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    if n_days == 0:
        counts = np.zeros((len(win), len(labels), 0), dtype=np.int64)
    else:
        counts, _ = _window_counts(ev, win, events, breakdown, first, n_days, nthreads)
    wi, gi, di = c.grid(len(win), len(labels), n_days)
    return c.table({
        "day": c.dates(first + di),
        "window_days": pa.array(win[wi], type=pa.int32()),
        "segment": c.text(gi, labels),
        "active_users": pa.array(counts.ravel(), type=pa.int64()),
    }, ["day", "window_days", "segment"])


def engagement_daily(ev: Events, *, mau_window=30, events=None, breakdown=None,
                     end_day=None, threads=None) -> pa.Table:
    """DAU, WAU, MAU, stickiness, new and total users and the engagement rate per day."""
    nthreads = c.threads_or_default(threads)
    events = c.event_names(events, "events")  # a name or a list of names
    win = c.check_windows([1, 7, mau_window], "mau_window")
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    if n_days == 0:
        counts = np.zeros((3, len(labels), 0), dtype=np.int64)
        firsts = np.zeros((len(labels), 0), dtype=np.int64)
    else:
        counts, firsts = _window_counts(ev, win, events, breakdown, first, n_days, nthreads)
    total = np.cumsum(firsts, axis=1)
    gi, di = c.grid(len(labels), n_days)
    dau, wau, mau = (counts[k].ravel() for k in range(3))
    return c.table({
        "day": c.dates(first + di),
        "segment": c.text(gi, labels),
        "dau": pa.array(dau, type=pa.int64()),
        "wau": pa.array(wau, type=pa.int64()),
        "mau": pa.array(mau, type=pa.int64()),
        "stickiness": c.ratio(dau, mau),
        "new_users": pa.array(firsts.ravel(), type=pa.int64()),
        "total_users": pa.array(total.ravel(), type=pa.int64()),
        "engagement_rate": c.ratio(mau, total.ravel()),
    }, ["day", "segment"])


def stickiness(ev: Events, *, period="week", events=None, breakdown=None, end_day=None,
               threads=None) -> pa.Table:
    """Users active on exactly ``days_active`` distinct days of each period."""
    nthreads = c.threads_or_default(threads)
    events = c.event_names(events, "events")  # a name or a list of names
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    if n_days == 0:
        c.periods(ev, period, 0, 1)  # validates the period name
        return _stickiness_table([], [], [], [], [], [], period)
    pm = c.periods(ev, period, first, n_days)
    max_len = int(pm.lengths.max())
    hists = [
        _activity.days_active_hist(offsets, days, group, n_groups, pm.of_day, pm.count,
                                   max_len, nthreads)
        for offsets, days, group, n_groups in _activity_passes(ev, events, breakdown, first, nthreads)
    ]
    hist = np.concatenate(hists, axis=0)  # [G, P, max_len + 1]
    last = first + n_days - 1
    gs, ps, ks = [], [], []
    for p in range(pm.count):
        length = int(pm.lengths[p])
        k = np.arange(1, length + 1)
        for g in range(len(labels)):
            gs.append(np.full(length, g))
            ps.append(np.full(length, p))
            ks.append(k)
    g_all, p_all, k_all = (np.concatenate(x) for x in (gs, ps, ks))
    users = hist[g_all, p_all, k_all]
    complete = pm.ends()[p_all] <= last
    return _stickiness_table(pm.starts[p_all], g_all, labels, k_all, users, complete, period)


def _stickiness_table(starts, groups, labels, k, users, complete, period) -> pa.Table:
    n = len(starts)
    return c.table({
        "period_start": c.dates(starts),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(groups, labels) if n else pa.array([], pa.string()),
        "days_active": pa.array(np.asarray(k, dtype=np.int32), type=pa.int32()),
        "users": pa.array(np.asarray(users, dtype=np.int64), type=pa.int64()),
        "is_complete": pa.array(np.asarray(complete, dtype=bool), type=pa.bool_()),
    }, ["period_start", "period", "segment", "days_active"])
