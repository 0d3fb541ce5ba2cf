"""`engage demo`: the sample event log generator and the summary it prints."""

import datetime as dt
import io
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import engage_core as ec
from engage_plugin.demo import EVENT_NAMES, TIMEZONE, make_demo_log, print_summary

SMALL = dict(n_users=1500, days=60, end=dt.date(2025, 3, 31))  # spans 2025-03-09 too


@pytest.fixture(scope="module")
def log():
    return make_demo_log()


@pytest.fixture(scope="module")
def small():
    return make_demo_log(**SMALL)


def test_the_generator_is_deterministic_for_a_seed(small):
    assert make_demo_log(**SMALL).equals(small)
    assert not make_demo_log(**SMALL, seed=8).equals(small)


def test_default_log_has_the_documented_columns_and_size(log):
    assert log.schema.field("user_id").type == pa.int64()
    assert log.schema.field("ts").type == pa.timestamp("us", tz=TIMEZONE)
    assert log.schema.field("event").type == pa.string()
    assert log.schema.field("platform").type == pa.string()
    assert log.schema.field("revenue").type == pa.float64()
    assert pa.types.is_integer(log.schema.field("score").type)
    assert 1_000_000 <= log.num_rows <= 2_500_000
    assert pc.count_distinct(log["user_id"]).as_py() == 20000
    assert log["user_id"].null_count == log["ts"].null_count == log["event"].null_count == 0


def test_event_names_platforms_and_values(log):
    assert set(pc.unique(log["event"]).to_pylist()) == set(EVENT_NAMES)
    platforms = pc.unique(log["platform"]).to_pylist()
    assert set(platforms) == {"ios", "android", "web", None}
    assert 0 < log["platform"].null_count < 0.02 * log.num_rows

    event = log["event"]
    purchase = pc.equal(event, "purchase")
    revenue = log["revenue"].filter(purchase)
    assert revenue.null_count == 0 and pc.min(revenue).as_py() > 0
    assert log["revenue"].filter(pc.invert(purchase)).null_count == log.num_rows - len(revenue)

    nps = log["score"].filter(pc.equal(event, "nps_response"))
    csat = log["score"].filter(pc.equal(event, "csat_response"))
    assert nps.null_count == 0 and csat.null_count == 0
    assert (pc.min(nps).as_py(), pc.max(nps).as_py()) == (0, 10)
    assert (pc.min(csat).as_py(), pc.max(csat).as_py()) == (1, 5)
    surveys = pc.is_in(event, pa.array(["nps_response", "csat_response"]))
    assert log["score"].filter(pc.invert(surveys)).null_count == log.num_rows - len(nps) - len(csat)


def test_the_log_spans_the_spring_forward_change(log, small):
    for table in (log, small):
        local = pc.local_timestamp(table["ts"])
        days = pc.cast(local, pa.date32())
        assert pc.min(days).as_py() < dt.date(2025, 3, 9) < pc.max(days).as_py()
        ts = table["ts"].cast(pa.timestamp("us", tz="UTC"))
        # local minus UTC: -5 h before the change, -4 h after it
        offsets = set(pc.unique(pc.divide(pc.subtract(pc.cast(local, pa.int64()),
                                                      pc.cast(ts, pa.int64())),
                                          3_600_000_000)).to_pylist())
        assert offsets == {-5, -4}
    on_the_day = pc.equal(pc.cast(pc.local_timestamp(log["ts"]), pa.date32()),
                          pa.scalar(dt.date(2025, 3, 9)))
    assert pc.sum(on_the_day).as_py() > 0


def test_each_users_first_event_is_their_only_signup(log):
    con = duckdb.connect()
    con.register("log", log)
    bad = con.execute("""
        with firsts as (
            select user_id, min(ts) filter (where event = 'signup') as signup_ts,
                   count(*) filter (where event = 'signup') as signups,
                   min(ts) filter (where event <> 'signup') as other_ts
            from log group by user_id)
        select count(*) from firsts
        where signups <> 1 or (other_ts is not null and other_ts <= signup_ts)""").fetchone()[0]
    assert bad == 0


