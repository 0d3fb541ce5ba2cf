"""Helpers shared by the metric-family modules: argument checks, day ranges, actors, and
building the Arrow output tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from engage_core import _cohorts, _columns, _gather, _ingest
from engage_core.calendar import date_to_day, day_to_date, period_map
from engage_core.errors import ConfigError
from engage_core.events import Events, default_threads

ALL = "all"


def threads_or_default(threads) -> int:
    if threads is None:
        return default_threads()
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads: expected a positive integer, found {threads!r}")
    return threads


def day_range(ev: Events, end_day) -> tuple[int, int]:
    """(first day number, number of days up to ``end_day``) of the metric's day axis.

    The axis starts at the first day of data, or at ``ev.axis_first_day`` when set (a shard
    of a larger log uses the whole log's first day, so its periods and rows line up)."""
    first, last = ev.first_day_number, ev.last_day_number
    if first is None:
        return 0, 0
    if ev.axis_first_day is not None:
        axis = date_to_day(_as_date(ev.axis_first_day))
        if axis > first:
            raise ValueError(f"axis_first_day: {day_to_date(axis)} is after the first day of "
                             f"data, {day_to_date(first)}")
        first = axis
    end = last if end_day is None else date_to_day(_as_date(end_day))
    if end < last:
        raise ValueError(
            f"end_day: {day_to_date(end)} is before the last day of data, {day_to_date(last)}"
        )
    return first, end - first + 1


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def day_offsets(ev: Events, first: int) -> np.ndarray:
    """Each row's day as an offset from ``first`` (cached on the Events), by all threads."""
    cache = ev.__dict__.setdefault("_dayoff_cache", {})
    if first not in cache:
        cache[first] = _gather.shifted(np.ascontiguousarray(ev.day, dtype=np.int32), -first,
                                       ev.threads)
    return cache[first]


def first_rows(ev: Events, first: int, mask, seg, nthreads: int):
    """Each user's first qualifying row (``_cohorts.first_rows``): ``(first_day offset from
    ``first``, first_seg, first_ts)``. Without a mask, segments or sub-microsecond parts, a
    log in time order is read in two streaming passes (``first_rows_in_order``), and with the
    users' time order at hand (``plan_user_order``) each user's first row is read off it."""
    plain = mask is None and seg is None and ev.ts_rem is None
    base = shared_order(ev, first, nthreads) if plain else None
    if base is not None and len(base[3]):
        # each user's first row heads their rows in the users' time order
        offsets, _, dayoff, ts = base[:4]
        first_day, first_ts = _cohorts.run_heads(offsets, dayoff, ts, nthreads)
        return first_day, np.zeros(ev.num_users, dtype=np.int32), first_ts
    if plain:
        found = _cohorts.first_rows_in_order(ev.user, ev.ts_chunks(), ev.day, -first, ev.num_users,
                                             nthreads)
        if found is not None:
            return found[0], np.zeros(ev.num_users, dtype=np.int32), found[1]
    return _cohorts.first_rows(ev.user, ev.ts, day_offsets(ev, first), mask,
                               None if seg is None else seg.codes, ev.num_users, nthreads,
                               ev.ts_rem)


def cohort_periods(first_day: np.ndarray, of_day: np.ndarray, nthreads: int) -> np.ndarray:
    """Each user's cohort period (int32): ``of_day`` of their first day offset, -1 for
    none (first day -1), looked up by all threads."""
    lut = np.concatenate([[-1], np.asarray(of_day)]).astype(np.int32)
    return _gather.take(np.ascontiguousarray(first_day, dtype=np.int32), lut, nthreads, 1)


def periods(ev: Events, kind: str, first: int, n_days: int):
    return period_map(kind, first, first + n_days - 1, ev.calendar.week_start)


def check_windows(values, key: str) -> np.ndarray:
    vals = list(values)
    if not vals or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in vals):
        raise ConfigError(f"{key}: expected a list of positive whole numbers of days, found {values!r}")
    return np.asarray(vals, dtype=np.int32)


