"""Read a pipeline's source as Arrow: Parquet/CSV files, or a table/query behind a
warehouse URL (DuckDB here; PostgreSQL, MySQL/MariaDB and SQLite in
:mod:`engage_plugin.warehouse.source`).

Only the role columns and the breakdown columns the metrics use are read. Rows are
restricted to local days ``[start, end]`` with a UTC-instant predicate computed from the
zone's local midnights, pushed down into the dataset scan / the DuckDB query; rows with a
null timestamp are always read so that the run report counts them.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import zoneinfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from engage_core.errors import ConfigError, RunError, SchemaError
from engage_plugin.config import PipelineConfig, iter_metrics

USER_TYPES = "an integer or string type (also dictionary-encoded)"
TS_TYPES = "a timestamp (any unit, with or without a time zone) or a date"
TEXT_TYPES = "a string type (also dictionary-encoded)"

EVENT_FILTERS = ("events", "start_events", "return_events")


#: metric families that always read event names
EVENT_FAMILIES = ("funnels", "conversions", "commerce", "cohort_revenue", "survey")


def needs_event(config: PipelineConfig) -> bool:
    """Whether some metric filters by event name (so the event column is required)."""
    if any(f in config.metrics for f in EVENT_FAMILIES):
        return True
    if any(getattr(m, "weights", None) for _, _, m in iter_metrics(config)):
        return True
    for _, _, m in iter_metrics(config):
        if any(getattr(m, k, None) for k in EVENT_FILTERS):
            return True
    return False


def role_columns(config: PipelineConfig, schema: pa.Schema | None = None) -> dict[str, str]:
    """``role -> column`` for what the metrics need (``breakdown:<col>`` for breakdowns).

    The event column is taken when a metric filters by event, or when it exists."""
    cols = config.source.columns
    out = {"user_id": cols.user_id, "timestamp": cols.timestamp}
    if cols.event and (needs_event(config) or schema is None
                       or cols.event in schema.names):
        out["event"] = cols.event
    for b in config.breakdowns():
        out[f"breakdown:{b}"] = b
    from engage_plugin.compute import numeric_roles

    out.update(numeric_roles(config))
    return out


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def check_schema(config: PipelineConfig, schema: pa.Schema) -> dict[str, str]:
    """Raise :class:`SchemaError` naming the column, the type found and the types accepted."""
    roles = role_columns(config, schema)
    for role, col in roles.items():
        label = role.replace("breakdown:", "breakdown ")
        if col not in schema.names:
            raise SchemaError(f"{config.path}: source: column `{col}` ({label}) not found; "
                              f"the source has: {', '.join(schema.names)}")
        t = schema.field(col).type
        base = t.value_type if pa.types.is_dictionary(t) else t
        if role == "user_id":
            ok, accepted = pa.types.is_integer(base) or _is_text(t), USER_TYPES
        elif role == "timestamp":
            ok, accepted = pa.types.is_timestamp(t) or pa.types.is_date(t), TS_TYPES
        elif role == "event":
            ok, accepted = _is_text(t), TEXT_TYPES
        elif role in ("revenue", "score"):
            ok = pa.types.is_integer(base) or pa.types.is_floating(base) or pa.types.is_decimal(base)
            accepted = "any integer, floating-point or decimal type"
        else:
            ok = _is_text(t) or pa.types.is_integer(base) or pa.types.is_boolean(base)
            accepted = "string-like, integer or boolean"
        if not ok:
            raise SchemaError(f"{config.path}: source: column `{col}` ({label}) has type {t}; "
                              f"accepted: {accepted}")
    return roles


def local_bounds(timezone: str, start: dt.date | None, end: dt.date | None):
    """UTC instants ``[lo, hi)`` of local days ``[start, end]`` (None = open)."""
    zone = zoneinfo.ZoneInfo(timezone)

    def midnight(day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        return local.astimezone(dt.timezone.utc)

    lo = midnight(start) if start else None
    hi = midnight(end + dt.timedelta(days=1)) if end else None
    return lo, hi


def _files(path: str, where: str) -> list[str]:
    if any(ch in path for ch in "*?["):
        files = sorted(glob.glob(path, recursive=True))
    elif os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                       if os.path.isfile(f) and not os.path.basename(f).startswith(("_", ".")))
    else:
        files = [path] if os.path.exists(path) else []
    if not files:
        raise ConfigError(f"{where}: expected Parquet or CSV files, found no file matching "
                          f"{path}")
    return files


def _dataset(config: PipelineConfig) -> ds.Dataset:
    path = config.source.path
    where = config.where("source", "path")
    files = _files(path, where)
    names = [f.lower() for f in files]
    if all(n.endswith((".csv", ".csv.gz")) for n in names):
        fmt = ds.CsvFileFormat(convert_options=pacsv.ConvertOptions(
            timestamp_parsers=[pacsv.ISO8601], strings_can_be_null=True))
    elif all(n.endswith((".parquet", ".pq", ".parq")) for n in names):
        fmt = "parquet"
    else:
        exts = sorted({os.path.splitext(n)[1] or n for n in names})
        raise ConfigError(f"{where}: expected Parquet or CSV files (one format), found {exts}")
    return ds.dataset(files, format=fmt)


def _is_duckdb(config: PipelineConfig) -> bool:
    if config.source.conn_id and not config.source.uri:
        raise ConfigError(f"{config.where('source', 'conn_id')}: conn_id needs Airflow; "
                          "the engage command takes source.uri or source.path")
    from engage_plugin.warehouse import parse_url

    return parse_url(config.source.uri, config.where("source", "uri"))[0] == "duckdb"


def _duckdb_path(uri: str) -> str:
    rest = uri[len("duckdb:///"):] if uri.startswith("duckdb:///") else uri[len("duckdb://"):]
    return rest or ":memory:"


def _quote(name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in name.split("."))


def _relation_sql(config: PipelineConfig) -> str:
    src = config.source
    return _quote(src.table) if src.table else f"({src.query})"


def _connect(config: PipelineConfig):
    import duckdb

    if config.source.conn_id:
        raise ConfigError(f"{config.where('source', 'conn_id')}: conn_id needs Airflow; "
                          "the engage command takes source.uri or source.path")
    path = _duckdb_path(config.source.uri)
    if path != ":memory:" and not os.path.exists(path):
        raise ConfigError(f"{config.where('source', 'uri')}: DuckDB file {path} not found")
    return duckdb.connect(path, read_only=path != ":memory:")


def arrow_stream(con, sql: str, params=None) -> pa.RecordBatchReader:
    """A DuckDB query as an Arrow record-batch stream (no extra copy of the rows)."""
    rel = con.sql(sql, params=params or None)
    for name in ("to_arrow_reader", "fetch_arrow_reader", "record_batch"):
        method = getattr(rel, name, None)
        if method is not None:
            return method()
    raise RunError("this DuckDB has no Arrow output")


def source_schema(config: PipelineConfig) -> pa.Schema:
    """The source's Arrow schema, reading no rows."""
    if config.source.path:
        return _dataset(config).schema
    if not _is_duckdb(config):
        from engage_plugin.warehouse.source import relation_schema

        return relation_schema(config.source.uri, config.source.table, config.source.query,
                               where=config.where("source"))
    con = _connect(config)
    try:
        return arrow_stream(con, f"SELECT * FROM {_relation_sql(config)} AS s LIMIT 0").schema
    except Exception as exc:  # duckdb errors: unknown table, bad query
        raise ConfigError(f"{config.where('source')}: cannot read the source: {exc}") from None
    finally:
        con.close()


