"""What one shard (all the events of a subset of the users) contributes to every table.

Runs on a Spark executor, inside ``mapInArrow``: the shard's rows are prepared with
:func:`engage_plugin.compute.prepare`, on the WHOLE log's day axis (``axis_first_day`` and
``end_day`` of the log, so periods and rows line up across shards), and turned into
partial tables that :mod:`engage_plugin.spark.combine` adds up exactly:

- the tables whose columns are counts of users (or ratios of such counts) come from the
  engine's own functions (:func:`engage_plugin.compute.compute_metrics`): a user's events
  are all in one shard, so a distinct count over the log is the sum of the shards' counts;
- sessions ship their counts, the microseconds of duration and every session's duration
  (the median needs them), as ``(day, segment, duration, sessions)``;
- commerce, cohort_revenue and score_tiers ship counts and the terms of their sums of money
  or score (``(key..., value, count)``): the engine adds fractional terms in ascending
  order (``_common.tally``), which only the whole multiset of terms reproduces bit for bit.
"""

from __future__ import annotations

import importlib

import numpy as np
import pyarrow as pa

from engage_core import _common as c
from engage_core import _sequences, _sessions
from engage_core import scores as _scores
from engage_core.sessions import _check_gap
from engage_plugin.compute import compute_metrics, prepare

# engage_core's package namespace holds the functions `commerce`, not the module
_commerce = importlib.import_module("engage_core.commerce")

#: families whose partials are the engine's tables as they are
ENGINE_FAMILIES = ("active_users", "engagement_daily", "stickiness", "retention", "lifecycle",
                   "first_week", "funnels", "conversions", "survey")


class _NoTimer:
    def __init__(self, name):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _l(events):
    return None if events is None else list(events)


def _text(codes, labels) -> pa.Array:
    return c.text(np.asarray(codes, dtype=np.int64), labels)


def _terms(cols: dict, value: np.ndarray) -> pa.Table:
    """``cols`` (key columns as int64 numpy arrays) plus ``value``, as distinct
    ``(key..., value)`` rows with their multiplicity ``n``."""
    names = list(cols)
    if len(value) == 0:
        out = {k: np.zeros(0, np.int64) for k in names}
        return pa.table({**out, "value": pa.array([], pa.float64()), "n": pa.array([], pa.int64())})
    rec = np.empty(len(value), dtype=[(k, np.int64) for k in names] + [("value", np.float64)])
    for k in names:
        rec[k] = cols[k]
    rec["value"] = value
    uniq, counts = np.unique(rec, return_counts=True)
    return pa.table({**{k: uniq[k] for k in names}, "value": uniq["value"],
                     "n": counts.astype(np.int64)})


