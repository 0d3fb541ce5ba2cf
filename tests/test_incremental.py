"""METRICS.md section 5 on every target: after any sequence of runs over any day ranges
(out of order, overlapping, repeated, with gaps), every table equals one --full-refresh run;
late data changes exactly what a full run says; a run reads only its own days."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engage_plugin.config import load_pipeline
from engage_plugin.runner import run_pipeline

from incremental_fixtures import (DAYS, FIRST, event_log, metric_tables, write_pipeline,
                                  write_source)
from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

D = dt.timedelta(days=1)
day_ranges = st.lists(
    st.tuples(st.integers(-2, DAYS + 1), st.integers(0, 6)).map(
        lambda t: (FIRST + t[0] * D, FIRST + (t[0] + t[1]) * D)),
    min_size=1, max_size=4)
EXAMPLES = {"duckdb": 12, "sqlite": 6, "postgresql": 6, "mysql": 4}


def _run(folder, place, prefix, start, end, full=False):
    path = write_pipeline(folder, place.uri, schema=place.schema, prefix=prefix)
    return run_pipeline(load_pipeline(path), start=start, end=end, full_refresh=full)


def _equal_to_full_refresh(folder, place, prefix, start, end):
    full = f"full{prefix}"
    _run(folder, place, full, start, end, full=True)
    got = metric_tables(place.uri, place.schema, prefix)
    want = metric_tables(place.uri, place.schema, full)
    assert set(got) == set(want) and len(want) == 16
    for table in want:
        assert got[table] == want[table], table


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_any_sequence_of_runs_equals_one_full_refresh(place, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inc")
    write_source(folder / "data", event_log(string_ids=place.dialect in ("postgresql", "sqlite")))
    counter = iter(range(10 ** 6))

    @settings(max_examples=EXAMPLES[place.dialect], deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(day_ranges)
    def check(ranges):
        prefix = f"s{next(counter)}_"
        for start, end in ranges:
            report = _run(folder, place, prefix, start, end)
            assert report.status == "success"
        hull = (min(r[0] for r in ranges), max(r[1] for r in ranges))
        _equal_to_full_refresh(folder, place, prefix, *hull)

    check()


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_late_data_on_an_old_day_changes_later_windows_and_cohorts(place, tmp_path):
    log = event_log(seed=5)
    write_source(tmp_path / "data", log)
    last = FIRST + (DAYS - 1) * D
    for i in range(0, DAYS, 6):  # daily-ish loads in order
        _run(tmp_path, place, "e_", FIRST + i * D, min(FIRST + (i + 5) * D, last))
    before = metric_tables(place.uri, place.schema, "e_")
    # late events on day 3: a brand-new user (changes cohorts) and an existing user
    late_day = FIRST + 3 * D
    ts = dt.datetime.combine(late_day, dt.time(18))
    extra = pa.table({"user_id": pa.array([999_999, log["user_id"][0].as_py()], pa.int64()),
                      "ts": pa.array([ts, ts], pa.timestamp("us")),
                      "event": ["signup", "purchase"], "platform": ["web", None],
                      "revenue": pa.array([None, 12.5], pa.float64()),
                      "score": pa.array([None, None], pa.int64())})
    write_source(tmp_path / "data", pa.concat_tables([log, extra]))
    report = _run(tmp_path, place, "e_", late_day, late_day)
    assert (report.read_start, report.read_end) == (late_day.isoformat(),) * 2
    # only the late day was read from the source (and the row with a null timestamp,
    # which belongs to no day and is read and counted by every run)
    assert report.rows_read == 1 + sum(1 for r in pa.concat_tables([log, extra]).to_pylist()
                                       if r["ts"] and _local(r["ts"]) == late_day)
    assert report.rows_skipped_null_timestamp == 1
    after = metric_tables(place.uri, place.schema, "e_")
    assert after["active_users"] != before["active_users"]  # windows after day 3 moved
    assert after["retention"] != before["retention"]  # a new cohort member on day 3
    _equal_to_full_refresh(tmp_path, place, "e_", FIRST, last)


def _local(ts: dt.datetime) -> dt.date:
    import zoneinfo

    return ts.replace(tzinfo=dt.timezone.utc).astimezone(zoneinfo.ZoneInfo("America/New_York")).date()


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_same_range_twice_changes_nothing_but_computed_at(place, tmp_path):
    write_source(tmp_path / "data", event_log(seed=9))
    _run(tmp_path, place, "i_", FIRST, FIRST + 9 * D)
    once = metric_tables(place.uri, place.schema, "i_")
    report = _run(tmp_path, place, "i_", FIRST + 2 * D, FIRST + 4 * D)
    assert report.rows_read < report.store_rows
    again = _run(tmp_path, place, "i_", FIRST + 2 * D, FIRST + 4 * D)
    assert again.rows_written == report.rows_written
    assert metric_tables(place.uri, place.schema, "i_") == once


def test_runs_of_single_families_share_one_store(tmp_path):
    """Airflow's per-family tasks run the pipeline restricted to one family: the store keeps
    the whole file's columns, so none of them rebuilds it or reads more than its days."""
    from engage_plugin.airflow_config import with_metrics

    write_source(tmp_path / "data", event_log(seed=2))
    path = write_pipeline(tmp_path, f"duckdb:///{tmp_path / 'fam.duckdb'}")
    config = load_pipeline(path)
    run_pipeline(config, start=FIRST, end=FIRST + 9 * D)
    day = FIRST + 10 * D
    for family in ("commerce", "sessions", "survey", "active_users"):
        report = run_pipeline(with_metrics(config, [family]), start=day, end=day)
        assert report.store_rebuilt is None, family
        assert (report.read_start, report.read_end) == (day.isoformat(), day.isoformat())
    full = run_pipeline(config, start=FIRST, end=day)
    assert full.store_rebuilt is None
    uri = f"duckdb:///{tmp_path / 'fam.duckdb'}"
    _run(tmp_path, type("P", (), {"uri": uri, "schema": None})(), "ref_", FIRST, day, True)
    assert metric_tables(uri, None, "engage_") == metric_tables(uri, None, "ref_")


