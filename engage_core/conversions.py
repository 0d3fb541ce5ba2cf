"""Named conversion ratios of distinct users per period. METRICS.md section 4: conversion.

``denominator_users`` = users with a denominator event in the period; ``numerator_users``
= those of them with a numerator event in the same period; ``rate`` = their ratio (email
open and click rates, upsell ratio, reward redemption, programme participation).
A breakdown segment's rows see only that segment's events (an activity metric).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _gather
from engage_core import _common as c
from engage_core.errors import ConfigError
from engage_core.events import Events


def _flags(ev: Events, den_names, num_names, nthreads: int):
    """Per row: 1 for a denominator event, 2 for a numerator event, 3 for both, and the
    mask of rows with either (uint8); (None, None) when no row has either. Looked up per
    event code by all threads, not combined from two masks row by row."""
    dmask = ev.event_mask(den_names, "denominator")  # (checks there is an event column)
    nmask = ev.event_mask(num_names, "numerator")
    if ev.event is None:  # neither names a filter: every row is both
        return np.full(ev.num_rows, 3, dtype=np.uint8), np.ones(ev.num_rows, dtype=np.uint8)
    every = np.ones(len(ev.event_names) + 1, dtype=np.uint8)
    lut = ((every if dmask is None else ev.mask_lut(dmask))
           | ((every if nmask is None else ev.mask_lut(nmask)) << 1)).astype(np.uint8)
    if not lut.any():
        return None, None
    return (_gather.take(ev.event, lut, nthreads, 1),
            _gather.take(ev.event, (lut > 0).astype(np.uint8), nthreads, 1))


def conversion(ev: Events, *, name, denominator, numerator, period="week", breakdown=None,
               end_day=None, threads=None) -> pa.Table:
    """Denominator users, numerator users and their rate, for every period from the first
    period of data to ``end_day``'s and every segment.

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 2], "ts": [dt.datetime(2025, 1, 6, h) for h in (1, 2, 3)],
    ...               "event": ["email_open", "email_click", "email_open"]})
    >>> r = conversion(prepare_events(t), name="ctr", denominator="email_open",
    ...                numerator="email_click").to_pylist()[0]
    >>> r["denominator_users"], r["numerator_users"], r["rate"]
    (2, 1, 0.5)
    """
    nthreads = c.threads_or_default(threads)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name: expected a non-empty conversion name, found {name!r}")
    den_names = c.event_names(denominator, "denominator")
    num_names = c.event_names(numerator, "numerator")
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    n_groups = len(labels)
    pm = c.periods(ev, period, first if n_days else 0, max(n_days, 1))
    n_periods = pm.count if n_days else 0
    size = n_groups * n_periods
    den = np.zeros(size, dtype=np.int64)
    num = np.zeros(size, dtype=np.int64)
    if n_days:
        flags, mask = _flags(ev, den_names, num_names, nthreads)
        prow = c.period_of_rows(ev, pm, first)
        for actor, n_actors, group in (c.actor_passes(ev, breakdown) if mask is not None else ()):
            r = c.actor_runs(ev, actor, n_actors, mask, prow, nthreads, first, flags=flags)
            idx = c.run_index(group, r, n_periods)
            den += c.tally(idx[(r["flags"] & 1) > 0], size, None, nthreads)
            num += c.tally(idx[r["flags"] == 3], size, None, nthreads)
    gi, pi = c.grid(n_groups, n_periods)
    n = len(gi)
    return c.table({
        "period_start": c.dates(pm.starts[pi] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "name": pa.array([name] * n, type=pa.string()),
        "denominator_users": pa.array(den, type=pa.int64()),
        "numerator_users": pa.array(num, type=pa.int64()),
        "rate": c.ratio(num, den),
    }, ["period_start", "period", "segment", "name"])
