"""`engage demo`: a realistic sample event log, a full pipeline run on the embedded DuckDB
default, and a readable summary of the tables it wrote.

The generator is vectorized with numpy (no Python loop over users or events) and is
deterministic for a seed. Its shape:

- signups grow over the period (about three times as many per day at the end as at the
  start), with fewer signups at the weekend;
- each user has a lifetime (a churn hazard drawn from a mix of "tourists", "regulars" and
  "loyal" users) and a daily activity probability that decays with age, lowered at the
  weekend;
- on each active day a user opens the app, views items, sometimes adds to the cart and
  buys, receives, opens and clicks emails, and now and then answers an NPS or CSAT survey;
- the user's first event is ``signup``; events happen mostly around lunch and in the
  evening, local time (America/New_York), and the range spans the 2025-03-09 DST change.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

# The summary lives in its own module so that each stays short; both are importable here.
from engage_plugin.demo_summary import print_report, print_summary

TIMEZONE = "America/New_York"
PLATFORMS = np.array(["ios", "android", "web"], dtype=object)
EVENT_NAMES = np.array([
    "signup", "app_open", "view", "add_to_cart", "purchase",
    "email_delivered", "email_open", "email_click", "nps_response", "csat_response",
], dtype=object)
(SIGNUP, APP_OPEN, VIEW, ADD_TO_CART, PURCHASE,
 EMAIL_DELIVERED, EMAIL_OPEN, EMAIL_CLICK, NPS, CSAT) = range(len(EVENT_NAMES))
# Relative activity by weekday, Monday first.
WEEKLY = np.array([1.0, 1.02, 1.04, 1.03, 0.98, 0.78, 0.72])
US_PER_S = 1_000_000
# Answer distributions: NPS 0..10 (about 50% promoters, 17% detractors), CSAT 1..5.
NPS_P = np.array([0.02, 0.01, 0.01, 0.015, 0.02, 0.04, 0.055, 0.11, 0.22, 0.22, 0.28])
CSAT_P = np.array([0.05, 0.07, 0.15, 0.35, 0.38])


def _local_midnights(start: dt.date, days: int, tz: ZoneInfo) -> np.ndarray:
    """UTC microseconds of local midnight for days start .. start+days (days + 1 values)."""
    out = np.empty(days + 1, dtype=np.int64)
    for i in range(days + 1):  # one entry per calendar day, not per event
        d = start + dt.timedelta(days=i)
        out[i] = int(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()) * US_PER_S
    return out


def _diurnal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fractions of the local day in [0, 1): peaks around 12:30 and 20:30, quiet at night."""
    which = rng.random(n)
    hours = np.where(which < 0.45, rng.normal(12.5, 2.5, n),
                     np.where(which < 0.9, rng.normal(20.5, 2.0, n), rng.uniform(0, 24, n)))
    return np.mod(hours, 24.0) / 24.0


def _signup_days(rng, n_users: int, days: int, start: dt.date) -> np.ndarray:
    t = np.arange(days)
    weekday = (start.weekday() + t) % 7
    weight = (1.0 + 2.0 * t / max(days - 1, 1)) * np.where(weekday >= 5, 0.8, 1.0)
    return rng.choice(days, size=n_users, p=weight / weight.sum()).astype(np.int32)


def _user_days(rng, first_day: np.ndarray, days: int, start: dt.date):
    """Active (user, day) pairs: day 0 always, then a decaying, weekly-seasonal probability
    until the user's churn day."""
    n = len(first_day)
    kind = rng.choice(3, size=n, p=[0.45, 0.40, 0.15])  # tourists, regulars, loyal
    mean_life = np.array([4.0, 35.0, 400.0])[kind]
    life = np.ceil(rng.exponential(mean_life)).astype(np.int64)
    level = rng.beta(np.array([1.5, 2.5, 4.0])[kind], np.array([6.0, 4.0, 2.5])[kind])
    decay = rng.uniform(30, 200, n)
    span = np.minimum(life, days - first_day).clip(min=1)
    user = np.repeat(np.arange(n, dtype=np.int64), span)
    starts = np.cumsum(span) - span
    age = np.arange(len(user), dtype=np.int64) - np.repeat(starts, span)
    day = first_day[user] + age
    weekday = (start.weekday() + day) % 7
    p = level[user] * (0.35 + 0.65 * np.exp(-age / decay[user])) * WEEKLY[weekday]
    keep = (age == 0) | (rng.random(len(user)) < p)
    return user[keep], day[keep].astype(np.int32), (age[keep] == 0), level


