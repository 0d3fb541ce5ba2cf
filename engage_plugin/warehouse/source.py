"""A pipeline source behind a warehouse URL: a table or a query, read as Arrow in bounded
memory (ADBC record batches for PostgreSQL, a server-side cursor for MySQL/MariaDB,
``fetchmany`` for SQLite, Arrow batches for DuckDB).

The day range arrives as UTC instants ``[lo_utc, hi_utc)`` (aware datetimes; naive ones are
taken as UTC), or as dates for a date column, and is pushed into the query as
``ts IS NULL OR (ts >= lo AND ts < hi)`` with each bound in the column's own terms:

* PostgreSQL (and DuckDB) ``timestamptz``: ``CAST(? AS TIMESTAMPTZ)`` of the instant
  written with ``+00:00``, so the session's TimeZone setting does not matter; ``timestamp`` (without time
  zone) holds naive UTC: bound as a naive UTC datetime; ``date``: bound as dates.
* MySQL/MariaDB ``DATETIME`` (naive UTC) and ``TIMESTAMP``: sessions run with
  ``time_zone = '+00:00'``, so both compare with a naive UTC datetime.
* SQLite has no time types. Supported: ISO-8601 text, ``YYYY-MM-DD HH:MM[:SS[.ffffff]]``
  with a space or ``T``, optionally ending in ``Z`` or ``+HH:MM`` (converted to UTC; text
  without an offset is UTC), or ``YYYY-MM-DD`` (a date column). Such text columns read as
  ``timestamp[us, tz=UTC]`` (or ``date32``); the pushed-down text comparison is widened by a
  day each side (offsets) and the rows are then filtered exactly. Numbers (Unix epochs) are
  not read as timestamps: the column stays numeric and the schema check names it.

``relation_schema`` reads no rows except on SQLite, whose columns have no types: there the
first 1,000 rows (and the declared column types of a table) decide.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from engage_core.errors import ConfigError, EngageError
from engage_plugin.warehouse import open_warehouse
from engage_plugin.warehouse.arrow_io import parse_timestamps
from engage_plugin.warehouse.base import conformed

SQLITE_SAMPLE = 1000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def _relation(wh, table: str | None, query: str | None, where: str) -> str:
    if bool(table) == bool(query):
        raise ConfigError(f"{where}: expected exactly one of table or query, found "
                          f"{'both' if table else 'neither'}")
    if table:  # "schema.table" or "table" (a name with a dot in it cannot be given)
        return ".".join(wh.quote(p, f"{where}.table") for p in table.split("."))
    return f"({query.strip().rstrip(';').strip()}) AS engage_src"


def relation_schema(uri: str, table: str | None = None, query: str | None = None,
                    where: str = "source") -> pa.Schema:
    """The source's columns as Arrow types, reading no rows (SQLite: see the module doc)."""
    wh = open_warehouse(uri, where=f"{where}.uri")
    rel = _relation(wh, table, query, where)
    try:
        with wh.session(read_only=True) as s:
            if wh.dialect != "sqlite":
                reader = s.read_batches(f"SELECT * FROM {rel} WHERE 1 = 0")
                schema = reader.schema
                reader.read_all()
            else:
                sample = s.read_sql(f"SELECT * FROM {rel} LIMIT {SQLITE_SAMPLE}")
                declared = dict(s.execute("SELECT name, type FROM pragma_table_info(?)",
                                          [table])) if table and "." not in table else {}
                schema = pa.schema([(f.name, _sqlite_type(sample[f.name], declared.get(f.name)))
                                    for f in sample.schema])
    except EngageError as exc:
        raise ConfigError(f"{where}: cannot read the source at {wh.display}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{where}: cannot read the source at {wh.display}: "
                          f"{type(exc).__name__}: {wh.scrub(str(exc))}") from None
    return pa.schema([pa.field(f.name, f.type) for f in schema])  # no driver metadata


def _sqlite_type(col: pa.ChunkedArray, declared: str | None) -> pa.DataType:
    decl = (declared or "").upper()
    if decl == "DATE":
        return pa.date32()
    if decl in ("DATETIME", "TIMESTAMP"):
        return pa.timestamp("us", "UTC")
    values = pc.drop_null(col)
    if pa.types.is_null(col.type) or not len(values):
        return pa.float64() if decl in ("REAL", "DOUBLE", "FLOAT") else \
            pa.int64() if "INT" in decl else pa.string()
    if pa.types.is_string(col.type):
        sample = values[0].as_py().strip()
        if _ISO_DATE.match(sample):
            return pa.date32()
        if _ISO_TS.match(sample):
            return pa.timestamp("us", "UTC")
    return col.type


