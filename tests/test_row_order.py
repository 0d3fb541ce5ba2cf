"""Every metric table is the same, bit for bit, whatever the order of the input rows: an
incremental run reads the events back from the store in another order than the source gave
them, and its tables must equal a full run's (METRICS.md section 5)."""

from __future__ import annotations

import contextlib

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
