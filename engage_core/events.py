"""Turning an Arrow event log into the dense arrays every kernel reads.

``prepare_events`` checks the schema, skips (and counts) rows with a null user or
timestamp, maps user ids to dense integers, timestamps to local days and event names and
breakdown values to small integer codes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from engage_core import _bytes_index, _columns, _gather, _ingest, arrow_io
from engage_core._memory import release_free_memory
from engage_core._parts import Parts
from engage_core.range_index import RangeIndex, column_keys
from engage_core.calendar import MAX_DAY, MIN_DAY, Calendar, DayMapper, day_to_date, local_days
from engage_core.errors import RunError, SchemaError

USER_TYPES = "any integer type, string, large_string, binary, or a dictionary of those"
TIMESTAMP_TYPES = "timestamp (any unit, with or without time zone), date32 or date64"
EVENT_TYPES = "string, large_string or dictionary<string>"
NONE_SEGMENT = "(none)"
ALL_SEGMENT = "all"
# A breakdown value that reads like a reserved label gets this suffix, so that segment
# keys stay unique: the value 'all' shows as 'all (value)', '(none)' as '(none) (value)'.
RESERVED_SUFFIX = " (value)"
NUMERIC_TYPES = "any integer, floating-point or decimal type"


def default_threads() -> int:
    """Threads the kernels use by default: ``ENGAGE_THREADS`` or every available core."""
    env = os.environ.get("ENGAGE_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Segments:
    """A breakdown column coded so that code order is text order; nulls get the last code."""

    name: str
    codes: np.ndarray  # int32 per kept row
    labels: list  # text of each code; '(none)' last when the column has nulls

    @property
    def count(self) -> int:
        return len(self.labels)


class Events:
    """A prepared event log: one entry per kept row in each array."""

    def __init__(self, *, calendar, user, day, ts, event, event_names, segments, user_index,
                 user_kind, rows_read, skipped_user, skipped_ts, timestamp_is_date,
                 user_type=None, row=None, numeric=None, ts_rem=None):
        self.calendar = calendar
        self._user = user
        self.day = day
        # int64 UTC microseconds per row; ``ts`` may also be given as a list of per-batch
        # chunks, joined on first use (the day-based metrics never need it)
        self._ts = None if isinstance(ts, list) else ts
        self._ts_parts = ts if isinstance(ts, list) else None
        self.event = event
        self.event_names = event_names
        self.segments = segments
        self._user_index = user_index
        self._user_kind = user_kind
        self._user_keep = None  # index ids kept (None: all), when some users only had skipped rows
        # a RangeIndex still to number its keys (``user`` holds each row's slot meanwhile)
        # is counted when first asked for
        self._num_users = None if getattr(user_index, "pending", False) else len(user_index)
        self._user_type = user_type
        # each kept row's position in the input (0-based, across batches); kept only when
        # numeric columns are prepared (the metrics that can reject rows need them) and a
        # row was dropped (else a kept row's position is its index: see source_rows)
        self.row = row
        # sub-microsecond nanoseconds of ns timestamps (int16), or None: ties in ``ts`` are
        # broken by it where the first row of a user matters (cohorts)
        self.ts_rem = ts_rem
        self.numeric = numeric or {}  # name -> (float64 values, uint8 valid)
        self.rows_read = rows_read
        self.rows_skipped_null_user = skipped_user
        self.rows_skipped_null_timestamp = skipped_ts
        self.timestamp_is_date = timestamp_is_date
        # the first day of the metrics' day axis (a date); None: the first day of data
        self.axis_first_day = None
        # threads for the columns derived on demand (prepare_events sets its own)
        self.threads = default_threads()

    @property
    def ts(self) -> np.ndarray:
        if self._ts is None:
            parts, self._ts_parts = self._ts_parts or [], None
            if len(parts) == 1:
                self._ts = np.ascontiguousarray(parts[0], dtype=np.int64)
            else:  # joined by all threads
                self._ts = _gather.join(_columns.Int64Chunks(parts), self.threads)
            if self.timestamp_is_date:
                self._ts = self._ts * 86_400_000_000
        return self._ts

    def ts_chunks(self) -> "_columns.Int64Chunks":
        """``ts`` as the kernels' Int64Chunks: the prepared chunks, not joined, until ``ts``
        itself is asked for."""
        if self._ts is not None or self.timestamp_is_date:
            return _columns.Int64Chunks([self.ts])
        return _columns.Int64Chunks(self._ts_parts or [])

    def source_rows(self, idx) -> np.ndarray:
        """The positions in the input (int64) of the kept rows ``idx``."""
        if self.row is None and (self.rows_skipped_null_user or self.rows_skipped_null_timestamp):
            raise RunError("rows were dropped and their input positions not kept: prepare_events "
                           "keeps them when numeric columns are given")
        return np.asarray(idx, dtype=np.int64) if self.row is None else self.row[idx]

    @property
    def user(self) -> np.ndarray:
        """Each kept row's dense user number (int32)."""
        if self._num_users is None:  # numbered on first use (RangeIndex.deferred)
            self._user_index.number()
            self._num_users = len(self._user_index)
        return self._user

    @user.setter
    def user(self, value) -> None:
        self._user = value

    def user_slots(self):
        """``(index, span)`` while the users are not numbered yet: a row's user is a slot in
        ``[0, span)``, its key minus the least key (``index.slot_keys()``, ``index.slots()``;
        keys never seen leave slots empty), for metrics that only count users; else None."""
        if self._num_users is not None:
            return None
        return self._user_index, self._user_index.span

    @property
    def num_rows(self) -> int:
        return len(self._user)

    @property
    def num_users(self) -> int:
        if self._num_users is None:
            self.user  # numbers them
        return self._num_users

    def _day_bounds(self):
        # computed once: every metric asks (the rows never change after prepare_events)
        if getattr(self, "_bounds", None) is None:
            self._bounds = ((int(self.day.min()), int(self.day.max())) if len(self.day)
                            else (None, None))
        return self._bounds

    @property
    def first_day_number(self):
        return self._day_bounds()[0]

    @property
    def last_day_number(self):
        return self._day_bounds()[1]

    @property
    def first_day(self):
        n = self.first_day_number
        return None if n is None else day_to_date(n)

    @property
    def last_day(self):
        n = self.last_day_number
        return None if n is None else day_to_date(n)

    def _compact_users(self, dictionary_ids: bool = True) -> None:
        """Renumber users so that only users with a kept row have a number."""
        if self.rows_skipped_null_timestamp == 0 and not dictionary_ids:
            return  # every number came from a row with a user id, and every such row is kept
        seen = np.zeros(len(self._user_index), dtype=bool)
        seen[self.user] = True
        if seen.all():
            return
        new_id = (np.cumsum(seen) - 1).astype(np.int32)
        self.user = np.ascontiguousarray(new_id[self.user])
        self._user_keep = np.nonzero(seen)[0]
        self._num_users = int(seen.sum())

    def user_ids(self) -> pa.Array:
        """The original user id of every dense user number."""
        ids = self._all_user_ids()
        return ids if self._user_keep is None else ids.take(pa.array(self._user_keep))

    def _all_user_ids(self) -> pa.Array:
        if self._user_kind == "int":
            keys = self._user_index.keys()
            if self._user_type == pa.uint64():
                return pa.array(keys.view(np.uint64))
            return pa.array(keys).cast(self._user_type or pa.int64())
        values = arrow_io.decode_bytes_index(self._user_index, self._user_kind == "text")
        if self._user_type is not None and not (pa.types.is_string_view(self._user_type)
                                                or pa.types.is_binary_view(self._user_type)):
            values = values.cast(self._user_type)
        return values

    def event_mask(self, names, role: str = "events"):
        """uint8 mask of rows whose event is in ``names``; None when ``names`` is None (any)."""
        if names is None:
            return None
        if self.event is None:
            raise SchemaError(
                f"{role}: filtering by event name needs an event column, but the log has none"
            )
        wanted = frozenset(names)
        cache = self.__dict__.setdefault("_mask_cache", {})  # metrics of a run share filters
        if wanted not in cache:
            lut = np.zeros(len(self.event_names) + 1, dtype=np.uint8)
            for code, name in enumerate(self.event_names):
                if name in wanted:
                    lut[code + 1] = 1
            # no such event in the log: zeros without a pass over the rows
            cache[wanted] = (_gather.take(self.event, lut, self.threads, 1) if lut.any()
                             else np.zeros(len(self.event), dtype=np.uint8))
            cache[wanted].flags.writeable = False
            self.__dict__.setdefault("_mask_luts", {})[id(cache[wanted])] = (cache[wanted], lut)
        return cache[wanted]

    def mask_lut(self, mask):
        """For a mask ``event_mask`` returned: uint8 per event code + 1 (0: no event), the
        mask being ``lut[event + 1]``; else None."""
        found = self.__dict__.get("_mask_luts", {}).get(id(mask))
        return found[1] if found is not None and found[0] is mask else None

    def segment(self, breakdown):
        if breakdown is None:
            return None
        if breakdown not in self.segments:
            raise SchemaError(
                f"breakdown: column {breakdown!r} was not prepared; prepared breakdown columns: "
                f"{sorted(self.segments) or 'none'}"
            )
        return self.segments[breakdown]


