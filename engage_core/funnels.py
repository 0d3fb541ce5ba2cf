"""Ordered conversion funnels. METRICS.md section 4: funnel.

Steps are event names ``[e1..en]`` (a name may repeat). From a step-1 event at t1 a user
reaches step k if there are distinct events of names e1..ek with t1 <= t2 <= ... <= tk and
tk - t1 <= the conversion window; events sharing a timestamp may be used in any order.
A user enters the funnel in every period holding one of their step-1 events; their step
there is the best reached from any of those step-1 events (later steps may fall after the
period), and their segment is the one on their first step-1 event of the period (a cohort
metric: ties at that instant go to the smallest segment value).

Complexity: a counting sort of the step events by (user, step name) and a per-list sort
(skipped when already in time order), then per user O(m * n * log L) for m distinct step-1
timestamps, n steps and lists of at most L events (see _funnels.pyx): no quadratic blow-up
for users with thousands of events.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from engage_core import _funnels, _grouped
from engage_core import _common as c
from engage_core.errors import ConfigError
from engage_core.events import Events

US = 1_000_000


def _check(name, steps, conversion_window):
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name: expected a non-empty funnel name, found {name!r}")
    if (not isinstance(steps, (list, tuple)) or len(steps) < 1
            or not all(isinstance(s, str) for s in steps)):
        raise ConfigError(f"steps: expected a list of event names, found {steps!r}")
    w = conversion_window
    if (not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w)
            or w < 0):
        raise ConfigError(f"conversion_window: expected a number of seconds >= 0, found {w!r}")
    return list(steps), int(round(w * US)), math.ceil(w / 86400)


def funnel(ev: Events, *, name, steps, conversion_window=7 * 86400, period="week",
           breakdown=None, end_day=None, threads=None) -> pa.Table:
    """Users reaching each step of the funnel, per period of entry and segment.

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, 6, h) for h in (1, 2, 3)],
    ...               "event": ["view", "buy", "view"]})
    >>> out = funnel(prepare_events(t), name="f", steps=["view", "buy"])
    >>> [(r["step"], r["users"], r["conversion_from_start"]) for r in out.to_pylist()]
    [(1, 2, 1.0), (2, 1, 0.5)]
    """
    nthreads = c.threads_or_default(threads)
    steps, window_us, window_days = _check(name, steps, conversion_window)
    first, n_days = c.day_range(ev, end_day)
    seg = ev.segment(breakdown)
    labels = c.labels_for(seg)
    pm = c.periods(ev, period, first if n_days else 0, max(n_days, 1))
    n_steps = len(steps)
    if n_days == 0:
        hist = np.zeros((len(labels), 0, n_steps + 1), dtype=np.int64)
    else:
        ev.event_mask(steps, "steps")  # needs an event column
        slot_names = list(dict.fromkeys(steps))
        n_slots = len(slot_names)
        lut = np.full(len(ev.event_names) + 1, -1, dtype=np.int64)
        for code, ev_name in enumerate(ev.event_names):
            if ev_name in slot_names:
                lut[code + 1] = slot_names.index(ev_name)
        # each (user, slot)'s rows in time order, with their times and periods in that order:
        # read off the users' time order when the run has it, else sorted by that key
        base = c.shared_order(ev, first, nthreads)
        if base is not None and len(base) > 4 and base[1].dtype == np.int32:
            offsets, tsr, periods, rows = _grouped.split_by_slot(
                base[0], base[4], lut, n_slots, base[3], base[2],
                np.ascontiguousarray(pm.of_day, dtype=np.int32),
                None if seg is None else base[1], nthreads)
        else:
            wide = ev.num_users * n_slots >= 2**31
            key = _funnels.slot_keys(ev.user, ev.event, lut, n_slots,
                                     np.empty(ev.num_rows, np.int64 if wide else np.int32),
                                     nthreads)
            offsets, rows, _, tsr, periods = c.sorted_rows(
                ev, key, ev.num_users * n_slots, None, nthreads, copies=True,
                payload=c.period_of_rows(ev, pm, first))
            del key
        hist = _funnels.best_steps(
            offsets, tsr, periods,
            None if seg is None else np.ascontiguousarray(seg.codes[rows]),
            np.asarray([slot_names.index(s) for s in steps], dtype=np.int32), n_slots,
            ev.num_users, window_us, len(labels), pm.count, nthreads)
    # users reaching step k = users whose best step is >= k
    reach = np.cumsum(hist[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # [G, P, n_steps]
    gi, pi = np.nonzero(reach[:, :, 0] > 0)
    gi = np.repeat(gi, n_steps)
    pi = np.repeat(pi, n_steps)
    ki = np.tile(np.arange(n_steps), len(gi) // n_steps if n_steps else 0)
    users = reach[gi, pi, ki]
    entrants = reach[gi, pi, 0]
    previous = np.where(ki > 0, reach[gi, pi, np.maximum(ki - 1, 0)], users)
    last = first + n_days - 1
    n = len(gi)
    return c.table({
        "period_start": c.dates(pm.starts[pi] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "funnel": pa.array([name] * n, type=pa.string()),
        "step": pa.array((ki + 1).astype(np.int32), type=pa.int32()),
        "step_name": pa.array([steps[k] for k in ki], type=pa.string()),
        "users": pa.array(users, type=pa.int64()),
        "conversion_from_start": c.ratio(users, entrants),
        "conversion_from_previous": c.ratio(users, previous),
        "is_complete": pa.array(pm.ends()[pi] + window_days <= last if n else [], type=pa.bool_()),
    }, ["period_start", "period", "segment", "funnel", "step"])