def make_demo_log(n_users: int = 20000, days: int = 180, seed: int = 7,
                  end: dt.date = dt.date(2025, 6, 30)) -> pa.Table:
    """A realistic event log: columns ``user_id`` (int64), ``ts``
    (timestamp[us, tz=America/New_York]), ``event``, ``platform`` (ios/android/web, a few
    nulls), ``revenue`` (float64, on purchases) and ``score`` (int64, on survey answers).
    Sorted by time; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    tz = ZoneInfo(TIMEZONE)
    start = end - dt.timedelta(days=days - 1)
    midnights = _local_midnights(start, days, tz)

    first_day = _signup_days(rng, n_users, days, start)
    ud_user, ud_day, ud_first, level = _user_days(rng, first_day, days, start)
    n_ud = len(ud_user)
    intensity = 0.5 + 3.0 * level  # events per active day scale with engagement

    # Events per active user-day, by kind.
    counts = np.zeros((len(EVENT_NAMES), n_ud), dtype=np.int64)
    counts[SIGNUP] = ud_first
    counts[APP_OPEN] = 1 + rng.poisson(0.6 * intensity[ud_user])
    counts[VIEW] = rng.poisson(2.0 * intensity[ud_user])
    carts = rng.binomial(counts[VIEW], 0.12)
    counts[ADD_TO_CART] = carts
    counts[PURCHASE] = rng.binomial(carts, 0.35)
    counts[EMAIL_DELIVERED] = rng.random(n_ud) < 0.18
    counts[EMAIL_OPEN] = counts[EMAIL_DELIVERED] & (rng.random(n_ud) < 0.4)
    counts[EMAIL_CLICK] = counts[EMAIL_OPEN] & (rng.random(n_ud) < 0.3)
    counts[NPS] = rng.random(n_ud) < 0.006
    counts[CSAT] = rng.random(n_ud) < 0.006

    flat = counts.ravel()
    kind = np.repeat(np.repeat(np.arange(len(EVENT_NAMES)), n_ud), flat).astype(np.int8)
    row = np.repeat(np.tile(np.arange(n_ud), len(EVENT_NAMES)), flat)
    n = len(row)

    # Time of day: the signup at a diurnal time, the rest of a signup day after it.
    frac = _diurnal(rng, n)
    signup_frac = np.full(n_ud, 0.0)
    is_signup = kind == SIGNUP
    frac[is_signup] = np.minimum(frac[is_signup], 0.97)
    signup_frac[row[is_signup]] = frac[is_signup]
    later = ud_first[row] & ~is_signup
    frac[later] = signup_frac[row[later]] + 0.005 + (0.995 - signup_frac[row[later]] - 0.005) \
        * rng.random(int(later.sum()))
    day = ud_day[row]
    length = midnights[day + 1] - midnights[day]  # 23 h on 2025-03-09
    ts = midnights[day] + (frac * length).astype(np.int64)
    ts -= ts % US_PER_S  # whole seconds, like most logs

    user = ud_user[row]
    home = rng.choice(3, size=n_users, p=[0.42, 0.33, 0.25])
    plat = np.where(rng.random(n) < 0.12, 2, home[user])  # mobile users sometimes use the web
    plat_null = rng.random(n) < 0.004
    order = np.lexsort((kind != SIGNUP, ts))
    user, ts, kind, plat, plat_null = (a[order] for a in (user, ts, kind, plat, plat_null))

    revenue = np.where(kind == PURCHASE,
                       np.round(rng.lognormal(3.4, 0.7, n), 2).clip(min=0.99), np.nan)
    nps = rng.choice(11, size=n, p=NPS_P).astype(np.int64)
    csat = 1 + rng.choice(5, size=n, p=CSAT_P).astype(np.int64)
    score = np.where(kind == NPS, nps, csat)
    user_ids = np.int64(1_000_001) + rng.permutation(n_users).astype(np.int64) * 7

    return pa.table({
        "user_id": pa.array(user_ids[user], type=pa.int64()),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz=TIMEZONE)),
        "event": pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int32)),
                                                pa.array(list(EVENT_NAMES))).cast(pa.string()),
        "platform": pa.DictionaryArray.from_arrays(
            pa.array(plat.astype(np.int32), mask=plat_null),
            pa.array(list(PLATFORMS))).cast(pa.string()),
        "revenue": pa.array(revenue, type=pa.float64(), mask=kind != PURCHASE),
        "score": pa.array(score, type=pa.int64(), mask=(kind != NPS) & (kind != CSAT)),
    })


PIPELINE_YAML = """\
# Made by `engage demo`: a full pipeline over the sample log in this folder.
pipeline: demo
timezone: {timezone}
source:
  path: events.parquet
