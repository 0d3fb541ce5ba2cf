"""PostgreSQL through ADBC (``adbc-driver-postgresql``): Arrow in and out, no row loop.

* Writes: ``adbc_ingest(mode="append")``, which is ``COPY ... FROM STDIN (FORMAT binary)``
  with the columns named (matched by name), inside the session's transaction. The binary
  COPY needs exact types, so batches are made plain first (int8/int16 -> int32, unsigned ->
  int64, float32/decimal -> float64, aware timestamps -> naive UTC microseconds).
* Reads: ``fetch_record_batch`` (libpq COPY-to-Arrow, streamed). ``numeric`` columns (an
  opaque string extension type in ADBC) come back as float64; other opaque types as text.
* Lock: ``pg_advisory_xact_lock(key)`` where key is the first 8 bytes of SHA-256 of the
  lock name, waited for under ``SET LOCAL lock_timeout``; released by COMMIT/ROLLBACK.
* Read-only sessions run ``SET TRANSACTION READ ONLY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import urllib.parse

import pyarrow as pa

from engage_plugin.warehouse.arrow_io import plain_batch, stored_schema, with_constants
from engage_plugin.warehouse.base import Session, Warehouse, batches_of


def lock_key(name: str) -> int:
    """A stable signed 64-bit number for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def plain_pg_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """ADBC's opaque extension columns as ``schema`` (from :func:`plain_schema`) says."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for f, col in zip(schema, batch.columns):
        if isinstance(col.type, pa.ExtensionType):
            col = col.storage.cast(f.type)
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with ADBC's opaque extension types (numeric, uuid, json, ...) made plain:
    numeric -> float64, the others -> their storage type (text)."""
    fields = []
    for f in schema:
        t = f.type
        if isinstance(t, pa.ExtensionType):
            numeric = getattr(t, "type_name", "") == "numeric" or \
                (f.metadata or {}).get(b"ADBC:postgresql:typname") == b"numeric"
            t = pa.float64() if numeric and pa.types.is_string(t.storage_type) else t.storage_type
        fields.append(pa.field(f.name, t, f.nullable, f.metadata))
    return pa.schema(fields)


class PostgresSession(Session):
    paramstyle = "numeric"

    def _begin(self) -> None:
        if self.read_only:
            self.execute("SET TRANSACTION READ ONLY")

    def _lock(self, name: str, timeout: float) -> None:
        self.execute(f"SET LOCAL lock_timeout = '{int(max(timeout, 0.001) * 1000)}ms'")
        try:
            self.execute("SELECT pg_advisory_xact_lock(?)", [lock_key(name)])
        except Exception as exc:
            if "lock timeout" in str(exc).lower() or "55P03" in str(exc):
                raise self._busy(name, timeout) from None
            raise
        self.execute("SET LOCAL lock_timeout = DEFAULT")

    def _cursor_execute(self, cur, sql, params) -> None:
        cur.execute(self._sql(sql), parameters=[self._param(p) for p in params] if params else None)

    def _schema_name(self) -> str:
        if not self.wh.schema and not hasattr(self, "_current_schema"):
            self._current_schema = self.execute("SELECT current_schema()")[0][0]
        return self.wh.schema or self._current_schema

    def delete(self, table, where=None, between=None) -> int:
        clause, params = self._where(where, between)  # ADBC reports no rowcount: count it
        rows = self.execute(f"WITH engage_d AS (DELETE FROM {self.name(table)}{clause} "
                            "RETURNING 1) SELECT count(*) FROM engage_d", params)
        return int(rows[0][0])

    def insert(self, table: str, data, constants=None) -> int:
        """Bulk insert with COPY (ADBC ingest, append; columns matched by name)."""
        schema, batches = batches_of(data)
        where = f"insert into {table}"
        out_schema = stored_schema(schema, constants, where)
        count = [0]

        def gen():
            for b in batches:
                b = plain_batch(with_constants(b, constants), where)
                count[0] += b.num_rows
                yield b

        for f in out_schema:
            self.wh.quote(f.name, f"{where}: column name")
        reader = pa.RecordBatchReader.from_batches(out_schema, gen())
        cur = self.con.cursor()
        try:
            cur.adbc_ingest(table, reader, mode="append", db_schema_name=self._schema_name())
        finally:
            cur.close()
        return count[0]

    def _reader(self, sql, params, batch_rows) -> pa.RecordBatchReader:
        cur = self.con.cursor()
        self._cursor_execute(cur, sql, params)
        reader = cur.fetch_record_batch()
        schema = plain_schema(reader.schema)

        def gen():  # holds the cursor until the stream is read, then closes it
            try:
                for batch in reader:
                    batch = plain_pg_batch(batch, schema)
                    for start in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(start, batch_rows)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        return pa.RecordBatchReader.from_batches(schema, gen())


class PostgresWarehouse(Warehouse):
    dialect = "postgresql"
    session_class = PostgresSession

    def _connect(self, read_only: bool, lock_timeout: float):
        import adbc_driver_postgresql.dbapi as pg

        uri = urllib.parse.urlunsplit(self.parts._replace(scheme="postgresql"))
        return pg.connect(uri)  # DB-API: autocommit off, one transaction until commit
