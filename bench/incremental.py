"""Benchmark: a daily incremental run against a full refresh (issue 4).

180 days are loaded, then one more day arrives: the incremental run over that day is timed
against a full refresh over all 181 days, on DuckDB and on PostgreSQL, with the rows each
read from the source. The tables of both are checked equal before any figure is printed.

    .venv/bin/python bench/incremental.py                       # 2M events, DuckDB + PostgreSQL
    .venv/bin/python bench/incremental.py --events 10000000 --targets duckdb
    ENGAGE_BENCH_POSTGRES_URL=postgresql://me@host/db .venv/bin/python bench/incremental.py

This is a benchmark, not a test; results go to bench/results_incremental.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT, os.path.join(ROOT, "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

import pyarrow.parquet as pq  # noqa: E402

import datagen  # noqa: E402

METRICS = """\
metrics:
  active_users: {windows: [1, 7, 30]}
  engagement_daily: {mau_window: 30}
  stickiness: {periods: [week, month]}
  retention: {periods: [week], max_offset: 12}
  lifecycle: {periods: [week]}
  first_week: {}
  sessions: {session_gap: 30m}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], conversion_window: 7d, periods: [week]}
"""


def _pipeline(folder: str, source: str, uri: str, schema: str | None, prefix: str) -> str:
    path = os.path.join(folder, f"bench_{prefix.rstrip('_')}.yaml")
    target = f"target:\n  uri: {uri}\n  table_prefix: {prefix}\n"
    if schema:
        target += f"  schema: {schema}\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"pipeline: bench\ntimezone: UTC\nsource:\n  path: {source}\n{target}{METRICS}")
    return path


def _timed(path: str, start, end, full: bool):
    from engage_plugin.config import load_pipeline
    from engage_plugin.runner import run_pipeline

    t0 = time.perf_counter()
    report = run_pipeline(load_pipeline(path), start=start, end=end, full_refresh=full)
    return time.perf_counter() - t0, report


def bench_target(name: str, uri: str, schema: str | None, source: str, first, last,
                 folder: str) -> dict:
    from incremental_fixtures import metric_tables

    inc = _pipeline(folder, source, uri, schema, "inc_")
    full = _pipeline(folder, source, uri, schema, "full_")
    print(f"[{name}] loading 180 days ...", flush=True)
    t_load, r_load = _timed(inc, first, last - dt.timedelta(days=1), True)
    print(f"[{name}] one more day, incremental ...", flush=True)
    t_inc, r_inc = _timed(inc, last, last, False)
    print(f"[{name}] full refresh over 181 days ...", flush=True)
    t_full, r_full = _timed(full, first, last, True)
    same = metric_tables(uri, schema, "inc_") == metric_tables(uri, schema, "full_")
    if not same:
        print(f"[{name}] MISMATCH: the incremental tables differ from the full refresh")
    return {"target": name, "load_180": t_load, "incremental": t_inc, "full": t_full,
            "rows_inc": r_inc.rows_read, "rows_full": r_full.rows_read,
            "store_rows": r_inc.store_rows, "steps_inc": r_inc.seconds,
            "steps_full": r_full.seconds, "equal": same, "rows_load": r_load.rows_read}


def _postgres(url: str):
    """A fresh schema on the server (dropped afterwards), or None when unreachable."""
    try:
        import adbc_driver_postgresql.dbapi as pg
        con = pg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL at {url} unreachable ({exc}); skipped")
        return None, None
    return con, f"engage_bench_{uuid.uuid4().hex[:8]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--targets", default="duckdb,postgresql")
    p.add_argument("--out", default=os.path.join(HERE, "results_incremental.md"))
    a = p.parse_args()
    n_users = max(1, a.events // 10)
    table = datagen.generate(a.events, n_users, days=181)
    days = table["ts"].cast("date32")
    import pyarrow.compute as pc

    first, last = pc.min(days).as_py(), pc.max(days).as_py()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "events.parquet")
        pq.write_table(table, source, row_group_size=1 << 16)
        del table
        for target in a.targets.split(","):
            if target == "duckdb":
                uri = f"duckdb:///{os.path.join(folder, 'bench.duckdb')}"
                results.append(bench_target("DuckDB", uri, None, source, first, last, folder))
            elif target == "postgresql":
                url = os.environ.get("ENGAGE_BENCH_POSTGRES_URL",
                                     "postgresql://postgres@127.0.0.1:5432/test")
                con, schema = _postgres(url)
                if con is None:
                    continue
                try:
                    results.append(bench_target("PostgreSQL", url, schema, source, first, last,
                                                folder))
                finally:
                    cur = con.cursor()
                    cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    con.commit()
                    con.close()
    lines = [f"# Incremental run vs full refresh ({a.events:,} events, {n_users:,} users, "
             f"181 days)", "",
             f"{platform.machine()}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.2f}, {dt.datetime.now():%Y-%m-%d %H:%M}. "
             "180 days loaded, then day 181: the incremental run over that day against a "
             "full refresh over all 181 days (tables checked equal).", "",
             "| target | load 180 days | +1 day incremental | full refresh 181 days | "
             "speed-up | rows read incremental / full | tables equal |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['target']} | {r['load_180']:.2f} s | {r['incremental']:.2f} s | "
                     f"{r['full']:.2f} s | {r['full'] / r['incremental']:.1f}x | "
                     f"{r['rows_inc']:,} / {r['rows_full']:,} | {r['equal']} |")
    lines += ["", "Seconds per step (incremental; full refresh):", ""]
    for r in results:
        steps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps_inc"].items())
        fsteps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps_full"].items())
        lines.append(f"- {r['target']}: {steps}; full: {fsteps}")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