def _batches(data) -> tuple[pa.Schema, Iterable[pa.RecordBatch]]:
    if isinstance(data, pa.Table):
        return data.schema, data.to_batches()
    if isinstance(data, pa.RecordBatch):
        return data.schema, [data]
    if isinstance(data, pa.RecordBatchReader):
        # the next batch is read (decoded) while this one is prepared
        return data.schema, arrow_io.read_ahead(data)
    batches = list(data)
    if not batches:
        raise SchemaError("events: expected an Arrow table or record batches, found no batch")
    return batches[0].schema, batches


def _field(schema: pa.Schema, name: str, role: str) -> pa.DataType:
    if name not in schema.names:
        raise SchemaError(
            f"column {name!r} ({role}): missing from the event log; columns found: "
            f"{', '.join(schema.names) or 'none'}"
        )
    return schema.field(name).type


def _user_kind(t: pa.DataType, name: str) -> str:
    base = t.value_type if pa.types.is_dictionary(t) else t
    if pa.types.is_integer(base):
        return "int"
    if pa.types.is_string(base) or pa.types.is_large_string(base) or pa.types.is_string_view(base):
        return "text"
    if pa.types.is_binary(base) or pa.types.is_large_binary(base) or pa.types.is_binary_view(base):
        return "binary"
    raise SchemaError(f"column {name!r} (user_id): found type {t}; accepted: {USER_TYPES}")