def test_activity_grows_and_has_a_weekly_pattern(log):
    con = duckdb.connect()
    con.register("log", log)
    dau = dict(con.execute(f"""
        select (ts at time zone '{TIMEZONE}')::date as d, count(distinct user_id)
        from log group by 1""").fetchall())
    first, last = min(dau), max(dau)
    assert sum(dau[last - dt.timedelta(days=i)] for i in range(28)) > \
        2 * sum(dau[first + dt.timedelta(days=i)] for i in range(28))
    weekday = np.zeros(7)
    for d, n in dau.items():
        weekday[d.weekday()] += n
    assert weekday[5:].max() < weekday[:5].min()


def _write_tables_with_the_engine(table, path):
    """The demo pipeline's tables, computed with engage_core directly (no runner)."""
    ev = ec.prepare_events(table, user_id="user_id", timestamp="ts", event="event",
                           breakdowns=["platform"], calendar=ec.Calendar(timezone=TIMEZONE))
    tables = {
        "active_users": ec.active_users(ev, windows=[1, 7, 30], breakdown="platform"),
        "engagement_daily": ec.engagement_daily(ev),
        "stickiness": pa.concat_tables([ec.stickiness(ev, period=p) for p in ("week", "month")]),
        "retention": ec.retention(ev, period="week", max_offset=12, start_events=["signup"]),
        "lifecycle": ec.lifecycle(ev, period="week"),
        "first_week": ec.first_week(ev),
    }
    con = duckdb.connect(str(path))
    for name, t in tables.items():
        con.register("t", t)
        con.execute(f"create table engage_{name} as select * from t")
        con.unregister("t")
    con.close()


SECTIONS = ["Active users on", "Stickiness, week of", "Weekly retention", "Lifecycle, last",
            "First week of"]


def _check_summary(text, db):
    for section in SECTIONS:
        assert section in text
    con = duckdb.connect(str(db), read_only=True)
    day, dau, wau, mau = con.execute("""
        select day, dau, wau, mau from engage_engagement_daily where segment = 'all'
        order by day desc limit 1""").fetchone()
    per_platform = dict(con.execute("""
        select segment, active_users from engage_active_users
        where day = ? and window_days = 1""", [day]).fetchall())
    con.close()
    assert f"Active users on {day}" in text
    printed = {}
    for line in text.split(f"Active users on {day}")[1].splitlines()[3:]:
        if not line.strip() or not line.startswith("  ") or line.startswith("  new"):
            break
        seg, d, w, m = line.split()[:4]
        printed[seg] = (int(d), int(w), int(m))
    assert printed["all"] == (dau, wau, mau)
    assert {seg: v[0] for seg, v in printed.items()} == per_platform
    assert re.search(r"^  \d{4}-\d\d-\d\d +\d+ +100\.0%", text, re.M)  # a retention row


def test_print_summary_reads_the_tables(small, tmp_path):
    db = tmp_path / "engage.duckdb"
    _write_tables_with_the_engine(small, db)
    out = io.StringIO()
    print_summary(db, out=out)
    _check_summary(out.getvalue(), db)


def test_run_demo_runs_the_pipeline_and_prints_the_summary(tmp_path):
    pytest.importorskip("engage_plugin.runner")
    pytest.importorskip("engage_plugin.config")
    from engage_plugin.demo import run_demo

    out = io.StringIO()
    assert run_demo(tmp_path, out=out) == 0
    text = out.getvalue()
    assert (tmp_path / "events.parquet").exists() and (tmp_path / "pipeline.yaml").exists()
    _check_summary(text, tmp_path / "engage.duckdb")
    assert "Run report" in text and "rows read" in text
