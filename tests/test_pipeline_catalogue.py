"""Every metric family of PIPELINE.md through `engage run`: tables, keys, rejected rows."""

import datetime as dt
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

import engage_core as ec
from engage_plugin.cli import main
from engage_plugin.demo import make_demo_log

PIPELINE = """\
pipeline: full
timezone: America/New_York
source:
  path: events.parquet
target:
  uri: duckdb:///engage.duckdb
metrics:
  active_users: {windows: [1, 7], breakdown: platform}
  engagement_daily: {}
  stickiness: {periods: [week, month]}
  retention: {periods: [week, day], max_offset: 4, start_events: [signup], window: rolling,
              brackets: [[1, 2], [3, 4]]}
  lifecycle: {periods: [week]}
  first_week: {}
  sessions: {session_gap: 30m, breakdown: platform}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], conversion_window: 2d, periods: [week]}
  conversions:
    email_open_rate: {denominator: [email_delivered], numerator: [email_open], periods: [week]}
    email_click_rate: {denominator: [email_open], numerator: [email_click], periods: [month]}
  commerce: {purchase_events: [purchase], periods: [month]}
  cohort_revenue: {purchase_events: [purchase], periods: [month], max_offset: 3}
  survey: {periods: [month]}
  engagement_score: {weights: {purchase: 10, add_to_cart: 3}, tiers: {power: 50, core: 10, casual: 0},
                     periods: [week], user_scores: true}
"""
TABLES = ["active_users", "engagement_daily", "stickiness", "retention", "retention_summary",
          "retention_brackets", "lifecycle", "first_week", "sessions_daily", "funnel",
          "conversion", "commerce", "cohort_revenue", "survey", "score_tiers", "user_scores"]


def _log():
    good = make_demo_log(n_users=400, days=45, seed=3, end=dt.date(2025, 3, 20))
    bad = pa.table({
        "user_id": pa.array([9_000_001, 9_000_002, 9_000_003, 9_000_004], pa.int64()),
        "ts": pa.array([dt.datetime(2025, 3, 1, 12)] * 4, good.schema.field("ts").type),
        "event": ["purchase", "purchase", "nps_response", "csat_response"],
        "platform": ["ios", None, "web", "web"],
        "revenue": [None, -5.0, None, None],
        "score": pa.array([None, None, 11, 4], good.schema.field("score").type),
    }).select(good.schema.names).cast(good.schema)
    return pa.concat_tables([good, bad])


def test_every_family_runs_and_rejected_rows_are_traced(tmp_path, capsys):
    log = _log()
    pq.write_table(log, tmp_path / "events.parquet")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    assert main(["run", str(tmp_path / "p.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_rejected"] == {
        "commerce": {"revenue_null": 1, "revenue_negative": 1},
        "cohort_revenue": {"revenue_null": 1, "revenue_negative": 1},
        "survey": {"score_out_of_range": 1}}
    assert set(report["rows_written"]) == {"engage_" + t for t in TABLES}
    con = duckdb.connect(str(tmp_path / "engage.duckdb"), read_only=True)
    rejected = con.sql("select metric, reason, row_json from engage_rejected_rows "
                       "where run_id = ? order by 1, 2", params=[report["run_id"]]).fetchall()
    assert [(m, r) for m, r, _ in rejected] == [
        ("cohort_revenue", "revenue_negative"), ("cohort_revenue", "revenue_null"),
        ("commerce", "revenue_negative"), ("commerce", "revenue_null"),
        ("survey", "score_out_of_range")]
    assert json.loads(rejected[-1][2])["user_id"] == 9_000_003
    assert json.loads(rejected[-1][2])["score"] == 11

    # The loaded tables equal the engine's output on the same events.
    ev = ec.prepare_events(log, breakdowns=["platform"], numeric=["revenue", "score"],
                           calendar=ec.Calendar("America/New_York"))
    want = {
        "funnel": ec.funnel(ev, name="checkout", steps=["view", "add_to_cart", "purchase"],
                            conversion_window=2 * 86400, period="week"),
        "survey": ec.survey(ev, period="month"),
        "retention_brackets": pa.concat_tables([
            ec.retention_brackets(ev, brackets=[[1, 2], [3, 4]], period=p, max_offset=4,
                                  start_events=["signup"], window="rolling") for p in ("week", "day")]),
    }
    for table, expected in want.items():
        cols = ", ".join(expected.column_names)
        got = con.sql(f"select {cols} from engage_{table}").to_arrow_table()
        key = [(c, "ascending") for c in expected.column_names]
        assert got.sort_by(key).to_pylist() == expected.sort_by(key).to_pylist(), table
    # the survey counts only the valid CSAT answer of the bad rows
    march = con.execute("select responses from engage_survey where survey = 'csat' and "
                    "segment = 'all' and period_start = DATE '2025-03-01'").fetchone()[0]
    expected_march = [r for r in want["survey"].to_pylist() if r["survey"] == "csat"
                      and r["segment"] == "all" and str(r["period_start"]) == "2025-03-01"]
    assert march == expected_march[0]["responses"] and march >= 1
