"""What every warehouse dialect shares: identifier checks and quoting, ``?`` placeholders,
SQL types from Arrow types, the session's transaction and lock, and the generic DDL/DML
over DB-API cursors. Each dialect module overrides connecting, locking, bulk inserts and
reads (:mod:`.duckdb_wh`, :mod:`.postgres_wh`, :mod:`.mysql_wh`, :mod:`.sqlite_wh`)."""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import Iterator, Sequence

import pyarrow as pa

from engage_core.errors import ConfigError, EngageError, RunError, SchemaError
from engage_plugin.warehouse.arrow_io import conform, rows_to_batch

#: longest identifier per dialect, in bytes (PostgreSQL: NAMEDATALEN - 1)
MAX_IDENTIFIER = {"postgresql": 63, "mysql": 64, "duckdb": 255, "sqlite": 255}


def check_identifier(name: str, what: str, dialect: str = "duckdb") -> str:
    """``name`` if it can be quoted safely in ``dialect``, else a ConfigError naming it."""
    limit = MAX_IDENTIFIER.get(dialect, 63)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ConfigError(f"{what}: expected a non-empty name without NUL characters, "
                          f"found {name!r}")
    if len(name.encode("utf-8")) > limit:
        raise ConfigError(f"{what}: {name!r} is longer than {dialect}'s limit of {limit} "
                          f"bytes ({len(name.encode('utf-8'))} bytes)")
    if dialect == "mysql" and name != name.rstrip(" "):
        raise ConfigError(f"{what}: {name!r} ends with a space, which MySQL does not allow "
                          "in a name")
    return name


def translate_placeholders(sql: str, style: str) -> str:
    """``sql`` with each ``?`` outside quotes and comments made the driver's placeholder:
    ``numeric`` -> ``$1, $2, ...`` (PostgreSQL), ``format`` -> ``%s`` with every other
    ``%`` doubled (PyMySQL, which always gets an argument tuple), ``qmark`` -> unchanged."""
    if style == "qmark":
        return sql
    pct = (lambda text: text.replace("%", "%%")) if style == "format" else (lambda text: text)
    out, i, n, k = [], 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"`":  # a string or a quoted name: copied up to its closing quote
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                if c == "'" and sql[j] == "\\" and style == "format":  # MySQL escapes
                    j += 1
                j += 1
            out.append(pct(sql[i:j + 1]))
            i = j + 1
        elif sql.startswith("--", i) or sql.startswith("/*", i):
            end = sql.find("\n" if c == "-" else "*/", i + 2)
            j = n if end < 0 else end + (1 if c == "-" else 2)
            out.append(pct(sql[i:j]))
            i = j
        elif c == "?":
            k += 1
            out.append(f"${k}" if style == "numeric" else "%s")
            i += 1
        else:
            out.append(pct(c))
            i += 1
    return "".join(out)


class Warehouse:
    """One warehouse URL (and optional schema). ``session()`` is the only way in."""

    dialect = ""
    quote_char = '"'
    session_class: type = None  # set by each dialect

    def __init__(self, uri: str, parts: urllib.parse.SplitResult, schema: str | None,
                 display: str, where: str):
        self.uri, self.parts, self.schema = uri, parts, schema
        self.display, self.where = display, where

    def quote(self, name: str, what: str = "identifier") -> str:
        """``name`` quoted for SQL text (checked first: a ConfigError naming it if unusable)."""
        check_identifier(name, what, self.dialect)
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def qualified(self, table: str) -> str:
        """The quoted, schema-qualified name of ``table``."""
        name = self.quote(table, "table name")
        return f"{self.quote(self.schema, 'schema')}.{name}" if self.schema else name

    def scrub(self, text: str) -> str:
        """``text`` without the URL's password (driver messages may quote the URL)."""
        password = self.parts.password
        if password:
            for form in {password, urllib.parse.unquote(password)}:
                text = text.replace(form, "***")
        return text

    # --- what dialects provide ---------------------------------------------------------
    def _connect(self, read_only: bool, lock_timeout: float):
        raise NotImplementedError

    @contextlib.contextmanager
    def session(self, lock: str | None = None, lock_timeout: float = 3600.0,
                read_only: bool = False) -> Iterator["Session"]:
        """One connection, one transaction: COMMIT on a normal exit, ROLLBACK on any
        exception (re-raised). With ``lock``, an exclusive named lock is held until the
        session ends; another session asking for it waits up to ``lock_timeout`` seconds,
        then fails with a RunError. ``read_only``: no writes, no lock."""
        try:
            con = self._connect(read_only, lock_timeout)
        except EngageError:
            raise
        except Exception as exc:
            raise RunError(f"{self.where}: cannot open {self.display}: "
                           f"{type(exc).__name__}: {self.scrub(str(exc))}") from None
        s = self.session_class(self, con, read_only)
        held = lock if lock and not read_only else None
        s.lock_name, s.lock_timeout = held, lock_timeout
        ok = False
        try:
            if held:  # before the transaction starts, so it sees the last holder's writes
                s._lock(held, lock_timeout)
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
                s._close(held)


