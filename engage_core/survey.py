"""Survey scores per period: NPS and CSAT. METRICS.md section 4: survey.

The latest response per user per period counts (among responses at the same instant, the
highest score). NPS takes whole scores 0..10: promoters 9-10, passives 7-8, detractors
0-6, ``score = 100 * (promoters - detractors) / responses``. CSAT takes whole scores 1..5:
satisfied 4-5, ``score = 100 * satisfied / responses``. Other scores are rejected rows:
``score_null``; ``score_out_of_range`` (outside the scale, or not finite);
``score_not_whole`` (inside the scale but with a fraction). Rejected rows never count.
A breakdown segment's rows see only that segment's responses (an activity metric).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engage_core import _gather
from engage_core import _common as c
from engage_core.errors import ConfigError
from engage_core.events import Events

SCALES = {"nps": (0, 10), "csat": (1, 5)}


def _responses(ev: Events, surveys, score: str, rejected):
    """Per configured survey: (kind, uint8 mask of accepted responses); reports the rest."""
    values, valid = c.numeric_column(ev, score, "score")
    out, reasons = [], []

    def over_rows(picked):  # a mask over all rows from positions
        mask = np.zeros(ev.num_rows, dtype=bool)
        mask[picked] = True
        return mask

    for kind, event in surveys:
        lo, hi = SCALES[kind]
        # only the survey's rows are checked (a few of the log, usually)
        idx = _gather.flatnonzero(ev.event_mask([event], f"{kind}_event"), ev.threads)
        v, present = values[idx], valid[idx] != 0
        finite = np.isfinite(v)
        with np.errstate(invalid="ignore"):
            in_range = finite & (v >= lo) & (v <= hi)
        whole = in_range & (np.floor(np.where(finite, v, 0.0)) == v)
        reasons += [("score_null", idx[~present]),  # positions: no mask over every row
                    ("score_out_of_range", idx[present & ~in_range]),
                    ("score_not_whole", idx[present & in_range & ~whole])]
        out.append((kind, over_rows(idx[present & whole]).view(np.uint8)))
    c.report_rejected(rejected, "survey", ev, reasons)
    return out, values


def survey(ev: Events, *, nps_event="nps_response", csat_event="csat_response", score="score",
           period="month", breakdown=None, end_day=None, rejected=None, threads=None) -> pa.Table:
    """Responses and NPS / CSAT counts and scores for every period from the first period of
    data to ``end_day``'s, every segment and each configured survey (``None`` disables one).

    >>> import pyarrow as pa, datetime as dt
    >>> from engage_core import prepare_events
    >>> t = pa.table({"user_id": [1, 2, 3], "ts": [dt.datetime(2025, 1, d) for d in (1, 2, 3)],
    ...               "event": ["nps_response"] * 3, "score": [10, 8, 3]})
    >>> r = survey(prepare_events(t, numeric=["score"]), csat_event=None).to_pylist()[0]
    >>> r["responses"], r["promoters"], r["detractors"], r["score"]
    (3, 1, 1, 0.0)
    """
    nthreads = c.threads_or_default(threads)
    surveys = []
    for kind, event in (("nps", nps_event), ("csat", csat_event)):
        if event is None:
            continue
        if not isinstance(event, str) or not event:
            raise ConfigError(f"{kind}_event: expected an event name or None, found {event!r}")
        surveys.append((kind, event))
    if not surveys:
        raise ConfigError("survey: nps_event and csat_event are both None; configure at least one")
    if len(surveys) == 2 and nps_event == csat_event:
        raise ConfigError(f"csat_event: {csat_event!r} is also the nps_event; use two event names")
    masks, values = _responses(ev, surveys, score, rejected)
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(breakdown))
    pm = c.periods(ev, period, first if n_days else 0, max(n_days, 1))
    n_periods = pm.count if n_days else 0
    size = len(labels) * n_periods
    cols = {k: [] for k in ("gi", "pi", "si", "resp", "a", "b", "d", "sat")}
    prow = c.period_of_rows(ev, pm, first) if n_days else None
    for si, (kind, mask) in enumerate(masks):
        resp, a, b, d = (np.zeros(size, dtype=np.int64) for _ in range(4))
        for actor, n_actors, group in (c.actor_passes(ev, breakdown) if n_days else ()):
            r = c.actor_runs(ev, actor, n_actors, mask, prow, nthreads, first, value=values,
                             last=True)
            idx = c.run_index(group, r, n_periods)
            last = r["last"]
            resp += c.tally(idx, size, None, nthreads)
            if kind == "nps":
                a += c.tally(idx[last >= 9], size)
                b += c.tally(idx[(last >= 7) & (last <= 8)], size)
                d += c.tally(idx[last <= 6], size)
            else:
                a += c.tally(idx[last >= 4], size)
        gi, pi = c.grid(len(labels), n_periods)
        cols["gi"].append(gi)
        cols["pi"].append(pi)
        cols["si"].append(np.full(len(gi), si))
        cols["resp"].append(resp)
        for key, arr in (("a", a), ("b", b), ("d", d)):
            cols[key].append(arr)
        cols["sat"].append(np.full(len(gi), kind == "csat"))
    gi, pi, si, resp, a, b, d, csat = (np.concatenate(cols[k]) for k in
                                       ("gi", "pi", "si", "resp", "a", "b", "d", "sat"))
    n = len(gi)
    points = np.where(csat, a, a - d)
    return c.table({
        "period_start": c.dates(pm.starts[pi] if n else []),
        "period": pa.array([period] * n, type=pa.string()),
        "segment": c.text(gi, labels),
        "survey": c.text(si, [k for k, _ in surveys]),
        "responses": pa.array(resp, type=pa.int64()),
        "promoters": pa.array(a, mask=csat, type=pa.int64()),
        "passives": pa.array(b, mask=csat, type=pa.int64()),
        "detractors": pa.array(d, mask=csat, type=pa.int64()),
        "satisfied": pa.array(a, mask=~csat, type=pa.int64()),
        "score": c.ratio(100.0 * points, resp),
    }, ["period_start", "period", "segment", "survey"])