def _check_timestamp(t: pa.DataType, name: str) -> None:
    if not (pa.types.is_timestamp(t) or pa.types.is_date32(t) or pa.types.is_date64(t)):
        raise SchemaError(f"column {name!r} (timestamp): found type {t}; accepted: {TIMESTAMP_TYPES}")


def _check_text(t: pa.DataType, name: str, role: str, accepted: str) -> None:
    base = t.value_type if pa.types.is_dictionary(t) else t
    if role == "event":
        ok = arrow_io.is_stringlike(base)
    else:  # a breakdown: string-like, or anything with a text form
        ok = arrow_io.is_stringlike(base) or pa.types.is_integer(base) or pa.types.is_boolean(base)
    if not ok:
        raise SchemaError(f"column {name!r} ({role}): found type {t}; accepted: {accepted}")


def _encode_user(col: pa.Array, kind: str, index, threads: int = 1) -> np.ndarray:
    if pa.types.is_dictionary(col.type):
        return arrow_io.encode_dictionary(col, lambda d: _encode_user(d, kind, index, threads))
    if kind == "int":
        return index.encode(arrow_io.int64_keys(col), arrow_io.validity(col), threads)
    return arrow_io.encode_bytes(col, index, threads)


def _encode_text(col: pa.Array, index, threads: int = 1, out=None) -> np.ndarray:
    if pa.types.is_dictionary(col.type):  # (a dictionary's rows: in place, all threads)
        return arrow_io.encode_dictionary(col, lambda d: _encode_text(d, index), threads, out)
    if not arrow_io.is_stringlike(col.type):
        col = col.cast(pa.large_string())
    return arrow_io.encode_bytes(col, index)


