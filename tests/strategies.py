"""Hypothesis strategies for event logs, and their conversion to Arrow tables.

A generated case holds the rows in the reference's format (tests/reference.py) and how to
type them in Arrow: timestamp unit and zone (or a date column), user id type, breakdown type
and how many record batches to split the table into.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import strategies as st

from reference import EPOCH, instant_ns

UTC = timezone.utc
TIMEZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

# UTC instants near DST changes, week, month, quarter and year boundaries, and the epoch.
ANCHORS = [
    datetime(2025, 3, 9, 7, 0, tzinfo=UTC),      # New York: EST -> EDT
    datetime(2025, 11, 2, 6, 0, tzinfo=UTC),     # New York: EDT -> EST
    datetime(2025, 3, 30, 1, 0, tzinfo=UTC),     # Berlin: CET -> CEST
    datetime(2025, 10, 26, 1, 0, tzinfo=UTC),    # Berlin: CEST -> CET
    datetime(2025, 4, 5, 15, 0, tzinfo=UTC),     # Lord Howe: +11 -> +10:30
    datetime(2025, 10, 4, 15, 30, tzinfo=UTC),   # Lord Howe: +10:30 -> +11
    datetime(2024, 12, 31, 23, 30, tzinfo=UTC),  # year and quarter end
    datetime(2025, 3, 31, 22, 0, tzinfo=UTC),    # quarter end
    datetime(1969, 12, 31, 22, 0, tzinfo=UTC),   # negative epoch values
]

SEGMENT_VALUES = ["ios", "android", "web", "", "Äpp", "b", "a"]
EVENT_NAMES = ["a", "b", "c", "signup"]


@dataclass
class Case:
    rows: list
    tz: str
    week_start: str
    ts_type: str            # "s", "ms", "us", "ns" (with ts_zone), or "date32" / "date64"
    ts_zone: object         # None (naive: a UTC instant) or a zone name for the Arrow type
    user_type: str          # "int64", "int32", "uint64", "string", "large_string", "dict"
    breakdown_type: str     # "string", "large_string", "dict"
    batches: int

    @property
    def zone(self):
        return ZoneInfo(self.tz)


def user_ids(kind):
    if kind in ("int64",):
        return st.one_of(st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, 0, -1]),
                         st.integers(INT64_MIN, INT64_MAX), st.integers(-3, 3))
    if kind == "int32":
        return st.integers(-2**31, 2**31 - 1)
    if kind == "uint64":
        return st.one_of(st.sampled_from([0, 2**64 - 1, 2**63, 2**63 - 1]), st.integers(0, 2**64 - 1))
    return st.one_of(st.sampled_from(["", "0", "u1", "ü", "x" * 40]), st.text(max_size=4))


def _ts_value(ns, ts_type, ts_zone, tz):
    """The reference's form of one instant, as the Arrow column will hold it."""
    if ts_type in ("date32", "date64"):
        return (EPOCH + timedelta(microseconds=ns // 1000)).astimezone(ZoneInfo(tz)).date()
    unit = UNIT_NS[ts_type]
    ns = ns // unit * unit
    if ts_type == "ns":
        return ns
    moment = EPOCH + timedelta(microseconds=ns // 1000)
    if ts_zone is None:
        return moment.replace(tzinfo=None)
    if ts_zone.startswith("+"):
        hours, minutes = ts_zone[1:].split(":")
        return moment.astimezone(timezone(timedelta(hours=int(hours), minutes=int(minutes))))
    return moment.astimezone(ZoneInfo(ts_zone))


@st.composite
def cases(draw, max_rows=30, breakdown=True):
    tz = draw(st.sampled_from(TIMEZONES))
    week_start = draw(st.sampled_from(["monday", "sunday"]))
    ts_type = draw(st.sampled_from(["s", "ms", "us", "ns", "date32", "date64"]))
    ts_zone = draw(st.sampled_from([None, "UTC", "America/New_York", "Asia/Kolkata", "+05:45"]))
    if ts_type.startswith("date"):
        ts_zone = None
    user_type = draw(st.sampled_from(["int64", "int32", "uint64", "string", "large_string", "dict"]))
    breakdown_type = draw(st.sampled_from(["string", "large_string", "dict"]))
    users = draw(st.lists(user_ids(user_type), min_size=1, max_size=6, unique=True))
    anchor = instant_ns(draw(st.sampled_from(ANCHORS)))
    scale = draw(st.sampled_from([60 * 10**9, 3600 * 10**9, 86400 * 10**9, 7 * 86400 * 10**9]))
    steps = st.integers(-30, 30) if scale < 86400 * 10**9 else st.integers(-4, 40)
    jitter = st.one_of(st.just(0), st.integers(0, 86400 * 10**9 - 1), st.integers(0, 2000))
    instants = draw(st.lists(st.builds(lambda k, j: anchor + k * scale + j, steps, jitter),
                             min_size=1, max_size=8))
    n = draw(st.integers(0, max_rows))
    rows = []
    for _ in range(n):
        user = draw(st.one_of(st.sampled_from(users), st.none()) if draw(st.integers(0, 9)) == 0
                    else st.sampled_from(users))
        ns = draw(st.sampled_from(instants))
        ts = None if draw(st.integers(0, 11)) == 0 else _ts_value(ns, ts_type, ts_zone, tz)
        event = draw(st.sampled_from(EVENT_NAMES + [None]))
        row = {"user_id": user, "ts": ts, "event": event}
        if breakdown:
            row["platform"] = draw(st.sampled_from(SEGMENT_VALUES[:4] + [None]))
        rows.append(row)
    batches = draw(st.integers(1, 3))
    return Case(rows, tz, week_start, ts_type, ts_zone, user_type, breakdown_type, batches)


def _ts_arrow(values, ts_type, ts_zone):
    if ts_type == "date32":
        return pa.array(values, pa.date32())
    if ts_type == "date64":
        return pa.array(values, pa.date64())
    unit = UNIT_NS[ts_type]
    ints = []
    for v in values:
        if v is None:
            ints.append(None)
        elif isinstance(v, int):
            ints.append(v // unit)
        else:
            aware = v.replace(tzinfo=UTC) if v.tzinfo is None else v
            ints.append(instant_ns(aware) // unit)
    return pa.array(ints, pa.int64()).cast(pa.timestamp(ts_type, tz=ts_zone))


def _string_arrow(values, kind):
    if kind == "large_string":
        return pa.array(values, pa.large_string())
    if kind == "dict":
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, pa.string())


def _user_arrow(values, kind):
    if kind in ("int64", "int32", "uint64"):
        return pa.array(values, getattr(pa, kind)())
    return _string_arrow(values, kind)


def _batch(rows, case, columns):
    arrays = {"user_id": _user_arrow([r["user_id"] for r in rows], case.user_type),
              "ts": _ts_arrow([r["ts"] for r in rows], case.ts_type, case.ts_zone),
              "event": pa.array([r["event"] for r in rows], pa.string())}
    for name in columns:
        if name not in arrays:
            arrays[name] = _string_arrow([r.get(name) for r in rows], case.breakdown_type)
    return pa.record_batch(list(arrays.values()), names=list(arrays))


def breakdown_columns(case):
    names = []
    for r in case.rows:
        for k in r:
            if k not in ("user_id", "ts", "event") and k not in names:
                names.append(k)
    return names if case.rows else ["platform"]


def to_table(case, batches=None):
    """The case as a pa.Table of `batches` record batches (each built separately, so
    dictionary columns get a dictionary per batch)."""
    batches = case.batches if batches is None else batches
    columns = breakdown_columns(case)
    n = len(case.rows)
    cuts = sorted({0, n} | {n * i // batches for i in range(1, batches)})
    parts = [_batch(case.rows[a:b], case, columns) for a, b in zip(cuts, cuts[1:])]
    if not parts:
        parts = [_batch([], case, columns)]
    return pa.Table.from_batches(parts, parts[0].schema)
