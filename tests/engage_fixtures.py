"""Small event logs and pipeline files for the pipeline tests (config, CLI, DuckDB target)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

TZ = "America/New_York"
UTC = dt.timezone.utc


def events_table(days: int = 25) -> pa.Table:
    """Users 1..6 over local days 2025-01-01..2025-01-<days> in New York, plus one row with
    a null user and one with a null timestamp. Timestamps are naive UTC instants."""
    rows = []
    for d in range(1, days + 1):
        day = dt.date(2025, 1, d)
        for user in range(1, 7):
            if (d + user) % 3 and not (user == 6 and d < 12):
                continue
            # 23:30 local = next UTC day: exercises the local-day filter
            local = dt.datetime.combine(day, dt.time(23, 30) if user == 2 else dt.time(9, user))
            utc = (local.replace(tzinfo=__import__("zoneinfo").ZoneInfo(TZ))
                   .astimezone(UTC).replace(tzinfo=None))
            event = "signup" if d == 1 or (user == 6 and d == 12) else "open"
            platform = None if user == 5 else ("ios" if user % 2 else "web")
            rows.append((user, utc, event, platform))
    rows.append((None, dt.datetime(2025, 1, 3, 15), "open", "ios"))
    rows.append((3, None, "open", "ios"))
    users, ts, ev, plat = zip(*rows)
    return pa.table({"user_id": pa.array(users, pa.int64()),
                     "ts": pa.array(ts, pa.timestamp("us")),
                     "event": pa.array(ev, pa.string()),
                     "platform": pa.array(plat, pa.string())})


METRICS = """\
metrics:
  active_users: {windows: [1, 7], breakdown: platform}
  engagement_daily: {mau_window: 14}
  stickiness: {periods: [week, month], breakdown: platform}
  retention: {periods: [week, day], max_offset: 3, start_events: [signup], breakdown: platform}
  lifecycle: {periods: [week]}
  first_week: {breakdown: platform}
"""


def write_parquet(folder: Path, table: pa.Table | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events.parquet"
    pq.write_table(events_table() if table is None else table, path)
    return path


def write_csv(folder: Path) -> Path:
    import pyarrow.csv as pacsv

    folder.mkdir(parents=True, exist_ok=True)
    t = events_table()
    # CSV timestamps in ISO 8601 (parsed by the source as timestamps)
    path = folder / "events.csv"
    pacsv.write_csv(t, path)
    return path


def write_duckdb_source(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "source.duckdb"
    t = events_table()
    con = duckdb.connect(str(path))
    con.register("t", t)
    con.execute("create table events as select * from t")
    con.close()
    return path


def write_pipeline(folder: Path, source: str, *, db: str = "engage.duckdb", name="shop",
                   metrics: str = METRICS, target_extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"pipeline: {name}\ntimezone: {TZ}\nsource:\n{source}\n"
                    f"target:\n  uri: duckdb:///{db}\n{target_extra}{metrics}", encoding="utf-8")
    return path


def tables(db: Path, prefix: str = "engage_", schema: str | None = None,
           with_computed_at: bool = False) -> dict[str, list]:
    """Every metric table's rows, sorted (without computed_at unless asked)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_name like ? "
            "order by 1", [prefix + "%"]).fetchall()]
        out = {}
        for n in names:
            if n in (prefix + "runs", prefix + "rejected_rows", prefix + "state",
                     prefix + "state_events"):
                continue
            q = f'"{schema}"."{n}"' if schema else f'"{n}"'
            cols = "*" if with_computed_at else "* exclude (computed_at)"
            out[n] = con.execute(f"select {cols} from {q} order by all").fetchall()
        return out
    finally:
        con.close()
