"""Engage's operators called directly (``execute`` with a fake context, no database), the
day range of a data interval, lineage, and the plugin's macros and API."""

from __future__ import annotations

import datetime as dt
import json
import types
from collections import defaultdict
from pathlib import Path

import airflow_env  # noqa: F401  (skips this module without Airflow; private AIRFLOW_HOME)
import duckdb
import pendulum
import pytest

from engage_core.errors import ConfigError
from engage_plugin import airflow_config as ac
from engage_plugin.airflow_runtime import day_range, lineage_pairs
from engage_plugin.operators.engage import (
    EngageIngestOperator,
    EngagePublishOperator,
    EngageRunOperator,
    EngageValidateOperator,
)
from pipeline_fixtures import LAST_DAY, TZ, write_pipeline

NY = "America/New_York"


def context(start, end, **extra):
    return {"data_interval_start": start, "data_interval_end": end,
            "logical_date": start, **extra}


@pytest.mark.parametrize("start, end, tz, days", [
    # a @daily interval of local midnights is one local day
    (pendulum.datetime(2025, 6, 29, tz=NY), pendulum.datetime(2025, 6, 30, tz=NY), NY,
     ("2025-06-29", "2025-06-29")),
    # the same instants given in UTC
    (pendulum.datetime(2025, 6, 29, 4, tz="UTC"), pendulum.datetime(2025, 6, 30, 4, tz="UTC"), NY,
     ("2025-06-29", "2025-06-29")),
    # the 23-hour DST day is still one day
    (pendulum.datetime(2025, 3, 9, tz=NY), pendulum.datetime(2025, 3, 10, tz=NY), NY,
     ("2025-03-09", "2025-03-09")),
    # a weekly interval is seven days
    (pendulum.datetime(2025, 6, 2, tz=NY), pendulum.datetime(2025, 6, 9, tz=NY), NY,
     ("2025-06-02", "2025-06-08")),
    # an interval ending mid-day includes that day
    (pendulum.datetime(2025, 6, 29, 5, tz=NY), pendulum.datetime(2025, 6, 30, 6, tz=NY), NY,
     ("2025-06-29", "2025-06-30")),
    # a zero-length interval at midnight: the day that just ended
    (pendulum.datetime(2025, 7, 1, tz=NY), pendulum.datetime(2025, 7, 1, tz=NY), NY,
     ("2025-06-30", "2025-06-30")),
    # UTC midnight is 20:00 the day before in New York
    (pendulum.datetime(2025, 6, 29, tz="UTC"), pendulum.datetime(2025, 6, 30, tz="UTC"), NY,
     ("2025-06-28", "2025-06-29")),
])
def test_data_interval_becomes_local_days(start, end, tz, days):
    first, last = day_range(context(start, end), tz)
    assert (first.isoformat(), last.isoformat()) == days


def test_explicit_days_win_and_bad_ones_name_the_task():
    ctx = context(pendulum.datetime(2025, 6, 29, tz=NY), pendulum.datetime(2025, 6, 30, tz=NY))
    assert day_range(ctx, NY, "2025-06-01", "2025-06-03") == (dt.date(2025, 6, 1), dt.date(2025, 6, 3))
    with pytest.raises(ConfigError, match="task t: end_day 2025-06-01 is before start_day 2025-06-03"):
        day_range(ctx, NY, "2025-06-03", "2025-06-01", where="task t")
    with pytest.raises(ConfigError, match="task t: start_day: 'June' is not a date"):
        day_range(ctx, NY, "June", None, where="task t")


def test_init_is_keyword_only_and_fields_are_templated():
    with pytest.raises(TypeError):
        EngageRunOperator("x.yaml", task_id="t")  # positional arguments are refused
    op = EngageRunOperator(task_id="t", pipeline_path="{{ var.value.p }}", metrics=["retention"])
    assert op.pipeline_path == "{{ var.value.p }}" and op.metrics == ["retention"]
    assert set(EngageRunOperator.template_fields) == {
        "pipeline_path", "start_day", "end_day", "source_conn_id", "target_conn_id",
        "metrics", "full_refresh"}
    assert set(EngagePublishOperator.template_fields) == {
        "pipeline_path", "start_day", "end_day", "source_conn_id", "target_conn_id"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return write_pipeline(tmp_path_factory.mktemp("ops"))


def last_day_context():
    end = pendulum.datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, tz=TZ).add(days=1)
    return context(end.subtract(days=1), end)


