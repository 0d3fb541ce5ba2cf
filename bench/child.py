"""One benchmark measurement in its own process: one engine, one task, one log, one input
mode. Started by run.py (``python bench/child.py --engine ... --task ...``); prints one JSON
line and writes the canonical form of the result to ``--out`` (an ``.npz``) for the parent
to check against Engage's.

The process imports the engine's libraries, then (``--mode memory``) loads the log's
columns from Parquet: its RSS then is the baseline. It resets the kernel's RSS high-water
mark (``/proc/self/clear_refs``), runs the task once (a warm-up, whose result is the one
checked) and then up to ``--repeats`` timed runs while they fit in ``--budget`` seconds (a
warm-up slower than half the budget is the only sample). With ``--pair-threads N``
(run.py gives it to Engage on 1 thread: N = 2), every timed run is paired with one on N
threads, the two in turn, and those times are reported too (``pair``): the 1 -> 2 threads
ratio from runs seconds apart on the same machine state, where the two separate processes
can meet a shared machine's neighbours at different moments. The peak (of the warm-up run,
the work done once; ``peak_all_mb`` is after every run) is ``VmHWM``
(``/proc/self/status``), not ``ru_maxrss``: a child's ``ru_maxrss`` starts at its parent's
RSS at fork time (recorded anyway as ``ru_maxrss_mb``). ``--mode parquet`` times reading
the file too: DuckDB, Polars and chDB through their own Parquet readers, pandas through
pyarrow, Engage by streaming record batches (``ParquetFile.iter_batches``) into the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def maxrss_mb() -> float:
    """``ru_maxrss``: note that it starts at the parent's RSS at fork time (Linux carries
    the forked memory's high-water mark over the exec), hence ``hwm_mb`` for the peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_mb() -> float:
    """``VmHWM``: this process's own peak RSS since the last reset."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return maxrss_mb()


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def engage_stream(path: str, columns, how: str):
    """(source, label) for Engage from Parquet: a record-batch stream over
    ``iter_batches`` into ``prepare_events_stream`` when the engine has it, else into
    ``prepare_events`` (which takes a ``RecordBatchReader``); ``how="table"`` reads the
    whole table first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import engage_core as ec

    if how == "table":
        return pq.read_table(path, columns=columns), "read_table + prepare_events(table)"
    pf = pq.ParquetFile(path, pre_buffer=False)
    schema = pa.schema([pf.schema_arrow.field(c) for c in columns])
    reader = pa.RecordBatchReader.from_batches(
        schema, pf.iter_batches(batch_size=1 << 20, columns=columns))
    if hasattr(ec, "prepare_events_stream"):
        return reader, "iter_batches + prepare_events_stream"
    return reader, "iter_batches + prepare_events(RecordBatchReader)"


