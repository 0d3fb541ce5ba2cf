"""``engine: spark``: the metrics of a pipeline computed on Apache Spark, equal to what the
local engine computes (docs/spark.md).

1. Spark reads the source's rows of local days ``[start, end]`` and one aggregate gives the
   run report's counts and the log's first and last day (the global day axis).
2. The rows with a user and a timestamp are repartitioned by a hash of the user id into N
   shards; each shard (``mapInArrow``) runs the compiled kernels over its users' events on
   the global axis and returns partial tables (:mod:`engage_plugin.spark.partials`).
3. The driver combines the partials exactly (:mod:`engage_plugin.spark.combine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import sys
import urllib.parse

import pyarrow as pa

import engage_core as ec
from engage_core.errors import ConfigError
from engage_plugin import compute
from engage_plugin.sources import check_schema
from engage_plugin.spark import source as sp_source
from engage_plugin.spark.assemble import assemble
from engage_plugin.spark.partials import shard_partials

REJECTING = ("commerce", "cohort_revenue", "survey")
PACK = 1 << 40  # file index * PACK + row index in the file, while the position is unknown


@dataclasses.dataclass
class SparkResult:
    """What :func:`compute_on_spark` returns; the counts and days mean what they mean on
    :class:`engage_core.Events`. ``rejected`` holds the tables ``(metric, reason, row)`` that
    ``compute_metrics`` appends (``row``: the row's position in what
    ``sources.read_source`` returns, for Parquet path sources; -1 otherwise), each with a
    fourth column ``row_json`` (the row as ``compute.rejected_rows`` writes it)."""

    tables: dict
    rows_read: int
    rows_skipped_null_user: int
    rows_skipped_null_timestamp: int
    first_day: dt.date | None
    last_day: dt.date | None
    rejected: list
    shards: int = 0

    def rejected_rows(self, run_id: str) -> pa.Table | None:
        """``{prefix}rejected_rows`` rows ``(run_id, metric, reason, row_json)``."""
        parts = [p for p in self.rejected if p.num_rows]
        if not parts:
            return None
        t = pa.concat_tables(parts)
        return pa.table({"run_id": pa.array([run_id] * t.num_rows, pa.string()),
                         "metric": t["metric"], "reason": t["reason"],
                         "row_json": t["row_json"]})


def spark_session(master: str | None = None):
    """The active SparkSession (spark-submit's), or a new local one."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("engage")
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


@contextlib.contextmanager
def _utc_session(spark):
    old = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The shard's columns with the types the local engine reads (Spark hands strings as
    large_string, timestamps in the session's zone, dictionaries decoded)."""
    cols = []
    for name in table.column_names:
        col, want = table[name], schema.field(name).type
        if col.type != want:
            if pa.types.is_timestamp(want) and pa.types.is_timestamp(col.type):
                us = col.cast(pa.timestamp("us", col.type.tz)).cast(pa.int64())
                scale = {"s": 1_000_000, "ms": 1000, "us": 1}[want.unit]
                col = pa.compute.divide(us, scale).cast(pa.int64()).cast(
                    pa.timestamp(want.unit, want.tz)) if scale > 1 else us.cast(want)
            else:
                col = col.cast(want)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _run_shard(batches, *, config, roles, schema, axis, end_day, with_pos):
    """The ``mapInArrow`` function: one shard's rows in, ``(name, shard, Arrow IPC)`` out."""
    import pyarrow.compute  # noqa: F401
    from pyspark import TaskContext

    ctx = TaskContext.get()
    shard = ctx.partitionId() if ctx else 0
    if ctx is not None:  # the kernels use the task's cores, not the whole machine's
        os.environ["ENGAGE_THREADS"] = str(max(1, int(ctx.cpus())))
    batches = [b for b in batches if b.num_rows]
    if not batches:
        return
    t = pa.Table.from_batches(batches)
    pos = t["__pos"] if with_pos else None
    t = _cast(t.select(list(schema.names)), schema)
    parts = shard_partials(config, t, roles, axis, end_day)
    rej = parts.get("rejected")
    if rej is not None:
        rows = rej["row"]
        source_rows = t.take(rows).to_pylist()
        parts["rejected"] = pa.table({
            "metric": rej["metric"], "reason": rej["reason"],
            "row": pos.take(rows) if pos is not None else pa.array([-1] * rej.num_rows, pa.int64()),
            "row_json": pa.array([json.dumps(r, default=str, sort_keys=True) for r in source_rows],
                                 pa.string())})
    names, datas = [], []
    for name, part in parts.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.schema) as w:
            w.write_table(part)
        names.append(name)
        datas.append(sink.getvalue().to_pybytes())
    yield pa.RecordBatch.from_pydict(
        {"name": pa.array(names, pa.large_string()),
         "shard": pa.array([shard] * len(names), pa.int32()),
         "data": pa.array(datas, pa.large_binary())})


