"""``Int64Index.encode_parts``: a large first batch of spread-out int64 keys numbered by
all threads over a table cut into regions (``engage_core/_idpart.h``), against numpy's
first-appearance order and against the row-by-row ``encode``."""

import numpy as np
import pyarrow as pa
import pytest

from engage_core import _ingest

M64 = (1 << 64) - 1
C1, C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix(x: int) -> int:  # _hash.pxd's mix64, the table's home slots
    x ^= x >> 30
    x = x * C1 & M64
    x ^= x >> 27
    x = x * C2 & M64
    return x ^ (x >> 31)


def unmix(h: int) -> int:
    """The key whose hash is ``h`` (mix64 is a bijection), as a signed int64."""
    h ^= (h >> 31) ^ (h >> 62)
    h = h * pow(C2, -1, 1 << 64) & M64
    h ^= (h >> 27) ^ (h >> 54)
    h = h * pow(C1, -1, 1 << 64) & M64
    h ^= (h >> 30) ^ (h >> 60)
    return h - (1 << 64) if h >> 63 else h


def first_appearance_ids(keys: np.ndarray) -> np.ndarray:
    """Plain numpy: each key's id is the rank of its first row among the first rows."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.ravel()].astype(np.int32)


def cut(keys: np.ndarray, rng) -> list:
    """The keys in chunks of random sizes, some empty, as a table's column comes."""
    edges = np.sort(rng.integers(0, len(keys), 12))
    return [keys[a:b] for a, b in zip([0, *edges], [*edges, len(keys)])]


def check(keys: np.ndarray, parts: list, threads: int) -> _ingest.Int64Index:
    idx = _ingest.Int64Index(1 << 16)
    ids = idx.encode_parts(parts, threads, (int(keys.min()), int(keys.max())))
    want = first_appearance_ids(keys)
    assert np.array_equal(ids, want)
    assert len(idx) == int(want.max()) + 1
    assert np.array_equal(idx.keys()[ids], keys)
    # the table serves later batches: known keys keep their ids, new ones come after
    more = np.concatenate([keys[::97], np.array([12345, -7], dtype=np.int64)])
    fresh = ~np.isin(more[-2:], keys)
    later = idx.encode(more)
    assert np.array_equal(later[:-2], ids[::97])
    assert sorted(later[-2:][fresh].tolist()) == list(range(len(idx) - int(fresh.sum()), len(idx)))
    return idx


@pytest.mark.parametrize("threads", [2, 3])
def test_spread_out_keys_get_first_appearance_ids_in_chunks(threads):
    rng = np.random.default_rng(threads)
    distinct = rng.integers(-(2**63), 2**63 - 1, 150_000, dtype=np.int64)
    keys = distinct[rng.integers(0, len(distinct), 1_200_000)]
    check(keys, cut(keys, rng), threads)


