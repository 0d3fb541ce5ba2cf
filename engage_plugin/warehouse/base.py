"""What every warehouse dialect shares: identifier checks and quoting, SQL types from Arrow
types, the session's transaction and lock, and the generic DDL/DML over DB-API cursors.
Dialects (:mod:`.dialects`) override connecting, locking, bulk inserts and reads."""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from engage_core.errors import ConfigError, RunError

#: longest identifier per dialect (bytes)
MAX_IDENTIFIER = {"postgresql": 63, "mysql": 64, "duckdb": 255, "sqlite": 255}


def check_identifier(name: str, what: str, dialect: str = "duckdb") -> str:
    """``name`` if it can be quoted safely in ``dialect``, else a ConfigError naming it."""
    limit = MAX_IDENTIFIER.get(dialect, 63)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ConfigError(f"{what}: expected a non-empty name without NUL characters, "
                          f"found {name!r}")
    if len(name.encode("utf-8")) > limit:
        raise ConfigError(f"{what}: {name!r} is longer than {dialect}'s limit of {limit} bytes")
    return name


class Warehouse:
    """One warehouse URL (and optional schema). ``session()`` is the only way in."""

    dialect = ""
    quote_char = '"'

    def __init__(self, uri: str, parts: urllib.parse.SplitResult, schema: str | None,
                 display: str, where: str):
        self.uri, self.parts, self.schema = uri, parts, schema
        self.display, self.where = display, where

    def quote(self, name: str) -> str:
        check_identifier(name, "identifier", self.dialect)
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def qualified(self, table: str) -> str:
        """The quoted, schema-qualified name of ``table``."""
        name = self.quote(table)
        return f"{self.quote(self.schema)}.{name}" if self.schema else name

    # --- what dialects provide ---------------------------------------------------------
    def _connect(self, read_only: bool, lock_timeout: float):
        raise NotImplementedError

    session_class: type = None  # set below

    @contextlib.contextmanager
    def session(self, lock: str | None = None, lock_timeout: float = 3600.0,
                read_only: bool = False) -> Iterator["Session"]:
        """One connection, one transaction: COMMIT on a normal exit, ROLLBACK on any
        exception (re-raised). With ``lock``, an exclusive named lock is held until the
        session ends (another session asking for it waits up to ``lock_timeout`` s)."""
        try:
            con = self._connect(read_only, lock_timeout)
        except (ConfigError, RunError):
            raise
        except Exception as exc:
            raise RunError(f"{self.where}: cannot open {self.display}: "
                           f"{type(exc).__name__}: {exc}") from exc
        s = self.session_class(self, con, read_only)
        ok = False
        try:
            if lock and not read_only:  # before the transaction starts: it must see the
                s._lock(lock, lock_timeout)  # writes of the session that held the lock
            s._begin()
            yield s
            ok = True
        finally:
            try:
                if ok and not read_only:
                    s._commit()
                else:
                    s._rollback()
            finally:
                s._close(lock if lock and not read_only else None)


