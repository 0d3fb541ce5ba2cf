"""Compute every metric a pipeline enables with engage_core: one Arrow table per output
table (METRICS.md section 4), plus the rows the metrics rejected.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Callable

import pyarrow as pa

import engage_core as ec

#: metric family (PIPELINE.md ``metrics`` key) -> the tables it writes (without the prefix)
FAMILY_TABLES = {
    "active_users": ("active_users",),
    "engagement_daily": ("engagement_daily",),
    "stickiness": ("stickiness",),
    "retention": ("retention", "retention_summary", "retention_brackets"),
    "lifecycle": ("lifecycle",),
    "first_week": ("first_week",),
    "sessions": ("sessions_daily",),
    "funnels": ("funnel",),
    "conversions": ("conversion",),
    "commerce": ("commerce",),
    "cohort_revenue": ("cohort_revenue",),
    "survey": ("survey",),
    "engagement_score": ("score_tiers", "user_scores"),
}
#: families that read the revenue / score columns
REVENUE_FAMILIES = ("commerce", "cohort_revenue")
SCORE_FAMILIES = ("survey",)


def family_tables(family: str, options) -> tuple:
    """The tables ``family`` writes with these options (brackets and user scores are opt-in)."""
    tables = FAMILY_TABLES[family]
    if family == "retention" and not getattr(options, "brackets", None):
        tables = tables[:2]
    if family == "engagement_score" and not getattr(options, "user_scores", False):
        tables = tables[:1]
    return tables


def numeric_roles(config) -> dict[str, str]:
    """``role -> column`` of the numeric columns the enabled metrics read."""
    cols = config.source.columns
    out = {}
    if any(f in config.metrics for f in REVENUE_FAMILIES) and cols.revenue:
        out["revenue"] = cols.revenue
    if any(f in config.metrics for f in SCORE_FAMILIES) and cols.score:
        out["score"] = cols.score
    return out


def prepare(config, table, roles: dict) -> "ec.Events":
    """``engage_core.prepare_events`` with the pipeline's roles, breakdowns, numeric columns
    and calendar."""
    return ec.prepare_events(
        table, user_id=roles["user_id"], timestamp=roles["timestamp"], event=roles.get("event"),
        breakdowns=config.breakdowns(), numeric=list(dict.fromkeys(numeric_roles(config).values())),
        calendar=ec.Calendar(timezone=config.timezone, week_start=config.week_start))


def _l(events):
    return None if events is None else list(events)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def compute_metrics(config, ev, end_day: dt.date | None, timer: Callable,
                    families=None, rejected: list | None = None) -> dict[str, pa.Table]:
    """``table (without prefix) -> Arrow table`` for every enabled metric (or only
    ``families``). Rows a metric rejects are appended to ``rejected`` as Arrow tables
    ``(metric, reason, row)``."""
    out: dict[str, pa.Table] = {}
    m = {k: v for k, v in config.metrics.items() if families is None or k in families}
    cols = config.source.columns
    kw = {"end_day": end_day}
    # sessions or an engagement score on all events sort every row by user, day and time:
    # the metrics before them read the users' days and first rows off that order too
    if any(f in m and m[f].events is None for f in ("sessions", "engagement_score")):
        ec.plan_user_order(ev)
    if "active_users" in m:
        o = m["active_users"]
        with timer("active_users"):
            out["active_users"] = ec.active_users(ev, windows=tuple(o.windows), events=_l(o.events),
                                                  breakdown=o.breakdown, **kw)
    if "engagement_daily" in m:
        o = m["engagement_daily"]
        with timer("engagement_daily"):
            out["engagement_daily"] = ec.engagement_daily(
                ev, mau_window=o.mau_window, events=_l(o.events), breakdown=o.breakdown, **kw)
    if "stickiness" in m:
        o = m["stickiness"]
        with timer("stickiness"):
            out["stickiness"] = _concat([ec.stickiness(ev, period=p, events=_l(o.events),
                                                       breakdown=o.breakdown, **kw)
                                         for p in o.periods])
    if "retention" in m:
        with timer("retention"):
            out.update(_retention(ev, m["retention"], kw))
    if "lifecycle" in m:
        o = m["lifecycle"]
        with timer("lifecycle"):
            out["lifecycle"] = _concat([ec.lifecycle(ev, period=p, events=_l(o.events), **kw)
                                        for p in o.periods])
    if "first_week" in m:
        o = m["first_week"]
        with timer("first_week"):
            out["first_week"] = ec.first_week(ev, events=_l(o.events), breakdown=o.breakdown, **kw)
    if "sessions" in m:
        o = m["sessions"]
        with timer("sessions"):
            out["sessions_daily"] = ec.sessions(ev, session_gap=o.session_gap, events=_l(o.events),
                                                breakdown=o.breakdown, **kw)
    if "funnels" in m:
        with timer("funnels"):
            out["funnel"] = _concat([
                ec.funnel(ev, name=name, steps=list(o.steps), conversion_window=o.conversion_window,
                          period=p, breakdown=o.breakdown, **kw)
                for name, o in m["funnels"].items() for p in o.periods])
    if "conversions" in m:
        with timer("conversions"):
            out["conversion"] = _concat([
                ec.conversion(ev, name=name, denominator=list(o.denominator),
                              numerator=list(o.numerator), period=p, breakdown=o.breakdown, **kw)
                for name, o in m["conversions"].items() for p in o.periods])
    if "commerce" in m:
        o = m["commerce"]
        with timer("commerce"):
            out["commerce"] = _concat([
                ec.commerce(ev, purchase_events=list(o.purchase_events), revenue=cols.revenue,
                            period=p, breakdown=o.breakdown, rejected=rejected if i == 0 else None,
                            **kw)
                for i, p in enumerate(o.periods)])
    if "cohort_revenue" in m:
        o = m["cohort_revenue"]
        with timer("cohort_revenue"):
            report = rejected  # the same order may also be reported under commerce
            out["cohort_revenue"] = _concat([
                ec.cohort_revenue(ev, purchase_events=list(o.purchase_events), revenue=cols.revenue,
                                  period=p, max_offset=o.max_offset, breakdown=o.breakdown,
                                  rejected=report if i == 0 else None, **kw)
                for i, p in enumerate(o.periods)])
    if "survey" in m:
        o = m["survey"]
        with timer("survey"):
            out["survey"] = _concat([
                ec.survey(ev, nps_event=o.nps_event, csat_event=o.csat_event, score=cols.score,
                          period=p, breakdown=o.breakdown, rejected=rejected if i == 0 else None,
                          **kw)
                for i, p in enumerate(o.periods)])
    if "engagement_score" in m:
        o = m["engagement_score"]
        opts = dict(weights=dict(o.weights or {}), default_weight=o.default_weight,
                    tiers=dict(o.tiers) if o.tiers else None, events=_l(o.events))
        with timer("engagement_score"):
            out["score_tiers"] = _concat([ec.engagement_score(ev, period=p, breakdown=o.breakdown,
                                                              **opts, **kw) for p in o.periods])
            if o.user_scores:
                out["user_scores"] = _concat([ec.user_scores(ev, period=p, **opts, **kw)
                                              for p in o.periods])
    return out


def _retention(ev, o, kw) -> dict[str, pa.Table]:
    start_events = _l(o.start_events) if o.start_events is not None else _l(o.events)
    return_events = _l(o.return_events) if o.return_events is not None else _l(o.events)
    opts = dict(max_offset=o.max_offset, start_events=start_events, return_events=return_events,
                window=o.window, breakdown=o.breakdown, **kw)
    if o.brackets:  # both tables of a period from one count
        pairs = [ec.retention_with_brackets(ev, brackets=[list(b) for b in o.brackets],
                                            period=p, **opts) for p in o.periods]
    else:
        pairs = [(ec.retention(ev, period=p, **opts), None) for p in o.periods]
    out = {"retention": _concat([r for r, _ in pairs])}
    out["retention_summary"] = ec.retention_summary(out["retention"])
    if o.brackets:
        out["retention_brackets"] = _concat([b for _, b in pairs])
    return out


def rejected_rows(rejected: list, source: pa.Table, run_id: str) -> pa.Table | None:
    """``{prefix}rejected_rows`` rows ``(run_id, metric, reason, row_json)``: each rejected
    input row as JSON, read back from the source rows by position."""
    if not rejected:
        return None
    parts = pa.concat_tables(rejected)
    if parts.num_rows == 0:
        return None
    rows = source.take(parts["row"]).to_pylist()
    return pa.table({
        "run_id": pa.array([run_id] * parts.num_rows, pa.string()),
        "metric": parts["metric"].cast(pa.string()),
        "reason": parts["reason"].cast(pa.string()),
        "row_json": pa.array([json.dumps(r, default=str, sort_keys=True) for r in rows],
                             pa.string()),
    })


def rejected_counts(rejected: list) -> dict[str, dict[str, int]]:
    """``metric -> reason -> rows`` for the run report."""
    out: dict[str, dict[str, int]] = {}
    for part in rejected:
        for metric, reason in zip(part["metric"].to_pylist(), part["reason"].to_pylist()):
            out.setdefault(metric, {}).setdefault(reason, 0)
            out[metric][reason] += 1
    return out