def _sessions_partials(ev, o, end_day) -> dict:
    """Counts per (day, segment) and each session's duration (as in engage_core.sessions)."""
    nthreads = c.threads_or_default(None)
    gap_us = _check_gap(o.session_gap)
    events = c.event_names(_l(o.events), "events")
    first, n_days = c.day_range(ev, end_day)
    labels = c.labels_for(ev.segment(o.breakdown))
    n_groups = len(labels)
    acc = np.zeros((4, n_groups, n_days), dtype=np.int64)
    keys, durs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    mask = ev.event_mask(events)
    for actor, n_actors, group in c.actor_passes(ev, o.breakdown):
        offsets, dayoff, ts, _, _, _ = c.sorted_records(ev, actor, n_actors, mask, first,
                                                        nthreads=nthreads)
        part, k, d = _sessions.session_stats(offsets, dayoff, ts, group, n_groups, n_days,
                                             gap_us, nthreads)
        acc += part
        keys.append(np.asarray(k, np.int64))
        durs.append(np.asarray(d, np.int64))
    gi, di = c.grid(n_groups, n_days)
    counts = pa.table({"day": c.dates(first + di), "segment": _text(gi, labels),
                       **{name: pa.array(acc[i].ravel(), pa.int64()) for i, name in
                          enumerate(("sessions", "users", "events", "duration_us"))}})
    key = np.concatenate(keys)
    t = _terms({"key": key}, np.concatenate(durs).astype(np.float64))
    kk = t["key"].to_numpy()
    durations = pa.table({"day": c.dates(first + kk % max(n_days, 1)),
                          "segment": _text(kk // max(n_days, 1), labels),
                          "duration_us": t["value"].cast(pa.int64()), "n": t["n"]})
    return {"sessions_daily": counts, "sessions_durations": durations}


def _commerce_partials(ev, o, revenue, period, end_day, rejected) -> dict:
    """Per (period, segment): customers, orders, repeat and returning customers, and the
    revenue terms (each customer's revenue in the period)."""
    nthreads = c.threads_or_default(None)
    accepted, values = _commerce._orders(ev, list(o.purchase_events), revenue, "commerce",
                                         rejected)
    first, n_days, seg, labels, pm, n_periods = _commerce._axes(ev, period, o.breakdown, end_day)
    size = len(labels) * n_periods
    acc = np.zeros((4, size), dtype=np.int64)
    gs, ps, vs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    prow = c.period_of_rows(ev, pm, first)
    for actor, n_actors, group in c.actor_passes(ev, o.breakdown):
        r = _commerce._order_runs(ev, accepted, actor, n_actors, prow, pm, first, values, nthreads)
        g = group[r["actor"]].astype(np.int64)
        idx = g * n_periods + r["period"]
        acc[0] += np.bincount(idx, minlength=size)
        acc[1] += np.bincount(idx, weights=r["rows"], minlength=size).astype(np.int64)
        acc[2] += np.bincount(idx[r["rows"] >= 2], minlength=size)
        acc[3] += np.bincount(idx[~r["first"]], minlength=size)
        gs.append(g)
        ps.append(r["period"].astype(np.int64))
        vs.append(r["sum"])
    gi, pi = c.grid(len(labels), n_periods)
    counts = pa.table({"period_start": c.dates(pm.starts[pi]), "period": [period] * len(gi),
                       "segment": _text(gi, labels),
                       **{k: pa.array(acc[i], pa.int64()) for i, k in enumerate(
                           ("customers", "orders", "repeat_customers", "returning_customers"))}})
    t = _terms({"g": np.concatenate(gs), "p": np.concatenate(ps)}, np.concatenate(vs))
    terms = pa.table({"period_start": c.dates(pm.starts[t["p"].to_numpy()]),
                      "period": [period] * t.num_rows,
                      "segment": _text(t["g"].to_numpy(), labels), "value": t["value"],
                      "n": t["n"]})
    return {"commerce": counts, "commerce_terms": terms}


def _cohort_revenue_partials(ev, o, revenue, period, end_day, rejected) -> dict:
    """The engine's table (counts; its revenue columns are recomputed from the terms) and
    the revenue terms per (cohort, segment, offset): each customer's revenue in the period."""
    from engage_core import _cohorts

    nthreads = c.threads_or_default(None)
    table = _engine_cohort_revenue(ev, o, revenue, period, end_day, rejected)
    accepted, values = _commerce._orders(ev, list(o.purchase_events), revenue, "cohort_revenue",
                                         None)
    mask = accepted["ok"]
    first, n_days, seg, labels, pm, n_periods = _commerce._axes(ev, period, o.breakdown, end_day)
    first_day, first_seg, _ = _cohorts.first_rows(
        ev.user, ev.ts, c.day_offsets(ev, first), mask, None if seg is None else seg.codes,
        ev.num_users, nthreads, ev.ts_rem)
    cohort = np.where(first_day >= 0, pm.of_day[np.clip(first_day, 0, None)], -1)
    group = (first_seg + 1) if seg is not None else np.zeros(ev.num_users, dtype=np.int64)
    prow = c.period_of_rows(ev, pm, first)
    r = _commerce._order_runs(ev, accepted, ev.user, ev.num_users, prow, pm, first, values,
                              nthreads, keep=False)
    k = r["period"] - cohort[r["actor"]]
    keep = (k >= 0) & (k <= o.max_offset)
    coh, kk, val = cohort[r["actor"]][keep], k[keep], r["sum"][keep]
    grp = group[r["actor"]][keep].astype(np.int64)
    gs = [np.zeros(len(grp), np.int64)] + ([grp] if seg is not None else [])
    t = _terms({"g": np.concatenate(gs), "c": np.tile(coh, len(gs)), "k": np.tile(kk, len(gs))},
               np.tile(val, len(gs)))
    terms = pa.table({"cohort_start": c.dates(pm.starts[t["c"].to_numpy()]),
                      "period": [period] * t.num_rows,
                      "segment": _text(t["g"].to_numpy(), labels),
                      "period_offset": t["k"].cast(pa.int32()), "value": t["value"], "n": t["n"]})
    return {"cohort_revenue": table, "cohort_revenue_terms": terms}


def _engine_cohort_revenue(ev, o, revenue, period, end_day, rejected):
    from engage_core import cohort_revenue

    return cohort_revenue(ev, purchase_events=list(o.purchase_events), revenue=revenue,
                          period=period, max_offset=o.max_offset, breakdown=o.breakdown,
                          end_day=end_day, rejected=rejected)


def _score_partials(ev, o, period, end_day) -> dict:
    """Users per (period, segment, tier), with '(none)' only when some user reaches no tier,
    and the score terms (each user's score in the period)."""
    names, th, pm, n_periods, passes = _scores._scored_runs(
        ev, dict(o.weights or {}), o.default_weight, dict(o.tiers) if o.tiers else None,
        _l(o.events), period, o.breakdown, end_day, None)
    passes = [(r, group, _scores._tiers(r, th, c.threads_or_default(None)))
              for r, group in passes]
    labels = c.labels_for(ev.segment(o.breakdown))
    has_none = any(bool((tier == len(names)).any()) for _, _, tier in passes)
    tier_labels = names + ([_scores.NO_TIER] if has_none else [])
    n_t = len(tier_labels)
    size = len(labels) * n_periods * n_t
    users = np.zeros(size, dtype=np.int64)
    idxs, vals = [np.zeros(0, np.int64)], [np.zeros(0)]
    for r, group, tier in passes:
        idx = (group[r["actor"]].astype(np.int64) * n_periods + r["period"]) * n_t + tier
        users += np.bincount(idx, minlength=size)
        idxs.append(idx)
        vals.append(r["sum"])
    gi, pi, ti = c.grid(len(labels), n_periods, n_t)
    counts = pa.table({"period_start": c.dates(pm.starts[pi]), "period": [period] * len(gi),
                       "segment": _text(gi, labels), "tier": _text(ti, tier_labels),
                       "users": pa.array(users, pa.int64())})
    t = _terms({"i": np.concatenate(idxs)}, np.concatenate(vals))
    i = t["i"].to_numpy()
    terms = pa.table({"period_start": c.dates(pm.starts[(i // n_t) % max(n_periods, 1)]),
                      "period": [period] * t.num_rows,
                      "segment": _text(i // (n_t * max(n_periods, 1)), labels),
                      "tier": _text(i % n_t, tier_labels), "value": t["value"], "n": t["n"]})
    return {"score_tiers": counts, "score_terms": terms}


def _cat(parts: dict, name: str, table: pa.Table) -> None:
    parts[name] = table if name not in parts else pa.concat_tables([parts[name], table])


def shard_partials(config, table: pa.Table, roles: dict, axis_first_day, end_day) -> dict:
    """``name -> partial table`` for one shard (see the module docstring), plus ``rejected``
    (metric, reason, row: the row's position in ``table``) and ``counts``."""
    ev = prepare(config, table, roles)
    ev.axis_first_day = axis_first_day
    parts: dict = {}
    rejected: list = []
    m = config.metrics
    fams = [f for f in ENGINE_FAMILIES if f in m]
    cols = config.source.columns
    if ev.first_day_number is not None:
        if fams:
            # survey reports its rejected rows here, after commerce's and cohort_revenue's
            engine_rejected: list = []
            parts.update(compute_metrics(config, ev, end_day, _NoTimer, families=fams,
                                         rejected=engine_rejected))
            parts.pop("retention_summary", None)  # recomputed from the combined retention
        else:
            engine_rejected = []
        if "sessions" in m:
            parts.update(_sessions_partials(ev, m["sessions"], end_day))
        for family, fn in (("commerce", _commerce_partials),
                           ("cohort_revenue", _cohort_revenue_partials)):
            if family in m:
                o = m[family]
                for i, p in enumerate(o.periods):
                    got = fn(ev, o, cols.revenue, p, end_day, rejected if i == 0 else None)
                    for name, t in got.items():
                        _cat(parts, name, t)
        rejected += engine_rejected
        if "engagement_score" in m:
            o = m["engagement_score"]
            for p in o.periods:
                for name, t in _score_partials(ev, o, p, end_day).items():
                    _cat(parts, name, t)
            if o.user_scores:
                from engage_core import user_scores

                opts = dict(weights=dict(o.weights or {}), default_weight=o.default_weight,
                            tiers=dict(o.tiers) if o.tiers else None, events=_l(o.events))
                parts["user_scores"] = pa.concat_tables(
                    [user_scores(ev, period=p, end_day=end_day, **opts) for p in o.periods])
    if rejected:
        parts["rejected"] = pa.concat_tables(rejected)
    parts["counts"] = pa.table({
        "rows_read": [ev.rows_read], "rows_skipped_null_user": [ev.rows_skipped_null_user],
        "rows_skipped_null_timestamp": [ev.rows_skipped_null_timestamp],
        "rows": [ev.num_rows], "users": [ev.num_users]})
    return parts
