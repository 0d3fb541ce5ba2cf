"""Sessions per local day. METRICS.md section 4: sessions (``{prefix}sessions_daily``).

A user's qualifying events, sorted by time, form one session while consecutive events are
at most ``session_gap`` seconds apart (in elapsed time, so DST changes do not stretch or
shrink gaps) and on the same local day: a local midnight always starts a new session.
A session's duration is its last event's time minus its first, in seconds.

A breakdown segment's rows are computed over only that segment's events (an activity
metric): sessions are rebuilt from the (user, segment) actor's events.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _sequences, _sessions
from engage_core import _common as c
from engage_core.errors import ConfigError
from engage_core.events import Events

US = 1_000_000


def _check_gap(session_gap) -> int:
    ok = isinstance(session_gap, (int, float)) and not isinstance(session_gap, bool)
    if not ok or not np.isfinite(session_gap) or session_gap < 0:
        raise ConfigError(f"session_gap: expected a number of seconds >= 0, found {session_gap!r}")
    return int(round(session_gap * US))


def sessions(ev: Events, *, session_gap=1800, events=None, breakdown=None, end_day=None,
             threads=None) -> pa.Table:
    """Sessions, users, sessions per user, average and median duration (seconds) and events
    per session, for every day from the first day of data to ``end_day`` and every segment.

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 1, 1], "ts": [dt.datetime(2025, 1, 1, 9, m) for m in (0, 10, 50)]})
    >>> r = sessions(prepare_events(t, event=None)).to_pylist()[0]
    >>> r["sessions"], r["users"], r["avg_session_seconds"], r["events_per_session"]
    (2, 1, 300.0, 1.5)
    """
    nthreads = c.threads_or_default(threads)
    gap_us = _check_gap(session_gap)
    events = c.event_names(events, "events")
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    n_groups = len(labels)
    acc = np.zeros((4, n_groups, n_days), dtype=np.int64)
    medians = np.full(n_groups * n_days, np.nan)
    if n_days:
        mask = ev.event_mask(events)
        keys, durs = [], []
        for actor, n_actors, group in c.actor_passes(ev, breakdown):
            offsets, dayoff, ts, _, _, _ = c.sorted_records(ev, actor, n_actors, mask, first,
                                                            nthreads=nthreads)
            part, k, d = _sessions.session_stats(offsets, dayoff, ts, group, n_groups,
                                                 n_days, gap_us, nthreads)
            acc += part
            keys.append(k)
            durs.append(d)
        one = len(keys) == 1  # no breakdown: no joined copy
        medians = _sequences.bucket_medians(keys[0] if one else np.concatenate(keys),
                                            durs[0] if one else np.concatenate(durs),
                                            n_groups * n_days, nthreads)
    gi, di = c.grid(n_groups, n_days)
    n_sess, users, n_events, dur = (acc[k].ravel() for k in range(4))
    seconds = dur / US
    return c.table({
        "day": c.dates(first + di),
        "segment": c.text(gi, labels),
        "sessions": pa.array(n_sess, type=pa.int64()),
        "users": pa.array(users, type=pa.int64()),
        "sessions_per_user": c.ratio(n_sess, users),
        "avg_session_seconds": c.ratio(seconds, n_sess),
        "median_session_seconds": pa.array(medians / US, mask=np.isnan(medians), type=pa.float64()),
        "events_per_session": c.ratio(n_events, n_sess),
    }, ["day", "segment"])