def _label(value: str) -> str:
    """The segment label of a breakdown value: the value itself, with RESERVED_SUFFIX added
    when, without its trailing suffixes, it reads 'all' or '(none)' (one-to-one)."""
    base = value
    while base.endswith(RESERVED_SUFFIX):
        base = base[: -len(RESERVED_SUFFIX)]
    return value + RESERVED_SUFFIX if base in (ALL_SEGMENT, NONE_SEGMENT) else value


def _sorted_segments(name: str, codes: np.ndarray, index) -> Segments:
    """Recode a breakdown column so that code order is text order over the values seen on
    kept rows (values seen only on skipped rows are dropped); nulls get the last code."""
    values = arrow_io.decode_bytes_index(index).to_pylist()
    used = np.zeros(len(values) + 1, dtype=bool)
    used[np.where(codes < 0, len(values), codes)] = True
    has_null = bool(used[len(values)])
    order = sorted((i for i in range(len(values)) if used[i]), key=lambda i: values[i])
    rank = np.full(len(values) + 1, -1, dtype=np.int32)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
    rank[len(values)] = len(order)  # code -1 (null) -> the last code
    labels = [_label(values[i]) for i in order] + ([NONE_SEGMENT] if has_null else [])
    remapped = rank[np.where(codes < 0, len(values), codes)]
    return Segments(name, np.ascontiguousarray(remapped, dtype=np.int32), labels)


