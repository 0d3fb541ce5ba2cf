"""The provider as Airflow sees it: provider info, the hook and its connection types, and
the ``airflow providers`` / ``airflow plugins`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import airflow_env  # noqa: F401  (skips this module without Airflow; private AIRFLOW_HOME)
import pytest

from airflow.sdk import Connection

from engage_core.errors import ConfigError, EngageError
from engage_plugin.get_provider_info import get_provider_info
from engage_plugin.hooks.engage import EngageWarehouseHook, conn_to_uri


def test_provider_info_matches_airflow_schema_and_distribution():
    import jsonschema
    from importlib import metadata

    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    dist = metadata.distribution(info["package-name"])
    assert dist.metadata["Name"] == info["package-name"] == "airflow-provider-engage"
    eps = {(ep.group, ep.name): ep.value for ep in dist.entry_points}
    assert eps[("apache_airflow_provider", "provider_info")] == \
        "engage_plugin.get_provider_info:get_provider_info"
    assert eps[("airflow.plugins", "engage")] == "engage_plugin.plugin:EngagePlugin"
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == EngageWarehouseHook.conn_type == "engage_warehouse"
    assert conn["hook-class-name"] == "engage_plugin.hooks.engage.EngageWarehouseHook"
    assert conn["ui-field-behaviour"]["relabeling"] == {"host": "SQLAlchemy URL"}
    assert set(conn["conn-fields"]) == {"uri", "table_schema"}


def test_hook_declares_what_airflow_needs_and_no_deprecated_form_methods():
    assert EngageWarehouseHook.conn_name_attr == "engage_conn_id"
    assert EngageWarehouseHook.hook_name == "Engage warehouse"
    assert "get_ui_field_behaviour" not in EngageWarehouseHook.__dict__
    assert "get_connection_form_widgets" not in EngageWarehouseHook.__dict__


@pytest.mark.parametrize("fields, uri", [
    (dict(conn_type="engage_warehouse", host="duckdb:///engage.duckdb"), "duckdb:///engage.duckdb"),
    (dict(conn_type="engage_warehouse", extra=json.dumps({"uri": "sqlite:////tmp/a.db"})),
     "sqlite:////tmp/a.db"),
    (dict(conn_type="engage_warehouse", host="postgresql://db.example:5432/analytics",
          login="etl", password="p@ss/word"),
     "postgresql://etl:p%40ss%2Fword@db.example:5432/analytics"),
    (dict(conn_type="postgres", host="pg", port=5433, login="u", password="s3cr:t",
          schema="warehouse"), "postgresql://u:s3cr%3At@pg:5433/warehouse"),
    (dict(conn_type="postgres", host="pg", schema="w", extra=json.dumps({"sslmode": "require"})),
     "postgresql://pg/w?sslmode=require"),
    (dict(conn_type="mysql", host="my", port=3306, login="root", schema="shop"),
     "mysql://root@my:3306/shop"),
    (dict(conn_type="sqlite", host="/data/events.db"), "sqlite:////data/events.db"),
    (dict(conn_type="duckdb", host="warehouse.duckdb"), "duckdb:///warehouse.duckdb"),
    (dict(conn_type="duckdb"), "duckdb:///:memory:"),
])
def test_connections_become_sqlalchemy_urls(fields, uri):
    assert conn_to_uri(Connection(conn_id="c", **fields)) == uri


@pytest.mark.parametrize("fields, words", [
    (dict(conn_type="http", host="example.com"), ["'c'", "'http'", "engage_warehouse"]),
    (dict(conn_type="engage_warehouse", host="not a url"), ["'c'", "SQLAlchemy URL", "not a url"]),
])
def test_unusable_connections_are_config_errors_naming_the_connection(fields, words):
    with pytest.raises(ConfigError) as info:
        conn_to_uri(Connection(conn_id="c", **fields))
    assert isinstance(info.value, EngageError)
    for word in words:
        assert word in str(info.value)


def test_hook_reads_connections_from_the_environment(monkeypatch, tmp_path):
    db = tmp_path / "wh.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_ENGAGE_TEST_WH", json.dumps(
        {"conn_type": "engage_warehouse", "host": f"duckdb:///{db}",
         "extra": {"table_schema": "analytics"}}))
    hook = EngageWarehouseHook(engage_conn_id="engage_test_wh")
    assert hook.get_uri() == f"duckdb:///{db}"
    assert hook.get_schema() == "analytics"
    assert hook.test_connection() == (True, f"{db} will be created on the first run")
    import duckdb

    duckdb.connect(str(db)).close()
    ok, message = hook.test_connection()
    assert ok is True and message.startswith("connected to duckdb:"), message


def test_cli_lists_the_provider_hook_and_plugin(tmp_path):
    home = tmp_path / "home"
    providers = airflow_env.airflow_cli(home, "providers", "list")
    line = next(l for l in providers.splitlines() if "engage" in l.lower())
    assert line.split("|")[0].strip() == "airflow-provider-engage"
    assert "0.1.0" in line
    hooks = airflow_env.airflow_cli(home, "providers", "hooks")
    line = next(l for l in hooks.splitlines() if l.startswith("engage_warehouse"))
    cells = [c.strip() for c in line.split("|")]
    assert cells == ["engage_warehouse", "engage_plugin.hooks.engage.EngageWarehouseHook",
                     "engage_conn_id", "airflow-provider-engage", "Engage warehouse"]
    plugins = airflow_env.airflow_cli(home, "plugins", "--output", "json")
    engage = next(p for p in json.loads(plugins) if p["name"] == "engage")
    assert engage["macros"] == ["engage_plugin.plugin.table", "engage_plugin.plugin.tables"]
    assert engage["fastapi_apps"][0]["url_prefix"] == "/engage"
