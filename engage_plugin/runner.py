"""Run a pipeline: read the run's days from the source, update the events store, compute
the metrics with engage_core, load the target: all in one locked transaction.

Semantics (docs/pipeline.md, METRICS.md section 5): the tables hold what one full run over
the loaded events computes. A run over local days ``[start, end]`` reads only those days
from the source (:mod:`engage_plugin.store` says which, and why), replaces them in
``{prefix}state_events``, computes every enabled metric over the store's events with
``end_day`` = the loaded range's end and replaces every metric table's rows.
``full_refresh`` forgets the store and the loaded range and reads ``[start, end]`` (every
day of the source when open) again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
import uuid
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

import engage_core as ec
from engage_core.errors import EngageError, RunError
from engage_plugin.compute import (compute_metrics, prepare, rejected_counts,
                                   rejected_rows)
from engage_plugin.config import PipelineConfig, check_available
from engage_plugin import store, targets
from engage_plugin.store import _hi, _lo
from engage_plugin.sources import check_schema, read_source, source_schema


@dataclasses.dataclass
class RunReport:
    run_id: str
    pipeline: str
    start_day: str | None = None
    end_day: str | None = None
    requested_start: str | None = None
    requested_end: str | None = None
    full_refresh: bool = False
    read_start: str | None = None
    read_end: str | None = None
    store_rebuilt: str | None = None
    rows_read: int = 0
    store_rows: int = 0
    rows_skipped_null_user: int = 0
    rows_skipped_null_timestamp: int = 0
    rows_rejected: dict = dataclasses.field(default_factory=dict)
    rows_written: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def rows_skipped(self) -> int:
        return self.rows_skipped_null_user + self.rows_skipped_null_timestamp

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rows_skipped"] = self.rows_skipped
        out["total_seconds"] = round(sum(self.seconds.values()), 6)
        return out


class _Progress:
    """One-line step indicator on a terminal (stderr); silent otherwise."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.callback = progress
        self.tty = progress is None and sys.stderr.isatty()

    def step(self, text: str) -> None:
        if self.callback is not None:
            self.callback(text)
        elif self.tty:
            sys.stderr.write(f"\r\x1b[K[engage] {text} ...")
            sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if hasattr(value, "date") and callable(value.date):  # pendulum and the like
        return value.date()
    return dt.date.fromisoformat(str(value))


def _store_config(config: PipelineConfig) -> PipelineConfig:
    """The config whose metrics decide the store's columns: the whole file's, also when
    ``config`` computes only some of them (Airflow's per-family tasks share one store)."""
    if config.store_metrics:
        return dataclasses.replace(config, metrics=config.store_metrics, store_metrics=None)
    return config


def _logical_schema(config: PipelineConfig):
    """The store's logical columns for this pipeline and ``role -> column``: a wrong source
    schema fails here, before anything is written."""
    full = _store_config(config)
    schema = source_schema(full)
    check_schema(config, schema)
    roles = check_schema(full, schema)
    return store.normalize(schema.empty_table(), roles).schema, roles


