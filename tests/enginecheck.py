"""Helpers shared by the engine-versus-reference tests: run the engine on a generated case
and compare its table with the reference rows."""

import math
from datetime import timedelta

import pyarrow as pa

import engage_core as ec
import reference as ref
from strategies import breakdown_columns, to_table

INT32_COLUMNS = {"window_days", "days_active", "period_offset"}
DATE_COLUMNS = {"day", "period_start", "cohort_start", "cohort_day"}
STRING_COLUMNS = {"period", "segment"}
FLOAT_COLUMNS = {"stickiness", "engagement_rate", "retention_rate", "retention_rate_unbounded",
                 "returned_rate", "avg_active_days"}


def expected_type(column):
    if column in INT32_COLUMNS:
        return pa.int32()
    if column in DATE_COLUMNS:
        return pa.date32()
    if column in STRING_COLUMNS:
        return pa.string()
    if column in FLOAT_COLUMNS:
        return pa.float64()
    if column == "is_complete":
        return pa.bool_()
    return pa.int64()


def prepare(case, batches=None, table=None):
    table = to_table(case, batches) if table is None else table
    cal = ec.Calendar(timezone=case.tz, week_start=case.week_start)
    return ec.prepare_events(table, user_id="user_id", timestamp="ts", event="event",
                             breakdowns=breakdown_columns(case), calendar=cal)


def reference_log(case):
    return ref.Log(case.rows, case.zone, case.week_start)


def resolve_end_day(log, extra_days):
    if extra_days is None or log.last_day is None:
        return None
    return log.last_day + timedelta(days=extra_days)


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def assert_matches(metric, got, expected):
    """The engine's table equals the reference rows: columns, types, sort order, the set of
    primary keys, and every value (floats within 1e-9)."""
    columns = ref.COLUMNS[metric]
    assert got.column_names == columns
    for name in columns:
        assert got.schema.field(name).type == expected_type(name), (name, got.schema.field(name).type)
    rows = got.to_pylist()
    pk = ref.PRIMARY_KEYS[metric]
    keys = [tuple(r[k] for k in pk) for r in rows]
    assert keys == sorted(keys), "not sorted by the primary key"
    got_by_key = dict(zip(keys, rows))
    assert len(got_by_key) == len(rows), "duplicate primary keys"
    want_by_key = {tuple(r[k] for k in pk): r for r in expected}
    missing = sorted(set(want_by_key) - set(got_by_key))
    extra = sorted(set(got_by_key) - set(want_by_key))
    assert not missing and not extra, f"missing keys {missing[:5]}, extra keys {extra[:5]}"
    bad = []
    for key, want in want_by_key.items():
        have = got_by_key[key]
        for name in columns:
            if not _same(have[name], want[name]):
                bad.append((key, name, "engine", have[name], "reference", want[name]))
    assert not bad, f"{len(bad)} differing values, first: {bad[:5]}"


def assert_report(ev, log, fields=None):
    want = log.report()
    if fields is not None:
        want = {k: want[k] for k in fields}
    got = {name: getattr(ev, name) for name in want}
    assert got == want, {k: (got[k], want[k]) for k in want if got[k] != want[k]}
