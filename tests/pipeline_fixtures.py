"""A small pipeline (sample log, YAML file, DuckDB target) for the Airflow tests."""

from __future__ import annotations

import datetime as dt
import os
import types
from pathlib import Path

TZ = "America/New_York"
LAST_DAY = dt.date(2025, 3, 31)
DAYS = 45  # spans the 2025-03-09 DST change
METRICS = """\
  active_users: {windows: [1, 7], breakdown: platform}
  engagement_daily: {}
  retention: {periods: [week], max_offset: 4, start_events: [signup]}
  lifecycle: {periods: [week]}
"""
TABLES = ["engage_active_users", "engage_engagement_daily", "engage_retention",
          "engage_retention_summary", "engage_lifecycle"]

_LOG = None


def sample_log():
    global _LOG
    if _LOG is None:
        from engage_plugin.demo import make_demo_log

        _LOG = make_demo_log(n_users=800, days=DAYS, end=LAST_DAY)
    return _LOG


def write_pipeline(folder, *, name: str = "shop", db_name: str = "engage.duckdb",
                   schedule: str = "@daily") -> types.SimpleNamespace:
    """``folder/<name>.yaml`` over ``folder/events.parquet`` into ``folder/<db_name>``."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    events = folder / "events.parquet"
    if not events.exists():
        pq.write_table(sample_log(), events)
    db = folder / db_name
    yaml_path = folder / f"{name}.yaml"
    yaml_path.write_text(
        f"pipeline: {name}\nschedule: \"{schedule}\"\nstart_date: 2025-03-01\ncatchup: false\n"
        f"timezone: {TZ}\nsource:\n  path: {events}\ntarget:\n  uri: duckdb:///{db}\n"
        f"metrics:\n{METRICS}", encoding="utf-8")
    first = LAST_DAY - dt.timedelta(days=DAYS - 1)
    return types.SimpleNamespace(folder=str(folder), yaml=str(yaml_path), db=str(db),
                                 events=os.path.abspath(events), tables=list(TABLES),
                                 first_day=first.isoformat(), name=name)
