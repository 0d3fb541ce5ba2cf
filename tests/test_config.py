"""The pipeline YAML loader: defaults, typed sub-configs and errors with file:line."""

import dataclasses
import os

import pytest

from engage_core.errors import ConfigError
from engage_plugin.config import (PipelineConfig, RetentionConfig, check_available,
                                  load_pipeline)

GOOD = """\
pipeline: shop
timezone: America/New_York
week_start: sunday
source:
  path: data/events.parquet
  columns: {user_id: uid, timestamp: at}
target:
  uri: duckdb:///out/engage.duckdb
  schema: analytics
metrics:
  active_users: {windows: [1, 7], breakdown: platform}
  engagement_daily: {}
  stickiness: {periods: [week, month]}
  retention: {periods: [week], max_offset: 4, start_events: [signup]}
  lifecycle:
  first_week: {events: [open]}
  sessions: {session_gap: 45m}
  funnels:
    checkout: {steps: [view, purchase], conversion_window: 2d}
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline(write(tmp_path, text))
    return str(info.value)


def test_good_file_gives_typed_frozen_config_with_defaults(tmp_path):
    cfg = load_pipeline(write(tmp_path, GOOD))
    assert isinstance(cfg, PipelineConfig)
    assert cfg.pipeline == "shop" and cfg.timezone == "America/New_York"
    assert cfg.week_start == "sunday" and cfg.engine == "local"
    # relative paths resolve against the YAML file's directory
    assert cfg.source.path == os.path.join(str(tmp_path), "data", "events.parquet")
    assert cfg.target.uri == "duckdb:///" + os.path.join(str(tmp_path), "out", "engage.duckdb")
    assert cfg.target.schema == "analytics" and cfg.target.table_prefix == "engage_"
    assert cfg.source.columns.user_id == "uid" and cfg.source.columns.timestamp == "at"
    assert cfg.source.columns.event == "event"  # default
    assert cfg.metrics["active_users"].windows == (1, 7)
    assert cfg.metrics["active_users"].breakdown == "platform"
    assert cfg.metrics["engagement_daily"].mau_window == 30
    assert cfg.metrics["stickiness"].periods == ("week", "month")
    ret = cfg.metrics["retention"]
    assert isinstance(ret, RetentionConfig)
    assert (ret.max_offset, ret.start_events, ret.return_events, ret.window) == \
        (4, ("signup",), None, "calendar")
    assert cfg.metrics["lifecycle"].periods == ("week",)
    assert cfg.metrics["first_week"].events == ("open",)
    assert cfg.metrics["sessions"].session_gap == 45 * 60
    assert cfg.metrics["funnels"]["checkout"].conversion_window == 2 * 86400
    assert cfg.metrics["funnels"]["checkout"].steps == ("view", "purchase")
    assert cfg.breakdowns() == ["platform"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.pipeline = "other"


def test_defaults_for_timezone_target_and_metric_options(tmp_path):
    cfg = load_pipeline(write(tmp_path, "pipeline: a1\nsource: {path: e.csv}\n"
                                        "metrics: {active_users: {}, retention: {}}\n"))
    assert cfg.timezone == "UTC" and cfg.week_start == "monday"
    assert cfg.target.uri == "duckdb:///" + os.path.join(str(tmp_path), "engage.duckdb")
    assert cfg.metrics["active_users"].windows == (1, 7, 30)
    assert cfg.metrics["retention"].periods == ("week",)
    assert cfg.metrics["retention"].max_offset == 12


def test_unknown_metric_names_line_and_suggests(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("  retention: {", "  retension: {"))
    assert msg.startswith(f"{tmp_path / 'p.yaml'}:14: metrics.retension: unknown key")
    assert "did you mean `retention`?" in msg
    assert "active_users" in msg and "first_week" in msg  # the allowed ones


def test_unknown_top_level_and_option_keys(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("week_start: sunday", "week_stat: sunday"))
    assert ":3: week_stat: unknown key" in msg and "did you mean `week_start`?" in msg
    msg = error_of(tmp_path, GOOD.replace("{windows: [1, 7]", "{window: [1, 7]"))
    assert ":11: metrics.active_users.window: unknown key" in msg
    assert "did you mean `windows`?" in msg


def test_bad_timezone(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("America/New_York", "Mars/Olympus"))
    assert msg == (f"{tmp_path / 'p.yaml'}:2: timezone: expected an IANA time zone name like "
                   "America/New_York, found 'Mars/Olympus'")


def test_bad_pipeline_name(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("pipeline: shop", "pipeline: My-Shop"))
    assert ":1: pipeline: expected a pipeline name matching [a-z0-9_]+, found 'My-Shop'" in msg


def test_both_uri_and_path(tmp_path):
    text = GOOD.replace("  path: data/events.parquet",
                        "  path: data/events.parquet\n  uri: duckdb:///x.duckdb")
    msg = error_of(tmp_path, text)
    assert "source.uri: expected exactly one of conn_id / uri / path, found both uri and path" \
        in msg
    assert ":6:" in msg


def test_table_or_query_with_uri(tmp_path):
    text = GOOD.replace("  path: data/events.parquet", "  uri: duckdb:///x.duckdb")
    assert "exactly one of table / query, found none of them" in error_of(tmp_path, text)
    both = text.replace("  uri: duckdb:///x.duckdb",
                        "  uri: duckdb:///x.duckdb\n  table: ev\n  query: select 1")
    assert "exactly one of table / query, found both table and query" in error_of(tmp_path, both)


def test_unsafe_identifiers(tmp_path):
    text = GOOD.replace("  path: data/events.parquet",
                        "  uri: duckdb:///x.duckdb\n  table: 'ev; drop table x'")
    msg = error_of(tmp_path, text)
    assert ":6: source.table: expected a safe SQL identifier" in msg
    assert "found 'ev; drop table x'" in msg
    msg = error_of(tmp_path, GOOD.replace("schema: analytics", 'schema: "a b"'))
    assert "target.schema: expected a safe SQL identifier" in msg
    msg = error_of(tmp_path, GOOD.replace("timestamp: at}", 'timestamp: "at\\""}'))
    assert "source.columns.timestamp: expected a safe SQL identifier" in msg
    msg = error_of(tmp_path, GOOD.replace("breakdown: platform", "breakdown: 'x-y'"))
    assert "metrics.active_users.breakdown: expected a safe SQL identifier" in msg


def test_bad_values(tmp_path):
    assert "week_start: expected one of monday|sunday, found 'friday'" in \
        error_of(tmp_path, GOOD.replace("week_start: sunday", "week_start: friday"))
    assert "metrics.stickiness.periods.1: expected one of day|week|month|quarter, found " \
        "'year'" in error_of(tmp_path, GOOD.replace("[week, month]", "[week, year]"))
    assert "metrics.active_users.windows.1: expected a whole number > 0, found int 0" in \
        error_of(tmp_path, GOOD.replace("[1, 7]", "[1, 0]"))
    assert "metrics.sessions.session_gap: expected a duration like 30m" in \
        error_of(tmp_path, GOOD.replace("45m", "45 minutes"))
    assert "metrics.funnels.checkout.steps: expected `steps` (required)" in \
        error_of(tmp_path, GOOD.replace("steps: [view, purchase], ", ""))
    assert ":1: (top level): expected a mapping" in error_of(tmp_path, "- a\n- b\n")
    assert "not valid YAML" in error_of(tmp_path, "pipeline: [a\n")
    assert ":1: pipeline: expected" in error_of(tmp_path, "source: {path: e.csv}\n")


def test_safe_loader_only(tmp_path):
    msg = error_of(tmp_path, "pipeline: !!python/object/apply:os.system ['echo hi']\n")
    assert "not valid YAML" in msg and ":1:" in msg


def test_check_available_accepts_the_catalogue_and_rejects_what_cannot_run(tmp_path):
    check_available(load_pipeline(write(tmp_path, GOOD)))  # every metric family of PIPELINE.md
    spark = GOOD.replace("pipeline: shop", "pipeline: shop\nengine: spark")
    import importlib.util

    if importlib.util.find_spec("pyspark") is not None:
        check_available(load_pipeline(write(tmp_path, spark, "s.yaml")))
    else:
        with pytest.raises(ConfigError) as info:
            check_available(load_pipeline(write(tmp_path, spark, "s.yaml")))
        assert "s.yaml:2: engine: engine `spark` needs pyspark" in str(info.value)
    quarter = GOOD.replace("periods: [week], max_offset: 4", "periods: [quarter], max_offset: 4, window: rolling")
    with pytest.raises(ConfigError, match=r"q.yaml:\d+: metrics.retention.window: rolling "
                                          r"retention needs periods day, week or month"):
        check_available(load_pipeline(write(tmp_path, quarter, "q.yaml")))


def test_example_pipeline_loads():
    path = os.path.join(os.path.dirname(__file__), "..", "dags", "pipelines", "example.yaml")
    cfg = load_pipeline(path)
    check_available(cfg)
    assert cfg.timezone == "America/New_York" and cfg.breakdowns() == ["platform"]
    assert list(cfg.metrics) == ["active_users", "engagement_daily", "stickiness", "retention",
                                 "lifecycle", "first_week", "sessions", "funnels", "conversions",
                                 "commerce", "cohort_revenue", "survey", "engagement_score"]
    assert cfg.source.path.endswith(os.path.join("dags", "pipelines", "data", "events.parquet"))