def prepare_events(data, *, user_id: str = "user_id", timestamp: str = "ts",
                   event: str | None = "event", breakdowns: Sequence[str] = (),
                   numeric: Sequence[str] = (), calendar: Calendar | None = None,
                   threads: int | None = None) -> Events:
    """Check, clean and encode an event log for the metric kernels.

    >>> import pyarrow as pa, datetime as dt
    >>> t = pa.table({"user_id": [1, 2, None], "ts": [dt.datetime(2025, 1, 1, 12)] * 3,
    ...               "event": ["open", None, "open"]})
    >>> ev = prepare_events(t)
    >>> ev.num_rows, ev.num_users, ev.rows_skipped_null_user, str(ev.first_day)
    (2, 2, 1, '2025-01-01')
    """
    calendar = calendar or Calendar()
    threads = threads or default_threads()
    schema, batches = _batches(data)
    user_type = _field(schema, user_id, "user_id")
    kind = _user_kind(user_type, user_id)
    if pa.types.is_dictionary(user_type):
        user_type = user_type.value_type
    ts_type = _field(schema, timestamp, "timestamp")
    _check_timestamp(ts_type, timestamp)
    is_date = not pa.types.is_timestamp(ts_type)
    if event is not None:
        _check_text(_field(schema, event, "event"), event, "event", EVENT_TYPES)
    for b in breakdowns:
        _check_text(_field(schema, b, "breakdown"), b, "breakdown",
                    "string-like, integer or boolean")
    for name in numeric:
        nt = _field(schema, name, "numeric")
        if not (pa.types.is_integer(nt) or pa.types.is_floating(nt) or pa.types.is_decimal(nt)):
            raise SchemaError(f"column {name!r} (numeric): found type {nt}; accepted: {NUMERIC_TYPES}")

    # an in-memory table without nulls: users and days in one pass each over every chunk
    # (not one per record batch), the hash tables sized once from all the keys
    whole_table = (isinstance(data, pa.Table) and not is_date and data.num_rows
                   and not pa.types.is_dictionary(schema.field(user_id).type)
                   and data.column(user_id).null_count == 0
                   and data.column(timestamp).null_count == 0)
    user_index = id_keys = users = bounds = None
    if kind == "int" and isinstance(data, pa.Table) and not pa.types.is_dictionary(
            schema.field(user_id).type):
        id_keys = column_keys(data.column(user_id))
        users = _columns.touched(np.empty(data.num_rows, np.int32), threads) if whole_table else None
        # 64-bit ids (views of the table, no copy to keep) are numbered when a metric first
        # needs user numbers: metrics that only count users read their slots
        lazy = whole_table and pa.types.is_integer(user_type) and user_type.bit_width == 64
        bounds = _columns.chunks_minmax(id_keys, threads)
        user_index = (RangeIndex.deferred(id_keys, threads, users, bounds) if lazy
                      else RangeIndex.build(id_keys, threads, users, bounds))
        if user_index is None:
            users = None
    if user_index is None:
        user_index = _ingest.Int64Index(1 << 16) if kind == "int" else _bytes_index.BytesIndex(1 << 16)
    event_index = _bytes_index.BytesIndex(64)
    seg_index = {b: _bytes_index.BytesIndex(64) for b in breakdowns}
    is_ns = pa.types.is_timestamp(ts_type) and ts_type.unit == "ns"
    dtypes = {"user": np.int32, "ts": None, "day": np.int32, "event": np.int32, "row": np.int64,
              "rem": np.int16, **{f"seg:{b}": np.int32 for b in breakdowns},
              **{f"num:{c}": np.float64 for c in numeric}, **{f"numv:{c}": np.uint8 for c in numeric}}
    streaming = isinstance(data, pa.RecordBatchReader)
    parts = Parts(dtypes, data.num_rows if isinstance(data, pa.Table) and data.num_columns and
                   len(data[user_id].chunks) > 1 else None, threads)
    rows_read = skipped_user = skipped_ts = 0
    # A stream's batches are decoded by the reader's threads meanwhile (arrow_io.read_ahead):
    # per-batch kernels on one thread leave them the other cores (measured, 50M events from
    # Parquet on 2 cores: 1.25 s with one thread per batch, 1.57 s with two)
    batch_threads = 1 if streaming else threads
    day_of = DayMapper(calendar, threads if whole_table else batch_threads, timestamp)
    whole = _whole_columns(data.column(user_id), data.column(timestamp), id_keys, user_index,
                           day_of, threads, timestamp, users, bounds) if whole_table else None
    id_keys = None  # int64 copies of narrower ids go now
    # a whole table's dictionary event column in one pass (None: batch by batch)
    codes = arrow_io.encode_dictionary_column(data.column(event), lambda d: _encode_text(
        d, event_index), threads, parts.slot("event", len(data))) if whole and event else None
    if codes is not None:
        parts.add("event", codes)
    batch_event = event if codes is None else None
    batch_numeric = _whole_numeric(data, numeric, parts, threads) if whole else numeric
    if whole is not None and batch_event is None and not breakdowns and not batch_numeric:
        batches, rows_read = (), data.num_rows  # nothing else to read batch by batch
    for batch in batches:
        n = batch.num_rows
        rows_read += n
        if n == 0:
            continue
        if whole is not None:  # users, times and days are done: the other columns (no
            # row is dropped: no positions)
            _other_columns(batch, parts, batch_event, event_index, breakdowns, seg_index,
                           batch_numeric, None, None, None, threads)  # (sub-us: whole[3])
            continue
        ucol, tcol = batch.column(user_id), batch.column(timestamp)
        # no null anywhere: every row is kept, and the kernels write straight into the
        # preallocated result arrays (no mask pass, no copy)
        no_nulls = (tcol.null_count == 0 and ucol.null_count == 0
                    and not pa.types.is_dictionary(ucol.type))
        if no_nulls and kind == "int" and isinstance(user_index, RangeIndex):
            users = user_index.encode(arrow_io.int64_keys(ucol), None, batch_threads,
                                      parts.slot("user", n))
        else:
            users = _encode_user(ucol, kind, user_index, batch_threads)
        try:
            ts, tvalid = arrow_io.date_days(tcol) if is_date else arrow_io.timestamp_us(tcol, batch_threads)
        except OverflowError:
            raise SchemaError(f"column {timestamp!r} (timestamp): values outside the years 1..9999") from None
        if no_nulls:
            keep, all_kept = None, True
        else:
            keep = users >= 0
            skipped_user += int(n - keep.sum())
            if tvalid is not None:
                ts_ok = tvalid.astype(bool)
                skipped_ts += int((keep & ~ts_ok).sum())
                keep &= ts_ok
            all_kept = bool(keep.all())
        parts.add("user", users if all_kept else users[keep])
        kept_ts = ts if all_kept else ts[keep]
        # a stream's batches are let go as they are read: keep a copy, not a view
        parts.add("ts", kept_ts.copy() if streaming and kept_ts.base is not None else kept_ts)
        parts.add("day", kept_ts.astype(np.int32) if is_date else
                  day_of(kept_ts, parts.slot("day", len(kept_ts))))
        _other_columns(batch, parts, event, event_index, breakdowns, seg_index, numeric,
                       rows_read, None if all_kept else keep, is_ns and timestamp)

    def cat(key, dtype):
        out = parts.result(key, dtype)
        if streaming:  # the joined batches' memory back to the kernel before the next join
            release_free_memory()
        return out

    user = cat("user", np.int32) if whole is None else whole[0]
    day = cat("day", np.int32) if whole is None else whole[2]
    if not len(day):
        bounds = (None, None)
    elif is_date:
        bounds = (int(day.min()), int(day.max()))
    else:  # found while the days were computed
        bounds = day_of.bounds
    if len(day) and (bounds[0] < MIN_DAY or bounds[1] > MAX_DAY):
        raise SchemaError(f"column {timestamp!r} (timestamp): values outside the years 1..9999")
    events = cat("event", np.int32) if event is not None else None
    event_names = arrow_io.decode_bytes_index(event_index).to_pylist() if event is not None else []
    segments = {b: _sorted_segments(b, cat(f"seg:{b}", np.int32), seg_index[b]) for b in breakdowns}
    ev = Events(calendar=calendar, user=user, day=day, ts=parts["ts"] if whole is None else whole[1],
                  event=events, event_names=event_names, segments=segments,
                  user_index=user_index, user_kind=kind, rows_read=rows_read,
                  skipped_user=skipped_user, skipped_ts=skipped_ts, timestamp_is_date=is_date,
                  user_type=user_type, row=cat("row", np.int64) if numeric and whole is None else None,
                  ts_rem=(cat("rem", np.int16) if whole is None else whole[3]) if is_ns else None,
                  numeric={c: (cat(f"num:{c}", np.float64), cat(f"numv:{c}", np.uint8))
                           for c in numeric})
    ev._bounds = bounds  # the day range every metric asks for, found in one parallel pass
    ev.threads = threads  # for the columns derived later (event masks, periods of rows)
    if whole is not None:  # and the days of each thread's rows (day_bitmaps' threads)
        ev._thread_days = (threads, day_of.thread_bounds)
    ev._compact_users(dictionary_ids=pa.types.is_dictionary(_field(schema, user_id, "user_id")))
    if hasattr(user_index, "release_table"):  # no more ids to look up: the keys by id stay
        user_index.release_table()
    return ev


