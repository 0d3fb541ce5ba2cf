"""DuckDB: the embedded default.

* Lock: a DuckDB file opened read-write is exclusive across processes, so the open itself is
  retried until ``lock_timeout``; inside one process DuckDB shares one database between
  connections, so a process-wide lock per file serializes this process's locked sessions.
* Writes: Arrow batches are registered and inserted with ``INSERT ... SELECT`` (streamed).
* Reads: Arrow-native record batches.
* New files are written with ``storage_compatibility_version = 'v1.0.0'`` (readable by
  the duckdb 1.x that Superset and older tools bundle).
* ``duckdb:///:memory:``: one in-memory database per :class:`DuckDBWarehouse` object, shared
  by its sessions (each a cursor of it), for tests.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pyarrow as pa

from engage_plugin.warehouse.arrow_io import (naive_utc, plain_batch, stored_schema,
                                               with_constants)
from engage_plugin.warehouse.base import Session, Warehouse, batches_of

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
WRITE_CONFIG = {"storage_compatibility_version": "v1.0.0"}


class DuckDBSession(Session):
    TYPES = dict(Session.TYPES, float="DOUBLE")

    def _begin(self) -> None:
        if not self.read_only:
            self.con.execute("BEGIN TRANSACTION")

    def _lock(self, name: str, timeout: float) -> None:
        with _PROCESS_LOCKS_GUARD:
            lock = _PROCESS_LOCKS.setdefault(self.wh.lock_key, threading.Lock())
        if not lock.acquire(timeout=max(timeout, 0.0)):
            raise self._busy(name, timeout)
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
        rel = self.con.execute(sql, [self._param(p) for p in params] if params else None)
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
        """Bulk insert (streamed from the batches; columns matched by name)."""
        schema, batches = batches_of(data)
        constants = {k: naive_utc(v) for k, v in (constants or {}).items()}
        where = f"insert into {table}"
        out_schema = stored_schema(schema, constants, where)
        reader = pa.RecordBatchReader.from_batches(
            out_schema, (plain_batch(with_constants(b, constants), where) for b in batches))
        view = "engage_insert_src"
        self.con.register(view, reader)
        try:
            cols = ", ".join(self.wh.quote(c, "column name") for c in out_schema.names)
            rows = self.con.execute(f"INSERT INTO {self.name(table)} ({cols}) "
                                    f"SELECT {cols} FROM {view}").fetchall()
        finally:
            self.con.unregister(view)
        return int(rows[0][0]) if rows else 0

    def _reader(self, sql, params, batch_rows) -> pa.RecordBatchReader:
        rel = self.con.sql(sql, params=[self._param(p) for p in params] or None)
        for name in ("to_arrow_reader", "fetch_arrow_reader", "record_batch"):
            method = getattr(rel, name, None)
            if method is not None:
                return method(batch_rows)
        return rel.arrow().to_reader()  # pragma: no cover (old duckdb)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    session_class = DuckDBSession

    @property
    def path(self) -> str:
        rest = self.uri.split("://", 1)[1]
        rest = rest[1:] if rest.startswith("/") else rest
        return rest.split("?", 1)[0] or ":memory:"

    @property
    def lock_key(self) -> str:
        return f"memory:{id(self)}" if self.path == ":memory:" else os.path.abspath(self.path)

    def _connect(self, read_only: bool, lock_timeout: float):
        import duckdb

        path = self.path
        if path == ":memory:":
            if getattr(self, "_memory", None) is None:
                self._memory = duckdb.connect(":memory:")
            return self._memory.cursor()
        if read_only and not os.path.exists(path):
            return duckdb.connect(":memory:")  # nothing there yet: every table absent
        if not read_only:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        deadline = time.monotonic() + lock_timeout
        config = {} if read_only else WRITE_CONFIG
        while True:
            try:
                return duckdb.connect(path, read_only=read_only, config=config)
            except duckdb.ConnectionException as exc:
                # this process has the file open with another configuration: a reader
                # shares the writer's database (and writes nothing); a writer waits
                if read_only and "different configuration" in str(exc):
                    with contextlib.suppress(duckdb.ConnectionException):
                        return duckdb.connect(path, config=WRITE_CONFIG)
                if "different configuration" not in str(exc):
                    raise
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
            if time.monotonic() >= deadline:
                raise DuckDBSession(self, None, read_only)._busy(path, lock_timeout) from None
            time.sleep(0.1)
