"""Sources behind a warehouse URL (a table or a query) give the same tables as the same
events in Parquet, with the day range pushed down across the DST change of New York:
PostgreSQL timestamptz / timestamp / date columns, MariaDB DATETIME, SQLite ISO text."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from engage_plugin.config import load_pipeline
from engage_plugin.runner import run_pipeline
from engage_plugin.warehouse import open_warehouse

from incremental_fixtures import FIRST, TZ, event_log, metric_tables, write_source
from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

D = dt.timedelta(days=1)
METRICS = """\
metrics:
  active_users: {windows: [1, 7], breakdown: platform}
  retention: {periods: [week, day], max_offset: 3, start_events: [signup]}
  commerce: {purchase_events: [purchase], periods: [week]}
  sessions: {session_gap: 30m}
"""


def _pipeline(folder, source: str, target_uri: str, prefix: str):
    path = folder / f"src_{prefix.rstrip('_')}.yaml"
    path.write_text(f"pipeline: src\ntimezone: {TZ}\nsource:\n{source}\ntarget:\n"
                    f"  uri: {target_uri}\n  table_prefix: {prefix}\n{METRICS}",
                    encoding="utf-8")
    return load_pipeline(path)


def _store_events(place, log: pa.Table, ts_kind: str) -> None:
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        if ts_kind == "timestamptz":
            s.execute(f"CREATE TABLE {wh.qualified('events')} (user_id BIGINT, ts TIMESTAMPTZ, "
                      "event TEXT, platform TEXT, revenue DOUBLE PRECISION, score BIGINT)")
            log = log.set_column(1, "ts", log["ts"].cast(pa.timestamp("us", "UTC")))
        else:
            s.create_table("events", log.schema)
        s.insert("events", log)


CASES = [(d, "naive", how) for d in DIALECTS for how in ("table", "query")] + \
    [("postgresql", "timestamptz", how) for how in ("table", "query")]


@pytest.mark.parametrize(("place", "ts_kind", "how"), CASES, indirect=["place"])
def test_sql_source_equals_the_parquet_source(place, ts_kind, how, tmp_path):
    log = event_log(seed=4)
    _store_events(place, log, ts_kind)
    write_source(tmp_path / "data", log)
    table = f"{place.schema}.events" if place.schema else "events"
    src = f"  uri: {place.uri}\n" + (f"  table: {table}" if how == "table" else
                                      f"  query: select * from {table} where user_id is not null")
    target = f"duckdb:///{tmp_path / 'out.duckdb'}"
    sql = _pipeline(tmp_path, src, target, "sql_")
    files = _pipeline(tmp_path, "  path: data/events.parquet", target, "pq_")
    if how == "query":  # the query drops the null-user row: so does the Parquet side
        write_source(tmp_path / "data", log.filter(pa.compute.is_valid(log["user_id"])))
    # days around the DST change (2025-03-09), then the rest: incremental on both sides
    for start, end in ((FIRST + 9 * D, FIRST + 11 * D), (FIRST, FIRST + 23 * D)):
        a = run_pipeline(sql, start=start, end=end)
        b = run_pipeline(files, start=start, end=end)
        assert (a.rows_read, a.rows_skipped_null_timestamp) == \
            (b.rows_read, b.rows_skipped_null_timestamp)
    got = metric_tables(target, None, "sql_")
    want = metric_tables(target, None, "pq_")
    assert got == want and len(got["active_users"]) > 0


@pytest.mark.parametrize("place", ["postgresql", "duckdb"], indirect=True)
def test_date_column_source(place, tmp_path):
    log = event_log(seed=6)
    log = log.set_column(1, "ts", pa.array([None if v is None else v.date()
                                            for v in log["ts"].to_pylist()], pa.date32()))
    _store_events(place, log, "date")
    write_source(tmp_path / "data", log)
    table = f"{place.schema}.events"
    target = f"duckdb:///{tmp_path / 'out.duckdb'}"
    sql = _pipeline(tmp_path, f"  uri: {place.uri}\n  table: {table}", target, "sql_")
    files = _pipeline(tmp_path, "  path: data/events.parquet", target, "pq_")
    a = run_pipeline(sql, start=FIRST + 9 * D, end=FIRST + 9 * D)
    b = run_pipeline(files, start=FIRST + 9 * D, end=FIRST + 9 * D)
    assert a.rows_read == b.rows_read > 1
    assert metric_tables(target, None, "sql_") == metric_tables(target, None, "pq_")
