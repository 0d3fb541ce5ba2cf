"""How much a second thread can give on this machine, whatever the code: the 1 -> 2 thread
speedup of three plain kinds of work, measured in their own process before the engines
(bench/run.py writes them at the top of results.md).

- streaming: copy 320 MB of int64 (_gather.join over four chunks): memory bandwidth;
- random reads: gather 10M values at random from a 16 MB table (_gather.take): what the
  per-user state of the metric kernels costs;
- in-cache compute: numpy sorts of 256 KB arrays, one Python thread per core (numpy lets go
  of the GIL while it sorts): no memory traffic to share.

Runs of 1 and 2 threads alternate, best of ``--repeats`` each, so a slow moment of a shared
machine falls on both. Engage's kernels mostly stream or read at random: on a machine where
those two scale by 1.4x, no kernel of that kind scales by 1.7x.

    python bench/probe.py            # prints the speedups
    python bench/probe.py --json     # one JSON line (bench/run.py reads it)
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np


def _best(fn, repeats: int) -> dict:
    """Best seconds of ``fn(threads)`` for 1 and 2 threads, runs alternating."""
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(repeats):
        for t in (1, 2):
            t0 = time.perf_counter()
            fn(t)
            best[t] = min(best[t], time.perf_counter() - t0)
    return best


def probe(repeats: int = 9) -> dict:
    from engage_core import _columns, _gather

    rng = np.random.default_rng(0)
    big = np.arange(40_000_000, dtype=np.int64)
    chunks = _columns.Int64Chunks(np.array_split(big, 4))
    table = rng.integers(0, 1 << 40, 1 << 21)  # 16 MB
    sel = rng.integers(0, len(table), 10_000_000).astype(np.int32)
    arrays = [rng.random(32_768) for _ in range(2)]  # 256 KB each

    def sorts(threads: int) -> None:
        def work(a, times):
            for _ in range(times):
                np.sort(a, kind="quicksort")

        if threads == 1:
            work(arrays[0], 80)
            return
        ts = [threading.Thread(target=work, args=(a, 40)) for a in arrays]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    out = {}
    for name, fn in (("streaming", lambda t: _gather.join(chunks, t)),
                     ("random reads", lambda t: _gather.take(sel, table, t)),
                     ("in-cache compute", sorts)):
        fn(2)  # warm-up (pages, thread pools)
        b = _best(fn, repeats)
        out[name] = {"one": b[1], "two": b[2], "speedup": b[1] / b[2]}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out = probe(a.repeats)
    if a.json:
        print(json.dumps(out))
        return
    for name, r in out.items():
        print(f"{name:>17}: 1 thread {r['one'] * 1e3:7.1f} ms, 2 threads {r['two'] * 1e3:7.1f} ms, "
              f"speedup {r['speedup']:.2f}x")


if __name__ == "__main__":
    main()
