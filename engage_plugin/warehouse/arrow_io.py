"""Arrow on the way into and out of the warehouses: the plain types every dialect stores,
constant columns, DB-API rows to Arrow columns, and casting results back to the Arrow
schema a table was created from."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc

from engage_core.errors import RunError

_NAIVE_UTC = dt.timezone.utc


def plain_type(t: pa.DataType) -> pa.DataType:
    """The type a column is stored as: dictionaries decoded, small and unsigned integers
    widened to int32/int64, floats and decimals as float64, every string flavour as string,
    dates as date32, timestamps as naive UTC microseconds (what TIMESTAMP / DATETIME(6)
    hold)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return pa.int32() if t.bit_width < 32 or t == pa.int32() else pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us")
    return t


def plain_batch(batch: pa.RecordBatch, where: str) -> pa.RecordBatch:
    """``batch`` with every column as :func:`plain_type` (aware timestamps become naive
    UTC; sub-microsecond digits are dropped; a uint64 above 2**63-1 is an error)."""
    arrays, changed = [], False
    for name, col in zip(batch.schema.names, batch.columns):
        want = plain_type(col.type)
        if not col.type.equals(want):
            changed = True
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            if pa.types.is_timestamp(col.type):  # aware values are UTC: the zone goes
                col = col.cast(want, safe=False)
            else:
                try:
                    col = col.cast(want)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise RunError(f"{where}, column {name}: cannot store {col.type} as "
                                   f"{want}: {exc}") from None
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names) if changed else batch


def naive_utc(value):
    """A datetime as naive UTC (what the warehouse stores); other values unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_NAIVE_UTC).replace(tzinfo=None)
    return value


def with_constants(batch: pa.RecordBatch, constants: dict | None) -> pa.RecordBatch:
    """``batch`` with one constant column per ``constants`` item (datetimes as naive UTC
    microseconds, dates as date32)."""
    if not constants:
        return batch
    arrays, names = list(batch.columns), list(batch.schema.names)
    for name, value in constants.items():
        value = naive_utc(value)
        if isinstance(value, dt.datetime):
            scalar = pa.scalar(value, pa.timestamp("us"))
        elif isinstance(value, dt.date):
            scalar = pa.scalar(value, pa.date32())
        else:
            scalar = pa.scalar(value)
        arrays.append(pa.repeat(scalar, batch.num_rows) if value is not None
                      else pa.nulls(batch.num_rows))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def stored_schema(schema: pa.Schema, constants: dict | None, where: str) -> pa.Schema:
    """The schema :func:`plain_batch` of :func:`with_constants` gives for ``schema``."""
    empty = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
    return plain_batch(with_constants(empty, constants), where).schema


def column_from_values(values: list, target: pa.DataType | None) -> pa.Array:
    """Python values from a DB-API cursor as one Arrow array (of ``target`` if given)."""
    if target is not None and pa.types.is_null(target):
        return pa.nulls(len(values))
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed values (SQLite): as text
        arr = pa.array([None if v is None else v.decode("utf-8", "replace")
                        if isinstance(v, bytes) else str(v) for v in values])
    if target is None or arr.type.equals(target):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(values), target)
    if pa.types.is_boolean(target) and pa.types.is_integer(arr.type):
        return pc.not_equal(arr, 0)
    if pa.types.is_timestamp(target) and pa.types.is_string(arr.type):
        return parse_timestamps(arr, target)
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RunError(f"a value of type {arr.type} does not fit the column's type {target}: "
                       f"{exc}") from None


def rows_to_batch(rows: list, names: list[str], schema: pa.Schema | None) -> pa.RecordBatch:
    """DB-API rows as a record batch, column by column (types inferred when no schema)."""
    cols = list(zip(*rows)) if rows else [() for _ in names]
    if schema is None:
        return pa.RecordBatch.from_arrays([column_from_values(list(c), None) for c in cols],
                                          names=names)
    arrays = []
    for c, f in zip(cols, schema):
        try:
            arrays.append(column_from_values(list(c), f.type))
        except RunError as exc:
            raise RunError(f"column {f.name}: {exc}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")


def parse_timestamps(col, target: pa.DataType) -> pa.Array:
    """ISO-8601 text (``YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]``, optionally ending in ``Z`` or
    ``+HH:MM``, or a bare date = midnight) as ``target`` timestamps. Text without an
    offset is UTC."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    text = pc.utf8_trim_whitespace(col)
    bare_date = pc.equal(pc.utf8_length(text), 10)
    text = pc.if_else(bare_date, pc.binary_join_element_wise(text, "T00:00:00", ""), text)
    has_offset = pc.match_substring_regex(text, _OFFSET.pattern)
    text = pc.if_else(has_offset, text, pc.binary_join_element_wise(text, "Z", ""))
    try:
        out = text.cast(pa.timestamp("us", "UTC"))
    except pa.ArrowInvalid as exc:
        raise RunError(f"expected ISO-8601 timestamps (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]), "
                       f"{exc}") from None
    unit = target.unit if pa.types.is_timestamp(target) else "us"
    out = out.cast(pa.timestamp(unit, "UTC"))
    return out.cast(target) if target.tz else out.cast(pa.timestamp(unit))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns of ``schema``, in its order and cast to its types (texts that
    hold dates or timestamps, integers that hold booleans: what SQLite and MySQL return;
    naive UTC timestamps to the zone or unit asked for)."""
    cols = []
    for f in schema:
        col = table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        if not col.type.equals(f.type):
            if pa.types.is_null(col.type):
                col = pa.nulls(table.num_rows, f.type)
            elif pa.types.is_boolean(f.type) and pa.types.is_integer(col.type):
                col = pc.not_equal(col, 0)
            elif pa.types.is_timestamp(f.type) and pa.types.is_string(col.type):
                col = parse_timestamps(col, f.type)
            elif pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type):
                if col.type.tz is None and f.type.tz is not None:  # naive = UTC
                    col = col.cast(pa.timestamp(col.type.unit, "UTC"))
                col = col.cast(f.type, safe=False)
            else:
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise RunError(f"column {f.name}: the warehouse returned {col.type}, which "
                                   f"does not cast to {f.type}: {exc}") from None
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)