class Session:
    """Operations inside one transaction. SQL is written with ``?`` placeholders."""

    #: SQL type per Arrow type family, in a primary key and elsewhere
    TYPES = {"int64": "BIGINT", "int32": "INTEGER", "float": "DOUBLE PRECISION",
             "bool": "BOOLEAN", "text": "TEXT", "key_text": "TEXT", "date": "DATE",
             "timestamp": "TIMESTAMP"}

    def __init__(self, wh: Warehouse, con, read_only: bool):
        self.wh, self.con, self.read_only = wh, con, read_only

    # --- transaction (dialects override as needed) -------------------------------------
    def _begin(self) -> None:
        pass

    def _commit(self) -> None:
        self.con.commit()

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.con.rollback()

    def _close(self, lock: str | None) -> None:
        with contextlib.suppress(Exception):
            self.con.close()

    def _lock(self, name: str, timeout: float) -> None:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        """``sql`` with the dialect's placeholders."""
        return sql

    # --- generic operations -------------------------------------------------------------
    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        """Run one statement with bound parameters; the rows it returns (if any)."""
        cur = self.con.cursor()
        try:
            cur.execute(self._sql(sql), list(params) if params else None)
            return list(cur.fetchall()) if cur.description else []
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def name(self, table: str) -> str:
        return self.wh.qualified(table)

    def ensure_schema(self) -> None:
        if self.wh.schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.wh.quote(self.wh.schema)}")

    def sql_type(self, t: pa.DataType, in_key: bool) -> str:
        if pa.types.is_dictionary(t):
            t = t.value_type
        T = self.TYPES
        if pa.types.is_boolean(t):
            return T["bool"]
        if pa.types.is_integer(t):
            return T["int32"] if t.bit_width <= 32 and not pa.types.is_uint32(t) else T["int64"]
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return T["float"]
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return T["key_text"] if in_key else T["text"]
        if pa.types.is_date(t):
            return T["date"]
        if pa.types.is_timestamp(t):
            return T["timestamp"]
        raise RunError(f"no {self.wh.dialect} type for Arrow type {t}")

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str] = ()) -> None:
        """CREATE TABLE IF NOT EXISTS from an Arrow schema (key columns NOT NULL). On
        MySQL/MariaDB this commits the open transaction: call it before any DML."""
        cols = []
        for f in schema:
            null = " NOT NULL" if f.name in primary_key or not f.nullable else ""
            cols.append(f"{self.wh.quote(f.name)} {self.sql_type(f.type, f.name in primary_key)}{null}")
        if primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.wh.quote(k) for k in primary_key)})")
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({', '.join(cols)})")

    def drop_table(self, table: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.name(table)}")

    def table_columns(self, table: str) -> list[str]:
        """The table's column names in order ([] when it does not exist)."""
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
            "table_name = ? ORDER BY ordinal_position", [self._schema_name(), table])
        return [r[0] for r in rows]

    def _schema_name(self) -> str:
        return self.wh.schema or "public"

    def table_exists(self, table: str) -> bool:
        return bool(self.table_columns(table))

    def _where(self, where: dict | None, between: tuple | None) -> tuple[str, list]:
        conds, params = [], []
        for col, value in (where or {}).items():
            conds.append(f"{self.wh.quote(col)} = ?")
            params.append(value)
        if between is not None:
            col, lo, hi = between
            conds.append(f"{self.wh.quote(col)} BETWEEN ? AND ?")
            params += [lo, hi]
        return (" WHERE " + " AND ".join(conds)) if conds else "", params

    def delete(self, table: str, where: dict | None = None, between: tuple | None = None) -> int:
        """DELETE the rows matching ``where`` (column = value) and ``between`` ((column, lo,
        hi), inclusive); every row when both are None."""
        clause, params = self._where(where, between)
        cur = self.con.cursor()
        try:
            cur.execute(self._sql(f"DELETE FROM {self.name(table)}{clause}"), params or None)
            return max(getattr(cur, "rowcount", 0) or 0, 0)
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def select_sql(self, table: str, columns: Sequence[str] | None, between) -> tuple[str, list]:
        cols = ", ".join(self.wh.quote(c) for c in columns) if columns else "*"
        clause, params = self._where(None, between)
        return f"SELECT {cols} FROM {self.name(table)}{clause}", params

    def read(self, table: str, columns: Sequence[str] | None = None,
             between: tuple | None = None, schema: pa.Schema | None = None) -> pa.Table:
        """The table's rows as Arrow (cast to ``schema`` when given: the types it was
        created from)."""
        sql, params = self.select_sql(table, columns, between)
        out = self.read_sql(sql, params)
        return conform(out, schema) if schema is not None else out

    def read_sql(self, sql: str, params: list | None = None) -> pa.Table:
        reader = self.read_batches(sql, params)
        return reader.read_all()

    def read_batches(self, sql: str, params: list | None = None,
                     batch_rows: int = 65536) -> pa.RecordBatchReader:
        """A query's rows as Arrow record batches, ``batch_rows`` at a time (bounded
        memory): a DB-API cursor's ``fetchmany``, column by column into Arrow."""
        cur = self.con.cursor()
        cur.execute(self._sql(sql), params or None)
        names = [d[0] for d in cur.description]
        first = cur.fetchmany(batch_rows)
        batch0 = rows_to_batch(first, names, None)
        schema = batch0.schema

        def gen():
            try:
                yield batch0
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows:
                        break
                    yield rows_to_batch(rows, names, schema)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        return pa.RecordBatchReader.from_batches(schema, gen())

    def insert(self, table: str, data, constants: dict | None = None) -> int:
        raise NotImplementedError


Warehouse.session_class = Session


def with_constants(data: pa.Table, constants: dict | None) -> pa.Table:
    """``data`` with a constant column per ``constants`` item (timestamps as us)."""
    for name, value in (constants or {}).items():
        if isinstance(value, dt.datetime):
            arr = pa.array([value] * data.num_rows, pa.timestamp("us"))
        else:
            arr = pa.array([value] * data.num_rows)
        data = data.append_column(name, arr)
    return data


def rows_to_batch(rows: list, names: list[str], schema: pa.Schema | None) -> pa.RecordBatch:
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    if schema is None:
        arrays = []
        for c in cols:
            try:
                arrays.append(pa.array(list(c)))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array([None if v is None else str(v) for v in c]))
        return pa.RecordBatch.from_arrays(arrays, names=names)
    arrays = []
    for c, f in zip(cols, schema):
        if pa.types.is_null(f.type):
            arrays.append(pa.array(list(c)))
        else:
            arrays.append(pa.array(list(c)).cast(f.type) if c else pa.array([], f.type))
    batch = pa.RecordBatch.from_arrays(arrays, names=names)
    return batch if batch.schema.equals(schema) else batch.cast(schema) if \
        not any(pa.types.is_null(f.type) for f in schema) else batch


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns of ``schema``, in its order and cast to its types (texts that
    hold dates or timestamps, integers that hold booleans: what SQLite and MySQL return)."""
    cols = []
    for f in schema:
        col = table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        if not col.type.equals(f.type):
            if pa.types.is_null(col.type):
                col = pa.nulls(table.num_rows, f.type)
            elif pa.types.is_boolean(f.type) and pa.types.is_integer(col.type):
                col = pa.compute.not_equal(col, 0)
            else:
                col = col.cast(f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)
