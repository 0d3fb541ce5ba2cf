"""Benchmark: each engine in its own process on the same Parquet log (no engine's thread
pools or allocator state can slow another's), best of 5 after a warm-up run.

    .venv/bin/python bench/isolated.py                          # 10M events, int ids
    .venv/bin/python bench/isolated.py --tasks active_users,retention,sessions --ids uuid

The engines and their formulations are bench/run.py's (whose results are checked equal
there); this script only times them in isolation. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

ENGINES = (("engage", 2), ("engage_1t", 1), ("duckdb", 2), ("polars", 2))


def child(name: str, task: str, path: str, threads: int) -> None:
    import pyarrow.parquet as pq

    import run as R

    runner = R.Runner(name, pq.read_table(path), threads)
    runner.warm_up()
    runner.run(task)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        runner.run(task)
        best = min(best, time.perf_counter() - t0)
        time.sleep(0.2)
    print(json.dumps({"best": best}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--ids", default="int")
    p.add_argument("--order", default="time")
    p.add_argument("--tasks", default="active_users,retention")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        name, task, path, threads = a.child
        return child(name, task, path, int(threads))
    import datagen

    path = datagen.cached(a.events, max(1, a.events // 10), 180, a.ids, a.order)
    print(f"{a.events:,} events, {a.ids} ids, {a.order} order; load {os.getloadavg()[0]:.2f}")
    for task in a.tasks.split(","):
        times = {}
        for name, threads in ENGINES:
            out = subprocess.run([sys.executable, __file__, "--child", name, task, path,
                                  str(threads)], capture_output=True, text=True)
            lines = out.stdout.strip().splitlines()
            times[name] = json.loads(lines[-1])["best"] if out.returncode == 0 and lines \
                else float("nan")
        ref = times["engage"]
        print(f"{task}: " + ", ".join(f"{n} {s:.3f} s ({s / ref:.1f}x)" for n, s in times.items()))


if __name__ == "__main__":
    main()
