"""The work behind the operators, kept free of operator boilerplate (and testable alone).

* :func:`day_range`: a run's data interval -> the local days it covers;
* :func:`resolve_connections`: ``conn_id`` sources / targets -> URIs via the hook;
* :func:`validate`, :func:`ingest`, :func:`run`: calls into :mod:`engage_plugin.runner`,
  serialized per DuckDB file (one writer process per file, see ``warehouse_lock``);
* :func:`table_counts`: row counts of output tables, for the publish step;
* :func:`lineage_pairs`: OpenLineage ``(namespace, name)`` pairs of a task.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
from typing import Any
from zoneinfo import ZoneInfo

from engage_core.errors import ConfigError, RunError
from engage_plugin import airflow_config as ac

log = logging.getLogger(__name__)
_ONE_US = dt.timedelta(microseconds=1)


def _parse_day(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise ConfigError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _plain_utc(value: dt.datetime) -> dt.datetime:
    """A stdlib UTC datetime (pendulum's arithmetic after ``astimezone`` is wall-clock)."""
    offset = value.utcoffset() if value.tzinfo is not None else None
    plain = dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond)
    return plain - (offset or dt.timedelta(0))


def _ctx(context: Any, key: str) -> Any:
    try:
        return context.get(key) if hasattr(context, "get") else context[key]
    except KeyError:
        return None


def day_range(context: Any, tz: str, start_day: Any = None, end_day: Any = None,
              where: str = "task") -> tuple[dt.date, dt.date]:
    """The local days ``[first, last]`` a run covers.

    Explicit ``start_day`` / ``end_day`` win. Otherwise the data interval ``[start, end)``
    is converted to ``tz``: ``first`` is the local date of ``start`` and ``last`` the local
    date of ``end - 1 microsecond`` (so a ``@daily`` interval of local midnights is one day,
    and an interval ending mid-day includes that day). A zero-length interval (a manual run,
    a trigger timetable) covers the local day that ends at, or contains, its instant.
    """
    if start_day or end_day:
        first = _parse_day(start_day or end_day, f"{where}: start_day")
        last = _parse_day(end_day or start_day, f"{where}: end_day")
    else:
        start = _ctx(context, "data_interval_start")
        end = _ctx(context, "data_interval_end")
        if start is None or end is None:
            start = end = _ctx(context, "logical_date")
        if start is None or end is None:
            raise ConfigError(f"{where}: the run has no data interval and no logical date; "
                              f"give start_day and end_day")
        zone = ZoneInfo(tz)
        start = _plain_utc(start).replace(tzinfo=dt.timezone.utc)
        end = _plain_utc(end).replace(tzinfo=dt.timezone.utc)
        last = (end - _ONE_US).astimezone(zone).date()
        first = start.astimezone(zone).date() if end > start else last
    if last < first:
        raise ConfigError(f"{where}: end_day {last} is before start_day {first}")
    return first, last


def resolve_connections(config: Any, source_conn_id: str | None = None,
                        target_conn_id: str | None = None, lenient: bool = False) -> Any:
    """Replace ``conn_id`` (from the file or the operator) by the connection's URI."""
    from engage_plugin.hooks.engage import EngageWarehouseHook

    def uri_of(conn_id: str | None) -> str | None:
        if not conn_id:
            return None
        try:
            return EngageWarehouseHook(engage_conn_id=conn_id).get_uri()
        except Exception:
            if lenient:
                return None
            raise

    source_id = source_conn_id or ac._get(ac._get(config, "source"), "conn_id")
    target_id = target_conn_id or ac._get(ac._get(config, "target"), "conn_id")
    return ac.with_connections(config, uri_of(source_id), uri_of(target_id))


def _duckdb_file(uri: str | None) -> str | None:
    if not uri or not uri.split("+")[0].startswith("duckdb:///"):
        return None
    path = uri.split(":///", 1)[1].split("?")[0]
    return None if not path or path == ":memory:" else os.path.abspath(path)