def test_operators_execute_directly_and_publish_asset_extras(shop):
    ctx = last_day_context()
    checked = EngageValidateOperator(task_id="validate", pipeline_path=shop.yaml).execute(ctx)
    assert checked["pipeline"] == "shop"
    assert checked["start_day"] == checked["end_day"] == LAST_DAY.isoformat()
    assert checked["tables"] == shop.tables
    EngageIngestOperator(task_id="ingest", pipeline_path=shop.yaml).execute(ctx)
    # a first, full run so that the single-day runs below recompute into full tables
    EngageRunOperator(task_id="all", pipeline_path=shop.yaml, start_day=shop.first_day,
                      end_day=LAST_DAY.isoformat()).execute(ctx)
    report = EngageRunOperator(task_id="metric_retention", pipeline_path=shop.yaml,
                               metrics=["retention"], full_refresh="False").execute(ctx)
    json.dumps(report)  # only a small JSON report goes to XCom
    written = report["rows_written"]
    assert set(written) >= {"engage_retention"}
    assert not set(written) & {"engage_active_users", "engage_lifecycle"}

    from airflow.sdk import Asset

    assets = [Asset(name=t, uri=f"engage://x/default/{t}") for t in shop.tables]
    events = defaultdict(types.SimpleNamespace)
    out = EngagePublishOperator(task_id="publish", pipeline_path=shop.yaml,
                                outlets=assets).execute({**ctx, "outlet_events": events})
    with duckdb.connect(shop.db, read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in shop.tables}
    for asset in assets:
        assert events[asset].extra == {"pipeline": "shop", "table": asset.name,
                                       "start_day": LAST_DAY.isoformat(),
                                       "end_day": LAST_DAY.isoformat(),
                                       "rows": counts[asset.name]}
        assert counts[asset.name] > 0
    assert out["tables"]["engage_retention"]["rows"] == counts["engage_retention"]


def test_publish_fails_naming_missing_tables(tmp_path):
    other = write_pipeline(tmp_path, db_name="empty.duckdb")
    with pytest.raises(ConfigError, match="engage_active_users"):
        EngagePublishOperator(task_id="publish", pipeline_path=other.yaml).execute(
            last_day_context())


def test_run_subset_refuses_unknown_family(shop):
    with pytest.raises(ConfigError, match=r"\['sessions'\] not in the pipeline"):
        EngageRunOperator(task_id="t", pipeline_path=shop.yaml, metrics=["sessions"]).execute(
            last_day_context())


def test_target_conn_id_goes_through_the_hook(shop, tmp_path, monkeypatch):
    db = tmp_path / "via_conn.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_ENGAGE_OPS_WH", json.dumps(
        {"conn_type": "engage_warehouse", "host": f"duckdb:///{db}"}))
    report = EngageRunOperator(task_id="t", pipeline_path=shop.yaml, metrics=["lifecycle"],
                               target_conn_id="engage_ops_wh").execute(last_day_context())
    assert report["rows_written"]["engage_lifecycle"] > 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from engage_lifecycle").fetchone()[0] > 0


def test_lineage_names_source_and_tables_and_never_fails(shop):
    config = ac.load(shop.yaml)
    inputs, outputs = lineage_pairs(config, ac.family_tables(config, "retention"))
    assert inputs == [("file", shop.events)]
    assert outputs[0] == (f"duckdb://{shop.db}", "engage_retention")
    op = EngageRunOperator(task_id="t", pipeline_path=shop.yaml, metrics=["retention"])
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        assert op.get_openlineage_facets_on_complete(None) is None
    else:
        lineage = op.get_openlineage_facets_on_complete(None)
        assert [d.name for d in lineage.outputs][0] == "engage_retention"
    broken = EngageRunOperator(task_id="t", pipeline_path="/nonexistent.yaml")
    assert broken.get_openlineage_facets_on_complete(None) is None


