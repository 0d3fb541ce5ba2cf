"""The benchmark's engines: every task of every engine (``eng_*.py``), re-exported here,
and ``runner(name, threads)``, the function a child process times.

Tasks (UTC days; the log has ``user_id``, naive-UTC ``ts`` and ``event``): see
bench/README.md. Each engine function returns the engine's own result (timed as is);
``canonical_*`` (canon.py) turns any engine's result into sorted numpy arrays, outside the
timing, so that results compare exactly.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from canon import *  # noqa: E402,F401,F403
from canon import _arrays, _columns, _day_numbers, _equal, _to_arrow  # noqa: E402,F401
from eng_chdb import *  # noqa: E402,F401,F403
from eng_duckdb import *  # noqa: E402,F401,F403
from eng_engage import *  # noqa: E402,F401,F403
from eng_pandas import *  # noqa: E402,F401,F403
from eng_polars import *  # noqa: E402,F401,F403
from reference import *  # noqa: E402,F401,F403

TASKS = ("active_users", "retention", "retention_rolling", "sessions", "funnel")
#: "all metrics": Engage's one call; the others' sum over these tasks (results.md says so)
SUM_TASKS = ("active_users", "retention", "sessions", "funnel")
ALL_TASKS = TASKS + ("all_metrics",)
TASK_TITLES = {
    "active_users": "active users, windows 1/7/30, every day",
    "retention": "weekly cohort retention, offsets 0..12 (calendar weeks)",
    "retention_rolling": "weekly cohort retention, offsets 0..12 (rolling 7x24 h)",
    "sessions": "sessions per UTC day (30-minute gap): sessions, users, total and median "
                "duration",
    "funnel": "funnel view -> add_to_cart -> purchase, 7-day window, users per step per week "
              "of entry",
    "all_metrics": "every metric of the demo pipeline (dags/pipelines/shop.yaml); Engage: one "
                   "compute_metrics call; others: the sum of their " + ", ".join(SUM_TASKS)
                   + " times"}

#: engine -> threads it runs with
ENGINE_THREADS = {"engage": 2, "engage_1t": 1, "duckdb": 2, "polars": 2, "chdb": 2,
                  "chdb_bitmap": 2, "pandas": 1}
ENGINES = tuple(ENGINE_THREADS)
TITLES = {"engage": "Engage (2 threads)", "engage_1t": "Engage (1 thread)",
          "duckdb": "DuckDB", "polars": "Polars", "chdb": "chDB", "chdb_bitmap": "chDB bitmaps",
          "pandas": "pandas"}
#: the Python modules an engine imports (imported before its baseline RSS is read)
IMPORTS = {"engage": ("engage_core", "engage_plugin.compute"),
           "engage_1t": ("engage_core", "engage_plugin.compute"),
           "duckdb": ("duckdb",), "polars": ("polars",), "chdb": ("chdb",),
           "chdb_bitmap": ("chdb",), "pandas": ("pandas",)}


def columns_for(task: str) -> list[str]:
    """The log columns a task reads (what a child loads or reads from Parquet)."""
    return ["user_id", "ts"] + (["event"] if task in ("funnel", "all_metrics") else [])


def applies(name: str, task: str, ids: str) -> bool:
    """Whether an engine runs a task: "all metrics" is one run for Engage only (a sum for
    the others); ``chdb_bitmap`` only measures active users on sparse 64-bit ids."""
    if task == "all_metrics":
        return name.startswith("engage")
    if name == "chdb_bitmap":
        return task == "active_users" and ids == "sparse"
    return True


def runner(name: str, threads: int):
    """``run(task, src)`` for one engine: ``src`` is an in-memory ``pyarrow.Table``, or for
    DuckDB also a Parquet path (its own reader), or for Engage a record-batch stream."""
    if name.startswith("engage"):
        return lambda task, src: engage_task(task, src, threads)  # noqa: F405
    if name == "duckdb":
        con = duckdb_connect(threads)  # noqa: F405
        return lambda task, src: globals()["duckdb_" + task](con, src)
    if name == "polars":
        return lambda task, src: globals()["polars_" + task](src)
    if name in ("chdb", "chdb_bitmap", "pandas"):
        return lambda task, src: globals()[f"{name}_{task}"](src, threads)
    raise ValueError(name)


def canonical(task: str, result):
    return globals()["canonical_" + task](result)


def reference(task: str, table):
    return globals()["reference_" + task](table)
