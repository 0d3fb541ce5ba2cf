"""engine: spark equals the local engine, table for table, for several shard counts.

pyspark in local mode with 2 executor threads (``local[2]``), one session for the module.
Without Java or pyspark the module is skipped, except in CI (``CI=true``) where it fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import os
import shutil
import sys

import pyarrow as pa
import pytest

import engage_core as ec
from engage_plugin.compute import compute_metrics, prepare, rejected_rows
from engage_plugin.config import check_available, load_pipeline
from engage_plugin.sources import read_source
from engage_plugin.targets import PRIMARY_KEYS
from spark_fixtures import event_log, write_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (Spark needs Java 17+)"
    return None


@pytest.fixture(scope="module")
def spark():
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Spark engine tests must run in CI: {why}")
        pytest.skip(why)
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("engage-tests")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.memory", "1g").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit,
    # after pytest closed its streams; keep that line out of the test output
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _nt(name):
    return contextlib.nullcontext()


def local_run(config, start, end, end_day):
    table, roles = read_source(config, start, end)
    ev = prepare(config, table, roles)
    rejected: list = []
    tables = compute_metrics(config, ev, end_day, _nt, rejected=rejected)
    return table, ev, tables, rejected


def sort(table: pa.Table, name: str) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in PRIMARY_KEYS[name]]) if table.num_rows else table


def assert_same(local: dict, spark: dict) -> None:
    assert list(spark) == list(local)
    for name, want in local.items():
        got, want = spark[name], sort(want, name)
        assert got.schema == want.schema, name
        if not got.equals(want):
            rows = [(a, b) for a, b in zip(got.to_pylist(), want.to_pylist()) if a != b]
            raise AssertionError(f"{name}: {got.num_rows} rows vs {want.num_rows} local; "
                                 f"first difference {rows[:1]}")


# a log with integer ids over every day; one with string ids, rolling retention, a day range
VARIANTS = {
    "int-calendar-all-days": dict(string_ids=False, window="calendar", start=None, end=None,
                                  end_day=None),
    "text-rolling-range": dict(string_ids=True, window="rolling", start=dt.date(2025, 3, 1),
                               end=dt.date(2025, 3, 25), end_day=dt.date(2025, 4, 10)),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = {}
    for name, v in VARIANTS.items():
        folder = tmp_path_factory.mktemp(name)
        path = write_pipeline(folder, event_log(string_ids=v["string_ids"]), window=v["window"],
                              files=3)
        config = load_pipeline(str(path)).__class__(
            **{**load_pipeline(str(path)).__dict__, "engine": "spark"})
        out[name] = (config, v, local_run(config, v["start"], v["end"], v["end_day"]))
    return out


@pytest.mark.parametrize("shards", [1, 3, 16])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_table_equals_the_local_engine(spark, cases, variant, shards):
    from engage_plugin.spark import compute_on_spark

    config, v, (source, ev, local, local_rejected) = cases[variant]
    check_available(config)
    assert ec.SchemaError  # the engine's errors are importable alongside
    rejected: list = []
    res = compute_on_spark(config, v["start"], v["end"], end_day=v["end_day"], shards=shards,
                           spark=spark, rejected=rejected)
    assert len(local) == 16  # every metric family, brackets and user scores included
    assert_same(local, res.tables)
    assert (res.rows_read, res.rows_skipped_null_user, res.rows_skipped_null_timestamp) == \
        (ev.rows_read, ev.rows_skipped_null_user, ev.rows_skipped_null_timestamp)
    assert (res.first_day, res.last_day) == (ev.first_day, ev.last_day)
    assert res.shards == shards
    # rejected rows: the same tables (metric, reason, position in the source), and JSON
    assert len(local_rejected) == len(res.rejected) == len(rejected) == 3
    for want, got in zip(local_rejected, res.rejected):
        assert got.select(["metric", "reason", "row"]).equals(want)
    assert {r["reason"] for r in res.rejected[0].to_pylist()} >= {"revenue_negative", "revenue_null"}
    assert res.rejected_rows("r1").equals(rejected_rows(local_rejected, source, "r1"))


def test_a_range_without_events_gives_the_local_engines_empty_tables(spark, cases):
    from engage_plugin.spark import compute_on_spark

    config, _, _ = cases["int-calendar-all-days"]
    start = end = dt.date(2030, 1, 1)
    _, ev, local, _ = local_run(config, start, end, None)
    res = compute_on_spark(config, start, end, end_day=None, shards=2, spark=spark)
    assert_same(local, res.tables)
    assert (res.rows_read, res.rows_skipped_null_timestamp) == (ev.rows_read, 1)  # null ts read
    assert res.first_day is None and res.rejected == []


def test_end_day_before_the_data_fails_like_the_local_engine(spark, cases):
    from engage_plugin.spark import compute_on_spark

    config, _, _ = cases["int-calendar-all-days"]
    with pytest.raises(ValueError, match="end_day: 2025-03-01 is before the last day of data"):
        compute_on_spark(config, None, None, end_day=dt.date(2025, 3, 1), spark=spark)


def test_spark_engine_rejects_a_duckdb_source_naming_the_key(spark, tmp_path, cases):
    from engage_plugin.spark import compute_on_spark

    config, _, _ = cases["int-calendar-all-days"]
    src = config.source.__class__(uri="duckdb:///x.duckdb", table="events")
    bad = config.__class__(**{**config.__dict__, "source": src})
    with pytest.raises(ec.ConfigError, match="source.uri: engine spark cannot read a DuckDB"):
        compute_on_spark(bad, None, None, end_day=None, spark=spark)


# --- the engine override the shards use (no Spark needed) --------------------------------

def test_axis_first_day_default_path_unchanged_and_override_extends_the_axis():
    log = event_log(n_users=60, days=20)
    cal = ec.Calendar(timezone="America/New_York")
    kw = dict(user_id="user_id", timestamp="ts", event="event", breakdowns=["platform"],
              numeric=["revenue"], calendar=cal)
    plain = ec.prepare_events(log, **kw)
    assert plain.axis_first_day is None
    same = ec.prepare_events(log, **kw)
    same.axis_first_day = plain.first_day          # the first day of data: no change
    for fn, extra in ((ec.active_users, {}), (ec.stickiness, {"period": "week"}),
                      (ec.retention, {"period": "week"}), (ec.sessions, {}),
                      (ec.commerce, {"period": "week"}), (ec.first_week, {})):
        assert fn(same, **extra).equals(fn(plain, **extra)), fn.__name__
    early = ec.prepare_events(log, **kw)
    early.axis_first_day = plain.first_day - dt.timedelta(days=10)
    au = ec.active_users(early, windows=[1, 7], breakdown="platform")
    assert au["day"][0].as_py() == early.axis_first_day
    days = pa.compute.greater_equal(au["day"], pa.scalar(plain.first_day))
    assert au.filter(days).equals(ec.active_users(plain, windows=[1, 7], breakdown="platform"))
    assert sum(au.filter(pa.compute.invert(days))["active_users"].to_pylist()) == 0
    late = ec.prepare_events(log, **kw)
    late.axis_first_day = plain.first_day + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="axis_first_day: .* is after the first day of data"):
        ec.active_users(late)


# --- the spark-submit entry point and the example DAG (no Spark session needed) ----------

def test_submit_entry_point_parses_its_options_and_rejects_bad_ones(capsys):
    from engage_plugin.spark import submit

    args = submit.parse_args(["p.yaml", "--start", "2025-06-01", "--end", "2025-06-30",
                              "--shards", "8", "--json"])
    assert (args.pipeline, args.start, args.end, args.shards, args.json) == \
        ("p.yaml", dt.date(2025, 6, 1), dt.date(2025, 6, 30), 8, True)
    with pytest.raises(SystemExit):
        submit.parse_args(["p.yaml", "--start", "June"])
    assert "expected a date like 2025-06-01" in capsys.readouterr().err
    assert submit.main(["/nonexistent/p.yaml"]) == 2


def test_example_dag_imports_cleanly_with_or_without_the_spark_provider():
    pytest.importorskip("airflow")
    import runpy

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ns = runpy.run_path(os.path.join(here, "docs", "examples", "engage_spark_submit.py"))
    try:
        provider = importlib.util.find_spec("airflow.providers.apache.spark")
    except ModuleNotFoundError:
        provider = None
    if provider is None:
        assert ns["SparkSubmitOperator"] is None   # no provider: no DAG, no import error
    else:
        assert ns["SparkSubmitOperator"] is not None


def test_engage_run_with_engine_spark_writes_what_the_local_engine_writes(spark, tmp_path):
    """The runner end to end: `engine: spark` pipelines, run over out-of-order day ranges,
    leave the same tables as the local engine's runs (the same loaded range)."""
    from engage_fixtures import tables
    from engage_plugin.runner import run_pipeline

    log = event_log(n_users=120, days=30)
    local_path = write_pipeline(tmp_path / "local", log)
    spark_path = write_pipeline(tmp_path / "spark", log)
    text = spark_path.read_text(encoding="utf-8")
    spark_path.write_text(text.replace("timezone:", "engine: spark\ntimezone:", 1),
                          encoding="utf-8")
    assert load_pipeline(str(spark_path)).engine == "spark"
    first = min(r for r in log["ts"].to_pylist() if r).date()
    ranges = [(first + dt.timedelta(days=10), first + dt.timedelta(days=20)),
              (first, first + dt.timedelta(days=4))]
    for start, end in ranges:
        a = run_pipeline(load_pipeline(str(local_path)), start=start, end=end)
        b = run_pipeline(load_pipeline(str(spark_path)), start=start, end=end)
        assert (a.start_day, a.end_day) == (b.start_day, b.end_day)
    # the local engine read the new days and the gap; Spark re-read the whole loaded range
    day = lambda n: (first + dt.timedelta(days=n)).isoformat()  # noqa: E731
    assert (a.read_start, a.read_end) == (day(0), day(9))
    assert (b.read_start, b.read_end) == (day(0), day(20))
    assert b.rows_read > a.rows_read
    got = tables(tmp_path / "spark" / "out.duckdb")
    want = tables(tmp_path / "local" / "out.duckdb")
    assert len(want) == 16 and got == want
