"""MySQL and MariaDB through PyMySQL (pure Python, so the extra needs no client library).

* Every DDL statement (CREATE/DROP TABLE, CREATE DATABASE) COMMITS the open transaction
  implicitly on MySQL/MariaDB: create tables in a session of their own, before the session
  that writes rows; only DML is transactional.
* Sessions run with ``time_zone = '+00:00'``: DATETIME(6) columns hold naive UTC and
  TIMESTAMP columns compare and read in UTC.
* Writes: multi-row ``INSERT ... VALUES (...), (...)`` (``executemany`` rewrites one
  statement per ~1 MB), batch by batch. MySQL has no NaN or infinity: those floats are
  written as NULL.
* Reads: an unbuffered server-side cursor (``SSCursor``) fetched ``batch_rows`` at a time and
  turned into Arrow column by column, typed from the result's column metadata (so every
  batch has the same types). Read the stream before running another statement.
* Lock: ``GET_LOCK(name, timeout)``, released with ``RELEASE_LOCK`` when the session ends
  (and by the server if the connection dies). Names over 64 characters are hashed.
* A schema is a database (``CREATE DATABASE IF NOT EXISTS``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import urllib.parse

import pyarrow as pa
import pyarrow.compute as pc

from engage_plugin.warehouse.arrow_io import plain_batch, rows_to_batch, with_constants
from engage_plugin.warehouse.base import Session, Warehouse, batches_of

INSERT_CHUNK = 5000
UNSIGNED, BINARY_CHARSET = 32, 63
_TEXT_CODES = {15, 245, 247, 248, 249, 250, 251, 252, 253, 254}


def arrow_type(type_code: int, flags: int = 0, charsetnr: int = 0) -> pa.DataType:
    """The Arrow type of a MySQL result column (pymysql.constants.FIELD_TYPE codes)."""
    unsigned = bool(flags & UNSIGNED)
    if type_code in (1, 2, 9, 13):  # TINY, SHORT, INT24, YEAR
        return pa.int32()
    if type_code == 3:  # LONG
        return pa.int64() if unsigned else pa.int32()
    if type_code == 8:  # LONGLONG
        return pa.uint64() if unsigned else pa.int64()
    if type_code in (0, 4, 5, 246):  # DECIMAL, FLOAT, DOUBLE, NEWDECIMAL
        return pa.float64()
    if type_code in (7, 12):  # TIMESTAMP (read in the session's UTC), DATETIME
        return pa.timestamp("us")
    if type_code in (10, 14):  # DATE, NEWDATE
        return pa.date32()
    if type_code == 11:  # TIME
        return pa.duration("us")
    if type_code == 6:
        return pa.null()
    if type_code in _TEXT_CODES and charsetnr != BINARY_CHARSET:
        return pa.string()
    return pa.binary()  # BLOBs, BIT, GEOMETRY


def result_schema(cur) -> pa.Schema:
    fields = getattr(getattr(cur, "_result", None), "fields", None)
    if fields and len(fields) == len(cur.description):
        return pa.schema([(d[0], arrow_type(f.type_code, f.flags, f.charsetnr))
                          for d, f in zip(cur.description, fields)])
    return pa.schema([(d[0], arrow_type(d[1])) for d in cur.description])


def lock_name(name: str) -> str:
    if len(name) <= 64:
        return name
    return name[:47] + ":" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _no_zero_dates(rows: list, schema: pa.Schema) -> list:
    """MySQL's zero dates ('0000-00-00', which PyMySQL returns as text) as NULL."""
    idx = [i for i, f in enumerate(schema)
           if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type)]
    if not idx or not rows:
        return rows
    if not any(isinstance(r[i], str) for r in rows for i in idx):
        return rows
    return [tuple(None if i in idx and isinstance(v, str) else v for i, v in enumerate(r))
            for r in rows]


