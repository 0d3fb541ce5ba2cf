"""Every metric table is the same, bit for bit, whatever the order of the input rows: an
incremental run reads the events back from the store in another order than the source gave
them, and its tables must equal a full run's (METRICS.md section 5)."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engage_plugin.compute import compute_metrics, prepare
from engage_plugin.config import load_pipeline
from engage_plugin.sources import check_schema
from engage_plugin.targets import PRIMARY_KEYS

from incremental_fixtures import event_log, write_pipeline


def _tables(config, table):
    roles = check_schema(config, table.schema)
    ev = prepare(config, table, roles)
    out = compute_metrics(config, ev, None, lambda name: contextlib.nullcontext(), rejected=[])
    return {k: v.sort_by([(c, "ascending") for c in PRIMARY_KEYS[k]]) for k, v in out.items()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("order")
    config = load_pipeline(write_pipeline(folder, "duckdb:///x.duckdb"))
    table = event_log(seed=11, n_users=60)
    return config, table, _tables(config, table)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), string_ids=st.booleans())
def test_shuffled_rows_give_identical_tables(setup, seed, string_ids):
    config, table, want = setup
    if string_ids:
        table = table.set_column(0, "user_id", table["user_id"].cast("string"))
        want = _tables(config, table)
    got = _tables(config, table.take(np.random.default_rng(seed).permutation(table.num_rows)))
    assert set(got) == set(want) and len(want) == 16
    for name in want:
        # fractional revenue and weights: sums must not depend on the order of the terms
        assert got[name].equals(want[name]), name


def test_each_metric_alone_equals_the_metric_in_a_run(setup):
    """A run's metrics share passes kept on the prepared events (the users' time order,
    event masks, row periods): each metric computed on freshly prepared events, with nothing
    shared, gives the same table bit for bit."""
    config, table, want = setup
    roles = check_schema(config, table.schema)
    for family in config.metrics:
        alone = dataclasses.replace(config, metrics={family: config.metrics[family]})
        ev = prepare(alone, table, roles)
        got = compute_metrics(alone, ev, None, lambda name: contextlib.nullcontext(), rejected=[])
        assert got, family
        for name, t in got.items():
            assert t.sort_by([(c, "ascending") for c in PRIMARY_KEYS[name]]).equals(want[name]), \
                (family, name)


@pytest.mark.parametrize("names", [["view", "purchase"], ["view", "add_to_cart", "purchase"]])
def test_event_filters_read_off_the_kept_order_equal_a_fresh_sort(names):
    """An event filter selects from the kept order by the event
    codes sorted with it, and event codes asked for as values come from them too."""
    import engage_core as ec
    from engage_core import _common as c

    table = event_log(seed=7, n_users=40)
    shared, fresh = (ec.prepare_events(table, event="event") for _ in range(2))
    first, n_days = c.day_range(shared, None)
    pm = c.periods(shared, "week", first, n_days)
    c.sorted_records(shared, shared.user, shared.num_users, None, first, nthreads=2)
    mask = shared.event_mask(names)
    assert shared.mask_lut(mask) is not None and shared.mask_lut(mask.copy()) is None
    got = c.sorted_records(shared, shared.user, shared.num_users, mask, first,
                           c.period_of_rows(shared, pm, first), shared.event, None, 2)
    want = c.sorted_records(fresh, fresh.user, fresh.num_users, fresh.event_mask(names), first,
                            c.period_of_rows(fresh, pm, first), fresh.event, None, 1)
    for a, b in zip(got, want):
        assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("keep", [0.1, 0.6, 1.0])
def test_sorted_records_filtered_from_the_kept_order_equal_a_fresh_sort(keep):
    """Once all rows have been sorted by user and time, a masked selection is that order
    filtered (when it keeps over a quarter of the rows): the same rows, days, times and
    periods as sorting the selection on fresh events."""
    import engage_core as ec
    from engage_core import _common as c

    table = event_log(seed=5, n_users=40)
    mask = (np.random.default_rng(1).random(table.num_rows) < keep).astype(np.uint8)
    shared, fresh = (ec.prepare_events(table, event="event") for _ in range(2))
    first, n_days = c.day_range(shared, None)
    pm = c.periods(shared, "week", first, n_days)
    c.sorted_records(shared, shared.user, shared.num_users, None, first, nthreads=2)
    assert first in shared._user_order
    value = np.arange(table.num_rows, dtype=np.float64)
    got = c.sorted_records(shared, shared.user, shared.num_users, mask, first,
                           c.period_of_rows(shared, pm, first), value, mask, 2)
    want = c.sorted_records(fresh, fresh.user, fresh.num_users, mask, first,
                            c.period_of_rows(fresh, pm, first), value, mask, 1)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


def test_few_selected_rows_sorted_on_their_own_give_identical_tables(setup, monkeypatch):
    """A selection of under an eighth of the rows (orders, survey answers, ...) is listed
    and sorted on its own (_common.FEW_ROWS): every table equals the one from sorting all
    rows with the mask, bit for bit (here on a small log: the threshold of rows lowered)."""
    from engage_core import _common

    config, table, want = setup
    monkeypatch.setattr(_common, "FEW_ROWS_FROM", 0)
    got = _tables(config, table)
    assert set(got) == set(want)
    for name in want:
        assert got[name].equals(want[name]), name


@pytest.mark.parametrize("copies,first,payload", [(True, True, False), (True, True, True),
                                                  (False, True, False), (False, False, False),
                                                  (True, False, True)])
def test_sorted_rows_of_a_few_rows_equal_the_masked_sort(monkeypatch, copies, first, payload):
    import pyarrow as pa

    import engage_core as ec
    from engage_core import _common

    rng = np.random.default_rng(5)
    n = 5000
    t = pa.table({"user_id": rng.integers(0, 300, n),
                  "ts": pa.array(np.sort(rng.integers(0, 40 * 86_400_000_000, n)) +
                                 1_700_000_000_000_000, pa.timestamp("us")),
                  "event": rng.choice(["a", "b", "c"], n)})
    t = pa.concat_tables([t.slice(0, 1700), t.slice(1700, 2000), t.slice(3700)])  # 3 chunks
    ev = ec.prepare_events(t, threads=2)
    mask = (rng.random(ev.num_rows) < 0.05).astype(np.uint8)
    args = (ev, ev.user, ev.num_users, mask, 2, ev.first_day_number if first else None)
    kw = {"copies": copies, "payload": ev.event if payload else None}
    want = _common.sorted_rows(*args, **kw)
    monkeypatch.setattr(_common, "FEW_ROWS_FROM", 0)
    got = _common.sorted_rows(*args, **kw)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)
