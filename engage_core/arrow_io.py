"""Reading Arrow arrays through the buffer protocol (no link-time dependency on libarrow).

Each function takes one ``pyarrow.Array`` chunk and returns numpy views or small copies of
its buffers, honouring the array's offset and validity bitmap.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engage_core import _columns, _ingest

_INT_DTYPES = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
}
_TS_SCALE = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def validity(arr: pa.Array):
    """uint8 mask of valid slots, or None when the array has no nulls."""
    if arr.null_count == 0:
        return None
    if pa.types.is_null(arr.type):
        return np.zeros(len(arr), dtype=np.uint8)
    bitmap = arr.buffers()[0]
    return _ingest.unpack_validity(np.frombuffer(bitmap, dtype=np.uint8), arr.offset, len(arr))


def fixed_values(arr: pa.Array, dtype) -> np.ndarray:
    """The values buffer of a fixed-width array as a numpy view (slots of nulls undefined)."""
    buf = arr.buffers()[1]
    if buf is None or len(arr) == 0:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * np.dtype(dtype).itemsize)


def float64_into(arr: pa.Array, values: np.ndarray, valid: np.ndarray, nthreads: int = 1) -> None:
    """A float64 array's values (0.0 for a null) and validity (uint8) written into
    ``values`` and ``valid`` (each ``len(arr)`` long) by ``nthreads`` threads."""
    float64_chunks_into(pa.chunked_array([arr], type=pa.float64()), values, valid, nthreads)


def float64_chunks_into(column: pa.ChunkedArray, values, valid, nthreads: int = 1) -> bool:
    """``float64_into`` of a whole float64 column, its chunks side by side in one parallel
    pass (one per chunk started a parallel region per record batch: 77 of them per column of
    10M rows). False, with nothing written, when the column is not float64 or there is no
    room (``values`` None)."""
    if values is None or not pa.types.is_float64(column.type):
        return False
    raws, bitmaps, offsets, lengths = [], [], [], []
    for arr in column.chunks:
        nulls, bitmap = arr.null_count, arr.buffers()[0]
        if nulls == len(arr) or (nulls and bitmap is None):  # no value at all
            raws.append(None)
            bitmaps.append(None)
        else:
            raws.append(fixed_values(arr, np.float64))
            bitmaps.append(np.frombuffer(bitmap, dtype=np.uint8) if nulls else None)
        offsets.append(arr.offset)
        lengths.append(len(arr))
    _ingest.float64_chunks(raws, bitmaps, offsets, lengths, values, valid, nthreads)
    return True


def is_stringlike(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_string_view(t)
            or pa.types.is_binary_view(t))


def _bytes_part(arr: pa.Array):
    """``(offsets, data, valid)`` views of a string / binary array (views cast to large)."""
    t = arr.type
    if pa.types.is_string_view(t):
        arr = pc.cast(arr, pa.large_string())
    elif pa.types.is_binary_view(t):
        arr = pc.cast(arr, pa.large_binary())
    t = arr.type
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    odt = np.int64 if large else np.int32
    _, obuf, dbuf = arr.buffers()
    offsets = np.frombuffer(obuf, dtype=odt, count=len(arr) + 1, offset=arr.offset * np.dtype(odt).itemsize)
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None and dbuf.size else np.zeros(0, np.uint8)
    return offsets, data, validity(arr)


def encode_bytes(arr: pa.Array, index: "_bytes_index.BytesIndex", nthreads: int = 1) -> np.ndarray:
    """Dense ids of a string/binary array's values (-1 for nulls); ``nthreads`` hash."""
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int32)
    return index.encode(*_bytes_part(arr), nthreads)


def bytes_chunks(column: pa.ChunkedArray) -> "_bytes_index.BytesChunks":
    """A string / binary column's chunks, read by ``BytesIndex.encode_chunks`` as one."""
    from engage_core import _bytes_index

    return _bytes_index.BytesChunks([_bytes_part(c) for c in column.chunks if len(c)])


def int64_keys(arr: pa.Array) -> np.ndarray:
    """An integer array's values as contiguous int64 (uint64 reinterpreted bit for bit)."""
    values = fixed_values(arr, _INT_DTYPES[arr.type])
    if values.dtype == np.int64:
        return np.ascontiguousarray(values)
    if values.dtype == np.uint64:
        return np.ascontiguousarray(values).view(np.int64)
    return values.astype(np.int64)