def segment_actors(ev: Events, seg_codes: np.ndarray):
    """Dense (user, segment) actors: ``(actor per row, segment code per actor, count)``.

    When users x segments is small next to the log, actor = user * segments + segment (no
    hashing; some actors have no rows); otherwise the pairs that occur are numbered by a
    hash table.
    """
    n_users = max(ev.num_users, 1)
    n_seg = int(seg_codes.max()) + 1 if len(seg_codes) else 1
    product = n_users * n_seg
    if product < 2**31 - 1 and product <= max(4 * len(seg_codes), 1 << 22):
        actor = ev.user.astype(np.int64) * n_seg + seg_codes
        actor_seg = np.tile(np.arange(n_seg, dtype=np.int32), n_users)
        return np.ascontiguousarray(actor, dtype=np.int32), actor_seg, product
    keys = seg_codes.astype(np.int64) * n_users + ev.user
    index = _ingest.Int64Index(1 << 12)
    actor = index.encode(np.ascontiguousarray(keys))
    actor_seg = (index.keys() // n_users).astype(np.int32)
    return actor, actor_seg, len(index)


def labels_for(seg) -> list:
    return [ALL] + (list(seg.labels) if seg is not None else [])


def dates(day_numbers) -> pa.Array:
    return pa.array(np.asarray(day_numbers, dtype=np.int32), type=pa.date32())


def ratio(num, den) -> pa.Array:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / np.where(den == 0, 1.0, den)
    return pa.array(out, mask=(den == 0), type=pa.float64())


def grid(*sizes):
    """Index arrays of every combination of ``range(size)`` for each size (C order)."""
    if any(s == 0 for s in sizes):
        return [np.zeros(0, dtype=np.int64) for _ in sizes]
    mesh = np.meshgrid(*[np.arange(s, dtype=np.int64) for s in sizes], indexing="ij")
    return [m.ravel() for m in mesh]


def table(columns: dict, sort_keys) -> pa.Table:
    t = pa.table(columns)
    if t.num_rows:
        t = t.sort_by([(k, "ascending") for k in sort_keys])
    return t


def text(values, labels) -> pa.Array:
    lab = np.asarray(labels, dtype=object)
    return pa.array(lab[np.asarray(values, dtype=np.int64)] if len(values) else [], type=pa.string())


def names_key(names):
    return None if names is None else tuple(sorted(set(names)))


def user_days(ev: Events, first: int, names, nthreads: int, role: str = "events"):
    """CSR of each user's distinct qualifying days (cached per event filter on the Events,
    so metrics of one run that share a filter share the pass)."""
    from engage_core import _activity, _grouped

    cache = ev.__dict__.setdefault("_days_cache", {})
    key = ("user", first, names_key(names))
    base = shared_order(ev, first, nthreads) if key not in cache and names is None else None
    if base is not None:  # read off the users' time order (made for the run anyway)
        cache[key] = _grouped.days_of_sorted(base[0], base[2], nthreads)
    if key not in cache:
        mask = ev.event_mask(names, role)
        n_days = ev.last_day_number - first + 1
        cache[key] = _activity.actor_days(ev.user, ev.day, mask, ev.num_users, n_days,
                                          nthreads, first)
    return cache[key]


# Day bitmaps (n_days x n_users bits) serve the 'all' rows of the activity metrics and
# calendar retention while they take at most this many bytes and the users' sorted days
# are not already at hand.
DAY_BITMAP_BUDGET = 256 << 20


def user_day_bitmaps(ev: Events, names, first: int, n_days: int, nthreads: int,
                     role: str = "events", period_map=None, slots_ok: bool = False):
    """One bitmap of the users with a qualifying event per day of the axis (cached on the
    Events like ``user_days``), or None when the users' sorted days are already computed
    (another metric asked for them) or the bitmaps would take more than the budget.

    With ``period_map`` (a PeriodMap over the axis) the result is ``(bitmaps, period of
    each bitmap row)``: the day bitmaps when they are at hand, else one bitmap per period
    (cached too; a fraction of the memory).

    ``slots_ok``: the caller only counts users (never maps a bit to a user), so bitmaps
    indexed by user slot serve: while the users are not numbered (``Events.user_slots``),
    bits are set at slots and the numbering is not done for this metric."""
    cache = ev.__dict__.setdefault("_days_cache", {})
    nk = names_key(names)
    key = ("bitmaps", first, n_days, nk)
    pkey = None if period_map is None else ("period bitmaps", first, n_days, nk, period_map.kind)
    if slots_ok and key not in cache:
        for k in (("slot",) + key,) + ((("slot",) + pkey,) if pkey is not None else ()):
            if k in cache:  # made earlier, before the users were numbered
                return _with_periods(cache[k], k[1] == "period bitmaps", period_map)
        slots = ev.user_slots()
        if slots is not None:
            return _bitmaps(ev, slots[0], slots[1], names, role, first, n_days, nthreads,
                            period_map, cache, ("slot",) + key,
                            None if pkey is None else ("slot",) + pkey)
    if key not in cache and ("user", first, nk) in cache:
        return None  # the sorted days serve
    return _bitmaps(ev, ev.user, ev.num_users, names, role, first, n_days, nthreads,
                    period_map, cache, key, pkey)


def _with_periods(bitmaps, per_period: bool, period_map):
    """A user_day_bitmaps result: the bitmaps, with the period of each row when asked."""
    if period_map is None:
        return bitmaps
    if per_period:
        return bitmaps, np.arange(period_map.count, dtype=np.int32)
    return bitmaps, np.ascontiguousarray(period_map.of_day, dtype=np.int32)


def _bitmaps(ev, user, width, names, role, first, n_days, nthreads, period_map, cache, key,
             pkey):
    """user_day_bitmaps over ``user`` (numbers or slots below ``width``, or the RangeIndex
    whose slots they are, not numbered yet: see ``_activity.day_bitmaps``), cached at ``key``
    (day bitmaps) or ``pkey`` (period bitmaps)."""
    from engage_core import _activity

    if key not in cache and n_days * ((width + 63) // 64) * 8 > DAY_BITMAP_BUDGET:
        return None
    if pkey is not None and key not in cache:
        if pkey not in cache:
            cache[pkey] = _activity.day_bitmaps(
                user, ev.day, ev.event_mask(names, role), width, period_map.count,
                nthreads, first, np.ascontiguousarray(period_map.of_day, dtype=np.int32),
                _thread_days(ev, nthreads))
        return _with_periods(cache[pkey], True, period_map)
    if key not in cache:
        cache[key] = _activity.day_bitmaps(user, ev.day, ev.event_mask(names, role), width,
                                           n_days, nthreads, first, None,
                                           _thread_days(ev, nthreads))
    return _with_periods(cache[key], False, period_map)


def _thread_days(ev: Events, nthreads: int):
    """The least and greatest day of each thread's share of the rows, when prepare_events
    found them with this many threads (else None: day_bitmaps finds them)."""
    threads, bounds = getattr(ev, "_thread_days", (None, None))
    return bounds if threads == nthreads else None


def segment_days(ev: Events, first: int, names, breakdown: str, nthreads: int):
    """CSR of each (user, segment) actor's distinct qualifying days, and each actor's segment."""
    from engage_core import _activity

    cache = ev.__dict__.setdefault("_days_cache", {})
    key = ("segment", first, names_key(names), breakdown)
    if key not in cache:
        seg = ev.segment(breakdown)
        mask = ev.event_mask(names)
        actor, actor_seg, n_actors = segment_actors(ev, seg.codes)
        n_days = ev.last_day_number - first + 1
        offsets, days = _activity.actor_days(actor, ev.day, mask, n_actors, n_days, nthreads,
                                             first)
        cache[key] = (offsets, days, actor_seg)
    return cache[key]


# --- Helpers of the catalogue metrics (sessions, funnel, conversion, commerce, survey,
# --- engagement_score): actors per pass, time-ordered rows, (actor, period) runs.

def actor_passes(ev: Events, breakdown):
    """Yield ``(actor per row, n_actors, group per actor)``: users in group 0 ('all'), then,
    with a breakdown, (user, segment) actors in group 1 + segment code (activity metrics:
    a segment's rows see only that segment's events)."""
    yield ev.user, ev.num_users, np.zeros(ev.num_users, dtype=np.int32)
    seg = ev.segment(breakdown)
    if seg is not None:
        actor, actor_seg, n_actors = segment_actors(ev, seg.codes)
        yield actor, n_actors, (actor_seg + 1).astype(np.int32)


def sorted_rows(ev: Events, key, n_keys: int, mask, nthreads: int, first=None,
                copies: bool = False, payload=None):
    """CSR ``(offsets, rows)`` of each key's rows (``mask`` != 0) sorted by local day (when
    ``first`` is given) and time; ties keep input order. With ``copies``, also the rows'
    day offsets and times in that order: ``(offsets, rows, dayoff, ts)``, and with
    ``payload`` (int32 per row) its values in that order last."""
    from engage_core import _sequences

    key = np.ascontiguousarray(key, dtype=np.int32 if key.dtype == np.int32 else np.int64)
    if mask is not None and len(key) >= FEW_ROWS_FROM:
        sel = _gather.flatnonzero(np.asarray(mask).view(np.uint8), nthreads)
        if len(sel) * FEW_ROWS < len(key):
            return _sorted_selection(ev, key, sel, n_keys, nthreads, first, copies, payload)
    # the days relative to ``first`` and, for sorted copies, the times as the table's chunks:
    # no day-offset array and no joined copy of the times for this sort
    return _sequences.sort_rows(key, None if first is None else ev.day,
                                ev.ts_chunks() if copies else ev.ts, mask, int(n_keys),
                                nthreads, copies, 0 if first is None else first, payload)


# A selection of under 1 / FEW_ROWS of the rows (of at least FEW_ROWS_FROM) is listed and
# sorted on its own: the counting sort's passes then read its rows, not every row with
# its mask (the orders of 1M of 10M events: 102 -> 30 ms here).
FEW_ROWS = 8
FEW_ROWS_FROM = 1 << 16


def _sorted_selection(ev: Events, key, sel, n_keys, nthreads, first, copies, payload):
    """sorted_rows of the rows ``sel`` (ascending): their keys, days, times and payload
    taken first, sorted, and the sorted positions mapped back to rows (ties keep input
    order, as the positions in ``sel`` do)."""
    from engage_core import _sequences

    ts = ev.ts_chunks() if copies else _columns.Int64Chunks([ev.ts])
    narrow = len(key) < 2**31
    sel = np.asarray(sel, dtype=np.int64)
    # the rows themselves ride along as the payload when it is free (no gather after)
    carry = copies and payload is None and narrow
    pay = (sel.astype(np.int32) if carry else None if payload is None or not copies
           else _gather.take(sel, np.ascontiguousarray(payload, dtype=np.int32), nthreads))
    # the selection's keys, days and times gathered by all threads
    out = _sequences.sort_rows(_gather.take(sel, key, nthreads),
                               None if first is None else _gather.take(sel, ev.day, nthreads),
                               _gather.take_chunks(sel, ts, nthreads), None, int(n_keys),
                               nthreads, copies, 0 if first is None else first, pay)
    if carry:
        return (out[0], out[4]) + tuple(out[2:4])
    rows = sel[out[1]].astype(np.int32 if narrow else np.int64)
    return (out[0], rows) + tuple(out[2:])


def period_of_rows(ev: Events, pm, first: int) -> np.ndarray:
    """Each row's period number in ``pm`` (day axis starting at ``first``; cached on the
    Events: the metrics of a run mostly share a few period kinds)."""
    cache = ev.__dict__.setdefault("_period_cache", {})
    key = (pm.kind, first, len(pm.of_day), int(pm.starts[0]) if len(pm.starts) else None)
    if key not in cache:
        rows = _gather.take(ev.day, np.ascontiguousarray(pm.of_day, dtype=np.int32),
                            ev.threads, -first)
        rows.flags.writeable = False
        cache[key] = (rows, pm.of_day)  # sorted_records maps sorted days through of_day
    return cache[key][0]


def plan_user_order(ev: Events) -> None:
    """Tell the metrics to come that a run will sort every row by user, day and time
    (sessions, or an engagement score, on all events): the first metric that can read what
    it needs off that order makes it (each user's distinct days, each user's first row),
    and the later ones share it, instead of a pass of their own over the rows."""
    ev.__dict__["_user_order_planned"] = True


def user_order(ev: Events, first: int, nthreads: int, make: bool = True):
    """The users' rows sorted by day (from ``first``) and time, with copies of their day
    offsets, times and event codes: ``sorted_rows(..., copies=True, payload=event)``,
    cached on the Events; made when ``make`` (else None when not made yet)."""
    orders = ev.__dict__.setdefault("_user_order", {})
    if first not in orders and make:
        orders[first] = sorted_rows(ev, ev.user, ev.num_users, None, nthreads, first,
                                    copies=True, payload=ev.event)
    return orders.get(first)


def shared_order(ev: Events, first: int, nthreads: int):
    """``user_order`` when a metric made it already or the run plans it (plan_user_order:
    then made now), else None: what a metric that could do without it reads it from."""
    return user_order(ev, first, nthreads, make=ev.__dict__.get("_user_order_planned", False))


def sorted_records(ev: Events, actor, n_actors: int, mask, first: int, prow=None,
                   value=None, flags=None, nthreads: int = 1):
    """Each actor's selected rows sorted by (local day, time, row), as sorted copies
    ``(offsets, dayoff, ts, period, value, flags)`` (None for fields not given), so the
    kernels that follow read memory in order (numpy's gathers overlap their cache misses
    better than a kernel that jumps through row indices).

    For users (``actor is ev.user``) the order of all rows is kept on the Events once a
    metric has asked for all rows, with each row's event code alongside: a later metric's
    selection is then that order filtered by its mask (the same rows in the same order as
    sorting them anew) instead of another sort and another gather of the days and times,
    when the mask keeps over a quarter of the rows. An event filter's mask is read off the
    sorted codes (no gather), and event codes asked for as ``value`` come from them too."""
    if actor is ev.user:
        base = user_order(ev, first, nthreads, make=mask is None)
        # a selection of a few rows sorts faster on its own than the whole order filters
        if base is not None and (mask is None or 4 * np.count_nonzero(mask) > len(base[1])):
            offsets, rows, dayoff, ts = base[:4]
            codes = base[4] if len(base) > 4 else None
            lut = ev.mask_lut(mask) if codes is not None else None
            if mask is not None:
                keep = (lut[codes + 1] if lut is not None else np.asarray(mask)[rows]).view(bool)
                ends = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
                offsets, rows, dayoff, ts = ends[offsets], rows[keep], dayoff[keep], ts[keep]
                codes = None if codes is None else codes[keep]
            value = (codes if value is ev.event and codes is not None
                     else _take_rows(value, rows, nthreads))
            return (offsets, dayoff, ts, _sorted_periods(ev, prow, rows, dayoff, nthreads),
                    value, _take_rows(flags, rows, nthreads))
    offsets, rows, dayoff, ts = sorted_rows(ev, actor, n_actors, mask, nthreads, first,
                                            copies=True)
    return (offsets, dayoff, ts, _sorted_periods(ev, prow, rows, dayoff, nthreads),
            _take_rows(value, rows, nthreads), _take_rows(flags, rows, nthreads))


def _sorted_periods(ev: Events, prow, rows, dayoff, nthreads: int):
    """``prow[rows]``; for a ``period_of_rows`` array, read off the sorted day offsets
    through its periods by day (a small table) instead of gathered from the rows."""
    of_day = next((d for r, d in ev.__dict__.get("_period_cache", {}).values() if r is prow),
                  None)
    if of_day is None:
        return _take_rows(prow, rows, nthreads)
    return _gather.take(dayoff, np.ascontiguousarray(of_day, dtype=np.int32), nthreads)


def _take_rows(values, rows, nthreads: int = 1):
    """``values[rows]`` (None when ``values`` is None), by all threads for the types
    _gather.take handles."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.dtype in _TAKES and rows.dtype in (np.int32, np.int64):
        return _gather.take(rows, np.ascontiguousarray(values), nthreads)
    return np.ascontiguousarray(values[rows])


_TAKES = tuple(np.dtype(t) for t in (np.uint8, np.int32, np.int64, np.float64))


def actor_runs(ev: Events, actor, n_actors: int, mask, prow, nthreads: int, first: int,
               value=None, flags=None, value_lut=None, last: bool = False) -> dict:
    """The (actor, period) runs of the rows selected by ``mask`` (see _sequences.runs;
    each run's latest value ``"last"`` only when asked for).

    With ``value_lut``, ``value`` holds small codes (say, event codes, -1 included) and each
    row's value is ``value_lut[code]`` (code -1: the last entry), looked up after the rows
    are sorted: one float per selected row instead of one per row and a copy."""
    from engage_core import _sequences

    if mask is not None and not _gather.any_nonzero(np.ascontiguousarray(mask).view(np.uint8)):
        # no row selected (say, no such event): no run
        return {"actor": np.zeros(0, np.int32), "period": np.zeros(0, np.int32),
                "rows": np.zeros(0, np.int64), "sum": np.zeros(0), "flags": np.zeros(0, np.uint8),
                "first": np.zeros(0, bool), **({"last": np.zeros(0)} if last else {})}
    offsets, _, ts, period, value, flags = sorted_records(ev, actor, n_actors, mask, first, prow,
                                                          value, flags, nthreads)
    n = len(ts)
    given = value is not None
    exact = False  # every run's sum exact in any order
    if value_lut is not None and given:
        lut = np.asarray(value_lut, dtype=np.float64)
        exact = adds_exactly(lut, n)
        # code -1 (no event name) takes the last entry: shifted by one, it comes first
        value = _gather.take(np.ascontiguousarray(value, dtype=np.int32),
                             np.concatenate([lut[-1:], lut[:-1]]), nthreads, 1)
    value = np.zeros(n, dtype=np.float64) if value is None else value.astype(np.float64, copy=False)
    flags = np.zeros(n, dtype=np.uint8) if flags is None else flags.astype(np.uint8, copy=False)
    out = _sequences.runs(offsets, period, ts, value, flags, nthreads, last)
    if given and not exact and len(out["rows"]):
        # runs lie back to back in the sorted rows; re-add each run's values in a canonical
        # order (rows at the same instant would otherwise be added in input order)
        rows = np.asarray(out["rows"], dtype=np.int64)
        out["sum"] = _sequences.segment_sums(np.concatenate([[0], np.cumsum(rows)]), value,
                                             nthreads)
    return out


def adds_exactly(values: np.ndarray, n_terms: int, nthreads: int = 1) -> bool:
    """Whether any ``n_terms`` of ``values`` add up exactly in any order: whole numbers
    whose partial sums stay under 2**53 (bounded by the largest magnitude times the number
    of terms, taken under 2**52), so no canonical order is needed."""
    whole, top = _gather.whole_max(np.ascontiguousarray(values, dtype=np.float64), nthreads)
    return bool(whole and top * max(n_terms, 1) < 2.0**52)


def tally(index, size: int, weights=None, nthreads: int = 1) -> np.ndarray:
    """Sum of ``weights`` (or a count) per index.

    Floating-point sums depend on the order of the terms, and that order here comes from
    dense user numbers, which follow the input's row order. So fractional weights are added
    per index in ascending order of value: the result depends only on the multiset of terms
    of each index, the same whatever the row order, the thread count or the record batches
    (an incremental run that reads the events back in another order writes the same bits).
    Whole-number weights of moderate size are exact in any order and skip the sort; they
    and counts are split between threads (_gather.counts)."""
    index = np.asarray(index)
    if index.dtype not in (np.int32, np.int64):
        index = index.astype(np.int64)
    index = np.ascontiguousarray(index)
    if weights is None:
        return _gather.counts(index, int(size), None, nthreads)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if len(w) and not adds_exactly(w, len(w), nthreads):
        from engage_core import _sequences

        # grouped by index (a counting sort), then each group sorted and added in
        # ascending order (a radix sort per group, the groups split between threads; 564k
        # order sums into 6 months: 58 -> 4 ms here, against numpy's argsort of them all)
        offsets, grouped = _sequences.group_values(index.astype(np.int64, copy=False),
                                                   int(size), w, nthreads)
        return _sequences.segment_sums(offsets, grouped, nthreads)
    return _gather.counts(index, int(size), w, nthreads)


def run_index(group, r: dict, n_periods: int) -> np.ndarray:
    """Each run's cell ``group[actor] * n_periods + period`` (``r``: actor_runs' runs); the
    runs' periods themselves when every group is 0 (no breakdown: no gather of a million
    zeros)."""
    if not group.any():
        return r["period"]
    return group[r["actor"]].astype(np.int64) * n_periods + r["period"]


def event_names(names, key: str):
    """A list of event names from a name, a list of names, or None (any event)."""
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
        return list(names)
    raise ConfigError(f"{key}: expected an event name or a list of event names, found {names!r}")


def numeric_column(ev: Events, name: str, role: str):
    """``(values, valid)`` of a numeric column prepared with ``prepare_events(numeric=...)``."""
    from engage_core.errors import SchemaError

    if name not in ev.numeric:
        raise SchemaError(
            f"{role}: column {name!r} was not prepared; pass numeric=[{name!r}] to "
            f"prepare_events (prepared numeric columns: {sorted(ev.numeric) or 'none'})")
    return ev.numeric[name]


def report_rejected(rejected, metric: str, ev: Events, reasons) -> None:
    """Append ``pa.Table(metric, reason, row)`` of rejected rows to the list ``rejected``.

    ``reasons`` is a list of ``(reason, boolean mask over kept rows, or the positions of
    the rejected kept rows)``; rows come out in input order."""
    if rejected is None:
        return
    rows, why = [], []
    for reason, mask in reasons:
        idx = np.nonzero(mask)[0] if np.asarray(mask).dtype == bool else np.asarray(mask)
        rows.append(ev.source_rows(idx))
        why.extend([reason] * len(idx))
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    order = np.argsort(row, kind="stable")
    rejected.append(pa.table({
        "metric": pa.array([metric] * len(row), type=pa.string()),
        "reason": pa.array(np.asarray(why, dtype=object)[order] if len(row) else [], type=pa.string()),
        "row": pa.array(row[order], type=pa.int64()),
    }))

