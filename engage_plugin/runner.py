"""Run a pipeline: read the source, compute the metrics with engage_core, load the target.

Semantics of this version (docs/pipeline.md): the tables hold what one full run over the
loaded day range computes. ``{prefix}state`` keeps that range; a run over ``[start, end]``
extends it to the hull with the previous range, reads the source events of the hull,
computes every enabled metric with ``end_day`` = the hull's end and replaces every metric
table's content in one transaction. ``full_refresh`` forgets the previous range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
import uuid
from typing import Any, Callable

import pyarrow as pa

import engage_core as ec
from engage_core.errors import EngageError, RunError
from engage_plugin.compute import (compute_metrics, prepare, rejected_counts,
                                   rejected_rows)
from engage_plugin.config import PipelineConfig, check_available
from engage_plugin.sources import read_source
from engage_plugin.targets import DuckDBTarget

STATE_START, STATE_END = "loaded_start_day", "loaded_end_day"


@dataclasses.dataclass
class RunReport:
    run_id: str
    pipeline: str
    start_day: str | None = None
    end_day: str | None = None
    requested_start: str | None = None
    requested_end: str | None = None
    full_refresh: bool = False
    rows_read: int = 0
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


def _lo(a, b):
    return b if a is None else a if b is None else min(a, b)


def _hi(a, b):
    return b if a is None else a if b is None else max(a, b)


def plan_range(config: PipelineConfig, start, end, full_refresh: bool):
    """``(read start, read end, previous start, previous end, target)``: the hull of the
    request and the loaded range; ``None`` is open (every day of the source on that side)."""
    target = DuckDBTarget(config)
    state = {} if full_refresh else target.read_state()
    prev_start = _date(state.get(STATE_START))
    prev_end = _date(state.get(STATE_END))
    read_start = None if start is None else _lo(start, prev_start)
    read_end = None if end is None else _hi(end, prev_end)
    return read_start, read_end, prev_start, prev_end, target


def run_pipeline(config: PipelineConfig, *, start=None, end=None, full_refresh: bool = False,
                 progress: Callable[[str], None] | None = None) -> RunReport:
    """Run ``config`` over local days ``[start, end]`` (see the module docstring)."""
    start, end = _date(start), _date(end)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    report = RunReport(run_id=f"{config.pipeline}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
                       pipeline=config.pipeline, full_refresh=full_refresh,
                       requested_start=start and start.isoformat(),
                       requested_end=end and end.isoformat(), started_at=now.isoformat())
    check_available(config)
    if start and end and start > end:
        raise ec.ConfigError(f"--start {start} is after --end {end}")
    read_start, read_end, prev_start, prev_end, target = plan_range(config, start, end,
                                                                    full_refresh)
    bar = _Progress(progress)

    class _Timer:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            bar.step(self.name)
            self.t0 = time.perf_counter()

        def __exit__(self, *exc):
            report.seconds[self.name] = round(time.perf_counter() - self.t0, 6)

    try:
        with _Timer("read"):
            table, roles = read_source(config, read_start, read_end)
        with _Timer("prepare"):
            ev = prepare(config, table, roles)
        report.rows_read = ev.rows_read
        report.rows_skipped_null_user = ev.rows_skipped_null_user
        report.rows_skipped_null_timestamp = ev.rows_skipped_null_timestamp
        hull_start = read_start if read_start is not None else _lo(ev.first_day, prev_start)
        end_day = read_end if read_end is not None else _hi(ev.last_day, prev_end)
        report.start_day = hull_start and hull_start.isoformat()
        report.end_day = end_day and end_day.isoformat()
        rejected: list = []
        tables = compute_metrics(config, ev, end_day, _Timer, rejected=rejected)
        report.rows_rejected = rejected_counts(rejected)
        rejected_table = rejected_rows(rejected, table, report.run_id)
    except EngageError:
        bar.done()
        raise
    except Exception as exc:
        bar.done()
        raise RunError(f"computing {config.pipeline} failed: {type(exc).__name__}: {exc}") \
            from exc

    state = {STATE_START: report.start_day or "", STATE_END: report.end_day or ""}
    state = {k: v for k, v in state.items() if v}
    report.status = "success"
    try:
        with _Timer("load"):
            finished = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            report.finished_at = finished.isoformat()
            run_row = {"run_id": report.run_id, "start_day": hull_start, "end_day": end_day,
                       "status": "success", "started_at": now, "finished_at": finished,
                       "report": None}
            # the report stored with the run has the load's row counts, not its seconds
            report.rows_written = {target.prefix + t: a.num_rows for t, a in tables.items()}
            run_row["report"] = report.to_dict()
            report.rows_written = target.load(tables, state=state, run=run_row,
                                              rejected=rejected_table,
                                              computed_at=finished)
    except EngageError as exc:
        bar.done()
        report.status, report.error = "failed", str(exc)
        target.record_failed_run({"run_id": report.run_id, "start_day": hull_start,
                                  "end_day": end_day, "status": "failed", "started_at": now,
                                  "finished_at": dt.datetime.now(dt.timezone.utc)
                                  .replace(tzinfo=None), "report": report.to_dict()})
        raise
    bar.done()
    return report
