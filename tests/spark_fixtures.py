"""A generated event log and pipelines with every metric family, for the Spark engine tests
and benchmark: string or integer user ids, a platform breakdown (with nulls and a reserved
value), a DST zone, equal timestamps, fractional and rejected revenue, survey answers out
of range, a null user row and a null timestamp row."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TZ = "America/New_York"
FIRST = dt.date(2025, 2, 20)   # spans the DST change of 2025-03-09
EVENTS = np.array(["signup", "view", "add_to_cart", "purchase", "nps_response", "csat_response",
                   "email_delivered", "email_open"])

METRICS = """\
metrics:
  active_users: {windows: [1, 7, 30], breakdown: platform}
  engagement_daily: {mau_window: 30, breakdown: platform}
  stickiness: {periods: [week, month], breakdown: platform}
  retention: {periods: [week, day], max_offset: 6, start_events: [signup], window: WINDOW,
              brackets: [[1, 2], [3, 6]], breakdown: platform}
  lifecycle: {periods: [week, month]}
  first_week: {breakdown: platform}
  sessions: {session_gap: 30m, breakdown: platform}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], conversion_window: 3d, periods: [week],
               breakdown: platform}
  conversions:
    email_open_rate: {denominator: [email_delivered], numerator: [email_open], periods: [week],
                      breakdown: platform}
  commerce: {purchase_events: [purchase], periods: [week, month], breakdown: platform}
  cohort_revenue: {purchase_events: [purchase], periods: [week], max_offset: 3, breakdown: platform}
  survey: {nps_event: nps_response, csat_event: csat_response, periods: [week], breakdown: platform}
  engagement_score: {weights: {purchase: 2.5, add_to_cart: 0.3}, periods: [week],
                     tiers: {power: 5, core: 1, casual: 0}, user_scores: true, breakdown: platform}
"""


def event_log(seed: int = 5, n_users: int = 300, days: int = 45, string_ids: bool = False,
              first: dt.date = FIRST) -> pa.Table:
    rng = np.random.default_rng(seed)
    zone = zoneinfo.ZoneInfo(TZ)
    midnight = [int(dt.datetime.combine(first + dt.timedelta(days=d), dt.time(0), zone)
                    .timestamp()) * 1_000_000 for d in range(days)]
    user, ts, event, platform, revenue, score = [], [], [], [], [], []
    platforms = [None, "ios", "web", "android", "all"]
    for u in range(n_users):
        start = int(rng.integers(0, days))
        for d in range(start, days):
            if d > start and rng.random() < 0.7:
                continue
            # on a coarse grid (ties), near midnight too (local day != UTC day)
            t0 = midnight[d] + int(rng.choice([0, 5, 600, 1430, rng.integers(0, 1440)])) * 60_000_000
            names = (["signup"] if d == start else []) + list(rng.choice(EVENTS[1:], size=int(rng.integers(1, 6))))
            plat = platforms[(u + d // 9) % 5] if rng.random() < 0.9 else platforms[int(rng.integers(0, 5))]
            for i, name in enumerate(names):
                user.append(f"user-{u:04d}-é" if string_ids else u * 7919 - 500_000)
                ts.append(t0 + int(rng.choice([0, 0, 5, 40])) * 60_000_000 * i)
                event.append(str(name))
                platform.append(plat)
                revenue.append([19.99, 0.1, 7.35, None, -2.0, 1e-3, 12.0][int(rng.integers(0, 7))]
                               if name == "purchase" else None)
                score.append(int(rng.integers(-1, 12)) if name.endswith("_response") else None)
    user += [None, user[0]]
    ts += [midnight[3] + 3600_000_000, None]
    event += ["view", "view"]
    platform += ["ios", "ios"]
    revenue += [None, None]
    score += [None, None]
    return pa.table({
        "user_id": pa.array(user, pa.string() if string_ids else pa.int64()),
        "ts": pa.array(ts, pa.timestamp("us", "UTC")).cast(pa.timestamp("us")),
        "event": pa.array(event, pa.string()),
        "platform": pa.array(platform, pa.string()),
        "revenue": pa.array(revenue, pa.float64()),
        "score": pa.array(score, pa.int64()),
    })


def write_pipeline(folder: Path, table: pa.Table, window: str = "calendar", files: int = 1,
                   name: str = "sparky") -> Path:
    """The log as ``files`` Parquet files under ``folder/data`` and a pipeline file."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), data / f"part-{i:02d}.parquet",
                       row_group_size=500)
    path = folder / f"{name}.yaml"
    path.write_text(f"pipeline: {name}\ntimezone: {TZ}\nsource:\n  path: data/*.parquet\n"
                    f"target:\n  uri: duckdb:///{folder}/out.duckdb\n"
                    + METRICS.replace("WINDOW", window), encoding="utf-8")
    return path
