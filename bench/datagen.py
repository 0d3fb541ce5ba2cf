"""Synthetic event logs for the benchmark, generated with numpy and cached as Parquet under
``bench/data/`` (gitignored).

A log has ``n_events`` rows over ``n_users`` users and ``days`` days ending 2025-06-29
(UTC, naive timestamps, which the engine reads as UTC instants). Users arrive over the
period (more later), their activity is skewed (a few heavy users, many light ones) and
decays with age, so retention curves and active-user series look like a real product's.

User ids come in three kinds:

- ``int``: dense-ish int64 ids (a random subset of 1..1.3 * n_users);
- ``sparse``: random 64-bit ints spread over the whole int64 range;
- ``uuid``: UUID4-like 36-character strings.

Events come in sessions of a few events minutes apart (sessions hours apart), and each has
an ``event`` name (dictionary-encoded): view 60%, add_to_cart 25%, purchase 10%, app_open 5%.
``GENERATOR_VERSION`` is part of the cache file name, so a changed generator never reuses an
older cached file.

Rows are time-ordered (``order="time"``, like an append-only log) or ``"shuffled"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
END = dt.date(2025, 6, 29)  # a Sunday, so the last Monday week is complete
US_PER_DAY = 86_400_000_000
ID_KINDS = ("int", "sparse", "uuid")
ORDERS = ("time", "shuffled")
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """n distinct-with-overwhelming-probability UUID4 strings, built without a Python loop."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # variant
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = HEX[raw >> 4]
    hexed[:, 1::2] = HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = {0: 8, 9: 4, 14: 4, 19: 4, 24: 12}[dst]
        out[:, dst:dst + width] = hexed[:, src:src + width]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(out.tobytes())])


def user_ids(kind: str, n_users: int, seed: int = 1) -> pa.Array:
    """The n_users distinct ids of a kind (index = dense user number used by ``generate``)."""
    rng = np.random.default_rng(seed + 1000)
    if kind == "int":
        return pa.array(np.sort(rng.choice(int(n_users * 1.3), size=n_users, replace=False))
                        .astype(np.int64) + 1)
    if kind == "sparse":
        ids = np.unique(rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max,
                                     size=int(n_users * 1.01) + 16, dtype=np.int64))
        return pa.array(rng.permutation(ids)[:n_users])
    if kind == "uuid":
        return _uuids(rng, n_users)
    raise ValueError(f"id kind: expected one of {ID_KINDS}, found {kind!r}")


EVENT_NAMES = ("app_open", "view", "add_to_cart", "purchase")
EVENT_P = (0.05, 0.60, 0.25, 0.10)
SESSION_EVENTS = 4.0  # mean events per session (geometric, >= 1)
GAP_SHORT_S = 120.0  # mean gap between a session's events (exponential)
GAP_LONG_S = 2400.0  # ... except 3% of gaps, which are longer (some split the session)
GAP_LONG_SHARE = 0.03
# Bump when the generated data changes, so that cached files of an older generator are
# never reused (the version is part of the cache file name).
GENERATOR_VERSION = 2


