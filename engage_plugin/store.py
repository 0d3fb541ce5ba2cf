"""The events store and the run plan: what makes a daily run read only its own days.

``{prefix}state_events`` keeps every event the pipeline has loaded (the columns its metrics
read, nothing else), one row per event, keyed by ``(_engage_day, _engage_seq)``: the event's
local day in the pipeline's zone and its position among the rows of that day as the source
returned them. ``{prefix}state`` keeps the loaded day range and the store's format.

A run over local days ``[start, end]`` reads only those days from the source (plus, when the
range leaves a gap after or before the loaded range, the gap's days, so the loaded range
stays one interval), replaces those days in the store, and recomputes every metric table
from the store's events. Every table therefore equals what one full run over the loaded
events writes, whatever the order and overlap of the runs (METRICS.md section 5), and the
source is read once per day loaded. docs/pipeline.md ("State tables") documents the tables.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import engage_core as ec
from engage_core.errors import SchemaError

STORE = "state_events"
STATE = "state"
DAY, SEQ = "_engage_day", "_engage_seq"
K_START, K_END = "loaded_start_day", "loaded_end_day"
K_SCHEMA, K_ZONE, K_FORMAT = "store_schema", "store_timezone", "store_format"
FORMAT = "1"
STATE_SCHEMA = pa.schema([pa.field("key", pa.string(), False), pa.field("value", pa.string())])


def normalize(table: pa.Table, roles: dict[str, str]) -> pa.Table:
    """The columns the pipeline reads, in the store's logical types: dictionary columns
    decoded, decimals as float64 (what the engine reads them as), string views as strings."""
    out = {}
    for name in dict.fromkeys(roles.values()):
        col = table[name]
        t = col.type
        if pa.types.is_dictionary(t):
            col, t = col.cast(t.value_type), t.value_type
        if pa.types.is_decimal(t):
            col = col.cast(pa.float64())
        elif pa.types.is_string_view(t):
            col = col.cast(pa.string())
        elif pa.types.is_binary_view(t):
            col = col.cast(pa.binary())
        out[name] = col
    return pa.table(out)


def _physical_type(t: pa.DataType, is_ts: bool) -> pa.DataType:
    if is_ts or pa.types.is_uint64(t) or pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_uint16(t) or pa.types.is_uint8(t):
        return pa.int32()
    return t


def physical_schema(logical: pa.Schema, ts: str) -> pa.Schema:
    """The store table's columns: day, seq, then the logical columns (the timestamp as its
    raw int64 value in its unit, unsigned integers as signed ones)."""
    fields = [pa.field(DAY, pa.date32(), False), pa.field(SEQ, pa.int64(), False)]
    fields += [pa.field(f.name, _physical_type(f.type, f.name == ts)) for f in logical]
    return pa.schema(fields)


def _to_int64(col: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_date32(t):
        return col.cast(pa.int32()).cast(pa.int64())
    if pa.types.is_uint64(t):
        return col.view(pa.int64())
    return col.cast(pa.int64())


def _from_physical_col(col: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_date32(t):
        return col.cast(pa.int32()).cast(t)
    if pa.types.is_date64(t) or pa.types.is_timestamp(t):
        return col.cast(t)
    if pa.types.is_uint64(t):
        return col.view(t)
    return col.cast(t)


def to_physical(logical: pa.Table, days: pa.Array, ts: str) -> pa.Table:
    """Store rows of ``logical`` (whose local days are ``days``, no nulls)."""
    schema = physical_schema(logical.schema, ts)
    cols = [days, pa.array(np.arange(logical.num_rows, dtype=np.int64))]
    for f in logical.schema:
        col = logical[f.name].combine_chunks()
        cols.append(_to_int64(col, f.type) if schema.field(f.name).type != f.type else col)
    return pa.Table.from_arrays(cols, schema=schema)


def from_physical(physical: pa.Table, logical: pa.Schema) -> pa.Table:
    """The logical rows of store rows (day and seq dropped)."""
    cols = []
    for f in logical:
        col = physical[f.name].combine_chunks()
        cols.append(col if col.type == f.type else _from_physical_col(col, f.type))
    return pa.Table.from_arrays(cols, schema=logical) if cols else pa.table({})


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema | None:
    try:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
    except Exception:
        return None


@dataclasses.dataclass
class NewRows:
    """The events a run read from the source, as store rows, with the run report's counts."""

    logical: pa.Table
    physical: pa.Table
    rows_read: int
    skipped_null_user: int
    skipped_null_timestamp: int


