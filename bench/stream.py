"""Benchmark: a large log streamed from Parquet in record batches, in bounded memory.

    .venv/bin/python bench/stream.py                    # 50M events, 5M users (issue 6)
    .venv/bin/python bench/stream.py --events 10000000

Generates the log first (in its own process, so its memory is not counted), then reads it
with ``ParquetFile.iter_batches`` (``pre_buffer=False``: one row group at a time) into
``engage_core.prepare_events`` and computes active users (1/7/30) and weekly retention.
Prints seconds and the process's peak RSS. Never the whole log in memory at once: the
engine keeps 8 bytes an event (user number and day) plus 8 for the timestamp.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000_000)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is None:
        out = subprocess.run([sys.executable, os.path.join(HERE, "datagen.py"), "--events",
                              str(a.events)], capture_output=True, text=True, check=True)
        path = out.stdout.strip().splitlines()[-1]
        subprocess.run([sys.executable, __file__, "--child", path], check=True)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, os.path.dirname(HERE))
    import engage_core as ec

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pf = pq.ParquetFile(a.child, pre_buffer=False)
    reader = pa.RecordBatchReader.from_batches(
        pf.schema_arrow.remove(pf.schema_arrow.get_field_index("event")),
        pf.iter_batches(batch_size=1 << 20, columns=["user_id", "ts"]))
    t0 = time.perf_counter()
    ev = ec.prepare_events(reader, event=None)
    t1 = time.perf_counter()
    ec.active_users(ev, windows=(1, 7, 30))
    t2 = time.perf_counter()
    ec.retention(ev, period="week", max_offset=12)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{ev.rows_read:,} events streamed from {os.path.basename(a.child)}: read + prepare "
          f"{t1 - t0:.2f} s, active users {t2 - t1:.2f} s, weekly retention {t3 - t2:.2f} s; "
          f"peak RSS {peak:.0f} MB (after imports {before:.0f} MB)")


if __name__ == "__main__":
    main()
