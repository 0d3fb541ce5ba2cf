"""A pipeline source behind a warehouse URL: a table or a query, read as Arrow.

The day range arrives as UTC instants ``[lo, hi)`` (or dates for a date column) and is
pushed into the query as ``ts IS NULL OR (ts >= ? AND ts < ?)``, bound with the type the
column has: an aware instant for PostgreSQL ``timestamptz``, a naive UTC one for naive
timestamps (MySQL sessions run in UTC, so ``TIMESTAMP`` columns compare in UTC too), dates
for dates. SQLite keeps timestamps as ISO-8601 text: they are compared as text and parsed
into Arrow timestamps (naive text = UTC). ``sources.read_source`` filters the exact local
days afterwards, so a pushed-down bound only has to be wide enough.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from engage_core.errors import ConfigError
from engage_plugin.warehouse import open_warehouse


def _relation(wh, table: str | None, query: str | None) -> str:
    if table:
        return ".".join(wh.quote(p) for p in table.split("."))
    return f"({query}) AS engage_src"


def relation_schema(uri: str, table: str | None = None, query: str | None = None,
                    where: str = "source") -> pa.Schema:
    """The source's columns as Arrow types, reading no rows (MySQL: from the result's
    column types; SQLite, which has none: from the first row)."""
    wh = open_warehouse(uri, where=f"{where}.uri")
    rel = _relation(wh, table, query)
    try:
        with wh.session(read_only=True) as s:
            if wh.dialect == "mysql":
                cur = s.con.cursor()
                cur.execute(f"SELECT * FROM {rel} WHERE 1 = 0")
                schema = pa.schema([(d[0], _MYSQL_TYPES.get(d[1], pa.string()))
                                    for d in cur.description])
                cur.close()
            elif wh.dialect == "sqlite":  # no column types: infer them from a sample
                sample = _sqlite_types(s.read_sql(f"SELECT * FROM {rel} LIMIT 1000"))
                schema = pa.schema([(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                                    for f in sample.schema])
            else:
                schema = s.read_sql(f"SELECT * FROM {rel} WHERE 1 = 0").schema
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}: cannot read the source at {wh.display}: "
                          f"{type(exc).__name__}: {exc}") from None
    return schema


#: PyMySQL field type codes -> Arrow types (pymysql.constants.FIELD_TYPE)
_MYSQL_TYPES = {1: pa.int8(), 2: pa.int16(), 3: pa.int32(), 9: pa.int32(), 8: pa.int64(),
                4: pa.float32(), 5: pa.float64(), 246: pa.float64(), 0: pa.float64(),
                10: pa.date32(), 12: pa.timestamp("us"), 7: pa.timestamp("us"),
                253: pa.string(), 254: pa.string(), 252: pa.string(), 15: pa.string(),
                16: pa.int64()}


def _sqlite_types(table: pa.Table) -> pa.Table:
    """SQLite returns ISO-8601 text for dates and timestamps: make them Arrow types."""
    cols = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_string(col.type) and col.null_count < len(col):
            sample = pc.drop_null(col)[0].as_py()
            if _looks_like_date(sample):
                if len(sample) == 10:
                    col = col.cast(pa.date32())
                else:
                    col = pc.replace_substring(col, "T", " ").cast(pa.timestamp("us"))
        cols[name] = col
    return pa.table(cols)


def _looks_like_date(value: str) -> bool:
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-" or value[7:8] != "-":
        return False
    try:
        dt.datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def read_relation(uri: str, table: str | None, query: str | None, columns: Sequence[str],
                  ts_column: str, ts_type: pa.DataType, lo, hi,
                  where: str = "source", schema: pa.Schema | None = None) -> pa.Table:
    """The rows of ``columns`` whose ``ts_column`` is null or in ``[lo, hi)`` (None = open).

    ``lo``/``hi`` are timezone-aware UTC datetimes for timestamp columns, dates for date
    columns."""
    wh = open_warehouse(uri, where=f"{where}.uri")
    cols = ", ".join(wh.quote(c) for c in columns)
    ts = wh.quote(ts_column)
    conds, params = [], []
    for op, bound in ((">=", lo), ("<", hi)):
        if bound is None:
            continue
        conds.append(f"{ts} {op} ?")
        params.append(_bind(bound, ts_type, wh.dialect))
    sql = f"SELECT {cols} FROM {_relation(wh, table, query)}"
    if conds:
        sql += f" WHERE {ts} IS NULL OR ({' AND '.join(conds)})"
    with wh.session(read_only=True) as s:
        out = s.read_batches(sql, params).read_all()
    if wh.dialect == "sqlite":
        out = _sqlite_types(out)
    if schema is not None:  # the probed types, also for columns a batch had only NULLs in
        out = pa.table({n: c if c.type.equals(schema.field(n).type) else
                        (pa.nulls(len(c), schema.field(n).type) if pa.types.is_null(c.type)
                         else c.cast(schema.field(n).type))
                        for n, c in zip(out.column_names, out.columns)})
    return out


def _bind(bound, ts_type: pa.DataType, dialect: str):
    if isinstance(bound, dt.datetime):
        if pa.types.is_timestamp(ts_type) and ts_type.tz and dialect == "postgresql":
            return bound
        naive = bound.astimezone(dt.timezone.utc).replace(tzinfo=None) if bound.tzinfo else bound
        return naive.isoformat(sep=" ") if dialect == "sqlite" else naive
    if dialect == "sqlite":
        return bound.isoformat()
    return bound
