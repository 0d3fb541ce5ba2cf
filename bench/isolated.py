"""Benchmark: each engine in its own process on the same Parquet log (no engine's thread
pools or allocator state can slow another's), best of 5 after a warm-up run.

    .venv/bin/python bench/isolated.py                          # 10M events, int ids
    .venv/bin/python bench/isolated.py --tasks active_users,retention,sessions --ids uuid

Engage, DuckDB and Polars are bench/run.py's formulations, chDB (per-day bitmaps) and
pandas are bench/engines_more.py's; every engine's result is checked equal to Engage's in
its process before its time counts. Needs `pip install chdb pandas` for those two. A
benchmark, not a test.
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

ENGINES = (("engage", 2), ("engage_1t", 1), ("duckdb", 2), ("polars", 2), ("chdb", 2),
           ("pandas", 1))
#: engines bench/run.py does not run: their task functions live in engines_more.py
MORE = ("chdb", "pandas")


def child(name: str, task: str, path: str, threads: int) -> None:
    import pyarrow.parquet as pq

    import engines as E
    import run as R

    table = pq.read_table(path)
    if name in MORE:
        import engines_more as M

        fn = getattr(M, f"{name}_{task}")
        go = lambda: fn(table, threads)  # noqa: E731
    else:
        runner = R.Runner(name, table, threads)
        runner.warm_up()
        go = lambda: runner.run(task)  # noqa: E731
    result = go()
    # the result must equal Engage's before its time counts
    want = R.Runner("engage", table, 1).run(task)
    equal = E.same(getattr(E, "canonical_" + task)(result),
                   getattr(E, "canonical_" + task)(want))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        go()
        best = min(best, time.perf_counter() - t0)
        time.sleep(0.2)
    print(json.dumps({"best": best if equal else float("nan"), "equal": equal}))


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
            if out.returncode != 0 or not lines:
                print(f"  {name}: failed: {(out.stderr or '').strip().splitlines()[-1:]}")
                times[name] = float("nan")
                continue
            got = json.loads(lines[-1])
            if not got["equal"]:
                print(f"  {name}: RESULT DIFFERS from Engage's; its time does not count")
            times[name] = got["best"]
        ref = times["engage"]
        print(f"{task}: " + ", ".join(f"{n} {s:.3f} s ({s / ref:.1f}x)" for n, s in times.items()))


if __name__ == "__main__":
    main()
