"""The DuckDB target: metric tables, ``{prefix}state``, ``{prefix}runs``, ``{prefix}rejected_rows``.

A run's whole load happens in ONE transaction: every metric table's content is replaced
(DELETE then a bulk ``INSERT ... SELECT`` from the registered Arrow table), the state, the
runs row and the rejected rows are written, then COMMIT; on any error, ROLLBACK, so every
table is as it was. The connection is open only for the load.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pyarrow as pa

from engage_core.errors import ConfigError, RunError
from engage_plugin.config import PipelineConfig

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


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_type(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "TEXT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return "INTEGER"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    raise RunError(f"no SQL type for Arrow type {t}")


def duckdb_path(uri: str) -> str:
    if not uri.startswith("duckdb://"):
        raise ConfigError(f"target.uri: only duckdb:///file.duckdb targets are available in "
                          f"this version (found {uri.split('://')[0]}://...)")
    rest = uri[len("duckdb:///"):] if uri.startswith("duckdb:///") else uri[len("duckdb://"):]
    return rest or ":memory:"


class DuckDBTarget:
    """Where one pipeline's tables live."""

    def __init__(self, config: PipelineConfig):
        if config.target.conn_id:
            raise ConfigError(f"{config.where('target', 'conn_id')}: conn_id needs Airflow; "
                              "the engage command takes target.uri")
        self.path = duckdb_path(config.target.uri)
        self.schema = config.target.schema
        self.prefix = config.target.table_prefix

    def name(self, table: str) -> str:
        """The quoted, schema-qualified name of ``{prefix}{table}``."""
        full = quote(self.prefix + table)
        return f"{quote(self.schema)}.{full}" if self.schema else full

    def connect(self, read_only: bool = False, lock_wait: float = 10.0):
        """Open the file. New files are written in DuckDB's v1.0.0 storage format, which the
        duckdb 1.x that Superset ships can read. A read-write open waits up to ``lock_wait``
        seconds while another process (a Superset query) holds the file."""
        import duckdb

        if self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            if not read_only:
                os.makedirs(folder, exist_ok=True)
        config = {} if read_only else {"storage_compatibility_version": "v1.0.0"}
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def read_state(self) -> dict[str, str]:
        """The ``{prefix}state`` key/values ({} when the file or table does not exist)."""
        import duckdb

        if self.path != ":memory:" and not os.path.exists(self.path):
            return {}
        try:
            con = self.connect(read_only=True)
        except Exception as exc:
            raise RunError(f"cannot open the target {self.path}: {type(exc).__name__}: {exc}") \
                from exc
        try:
            return dict(con.execute(f"SELECT key, value FROM {self.name('state')}").fetchall())
        except duckdb.CatalogException:
            return {}
        finally:
            con.close()

    # --- DDL -------------------------------------------------------------------------------

    def _ensure(self, con, table: str, arrow: pa.Table) -> None:
        key = PRIMARY_KEYS.get(table, ())
        cols = []
        for f in arrow.schema:
            null = " NOT NULL" if f.name in key or f.name == "segment" else ""
            cols.append(f"{quote(f.name)} {sql_type(f.type)}{null}")
        cols.append('"computed_at" TIMESTAMP')
        if key:
            cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in key)})")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({', '.join(cols)})")

    def _ensure_bookkeeping(self, con) -> None:
        if self.schema:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.name('state')} "
                    '("key" TEXT PRIMARY KEY, "value" TEXT)')
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.name('runs')} ("
                    '"run_id" TEXT PRIMARY KEY, "start_day" DATE, "end_day" DATE, '
                    '"status" TEXT, "started_at" TIMESTAMP, "finished_at" TIMESTAMP, '
                    '"report" TEXT)')
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.name('rejected_rows')} ("
                    '"run_id" TEXT, "metric" TEXT, "reason" TEXT, "row_json" TEXT)')

    # --- the load --------------------------------------------------------------------------

    def load(self, tables: dict[str, pa.Table], *, state: dict[str, str], run: dict,
             rejected: pa.Table | None, computed_at: dt.datetime) -> dict[str, int]:
        """Replace every table in ``tables`` and write state/runs/rejected in one transaction.

        Returns rows written per prefixed table. Raises :class:`RunError` after ROLLBACK."""
        con = self.connect()
        written: dict[str, int] = {}
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                self._ensure_bookkeeping(con)
                for table, arrow in tables.items():
                    self._ensure(con, table, arrow)
                    written[self.prefix + table] = insert_table(self, con, table, arrow,
                                                                computed_at)
                con.execute(f"DELETE FROM {self.name('state')}")
                con.executemany(f"INSERT INTO {self.name('state')} VALUES (?, ?)",
                                sorted(state.items()))
                if rejected is not None and rejected.num_rows:
                    con.register("engage_rejected_src", rejected)
                    con.execute(f"INSERT INTO {self.name('rejected_rows')} "
                                "SELECT run_id, metric, reason, row_json FROM engage_rejected_src")
                    con.unregister("engage_rejected_src")
                self._write_run(con, run)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except Exception as exc:
            raise RunError(f"load into {self.path} failed, every table left as it was: "
                           f"{type(exc).__name__}: {exc}") from exc
        finally:
            con.close()
        return written

    def _write_run(self, con, run: dict) -> None:
        con.execute(f"DELETE FROM {self.name('runs')} WHERE run_id = ?", [run["run_id"]])
        con.execute(f"INSERT INTO {self.name('runs')} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run["run_id"], run.get("start_day"), run.get("end_day"), run["status"],
                     run.get("started_at"), run.get("finished_at"),
                     json.dumps(run.get("report"), default=str)])

    def record_failed_run(self, run: dict) -> None:
        """Write a ``failed`` runs row in its own transaction (best effort)."""
        try:
            con = self.connect()
        except Exception:
            return
        try:
            con.execute("BEGIN TRANSACTION")
            self._ensure_bookkeeping(con)
            self._write_run(con, run)
            con.execute("COMMIT")
        except Exception:
            try:
                con.execute("ROLLBACK")
            except Exception:
                pass
        finally:
            con.close()


def insert_table(target: DuckDBTarget, con, table: str, arrow: pa.Table,
                 computed_at: dt.datetime) -> int:
    """Replace ``{prefix}{table}``'s rows by ``arrow`` (bulk INSERT ... SELECT)."""
    name = target.name(table)
    con.execute(f"DELETE FROM {name}")
    view = "engage_load_src"
    con.register(view, arrow)
    try:
        cols = ", ".join(quote(c) for c in arrow.column_names)
        con.execute(f"INSERT INTO {name} ({cols}, \"computed_at\") "
                    f"SELECT {cols}, ?::TIMESTAMP FROM {view}", [computed_at])
    finally:
        con.unregister(view)
    return arrow.num_rows