def _file_paths(uri: str) -> str:
    return os.path.abspath(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))


def _stats(F, frame, user: str, ts: str, by_file: bool):
    kept = F.col(user).isNotNull() & F.col(ts).isNotNull()
    num = sp_source.ts_micros(F, frame, ts)
    aggs = [F.count(F.lit(1)).alias("rows"),
            F.sum(F.col(user).isNull().cast("long")).alias("null_user"),
            F.sum((F.col(user).isNotNull() & F.col(ts).isNull()).cast("long")).alias("null_ts"),
            F.min(F.when(kept, num)).alias("lo"), F.max(F.when(kept, num)).alias("hi")]
    rows = (frame.groupBy("__file").agg(*aggs) if by_file else frame.agg(*aggs)).collect()
    per_file = {r["__file"]: r["rows"] for r in rows} if by_file else {}
    total = {k: sum(r[k] or 0 for r in rows) for k in ("rows", "null_user", "null_ts")}
    los = [r["lo"] for r in rows if r["lo"] is not None]
    his = [r["hi"] for r in rows if r["hi"] is not None]
    return total, (min(los) if los else None), (max(his) if his else None), per_file


def _day(value, is_date: bool, calendar) -> dt.date | None:
    if value is None:
        return None
    if is_date:
        return dt.date(1970, 1, 1) + dt.timedelta(days=int(value))
    arr = pa.array([int(value)], pa.timestamp("us", "UTC"))
    return ec.local_days(arr, calendar)[0].as_py()


