"""Engage's side of the benchmark: ``engage_core.prepare_events`` then the metric (the
preparation is inside every task's time), and "all metrics": the demo pipeline's metric
set through ``engage_plugin.compute.prepare`` + ``compute_metrics`` (one call, every family).

Sources: an in-memory ``pyarrow.Table`` or, from Parquet, a ``RecordBatchReader`` over
``ParquetFile.iter_batches`` (see ``parquet_source``: the streaming path when the engine has
one)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import numpy as np
import pyarrow as pa

from canon import FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, WINDOWS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = os.path.join(ROOT, "dags", "pipelines", "shop.yaml")


def _calendar():
    import engage_core as ec

    return ec.Calendar(timezone="UTC", week_start="monday")


def engage_prepare(src, threads=None, events: bool = False):
    """``prepare_events`` over a table or a record-batch stream; the event column is read
    only by the tasks that filter on event names."""
    import engage_core as ec

    kw = dict(user_id="user_id", timestamp="ts", event="event" if events else None,
              calendar=_calendar(), threads=threads)
    if not isinstance(src, pa.Table) and hasattr(ec, "prepare_events_stream"):
        return ec.prepare_events_stream(src, **kw)
    return ec.prepare_events(src, **kw)


def engage_prepare_with_events(src, threads=None):
    return engage_prepare(src, threads, events=True)


def engage_active_users(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.active_users(ev, windows=WINDOWS, threads=threads)


def engage_retention(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.retention(ev, period="week", max_offset=MAX_OFFSET, threads=threads)


def engage_retention_rolling(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.retention(ev, period="week", max_offset=MAX_OFFSET, window="rolling",
                        threads=threads)


def engage_sessions(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.sessions(ev, session_gap=SESSION_GAP_S, threads=threads)


def engage_funnel(ev, threads=None) -> pa.Table:
    import engage_core as ec

    return ec.funnel(ev, name="checkout", steps=list(FUNNEL_STEPS),
                     conversion_window=FUNNEL_WINDOW_S, period="week", threads=threads)


def engage_task(task: str, src, threads=None):
    """prepare + one metric (the benchmark's timed unit for Engage)."""
    ev = engage_prepare(src, threads, events=task == "funnel")
    return globals()["engage_" + task](ev, threads=threads)


# --------------------------------------------------------------------------- all metrics

#: what the benchmark changes in the demo pipeline's metrics, and why (results.md lists it)
ADAPTATIONS = (
    "timezone UTC (the bench tasks use UTC days)",
    "no `breakdown: platform` (the bench logs have no platform column)",
    "retention without `start_events: [signup]` (the bench logs have no signup event; every "
    "event starts a cohort, as in the retention task)",
    "a `revenue` column derived from the log (purchase rows: 5.00 + (ts seconds mod 9500) / 100, "
    "others null) and an all-null `score` column are added for commerce, cohort revenue and "
    "survey (in memory: before the timing; from Parquet: batch by batch, inside it)",
    "conversions (email events) and survey (nps/csat events) find no such events in the bench "
    "logs: they run and write empty or zero rows",
)


def pipeline_config():
    """The demo pipeline (dags/pipelines/shop.yaml) adapted to the bench logs (ADAPTATIONS)."""
    from engage_plugin.config import load_pipeline

    config = load_pipeline(PIPELINE)
    metrics = {}
    for family, opts in config.metrics.items():
        if isinstance(opts, dict):  # named entries (funnels, conversions)
            metrics[family] = {k: dataclasses.replace(v, breakdown=None) for k, v in opts.items()}
        else:
            changes = {"breakdown": None}
            if family == "retention":
                changes["start_events"] = None
            metrics[family] = dataclasses.replace(opts, **changes)
    return dataclasses.replace(config, timezone="UTC", metrics=metrics)


def pipeline_families() -> list[str]:
    from engage_plugin.config import load_pipeline

    return list(load_pipeline(PIPELINE).metrics)


def add_numeric(batch):
    """The log plus ``revenue`` (purchase rows) and ``score`` (null) columns (ADAPTATIONS)."""
    import pyarrow.compute as pc

    secs = np.asarray(batch.column(batch.schema.get_field_index("ts")).cast(pa.int64())
                      .to_numpy(zero_copy_only=False)) // 1_000_000
    ev = batch.column(batch.schema.get_field_index("event"))
    is_purchase = pc.equal(ev.cast(pa.string()) if pa.types.is_dictionary(ev.type) else ev,
                           "purchase")
    revenue = pc.if_else(is_purchase, pa.array(5.0 + (secs % 9500) / 100.0), None)
    score = pa.nulls(len(batch), pa.float64())
    if isinstance(batch, pa.Table):
        return batch.append_column("revenue", revenue).append_column("score", score)
    return pa.RecordBatch.from_arrays(list(batch.columns) + [revenue, score],
                                      names=batch.schema.names + ["revenue", "score"])


def with_numeric_stream(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    schema = reader.schema.append(pa.field("revenue", pa.float64())).append(
        pa.field("score", pa.float64()))
    return pa.RecordBatchReader.from_batches(schema, (add_numeric(b) for b in reader))


class FamilyTimer:
    """The ``timer`` compute_metrics takes: seconds per metric family of the last call."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def engage_all_metrics(src, config, timer=None) -> dict:
    """Every metric of the pipeline in one call; threads from ENGAGE_THREADS (compute.py
    takes no threads argument). ``src`` must carry the revenue and score columns."""
    from engage_plugin.compute import compute_metrics, prepare

    timer = timer or FamilyTimer()
    t0 = time.perf_counter()
    ev = prepare(config, src, {"user_id": "user_id", "timestamp": "ts", "event": "event"})
    timer.seconds["prepare"] = time.perf_counter() - t0
    return compute_metrics(config, ev, None, timer, rejected=[])


def all_metrics_parts(tables: dict) -> dict:
    """The all-metrics tables that match the single tasks (to check them against those):
    task -> table (weekly retention only; segment 'all' only, there is no breakdown)."""
    import pyarrow.compute as pc

    ret = tables["retention"]
    ret = ret.filter(pc.equal(ret["period"], "week")) if "period" in ret.column_names else ret
    return {"active_users": tables["active_users"], "retention": ret,
            "sessions": tables["sessions_daily"], "funnel": tables["funnel"]}
