"""The target: metric tables, state tables and run history in any warehouse Engage writes to.

Tables (METRICS.md section 4 and docs/pipeline.md "State tables"), each ``{prefix}{name}``
in the target's schema: one per metric table, keyed as :data:`PRIMARY_KEYS` says, with a
``computed_at`` column; ``state`` (key/value), ``state_events`` (the events store),
``runs`` and ``rejected_rows``.

A run's writes happen in ONE transaction of one session that holds the pipeline's lock
(:func:`lock_name`): the DDL first (tables that do not exist yet; a table whose columns
changed is re-created), then the DML (replace the store's days, replace each metric
table's rows, state, runs, rejected rows), then COMMIT. On MySQL/MariaDB a DDL statement
commits implicitly, which is why every DDL comes before the first DML; a failure after it
leaves at most new, empty tables.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from engage_core.errors import ConfigError
from engage_plugin.config import PipelineConfig
from engage_plugin.store import DAY, SEQ, STATE, STATE_SCHEMA, STORE

#: table (without prefix) -> primary key (METRICS.md section 4)
PRIMARY_KEYS = {
    "active_users": ("day", "window_days", "segment"),
    "engagement_daily": ("day", "segment"),
    "stickiness": ("period_start", "period", "segment", "days_active"),
    "retention": ("cohort_start", "period", "segment", "period_offset"),
    "retention_summary": ("period", "segment", "period_offset"),
    "retention_brackets": ("cohort_start", "period", "segment", "bracket_start", "bracket_end"),
    "lifecycle": ("period_start", "period", "segment"),
    "first_week": ("cohort_day", "segment"),
    "sessions_daily": ("day", "segment"),
    "funnel": ("period_start", "period", "segment", "funnel", "step"),
    "conversion": ("period_start", "period", "segment", "name"),
    "commerce": ("period_start", "period", "segment"),
    "cohort_revenue": ("cohort_start", "period", "segment", "period_offset"),
    "survey": ("period_start", "period", "segment", "survey"),
    "score_tiers": ("period_start", "period", "segment", "tier"),
    "user_scores": ("period_start", "period", "user_id"),
}

RUNS = "runs"
REJECTED = "rejected_rows"
RUNS_SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), False), pa.field("start_day", pa.date32()),
    pa.field("end_day", pa.date32()), pa.field("status", pa.string()),
    pa.field("started_at", pa.timestamp("us")), pa.field("finished_at", pa.timestamp("us")),
    pa.field("report", pa.string())])
REJECTED_SCHEMA = pa.schema([pa.field("run_id", pa.string()), pa.field("metric", pa.string()),
                             pa.field("reason", pa.string()), pa.field("row_json", pa.string())])


def open_target(config: PipelineConfig):
    """The pipeline's :class:`~engage_plugin.warehouse.Warehouse`."""
    from engage_plugin.warehouse import open_warehouse

    if config.target.conn_id and not config.target.uri:
        raise ConfigError(f"{config.where('target', 'conn_id')}: conn_id needs Airflow; "
                          "the engage command takes target.uri")
    return open_warehouse(config.target.uri, config.target.schema,
                          where=config.where("target", "uri"))


def lock_name(config: PipelineConfig) -> str:
    """The lock two runs writing the same tables share (schema and prefix)."""
    return f"engage:{config.target.schema or ''}:{config.target.table_prefix}"[:64]


def read_state(session, prefix: str) -> dict[str, str]:
    """``{prefix}state`` as a dict ({} when the table does not exist)."""
    if not session.table_exists(prefix + STATE):
        return {}
    rows = session.read(prefix + STATE, schema=STATE_SCHEMA)
    return dict(zip(rows["key"].to_pylist(), rows["value"].to_pylist()))


def metric_schema(arrow: pa.Table) -> pa.Schema:
    """A metric table's columns: the engine's, then ``computed_at``."""
    return arrow.schema.append(pa.field("computed_at", pa.timestamp("us")))


def ensure_tables(session, prefix: str, metric: dict[str, pa.Table],
                  store_schema: pa.Schema) -> None:
    """Create what does not exist; re-create a table whose columns changed. Call before
    any DML of the session (on MySQL/MariaDB a DDL statement commits by itself, so only a
    change of columns, never a plain rerun or full refresh, leaves a trace after a failure:
    a re-created, empty table)."""
    session.ensure_schema()
    wanted = {STATE: (STATE_SCHEMA, ("key",)), RUNS: (RUNS_SCHEMA, ("run_id",)),
              REJECTED: (REJECTED_SCHEMA, ()), STORE: (store_schema, (DAY, SEQ))}
    for table, arrow in metric.items():
        wanted[table] = (metric_schema(arrow), PRIMARY_KEYS.get(table, ()))
    for table, (schema, key) in wanted.items():
        name = prefix + table
        cols = session.table_columns(name)
        if cols and cols != schema.names:
            session.drop_table(name)
            cols = []
        if not cols:
            session.create_table(name, schema, key)


def insert_table(session, name: str, arrow: pa.Table, computed_at: dt.datetime) -> int:
    """Replace the rows of metric table ``name`` by ``arrow`` (one bulk insert)."""
    session.delete(name)
    return session.insert(name, arrow, constants={"computed_at": computed_at})


def write_run(session, prefix: str, run: dict) -> None:
    """Insert or replace the run's ``{prefix}runs`` row."""
    session.delete(prefix + RUNS, where={"run_id": run["run_id"]})
    row = dict(run, report=json.dumps(run.get("report"), default=str))
    session.insert(prefix + RUNS, pa.Table.from_pylist([{k: row.get(k) for k in RUNS_SCHEMA.names}],
                                                       schema=RUNS_SCHEMA))


def record_failed_run(config: PipelineConfig, run: dict) -> None:
    """Write a ``failed`` runs row in its own transaction (best effort: a target that
    cannot be reached gets none)."""
    prefix = config.target.table_prefix
    try:
        wh = open_target(config)
        with wh.session(lock=lock_name(config), lock_timeout=60) as s:
            s.ensure_schema()
            if not s.table_exists(prefix + RUNS):
                s.create_table(prefix + RUNS, RUNS_SCHEMA, ("run_id",))
            write_run(s, prefix, run)
    except Exception:
        pass