def generate(n_events: int = 10_000_000, n_users: int = 1_000_000, days: int = 180,
             ids: str = "int", order: str = "time", seed: int = 1) -> pa.Table:
    """An event log ``(user_id, ts, event)``: see the module docstring."""
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, found {order!r}")
    rng = np.random.default_rng(seed)
    start = (END - dt.timedelta(days=days - 1) - dt.date(1970, 1, 1)).days
    # Arrival day: growing over the period.
    arrival = np.floor(days * np.sqrt(rng.random(n_users))).astype(np.int64)
    # Activity weight: heavy-tailed; a user's events decay with a personal lifetime.
    weight = rng.lognormal(0.0, 1.2, n_users)
    life = rng.exponential(np.where(rng.random(n_users) < 0.5, 6.0, 60.0))
    weight *= np.minimum(days - arrival, 2.0 * life + 1.0)  # events scale with time alive
    # Sessions: a geometric number of events each, cut so that the total is n_events.
    length = rng.geometric(1.0 / SESSION_EVENTS, int(n_events / SESSION_EVENTS * 1.2) + n_users + 64)
    ends = np.cumsum(length)
    n_sess = int(np.searchsorted(ends, n_events)) + 1
    length = length[:n_sess]
    length[-1] -= int(ends[n_sess - 1]) - n_events
    user = np.searchsorted(np.cumsum(weight / weight.sum()), rng.random(n_sess))
    user = np.minimum(user, n_users - 1)
    # Every user has at least one session: give the first sessions one user each.
    first = min(n_users, n_sess)
    user[:first] = rng.permutation(n_users)[:first]
    age = np.floor(rng.exponential(life[user])).astype(np.int64)
    span = days - arrival[user]
    age = np.where(age < span, age, age % span)  # fold into the period
    age[:first] = 0  # the guaranteed session is on the arrival day
    day = start + arrival[user] + age
    # Time of day: mostly around 14:00 UTC, some uniform over the day.
    tod = np.where(rng.random(n_sess) < 0.7, rng.normal(14 * 3600.0, 4 * 3600.0, n_sess),
                   rng.uniform(0, 86400.0, n_sess)) % 86400.0
    # Events of a session: gaps of minutes (a few longer ones).
    sid = np.repeat(np.arange(n_sess), length)
    gap = np.where(rng.random(n_events) < GAP_LONG_SHARE, rng.exponential(GAP_LONG_S, n_events),
                   rng.exponential(GAP_SHORT_S, n_events))
    gap = np.round(gap * 1e6).astype(np.int64)
    first_row = np.concatenate([[0], np.cumsum(length)[:-1]])
    gap[first_row] = 0
    within = np.cumsum(gap)
    within -= within[first_row][sid]
    # A session may run past midnight (the sessions metric splits it), but not past the last day.
    sess_start = np.round(tod * 1e6).astype(np.int64)
    last = day == start + days - 1
    sess_span = within[first_row + length - 1]
    sess_start = np.where(last, np.maximum(0, np.minimum(sess_start, US_PER_DAY - 1 - sess_span)),
                          sess_start)
    ts = (day * US_PER_DAY + sess_start)[sid] + within
    user = user[sid]
    event = rng.choice(len(EVENT_NAMES), size=n_events, p=EVENT_P).astype(np.int8)
    if order == "time":
        perm = np.argsort(ts, kind="stable")
    else:
        perm = rng.permutation(n_events)
    user, ts, event = user[perm], ts[perm], event[perm]
    return pa.table({
        "user_id": user_ids(ids, n_users, seed).take(pa.array(user)),
        "ts": pa.array(ts, type=pa.timestamp("us")),
        "event": pa.DictionaryArray.from_arrays(pa.array(event), pa.array(EVENT_NAMES)),
    })


def edge_cases(n_events: int = 3000, n_users: int = 30, days: int = 22, seed: int = 7,
               grid_s: int = 600) -> pa.Table:
    """A small log for the self-check that hits the edge cases of sessions and funnels: few
    users with many events on a coarse time grid (``grid_s`` seconds), so that events share
    timestamps, gaps equal the 30-minute session gap, step events fall exactly on the 7-day
    funnel window, and sessions straddle midnight and week boundaries."""
    rng = np.random.default_rng(seed)
    start = (END - dt.timedelta(days=days - 1) - dt.date(1970, 1, 1)).days
    user = rng.integers(0, n_users, n_events)
    # bursts: each user's events around a few centres, on the grid
    centre = rng.integers(0, days * 86400 // grid_s, (n_users, 8))
    slot = centre[user, rng.integers(0, 8, n_events)] + rng.integers(-6, 7, n_events)
    slot = np.clip(slot, 0, days * 86400 // grid_s - 1)
    ts = start * US_PER_DAY + slot.astype(np.int64) * grid_s * 1_000_000
    event = rng.choice(len(EVENT_NAMES), size=n_events, p=(0.1, 0.4, 0.3, 0.2)).astype(np.int8)
    perm = rng.permutation(n_events)
    return pa.table({
        "user_id": pa.array(user[perm] + 1, type=pa.int64()),
        "ts": pa.array(ts[perm], type=pa.timestamp("us")),
        "event": pa.DictionaryArray.from_arrays(pa.array(event[perm]), pa.array(EVENT_NAMES)),
    })


def cached_path(n_events: int = 10_000_000, n_users: int = 1_000_000, days: int = 180,
                ids: str = "int", order: str = "time", seed: int = 1) -> str:
    """Where ``cached`` keeps a log."""
    name = f"events_v{GENERATOR_VERSION}_n{n_events}_u{n_users}_d{days}_{ids}_{order}_s{seed}.parquet"
    return os.path.join(DATA_DIR, name)


def cached(n_events: int = 10_000_000, n_users: int = 1_000_000, days: int = 180,
           ids: str = "int", order: str = "time", seed: int = 1, log=print) -> str:
    """The Parquet path of a log, generating and writing it on first use."""
    path = cached_path(n_events, n_users, days, ids, order, seed)
    name = os.path.basename(path)
    if not os.path.exists(path):
        os.makedirs(DATA_DIR, exist_ok=True)
        t0 = time.perf_counter()
        table = generate(n_events, n_users, days, ids, order, seed)
        tmp = path + ".tmp"
        pq.write_table(table, tmp, row_group_size=1 << 20)
        os.replace(tmp, path)
        log(f"generated {name} in {time.perf_counter() - t0:.1f} s")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=None, help="default: events / 10")
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--ids", choices=ID_KINDS, default="int")
    p.add_argument("--order", choices=ORDERS, default="time")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    print(cached(a.events, a.users or max(1, a.events // 10), a.days, a.ids, a.order, a.seed))


if __name__ == "__main__":
    main()