target:
  uri: duckdb:///{db}
metrics:
  active_users: {{windows: [1, 7, 30], breakdown: platform}}
  engagement_daily: {{mau_window: 30}}
  stickiness: {{periods: [week, month]}}
  retention: {{periods: [week, month], max_offset: 12, start_events: [signup],
              brackets: [[1, 3], [4, 8], [9, 12]]}}
  lifecycle: {{periods: [week]}}
  first_week: {{}}
  sessions: {{session_gap: 30m, breakdown: platform}}
  funnels:
    checkout: {{steps: [view, add_to_cart, purchase], conversion_window: 7d, periods: [week]}}
  conversions:
    email_open_rate: {{denominator: [email_delivered], numerator: [email_open], periods: [week]}}
    email_click_rate: {{denominator: [email_open], numerator: [email_click], periods: [week]}}
  commerce: {{purchase_events: [purchase], periods: [month]}}
  cohort_revenue: {{purchase_events: [purchase], periods: [month], max_offset: 6}}
  survey: {{nps_event: nps_response, csat_event: csat_response, periods: [month]}}
  engagement_score: {{weights: {{purchase: 10, add_to_cart: 3, view: 1}}, default_weight: 1,
                     tiers: {{power: 50, core: 10, casual: 0}}, periods: [week]}}
"""


ROLLING_YAML = """\
# Made by `engage demo`: the same log, retention with rolling 24-hour / 7-day windows
# (Amplitude N-day, Mixpanel's default), next to the calendar tables of pipeline.yaml.
pipeline: demo_rolling
timezone: {timezone}
source:
  path: events.parquet
target:
  uri: duckdb:///{db}
  table_prefix: engage_rolling_
metrics:
  retention: {{periods: [day, week], max_offset: 12, start_events: [signup], window: rolling,
              brackets: [[1, 3], [4, 8], [9, 12]]}}
"""


def write_demo_files(directory) -> tuple[str, str]:
    """Write ``events.parquet`` and ``pipeline.yaml`` into ``directory``; return the paths of
    the YAML file and of the DuckDB file the pipeline targets."""
    import pyarrow.parquet as pq

    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    pq.write_table(make_demo_log(), os.path.join(directory, "events.parquet"))
    db = os.path.join(directory, "engage.duckdb")
    path = os.path.join(directory, "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(PIPELINE_YAML.format(timezone=TIMEZONE, db=db))
    with open(os.path.join(directory, "pipeline_rolling.yaml"), "w", encoding="utf-8") as f:
        f.write(ROLLING_YAML.format(timezone=TIMEZONE, db=db))
    return path, db


def run_demo(directory, out=None) -> int:
    """Make the sample log, run the demo pipeline on it and print a summary. Returns 0."""
    from engage_plugin.config import load_pipeline
    from engage_plugin.runner import run_pipeline

    out = sys.stdout if out is None else out
    path, db = write_demo_files(directory)
    print(f"Sample event log and pipeline written to {os.path.dirname(path)}", file=out)
    report = run_pipeline(load_pipeline(path))
    rolling = run_pipeline(load_pipeline(os.path.join(os.path.dirname(path),
                                                      "pipeline_rolling.yaml")))
    print_summary(db, out=out)
    from engage_plugin.demo_catalogue import print_retention_variants

    print_retention_variants(db, out=out)
    print_report(report.to_dict(), out=out)
    print(f"  (and the rolling-retention pipeline: {rolling.to_dict()['total_seconds']:.2f} s)",
          file=out)
    print(f"\nTables: {db}  (try: duckdb {db} \"from engage_engagement_daily limit 5\")",
          file=out)
    return 0

__all__ = ["make_demo_log", "run_demo", "print_summary", "print_report", "write_demo_files"]