def test_the_store_is_rebuilt_when_columns_zone_or_version_change(tmp_path):
    """A store written for other columns, another zone or by an older version (no store
    keys in the state) is rebuilt from the source over the loaded range and the request:
    the tables still equal a full refresh."""
    from engage_plugin.warehouse import open_warehouse

    write_source(tmp_path / "data", event_log(seed=8))
    uri = f"duckdb:///{tmp_path / 'rb.duckdb'}"
    path = write_pipeline(tmp_path, uri)
    run_pipeline(load_pipeline(path), start=FIRST, end=FIRST + 9 * D)

    def check(reason, start, end):
        report = run_pipeline(load_pipeline(path), start=start, end=end)
        assert report.store_rebuilt and reason in report.store_rebuilt
        assert (report.read_start, report.read_end) == (FIRST.isoformat(), end.isoformat())
        ref = tmp_path / "ref.yaml"  # the same file (zone, metrics), another prefix
        ref.write_text(path.read_text(encoding="utf-8").replace("table_prefix: engage_",
                                                                "table_prefix: ref_"),
                       encoding="utf-8")
        run_pipeline(load_pipeline(ref), start=FIRST, end=end, full_refresh=True)
        assert metric_tables(uri, None, "engage_") == metric_tables(uri, None, "ref_")

    # 1. another zone
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("timezone: America/New_York", "timezone: Europe/Berlin"),
                    encoding="utf-8")
    check("time zone changed", FIRST + 10 * D, FIRST + 11 * D)
    path.write_text(text, encoding="utf-8")
    check("time zone changed", FIRST + 12 * D, FIRST + 12 * D)
    # 2. the metrics read other columns (without survey, no score column)
    path.write_text(text.replace("  survey: {nps_event: nps_response, periods: [week]}\n", ""),
                    encoding="utf-8")
    assert path.read_text(encoding="utf-8") != text
    check("columns", FIRST + 13 * D, FIRST + 13 * D)
    path.write_text(text, encoding="utf-8")
    check("columns", FIRST + 14 * D, FIRST + 14 * D)
    # 3. a state written by a version without the store
    with open_warehouse(uri).session() as s:
        s.delete("engage_state", where={"key": "store_schema"})
    check("older version", FIRST + 15 * D, FIRST + 15 * D)
