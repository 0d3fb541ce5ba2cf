"""The warehouse layer on every dialect, against real PostgreSQL and MariaDB servers: type
round-trips, rollback, the pipeline lock, identifier quoting, SQL sources with the day range
pushed down across a DST change."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pyarrow as pa
import pytest

from engage_core.errors import ConfigError
from engage_plugin.warehouse import open_warehouse

from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

ROWS = pa.table({
    "k": pa.array([1, 2 ** 63 - 1, -2 ** 63], pa.int64()),
    "s": pa.array(['a"b\'c`d', None, "é ☃"], pa.string()),
    "d": pa.array([dt.date(2025, 3, 9), None, dt.date(1969, 12, 31)], pa.date32()),
    "ratio": pa.array([0.1, None, 1e300], pa.float64()),
    "flag": pa.array([True, False, None], pa.bool_()),
    "n": pa.array([1, None, -3], pa.int32()),
    "t": pa.array([dt.datetime(2025, 3, 9, 2, 30, 0, 5), None, dt.datetime(1970, 1, 1)],
                  pa.timestamp("us")),
})
KEY = ("k",)


def _by_key(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r["k"])


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_types_round_trip_and_rollback(place):
    wh = open_warehouse(place.uri, place.schema)
    schema = ROWS.schema.append(pa.field("computed_at", pa.timestamp("us")))
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, 6)
    with wh.session(lock="engage:test") as s:
        s.ensure_schema()
        s.create_table("select", schema, KEY)  # a reserved word as a table name
        assert s.insert("select", ROWS, constants={"computed_at": stamp}) == 3
    with wh.session(read_only=True) as s:
        assert s.table_columns("select") == schema.names
        back = s.read("select", schema=schema)
    assert back.schema.equals(schema)
    assert _by_key(back.drop_columns(["computed_at"])) == _by_key(ROWS)
    assert set(back["computed_at"].to_pylist()) == {stamp}
    # a failure inside a session rolls every change of it back
    with pytest.raises(RuntimeError, match="boom"):
        with wh.session(lock="engage:test") as s:
            assert s.delete("select", between=("k", 0, 10)) in (1, 0)  # some drivers: 0
            s.insert("select", ROWS.slice(0, 1).set_column(0, "k", pa.array([5], pa.int64())))
            raise RuntimeError("boom")
    with wh.session() as s:
        assert _by_key(s.read("select", schema=schema).drop_columns(["computed_at"])) \
            == _by_key(ROWS)
        s.delete("select", where={"k": 1})
        assert sorted(s.read("select", columns=["k"])["k"].to_pylist()) == [-2 ** 63, 2 ** 63 - 1]
        s.drop_table("select")
        assert not s.table_exists("select")


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_quoted_names_and_rejected_names(place):
    wh = open_warehouse(place.uri, place.schema)
    odd = 'we"ird`name'
    with wh.session() as s:
        s.ensure_schema()
        s.create_table(odd, pa.schema([("col umn", pa.string())]))
        s.insert(odd, pa.table({"col umn": ["x"]}))
        assert s.read(odd)["col umn"].to_pylist() == ["x"]
    with pytest.raises(ConfigError, match="longer than"):
        wh.quote("x" * 300)
    with pytest.raises(ConfigError, match="NUL"):
        wh.quote("a\x00b")


@pytest.mark.parametrize("place", ["duckdb", "sqlite", "postgresql", "mysql"], indirect=True)
def test_two_sessions_with_the_same_lock_serialize(place):
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        s.create_table("log", pa.schema([("who", pa.string()), ("at", pa.float64())]))
    events = []

    def worker(name, hold):
        with wh.session(lock="engage:lock-test") as s:
            events.append((name, "in", time.monotonic()))
            s.insert("log", pa.table({"who": [name], "at": [time.monotonic()]}))
            time.sleep(hold)
            events.append((name, "out", time.monotonic()))

    first = threading.Thread(target=worker, args=("first", 1.0))
    first.start()
    while not events:
        time.sleep(0.01)
    second = threading.Thread(target=worker, args=("second", 0.0))
    second.start()
    first.join()
    second.join()
    order = [(n, what) for n, what, _ in sorted(events, key=lambda e: e[2])]
    assert order == [("first", "in"), ("first", "out"), ("second", "in"), ("second", "out")]
    with wh.session(read_only=True) as s:
        assert sorted(s.read("log")["who"].to_pylist()) == ["first", "second"]


def test_urls_are_checked_and_passwords_masked():
    with pytest.raises(ConfigError, match="unknown warehouse scheme oracle://"):
        open_warehouse("oracle://u@h/db")
    with pytest.raises(ConfigError, match="SQLite has no schemas"):
        open_warehouse("sqlite:///x.db", "analytics")
    wh = open_warehouse("mysql+pymysql://root:hunter2@127.0.0.1:3306/test")
    assert "hunter2" not in wh.display and wh.dialect == "mysql"
    assert wh.qualified("t`x") == "`t``x`"


def test_read_only_session_on_a_missing_file_sees_no_tables(tmp_path):
    for uri in (f"duckdb:///{tmp_path / 'none.duckdb'}", f"sqlite:///{tmp_path / 'none.db'}"):
        with open_warehouse(uri).session(read_only=True) as s:
            assert not s.table_exists("engage_state")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_a_session_that_waited_for_the_lock_sees_the_first_ones_writes(place):
    """Two runs at once: the second reads the state the first committed (no lost update)."""
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        s.create_table("counter", pa.schema([("n", pa.int64())]))
        s.insert("counter", pa.table({"n": pa.array([0], pa.int64())}))

    def bump():
        with wh.session(lock="engage:counter") as s:
            n = s.read("counter")["n"][0].as_py()
            time.sleep(0.3)
            s.delete("counter")
            s.insert("counter", pa.table({"n": pa.array([n + 1], pa.int64())}))

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with wh.session(read_only=True) as s:
        assert s.read("counter")["n"].to_pylist() == [3]
