"""The four dialects: how each connects, locks, loads in bulk and reads back to Arrow.

* DuckDB: the file's single-writer lock is the pipeline lock (a second writer retries the
  open); Arrow tables are registered and inserted with ``INSERT ... SELECT``; reads are
  Arrow-native. New files use storage format v1.0.0 (readable by Superset's duckdb 1.x).
* PostgreSQL: ADBC (``adbc-driver-postgresql``): bulk loads with ``adbc_ingest`` (COPY),
  reads with ``fetch_arrow_table``; ``pg_advisory_xact_lock`` under ``lock_timeout``.
* MySQL/MariaDB: PyMySQL; multi-row INSERTs (``executemany``) in chunks, reads through an
  unbuffered cursor in batches; ``GET_LOCK``. DDL commits implicitly there.
* SQLite: the standard library's sqlite3; ``BEGIN IMMEDIATE`` takes the write lock;
  dates and timestamps are stored as ISO-8601 text, booleans as 0/1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import threading
import time
import urllib.parse

import pyarrow as pa

from engage_core.errors import RunError
from engage_plugin.warehouse.base import Session, Warehouse, with_constants

INSERT_CHUNK = 5000
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit number for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _busy(what: str, name: str, timeout: float) -> RunError:
    return RunError(f"{what}: another run of this pipeline held the lock {name!r} for "
                    f"{timeout:.0f} s; try again when it has finished")


# --------------------------------------------------------------------------- DuckDB

class DuckDBSession(Session):
    TYPES = dict(Session.TYPES, float="DOUBLE")

    def _begin(self) -> None:
        if not self.read_only:
            self.con.execute("BEGIN TRANSACTION")

    def _lock(self, name: str, timeout: float) -> None:
        # Across processes the read-write connection itself is exclusive; within one
        # process DuckDB shares the database between connections, so a process-wide lock
        # per file serializes this process's sessions too.
        with _PROCESS_LOCKS_GUARD:
            lock = _PROCESS_LOCKS.setdefault(os.path.abspath(self.wh.path), threading.Lock())
        if not lock.acquire(timeout=max(timeout, 0.0)):
            raise _busy(self.wh.where, name, timeout)
        self._held = lock

    def _close(self, lock) -> None:
        held = getattr(self, "_held", None)
        try:
            super()._close(lock)
        finally:
            if held is not None:
                held.release()

    def _commit(self) -> None:
        self.con.execute("COMMIT")

    def _rollback(self) -> None:
        if not self.read_only:
            with contextlib.suppress(Exception):
                self.con.execute("ROLLBACK")

    def execute(self, sql, params=None):
        rel = self.con.execute(sql, list(params) if params else None)
        return rel.fetchall() if rel.description else []

    def _schema_name(self) -> str:
        return self.wh.schema or "main"

    def table_columns(self, table: str) -> list[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
            "table_name = ? AND table_catalog = current_database() ORDER BY ordinal_position",
            [self._schema_name(), table])
        return [r[0] for r in rows]

    def delete(self, table, where=None, between=None) -> int:
        clause, params = self._where(where, between)
        rows = self.con.execute(f"DELETE FROM {self.name(table)}{clause}", params or None).fetchall()
        return int(rows[0][0]) if rows else 0

    def insert(self, table: str, data, constants=None) -> int:
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        view = "engage_insert_src"
        self.con.register(view, data)
        try:
            cols = [self.wh.quote(c) for c in data.column_names]
            vals = list(cols)
            params = []
            for name, value in (constants or {}).items():
                cols.append(self.wh.quote(name))
                vals.append("?::TIMESTAMP" if isinstance(value, dt.datetime) else "?")
                params.append(value)
            self.con.execute(f"INSERT INTO {self.name(table)} ({', '.join(cols)}) "
                             f"SELECT {', '.join(vals)} FROM {view}", params or None)
        finally:
            self.con.unregister(view)
        return data.num_rows

    def read_sql(self, sql: str, params=None) -> pa.Table:
        return self.read_batches(sql, params).read_all()

    def read_batches(self, sql, params=None, batch_rows=65536) -> pa.RecordBatchReader:
        from engage_plugin.sources import arrow_stream

        return arrow_stream(self.con, sql, params or None)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    session_class = DuckDBSession

    @property
    def path(self) -> str:
        rest = self.uri.split("://", 1)[1]
        rest = rest[1:] if rest.startswith("/") else rest
        return rest or ":memory:"

    def _connect(self, read_only: bool, lock_timeout: float):
        import duckdb

        path = self.path
        if path != ":memory:":
            if read_only and not os.path.exists(path):
                return duckdb.connect(":memory:")  # nothing there yet: every table absent
            if not read_only:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        config = {} if read_only else {"storage_compatibility_version": "v1.0.0"}
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                return duckdb.connect(path, read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise _busy(self.where, path, lock_timeout) from None
                time.sleep(0.2)


# --------------------------------------------------------------------------- PostgreSQL

class PostgresSession(Session):
    def _sql(self, sql: str) -> str:
        parts = sql.split("?")
        return parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], 1))

    def _lock(self, name: str, timeout: float) -> None:
        self.execute(f"SET LOCAL lock_timeout = '{int(max(timeout, 0.001) * 1000)}ms'")
        try:
            self.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key(name)])
        except Exception as exc:
            if "lock timeout" in str(exc).lower():
                raise _busy(self.wh.where, name, timeout) from None
            raise
        self.execute("SET LOCAL lock_timeout = 0")

    def insert(self, table: str, data, constants=None) -> int:
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        data = with_constants(data, constants)
        if data.num_rows == 0:
            return 0
        # ADBC reads dictionary and large types, but the COPY maps plain types best
        data = pa.table({n: (c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c)
                         for n, c in zip(data.column_names, data.columns)})
        cur = self.con.cursor()
        try:
            cur.adbc_ingest(table, data, mode="append", db_schema_name=self.wh.schema)
        finally:
            cur.close()
        return data.num_rows

    def read_sql(self, sql: str, params=None) -> pa.Table:
        cur = self.con.cursor()
        try:
            cur.execute(self._sql(sql), parameters=params or None)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    def read_batches(self, sql, params=None, batch_rows=65536) -> pa.RecordBatchReader:
        cur = self.con.cursor()
        cur.execute(self._sql(sql), parameters=params or None)
        reader = cur.fetch_record_batch()

        def gen():  # holds the cursor until the stream is read, then closes it
            try:
                yield from reader
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(reader.schema, gen())

    def execute(self, sql, params=None):
        cur = self.con.cursor()
        try:
            cur.execute(self._sql(sql), parameters=list(params) if params else None)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()


class PostgresWarehouse(Warehouse):
    dialect = "postgresql"
    session_class = PostgresSession

    def _connect(self, read_only: bool, lock_timeout: float):
        import adbc_driver_postgresql.dbapi as pg

        uri = urllib.parse.urlunsplit(self.parts._replace(scheme="postgresql"))
        return pg.connect(uri)  # DB-API: autocommit off, one transaction until commit


# --------------------------------------------------------------------------- MySQL

class MySQLSession(Session):
    TYPES = dict(Session.TYPES, int32="INT", float="DOUBLE", key_text="VARCHAR(255)",
                 text="LONGTEXT", timestamp="DATETIME(6)")

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _begin(self) -> None:
        self.execute("SET time_zone = '+00:00'")
        self.con.begin()

    def _lock(self, name: str, timeout: float) -> None:
        got = self.execute("SELECT GET_LOCK(?, ?)", [name, max(int(timeout), 0)])
        if not got or got[0][0] != 1:
            raise _busy(self.wh.where, name, timeout)

    def _close(self, lock):
        if lock:
            with contextlib.suppress(Exception):
                self.execute("SELECT RELEASE_LOCK(?)", [lock])
        super()._close(lock)

    def _schema_name(self) -> str:
        return self.wh.schema or self.wh.parts.path.lstrip("/")

    def ensure_schema(self) -> None:
        if self.wh.schema:
            self.execute(f"CREATE DATABASE IF NOT EXISTS {self.wh.quote(self.wh.schema)}")

    def insert(self, table: str, data, constants=None) -> int:
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        data = with_constants(data, constants)
        if data.num_rows == 0:
            return 0
        cols = ", ".join(self.wh.quote(c) for c in data.column_names)
        marks = ", ".join(["%s"] * data.num_columns)
        sql = f"INSERT INTO {self.name(table)} ({cols}) VALUES ({marks})"
        cur = self.con.cursor()
        try:
            for start in range(0, data.num_rows, INSERT_CHUNK):
                part = data.slice(start, INSERT_CHUNK)
                cur.executemany(sql, list(zip(*(c.to_pylist() for c in part.columns))))
        finally:
            cur.close()
        return data.num_rows

    def read_batches(self, sql, params=None, batch_rows=65536) -> pa.RecordBatchReader:
        import pymysql.cursors

        cur = self.con.cursor(pymysql.cursors.SSCursor)
        cur.execute(self._sql(sql), params or None)
        names = [d[0] for d in cur.description]
        from engage_plugin.warehouse.base import rows_to_batch

        first = rows_to_batch(cur.fetchmany(batch_rows), names, None)

        def gen():
            try:
                yield first
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows:
                        break
                    yield rows_to_batch(rows, names, None)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        return _unify(first.schema, gen())


def _unify(schema: pa.Schema, batches) -> pa.RecordBatchReader:
    """Batches whose inferred types may differ (a chunk of NULLs) as one stream."""
    tables = [pa.Table.from_batches([b]) for b in batches]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else \
        schema.empty_table()
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


class MySQLWarehouse(Warehouse):
    dialect = "mysql"
    quote_char = "`"
    session_class = MySQLSession

    def _connect(self, read_only: bool, lock_timeout: float):
        import pymysql

        p = self.parts
        return pymysql.connect(host=p.hostname or "127.0.0.1", port=p.port or 3306,
                               user=urllib.parse.unquote(p.username or "root"),
                               password=urllib.parse.unquote(p.password or ""),
                               database=p.path.lstrip("/") or None, autocommit=False,
                               charset="utf8mb4")


# --------------------------------------------------------------------------- SQLite

class SQLiteSession(Session):
    TYPES = dict(Session.TYPES, int32="INTEGER", int64="INTEGER", float="REAL",
                 bool="INTEGER", date="TEXT", timestamp="TEXT")

    def _begin(self) -> None:
        if not self.read_only:
            self.con.execute("BEGIN IMMEDIATE")  # the database's write lock, held to the end

    def _lock(self, name: str, timeout: float) -> None:
        pass

    def _commit(self) -> None:
        if not self.read_only:
            self.con.execute("COMMIT")

    def _rollback(self) -> None:
        if not self.read_only:
            with contextlib.suppress(Exception):
                self.con.execute("ROLLBACK")

    def execute(self, sql, params=None):
        cur = self.con.execute(sql, list(params) if params else ())
        return cur.fetchall() if cur.description else []

    def delete(self, table, where=None, between=None) -> int:
        clause, params = self._where(where, between)
        return self.con.execute(f"DELETE FROM {self.name(table)}{clause}", params).rowcount

    def read_batches(self, sql, params=None, batch_rows=65536) -> pa.RecordBatchReader:
        cur = self.con.execute(sql, params or ())
        names = [d[0] for d in cur.description]
        from engage_plugin.warehouse.base import rows_to_batch

        def gen():
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                yield rows_to_batch(rows, names, None)

        return _unify(pa.schema([(n, pa.null()) for n in names]), gen())

    def ensure_schema(self) -> None:
        pass

    def table_columns(self, table: str) -> list[str]:
        return [r[1] for r in self.execute(f"PRAGMA table_info({self.wh.quote(table)})")]

    def insert(self, table: str, data, constants=None) -> int:
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        data = with_constants(data, constants)
        cols = ", ".join(self.wh.quote(c) for c in data.column_names)
        sql = f"INSERT INTO {self.name(table)} ({cols}) VALUES ({', '.join('?' * data.num_columns)})"
        for start in range(0, data.num_rows, 50000):
            part = data.slice(start, 50000)
            values = [_sqlite_values(c) for c in part.columns]
            self.con.executemany(sql, zip(*values))
        return data.num_rows


def _sqlite_values(col) -> list:
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return [None if v is None else v.isoformat(sep=" ") if isinstance(v, dt.datetime)
                else v.isoformat() for v in col.to_pylist()]
    if pa.types.is_boolean(t):
        return [None if v is None else int(v) for v in col.to_pylist()]
    return col.to_pylist()


class SQLiteWarehouse(Warehouse):
    dialect = "sqlite"
    session_class = SQLiteSession

    def _connect(self, read_only: bool, lock_timeout: float):
        import sqlite3

        rest = self.uri.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest
        path = path or ":memory:"
        if read_only and path != ":memory:" and not os.path.exists(path):
            return sqlite3.connect(":memory:", isolation_level=None)
        if path != ":memory:" and not read_only:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        uri = f"file:{path}?mode=ro" if read_only and path != ":memory:" else path
        return sqlite3.connect(uri, timeout=lock_timeout, isolation_level=None,
                               uri=read_only and path != ":memory:")

    @contextlib.contextmanager
    def session(self, lock=None, lock_timeout=3600.0, read_only=False):
        try:
            with super().session(lock, lock_timeout, read_only) as s:
                yield s
        except Exception as exc:
            if "database is locked" in str(exc):
                raise _busy(self.where, lock or "sqlite", lock_timeout) from exc
            raise
