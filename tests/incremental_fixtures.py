"""An event log and a pipeline with every metric family, for the incremental-run tests, and
helpers that read a target's tables back through the warehouse layer on any dialect."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TZ = "America/New_York"
FIRST = dt.date(2025, 2, 27)   # the log spans the DST change of 2025-03-09
DAYS = 24
EVENTS = ["signup", "view", "add_to_cart", "purchase", "nps_response"]

METRICS = """\
metrics:
  active_users: {windows: [1, 7, 30], breakdown: platform}
  engagement_daily: {mau_window: 30}
  stickiness: {periods: [week, month], breakdown: platform}
  retention: {periods: [week, day], max_offset: 4, start_events: [signup],
              brackets: [[1, 2], [3, 4]], breakdown: platform}
  lifecycle: {periods: [week]}
  first_week: {breakdown: platform}
  sessions: {session_gap: 30m, breakdown: platform}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], conversion_window: 3d, periods: [week]}
  conversions:
    cart_rate: {denominator: [view], numerator: [add_to_cart], periods: [week]}
  commerce: {purchase_events: [purchase], periods: [week, month], breakdown: platform}
  cohort_revenue: {purchase_events: [purchase], periods: [week], max_offset: 3}
  survey: {nps_event: nps_response, periods: [week]}
  engagement_score: {weights: {purchase: 2.5, add_to_cart: 0.3}, periods: [week],
                     tiers: {power: 5, core: 1, casual: 0}, user_scores: true}
"""


def event_log(seed: int = 3, n_users: int = 40, string_ids: bool = False,
              days: int = DAYS, first: dt.date = FIRST) -> pa.Table:
    """Users arriving over the days, events near local midnight (so the UTC and local days
    differ), equal timestamps, fractional revenue (some null / negative: rejected), NPS
    answers (some out of range: rejected), a platform breakdown, a null user and a null
    timestamp row."""
    rng = np.random.default_rng(seed)
    zone = zoneinfo.ZoneInfo(TZ)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(0, days))
        platform = [None, "ios", "web", "android"][u % 4]
        uid = f"user-{u:03d}-é" if string_ids else (2 ** 62 + u * 7919 if u % 5 == 0 else u)
        for d in range(start, days):
            if d > start and rng.random() < 0.55:
                continue
            day = first + dt.timedelta(days=d)
            minute = int(rng.choice([0, 15, 23 * 60 + 50, int(rng.integers(0, 1440))]))
            t0 = dt.datetime.combine(day, dt.time(0), tzinfo=zone) + dt.timedelta(minutes=minute)
            names = ["signup"] if d == start else []
            names += list(rng.choice(EVENTS[1:], size=int(rng.integers(1, 5))))
            for i, name in enumerate(names):
                ts = t0 + dt.timedelta(minutes=int(rng.choice([0, 0, 5, 40])) * i)
                revenue = None
                if name == "purchase":
                    revenue = [19.99, 0.1, 7.35, None, -2.0, 1e-3][int(rng.integers(0, 6))]
                score = int(rng.integers(0, 12)) if name == "nps_response" else None
                rows.append((uid, ts.astimezone(dt.timezone.utc).replace(tzinfo=None), name,
                             platform, revenue, score))
    rows.append((None, dt.datetime.combine(first, dt.time(15)), "view", "ios", None, None))
    rows.append((rows[0][0], None, "view", "ios", None, None))
    cols = list(zip(*rows))
    return pa.table({
        "user_id": pa.array(cols[0], pa.string() if string_ids else pa.int64()),
        "ts": pa.array(cols[1], pa.timestamp("us")),
        "event": pa.array(cols[2], pa.string()),
        "platform": pa.array(cols[3], pa.string()),
        "revenue": pa.array(cols[4], pa.float64()),
        "score": pa.array(cols[5], pa.int64()),
    })


def write_source(folder: Path, table: pa.Table) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events.parquet"
    pq.write_table(table, path)
    return path


def write_pipeline(folder: Path, uri: str, *, schema: str | None = None, prefix: str = "engage_",
                   name: str = "inc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{prefix.rstrip('_')}.yaml"
    target = f"target:\n  uri: {uri}\n  table_prefix: {prefix}\n"
    if schema:
        target += f"  schema: {schema}\n"
    path.write_text(f"pipeline: {name}\ntimezone: {TZ}\nsource:\n  path: data/events.parquet\n"
                    f"{target}{METRICS}", encoding="utf-8")
    return path


BOOKKEEPING = ("runs", "rejected_rows", "state", "state_events")


def metric_tables(uri: str, schema: str | None, prefix: str) -> dict[str, list]:
    """Every metric table's rows (without computed_at), sorted, read through the warehouse
    layer; keys without the prefix."""
    from engage_plugin.targets import PRIMARY_KEYS
    from engage_plugin.warehouse import open_warehouse

    out = {}
    with open_warehouse(uri, schema).session(read_only=True) as s:
        for table in PRIMARY_KEYS:
            if not s.table_exists(prefix + table):
                continue
            cols = [c for c in s.table_columns(prefix + table) if c != "computed_at"]
            rows = s.read(prefix + table, columns=cols).to_pylist()
            out[table] = sorted(tuple(r[c] for c in cols) for r in rows)
    return out


def unique_name(kind: str) -> str:
    return f"engage_t_{kind}_{uuid.uuid4().hex[:8]}"
