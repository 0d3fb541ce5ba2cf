"""prepare_events: every input type METRICS.md section 1 accepts, null handling, local days
and clear schema errors."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engage_core as ec
from engage_core import arrow_io
from engage_core.calendar import Calendar

UTC = dt.timezone.utc
BASE = [dt.datetime(2025, 3, 1, 12, tzinfo=UTC) + dt.timedelta(hours=13 * i) for i in range(6)]


def _table(ids, id_type):
    return pa.table({"user_id": pa.array(ids, type=id_type),
                     "ts": pa.array(BASE[:len(ids)], type=pa.timestamp("us", tz="UTC")),
                     "event": ["a"] * len(ids)})


@pytest.mark.parametrize("id_type,ids", [
    (pa.int8(), [1, 2, 1, -3, None, 2]),
    (pa.int32(), [10, 20, 10, 30, None, 20]),
    (pa.uint64(), [2**64 - 1, 0, 2**64 - 1, 5, None, 0]),
    (pa.int64(), [2**63 - 1, -(2**63), 2**63 - 1, 0, None, -(2**63)]),
    (pa.string(), ["u1", "u2", "u1", "", None, "u2"]),
    (pa.large_string(), ["u1", "u2", "u1", "", None, "u2"]),
    (pa.binary(), [b"u1", b"u2", b"u1", b"", None, b"u2"]),
])
def test_user_id_types_give_the_same_dense_users(id_type, ids):
    ev = ec.prepare_events(_table(ids, id_type))
    assert ev.num_rows == 5 and ev.rows_skipped_null_user == 1
    assert ev.num_users == 3
    assert ev.user.tolist() == [0, 1, 0, 2, 1]  # dense, in order of first appearance
    assert ev.user_ids().type == id_type
    assert ev.user_ids().to_pylist() == [i for i in dict.fromkeys(ids) if i is not None]


def test_dictionary_and_sliced_ids():
    ids = pa.array(["x", "y", None, "x", "z", "y"]).dictionary_encode()
    t = _table(["_"] * 6, pa.string()).set_column(0, "user_id", ids)
    ev = ec.prepare_events(t.slice(1))
    assert ev.rows_read == 5 and ev.rows_skipped_null_user == 1
    values = ev.user_ids().to_pylist()
    assert [values[u] for u in ev.user.tolist()] == ["y", "x", "z", "y"]
    assert sorted(values) == ["x", "y", "z"]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo"])
def test_timestamp_units_and_zones_give_the_same_days(unit, tz):
    instants = [dt.datetime(2025, 3, 9, h, 30, tzinfo=UTC) for h in (3, 6, 7, 8)]
    col = pa.array(instants, type=pa.timestamp(unit, tz="UTC")).cast(pa.timestamp(unit, tz=tz))
    t = pa.table({"user_id": [1, 2, 3, 4], "ts": col})
    ev = ec.prepare_events(t, event=None, calendar=Calendar("America/New_York"))
    # 03:30 and 06:30 UTC are still 8 March in New York; DST begins at 07:00 UTC.
    want = [(i.astimezone(ZoneInfo("America/New_York")).date() - dt.date(1970, 1, 1)).days for i in instants]
    assert ev.day.tolist() == want
    assert str(ev.first_day) == "2025-03-08" and str(ev.last_day) == "2025-03-09"


def test_date_columns_are_already_local_days():
    days = [dt.date(2024, 12, 31), dt.date(2025, 1, 1), None]
    for typ in (pa.date32(), pa.date64()):
        t = pa.table({"user_id": [1, 2, 3], "ts": pa.array(days, type=typ)})
        ev = ec.prepare_events(t, event=None, calendar=Calendar("Pacific/Kiritimati"))
        assert [ev.first_day, ev.last_day] == days[:2]
        assert ev.rows_skipped_null_timestamp == 1


def test_null_counts_are_separate_and_user_first():
    t = pa.table({"user_id": [1, None, None, 2],
                  "ts": pa.array([BASE[0], None, BASE[1], None], type=pa.timestamp("us", tz="UTC"))})
    ev = ec.prepare_events(t, event=None)
    assert (ev.rows_read, ev.num_rows) == (4, 1)
    assert (ev.rows_skipped_null_user, ev.rows_skipped_null_timestamp) == (2, 1)


def test_record_batches_and_empty_input():
    t = _table([1, 2, 3, 1, 2, 3], pa.int64())
    whole = ec.prepare_events(t)
    split = ec.prepare_events(t.to_batches(max_chunksize=2))
    assert whole.user.tolist() == split.user.tolist() and whole.day.tolist() == split.day.tolist()
    empty = ec.prepare_events(t.slice(0, 0))
    assert empty.num_rows == 0 and empty.first_day is None


def test_breakdown_codes_follow_text_order_with_null_last():
    t = _table([1, 2, 3, 4, 5, 6], pa.int64()).append_column(
        "platform", pa.array(["web", None, "android", "ios", "web", "Zed"]))
    ev = ec.prepare_events(t, breakdowns=["platform"])
    seg = ev.segments["platform"]
    assert seg.labels == ["Zed", "android", "ios", "web", "(none)"]
    assert [seg.labels[c] for c in seg.codes.tolist()] == ["web", "(none)", "android", "ios", "web", "Zed"]


@pytest.mark.parametrize("column,typ,message", [
    ("user_id", pa.float64(), "column 'user_id' (user_id): found type double"),
    ("ts", pa.string(), "column 'ts' (timestamp): found type string"),
    ("event", pa.int64(), "column 'event' (event): found type int64"),
])
def test_unusable_types_name_column_found_and_accepted(column, typ, message):
    cols = {"user_id": pa.array([1, 2]), "ts": pa.array(BASE[:2]), "event": pa.array(["a", "b"])}
    cols[column] = pa.array([1, 2]).cast(typ) if typ != pa.string() else pa.array(["x", "y"])
    with pytest.raises(ec.SchemaError) as err:
        ec.prepare_events(pa.table(cols))
    assert message in str(err.value) and "accepted" in str(err.value)


def test_missing_column_lists_the_columns_found():
    t = pa.table({"uid": [1], "ts": pa.array(BASE[:1])})
    with pytest.raises(ec.SchemaError, match=r"column 'user_id' \(user_id\): missing .* uid, ts"):
        ec.prepare_events(t, event=None)


def test_event_filter_without_event_column_is_a_schema_error():
    ev = ec.prepare_events(pa.table({"user_id": [1], "ts": pa.array(BASE[:1])}), event=None)
    with pytest.raises(ec.SchemaError, match="event column"):
        ec.active_users(ev, events=["signup"])


def test_bad_timezone_and_week_start_are_config_errors():
    with pytest.raises(ec.ConfigError, match="Mars/Olympus"):
        Calendar("Mars/Olympus")
    with pytest.raises(ec.ConfigError, match="week_start"):
        Calendar("UTC", "friday")


ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/St_Johns", "Pacific/Apia", "UTC"]


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES),
       seconds=st.lists(st.integers(-2_000_000_000, 4_000_000_000), min_size=1, max_size=200))
def test_local_day_equals_zoneinfo_for_any_instant(zone, seconds):
    t = pa.table({"user_id": np.arange(len(seconds)),
                  "ts": pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, pa.timestamp("us"))})
    ev = ec.prepare_events(t, event=None, calendar=Calendar(zone))
    z = ZoneInfo(zone)
    want = [(dt.datetime.fromtimestamp(s, UTC).astimezone(z).date() - dt.date(1970, 1, 1)).days
            for s in seconds]
    assert ev.day.tolist() == want


def test_segments_seen_only_on_skipped_rows_are_not_labels():
    t = _table([1, None, 3], pa.int64()).append_column("platform", pa.array(["web", "tv", None]))
    ev = ec.prepare_events(t, breakdowns=["platform"])
    assert ev.segments["platform"].labels == ["web", "(none)"]
    assert ev.segments["platform"].codes.tolist() == [0, 1]
    out = ec.active_users(ev, windows=[1], breakdown="platform")
    assert sorted(set(out.column("segment").to_pylist())) == ["(none)", "all", "web"]


@pytest.mark.parametrize("bits", [0, 3, 64])
@pytest.mark.parametrize("threads", [1, 2])
def test_string_ids_stay_exact_when_hashes_collide(bits, threads):
    """Byte strings are matched by hash first and then checked byte for byte: with the hash
    narrowed to a few bits (every value colliding), ids still map one-to-one to values."""
    from engage_core import _bytes_index, arrow_io

    rng = np.random.default_rng(bits)
    values = [f"u{i}" * (i % 5) for i in range(300)] + ["", "é", "u1u1"]
    col = pa.array([values[i] for i in rng.integers(0, len(values), 5000)]
                   + [None, "late-value"], pa.string())
    _bytes_index._collide_hashes_for_tests(bits)
    try:
        index = _bytes_index.BytesIndex(16)
        ids = np.concatenate([arrow_io.encode_bytes(col.slice(0, 2500), index, threads),
                              arrow_io.encode_bytes(col.slice(2500), index, threads)])
    finally:
        _bytes_index._collide_hashes_for_tests(64)
    decoded = arrow_io.decode_bytes_index(index).to_pylist()
    assert len(decoded) == len(set(decoded)) == len(set(col.drop_null().to_pylist()))
    assert [decoded[i] if i >= 0 else None for i in ids] == col.to_pylist()


@pytest.mark.parametrize("bits", [0, 40, 64])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_width_string_ids_stay_exact_then_mixed_and_after_release(bits, threads):
    """Values of one width (UUID-like) are checked at ``id * width``; a longer value arriving
    later ends that shortcut, and a released table is rebuilt from the values by id: ids
    stay one-to-one with values through all three, with hashes narrowed so that tags (the
    top half of a hash) collide (0 bits: every value's; 40: only the tags') or not (64)."""
    from engage_core import _bytes_index, arrow_io

    rng = np.random.default_rng(bits + threads)
    values = [f"{int(v):08x}-{int(v) % 7}" for v in rng.integers(0, 2**32, 400)]
    first = pa.array([values[i] for i in rng.integers(0, 300, 70_000)], pa.string())
    second = pa.array([values[i] for i in rng.integers(200, 400, 3000)]
                      + ["a-much-longer-value", None, values[0]], pa.string())
    third = pa.array([values[i] for i in rng.integers(0, 400, 2000)] + ["a-much-longer-value"],
                     pa.string())
    _bytes_index._collide_hashes_for_tests(bits)
    try:
        index = _bytes_index.BytesIndex(16)
        ids = [arrow_io.encode_bytes(first, index, threads),
               arrow_io.encode_bytes(second, index, threads)]
        index.release_table()
        ids.append(arrow_io.encode_bytes(third, index, threads))
    finally:
        _bytes_index._collide_hashes_for_tests(64)
    decoded = arrow_io.decode_bytes_index(index).to_pylist()
    col = pa.concat_arrays([first, second, third])
    assert len(decoded) == len(set(decoded)) == len(set(col.drop_null().to_pylist()))
    assert [decoded[i] if i >= 0 else None for i in np.concatenate(ids)] == col.to_pylist()
    if bits == 64:  # no collision: ids in order of first appearance
        seen = list(dict.fromkeys(col.drop_null().to_pylist()))
        assert decoded == seen


@pytest.mark.parametrize("kind", ["int", "string"])
def test_a_table_in_many_chunks_prepares_like_one_chunk(kind):
    """Chunked tables are written into arrays allocated once (rows skipped in some chunks);
    record-batch streams are collected: every array is the same."""
    rng = np.random.default_rng(3)
    n = 3000
    users = [None if i % 97 == 0 else int(u) for i, u in enumerate(rng.integers(0, 300, n))]
    if kind == "string":
        users = [None if u is None else f"u{u}" for u in users]
    ts = [None if i % 89 == 0 else dt.datetime(2025, 3, 1) + dt.timedelta(minutes=int(m))
          for i, m in enumerate(rng.integers(0, 60 * 24 * 20, n))]
    table = pa.table({"user_id": users, "ts": pa.array(ts, pa.timestamp("ns", "UTC")),
                      "event": [["a", "b", None][i % 3] for i in range(n)],
                      "revenue": rng.random(n)})
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=257))
    assert chunked["user_id"].num_chunks > 1
    kw = dict(event="event", numeric=["revenue"], calendar=Calendar("America/New_York"))
    one = ec.prepare_events(table.combine_chunks(), **kw)
    for data in (chunked, pa.RecordBatchReader.from_batches(table.schema,
                                                            table.to_batches(max_chunksize=300))):
        many = ec.prepare_events(data, **kw)
        for name in ("user", "day", "ts", "event", "row", "ts_rem"):
            assert np.array_equal(getattr(many, name), getattr(one, name)), name
        assert np.array_equal(many.numeric["revenue"][0], one.numeric["revenue"][0])
        assert (many.rows_read, many.rows_skipped_null_user, many.rows_skipped_null_timestamp) \
            == (one.rows_read, one.rows_skipped_null_user, one.rows_skipped_null_timestamp) \
            == (n, 31, 33)


def test_a_reader_is_read_ahead_and_its_errors_reach_the_caller():
    """prepare_events reads a RecordBatchReader's next batch in a background thread: the
    events are those of the whole stream, and an error raised by the reader surfaces."""
    table = pa.table({"user_id": np.arange(1000) % 37,
                      "ts": pa.array(np.arange(1000) * 3_600_000_000, pa.timestamp("us"))})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=64))
    ev = ec.prepare_events(reader, event=None)
    assert ev.num_rows == 1000 and ev.num_users == 37
    assert np.array_equal(ev.user, ec.prepare_events(table, event=None).user)

    def failing():
        yield table.to_batches(max_chunksize=100)[0]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        ec.prepare_events(pa.RecordBatchReader.from_batches(table.schema, failing()), event=None)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=150),
       cuts=st.lists(st.integers(0, 150), max_size=5), large=st.booleans(),
       threads=st.integers(1, 4))
def test_bytes_index_reads_chunks_as_one_column(values, cuts, large, threads):
    # ids by first appearance across chunks, -1 for nulls, whatever the chunking
    from engage_core import _bytes_index, arrow_io

    bounds = sorted({0, len(values), *(min(c, len(values)) for c in cuts)})
    typ = pa.large_string() if large else pa.string()
    column = pa.chunked_array([pa.array(values[a:b], typ) for a, b in zip(bounds, bounds[1:])],
                              type=typ)
    got = _bytes_index.BytesIndex(4).encode_chunks(arrow_io.bytes_chunks(column), None, threads)
    ids, want = {}, []
    for v in values:
        want.append(-1 if v is None else ids.setdefault(v, len(ids)))
    assert got.tolist() == want


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_float64_columns_copied_with_their_nulls_bit_for_bit(threads):
    """arrow_io.float64_into (the numeric columns' copy): values bit for bit (NaN, both
    infinities, -0.0, subnormals), 0.0 for a null, validity 0/1, for a sliced array (its
    bitmap read from a bit offset) long enough to be split between threads."""
    from engage_core import arrow_io

    rng = np.random.default_rng(threads)
    n = 300_001
    raw = rng.normal(size=n)
    raw[rng.integers(0, n, 500)] = np.nan
    raw[rng.integers(0, n, 500)] = np.inf
    raw[rng.integers(0, n, 500)] = -np.inf
    raw[rng.integers(0, n, 500)] = -0.0
    raw[rng.integers(0, n, 500)] = 5e-324
    nulls = rng.random(n) < 0.9
    arr = pa.array(raw, mask=nulls).slice(3, n - 10)  # a bit offset of 3
    want_valid = ~nulls[3:n - 7]
    want = np.where(want_valid, raw[3:n - 7], 0.0)
    for a in (arr, pa.array(raw).slice(5, 1000), pa.nulls(70_000, pa.float64())):
        values = np.full(len(a), 7.0)
        valid = np.full(len(a), 9, dtype=np.uint8)
        arrow_io.float64_into(a, values, valid, threads)
        if a is arr:
            assert np.array_equal(values.view(np.uint64), want.view(np.uint64))
            assert np.array_equal(valid, want_valid.astype(np.uint8))
        else:
            expect = a.to_numpy(zero_copy_only=False) if a.null_count == 0 else np.zeros(len(a))
            assert np.array_equal(values.view(np.uint64), expect.view(np.uint64))
            assert np.array_equal(valid, np.full(len(a), a.null_count == 0, dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-(2**53), 2**53), min_size=1, max_size=200),
       unit=st.sampled_from(["s", "ms"]), chunk=st.sampled_from([None, 1, 7]),
       threads=st.integers(1, 3))
def test_second_and_millisecond_timestamps_scale_like_numpy(values, unit, chunk, threads):
    # seconds and milliseconds become microseconds on all threads, in one array for a whole
    # table (chunked or not), as numpy's raw * scale
    from engage_core import arrow_io

    scale = 10**6 if unit == "s" else 10**3
    raw = np.asarray(values, dtype=np.int64) // (scale // 1000)  # within the years 1..9999 or not
    fine = raw[(raw > -(2**63 - 1) // scale) & (raw < (2**63 - 1) // scale)]
    flat = pa.array(fine, pa.timestamp(unit))
    step = chunk or max(len(fine), 1)
    col = pa.chunked_array([flat[i:i + step] for i in range(0, len(fine), step)], flat.type)
    us, rem = arrow_io.timestamps_us(col, threads)
    assert rem is None and np.array_equal(np.concatenate(us) if us else [], fine * scale)
    one, valid = arrow_io.timestamp_us(flat, threads)
    assert valid is None and np.array_equal(one, fine * scale)


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_coarse_timestamps_past_int64_microseconds_are_a_schema_error(unit):
    # a valid value whose microseconds overflow int64 is named as out of range; the same
    # value in a null's slot is not looked at
    scale = 10**6 if unit == "s" else 10**3
    big = np.iinfo(np.int64).max // scale + 1
    bad = pa.table({"user_id": [1, 2], "ts": pa.array([0, big], pa.timestamp(unit))})
    with pytest.raises(ec.SchemaError, match="years 1..9999"):
        ec.prepare_events(bad, event=None)
    values = pa.array([0, big], pa.int64()).buffers()[1]
    nulls = pa.array([True, False]).buffers()[1]
    masked = pa.Array.from_buffers(pa.timestamp(unit), 2, [nulls, values], null_count=1)
    ev = ec.prepare_events(pa.table({"user_id": [1, 2], "ts": masked}), event=None)
    assert ev.num_rows == 1 and ev.rows_skipped_null_timestamp == 1


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dictionaries", ["shared", "equal", "different", "nulls", "one_chunk"])
def test_dictionary_event_column_of_a_table_reads_as_its_strings(dictionaries, threads):
    """A whole table's dictionary event column is encoded in one pass when its chunks'
    dictionaries are equal (else chunk by chunk): every row's event name, the name list and
    the masks equal those of the same column as plain strings, and of a record-batch stream."""
    rng = np.random.default_rng(threads)
    names = ["open", "click", "buy", "unused"]
    n = 5_000
    values = [names[i] for i in rng.integers(0, 3, n)]
    if dictionaries == "nulls":
        values = [None if i % 7 == 3 else v for i, v in enumerate(values)]
    cuts = [0, 1, 1_000, 2_500, n] if dictionaries != "one_chunk" else [0, n]
    pieces, shared = [], pa.array(names)
    for a, b in zip(cuts, cuts[1:]):
        part = values[a:b]
        idx = pa.array([None if v is None else names.index(v) for v in part], pa.int16())
        if dictionaries == "shared":  # one dictionary object for every chunk
            pieces.append(pa.DictionaryArray.from_arrays(idx, shared))
        elif dictionaries == "different":  # each chunk its own order of values
            order = names[a % 4:] + names[:a % 4]
            idx = pa.array([None if v is None else order.index(v) for v in part], pa.int16())
            pieces.append(pa.DictionaryArray.from_arrays(idx, pa.array(order)))
        else:  # equal dictionaries, one object per chunk
            pieces.append(pa.DictionaryArray.from_arrays(idx, pa.array(names)))
    users = pa.chunked_array([pa.array(rng.integers(0, 50, b - a)) for a, b in zip(cuts, cuts[1:])])
    ts = pa.chunked_array([pa.array(1_735_689_600_000_000 + np.arange(a, b, dtype=np.int64)
                                    * 60_000_000, pa.timestamp("us")) for a, b in zip(cuts, cuts[1:])])
    table = pa.table({"user_id": users, "ts": ts, "event": pa.chunked_array(pieces)})
    plain = table.set_column(2, "event", pa.chunked_array([p.cast(pa.string()) for p in pieces]))
    # one pass when the chunks' dictionaries are equal
    one_pass = arrow_io.encode_dictionary_column(table.column("event"),
                                                 lambda d: np.arange(len(d)), threads)
    assert (one_pass is None) == (dictionaries == "different")
    got = ec.prepare_events(table, threads=threads)
    want = ec.prepare_events(plain, threads=threads)
    stream = ec.prepare_events(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                               threads=threads)
    for ev in (got, stream):
        decoded = [None if c < 0 else ev.event_names[c] for c in ev.event]
        assert decoded == values
        for name in ("open", "buy"):
            assert np.array_equal(ev.event_mask([name], "events"),
                                  want.event_mask([name], "events"))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_float64_columns_of_a_table_read_as_batch_by_batch(threads):
    """A whole table's float64 numeric columns, each in one pass over its chunks: values
    (0.0 for a null) and validity equal those read batch by batch (a stream), with nulls,
    an all-null chunk, a chunk without nulls, sliced chunks (offsets) and -0.0 / NaN."""
    rng = np.random.default_rng(threads)
    n = 140_000
    raw = rng.normal(size=n)
    raw[:3] = [-0.0, np.nan, np.inf]
    cuts = [0, 5, 70_000, 70_100, 100_000, n]
    pieces = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        mask = None if i == 2 else rng.random(b - a) < 0.3
        if i == 3:
            mask = np.ones(b - a, dtype=bool)  # every slot null
        whole = pa.array(np.concatenate([[7.0], raw[a:b]]),
                         mask=None if mask is None else np.concatenate([[False], mask]))
        pieces.append(whole.slice(1))  # offset 1
    users = pa.chunked_array([pa.array(rng.integers(0, 500, b - a)) for a, b in zip(cuts, cuts[1:])])
    ts = pa.chunked_array([pa.array(1_735_689_600_000_000 + np.arange(a, b, dtype=np.int64)
                                    * 1_000_000, pa.timestamp("us")) for a, b in zip(cuts, cuts[1:])])
    table = pa.table({"user_id": users, "ts": ts, "v": pa.chunked_array(pieces),
                      "w": pa.chunked_array([p.cast(pa.float32()) for p in pieces])})
    assert arrow_io.float64_chunks_into(table.column("v"), np.empty(n), np.empty(n, np.uint8),
                                        threads)
    got = ec.prepare_events(table, event=None, numeric=["v", "w"], threads=threads)
    stream = ec.prepare_events(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                               event=None, numeric=["v", "w"], threads=threads)
    for name in ("v", "w"):
        values, valid = got.numeric[name]
        want_values, want_valid = stream.numeric[name]
        assert np.array_equal(valid, want_valid)
        assert np.array_equal(values.view(np.int64), want_values.view(np.int64))  # bit for bit
    col = table.column("v").to_numpy(zero_copy_only=False)
    assert np.array_equal(got.numeric["v"][1], ~np.isnan(col) | (np.arange(n) == 1))