def encode_dictionary(arr: pa.DictionaryArray, encode_values, nthreads: int = 1,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Dense ids of a dictionary array: encode its dictionary once, then gather by index
    (``nthreads`` threads; into ``out``, int32, when given)."""
    dict_codes = np.ascontiguousarray(encode_values(arr.dictionary), dtype=np.int32)
    indices = arr.indices
    idx = fixed_values(indices, _INT_DTYPES[indices.type])
    return _ingest.gather_codes(dict_codes, np.ascontiguousarray(idx), validity(indices),
                                nthreads, out)


def encode_dictionary_column(column: pa.ChunkedArray, encode_values, nthreads: int = 1,
                             out: np.ndarray | None = None) -> np.ndarray | None:
    """``encode_dictionary`` of a whole column whose chunks share one dictionary (equal
    values: a Parquet file's row groups, most often), in one parallel pass over all the
    rows instead of one per chunk (a parallel region costs tens of microseconds to start:
    77 chunks of 10M rows, 4.5-5.7 -> ~1 ms on 2 threads). None when the column is not
    dictionary-encoded or its chunks' dictionaries differ (then encode chunk by chunk)."""
    chunks = [c for c in column.chunks if len(c)]
    if not chunks or not pa.types.is_dictionary(column.type):
        return None
    first = chunks[0].dictionary
    if any(not c.dictionary.equals(first) for c in chunks[1:]):
        return None
    dtype = _INT_DTYPES[column.type.index_type]
    idx = np.concatenate([fixed_values(c.indices, dtype) for c in chunks])
    valids = [validity(c.indices) for c in chunks]
    valid = (None if all(v is None for v in valids) else np.concatenate(
        [np.ones(len(c), np.uint8) if v is None else v for c, v in zip(chunks, valids)]))
    codes = np.ascontiguousarray(encode_values(first), dtype=np.int32)
    return _ingest.gather_codes(codes, idx, valid, nthreads, out)


def timestamp_us(arr: pa.Array, nthreads: int = 1):
    """(int64 UTC microseconds, validity or None) of a timestamp array (ns floored, by
    ``nthreads`` threads)."""
    unit = arr.type.unit
    raw = fixed_values(arr, np.int64)
    scale = _TS_SCALE[unit]
    if scale is None:
        us = np.empty(len(raw), dtype=np.int64)
        _columns.to_us(_columns.Int64Chunks([raw]), 0, us, None, nthreads)
    elif scale == 1:
        us = np.ascontiguousarray(raw)
    else:
        us = np.empty(len(raw), dtype=np.int64)
        if not _columns.to_us(_columns.Int64Chunks([raw], [validity(arr)]), scale, us, None,
                              nthreads):
            raise OverflowError(unit)
    return us, validity(arr)


def timestamps_us(column: pa.ChunkedArray, nthreads: int = 1):
    """(microseconds of every non-empty chunk of a timestamp column, as ``timestamp_us``;
    the nanoseconds below the microsecond, int16, or None when the unit is coarser). A
    column in seconds, milliseconds or nanoseconds is converted in one parallel pass into
    one array (its chunks' values side by side; ns: and one of remainders). Raises
    OverflowError as ``timestamp_us`` does."""
    chunks = [c for c in column.chunks if len(c)]
    unit = column.type.unit
    if unit == "us":
        return [timestamp_us(c, nthreads)[0] for c in chunks], None
    raw = _columns.Int64Chunks([fixed_values(c, np.int64) for c in chunks],
                               [validity(c) for c in chunks])
    us = _columns.touched(np.empty(raw.n, dtype=np.int64), nthreads)
    rem = _columns.touched(np.empty(raw.n, dtype=np.int16), nthreads) if unit == "ns" else None
    if not _columns.to_us(raw, _TS_SCALE[unit] or 0, us, rem, nthreads):
        raise OverflowError(unit)
    return [us], rem


def ns_remainders(arr: pa.Array, nthreads: int = 1) -> np.ndarray:
    """The nanoseconds below the microsecond (int16, 0 to 999) of a nanosecond timestamp
    array, by ``nthreads`` threads (nulls' slots undefined)."""
    rem = np.empty(len(arr), dtype=np.int16)
    _columns.to_us(_columns.Int64Chunks([fixed_values(arr, np.int64)]), 0, None, rem, nthreads)
    return rem


def date_days(arr: pa.Array):
    """(int64 day numbers, validity or None) of a date32 / date64 array."""
    if pa.types.is_date32(arr.type):
        days = fixed_values(arr, np.int32).astype(np.int64)
    else:
        days = np.floor_divide(fixed_values(arr, np.int64), 86_400_000)
    return days, validity(arr)


def decode_bytes_index(index: "_bytes_index.BytesIndex", as_text: bool = True) -> pa.Array:
    """The distinct values held by a BytesIndex, by dense id, as an Arrow array."""
    offsets, data = index.values_buffers()
    arr = pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1,
                                [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return arr.cast(pa.large_string()) if as_text else arr


def read_ahead(reader, depth: int = 1):
    """The batches of ``reader``, each read (decoded from Parquet, say) by a background
    thread while the caller works on the one before: reading releases the GIL, so it
    overlaps the kernels. At most ``depth`` batches wait. An error of the reader is raised
    here; when the caller stops early the thread stops at its next batch."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(item) -> bool:  # False once the consumer has stopped
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for batch in reader:
                if not hand_over(batch):
                    return
            item = done
        except BaseException as exc:  # handed to the consumer, raised there
            item = exc
        hand_over(item)

    thread = threading.Thread(target=produce, name="engage-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
