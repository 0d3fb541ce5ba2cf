"""The runner and the DuckDB target: values, types and keys, state, idempotence, hull
semantics, atomicity, and every kind of source (Parquet, CSV, DuckDB table and query)."""

import datetime as dt
import json

import duckdb
import pytest

import engage_core as ec
from engage_core.errors import RunError, SchemaError
from engage_plugin import targets
from engage_plugin.cli import main
from engage_plugin.config import load_pipeline
from engage_plugin.runner import run_pipeline

from engage_fixtures import (TZ, events_table, tables, write_csv, write_duckdb_source,
                             write_parquet, write_pipeline)

D = dt.date


@pytest.fixture()
def shop(tmp_path):
    write_parquet(tmp_path / "data")
    return write_pipeline(tmp_path, "  path: data/events.parquet")


def test_full_run_writes_the_engines_tables_with_types_and_keys(shop, tmp_path):
    report = run_pipeline(load_pipeline(shop))
    db = tmp_path / "engage.duckdb"
    t = events_table()
    assert report.status == "success"
    assert report.rows_read == t.num_rows
    assert report.rows_skipped_null_user == 1 and report.rows_skipped_null_timestamp == 1
    assert (report.start_day, report.end_day) == ("2025-01-01", "2025-01-25")
    # the tables hold exactly what the engine computes on the same log
    ev = ec.prepare_events(t, user_id="user_id", timestamp="ts", event="event",
                           breakdowns=["platform"], calendar=ec.Calendar(TZ))
    expected = ec.active_users(ev, windows=(1, 7), breakdown="platform")
    got = tables(db)
    assert got["engage_active_users"] == sorted(
        tuple(r.values()) for r in expected.to_pylist())
    assert report.rows_written["engage_active_users"] == expected.num_rows
    assert set(report.rows_written) == {
        "engage_active_users", "engage_engagement_daily", "engage_stickiness",
        "engage_retention", "engage_retention_summary", "engage_lifecycle", "engage_first_week"}
    assert report.rows_written == {k: len(v) for k, v in got.items()}
    con = duckdb.connect(str(db), read_only=True)
    try:
        # a hand-checked value: on 2025-01-12 (local) users 3 and 6 were active ((d + user) % 3 == 0)
        assert con.execute("select active_users from engage_active_users where day = "
                           "'2025-01-12' and window_days = 1 and segment = 'all'").fetchone() \
            == (2,)
        types = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'engage_active_users'").fetchall())
        assert types == {"day": "DATE", "window_days": "INTEGER", "segment": "VARCHAR",
                         "active_users": "BIGINT", "computed_at": "TIMESTAMP"}
        rtypes = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'engage_retention'").fetchall())
        assert rtypes["retention_rate"] == "DOUBLE" and rtypes["is_complete"] == "BOOLEAN"
        keys = dict(con.execute(
            "select table_name, constraint_column_names from duckdb_constraints() "
            "where constraint_type = 'PRIMARY KEY'").fetchall())
        assert keys["engage_active_users"] == ["day", "window_days", "segment"]
        assert keys["engage_retention"] == ["cohort_start", "period", "segment", "period_offset"]
        assert keys["engage_first_week"] == ["cohort_day", "segment"]
        assert keys["engage_runs"] == ["run_id"]
        run = con.execute("select run_id, start_day, end_day, status, report "
                          "from engage_runs").fetchall()
        assert len(run) == 1 and run[0][0] == report.run_id
        assert run[0][1:4] == (D(2025, 1, 1), D(2025, 1, 25), "success")
        assert json.loads(run[0][4])["rows_read"] == t.num_rows
        state = dict(con.execute("select * from engage_state").fetchall())
        assert {k: state[k] for k in ("loaded_start_day", "loaded_end_day", "store_timezone")} \
            == {"loaded_start_day": "2025-01-01", "loaded_end_day": "2025-01-25",
                "store_timezone": TZ}
        # the events store holds every event with a user and a timestamp, on its local day
        assert con.execute("select count(*) from engage_state_events").fetchone() == \
            (t.num_rows - 2,)
        assert con.execute("select count(*) from engage_rejected_rows").fetchone() == (0,)
        assert con.execute("select count(*) from engage_active_users where computed_at is null"
                           ).fetchone() == (0,)
    finally:
        con.close()


def test_same_run_twice_changes_only_computed_at(shop, tmp_path):
    db = tmp_path / "engage.duckdb"
    config = load_pipeline(shop)
    run_pipeline(config, start=D(2025, 1, 3), end=D(2025, 1, 18))
    first = tables(db)
    first_at = tables(db, with_computed_at=True)
    run_pipeline(config, start=D(2025, 1, 3), end=D(2025, 1, 18))
    assert tables(db) == first
    assert sum(len(v) for v in first.values()) > 100
    second_at = tables(db, with_computed_at=True)
    stamp = lambda rows: {r[-1] for r in rows}  # noqa: E731
    assert stamp(first_at["engage_lifecycle"]).isdisjoint(stamp(second_at["engage_lifecycle"]))