def canonical_arrays(E, task: str, result) -> dict:
    """A task's result in canonical form, as named arrays (all metrics: the tables that
    match the single tasks)."""
    if task == "all_metrics":
        return {f"{t}_{i}": x for t, tab in E.all_metrics_parts(result).items()
                for i, x in enumerate(E.canonical(t, tab))}
    return {f"{task}_{i}": x for i, x in enumerate(E.canonical(task, result))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=("memory", "parquet"), default="memory")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=20.0)
    p.add_argument("--engage-parquet", choices=("stream", "table"), default="stream")
    p.add_argument("--pair-threads", type=int, default=0,
                   help="Engage only: alternate every timed run with one on this many threads")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    for var in ("ENGAGE_THREADS", "POLARS_MAX_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(a.threads)

    import importlib

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import engines as E

    for mod in E.IMPORTS[a.engine]:
        importlib.import_module(mod)
    run = E.runner(a.engine, a.threads) if a.task != "all_metrics" else None
    cols = E.columns_for(a.task)
    info = {"engine": a.engine, "task": a.task, "mode": a.mode, "threads": a.threads}
    config = timer = None
    if a.task == "all_metrics":
        config, timer = E.pipeline_config(), E.FamilyTimer()
    info["imports_mb"] = rss_mb()
    table = None
    if a.mode == "memory":
        table = pq.read_table(a.data, columns=cols)
        if a.task == "all_metrics":
            table = E.add_numeric(table)
    info["baseline_mb"] = rss_mb()
    info["load_peak_mb"] = hwm_mb()
    info["hwm_reset"] = reset_peak()

    def go(threads=a.threads):
        if threads != a.threads:  # a paired run (--pair-threads)
            os.environ["ENGAGE_THREADS"] = str(threads)  # all metrics: compute.py reads it
            try:
                if a.task == "all_metrics":
                    return go()
                return E.runner(a.engine, threads)(a.task, table)
            finally:
                os.environ["ENGAGE_THREADS"] = str(a.threads)
        if a.task == "all_metrics":
            timer.seconds = {}  # the families' seconds of the last run
            if table is not None:
                return E.engage_all_metrics(table, config, timer)
            src, info["input_path"] = engage_stream(a.data, cols, a.engage_parquet)
            src = E.add_numeric(src) if isinstance(src, pa.Table) else E.with_numeric_stream(src)
            return E.engage_all_metrics(src, config, timer)
        if table is not None:
            return run(a.task, table)
        if a.engine.startswith("engage"):
            src, info["input_path"] = engage_stream(a.data, cols, a.engage_parquet)
            return run(a.task, src)
        if a.engine in ("duckdb", "polars", "chdb", "chdb_bitmap"):
            return run(a.task, a.data)  # the engine's own Parquet reader
        return run(a.task, pq.read_table(a.data, columns=cols))

    t0 = time.perf_counter()
    result = go()
    first = time.perf_counter() - t0
    # the peak of doing the work once; repeated runs in one process can raise the
    # high-water mark further (memory the allocators keep between runs): peak_all_mb
    info["peak_mb"] = hwm_mb()
    times = []
    paired = a.pair_threads > 0 and a.engine.startswith("engage") and table is not None
    pair_times = []
    pair_result = go(a.pair_threads) if paired else None  # its warm-up, checked below
    if first > a.budget / 2:
        times = [first]  # too slow to repeat: the warm-up is the sample
    else:
        spent = first
        for r in range(a.repeats):
            # paired: this run and one on --pair-threads threads, in turn (which goes first
            # alternates), so that both see the machine as it is at that moment
            order = [a.threads, a.pair_threads][::1 if r % 2 == 0 else -1] if paired else [a.threads]
            for threads in order:
                time.sleep(0.2)  # let the previous run's worker threads go idle
                t0 = time.perf_counter()
                go(threads)
                took = time.perf_counter() - t0
                (times if threads == a.threads else pair_times).append(took)
                spent += took
            if spent > a.budget * (2 if paired else 1):
                break
    if pair_times:
        info["pair"] = {"threads": a.pair_threads, "times": pair_times, "best": min(pair_times),
                        "median": statistics.median(pair_times), "n": len(pair_times)}
    info.update(peak_all_mb=hwm_mb(), ru_maxrss_mb=maxrss_mb(), warmup=first, times=times,
                best=min(times), median=statistics.median(times), n=len(times))
    if timer is not None:
        info["families"] = dict(timer.seconds)
    arrays = canonical_arrays(E, a.task, result)
    if pair_result is not None and "pair" in info:  # the same result on the other thread count
        other = canonical_arrays(E, a.task, pair_result)
        info["pair"]["identical"] = (other.keys() == arrays.keys() and all(
            np.array_equal(other[k], arrays[k], equal_nan=arrays[k].dtype.kind == "f")
            for k in arrays))
    np.savez(a.out, **arrays)
    info["out"] = a.out
    print(json.dumps(info))


if __name__ == "__main__":
    main()