class Session:
    """Operations inside one transaction. SQL is written with ``?`` placeholders."""

    #: how ``?`` is sent to the driver (see :func:`translate_placeholders`)
    paramstyle = "qmark"
    #: SQL type per Arrow type family, in a primary key and elsewhere
    TYPES = {"int64": "BIGINT", "int32": "INTEGER", "float": "DOUBLE PRECISION",
             "bool": "BOOLEAN", "text": "TEXT", "key_text": "TEXT", "date": "DATE",
             "timestamp": "TIMESTAMP"}

    def __init__(self, wh: Warehouse, con, read_only: bool):
        self.wh, self.con, self.read_only = wh, con, read_only
        self.lock_name, self.lock_timeout = None, 0.0

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

    def _busy(self, name: str, timeout: float) -> RunError:
        return RunError(f"{self.wh.where}: another run of this pipeline holds the lock "
                        f"{name!r} on {self.wh.display}; waited {timeout:g} s for it. Try "
                        "again when that run has finished")

    def _sql(self, sql: str) -> str:
        return translate_placeholders(sql, self.paramstyle)

    def _cursor_execute(self, cur, sql: str, params: Sequence | None) -> None:
        cur.execute(self._sql(sql), list(params) if params else None)

    # --- generic operations -------------------------------------------------------------
    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        """Run one statement with bound ``?`` parameters; the rows it returns (if any)."""
        cur = self.con.cursor()
        try:
            self._cursor_execute(cur, sql, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def name(self, table: str) -> str:
        return self.wh.qualified(table)

    def ensure_schema(self) -> None:
        """CREATE SCHEMA IF NOT EXISTS (the warehouse's ``schema``; nothing without one)."""
        if self.wh.schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.wh.quote(self.wh.schema, 'schema')}")

    def sql_type(self, t: pa.DataType, in_key: bool, where: str = "column") -> str:
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
        raise SchemaError(f"{where}: Arrow type {t} has no {self.wh.dialect} column type here; "
                          "expected an integer, floating point, decimal, boolean, string, "
                          "date or timestamp type")

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str] = ()) -> None:
        """CREATE TABLE IF NOT EXISTS from an Arrow schema (key and non-nullable columns
        NOT NULL). Timestamps are stored naive, as UTC. On MySQL/MariaDB any DDL commits
        the open transaction implicitly: create tables in a session of their own, before
        the session that writes rows."""
        missing = [k for k in primary_key if k not in schema.names]
        if missing:
            raise SchemaError(f"table {table}: primary key column(s) {missing} are not among "
                              f"its columns {schema.names}")
        cols = []
        for f in schema:
            key = f.name in primary_key
            null = " NOT NULL" if key or not f.nullable else ""
            kind = self.sql_type(f.type, key, f"table {table}, column {f.name}")
            cols.append(f"{self.wh.quote(f.name, 'column name')} {kind}{null}")
        if primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.wh.quote(k) for k in primary_key)})")
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({', '.join(cols)})")

    def drop_table(self, table: str) -> None:
        """DROP TABLE IF EXISTS."""
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
            if value is None:
                conds.append(f"{self.wh.quote(col, 'column name')} IS NULL")
                continue
            conds.append(f"{self.wh.quote(col, 'column name')} = ?")
            params.append(self._param(value))
        if between is not None:
            col, lo, hi = between
            conds.append(f"{self.wh.quote(col, 'column name')} BETWEEN ? AND ?")
            params += [self._param(lo), self._param(hi)]
        return (" WHERE " + " AND ".join(conds)) if conds else "", params

    def _param(self, value):
        """A bound value as the driver takes it (aware datetimes: naive UTC, as stored)."""
        import datetime as dt

        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def delete(self, table: str, where: dict | None = None, between: tuple | None = None) -> int:
        """DELETE the rows matching ``where`` (column = value; None matches NULL) and
        ``between`` ((column, lo, hi), inclusive); every row when both are None. Returns
        the number of rows deleted."""
        clause, params = self._where(where, between)
        cur = self.con.cursor()
        try:
            self._cursor_execute(cur, f"DELETE FROM {self.name(table)}{clause}", params)
            return max(getattr(cur, "rowcount", 0) or 0, 0)
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def select_sql(self, table: str, columns: Sequence[str] | None, between) -> tuple[str, list]:
        cols = ", ".join(self.wh.quote(c, "column name") for c in columns) if columns else "*"
        clause, params = self._where(None, between)
        return f"SELECT {cols} FROM {self.name(table)}{clause}", params

    def read(self, table: str, columns: Sequence[str] | None = None,
             between: tuple | None = None, schema: pa.Schema | None = None) -> pa.Table:
        """The table's rows as Arrow. With ``schema`` (the types it was created from, or a
        subset of them) the result has exactly those columns and types (a column the table
        lacks reads as NULLs)."""
        sql, params = self.select_sql(table, columns, between)
        return self.read_batches(sql, params, schema=schema).read_all()

    def read_sql(self, sql: str, params: Sequence | None = None) -> pa.Table:
        return self.read_batches(sql, params).read_all()

    def read_batches(self, sql_or_table: str, params: Sequence | None = None,
                     batch_rows: int = 65536, schema: pa.Schema | None = None
                     ) -> pa.RecordBatchReader:
        """A query's rows (or a whole table's, when given a bare table name) as Arrow record
        batches of at most ``batch_rows`` rows, fetched as they are read: bounded memory.
        With ``schema`` every batch has exactly its columns and types. Read it before the
        session ends."""
        sql = self._as_sql(sql_or_table)
        reader = self._reader(sql, list(params) if params else [], batch_rows)
        return conformed(reader, schema) if schema is not None else reader

    def _as_sql(self, sql_or_table: str) -> str:
        text = sql_or_table.strip()
        if " " in text or "\n" in text or "\t" in text:  # SQL; a table name has no blanks
            return text
        return f"SELECT * FROM {self.name(text)}"

    def _reader(self, sql: str, params: list, batch_rows: int) -> pa.RecordBatchReader:
        """Generic DB-API path: ``fetchmany`` turned into Arrow column by column; the first
        batch's types hold for the stream (a column NULL in all of it is typed by the first
        row where it is not NULL: one more query)."""
        cur = self.con.cursor()
        self._cursor_execute(cur, sql, params)
        names = [d[0] for d in cur.description]
        first = rows_to_batch(cur.fetchmany(batch_rows), names, None)
        schema = first.schema
        if any(pa.types.is_null(f.type) for f in schema):
            schema = self._type_null_columns(sql, params, schema)

        def gen():
            try:
                yield conform_batch(first, schema)
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows:
                        break
                    yield rows_to_batch(rows, names, schema)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        return pa.RecordBatchReader.from_batches(schema, gen())

    def _type_null_columns(self, sql: str, params: list, schema: pa.Schema) -> pa.Schema:
        fields = []
        for i, f in enumerate(schema):
            if pa.types.is_null(f.type):
                col = self.wh.quote(f.name)
                rows = self.execute(f"SELECT {col} FROM ({sql}) AS engage_q WHERE {col} IS "
                                    "NOT NULL LIMIT 1", params)
                if rows:
                    f = pa.field(f.name, rows_to_batch(rows, [f.name], None).schema[0].type)
            fields.append(f)
        return pa.schema(fields)

    def insert(self, table: str, data, constants: dict | None = None) -> int:
        raise NotImplementedError


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns and types."""
    if batch.schema.equals(schema):
        return batch
    table = conform(pa.Table.from_batches([batch]), schema).combine_chunks()
    return pa.RecordBatch.from_arrays([c.chunk(0) if c.num_chunks else pa.array([], c.type)
                                       for c in table.columns], schema=schema)


def conformed(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    """``reader``'s batches with exactly ``schema``'s columns and types."""
    def gen():
        for batch in reader:
            yield conform_batch(batch, schema)

    return pa.RecordBatchReader.from_batches(schema, gen())


def batches_of(data) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """A Table or RecordBatchReader (or RecordBatch) as its schema and a batch iterator."""
    if isinstance(data, pa.RecordBatch):
        return data.schema, iter([data])
    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches())
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    raise RunError(f"insert: expected an Arrow Table or RecordBatchReader, found "
                   f"{type(data).__name__}")