def test_runs_past_a_region_end_and_past_the_table_end():
    # keys whose home slots are the last slots of regions (and of the table) make runs of
    # full slots that cross into the next region (or wrap to slot 0): those records are
    # probed after the regions, over the whole table
    rng = np.random.default_rng(7)
    base = rng.integers(-(2**63), 2**63 - 1, 120_000, dtype=np.int64)
    cap = 1 << 18  # the table the estimate gives for about 120k keys: regions of 8192 slots
    crowded = [unmix((int(rng.integers(1, 1 << 40)) << 24) | (region * 8192 - 1 - j % 3) % cap)
               for region in (1, 5, cap // 8192) for j in range(40)]
    distinct = np.concatenate([base, np.array(crowded, dtype=np.int64)])
    keys = distinct[rng.integers(0, len(distinct), 1_100_000)]
    keys[:len(crowded)] = crowded  # every crowded key seen
    for threads in (2, 3):
        check(keys, cut(keys, rng), threads)


def test_more_keys_than_the_estimate_fall_back_to_row_by_row():
    # hashes that share their top 24 bits in 40k patterns fool the distinct-count estimate
    # (it reads those bits): the keys overfill the table sized from it
    rng = np.random.default_rng(11)
    tops = rng.integers(0, 1 << 24, 40_000)
    distinct = np.array([unmix((int(tops[i % 40_000]) << 40) | int(rng.integers(0, 1 << 40)))
                         for i in range(200_000)], dtype=np.int64)
    keys = distinct[rng.integers(0, len(distinct), 1_100_000)]
    idx = check(keys, [keys], 2)
    assert len(idx) > 100_000


def test_one_thread_and_narrow_keys_take_the_row_by_row_path():
    rng = np.random.default_rng(13)
    keys = rng.integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64)[rng.integers(0, 50_000, 1_100_000)]
    check(keys, cut(keys, rng), 1)
    narrow = rng.integers(10, 500_000, 1_100_000).astype(np.int64)  # a direct table
    check(narrow, cut(narrow, rng), 2)


def test_prepare_events_numbers_a_chunked_table_of_spread_out_ids_alike_on_any_threads():
    import datetime as dt

    import engage_core as ec

    rng = np.random.default_rng(17)
    distinct = rng.integers(-(2**63), 2**63 - 1, 100_000, dtype=np.int64)
    keys = distinct[rng.integers(0, len(distinct), 1_100_000)]
    ts = (np.datetime64(dt.datetime(2025, 3, 1), "us")
          + rng.integers(0, 40 * 86_400_000_000, len(keys)).astype("timedelta64[us]"))
    parts = cut(keys, rng)
    edges = np.cumsum([0] + [len(p) for p in parts])
    table = pa.Table.from_batches([
        pa.record_batch({"user_id": pa.array(p), "ts": pa.array(ts[a:a + len(p)])})
        for p, a in zip(parts, edges) if len(p)])
    got = [ec.prepare_events(table, event=None, threads=t) for t in (1, 2, 3)]
    assert np.array_equal(got[0].user, first_appearance_ids(keys))
    for ev in got[1:]:
        assert np.array_equal(ev.user, got[0].user)
        assert ec.active_users(ev, windows=[1, 7]).equals(ec.active_users(got[0], windows=[1, 7]))


@pytest.mark.parametrize("kind", ["int", "narrow", "bytes"])
def test_an_index_whose_table_was_released_encodes_on_with_the_same_ids(kind):
    # prepare_events frees the user index's hash table at its end (no more lookups); keys
    # by id stay, and a later encode rebuilds the table: the same ids, new keys after
    from engage_core import _bytes_index, arrow_io

    rng = np.random.default_rng(19)
    if kind == "bytes":
        values = [f"user-{v}" for v in rng.integers(0, 5000, 40_000)]
        more_values = values[::7] + ["late-1", values[3], "late-2"]
        index = _bytes_index.BytesIndex(16)

        def encode(vals):
            return arrow_io.encode_bytes(pa.array(vals, pa.string()), index, 2)
        first, later = values, more_values
    else:
        span = 2**62 if kind == "int" else 9000
        distinct = rng.integers(0, span, 5000, dtype=np.int64)
        first = distinct[rng.integers(0, 5000, 40_000)]
        later = np.concatenate([first[::7], np.array([span + 5, int(first[3]), span + 9])])
        index = _ingest.Int64Index(16)

        def encode(vals):
            return index.encode(np.asarray(vals, dtype=np.int64), None, 2)
    ids = encode(first)
    n = len(index)
    index.release_table()
    index.release_table()  # twice: no harm
    again = encode(later)
    assert np.array_equal(again[:-3], ids[::7])
    assert again[-3:].tolist() == [n, ids[3], n + 1] and len(index) == n + 2


def test_prepare_events_releases_the_user_table_and_still_names_the_users():
    import engage_core as ec

    keys = np.array([2**61 + 3, -5, 2**61 + 3, 7 * 2**50], dtype=np.int64)
    table = pa.table({"user_id": keys, "ts": pa.array(np.arange(4) * 86_400_000_000,
                                                       pa.timestamp("us"))})
    ev = ec.prepare_events(table, event=None)
    assert ev.user.tolist() == [0, 1, 0, 2]
    assert ev.user_ids().to_pylist() == [2**61 + 3, -5, 7 * 2**50]
    text = ec.prepare_events(pa.table({"user_id": ["b", "a", "b"], "ts": table["ts"][:3]}),
                             event=None)
    assert text.user_ids().to_pylist() == ["b", "a"]
