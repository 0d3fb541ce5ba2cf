"""Pure-Python references of the benchmark's tasks, straight from the definitions (small
logs only): the self-check compares every engine with them."""

from __future__ import annotations

import bisect
from collections import defaultdict

import pyarrow as pa

from canon import (FUNNEL_STEPS, FUNNEL_WINDOW_S, MAX_OFFSET, SESSION_GAP_S, US_PER_DAY,
                   US_PER_WEEK, WINDOWS, _arrays, _columns)


def _days_and_users(table: pa.Table):
    ts = table["ts"].cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    return table["user_id"].to_pylist(), (ts // 86_400_000_000).tolist()


def reference_active_users(table: pa.Table):
    """Pure Python, straight from the definition (small inputs only)."""
    users, days = _days_and_users(table)
    by_day = defaultdict(set)
    for u, d in zip(users, days):
        by_day[d].add(u)
    lo, hi = min(days), max(days)
    rows = []
    for w in WINDOWS:
        for d in range(lo, hi + 1):
            rows.append((w, d, len(set().union(*(by_day.get(x, ()) for x in range(d - w + 1, d + 1))))))
    return _arrays(rows)


def reference_retention(table: pa.Table):
    users, days = _days_and_users(table)
    weeks = defaultdict(set)
    for u, d in zip(users, days):
        weeks[u].add(d - (d + 3) % 7)
    cells = defaultdict(int)
    for wks in weeks.values():
        c = min(wks)
        for wk in wks:
            if (wk - c) // 7 <= MAX_OFFSET:
                cells[(c, (wk - c) // 7)] += 1
    return _arrays([(c, k, n) for (c, k), n in cells.items()])


def _rows_us(table: pa.Table):
    ts = table["ts"].cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
    ev = table["event"].cast(pa.string()).to_pylist() if "event" in table.column_names else None
    return table["user_id"].to_pylist(), ts, ev


def reference_sessions(table: pa.Table):
    """Per UTC day: sessions, users, total and median duration (seconds), from the definition."""
    users, ts, _ = _rows_us(table)
    by_ud = defaultdict(list)
    for u, t in zip(users, ts):
        by_ud[(u, t // US_PER_DAY)].append(t)
    durs, us = defaultdict(list), defaultdict(set)
    for (u, d), tt in by_ud.items():
        tt.sort()
        begin = tt[0]
        for prev, t in zip(tt, tt[1:]):
            if t - prev > SESSION_GAP_S * 1_000_000:
                durs[d].append(prev - begin)
                begin = t
        durs[d].append(tt[-1] - begin)
        us[d].add(u)
    rows = []
    for d in sorted(durs):
        x = sorted(durs[d])
        n = len(x)
        med = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2
        rows.append((d, n, len(us[d]), sum(x) / 1e6, med / 1e6))
    return _columns(rows)


def reference_funnel(table: pa.Table):
    """Per Monday week of entry and step k: users reaching step k (best over their step-1
    events of the week), by a brute-force search over distinct events with non-decreasing
    timestamps (general: repeated step names would be handled too)."""
    users, ts, names = _rows_us(table)
    w = FUNNEL_WINDOW_S * 1_000_000
    per_user = defaultdict(list)
    for i, (u, t, e) in enumerate(zip(users, ts, names)):
        if e in FUNNEL_STEPS:
            per_user[u].append((t, i, e))

    def reach(evs, k, t1, prev, used):
        if k == len(FUNNEL_STEPS):
            return k
        best = k
        for t, i, e in evs:
            if e == FUNNEL_STEPS[k] and i not in used and prev <= t <= t1 + w:
                best = max(best, reach(evs, k + 1, t1, t, used | {i}))
                if best == len(FUNNEL_STEPS):
                    break
        return best

    best = {}
    for u, evs_all in per_user.items():
        evs_all.sort()
        times = [t for t, _, _ in evs_all]
        for j, (t1, i, e) in enumerate(evs_all):
            if e != FUNNEL_STEPS[0]:
                continue
            # every candidate has t1 <= t <= t1 + window (equal times: any order)
            evs = evs_all[bisect.bisect_left(times, t1):bisect.bisect_right(times, t1 + w)]
            d = t1 // US_PER_DAY
            key = (u, d - (d + 3) % 7)
            if best.get(key, 0) < len(FUNNEL_STEPS):
                best[key] = max(best.get(key, 0), reach(evs, 1, t1, t1, {i}))
    cells = defaultdict(int)
    for (u, wk), st in best.items():
        for k in range(1, st + 1):
            cells[(wk, k)] += 1
    return _arrays([(wk, k, n) for (wk, k), n in cells.items()])


def reference_retention_rolling(table: pa.Table):
    users, ts, _ = _rows_us(table)
    t0 = {}
    for u, t in zip(users, ts):
        t0[u] = min(t0.get(u, t), t)
    seen = set()
    for u, t in zip(users, ts):
        k = (t - t0[u]) // US_PER_WEEK
        if k <= MAX_OFFSET:
            seen.add((u, k))
    cells = defaultdict(int)
    for u, k in seen:
        d = t0[u] // US_PER_DAY
        cells[(d - (d + 3) % 7, k)] += 1
    return _arrays([(c, k, n) for (c, k), n in cells.items()])