def relation_batches(uri: str, table: str | None = None, query: str | None = None,
                     columns: Sequence[str] | None = None, ts_column: str | None = None,
                     ts_type: pa.DataType | None = None, lo_utc=None, hi_utc=None, *,
                     where: str = "source", schema: pa.Schema | None = None,
                     batch_rows: int = 65536) -> pa.RecordBatchReader:
    """The rows of ``columns`` (all when None) whose ``ts_column`` is NULL or in
    ``[lo_utc, hi_utc)`` (a None bound is open), as a stream of record batches with the
    types of ``schema`` (probed with :func:`relation_schema` when not given). The
    connection stays open until the stream is read to its end (or dropped)."""
    schema = schema if schema is not None else relation_schema(uri, table, query, where)
    wh = open_warehouse(uri, where=f"{where}.uri")
    rel = _relation(wh, table, query, where)
    columns = list(columns) if columns else schema.names
    missing = [c for c in columns + ([ts_column] if ts_column else []) if c not in schema.names]
    if missing:
        raise ConfigError(f"{where}: column(s) {missing} not in the source; it has "
                          f"{schema.names}")
    out_schema = pa.schema([schema.field(c) for c in columns])
    params: list = []
    exact, where_sql = None, ""
    if ts_column and (lo_utc is not None or hi_utc is not None):
        ts_type = ts_type if ts_type is not None else schema.field(ts_column).type
        conds, params, exact = _predicate(wh, wh.quote(ts_column), ts_type, lo_utc, hi_utc)
        where_sql = f" WHERE {wh.quote(ts_column)} IS NULL OR ({' AND '.join(conds)})"
    # the exact filter (SQLite) needs the timestamps even when they are not asked for
    read_cols = columns + [ts_column] if exact and ts_column not in columns else columns
    read_schema = pa.schema([schema.field(c) for c in read_cols])
    sql = (f"SELECT {', '.join(wh.quote(c, f'{where}.columns') for c in read_cols)} "
           f"FROM {rel}{where_sql}")

    def gen():
        with wh.session(read_only=True) as s:
            for batch in conformed(s.read_batches(sql, params, batch_rows), read_schema):
                if exact is not None:  # SQLite: the exact range on the parsed values
                    col = batch.column(read_schema.get_field_index(ts_column))
                    batch = batch.filter(pc.or_kleene(pc.is_null(col), exact(col)))
                    if read_cols is not columns:
                        batch = batch.select(columns)
                yield batch

    return pa.RecordBatchReader.from_batches(out_schema, gen())


def read_relation(uri: str, table: str | None = None, query: str | None = None,
                  columns: Sequence[str] | None = None, ts_column: str | None = None,
                  ts_type: pa.DataType | None = None, lo_utc=None, hi_utc=None, *,
                  where: str = "source", schema: pa.Schema | None = None) -> pa.Table:
    """:func:`relation_batches` read into one table."""
    reader = relation_batches(uri, table, query, columns, ts_column, ts_type, lo_utc, hi_utc,
                              where=where, schema=schema)
    try:
        return reader.read_all()
    except EngageError:
        raise
    except Exception as exc:
        wh = open_warehouse(uri, where=f"{where}.uri")
        raise ConfigError(f"{where}: cannot read the source at {wh.display}: "
                          f"{type(exc).__name__}: {wh.scrub(str(exc))}") from None


def _utc(bound) -> dt.datetime:
    if isinstance(bound, dt.datetime):
        return bound.astimezone(dt.timezone.utc) if bound.tzinfo else \
            bound.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.combine(bound, dt.time(), dt.timezone.utc)


def _predicate(wh, ts: str, ts_type: pa.DataType, lo, hi):
    """``(conditions, params, exact)`` for ``lo <= ts < hi``; ``exact`` filters parsed
    values afterwards where the SQL comparison is only a widened one (SQLite text)."""
    conds, params = [], []
    if pa.types.is_date(ts_type):
        def as_date(b, upper):  # datetimes given for a date column: widened to whole days
            if not isinstance(b, dt.datetime):
                return b
            d = _utc(b).date()
            return d + dt.timedelta(days=1) if upper and _utc(b).time() != dt.time() else d
        for op, b, upper in ((">=", lo, False), ("<", hi, True)):
            if b is not None:
                conds.append(f"{ts} {op} ?")
                value = as_date(b, upper)
                params.append(value.isoformat() if wh.dialect == "sqlite" else value)
        return conds, params, None
    if wh.dialect == "sqlite":  # ISO text: compare dates with a day to spare, then exactly
        if lo is not None:
            conds.append(f"{ts} >= ?")
            params.append((_utc(lo).date() - dt.timedelta(days=1)).isoformat())
        if hi is not None:
            conds.append(f"{ts} < ?")
            params.append((_utc(hi).date() + dt.timedelta(days=2)).isoformat())
        lo_s = pa.scalar(_utc(lo), pa.timestamp("us", "UTC")) if lo is not None else None
        hi_s = pa.scalar(_utc(hi), pa.timestamp("us", "UTC")) if hi is not None else None

        def exact(col):
            col = col if pa.types.is_timestamp(col.type) else parse_timestamps(
                col, pa.timestamp("us", "UTC"))
            if col.type.tz is None:
                col = col.cast(pa.timestamp(col.type.unit, "UTC"))
            keep = pa.scalar(True)
            if lo_s is not None:
                keep = pc.and_kleene(keep, pc.greater_equal(col, lo_s.cast(col.type)))
            if hi_s is not None:
                keep = pc.and_kleene(keep, pc.less(col, hi_s.cast(col.type)))
            return keep
        return conds, params, exact
    aware = pa.types.is_timestamp(ts_type) and ts_type.tz is not None
    for op, b in ((">=", lo), ("<", hi)):
        if b is None:
            continue
        instant = _utc(b)
        if aware and wh.dialect in ("postgresql", "duckdb"):
            conds.append(f"{ts} {op} CAST(? AS TIMESTAMPTZ)")
            params.append(instant.isoformat())  # '...+00:00': any session TimeZone
        else:  # naive columns hold UTC (MySQL sessions run in UTC)
            conds.append(f"{ts} {op} ?")
            params.append(instant.replace(tzinfo=None))
    return conds, params, None