def _whole_columns(ucol: pa.ChunkedArray, tcol: pa.ChunkedArray, keys, index,
                   day_of: "DayMapper", threads: int, name: str, users=None, bounds=None):
    """(users, timestamp chunks, days, sub-microsecond nanoseconds or None) of a table's
    columns without nulls: each one pass over every chunk, into arrays allocated once
    (``users``: numbered by ``RangeIndex.build``; ``bounds``: least and greatest key)."""
    n = len(ucol)
    if users is None and isinstance(index, _ingest.Int64Index):  # keys too spread out for a RangeIndex
        users = index.encode_parts([k for k, _ in keys.arrays], threads, bounds)
    elif users is None:
        users = index.encode_chunks(arrow_io.bytes_chunks(ucol),
                                    _columns.touched(np.empty(n, dtype=np.int32), threads),
                                    threads)
    try:
        ts, rem = arrow_io.timestamps_us(tcol, threads)
    except OverflowError:
        raise SchemaError(f"column {name!r} (timestamp): values outside the years 1..9999") from None
    days = day_of(_columns.Int64Chunks(ts), _columns.touched(np.empty(n, dtype=np.int32), threads))
    return users, ts, days, rem


def _whole_numeric(data: pa.Table, numeric, parts, threads: int) -> list:
    """A whole table's float64 numeric columns, each in one parallel pass over its chunks
    (arrow_io.float64_chunks_into); returns the other columns' names, read batch by batch."""
    rest = []
    for name in numeric:
        values, valid = parts.slot(f"num:{name}", len(data)), parts.slot(f"numv:{name}", len(data))
        if arrow_io.float64_chunks_into(data.column(name), values, valid, threads):
            parts.add(f"num:{name}", values)
            parts.add(f"numv:{name}", valid)
        else:
            rest.append(name)
    return rest


