"""Names from YAML go into SQL only quoted and checked; values only bound. URLs are checked
and their passwords never shown."""

from __future__ import annotations

import importlib.util

import pyarrow as pa
import pytest

from engage_core.errors import ConfigError, RunError
from engage_plugin.warehouse import open_warehouse
from engage_plugin.warehouse.base import translate_placeholders

from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

WEIRD = ['a"b', "select", "c`d", "50% off?", "日本 '語'"]


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_weird_but_valid_names_work_everywhere(place):
    wh = open_warehouse(place.uri, place.schema)
    schema = pa.schema([(name, pa.string()) for name in WEIRD] + [("n", pa.int64())])
    rows = pa.table({**{name: [name, None] for name in WEIRD}, "n": pa.array([1, 2], pa.int64())})
    with wh.session() as s:
        s.ensure_schema()
        for table in WEIRD:
            s.create_table(table, schema, [WEIRD[0]] if place.dialect != "sqlite" else [])
    with wh.session() as s:
        for table in WEIRD:
            s.insert(table, rows.slice(0, 1))
            assert s.table_columns(table) == schema.names
            assert s.delete(table, where={"50% off?": "50% off?", "select": "select"}) == 1
            s.insert(table, rows.slice(0, 1))
            got = s.read(table, columns=["a\"b", "c`d"], schema=None)
            assert got.to_pylist() == [{'a"b': 'a"b', "c`d": "c`d"}]
            # values with quotes and placeholders are bound, never spliced
            assert s.execute(f"SELECT COUNT(*) FROM {wh.qualified(table)} WHERE "
                             f"{wh.quote('50% off?')} = ?", ["50% off?"])[0][0] == 1
            s.drop_table(table)
            assert not s.table_exists(table)


@pytest.mark.parametrize("dialect,limit", [("postgresql", 63), ("mysql", 64),
                                           ("duckdb", 255), ("sqlite", 255)])
def test_names_over_the_limit_or_with_nul_are_rejected_naming_them(dialect, limit):
    uri = {"postgresql": "postgresql://u@h/db", "mysql": "mysql+pymysql://u@h/db",
           "duckdb": "duckdb:///x.duckdb", "sqlite": "sqlite:///x.db"}[dialect]
    wh = open_warehouse(uri)
    assert wh.quote("é" * (limit // 2))  # bytes, not characters, count
    with pytest.raises(ConfigError, match=f"limit of {limit} bytes"):
        wh.quote("é" * (limit // 2 + 1))
    with pytest.raises(ConfigError, match="NUL") as e:
        wh.qualified("a\x00b")
    assert "table name" in str(e.value)
    with pytest.raises(ConfigError, match=r"analytics\.schema: .*limit"):
        open_warehouse(uri.replace("sqlite", "duckdb"), "s" * 300, where="analytics.uri")
    with pytest.raises(ConfigError, match="non-empty"):
        wh.quote("")


def test_url_errors_name_the_key_the_scheme_and_the_extra(monkeypatch):
    with pytest.raises(ConfigError) as e:
        open_warehouse("oracle://scott:tiger@h/db", where="source.uri")
    msg = str(e.value)
    assert msg.startswith("source.uri: unknown warehouse scheme oracle://")
    assert "postgresql://" in msg and "airflow-provider-engage[mysql]" in msg
    assert "tiger" not in msg
    with pytest.raises(ConfigError, match="expected a warehouse URL"):
        open_warehouse("engage.duckdb")
    with pytest.raises(ConfigError, match="target.schema: SQLite has no schemas"):
        open_warehouse("sqlite:///x.db", "analytics")
    dialects = {uri: open_warehouse(uri).dialect for uri in (
        "postgresql+psycopg://u@h/db", "postgresql+psycopg2://u@h/db", "postgres://u@h/db",
        "mariadb+pymysql://u@h/db", "mysql://u@h/db", "sqlite:///x.db", "duckdb:///:memory:")}
    assert list(dialects.values()) == ["postgresql"] * 3 + ["mysql"] * 2 + ["sqlite", "duckdb"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("adbc_driver_postgresql", "pymysql")
                        else real(name, *a))
    with pytest.raises(ConfigError, match=r"target.uri: found a postgresql\+psycopg2:// URL.*"
                       r"pip install 'airflow-provider-engage\[postgres\]'"):
        open_warehouse("postgresql+psycopg2://u@h/db")
    with pytest.raises(ConfigError, match=r"PyMySQL|pymysql.*\[mysql\]"):
        open_warehouse("mariadb://u@h/db")


def test_passwords_are_masked_in_display_and_errors():
    wh = open_warehouse("postgresql://etl:p%40ss%3Aw0rd@127.0.0.1:1/db?password=again")
    assert wh.display == "postgresql://etl:***@127.0.0.1:1/db?password=***"
    with pytest.raises(RunError) as e:
        with wh.session():
            pass
    assert "p%40ss" not in str(e.value) and "p@ss" not in str(e.value)
    assert "127.0.0.1:1" in str(e.value)
    wh = open_warehouse("mysql+pymysql://root:hunter2@127.0.0.1:3306/test")
    assert "hunter2" not in wh.display and wh.dialect == "mysql"
    assert wh.qualified("t`x") == "`t``x`"
    assert open_warehouse("postgresql://u@h/db", "s\"x").qualified("t") == '"s""x"."t"'


def test_placeholders_outside_quotes_become_the_drivers():
    sql = "SELECT '?', \"a?\", `b%` FROM t WHERE x = ? AND y LIKE 'z%' -- ?\nAND w = ?"
    assert translate_placeholders(sql, "numeric") == \
        "SELECT '?', \"a?\", `b%` FROM t WHERE x = $1 AND y LIKE 'z%' -- ?\nAND w = $2"
    assert translate_placeholders(sql, "format") == \
        "SELECT '?', \"a?\", `b%%` FROM t WHERE x = %s AND y LIKE 'z%%' -- ?\nAND w = %s"
    assert translate_placeholders("SELECT 'it''s ?' /* ? */, ?", "numeric") == \
        "SELECT 'it''s ?' /* ? */, $1"