def plan_run(config: PipelineConfig, start=None, end=None,
             full_refresh: bool = False) -> store.Plan:
    """What a run over ``[start, end]`` would read and replace, read from the target
    without writing anything."""
    logical, _ = _logical_schema(config)
    with targets.open_target(config).session(read_only=True) as s:
        state = targets.read_state(s, config.target.table_prefix)
    return store.plan(state, logical, config.timezone, _date(start), _date(end), full_refresh)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def run_pipeline(config: PipelineConfig, *, start=None, end=None, full_refresh: bool = False,
                 progress: Callable[[str], None] | None = None,
                 lock_timeout: float = 3600.0) -> RunReport:
    """Run ``config`` over local days ``[start, end]`` (see the module docstring).

    Two runs of the same target and prefix serialize on a lock (the second waits up to
    ``lock_timeout`` seconds). Raises ConfigError/SchemaError (nothing written) or
    RunError (every table as it was before the run; a ``failed`` runs row is recorded)."""
    start, end = _date(start), _date(end)
    now = _utcnow()
    report = RunReport(run_id=f"{config.pipeline}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
                       pipeline=config.pipeline, full_refresh=full_refresh,
                       requested_start=start and start.isoformat(),
                       requested_end=end and end.isoformat(), started_at=now.isoformat())
    check_available(config)
    if start and end and start > end:
        raise ec.ConfigError(f"--start {start} is after --end {end}")
    logical, roles = _logical_schema(config)
    wh = targets.open_target(config)
    bar = _Progress(progress)

    class _Timer:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            bar.step(self.name)
            self.t0 = time.perf_counter()

        def __exit__(self, *exc):
            report.seconds[self.name] = round(time.perf_counter() - self.t0, 6)

    def run_row(status: str) -> dict:
        return {"run_id": report.run_id, "start_day": _date(report.start_day),
                "end_day": _date(report.end_day), "status": status, "started_at": now,
                "finished_at": _utcnow(), "report": report.to_dict()}

    try:
        with wh.session(lock=targets.lock_name(config), lock_timeout=lock_timeout) as s:
            _run_locked(config, s, report, logical, roles, start, end, full_refresh, _Timer,
                        wh.display, run_row)
    except BaseException as exc:
        bar.done()
        report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
        targets.record_failed_run(config, run_row("failed"))
        if isinstance(exc, EngageError) or not isinstance(exc, Exception):
            raise
        raise RunError(f"running {config.pipeline} failed: {type(exc).__name__}: {exc}") from exc
    bar.done()
    return report


def _spark_compute(config, s, report: RunReport, start, end, full_refresh: bool, timer):
    """``engine: spark``: Spark reads the source over the loaded range extended to the
    request (no events store: the cluster reads its own copy of the events), and the
    driver combines the shards' exact partials (engage_plugin.spark)."""
    from engage_plugin.spark.engine import compute_on_spark

    prefix = config.target.table_prefix
    state = {} if full_refresh else targets.read_state(s, prefix)
    prev_start, prev_end = _date(state.get(store.K_START)), _date(state.get(store.K_END))
    read_start = None if start is None else _lo(start, prev_start)
    read_end = None if end is None else _hi(end, prev_end)
    report.read_start = read_start and read_start.isoformat()
    report.read_end = read_end and read_end.isoformat()
    res = compute_on_spark(config, read_start, read_end, end_day=read_end, timer=timer)
    report.rows_read = report.store_rows = res.rows_read
    report.rows_skipped_null_user = res.rows_skipped_null_user
    report.rows_skipped_null_timestamp = res.rows_skipped_null_timestamp
    hull = (read_start if read_start is not None else _lo(res.first_day, prev_start),
            read_end if read_end is not None else _hi(res.last_day, prev_end))
    report.rows_rejected = rejected_counts(res.rejected)
    # the loaded range only: without the store keys, a later local run rebuilds the store
    rows = [{"key": k, "value": d.isoformat()}
            for k, d in ((store.K_START, hull[0]), (store.K_END, hull[1])) if d]
    state_rows = pa.Table.from_pylist(rows, schema=store.STATE_SCHEMA)
    return res.tables, res.rejected_rows(report.run_id), hull, state_rows