def _other_columns(batch, parts, event, event_index, breakdowns, seg_index, numeric,
                   rows_read, keep, ns_column, threads: int = 1) -> None:
    """A batch's row positions (``rows_read``: the rows read so far, this batch included;
    None: no positions), numeric, event and breakdown columns and (``ns_column``: a
    nanosecond timestamp column's name) sub-microsecond remainders, on the rows kept
    (``keep``; None: every row); ``threads`` decode a dictionary event column and copy
    float64 columns."""
    n = batch.num_rows
    if ns_column:  # nanoseconds below the microsecond, to order ties exactly
        rem = arrow_io.ns_remainders(batch.column(ns_column), threads)
        parts.add("rem", rem if keep is None else rem[keep])
    if numeric and rows_read is not None:
        positions = np.arange(rows_read - n, rows_read, dtype=np.int64)
        parts.add("row", positions if keep is None else positions[keep])
    for name in numeric:
        col = batch.column(name)
        slot = parts.slot(f"num:{name}", n) if keep is None else None
        if slot is not None and pa.types.is_float64(col.type):  # straight into place
            valid = parts.slot(f"numv:{name}", n)
            arrow_io.float64_into(col, slot, valid, threads)
            parts.add(f"num:{name}", slot)
            parts.add(f"numv:{name}", valid)
            continue
        values = col.cast(pa.float64(), safe=False).fill_null(0.0).to_numpy(zero_copy_only=False)
        valid = arrow_io.validity(col)
        valid = np.ones(n, dtype=np.uint8) if valid is None else valid
        parts.add(f"num:{name}", values if keep is None else values[keep])
        parts.add(f"numv:{name}", valid if keep is None else valid[keep])
    if event is not None:
        codes = _encode_text(batch.column(event), event_index, threads,
                             parts.slot("event", n) if keep is None else None)
        parts.add("event", codes if keep is None else codes[keep])
    for b in breakdowns:
        codes = _encode_text(batch.column(b), seg_index[b])
        parts.add(f"seg:{b}", codes if keep is None else codes[keep])