def _positions(spark, F, frame, rejected: list, uris: list, offsets: list) -> list:
    """Replace packed (file, row index) keys by positions in the local engine's read: the
    run's rows of earlier files plus the run's rows of the same file before this one."""
    keys = sorted({int(k) for p in rejected for k in p["row"].to_pylist()})
    if not keys:
        return rejected
    probe = spark.createDataFrame([(uris[k // PACK], k % PACK, k) for k in keys],
                                  "rfile string, rrow long, key long")
    counts = dict(frame.select("__file", "__ri")
                  .join(F.broadcast(probe), F.col("__file") == F.col("rfile"))
                  .where(F.col("__ri") < F.col("rrow")).groupBy("key").count().collect())
    pos = {k: offsets[k // PACK] + counts.get(k, 0) for k in keys}
    out = []
    for p in rejected:
        rows = pa.array([pos[int(k)] for k in p["row"].to_pylist()], pa.int64())
        out.append(p.set_column(p.column_names.index("row"), "row", rows))
    return out


def compute_on_spark(config, start: dt.date | None, end: dt.date | None, *,
                     end_day: dt.date | None, shards: int | None = None, spark=None,
                     timer=None, rejected: list | None = None) -> SparkResult:
    """The tables of every enabled metric over the source's local days ``[start, end]``,
    computed on Spark; equal to ``compute_metrics(config, prepare(config, *read_source(config,
    start, end)), end_day)`` (rows sorted by primary key). ``rejected`` (a list) gets the
    rejected-row tables too."""
    from pyspark.sql import functions as F

    step = timer if timer is not None else (lambda name: contextlib.nullcontext())
    spark = spark or spark_session()
    calendar = ec.Calendar(timezone=config.timezone, week_start=config.week_start)
    with _utc_session(spark):
        with step("spark_read"):
            frame, schema, files = sp_source.read_frame(spark, config)
            roles = check_schema(config, schema)
            sp_source.check_types(config, schema, roles)
            cols = list(dict.fromkeys(roles.values()))
            user, ts = roles["user_id"], roles["timestamp"]
            with_pos = bool(files) and any(f in config.metrics for f in REJECTING)
            if with_pos:
                frame = frame.select(*cols, F.col("_metadata.file_path").alias("__file"),
                                     F.col("_metadata.row_index").alias("__ri"))
            else:
                frame = frame.select(*cols)
            pred = sp_source.day_predicate(F, frame, ts, config.timezone, start, end)
            if pred is not None:
                frame = frame.where(pred)
            is_date = frame.schema[ts].dataType.typeName() == "date"
            total, lo, hi, per_file = _stats(F, frame, user, ts, with_pos)
        first_day, last_day = _day(lo, is_date, calendar), _day(hi, is_date, calendar)
        if end_day is not None and last_day is not None and \
                ec.calendar.date_to_day(end_day) < ec.calendar.date_to_day(last_day):
            raise ValueError(f"end_day: {end_day} is before the last day of data, {last_day}")
        axis_end = end_day if end_day is not None else last_day
        n = int(shards or os.environ.get("ENGAGE_SPARK_SHARDS") or
                spark.sparkContext.defaultParallelism)
        if n < 1:
            raise ConfigError(f"shards: expected a positive number of shards, found {n}")
        offsets, uris = [], []
        if with_pos:  # each row's position in the local engine's read (files in its order)
            index = {f: i for i, f in enumerate(files)}
            uris = [None] * len(files)
            counts = [0] * len(files)
            for uri, count in per_file.items():
                uris[index[_file_paths(uri)]] = uri
                counts[index[_file_paths(uri)]] = count
            offsets = [sum(counts[:i]) for i in range(len(files))]
            base = offsets if pred is None else [i * PACK for i in range(len(files))]
            mapping = F.create_map(*[x for u, b in zip(uris, base) if u is not None
                                     for x in (F.lit(u), F.lit(b))])
            frame = frame.withColumn("__pos", mapping[F.col("__file")] + F.col("__ri"))
        parts: dict = {}
        if first_day is not None:
            with step("spark_shards"):
                kept = frame.where(F.col(user).isNotNull() & F.col(ts).isNotNull())
                kept = kept.select(*cols, *(["__pos"] if with_pos else []))
                run = functools.partial(_run_shard, config=config, roles=roles,
                                        schema=pa.schema([schema.field(c) for c in cols]),
                                        axis=first_day, end_day=axis_end, with_pos=with_pos)
                out = kept.repartition(n, F.col(user)).mapInArrow(
                    run, "name string, shard int, data binary").toArrow()
            for name, data in zip(out["name"].to_pylist(), out["data"].to_pylist()):
                parts.setdefault(name, []).append(pa.ipc.open_stream(data).read_all())
        with step("combine"):
            if first_day is None:  # no row with a user and a timestamp: the engine's empty tables
                empty = pa.schema([schema.field(c) for c in cols]).empty_table()
                ev = compute.prepare(config, empty, roles)
                tables = compute.compute_metrics(config, ev, end_day, step)
                rej = []
            else:
                tables = assemble(config, parts)
                rej = parts.get("rejected", [])
                if rej:
                    rej = _by_metric(pa.concat_tables(rej))
                    if with_pos and pred is not None:
                        rej = _positions(spark, F, frame, rej, uris, offsets)
    if rejected is not None:
        rejected.extend(rej)
    return SparkResult(tables=tables, rows_read=total["rows"],
                       rows_skipped_null_user=total["null_user"],
                       rows_skipped_null_timestamp=total["null_ts"], first_day=first_day,
                       last_day=last_day, rejected=rej, shards=n)


def _by_metric(t: pa.Table) -> list:
    """One table per metric, in the order compute_metrics reports them, rows by position."""
    out = []
    for metric in REJECTING:
        part = t.filter(pa.compute.equal(t["metric"], metric))
        if part.num_rows:
            out.append(part.sort_by([("row", "ascending")]))
    return out