class MySQLSession(Session):
    paramstyle = "format"
    TYPES = dict(Session.TYPES, int32="INT", float="DOUBLE", key_text="VARCHAR(255)",
                 text="LONGTEXT", timestamp="DATETIME(6)")

    def _cursor_execute(self, cur, sql, params) -> None:
        # always a tuple, so PyMySQL formats the statement and the doubled % become %
        cur.execute(self._sql(sql), tuple(self._param(p) for p in (params or ())))

    def _begin(self) -> None:
        self.execute("SET time_zone = '+00:00'")
        self.execute("START TRANSACTION READ ONLY" if self.read_only else "START TRANSACTION")

    def _lock(self, name: str, timeout: float) -> None:
        got = self.execute("SELECT GET_LOCK(?, ?)", [lock_name(name), math.ceil(max(timeout, 0))])
        if not got or got[0][0] != 1:
            raise self._busy(name, timeout)

    def _close(self, lock):
        if lock:
            with contextlib.suppress(Exception):
                self.execute("SELECT RELEASE_LOCK(?)", [lock_name(lock)])
        super()._close(lock)

    def _schema_name(self) -> str:
        return self.wh.schema or urllib.parse.unquote(self.wh.parts.path.lstrip("/"))

    def ensure_schema(self) -> None:
        """CREATE DATABASE IF NOT EXISTS (a MySQL schema is a database; DDL: commits)."""
        if self.wh.schema:
            self.execute(f"CREATE DATABASE IF NOT EXISTS {self.wh.quote(self.wh.schema, 'schema')}")

    def insert(self, table: str, data, constants=None) -> int:
        """Bulk insert: multi-row INSERT statements, batch by batch (columns by name)."""
        _, batches = batches_of(data)
        where = f"insert into {table}"
        sql, count = None, 0
        cur = self.con.cursor()
        try:
            for batch in batches:
                batch = plain_batch(with_constants(batch, constants), where)
                if sql is None:
                    cols = ", ".join(self.wh.quote(c, "column name") for c in batch.schema.names)
                    marks = ", ".join(["?"] * batch.num_columns)
                    sql = self._sql(f"INSERT INTO {self.name(table)} ({cols}) VALUES ({marks})")
                for start in range(0, batch.num_rows, INSERT_CHUNK):
                    part = batch.slice(start, INSERT_CHUNK)
                    cols = [_finite(c).to_pylist() for c in part.columns]
                    cur.executemany(sql, list(zip(*cols)))
                count += batch.num_rows
        finally:
            cur.close()
        return count

    def _reader(self, sql, params, batch_rows) -> pa.RecordBatchReader:
        import pymysql.cursors

        cur = self.con.cursor(pymysql.cursors.SSCursor)
        self._cursor_execute(cur, sql, params)
        schema = result_schema(cur)

        def gen():
            try:
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows:
                        break
                    yield rows_to_batch(_no_zero_dates(rows, schema), schema.names, schema)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        return pa.RecordBatchReader.from_batches(schema, gen())


def _finite(col: pa.Array) -> pa.Array:
    if pa.types.is_floating(col.type) and col.null_count < len(col):
        return pc.if_else(pc.is_finite(col), col, pa.scalar(None, col.type))
    return col


class MySQLWarehouse(Warehouse):
    dialect = "mysql"
    quote_char = "`"
    session_class = MySQLSession

    def _connect(self, read_only: bool, lock_timeout: float):
        import pymysql

        p = self.parts
        query = dict(urllib.parse.parse_qsl(p.query))
        extra = {"unix_socket": query["unix_socket"]} if "unix_socket" in query else {}
        return pymysql.connect(host=p.hostname or "127.0.0.1", port=p.port or 3306,
                               user=urllib.parse.unquote(p.username or "root"),
                               password=urllib.parse.unquote(p.password or ""),
                               database=urllib.parse.unquote(p.path.lstrip("/")) or None,
                               autocommit=False, charset=query.get("charset", "utf8mb4"),
                               connect_timeout=30, **extra)