def new_rows(table: pa.Table, roles: dict[str, str], calendar: "ec.Calendar") -> NewRows:
    """Store rows of the source rows a run read: rows with a null user or timestamp are
    counted and left out (the engine would skip them)."""
    logical = normalize(table, roles)
    user, ts = roles["user_id"], roles["timestamp"]
    days = ec.local_days(logical[ts], calendar, name=ts)
    user_ok = pc.is_valid(logical[user])
    day_ok = pc.is_valid(days)
    null_user = logical.num_rows - int(pc.sum(user_ok).as_py() or 0)
    null_ts = int(pc.sum(pc.and_(user_ok, pc.invert(day_ok))).as_py() or 0)
    keep = pc.and_(user_ok, day_ok)
    if null_user or null_ts:
        logical, days = logical.filter(keep), days.filter(keep)
    return NewRows(logical, to_physical(logical, days, ts), table.num_rows, null_user, null_ts)


@dataclasses.dataclass
class Plan:
    """What a run reads and replaces.

    ``read_start``/``read_end``: the source days to read and the store days to replace
    (None = open on that side); ``rebuild``: the store is emptied first (a full refresh,
    a first run, or a store written for other columns or another time zone); ``reason``
    says why; ``prev_start``/``prev_end``: the loaded range before the run."""

    read_start: dt.date | None
    read_end: dt.date | None
    rebuild: bool
    reason: str
    prev_start: dt.date | None
    prev_end: dt.date | None

    def hull(self, first_read: dt.date | None, last_read: dt.date | None):
        """The loaded range after the run, given the first and last day actually read."""
        lo = self.read_start if self.read_start is not None else first_read
        hi = self.read_end if self.read_end is not None else last_read
        if not self.rebuild:
            lo = _lo(lo, self.prev_start)
            hi = _hi(hi, self.prev_end)
        return lo, hi


def _lo(a, b):
    """The smaller of two optional values (None: the other one)."""
    return b if a is None else a if b is None else min(a, b)


def _hi(a, b):
    """The larger of two optional values (None: the other one)."""
    return b if a is None else a if b is None else max(a, b)


def _date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def plan(state: dict[str, str], logical: pa.Schema, timezone: str, start: dt.date | None,
         end: dt.date | None, full_refresh: bool) -> Plan:
    """The run's plan from ``{prefix}state``, the source's logical columns and the request."""
    prev_start, prev_end = _date(state.get(K_START)), _date(state.get(K_END))
    stored = decode_schema(state.get(K_SCHEMA, ""))
    one_day = dt.timedelta(days=1)
    if full_refresh:
        return Plan(start, end, True, "full refresh", prev_start, prev_end)
    if prev_start is None or prev_end is None:
        return Plan(start, end, True, "first run", None, None)
    if stored is None or state.get(K_FORMAT) != FORMAT:
        reason = "the events store is missing or from an older version"
    elif not stored.equals(logical):
        reason = "the source columns the metrics read changed"
    elif state.get(K_ZONE) != timezone:
        reason = f"the time zone changed from {state.get(K_ZONE)} to {timezone}"
    else:
        rs, re = start, end
        if rs is not None and rs > prev_end + one_day:
            rs = prev_end + one_day  # fill the gap after the loaded range
        if re is not None and re < prev_start - one_day:
            re = prev_start - one_day  # and the gap before it
        return Plan(rs, re, False, "", prev_start, prev_end)
    # rebuild the store over the loaded range and the request
    rs = None if start is None else min(start, prev_start)
    re = None if end is None else max(end, prev_end)
    return Plan(rs, re, True, reason, prev_start, prev_end)


def check_days(new: NewRows, p: Plan, ts: str) -> None:
    """Every new row lies in the planned days (the source read filters exactly)."""
    if not new.physical.num_rows:
        return
    day = new.physical[DAY]
    lo, hi = pc.min(day).as_py(), pc.max(day).as_py()
    if (p.read_start and lo < p.read_start) or (p.read_end and hi > p.read_end):
        raise SchemaError(f"column {ts!r} (timestamp): the source returned days {lo}..{hi} "
                          f"for a read of {p.read_start}..{p.read_end}")


def kept_old(stored: pa.Table, p: Plan) -> pa.Table:
    """The stored rows the run keeps (outside the days it replaces)."""
    if p.rebuild or stored.num_rows == 0:
        return stored.slice(0, 0)
    day = stored[DAY]
    keep = None
    if p.read_start is not None:
        keep = pc.less(day, pa.scalar(p.read_start, pa.date32()))
    if p.read_end is not None:
        after = pc.greater(day, pa.scalar(p.read_end, pa.date32()))
        keep = after if keep is None else pc.or_(keep, after)
    if keep is None:
        return stored.slice(0, 0)
    return stored.filter(keep)


def state_rows(p: Plan, hull, logical: pa.Schema, timezone: str) -> pa.Table:
    values = {K_START: hull[0] and hull[0].isoformat(), K_END: hull[1] and hull[1].isoformat(),
              K_SCHEMA: encode_schema(logical), K_ZONE: timezone, K_FORMAT: FORMAT}
    items = sorted((k, v) for k, v in values.items() if v)
    return pa.table({"key": [k for k, _ in items], "value": [v for _, v in items]},
                    schema=STATE_SCHEMA)
