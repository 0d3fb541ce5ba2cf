"""Sessions on every dialect: a failure rolls back everything the session did, the named
lock serializes two processes (the second starts only after the first has committed), a
lock held too long is a clear error, read-only sessions write nothing (and create no file)."""

from __future__ import annotations

import multiprocessing
import queue
import threading

import pyarrow as pa
import pytest

from engage_core.errors import RunError
from engage_plugin.warehouse import open_warehouse

from warehouse_servers import DIALECTS, lock_worker, place  # noqa: F401  (fixture)

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.string())])
ROWS = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", None]})


def _table(place, name="t", rows=ROWS):
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        s.create_table(name, SCHEMA, ["k"])
    with wh.session() as s:
        s.insert(name, rows)
    return wh


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_an_exception_rolls_back_deletes_inserts_and_statements(place):
    wh = _table(place)
    with pytest.raises(ZeroDivisionError):
        with wh.session(lock="engage:rollback") as s:
            assert s.delete("t", where={"k": 1}) == 1
            s.insert("t", pa.table({"k": pa.array([10, 11], pa.int64()), "v": ["x", "y"]}))
            s.execute(f"UPDATE {wh.qualified('t')} SET v = ? WHERE k = ?", ["changed", 2])
            assert s.read("t", schema=SCHEMA).num_rows == 4  # the session sees its writes
            1 / 0
    with wh.session(read_only=True) as s:
        assert s.read("t", schema=SCHEMA).sort_by("k").equals(ROWS)
    # and a failing statement inside the session rolls back the earlier ones too
    with pytest.raises(Exception):
        with wh.session() as s:
            s.delete("t")
            s.insert("t", pa.table({"k": pa.array([7, 7], pa.int64()), "v": ["dup", "key"]}))
    with wh.session(read_only=True) as s:
        assert s.read("t", schema=SCHEMA).sort_by("k").equals(ROWS)


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_the_lock_serializes_two_processes(place):
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        s.create_table("log", pa.schema([("who", pa.string())]))
    ctx = multiprocessing.get_context("spawn")
    times, holding, release = ctx.Queue(), ctx.Event(), ctx.Event()
    first = ctx.Process(target=lock_worker, args=(place.uri, place.schema, "first", True,
                                                  times, holding, release))
    first.start()
    try:
        assert holding.wait(60), "the first process never got the lock"
        second = ctx.Process(target=lock_worker, args=(place.uri, place.schema, "second",
                                                       False, times, holding, release))
        second.start()
        # while the first holds the lock the second must not get in
        assert times.get(timeout=10)[:2] == ("first", "in")
        with pytest.raises(queue.Empty):
            times.get(timeout=1.5)
    finally:
        release.set()
    first.join(60)
    second.join(60)
    assert first.exitcode == 0 and second.exitcode == 0
    events = [times.get(timeout=5) for _ in range(3)]
    order = [(who, what) for who, what, _ in events]
    assert order == [("first", "out"), ("second", "in"), ("second", "out")]
    assert events[1][2] >= events[0][2]  # the second got in after the first let go
    with wh.session(read_only=True) as s:  # both committed
        assert sorted(s.read("log")["who"].to_pylist()) == ["first", "second"]


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_a_lock_held_too_long_is_a_run_error_naming_it(place):
    wh = _table(place)
    holding, release = threading.Event(), threading.Event()

    def holder():
        with wh.session(lock="engage:busy"):
            holding.set()
            release.wait(20)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert holding.wait(20)
        with pytest.raises(RunError, match="another run of this pipeline holds the lock") as e:
            with wh.session(lock="engage:busy", lock_timeout=1):
                pass
        assert "engage:busy" in str(e.value) or place.dialect in ("duckdb", "sqlite")
    finally:
        release.set()
        t.join()
    with wh.session(lock="engage:busy", lock_timeout=5) as s:  # free again
        assert s.table_exists("t")


@pytest.mark.parametrize("place", ["postgresql", "mysql", "duckdb", "sqlite"], indirect=True)
def test_read_only_sessions_cannot_write(place):
    wh = _table(place)
    with pytest.raises(Exception):
        with wh.session(read_only=True) as s:
            s.execute(f"DELETE FROM {wh.qualified('t')}")
    with wh.session(read_only=True) as s:
        assert s.read("t").num_rows == 3


def test_read_only_on_missing_files_sees_nothing_and_creates_nothing(tmp_path):
    for uri in (f"duckdb:///{tmp_path / 'no' / 'none.duckdb'}",
                f"sqlite:///{tmp_path / 'no' / 'none.db'}"):
        with open_warehouse(uri).session(read_only=True) as s:
            assert not s.table_exists("engage_runs")
            assert s.table_columns("engage_runs") == []
    assert list(tmp_path.iterdir()) == []


def test_duckdb_reader_while_this_process_writes_and_memory_databases(tmp_path):
    wh = open_warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with wh.session() as s:
        s.create_table("t", SCHEMA)
        s.insert("t", ROWS)
    with wh.session() as s:
        s.insert("t", ROWS)
        # a read-only session opened while this process has the file open read-write sees
        # what is committed, not the writer's open transaction
        with wh.session(read_only=True) as r:
            assert r.read("t").num_rows == 3
    with wh.session(read_only=True) as r:
        assert r.read("t").num_rows == 6
    for uri in ("duckdb:///:memory:", "sqlite:///:memory:"):
        mem = open_warehouse(uri)  # one database per Warehouse object, across sessions
        with mem.session() as s:
            s.create_table("t", SCHEMA)
            s.insert("t", ROWS)
        with mem.session(read_only=True) as s:
            assert s.read("t", schema=SCHEMA).sort_by("k").equals(ROWS)
