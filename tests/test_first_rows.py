"""Each user's first row: the in-order reading of a time-ordered log (two streaming passes,
``_cohorts.first_rows_in_order``) against the general kernel and a plain reference, and the
cases where it must decline and leave the work to the general kernel."""

import numpy as np
import pyarrow as pa
import pytest

import engage_core as ec
from engage_core import _cohorts, _columns
from engage_core import _common as c


def _by_first_appearance(raw: np.ndarray) -> np.ndarray:
    """Dense ids numbered in order of first appearance (as prepare_events numbers users)."""
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first), dtype=np.int32)
    return rank[inverse.reshape(-1)]


def _ordered_log(seed: int, n: int, n_ids: int):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 40, n)).astype(np.int64) * 3_600_000_000  # many ties
    day = (ts // 86_400_000_000).astype(np.int32)
    user = _by_first_appearance(rng.integers(0, n_ids, n))
    return user, ts, day, int(user.max()) + 1 if n else 0


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("seed", range(4))
def test_in_order_matches_general_kernel_and_reference(seed, threads):
    user, ts, day, n_users = _ordered_log(seed, [5_000, 700, 64 * 7, 1][seed], [300, 40, 5, 1][seed])
    got = _cohorts.first_rows_in_order(user, ts, day, 4, n_users, threads)
    assert got is not None
    first_day, first_ts = got
    want_day, want_seg, want_ts = _cohorts.first_rows(user, ts, day, None, None, n_users,
                                                      threads)
    assert (first_day == want_day + 4).all() and (first_ts == want_ts).all()
    assert not want_seg.any()
    for u in range(n_users):
        rows = np.flatnonzero(user == u)
        r = rows[np.argmin(ts[rows])]
        assert (first_ts[u], first_day[u]) == (ts[r], day[r] + 4)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_in_order_declines_what_it_cannot_read(threads):
    user, ts, day, n_users = _ordered_log(9, 3_000, 200)
    n = len(user)
    # a timestamp smaller than the one before it, anywhere (here at each range's start)
    for at in sorted({1, n // 2, n // 3, 2 * n // 3, n - 1}):
        back = ts.copy()
        back[at] = back[at - 1] - 1
        assert _cohorts.first_rows_in_order(user, back, day, 0, n_users, threads) is None
    # a user numbered out of turn: 5 and 6 swapped, so 6 first appears before 5
    swapped = user.copy()
    five, six = swapped == 5, swapped == 6
    swapped[five], swapped[six] = 6, 5
    assert _cohorts.first_rows_in_order(swapped, ts, day, 0, n_users, threads) is None
    # users without rows (numbered, their rows dropped)
    assert _cohorts.first_rows_in_order(user, ts, day, 0, n_users + 3, threads) is None
    gone = user != n_users - 1
    assert _cohorts.first_rows_in_order(user[gone], ts[gone], day[gone], 0, n_users,
                                        threads) is None
    # and the log still read in order is accepted
    assert _cohorts.first_rows_in_order(user, ts, day, 0, n_users, threads) is not None


def test_in_order_on_an_empty_log():
    e32, e64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
    got = _cohorts.first_rows_in_order(e32, e64, e32, 0, 0, 2)
    assert got is not None and len(got[0]) == 0 and len(got[1]) == 0
    assert _cohorts.first_rows_in_order(e32, e64, e32, 0, 1, 2) is None


@pytest.mark.parametrize("threads", [1, 2])
def test_prepared_log_in_time_order_and_shuffled_agree(threads):
    """``_common.first_rows`` on prepared events: a log in time order (read in order) and
    the same log shuffled (the general kernel) give every user the same first row."""
    rng = np.random.default_rng(3)
    n = 4_000
    ts = np.sort(rng.integers(1_735_689_600, 1_735_689_600 + 40 * 86_400, n)) * 1_000_000
    ids = rng.integers(0, 2**63 - 1, 500)[rng.integers(0, 500, n)]
    table = pa.table({"user_id": ids, "ts": pa.array(ts, pa.timestamp("us"))})
    cal = ec.Calendar(timezone="America/New_York")
    per_order = []
    for t in (table, table.take(rng.permutation(n))):
        ev = ec.prepare_events(t, event=None, calendar=cal, threads=threads)
        first = ev.first_day_number
        d, s, f = c.first_rows(ev, first, None, None, threads)
        assert not s.any()
        per_order.append((ev, d, f))
    (ev_a, d_a, f_a), (ev_b, d_b, f_b) = per_order
    assert _cohorts.first_rows_in_order(ev_a.user, ev_a.ts, ev_a.day, 0, ev_a.num_users,
                                        threads) is not None
    assert _cohorts.first_rows_in_order(ev_b.user, ev_b.ts, ev_b.day, 0, ev_b.num_users,
                                        threads) is None
    # the same users under the two numberings: compare by each user's id
    by_id_a = dict(zip(ev_a.user_ids().to_pylist(), zip(d_a.tolist(), f_a.tolist())))
    by_id_b = dict(zip(ev_b.user_ids().to_pylist(), zip(d_b.tolist(), f_b.tolist())))
    assert by_id_a == by_id_b and len(by_id_a) == len(set(ids.tolist()))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_days_of_sorted_equal_actor_days(threads):
    """Each user's distinct days read off their rows sorted by day (_grouped.days_of_sorted)
    equal _activity.actor_days, users without rows included."""
    from engage_core import _activity, _grouped

    rng = np.random.default_rng(30 + threads)
    n, n_users, n_days = 20_000, 700, 90
    user = rng.integers(0, n_users - 5, n).astype(np.int32)  # the last users have no row
    day = rng.integers(0, n_days, n).astype(np.int32)
    order = np.lexsort((day, user))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=n_users))])
    got = _grouped.days_of_sorted(offsets.astype(np.int64), day[order], threads)
    want = _activity.actor_days(user, day, None, n_users, n_days, threads, 0)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    empty = _grouped.days_of_sorted(np.zeros(4, np.int64), np.zeros(0, np.int32), threads)
    assert empty[0].tolist() == [0, 0, 0, 0] and len(empty[1]) == 0


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_metrics_read_off_the_planned_user_order_are_the_same(shuffle, threads, monkeypatch):
    """With plan_user_order (a run that sorts every row by user), the users' days and first
    rows are read off that order, and funnels split it by step instead of sorting again:
    stickiness, lifecycle, first week, rolling retention and funnels (with a breakdown
    too) equal those of events without the plan, bit for bit, and the order is made once."""
    rng = np.random.default_rng(5)
    n = 6_000
    ts = np.sort(rng.integers(1_735_689_600, 1_735_689_600 + 70 * 86_400, n)) * 1_000_000
    table = pa.table({"user_id": rng.integers(0, 400, n) * 7_777_777_777,
                      "ts": pa.array(ts, pa.timestamp("us")),
                      "event": rng.choice(["view", "buy", "open"], n),
                      "platform": rng.choice(["ios", "web"], n)})
    if shuffle:
        table = table.take(rng.permutation(n))
    cal = ec.Calendar(timezone="America/New_York")

    def run(plan):
        ev = ec.prepare_events(table, calendar=cal, threads=threads, breakdowns=["platform"])
        if plan:
            ec.plan_user_order(ev)
        out = [ec.stickiness(ev, period="week"), ec.lifecycle(ev), ec.first_week(ev),
               ec.retention(ev, window="rolling", max_offset=5),
               ec.funnel(ev, name="f", steps=["view", "buy", "view"], conversion_window=86400),
               ec.funnel(ev, name="g", steps=["buy", "view"], breakdown="platform"),
               ec.sessions(ev)]
        return out, ev

    plain, ev_plain = run(False)
    from engage_core import _activity

    def refuse(*a, **k):
        raise AssertionError("a pass over the rows the users' order serves")

    from engage_core import _funnels

    for mod, name in ((_cohorts, "first_rows"), (_cohorts, "first_rows_in_order"),
                      (_activity, "actor_days"), (_funnels, "slot_keys")):
        monkeypatch.setattr(mod, name, refuse)
    planned, ev_planned = run(True)
    for a, b in zip(plain, planned):
        assert a.equals(b)
    # the plan made the order before sessions needed it, and only once
    assert len(ev_planned.__dict__["_user_order"]) == 1
    assert ("user", ev_planned.first_day_number, None) in ev_planned.__dict__["_days_cache"]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_in_order_reads_timestamps_in_chunks_as_one_array(threads):
    """The prepared timestamp chunks (not joined) give what the joined array gives, with
    chunk ends anywhere (a thread's first row at a chunk start, one-row chunks), and a
    step back in time across a chunk end is still seen."""
    user, ts, day, n_users = _ordered_log(5, 2_000, 150)
    rng = np.random.default_rng(threads)
    want = _cohorts.first_rows_in_order(user, ts, day, 2, n_users, threads)
    for cuts in ([], [1], [len(ts) // 2], sorted(rng.choice(len(ts), 30, replace=False))):
        edges = [0, *cuts, len(ts)]
        chunks = _columns.Int64Chunks([ts[a:b] for a, b in zip(edges, edges[1:])])
        got = _cohorts.first_rows_in_order(user, chunks, day, 2, n_users, threads)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    back = ts.copy()
    back[1000] = back[999] - 1
    chunks = _columns.Int64Chunks([back[:1000], back[1000:]])
    assert _cohorts.first_rows_in_order(user, chunks, day, 0, n_users, threads) is None
