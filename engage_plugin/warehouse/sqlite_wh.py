"""SQLite through the standard library's ``sqlite3`` (no extra to install).

* Lock: ``BEGIN IMMEDIATE`` takes the database's write lock at the start of a session and
  holds it to COMMIT/ROLLBACK; a second writer waits (``lock_timeout`` is the busy timeout).
  The lock covers the whole file, whatever its name.
* Storage: integers as INTEGER, floats as REAL (NaN is stored as NULL by SQLite), booleans
  as 0/1, dates as ``YYYY-MM-DD`` text, timestamps as naive UTC ``YYYY-MM-DD
  HH:MM:SS.ffffff`` text (fixed width, so text order is time order and ranges work).
* Writes: ``executemany`` over each batch's columns converted to Python values in bulk
  (dates and timestamps formatted by Arrow), inside the session's transaction.
* Reads: ``fetchmany`` into Arrow column by column; ``read(..., schema=...)`` turns the
  texts back into dates and timestamps.

Why not ADBC here: the stdlib driver lets a session take the write lock up front (``BEGIN
IMMEDIATE``), needs no extra package, and ADBC's SQLite reads return the same texts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3

import pyarrow as pa

from engage_plugin.warehouse.arrow_io import naive_utc, plain_batch, with_constants
from engage_plugin.warehouse.base import Session, Warehouse, batches_of

INSERT_CHUNK = 50000


def stored_value(value):
    """A Python value as SQLite stores it (the same text the bulk insert writes)."""
    value = naive_utc(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def stored_column(col: pa.Array) -> list:
    t = col.type
    if pa.types.is_timestamp(t):
        col = col.cast(pa.timestamp("us")).cast(pa.string())  # 'YYYY-MM-DD HH:MM:SS.ffffff'
    elif pa.types.is_date(t):
        col = col.cast(pa.string())
    elif pa.types.is_boolean(t):
        col = col.cast(pa.int8())
    return col.to_pylist()


class SQLiteSession(Session):
    TYPES = dict(Session.TYPES, int32="INTEGER", int64="INTEGER", float="REAL",
                 bool="INTEGER", date="TEXT", timestamp="TEXT")

    def _begin(self) -> None:
        try:  # a reader gets a consistent snapshot; a writer the write lock, up front
            self.con.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise self._busy(self.lock_name or "the database's write lock",
                                 self.lock_timeout) from None
            raise

    def _lock(self, name: str, timeout: float) -> None:
        pass  # BEGIN IMMEDIATE in _begin is the lock

    def _commit(self) -> None:
        self.con.execute("COMMIT")

    def _close(self, lock) -> None:
        if self.con is not getattr(self.wh, "_memory", None):
            super()._close(lock)

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.con.execute("ROLLBACK")

    def _param(self, value):
        return stored_value(value)

    def execute(self, sql, params=None):
        cur = self.con.execute(sql, [self._param(p) for p in params] if params else ())
        return cur.fetchall() if cur.description else []

    def _cursor_execute(self, cur, sql, params) -> None:
        cur.execute(sql, [self._param(p) for p in params] if params else ())

    def delete(self, table, where=None, between=None) -> int:
        clause, params = self._where(where, between)
        return self.con.execute(f"DELETE FROM {self.name(table)}{clause}", params).rowcount

    def ensure_schema(self) -> None:
        pass  # no schemas in SQLite (open_warehouse refuses one)

    def table_columns(self, table: str) -> list[str]:
        self.wh.quote(table, "table name")
        return [r[0] for r in self.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid",
                                           [table])]

    def insert(self, table: str, data, constants=None) -> int:
        """Bulk insert: ``executemany`` per chunk of each batch (columns matched by name)."""
        _, batches = batches_of(data)
        where = f"insert into {table}"
        sql, count = None, 0
        for batch in batches:
            batch = plain_batch(with_constants(batch, constants), where)
            if sql is None:
                cols = ", ".join(self.wh.quote(c, "column name") for c in batch.schema.names)
                marks = ", ".join("?" * batch.num_columns)
                sql = f"INSERT INTO {self.name(table)} ({cols}) VALUES ({marks})"
            for start in range(0, batch.num_rows, INSERT_CHUNK):
                part = batch.slice(start, INSERT_CHUNK)
                self.con.executemany(sql, zip(*(stored_column(c) for c in part.columns)))
            count += batch.num_rows
        return count


class SQLiteWarehouse(Warehouse):
    dialect = "sqlite"
    session_class = SQLiteSession

    @property
    def path(self) -> str:
        rest = self.uri.split("://", 1)[1].split("?", 1)[0]
        return (rest[1:] if rest.startswith("/") else rest) or ":memory:"

    def _connect(self, read_only: bool, lock_timeout: float):
        path = self.path
        if path == ":memory:":  # one database per Warehouse object, shared by its sessions
            if getattr(self, "_memory", None) is None:
                self._memory = sqlite3.connect(":memory:", isolation_level=None,
                                               check_same_thread=False)
            return self._memory
        if read_only and not os.path.exists(path):
            return sqlite3.connect(":memory:", isolation_level=None)  # every table absent
        if not read_only:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        con = sqlite3.connect(path, timeout=lock_timeout, isolation_level=None)
        if read_only:  # not mode=ro: a reader must be able to roll back a killed writer's
            con.execute("PRAGMA query_only = ON")  # hot journal; query_only forbids writes
        return con
