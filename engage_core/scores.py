"""Engagement scores and tiers. METRICS.md section 4: engagement_score (``score_tiers``) and
the per-user table ``user_scores``.

A user's score in a period is the sum, over their qualifying events in the period, of the
event's weight (``weights[name]``, else ``default_weight``). Only users with a qualifying
event in the period get a score. Tiers are ordered highest threshold first; a user falls
in the first tier whose threshold the score reaches, or ``'(none)'`` if none.
A breakdown segment's rows see only that segment's events (an activity metric).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engage_core import _common as c, _gather
from engage_core.errors import ConfigError
from engage_core.events import NONE_SEGMENT, Events

DEFAULT_TIERS = {"power": 50, "core": 10, "casual": 0}
NO_TIER = NONE_SEGMENT


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_tiers(tiers):
    tiers = DEFAULT_TIERS if tiers is None else tiers
    ok = isinstance(tiers, dict) and len(tiers) > 0 and all(
        isinstance(k, str) and k and k != NO_TIER and _number(v) for k, v in tiers.items())
    th = list(tiers.values()) if ok else []
    if not ok or any(a < b for a, b in zip(th, th[1:])):
        raise ConfigError(
            f"tiers: expected tier names mapped to thresholds, highest first, such as "
            f"{DEFAULT_TIERS}, found {tiers!r}")
    return list(tiers), np.asarray(th, dtype=np.float64)


def _event_weights(ev: Events, weights, default_weight):
    """``(codes, lut)``: each row's event code and the weight of each code (entry -1, the
    last: rows without an event name), or, without an event column, ``(None, None)``."""
    w = _row_weights(ev, weights, default_weight, per_row=False)
    return (None, None) if w is None else (ev.event, w)


def _row_weights(ev: Events, weights, default_weight, per_row: bool = True):
    if not _number(default_weight):
        raise ConfigError(f"default_weight: expected a finite number, found {default_weight!r}")
    weights = {} if weights is None else weights
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and _number(v) for k, v in weights.items()):
        raise ConfigError(f"weights: expected event names mapped to numbers, found {weights!r}")
    if ev.event is None:
        if weights:
            ev.event_mask(list(weights), "weights")  # raises: no event column
        return np.full(ev.num_rows, float(default_weight)) if per_row else None
    lut = np.full(len(ev.event_names) + 1, float(default_weight))  # last: no event name
    for code, name in enumerate(ev.event_names):
        if name in weights:
            lut[code] = float(weights[name])
    return lut[ev.event] if per_row else lut


def _scored_runs(ev, weights, default_weight, tiers, events, period, breakdown, end_day,
                 threads):
    """Axes and, per pass, (runs, group per actor, tier per run)."""
    nthreads = c.threads_or_default(threads)
    names, th = _check_tiers(tiers)
    codes, lut = _event_weights(ev, weights, default_weight)
    value = codes if lut is not None else _row_weights(ev, weights, default_weight)
    events = c.event_names(events, "events")
    first, n_days = c.day_range(ev, end_day)
    pm = c.periods(ev, period, first if n_days else 0, max(n_days, 1))
    passes = []
    if n_days:
        mask = ev.event_mask(events)  # None: every row
        prow = c.period_of_rows(ev, pm, first)
        for actor, n_actors, group in c.actor_passes(ev, breakdown):
            r = c.actor_runs(ev, actor, n_actors, mask, prow, nthreads, first, value=value,
                             value_lut=lut)
            passes.append((r, group))  # tiers: _tiers, by the caller
    return names, th, pm, (pm.count if n_days else 0), passes


def _tiers(r: dict, th, nthreads: int, cell=None) -> np.ndarray:
    """Each run's tier (thresholds are non-increasing: the first reached is after those
    above the score, one comparison per tier, where numpy's search of millions of scores
    in a few thresholds took 15 ms; a NaN score reaches none), or with ``cell`` its tally
    cell ``cell * (len(th) + 1) + tier`` (_gather.tiers)."""
    return _gather.tiers(np.ascontiguousarray(r["sum"], dtype=np.float64), th, nthreads, cell)


def engagement_score(ev: Events, *, weights=None, default_weight=1.0, tiers=None, events=None,
                     period="week", breakdown=None, end_day=None, threads=None) -> pa.Table:
    """Users and their average score per tier, for every period from the first period of
    data to ``end_day``'s, every segment and every tier (``'(none)'`` only when some user
    reaches no tier).

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, 6, h) for h in (1, 2, 3)],
    ...               "event": ["buy", "view", "view"]})
    >>> out = engagement_score(prepare_events(t), weights={"buy": 10}, tiers={"core": 5, "casual": 1})
    >>> [(r["tier"], r["users"], r["avg_score"]) for r in out.to_pylist()]
    [('casual', 1, 1.0), ('core', 1, 11.0)]
    """
    names, th, pm, n_periods, passes = _scored_runs(ev, weights, default_weight, tiers,
                                                    events, period, breakdown, end_day, threads)
    labels = c.labels_for(ev.segment(breakdown))
    nthreads = c.threads_or_default(threads)
    # cells for every tier and '(none)' (the last), which is dropped when nobody is in it
    n_all = len(names) + 1
    size = len(labels) * n_periods * n_all
    users = np.zeros(size, dtype=np.int64)
    total = np.zeros(size, dtype=np.float64)
    for r, group in passes:
        idx = _tiers(r, th, nthreads, c.run_index(group, r, n_periods))
        users += c.tally(idx, size, None, nthreads)
        total += c.tally(idx, size, r["sum"], nthreads)
    has_none = bool(users[n_all - 1::n_all].any())
    tier_labels = names + ([NO_TIER] if has_none else [])
    n_t = len(tier_labels)
    users = users.reshape(-1, n_all)[:, :n_t].ravel()
    total = total.reshape(-1, n_all)[:, :n_t].ravel()
    gi, pi, ti = c.grid(len(labels), n_periods, n_t)
    n = len(gi)
    return c.table({
        "period_start": c.dates(pm.starts[pi] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "tier": c.text(ti, tier_labels),
        "users": pa.array(users, type=pa.int64()),
        "avg_score": c.ratio(total, users),
    }, ["period_start", "period", "segment", "tier"])


def user_scores(ev: Events, *, weights=None, default_weight=1.0, tiers=None, events=None,
                period="week", end_day=None, threads=None) -> pa.Table:
    """Each user's score and tier in every period where they had a qualifying event."""
    names, th, pm, _, passes = _scored_runs(ev, weights, default_weight, tiers, events,
                                            period, None, end_day, threads)
    ids = ev.user_ids()
    if passes:
        r, _ = passes[0]
        tier = _tiers(r, th, c.threads_or_default(threads))
        order = _by_period_then_id(r["actor"], r["period"], ids)
        user_id = ids.take(pa.array(r["actor"][order]))
        starts, scores, tier = pm.starts[r["period"][order]], r["sum"][order], tier[order]
    else:
        user_id = ids.slice(0, 0)
        tier, starts, scores = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    n = len(starts)
    tier_text = pa.DictionaryArray.from_arrays(pa.array(np.asarray(tier, dtype=np.int32)),
                                               pa.array(names + [NO_TIER], type=pa.string()))
    return pa.table({
        "period_start": c.dates(starts),
        "period": pa.repeat(pa.scalar(period, type=pa.string()), n),
        "user_id": user_id,
        "score": pa.array(scores, type=pa.float64()),
        "tier": tier_text.cast(pa.string()),
    })


def _by_period_then_id(actor, period, ids) -> np.ndarray:
    """Order of runs (grouped by actor) by (period, original user id), without a general
    sort: the runs are laid out actor by actor in id order, then stably sorted by period
    (a radix sort on small integers)."""
    n_users = len(ids)
    run_start = np.zeros(n_users + 1, dtype=np.int64)  # actor is non-decreasing
    np.cumsum(np.bincount(actor, minlength=n_users), out=run_start[1:])
    by_id = np.asarray(pc.sort_indices(ids), dtype=np.int64)
    counts = (run_start[1:] - run_start[:-1])[by_id]
    ends = np.cumsum(counts)
    idx = np.repeat(run_start[:-1][by_id] - (ends - counts), counts) + np.arange(ends[-1] if n_users else 0)
    small = period[idx].astype(np.int16 if period.max(initial=0) < 2**15 else np.int32)
    return idx[np.argsort(small, kind="stable")]