@contextlib.contextmanager
def warehouse_lock(config: Any, timeout: float = 3600.0):
    """One writer at a time per DuckDB file (DuckDB allows one writer *process*): parallel
    family tasks on a LocalExecutor wait for each other instead of failing. No-op for
    server databases, which take concurrent writers."""
    path = _duckdb_file(ac.target_uri(config))
    if path is None:
        yield
        return
    lock_path = path + ".engage-lock"
    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunError(f"{path}: another Engage task held the DuckDB file for "
                                   f"{timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def validate(config: Any) -> dict:
    """The checks of ``engage validate`` (file, availability, source schema, column types
    as the engine sees them), writing nothing. Returns ``role -> column``."""
    from engage_plugin.compute import prepare
    from engage_plugin.config import check_available
    from engage_plugin.sources import check_schema, role_columns, source_schema

    check_available(config)
    schema = source_schema(config)
    check_schema(config, schema)
    roles = role_columns(config, schema)
    prepare(config, schema.empty_table(), roles)
    return dict(roles)


def ingest(config: Any, first: dt.date, last: dt.date, log=log) -> dict:
    """Read the run's days from the source and prepare them as the engine will; write
    nothing. Returns the counts (rows read / skipped of those days) and the plan: the days
    the run will read and replace in the events store, and the loaded range before it."""
    from engage_plugin.compute import prepare
    from engage_plugin.runner import plan_run
    from engage_plugin.sources import read_source

    started = time.perf_counter()
    with warehouse_lock(config):
        plan = plan_run(config, first, last, False)
    table, roles = read_source(config, plan.read_start, plan.read_end)
    ev = prepare(config, table, roles)
    iso = lambda d: d and d.isoformat()  # noqa: E731
    report = {
        "pipeline": ac.pipeline_name(config), "start_day": first.isoformat(),
        "end_day": last.isoformat(), "rows_read": ev.rows_read,
        "rows_skipped_null_user": ev.rows_skipped_null_user,
        "rows_skipped_null_timestamp": ev.rows_skipped_null_timestamp,
        "users": ev.num_users,
        "loaded_range": [iso(plan.prev_start), iso(plan.prev_end)],
        "read_range": [iso(plan.read_start), iso(plan.read_end)],
        "store_rebuilt": plan.reason or None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("Engage: %s rows on %s..%s (%s skipped); the run replaces %s..%s in the events "
             "store%s", ev.rows_read, first, last, ev.rows_read - ev.num_rows,
             plan.read_start or "the first day", plan.read_end or "the last day",
             f" (rebuilt: {plan.reason})" if plan.reason else "")
    return report


def run(config: Any, first: dt.date | None, last: dt.date, *, full_refresh: bool = False,
        log=log) -> Any:
    """``run_pipeline`` over the days (``first=None``: from the source's first day), holding
    the warehouse lock."""
    from engage_plugin.runner import run_pipeline

    log.info("Engage: running %s (%s) over %s..%s%s", ac.pipeline_name(config),
             ", ".join(ac.metric_families(config)), first or "the first day", last,
             " with a full refresh" if full_refresh else "")
    with warehouse_lock(config):
        return run_pipeline(config, start=first, end=last, full_refresh=full_refresh)


def table_counts(config: Any, tables: list[str]) -> dict[str, int | None]:
    """``{table: row count or None when missing}`` in the target (any warehouse)."""
    from engage_plugin.warehouse import open_warehouse

    uri = ac.target_uri(config)
    schema = ac._get(ac._get(config, "target"), "schema")
    if not uri:
        raise ConfigError(f"{ac.source_file(config)}: target: no uri after resolving conn_id")
    wh = open_warehouse(uri, schema)
    out: dict[str, int | None] = {}
    with warehouse_lock(config), wh.session(read_only=True) as s:
        for t in tables:
            out[t] = s.execute(f"SELECT COUNT(*) FROM {wh.qualified(t)}")[0][0] \
                if s.table_exists(t) else None
    return out


def lineage_pairs(config: Any, tables: list[str]) -> tuple[list, list]:
    """OpenLineage ``(namespace, name)`` inputs (the source) and outputs (``tables``)."""
    from engage_plugin.lineage import dataset_for_path, dataset_for_uri

    source = ac._get(config, "source")
    inputs = []
    if ac._get(source, "path"):
        inputs.append(dataset_for_path(str(ac._get(source, "path"))))
    elif ac._get(source, "uri"):
        inputs.append(dataset_for_uri(ac._get(source, "uri"), ac._get(source, "table")
                                      or "query"))
    outputs = []
    uri = ac.target_uri(config)
    if uri:
        schema = ac._get(ac._get(config, "target"), "schema")
        outputs = [dataset_for_uri(uri, t, schema) for t in tables]
    return inputs, outputs