def _local_compute(config, s, report: RunReport, logical, roles, start, end,
                   full_refresh: bool, timer):
    """The events store path: read the planned days, merge them with the stored days the run
    keeps, compute. Returns what the load writes."""
    prefix = config.target.table_prefix
    ts = roles["timestamp"]
    p = store.plan(targets.read_state(s, prefix), logical, config.timezone, start, end,
                   full_refresh)
    report.read_start = p.read_start and p.read_start.isoformat()
    report.read_end = p.read_end and p.read_end.isoformat()
    report.store_rebuilt = p.reason or None
    with timer("read"):
        table, _ = read_source(_store_config(config), p.read_start, p.read_end)
        new = store.new_rows(table, roles, ec.Calendar(timezone=config.timezone,
                                                       week_start=config.week_start))
        del table
        store.check_days(new, p, ts)
    report.rows_read = new.rows_read
    report.rows_skipped_null_user = new.skipped_null_user
    report.rows_skipped_null_timestamp = new.skipped_null_timestamp
    pschema = store.physical_schema(logical, ts)
    with timer("read_store"):
        if not p.rebuild and s.table_exists(prefix + store.STORE):
            old = store.kept_old(s.read(prefix + store.STORE, schema=pschema), p)
        else:
            old = pschema.empty_table()
        events = pa.concat_tables([store.from_physical(old, logical), new.logical])
    report.store_rows = events.num_rows
    days = pa.concat_arrays([old[store.DAY].combine_chunks(),
                             new.physical[store.DAY].combine_chunks()])
    hull = p.hull(pa.compute.min(new.physical[store.DAY]).as_py() if new.physical.num_rows else None,
                  pa.compute.max(new.physical[store.DAY]).as_py() if new.physical.num_rows else None)
    if len(days):  # the stored days too, for runs that read nothing
        hull = (_lo(hull[0], pa.compute.min(days).as_py()), _hi(hull[1], pa.compute.max(days).as_py()))
    with timer("prepare"):
        ev = prepare(config, events, roles)
    rejected: list = []
    tables = compute_metrics(config, ev, hull[1], timer, rejected=rejected)
    # rows of older days were reported by the runs that read them
    rejected = [part.filter(pa.compute.greater_equal(part["row"], old.num_rows))
                for part in rejected]
    report.rows_rejected = rejected_counts(rejected)
    rejected_table = rejected_rows(rejected, events, report.run_id)

    def write_store() -> None:
        if p.rebuild:
            s.delete(prefix + store.STORE)
        elif p.prev_start or p.prev_end:
            s.delete(prefix + store.STORE, between=(
                store.DAY, p.read_start or p.prev_start, p.read_end or p.prev_end))
        s.insert(prefix + store.STORE, new.physical)

    return (tables, rejected_table, hull, store.state_rows(p, hull, logical, config.timezone),
            pschema, write_store)


def _run_locked(config, s, report: RunReport, logical: pa.Schema, roles: dict, start, end,
                full_refresh: bool, timer, display: str, run_row) -> None:
    prefix = config.target.table_prefix
    try:
        if config.engine == "spark":
            tables, rejected_table, hull, state_rows = _spark_compute(
                config, s, report, start, end, full_refresh, timer)
            pschema = store.physical_schema(logical, roles["timestamp"])

            def write_store() -> None:  # no store on Spark: empty it, the state says so
                if s.table_exists(prefix + store.STORE):
                    s.delete(prefix + store.STORE)
        else:
            tables, rejected_table, hull, state_rows, pschema, write_store = \
                _local_compute(config, s, report, logical, roles, start, end, full_refresh, timer)
    except EngageError:
        raise
    except Exception as exc:
        raise RunError(f"computing {config.pipeline} failed: {type(exc).__name__}: {exc}") \
            from exc
    report.start_day = hull[0] and hull[0].isoformat()
    report.end_day = hull[1] and hull[1].isoformat()
    report.status = "success"
    try:
        with timer("load"):
            computed_at = _utcnow()
            report.finished_at = computed_at.isoformat()
            report.rows_written = {prefix + t: a.num_rows for t, a in tables.items()}
            # DDL first (MySQL/MariaDB commit it on their own), then every row change
            targets.ensure_tables(s, prefix, tables, pschema)
            write_store()
            written = {}
            for t, arrow in tables.items():
                written[prefix + t] = targets.insert_table(s, prefix + t, arrow, computed_at)
            s.delete(prefix + store.STATE)
            s.insert(prefix + store.STATE, state_rows)
            if rejected_table is not None:
                s.insert(prefix + targets.REJECTED, rejected_table)
            targets.write_run(s, prefix, run_row("success"))
            report.rows_written = written
    except EngageError:
        report.status = "failed"
        raise
    except Exception as exc:
        report.status = "failed"
        raise RunError(f"load into {display} failed, every table left as it was: "
                       f"{type(exc).__name__}: {exc}") from exc
