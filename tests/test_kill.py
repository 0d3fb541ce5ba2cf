"""A run killed with SIGKILL in the middle of its load leaves every table as it was, and the
next run succeeds (METRICS.md section 5: atomicity), on every target."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engage_plugin.config import load_pipeline
from engage_plugin.runner import run_pipeline

from incremental_fixtures import FIRST, event_log, metric_tables, write_pipeline, write_source
from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

D = dt.timedelta(days=1)

CHILD = textwrap.dedent("""
    import sys, time
    from engage_plugin.config import load_pipeline
    from engage_plugin.runner import run_pipeline
    def progress(step):
        print(step, flush=True)
    run_pipeline(load_pipeline(sys.argv[1]), full_refresh=True, progress=progress)
    print("finished", flush=True)
""")


def _snapshot(place, prefix):
    """Every table the run writes (metric tables, state, the store's size); not the runs."""
    from engage_plugin.warehouse import open_warehouse

    tables = metric_tables(place.uri, place.schema, prefix)
    with open_warehouse(place.uri, place.schema).session(read_only=True) as s:
        state = sorted((r["key"], r["value"]) for r in s.read(prefix + "state").to_pylist())
        store_rows = s.read(prefix + "state_events", columns=["_engage_day"]).num_rows
    return tables, state, store_rows


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_sigkill_during_the_load_changes_nothing(place, tmp_path):
    big = event_log(seed=1, n_users=3000 if place.dialect != "mysql" else 800)
    write_source(tmp_path / "data", big)
    path = write_pipeline(tmp_path, place.uri, schema=place.schema, prefix="k_")
    run_pipeline(load_pipeline(path), start=FIRST, end=FIRST + 9 * D)
    before = _snapshot(place, "k_")
    # what the killed run would leave had it finished: the same run under another prefix
    done = write_pipeline(tmp_path, place.uri, schema=place.schema, prefix="kd_")
    run_pipeline(load_pipeline(done), full_refresh=True)
    after = _snapshot(place, "kd_")
    assert before[2] > 0 and after != before
    killed_before_commit = 0
    for delay in (0.0, 0.0, 0.01, 0.03, 0.1):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=tmp_path,
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        for line in proc.stdout:
            if line.strip() == "load":
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
        proc.stdout.close()
        now = _snapshot(place, "k_")
        # all or nothing: the tables are exactly as before, or exactly what the run writes
        assert now in (before, after), f"killed {delay} s into the load: a partial load"
        if now == before:
            killed_before_commit += 1
        else:  # it committed before the kill landed: start from the old state again
            run_pipeline(load_pipeline(path), start=FIRST, end=FIRST + 9 * D, full_refresh=True)
            assert _snapshot(place, "k_") == before
    assert killed_before_commit >= 2, "every run committed before the kill landed"
    # the next run succeeds and writes what a full run writes
    report = run_pipeline(load_pipeline(path), full_refresh=True)
    assert report.status == "success"
    assert _snapshot(place, "k_") == after