def test_macros_and_api_list_pipelines_tables_and_last_run(shop, monkeypatch):
    from fastapi.testclient import TestClient

    from engage_plugin import plugin

    monkeypatch.setenv("ENGAGE_PIPELINES_DIR", shop.folder)
    EngageRunOperator(task_id="t", pipeline_path=shop.yaml).execute(last_day_context())
    assert plugin.table("shop", "active_users") == "engage_active_users"
    assert plugin.tables("shop") == shop.tables
    with pytest.raises(ConfigError, match="no pipeline 'nope'"):
        plugin.table("nope", "active_users")
    app = plugin.EngagePlugin.fastapi_apps[0]["app"]
    assert TestClient(app).get("/pipelines").status_code == 401  # Airflow's auth is required
    app.dependency_overrides[app.state.guard] = lambda: None
    client = TestClient(app)
    listed = client.get("/pipelines").json()
    (entry,) = [p for p in listed if p["pipeline"] == "shop"]
    assert entry["dag_id"] == "engage_shop" and entry["tables"] == shop.tables
    with duckdb.connect(shop.db, read_only=True) as con:
        newest = con.execute("select run_id, end_day from engage_runs "
                             "order by finished_at desc limit 1").fetchone()
    assert entry["last_run"]["run_id"] == newest[0]
    assert entry["last_run"]["status"] == "success"
    assert entry["last_run"]["end_day"] == newest[1].isoformat() == LAST_DAY.isoformat()
    assert entry["last_run"]["report"]["pipeline"] == "shop"
    assert client.get("/pipelines/shop").json()["timezone"] == TZ
    assert client.get("/pipelines/nope").status_code == 404


def test_lineage_builds_operator_lineage_when_openlineage_is_there(shop, monkeypatch):
    """With the OpenLineage provider importable, the facets are real datasets (the provider is
    faked here: the real one is an optional install)."""
    import dataclasses
    import sys

    @dataclasses.dataclass
    class Dataset:
        namespace: str
        name: str

    @dataclasses.dataclass
    class OperatorLineage:
        inputs: list
        outputs: list

    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors",
                        types.SimpleNamespace(OperatorLineage=OperatorLineage))
    monkeypatch.setitem(sys.modules, "airflow.providers.common.compat.openlineage.facet",
                        types.SimpleNamespace(Dataset=Dataset))
    op = EngagePublishOperator(task_id="publish", pipeline_path=shop.yaml)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [Dataset("file", shop.events)]
    assert lineage.outputs == [Dataset(f"duckdb://{shop.db}", t) for t in shop.tables]


def test_plugin_macros_are_registered_under_macros_engage(shop, monkeypatch):
    from airflow import plugins_manager
    from airflow.sdk.execution_time import macros

    monkeypatch.setenv("ENGAGE_PIPELINES_DIR", shop.folder)
    plugins_manager.integrate_macros_plugins()
    assert macros.engage.table("shop", "retention") == "engage_retention"
    import jinja2

    rendered = jinja2.Template("select * from {{ macros.engage.table('shop', 'lifecycle') }}"
                               ).render(macros=macros)
    assert rendered == "select * from engage_lifecycle"


def test_bad_input_fails_without_retry_but_stays_an_engage_error(tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from engage_core.errors import SchemaError

    bad = write_pipeline(tmp_path, name="cols")
    text = Path(bad.yaml).read_text().replace("  path:", "  columns: {user_id: nobody}\n  path:")
    Path(bad.yaml).write_text(text)
    with pytest.raises(SchemaError) as info:
        EngageValidateOperator(task_id="validate", pipeline_path=bad.yaml).execute(
            last_day_context())
    assert isinstance(info.value, AirflowFailException)
    assert "nobody" in str(info.value)
    with pytest.raises(ConfigError) as info:
        EngageRunOperator(task_id="t", pipeline_path=bad.yaml, start_day="2025-02-30").execute(
            last_day_context())
    assert isinstance(info.value, AirflowFailException) and "2025-02-30" in str(info.value)


def test_full_refresh_rebuilds_from_the_first_source_day_to_the_run_s_last_day(tmp_path):
    from engage_plugin.runner import run_pipeline

    fresh = write_pipeline(tmp_path / "fresh")
    full = write_pipeline(tmp_path / "full")
    run_pipeline(ac.load(full.yaml))
    # a warehouse that only ever saw one early day, then a full refresh from a daily run
    EngageRunOperator(task_id="t", pipeline_path=fresh.yaml, start_day=fresh.first_day,
                      end_day=fresh.first_day).execute(last_day_context())
    report = EngageRunOperator(task_id="t", pipeline_path=fresh.yaml,
                               full_refresh="True").execute(last_day_context())
    assert report["full_refresh"] is True
    assert (report["start_day"], report["end_day"]) == (fresh.first_day, LAST_DAY.isoformat())
    query = "select * exclude (computed_at) from engage_retention order by all"
    with duckdb.connect(fresh.db, read_only=True) as a, duckdb.connect(full.db, read_only=True) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
