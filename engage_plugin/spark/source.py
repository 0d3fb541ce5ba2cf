"""Read a pipeline's source with Spark: Parquet files, a Delta table (when delta-spark is
installed) or a JDBC table / query, restricted to local days ``[start, end]`` with the
UTC-instant predicate :func:`engage_plugin.sources.local_bounds` gives (rows with a null
timestamp are always read, so that they are counted)."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse

import pyarrow as pa

from engage_core.errors import ConfigError, SchemaError
from engage_plugin import sources

PARQUET = (".parquet", ".pq", ".parq")


@dataclasses.dataclass
class SparkSource:
    frame: object            # pyspark DataFrame: the role columns (+ file/row columns)
    roles: dict              # role -> column
    schema: pa.Schema        # Arrow types of the role columns as the local engine reads them
    files: list | None       # local Parquet files in the local engine's read order
    where: str               # file:line: key, for messages


def _is_delta(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log"))


def _jdbc(uri: str) -> tuple[str, dict]:
    """A JDBC URL and properties from ``jdbc:...`` or ``postgresql://user:pw@host:port/db``."""
    if uri.startswith("jdbc:"):
        return uri, {}
    u = urllib.parse.urlsplit(uri)
    scheme = u.scheme.split("+")[0]
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"source.uri: engine spark reads a JDBC URL (jdbc:...) or a "
                          f"postgresql:// URL, found {u.scheme}://...")
    host = u.hostname or "localhost"
    port = f":{u.port}" if u.port else ""
    props = {"driver": "org.postgresql.Driver"}
    if u.username:
        props["user"] = urllib.parse.unquote(u.username)
    if u.password:
        props["password"] = urllib.parse.unquote(u.password)
    return f"jdbc:postgresql://{host}{port}{u.path}", props


def _arrow_schema(frame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema)


def read_frame(spark, config):
    """``(DataFrame of every source column, Arrow schema as read locally, files or None)``."""
    src = config.source
    if src.conn_id:
        raise ConfigError(f"{config.where('source', 'conn_id')}: engine spark reads "
                          "source.path (Parquet, Delta) or source.uri (JDBC); not conn_id")
    if src.path:
        where = config.where("source", "path")
        path = src.path
        if "://" not in path and _is_delta(path) or path.startswith(("delta:", )):
            try:
                import delta  # noqa: F401
            except ImportError:
                raise ConfigError(f"{where}: {path} is a Delta table; install delta-spark "
                                  "to read it with engine spark") from None
            frame = spark.read.format("delta").load(path.removeprefix("delta:"))
            return frame, _arrow_schema(frame), None
        if "://" in path and not path.startswith("file://"):
            if not path.lower().endswith(PARQUET) and "*" not in path:
                raise ConfigError(f"{where}: engine spark reads Parquet files, found {path}")
            frame = spark.read.parquet(path)
            return frame, _arrow_schema(frame), None
        files = sources._files(path, where)
        bad = [f for f in files if not f.lower().endswith(PARQUET)]
        if bad:
            raise ConfigError(f"{where}: engine spark reads Parquet files (or a Delta table), "
                              f"found {os.path.basename(bad[0])}")
        frame = spark.read.parquet(*[os.path.abspath(f) for f in files])
        return frame, sources.source_schema(config), [os.path.abspath(f) for f in files]
    where = config.where("source", "uri")
    if src.uri.startswith("duckdb:"):
        raise ConfigError(f"{where}: engine spark cannot read a DuckDB file; use source.path "
                          "(Parquet, Delta) or a JDBC source.uri")
    url, props = _jdbc(src.uri)
    reader = spark.read.format("jdbc").option("url", url)
    for k, v in props.items():
        reader = reader.option(k, v)
    reader = reader.option("dbtable", src.table) if src.table else reader.option("query", src.query)
    frame = reader.load()
    return frame, _arrow_schema(frame), None


def ts_micros(F, frame, ts: str):
    """The timestamp column as a number: UTC microseconds, or days for a date column."""
    kind = frame.schema[ts].dataType.typeName()
    if kind == "date":
        return F.unix_date(F.col(ts))
    if kind == "timestamp_ntz":  # a naive timestamp is a UTC instant; the session is UTC
        return F.unix_micros(F.col(ts).cast("timestamp"))
    return F.unix_micros(F.col(ts))


def day_predicate(F, frame, ts: str, timezone: str, start, end):
    """``ts IS NULL OR ts in the UTC instants of local days [start, end]`` (None: no filter)."""
    if start is None and end is None:
        return None
    kind = frame.schema[ts].dataType.typeName()
    col = F.col(ts)
    cond = F.lit(True)
    if kind == "date":
        if start:
            cond = cond & (col >= F.lit(start))
        if end:
            cond = cond & (col <= F.lit(end))
        return col.isNull() | cond
    lo, hi = sources.local_bounds(timezone, start, end)
    for op, bound in ((">=", lo), ("<", hi)):
        if bound is None:
            continue
        text = bound.strftime("%Y-%m-%d %H:%M:%S.%f")
        lit = (F.expr(f"TIMESTAMP_NTZ'{text}'") if kind == "timestamp_ntz"
               else F.expr(f"TIMESTAMP'{text}+00:00'"))
        cond = cond & ((col >= lit) if op == ">=" else (col < lit))
    return col.isNull() | cond


def check_types(config, schema: pa.Schema, roles: dict) -> None:
    t = schema.field(roles["timestamp"]).type
    if pa.types.is_timestamp(t) and t.unit == "ns":
        raise SchemaError(f"{config.path}: source: column `{roles['timestamp']}` (timestamp) has "
                          f"type {t}; engine spark reads timestamps of unit s, ms or us "
                          "(Spark has no nanosecond timestamps); use engine local")
    u = schema.field(roles["user_id"]).type
    if u == pa.uint64():
        raise SchemaError(f"{config.path}: source: column `{roles['user_id']}` (user_id) has "
                          "type uint64; engine spark reads signed integer or string ids")