def test_out_of_order_runs_equal_one_full_run_over_the_hull(tmp_path):
    write_parquet(tmp_path / "data")
    a = write_pipeline(tmp_path, "  path: data/events.parquet", db="a.duckdb", name="a")
    b = write_pipeline(tmp_path, "  path: data/events.parquet", db="b.duckdb", name="b")
    run_pipeline(load_pipeline(a), start=D(2025, 1, 10), end=D(2025, 1, 20))
    report = run_pipeline(load_pipeline(a), start=D(2025, 1, 1), end=D(2025, 1, 5))
    assert (report.start_day, report.end_day) == ("2025-01-01", "2025-01-20")
    run_pipeline(load_pipeline(b), start=D(2025, 1, 1), end=D(2025, 1, 20))
    got, want = tables(tmp_path / "a.duckdb"), tables(tmp_path / "b.duckdb")
    assert got == want
    days = [r[0] for r in want["engage_engagement_daily"]]
    assert min(days) == D(2025, 1, 1) and max(days) == D(2025, 1, 20)
    # a full refresh over [1, 5] forgets the hull
    run_pipeline(load_pipeline(a), start=D(2025, 1, 1), end=D(2025, 1, 5), full_refresh=True)
    days = [r[0] for r in tables(tmp_path / "a.duckdb")["engage_engagement_daily"]]
    assert max(days) == D(2025, 1, 5)


def test_local_day_filter_uses_the_zone(tmp_path):
    """User 2's events at 23:30 New York time are on the next UTC day: a run over one local
    day reads them on their local day."""
    write_parquet(tmp_path / "data")
    path = write_pipeline(tmp_path, "  path: data/events.parquet")
    report = run_pipeline(load_pipeline(path), start=D(2025, 1, 4), end=D(2025, 1, 4))
    t = events_table().to_pylist()
    local = [r for r in t if r["ts"] is not None and (
        r["ts"].replace(tzinfo=dt.timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo(TZ))
        .date() == D(2025, 1, 4))]
    assert any(r["user_id"] == 2 for r in local)
    # + the null-timestamp row, always read and counted
    assert report.rows_read == len(local) + 1 and report.rows_skipped_null_timestamp == 1
    dau = tables(tmp_path / "engage.duckdb")["engage_engagement_daily"]
    assert [r[2] for r in dau if r[1] == "all"] == [len({r["user_id"] for r in local})]


def test_a_failure_mid_load_leaves_every_table_as_it_was(shop, tmp_path, monkeypatch, capsys):
    db = tmp_path / "engage.duckdb"
    run_pipeline(load_pipeline(shop), start=D(2025, 1, 1), end=D(2025, 1, 10))
    before = tables(db, with_computed_at=True)
    calls = []
    real = targets.insert_table

    def failing(session, table, arrow, computed_at):
        calls.append(table)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(session, table, arrow, computed_at)

    monkeypatch.setattr(targets, "insert_table", failing)
    with pytest.raises(RunError, match="disk full"):
        run_pipeline(load_pipeline(shop), start=D(2025, 1, 1), end=D(2025, 1, 25))
    assert tables(db, with_computed_at=True) == before
    calls.clear()
    assert main(["run", str(shop), "--end", "2025-01-25"]) == 1
    assert "engage: error: load into" in capsys.readouterr().err
    assert tables(db, with_computed_at=True) == before
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert dict(con.execute("select * from engage_state").fetchall())["loaded_end_day"] \
            == "2025-01-10"
        statuses = sorted(r[0] for r in con.execute("select status from engage_runs").fetchall())
        assert statuses == ["failed", "failed", "success"]
    finally:
        con.close()


def test_schema_and_prefix(tmp_path):
    write_parquet(tmp_path / "data")
    path = write_pipeline(tmp_path, "  path: data/events.parquet",
                          target_extra="  schema: analytics\n  table_prefix: m_\n")
    report = run_pipeline(load_pipeline(path))
    assert "m_first_week" in report.rows_written
    got = tables(tmp_path / "engage.duckdb", prefix="m_", schema="analytics")
    assert len(got["m_first_week"]) == report.rows_written["m_first_week"] > 0


def _all_sources_equal(tmp_path, source_yaml: str):
    write_parquet(tmp_path / "ref")
    ref = write_pipeline(tmp_path / "ref", "  path: events.parquet")
    run_pipeline(load_pipeline(ref), start=D(2025, 1, 2), end=D(2025, 1, 22))
    other = write_pipeline(tmp_path, source_yaml)
    report = run_pipeline(load_pipeline(other), start=D(2025, 1, 2), end=D(2025, 1, 22))
    want = tables(tmp_path / "ref" / "engage.duckdb")
    assert tables(tmp_path / "engage.duckdb") == want
    assert len(want["engage_retention"]) > 10
    return report


def test_csv_source(tmp_path):
    write_csv(tmp_path / "data")
    report = _all_sources_equal(tmp_path, "  path: data/*.csv")
    assert report.rows_skipped_null_timestamp == 1


def test_duckdb_table_source(tmp_path):
    write_duckdb_source(tmp_path)
    _all_sources_equal(tmp_path, "  uri: duckdb:///source.duckdb\n  table: events")


def test_duckdb_query_source(tmp_path):
    write_duckdb_source(tmp_path)
    _all_sources_equal(tmp_path, "  uri: duckdb:///source.duckdb\n"
                                 "  query: select * from events where true")


def test_missing_column_fails_before_anything_is_written(tmp_path):
    write_parquet(tmp_path / "data", events_table().rename_columns(
        ["user_id", "ts", "event", "os"]))
    path = write_pipeline(tmp_path, "  path: data/events.parquet")
    with pytest.raises(SchemaError, match="column `platform` \\(breakdown platform\\) not found"):
        run_pipeline(load_pipeline(path))
    assert not (tmp_path / "engage.duckdb").exists()


def test_wrong_type_names_column_type_and_accepted(tmp_path):
    t = events_table()
    t = t.set_column(1, "ts", t["ts"].cast("string"))
    write_parquet(tmp_path / "data", t)
    path = write_pipeline(tmp_path, "  path: data/events.parquet")
    with pytest.raises(SchemaError) as info:
        run_pipeline(load_pipeline(path))
    assert "column `ts` (timestamp) has type string; accepted: a timestamp" in str(info.value)
    assert not (tmp_path / "engage.duckdb").exists()
