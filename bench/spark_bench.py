"""The Spark engine's overhead and scaling on this machine: local[1] and local[2] next to
the local engine, on the synthetic logs of bench/datagen.py (1M and 10M events).

    .venv/bin/python bench/spark_bench.py                 # 1M and 10M events
    .venv/bin/python bench/spark_bench.py --events 1000000

Each engine computes the same pipeline (every metric family the logs can feed: no revenue,
survey or breakdown columns there) from the same Parquet file, end to end: read, prepare or
shuffle, kernels, combine. Every Spark run's tables are checked equal to the local
engine's. Seconds are printed and a section is written to bench/results_spark.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datagen  # noqa: E402

METRICS = """\
metrics:
  active_users: {windows: [1, 7, 30]}
  engagement_daily: {mau_window: 30}
  stickiness: {periods: [week]}
  retention: {periods: [week], max_offset: 12}
  lifecycle: {periods: [week]}
  first_week: {}
  sessions: {session_gap: 30m}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], conversion_window: 7d, periods: [week]}
  conversions:
    cart_rate: {denominator: [view], numerator: [add_to_cart], periods: [week]}
  engagement_score: {weights: {purchase: 10, add_to_cart: 3}, periods: [week]}
"""


def pipeline(path: str, folder: str) -> str:
    out = os.path.join(folder, f"bench_spark_{os.path.basename(path)}.yaml")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"pipeline: bench\ntimezone: UTC\nsource:\n  path: {path}\n"
                f"target:\n  uri: \"duckdb:///:memory:\"\n{METRICS}")
    return out


def _nt(name):
    return contextlib.nullcontext()


def run_local(config):
    from engage_plugin.compute import compute_metrics, prepare
    from engage_plugin.sources import read_source

    t0 = time.perf_counter()
    table, roles = read_source(config)
    ev = prepare(config, table, roles)
    tables = compute_metrics(config, ev, None, _nt)
    return time.perf_counter() - t0, tables


def run_spark(config, master: str, shards: int, local_tables, repeats: int):
    from pyspark.sql import SparkSession

    from engage_plugin.spark import compute_on_spark
    from engage_plugin.spark.assemble import KEYS

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(master).appName("engage-bench")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", str(shards))
             .config("spark.driver.memory", "6g").config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        times, steps = [], {}
        for _ in range(repeats):
            seconds: dict = {}

            @contextlib.contextmanager
            def timer(name):
                t = time.perf_counter()
                yield
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t

            t0 = time.perf_counter()
            res = compute_on_spark(config, None, None, end_day=None, shards=shards, spark=spark,
                                   timer=timer)
            times.append(time.perf_counter() - t0)
            steps = seconds
        for name, want in local_tables.items():
            want = want.sort_by([(k, "ascending") for k in KEYS[name]])
            if not res.tables[name].equals(want):
                raise SystemExit(f"{master} shards={shards}: {name} differs from the local engine")
        return min(times), times, steps
    finally:
        spark.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results_spark.md"))
    args = ap.parse_args(argv)
    from engage_plugin.config import load_pipeline

    rows = []
    for n in args.events:
        path = datagen.cached(n, n // 10, ids="int", order="time")
        config = load_pipeline(pipeline(path, os.path.join(HERE, "data")))
        local = [run_local(config) for _ in range(args.repeats)]
        local_s, tables = min(t for t, _ in local), local[-1][1]
        print(f"{n:>11,} events  local engine ({os.cpu_count()} threads): {local_s:7.2f} s", flush=True)
        rows.append((n, "local engine, all cores", "-", local_s, ""))
        for master, shards in (("local[1]", 1), ("local[2]", 2), ("local[2]", 8)):
            best, times, steps = run_spark(config, master, shards, tables, args.repeats)
            detail = ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
            print(f"{n:>11,} events  spark {master} shards={shards}: {best:7.2f} s "
                  f"(runs {', '.join(f'{t:.1f}' for t in times)}; {detail})", flush=True)
            rows.append((n, f"spark {master}", shards, best, detail))
    write(args.out, rows, args)
    return 0


def write(path, rows, args) -> None:
    import pyarrow
    import pyspark

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    load = os.getloadavg()[0]
    lines = [f"## Spark engine vs local engine ({dt.date.today()})", "",
             f"`{' '.join(['bench/spark_bench.py'] + (argv_text(args)))}` on {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}, pyspark "
             f"{pyspark.__version__}, pyarrow {pyarrow.__version__}, commit {commit}, load "
             f"{load:.1f} at the end. Synthetic logs of bench/datagen.py (int ids in time order, "
             "events/10 users, 180 days); the pipeline of every family the log feeds (see the "
             "script). Best of the runs, seconds end to end from the Parquet file (Spark: read, "
             "stats pass, shuffle, shard kernels, combine; local: read, prepare, kernels). "
             "Every Spark run's tables were checked equal to the local engine's.", "",
             "| events | engine | shards | seconds | Spark steps (s) |", "|---|---|---|---|---|"]
    for n, eng, shards, s, detail in rows:
        lines.append(f"| {n:,} | {eng} | {shards} | {s:.2f} | {detail} |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def argv_text(args):
    return ["--events"] + [str(n) for n in args.events] + ["--repeats", str(args.repeats)]


if __name__ == "__main__":
    sys.exit(main())
