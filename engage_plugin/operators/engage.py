"""Engage's Airflow operators: thin wrappers around the pipeline runner.

Every operator has a keyword-only ``__init__`` that only stores its arguments; the work
happens in ``execute``. Templated fields (Jinja, rendered before ``execute``):

==========================  ================================================================
``pipeline_path``           the pipeline YAML file
``start_day`` / ``end_day`` optional explicit local-day range (``YYYY-MM-DD``); by default
                            the run's data interval ``[start, end)`` in the pipeline's time
                            zone becomes the days ``[start day, (end - 1 microsecond) day]``
``source_conn_id``          optional Airflow connection that overrides the file's source
``target_conn_id``          optional Airflow connection that overrides the file's target
``metrics``                 (:class:`EngageRunOperator`) the metric families to compute
``full_refresh``            (:class:`EngageRunOperator`) rebuild the tables from every
                            source day up to the run's last day
==========================  ================================================================

Tasks hand data to each other through the warehouse; only the small run report goes to
XCom. Runs are idempotent (METRICS.md section 5), so Airflow retries and reruns are safe.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from engage_core.errors import ConfigError, SchemaError
from engage_plugin import airflow_config as ac
from engage_plugin import airflow_runtime as rt


class EngageConfigFailure(AirflowFailException, ConfigError):
    """A bad pipeline file or option: the task fails without retrying (no retry helps)."""


class EngageSchemaFailure(AirflowFailException, SchemaError):
    """A source without a usable column: the task fails without retrying."""


def _no_retry(exc: Exception) -> Exception:
    """The same error, also an ``AirflowFailException`` so Airflow does not retry it."""
    cls = EngageSchemaFailure if isinstance(exc, SchemaError) else EngageConfigFailure
    return cls(str(exc))


def _fail_fast(execute):
    """A bad file, option or schema fails the task at once, without retries (``RunError``
    and other failures while running are retried as usual)."""

    @functools.wraps(execute)
    def wrapper(self, context):
        try:
            return execute(self, context)
        except (ConfigError, SchemaError) as exc:
            if isinstance(exc, AirflowFailException):
                raise
            raise _no_retry(exc) from exc

    return wrapper


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _jsonable(report: Any) -> dict:
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report or {})
    return json.loads(json.dumps(data, default=str))


class _EngageOperator(BaseOperator):
    """Shared arguments of the Engage operators (see the module docstring)."""

    template_fields: Sequence[str] = ("pipeline_path", "start_day", "end_day",
                                      "source_conn_id", "target_conn_id")
    ui_color = "#e8f4ea"

    def __init__(self, *, pipeline_path: str, start_day: str | None = None,
                 end_day: str | None = None, source_conn_id: str | None = None,
                 target_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline_path = pipeline_path
        self.start_day = start_day
        self.end_day = end_day
        self.source_conn_id = source_conn_id
        self.target_conn_id = target_conn_id
        self._config: Any = None

    # -- helpers used by execute -------------------------------------------------------
    def load_config(self) -> Any:
        """The pipeline, with ``conn_id`` source / target resolved to URIs by the hook."""
        config = ac.load(self.pipeline_path)
        self._config = rt.resolve_connections(config, self.source_conn_id, self.target_conn_id)
        return self._config

    def day_range(self, context: Any, config: Any) -> tuple[dt.date, dt.date]:
        return rt.day_range(context, ac.timezone(config), self.start_day, self.end_day,
                            where=f"task {self.task_id}")

    # -- OpenLineage ---------------------------------------------------------------------
    def _lineage_tables(self, config: Any) -> list[str]:
        return []

    def get_openlineage_facets_on_complete(self, task_instance: Any = None):
        """Input (the source) and output (the tables written) datasets; ``None`` when the
        OpenLineage provider is missing. Never raises."""
        try:
            config = self._config or rt.resolve_connections(
                ac.load(self.pipeline_path), self.source_conn_id, self.target_conn_id,
                lenient=True)
            inputs, outputs = rt.lineage_pairs(config, self._lineage_tables(config))
            from engage_plugin.lineage import operator_lineage

            return operator_lineage(inputs, outputs)
        except Exception:  # lineage must never fail a task
            self.log.warning("Engage: no OpenLineage datasets for %s", self.task_id,
                             exc_info=True)
            return None


class EngageValidateOperator(_EngageOperator):
    """Check the pipeline file and the source's schema; write nothing.

    Fails (no retry helps) with the file, line and key of a bad file, or the column of a bad
    schema. Returns ``{"pipeline", "tables", "columns", "start_day", "end_day"}``.
    """

    @_fail_fast
    def execute(self, context: Any) -> dict:
        config = self.load_config()
        first, last = self.day_range(context, config)
        columns = rt.validate(config)
        self.log.info("Engage pipeline %s is valid; days %s..%s", ac.pipeline_name(config),
                      first, last)
        return {"pipeline": ac.pipeline_name(config), "tables": ac.all_tables(config),
                "columns": columns, "start_day": first.isoformat(),
                "end_day": last.isoformat()}


class EngageIngestOperator(_EngageOperator):
    """Read the run's days from the source and prepare them as the engine will; write nothing.

    Fails early (before the metric tasks fan out) on an unreadable source or bad rows, and
    returns the counts of those days (rows read, skipped, users) with the day range the
    metric tasks will recompute (the runner's hull of the run and the loaded range). The
    runner has no separate staging step in this version: each metric task reads that range
    from the source itself (see ``docs/airflow.md``).
    """

    @_fail_fast
    def execute(self, context: Any) -> dict:
        config = self.load_config()
        first, last = self.day_range(context, config)
        return _jsonable(rt.ingest(config, first, last, log=self.log))


class EngageRunOperator(_EngageOperator):
    """Run the pipeline, or only some of its metric families, over the run's local days.

    :param metrics: metric families (keys of the file's ``metrics``) to compute; ``None``
        computes every family. A family's tables are exactly what a full run writes for it.
    :param full_refresh: forget the loaded range and rebuild the tables from every source
        day up to the run's last day (from ``start_day`` when given). Templated; ``"True"`` /
        ``"False"`` strings from ``{{ params.full_refresh }}`` are understood.
    """

    template_fields: Sequence[str] = (*_EngageOperator.template_fields, "metrics",
                                      "full_refresh")

    def __init__(self, *, metrics: list[str] | None = None, full_refresh: bool | str = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.full_refresh = full_refresh

    def _lineage_tables(self, config: Any) -> list[str]:
        families = self.metrics or ac.metric_families(config)
        return [t for f in families for t in ac.family_tables(config, f)]

    @_fail_fast
    def execute(self, context: Any) -> dict:
        config = self.load_config()
        first, last = self.day_range(context, config)
        if self.metrics:
            if isinstance(self.metrics, str):
                raise ConfigError(f"task {self.task_id}: metrics must be a list of metric "
                                  f"families, not the string {self.metrics!r}")
            config = ac.with_metrics(config, list(self.metrics))
        full = _as_bool(self.full_refresh)
        if full and not self.start_day:
            first = None  # a full refresh rebuilds from the first day of the source
        report = rt.run(config, first, last, full_refresh=full, log=self.log)
        return _jsonable(report)


class EngagePublishOperator(_EngageOperator):
    """The last step: check every output table is there and emit its Asset event.

    Give it ``outlets=[Asset(...)]`` (the DAG factory does: one Asset per output table; the
    table is the Asset's ``extra["table"]``, else its name). Each event's ``extra`` carries
    ``pipeline``, ``table``, ``start_day``, ``end_day`` (the local days of the run) and
    ``rows`` (the table's row count). Returns the same, keyed by table.
    """

    def _lineage_tables(self, config: Any) -> list[str]:
        return ac.all_tables(config)

    @_fail_fast
    def execute(self, context: Any) -> dict:
        config = self.load_config()
        first, last = self.day_range(context, config)
        counts = rt.table_counts(config, ac.all_tables(config))
        missing = [t for t, n in counts.items() if n is None]
        if missing:
            raise ConfigError(f"{ac.source_file(config)}: tables {missing} are missing from the "
                              f"target after the run")
        published = {}
        events = context.get("outlet_events") if hasattr(context, "get") else None
        for asset in self.outlets or []:
            table = (getattr(asset, "extra", None) or {}).get("table") or asset.name
            extra = {"pipeline": ac.pipeline_name(config), "table": table,
                     "start_day": first.isoformat(), "end_day": last.isoformat(),
                     "rows": counts.get(table)}
            if events is not None:
                events[asset].extra = extra
            published[table] = extra
        return {"pipeline": ac.pipeline_name(config), "start_day": first.isoformat(),
                "end_day": last.isoformat(), "tables": published}


__all__ = ["EngageConfigFailure", "EngageIngestOperator", "EngagePublishOperator",
           "EngageRunOperator", "EngageSchemaFailure", "EngageValidateOperator"]
