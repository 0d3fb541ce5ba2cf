"""Cohort retention: calendar or rolling windows, classic ("on") and unbounded ("on or
after") counts, brackets of offsets, and a summary across cohorts.
METRICS.md section 4: retention and "retention variants".

A user's cohort is the calendar period of their first ever start event. With
``window="calendar"`` offset k is the period ``cohort + k``; with ``window="rolling"`` it is
``[t0 + k*L, t0 + (k+1)*L)`` where t0 is the instant of the first start event and L is 24 h,
7 * 24 h or 30 * 24 h for day, week and month.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from engage_core import _retention
from engage_core import _common as c
from engage_core.calendar import day_to_date
from engage_core.errors import ConfigError
from engage_core.events import Events

WINDOWS = ("calendar", "rolling")
ROLLING_US = {"day": 86_400_000_000, "week": 7 * 86_400_000_000, "month": 30 * 86_400_000_000}


def _check_offset(max_offset) -> int:
    if not isinstance(max_offset, int) or isinstance(max_offset, bool) or max_offset < 0:
        raise ConfigError(f"max_offset: expected a whole number >= 0, found {max_offset!r}")
    return max_offset


def check_brackets(brackets) -> np.ndarray:
    """Brackets as an int32 array of [first, last] offsets (0 <= first <= last)."""
    ok = isinstance(brackets, (list, tuple)) and len(brackets) > 0
    pairs = []
    for b in brackets if ok else ():
        if (not isinstance(b, (list, tuple)) or len(b) != 2
                or any(not isinstance(v, int) or isinstance(v, bool) for v in b)
                or b[0] < 0 or b[1] < b[0]):
            ok = False
            break
        pairs.append(list(b))
    if not ok:
        raise ConfigError(
            f"brackets: expected a list of [first, last] offset pairs with 0 <= first <= last, "
            f"such as [[1, 3], [4, 7]], found {brackets!r}")
    return np.asarray(pairs, dtype=np.int32).reshape(-1, 2)


def _check_window(window, period) -> None:
    if window not in WINDOWS:
        raise ConfigError(f"window: expected one of {', '.join(WINDOWS)}, found {window!r}")
    if window == "rolling" and period not in ROLLING_US:
        raise ConfigError(
            f"window: rolling retention needs period day, week or month; found period {period!r}")


def _end_instant(ev: Events, last_day: int) -> int:
    """UTC microseconds of the end of ``last_day`` (local midnight that starts the next day)."""
    if ev.timestamp_is_date:
        return (last_day + 1) * 86_400_000_000
    nxt = day_to_date(last_day + 1)
    local = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=ev.calendar.zone)
    return int(local.timestamp()) * 1_000_000


class _State:
    """Everything the retention tables of one configuration are read from."""

    def __init__(self, ev, period, max_offset, start_events, return_events, window,
                 breakdown, end_day, n_bits, nthreads, brackets):
        self.first, self.n_days = c.day_range(ev, end_day)
        self.seg = ev.segment(breakdown)
        self.labels = c.labels_for(self.seg)
        self.pm = c.periods(ev, period, self.first, max(self.n_days, 1))
        self.last = self.first + self.n_days - 1
        self.rolling = window == "rolling"
        self.nthreads = nthreads
        if self.n_days == 0:
            self.empty = True
            return
        self.empty = False
        length = ROLLING_US.get(period, 0)
        same_events = c.names_key(start_events) == c.names_key(return_events)
        bitmaps = None
        if not self.rolling and self.seg is None and same_events:
            # counted straight from the bitmaps (up to 64 periods): user slots serve
            bitmaps = c.user_day_bitmaps(
                ev, return_events, self.first, self.n_days, nthreads, "return_events",
                period_map=self.pm,
                slots_ok=self.pm.count <= _retention.BITMAP_TALLY_MAX_PERIODS)
        if bitmaps is not None and self.pm.count <= _retention.BITMAP_TALLY_MAX_PERIODS:
            # Calendar retention whose cohort comes from the same events as the returns,
            # from bitmaps of users per day (shared with the activity metrics) or per
            # period, counted 64 users at a time.
            self.size, self.ret, self.unb, self.bret = _retention.tally_from_bitmaps(
                *bitmaps, self.pm.count, max_offset, brackets, nthreads)
            return
        if bitmaps is not None:
            # The same with many periods: each user's periods, the first one their cohort.
            bits_map, of_row = bitmaps
            self.cohort, bits, max_k = _retention.offset_bits_from_bitmaps(
                bits_map, of_row, self.pm.count, ev.num_users, n_bits, nthreads)
            self.group = np.zeros(ev.num_users, dtype=np.int32)
        elif not self.rolling and self.seg is None and same_events:
            # The same, from the users' sorted active days (shared with other metrics).
            offsets, days = c.user_days(ev, self.first, return_events, nthreads, "return_events")
            has = offsets[1:] > offsets[:-1]
            first_day = (np.where(has, days[np.minimum(offsets[:-1], len(days) - 1)], -1)
                         if len(days) else np.full(ev.num_users, -1))
            self.cohort = c.cohort_periods(first_day, self.pm.of_day, nthreads)
            self.group = np.zeros(ev.num_users, dtype=np.int32)
            bits, max_k = _retention.offset_bits_from_days(offsets, days, self.cohort,
                                                           self.pm.of_day, n_bits, nthreads)
        else:
            start_mask = ev.event_mask(start_events, "start_events")
            return_mask = ev.event_mask(return_events, "return_events")
            first_day, first_seg, t0 = c.first_rows(ev, self.first, start_mask, self.seg,
                                                    nthreads)
            has = first_day >= 0
            self.cohort = c.cohort_periods(first_day, self.pm.of_day, nthreads)
            self.group = ((first_seg + 1) if self.seg is not None
                          else np.zeros(ev.num_users)).astype(np.int32)
            dayoff = (np.zeros(0, np.int32) if self.rolling  # rolling offsets come from ts
                      else c.day_offsets(ev, self.first))
            bits, max_k = _retention.offset_bits(
                ev.user, ev.ts_chunks(), dayoff, return_mask, self.cohort, t0,
                self.pm.of_day, self.rolling, length, n_bits, ev.num_users, nthreads)
        self.size, self.ret, self.unb, self.bret = _retention.tally(
            self.cohort, self.group, len(self.labels), self.pm.count, bits, n_bits, max_k,
            max_offset, brackets, nthreads)
        if self.rolling:
            self.length = length
            self.end_us = _end_instant(ev, self.last)
            self.t0_min, self.t0_max = self._t0_range(t0, has)

    def _t0_range(self, t0, has):
        """Earliest and latest first-start instant per (group, cohort)."""
        return _retention.cohort_instant_range(self.cohort, self.group, t0, len(self.labels),
                                               self.pm.count, self.nthreads)

    def exists(self, gi, ci, k):
        """Whether offset k of cohort ci has begun by the end of the last day of data."""
        if self.rolling:
            k = np.asarray(k, dtype=np.int64)
            with np.errstate(over="ignore"):  # cohorts without users hold sentinels
                return self.t0_min[gi, ci] + k * self.length < self.end_us
        return ci + k < self.pm.count

    def complete(self, gi, ci, k):
        """Whether offset k of cohort ci has ended by the end of the last day of data."""
        if self.rolling:
            k = np.asarray(k, dtype=np.int64)
            with np.errstate(over="ignore"):
                return self.t0_max[gi, ci] + (k + 1) * self.length <= self.end_us
        target = ci + k
        ends = self.pm.ends()
        return (target < self.pm.count) & (ends[np.minimum(target, self.pm.count - 1)] <= self.last)


def _state(ev, period, max_offset, start_events, return_events, window, breakdown, end_day,
           threads, brackets=None) -> _State:
    nthreads = c.threads_or_default(threads)
    k_max = _check_offset(max_offset)
    _check_window(window, period)
    br = check_brackets(brackets) if brackets is not None else np.zeros((0, 2), np.int32)
    n_bits = max(k_max, int(br[:, 1].max()) if len(br) else 0) + 1
    return _State(ev, period, k_max, start_events, return_events, window, breakdown, end_day,
                  n_bits, nthreads, br)


def retention(ev: Events, *, period="week", max_offset=12, start_events=None,
              return_events=None, window="calendar", breakdown=None, end_day=None,
              threads=None) -> pa.Table:
    """Cohort retention, classic and unbounded, for offsets 0..max_offset."""
    st = _state(ev, period, max_offset, start_events, return_events, window, breakdown,
                end_day, threads)
    return _classic_table(st, max_offset, period)


def retention_with_brackets(ev: Events, *, brackets, period="week", max_offset=12,
                            start_events=None, return_events=None, window="calendar",
                            breakdown=None, end_day=None, threads=None):
    """``(retention(...), retention_brackets(...))`` of one configuration, counted in one
    pass: the bracket counts come with the classic and unbounded ones (calling the two
    functions counts everything twice).

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, d) for d in (6, 20, 6)]})
    >>> ev = prepare_events(t, event=None)
    >>> ret, br = retention_with_brackets(ev, brackets=[[1, 2]], max_offset=2)
    >>> ret.equals(retention(ev, max_offset=2)), br.equals(retention_brackets(ev, brackets=[[1, 2]], max_offset=2))
    (True, True)
    >>> br.column("retained_users").to_pylist()
    [1]
    """
    st = _state(ev, period, max_offset, start_events, return_events, window, breakdown,
                end_day, threads, brackets)
    return _classic_table(st, max_offset, period), _bracket_table(st, brackets, period)


def _classic_table(st: _State, max_offset, period) -> pa.Table:
    """The ``retention`` table of a state."""
    if st.empty:
        e = np.zeros(0, np.int64)
        return _retention_table(e, e, e, e, e, e, e, st.labels, period)
    gi, ci, ki = c.grid(len(st.labels), st.pm.count, max_offset + 1)
    keep = (st.size[gi, ci] > 0) & st.exists(gi, ci, ki)
    gi, ci, ki = gi[keep], ci[keep], ki[keep]
    return _retention_table(st.pm.starts[ci], gi, ki, st.size[gi, ci], st.ret[gi, ci, ki],
                            st.unb[gi, ci, ki], st.complete(gi, ci, ki), st.labels, period)


def _retention_table(starts, gi, ki, size, ret, unb, complete, labels, period):
    n = len(starts)
    return c.table({
        "cohort_start": c.dates(starts),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "period_offset": pa.array(np.asarray(ki, dtype=np.int32), type=pa.int32()),
        "cohort_size": pa.array(np.asarray(size, dtype=np.int64), type=pa.int64()),
        "retained_users": pa.array(np.asarray(ret, dtype=np.int64), type=pa.int64()),
        "retained_users_unbounded": pa.array(np.asarray(unb, dtype=np.int64), type=pa.int64()),
        "retention_rate": c.ratio(ret, size),
        "retention_rate_unbounded": c.ratio(unb, size),
        "is_complete": pa.array(np.asarray(complete, dtype=bool), type=pa.bool_()),
    }, ["cohort_start", "period", "segment", "period_offset"])


def retention_brackets(ev: Events, *, brackets, period="week", max_offset=12, start_events=None,
                       return_events=None, window="calendar", breakdown=None, end_day=None,
                       threads=None) -> pa.Table:
    """Users with a return event in any offset of each bracket ``[first, last]``.

    A bracket has a row when its first offset has begun by the end of the data; it is
    complete when its last offset has ended.
    """
    st = _state(ev, period, max_offset, start_events, return_events, window, breakdown,
                end_day, threads, brackets)
    return _bracket_table(st, brackets, period)


def _bracket_table(st: _State, brackets, period) -> pa.Table:
    """The ``retention_brackets`` table of a state counted with ``brackets``."""
    br = check_brackets(brackets)
    if st.empty:
        gi = ci = bi = np.zeros(0, np.int64)
        size = ret = np.zeros(0, np.int64)
        complete = np.zeros(0, bool)
        starts = np.zeros(0, np.int64)
    else:
        gi, ci, bi = c.grid(len(st.labels), st.pm.count, len(br))
        keep = (st.size[gi, ci] > 0) & st.exists(gi, ci, br[bi, 0])
        gi, ci, bi = gi[keep], ci[keep], bi[keep]
        size, ret = st.size[gi, ci], st.bret[gi, ci, bi]
        complete = st.complete(gi, ci, br[bi, 1])
        starts = st.pm.starts[ci]
    n = len(gi)
    return c.table({
        "cohort_start": c.dates(starts),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, st.labels),
        "bracket_start": pa.array(br[bi, 0] if n else [], type=pa.int32()),
        "bracket_end": pa.array(br[bi, 1] if n else [], type=pa.int32()),
        "cohort_size": pa.array(np.asarray(size, dtype=np.int64), type=pa.int64()),
        "retained_users": pa.array(np.asarray(ret, dtype=np.int64), type=pa.int64()),
        "retention_rate": c.ratio(ret, size),
        "is_complete": pa.array(np.asarray(complete, dtype=bool), type=pa.bool_()),
    }, ["cohort_start", "period", "segment", "bracket_start", "bracket_end"])


def retention_summary(retention_table: pa.Table) -> pa.Table:
    """Across cohorts, over complete cells only, per (period, segment, period_offset):
    ``cohorts``, ``cohort_users``, ``retained_users``, ``pooled_rate`` (retained over cohort
    users) and ``mean_rate`` (the plain mean of the cohorts' rates).

    Only offsets with at least one complete cell get a row.
    """
    done = retention_table.filter(retention_table["is_complete"])
    agg = done.group_by(["period", "segment", "period_offset"], use_threads=False).aggregate([
        ("cohort_start", "count"), ("cohort_size", "sum"), ("retained_users", "sum"),
        ("retention_rate", "sum")])
    cohorts = agg["cohort_start_count"].to_numpy().astype(np.int64)
    users = agg["cohort_size_sum"].to_numpy(zero_copy_only=False).astype(np.int64)
    ret = agg["retained_users_sum"].to_numpy(zero_copy_only=False).astype(np.int64)
    rate_sum = agg["retention_rate_sum"].to_numpy(zero_copy_only=False).astype(np.float64)
    return c.table({
        "period": agg["period"],
        "segment": agg["segment"],
        "period_offset": agg["period_offset"].cast(pa.int32()),
        "cohorts": pa.array(cohorts, type=pa.int64()),
        "cohort_users": pa.array(users, type=pa.int64()),
        "retained_users": pa.array(ret, type=pa.int64()),
        "pooled_rate": c.ratio(ret, users),
        "mean_rate": c.ratio(rate_sum, cohorts),
    }, ["period", "segment", "period_offset"])
