"""Constants of the benchmark's tasks and the canonical form of a result: any engine's
result turned into sorted numpy columns (outside the timing) so that results compare
exactly (``same``) and a difference can be shown (``first_difference``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

WINDOWS = (1, 7, 30)
MAX_OFFSET = 12
EPOCH = dt.date(1970, 1, 1)  # a Thursday: Monday-based weekday of day n is (n + 3) % 7
US_PER_DAY = 86_400_000_000
US_PER_WEEK = 7 * US_PER_DAY
SESSION_GAP_S = 1800
FUNNEL_STEPS = ("view", "add_to_cart", "purchase")
FUNNEL_WINDOW_S = 7 * 86400

def _arrays(rows):
    a = np.array(sorted(rows), dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def _day_numbers(col) -> np.ndarray:
    col = pa.chunked_array([col]) if isinstance(col, pa.Array) else col
    if pa.types.is_date(col.type):
        col = col.cast(pa.date32()).cast(pa.int32())
    return np.asarray(col.to_numpy(), dtype=np.int64)


def _to_arrow(result) -> pa.Table:
    return result if isinstance(result, pa.Table) else result.to_arrow()


def canonical_active_users(result):
    """(window, day number, active users), sorted; from any engine's result."""
    t = _to_arrow(result)
    return _arrays(zip(np.asarray(t["window_days"].to_numpy(), dtype=np.int64).tolist(),
                       _day_numbers(t["day"]).tolist(),
                       np.asarray(t["active_users"].to_numpy(), dtype=np.int64).tolist()))


def canonical_retention(result):
    """(cohort day number, offset, retained users) for the non-zero cells, sorted."""
    t = _to_arrow(result)
    names = t.column_names
    cohort = _day_numbers(t[names[0] if "cohort_start" not in names else "cohort_start"])
    offset = t["period_offset" if "period_offset" in names else names[1]].to_numpy()
    count = t["retained_users" if "retained_users" in names else names[2]].to_numpy()
    keep = np.asarray(count) > 0
    return _arrays(zip(cohort[keep].tolist(), np.asarray(offset)[keep].astype(np.int64).tolist(),
                       np.asarray(count)[keep].astype(np.int64).tolist()))


def _equal(x, y) -> bool:
    if x.dtype.kind == "f" or y.dtype.kind == "f":  # seconds from float averages: a round trip
        return bool(np.allclose(x, y, rtol=1e-9, atol=1e-9))
    return bool(np.array_equal(x, y))


def same(a, b) -> bool:
    return (len(a) == len(b) and (not a or len(a[0]) == len(b[0]))
            and all(_equal(x, y) for x, y in zip(a, b)))


def _num(v):
    return int(v) if float(v).is_integer() else float(v)


def first_difference(a, b) -> str:
    """A short description of where two canonical results differ."""
    if not a or not b or len(a[0]) != len(b[0]):
        sa = set(zip(*(x.tolist() for x in a))) if a else set()
        sb = set(zip(*(x.tolist() for x in b))) if b else set()
        return (f"{len(a[0]) if a else 0} vs {len(b[0]) if b else 0} rows; only in first: "
                f"{sorted(sa - sb)[:3]}; only in second: {sorted(sb - sa)[:3]}")
    for i in range(len(a[0])):
        ra, rb = tuple(_num(x[i]) for x in a), tuple(_num(x[i]) for x in b)
        if not all(_equal(np.array([p]), np.array([q])) for p, q in zip(ra, rb)):
            return f"row {i}: {ra} vs {rb} (key day numbers since 1970-01-01)"
    return "no difference"


# --------------------------------------------------------------------------- canonical forms

def _columns(rows):
    """Sorted rows as numpy columns: int64 for whole numbers, float64 for the rest."""
    rows = sorted(rows)
    if not rows:
        return ()
    cols = list(zip(*rows))
    return tuple(np.array(c, dtype=np.float64 if any(isinstance(v, float) for v in c)
                          else np.int64) for c in cols)


def canonical_sessions(result):
    """(day number, sessions, users, total seconds, median seconds) for days with sessions.
    Engage gives the average duration: total = average * sessions (compared with a relative
    tolerance of 1e-9, the float round trip; counts are compared exactly)."""
    t = _to_arrow(result)
    day = _day_numbers(t["day"])
    n = np.asarray(t["sessions"].to_numpy(zero_copy_only=False), dtype=np.int64)
    users = np.asarray(t["users"].to_numpy(zero_copy_only=False), dtype=np.int64)
    if "avg_session_seconds" in t.column_names:
        avg = t["avg_session_seconds"].fill_null(0).to_numpy()
        total = avg * n
        med = t["median_session_seconds"].fill_null(0).to_numpy()
    else:
        total = np.asarray(t["total_us"].to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6
        med = np.asarray(t["median_us"].to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6
    keep = n > 0
    return _columns(zip(day[keep].tolist(), n[keep].tolist(), users[keep].tolist(),
                        np.asarray(total)[keep].tolist(), np.asarray(med)[keep].tolist()))


def canonical_funnel(result):
    """(period start day number, step, users) for the steps with users (Engage's long table or
    the SQL engines' wide one)."""
    t = _to_arrow(result)
    start = _day_numbers(t["period_start"])
    if "step" in t.column_names:
        rows = zip(start.tolist(), t["step"].to_pylist(), t["users"].to_pylist())
    else:
        rows = [(d, k, n) for k, col in enumerate(("step1", "step2", "step3"), 1)
                for d, n in zip(start.tolist(), t[col].to_pylist())]
    return _arrays([r for r in rows if r[2] > 0])


canonical_retention_rolling = canonical_retention