def _exact_days(table: pa.Table, ts: str, timezone: str, start, end) -> pa.Table:
    """Keep rows whose local day is in [start, end] (and null timestamps)."""
    col = table[ts]
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        days = pc.cast(pc.local_timestamp(pc.cast(col, pa.timestamp(col.type.unit, timezone))),
                       pa.date32())
    else:
        days = pc.cast(col, pa.date32())
    keep = pa.scalar(True)
    if start:
        keep = pc.and_kleene(keep, pc.greater_equal(days, pa.scalar(start, pa.date32())))
    if end:
        keep = pc.and_kleene(keep, pc.less_equal(days, pa.scalar(end, pa.date32())))
    keep = pc.or_kleene(pc.is_null(days), keep)
    return table.filter(keep)


def read_source(config: PipelineConfig, start: dt.date | None = None,
                end: dt.date | None = None) -> tuple[pa.Table, dict[str, str]]:
    """The source rows of local days ``[start, end]`` and the ``role -> column`` map."""
    schema = source_schema(config)
    roles = check_schema(config, schema)
    columns = list(dict.fromkeys(roles.values()))
    ts = roles["timestamp"]
    ts_type = schema.field(ts).type
    lo, hi = local_bounds(config.timezone, start, end)
    # widen by a day on each side for the pushed-down predicate, then filter exactly
    pad = dt.timedelta(days=1)
    if pa.types.is_timestamp(ts_type):
        conv = (lambda x: x) if ts_type.tz else (lambda x: x.replace(tzinfo=None))
        lo_v = conv(lo - pad) if lo else None
        hi_v = conv(hi + pad) if hi else None
    else:
        lo_v = start - pad if start else None
        hi_v = end + pad + pad if end else None
    if config.source.path:
        dataset = _dataset(config)
        flt = None
        if lo_v is not None or hi_v is not None:
            cond = None
            for op, v in ((">=", lo_v), ("<", hi_v)):
                if v is None:
                    continue
                scalar = pa.scalar(v, type=ts_type if pa.types.is_timestamp(ts_type) else None)
                c = ds.field(ts) >= scalar if op == ">=" else ds.field(ts) < scalar
                cond = c if cond is None else cond & c
            flt = ds.field(ts).is_null() | cond
        table = dataset.to_table(columns=columns, filter=flt)
    elif not _is_duckdb(config):
        from engage_plugin.warehouse.source import read_relation

        table = read_relation(config.source.uri, config.source.table, config.source.query,
                              columns, ts, ts_type, lo_v, hi_v, where=config.where("source"),
                              schema=schema)
    else:
        con = _connect(config)
        try:
            where, params = [], []
            if lo_v is not None:
                where.append(f"{_quote(ts)} >= ?")
                params.append(lo_v)
            if hi_v is not None:
                where.append(f"{_quote(ts)} < ?")
                params.append(hi_v)
            sql = (f"SELECT {', '.join(_quote(c) for c in columns)} "
                   f"FROM {_relation_sql(config)} AS s")
            if where:
                sql += f" WHERE {_quote(ts)} IS NULL OR ({' AND '.join(where)})"
            reader = arrow_stream(con, sql, params)
            table = reader.read_all()
        finally:
            con.close()
    if start or end:
        table = _exact_days(table, ts, config.timezone, start, end)
    return table, roles
