"""Local days and calendar periods.

A row's *day* is the calendar date of its timestamp in the pipeline's IANA time zone,
DST-correct. Days are handled as integers (days since 1970-01-01); periods as integers
counted from the period that holds the first day of data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from engage_core import _columns
from engage_core.errors import ConfigError, SchemaError

EPOCH = dt.date(1970, 1, 1)
_UTC = dt.timezone.utc
PERIODS = ("day", "week", "month", "quarter")
WEEK_STARTS = ("monday", "sunday")
# zones with one UTC offset for all time (besides Etc/GMT, Etc/GMT+1, ..., Etc/GMT-14)
FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal",
                         "Etc/Zulu", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich",
                         "Etc/Greenwich", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0"})
# Earliest / latest UTC day the calendar accepts: years 1..9999, as Python's datetime.
MIN_DAY = (dt.date(1, 1, 2) - EPOCH).days
MAX_DAY = (dt.date(9999, 12, 30) - EPOCH).days


def day_to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def date_to_day(value: dt.date) -> int:
    return (value - EPOCH).days


class Calendar:
    """The time zone and week convention that turn instants into local days and periods.

    >>> cal = Calendar("America/New_York")
    >>> cal.timezone, cal.week_start
    ('America/New_York', 'monday')
    """

    def __init__(self, timezone: str = "UTC", week_start: str = "monday"):
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"timezone: expected an IANA time zone name such as 'Europe/Berlin', "
                f"found {timezone!r}"
            ) from exc
        if week_start not in WEEK_STARTS:
            raise ConfigError(
                f"week_start: expected one of {', '.join(WEEK_STARTS)}, found {week_start!r}"
            )
        self.timezone = timezone
        self.week_start = week_start

    def __repr__(self) -> str:
        return f"Calendar(timezone={self.timezone!r}, week_start={self.week_start!r})"

    @property
    def fixed_offset(self):
        """The zone's UTC offset in seconds when it never changes (UTC, Etc/GMT+5, ...),
        else None."""
        name = self.timezone
        if name in FIXED_ZONES or name.startswith("Etc/GMT"):
            return self._offset(0)
        return None

    def _offset(self, second: int) -> int:
        instant = dt.datetime.fromtimestamp(second, _UTC)
        return int(instant.astimezone(self.zone).utcoffset().total_seconds())

    def transitions(self, lo_sec: int, hi_sec: int) -> tuple[int, list[tuple[int, int]]]:
        """The UTC offset at ``lo_sec`` and every (instant, new offset) change up to ``hi_sec``.

        Offsets are sampled every 6 hours (every 7 days for spans over 100 years) and each
        change is located to the second by bisection.
        """
        if self.timezone in ("UTC", "Etc/UTC", "Etc/GMT", "GMT"):
            return 0, []
        step = 6 * 3600 if hi_sec - lo_sec <= 100 * 366 * 86400 else 7 * 86400
        first = self._offset(lo_sec)
        changes: list[tuple[int, int]] = []
        prev_t, prev_off = lo_sec, first
        t = lo_sec
        while t < hi_sec:
            t = min(t + step, hi_sec)
            off = self._offset(t)
            if off != prev_off:
                lo, hi = prev_t, t  # offset(lo) == prev_off, offset(hi) != prev_off
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset(mid) == prev_off:
                        lo = mid
                    else:
                        hi = mid
                changes.append((hi, off))
                prev_off = off
            prev_t = t
        return first, changes

    def utc_day_table(self, lo_day: int, hi_day: int):
        """Per UTC day in ``[lo_day, hi_day]``: offset before / second of change / offset after."""
        n = hi_day - lo_day + 1
        first, changes = self.transitions(lo_day * 86400, (hi_day + 1) * 86400)
        off_before = np.full(n, first, dtype=np.int64)
        trans_sec = np.full(n, 86400, dtype=np.int64)
        off_after = np.full(n, first, dtype=np.int64)
        if changes:
            times = np.array([c[0] for c in changes], dtype=np.int64)
            offs = np.array([first] + [c[1] for c in changes], dtype=np.int64)
            starts = (np.arange(n, dtype=np.int64) + lo_day) * 86400
            k = np.searchsorted(times, starts, side="right")  # changes at or before the start
            k_end = np.searchsorted(times, starts + 86400, side="left")  # changes before the end
            off_before = offs[k]
            off_after = offs[k_end]  # two changes in one UTC day: the later offset wins
            in_day = k_end > k
            trans_sec = np.where(in_day, times[np.minimum(k, len(times) - 1)] - starts, 86400)
        return off_before, trans_sec, off_after


@dataclass(frozen=True)
class PeriodMap:
    """How the days ``first_day .. end_day`` fall into periods of one kind.

    ``of_day[d]`` is the period number of day ``first_day + d``; period 0 holds
    ``first_day``. ``starts[p]`` / ``lengths[p]`` are the first day (as a day number) and
    the length in days of period ``p``.
    """

    kind: str
    first_day: int
    of_day: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def count(self) -> int:
        return len(self.starts)

    def ends(self) -> np.ndarray:
        return self.starts + self.lengths - 1


def period_map(kind: str, first_day: int, end_day: int, week_start: str = "monday") -> PeriodMap:
    """Map every day of ``[first_day, end_day]`` to its period of ``kind``."""
    if kind not in PERIODS:
        raise ConfigError(f"period: expected one of {', '.join(PERIODS)}, found {kind!r}")
    days = np.arange(first_day, end_day + 1, dtype=np.int64)
    if kind == "day":
        keys = days
        starts = days
        lengths = np.ones(len(days), dtype=np.int64)
    elif kind == "week":
        shift = 3 if week_start == "monday" else 4  # 1970-01-01 was a Thursday
        keys = np.floor_divide(days + shift, 7)
        ukeys = np.unique(keys)
        starts = ukeys * 7 - shift
        lengths = np.full(len(ukeys), 7, dtype=np.int64)
    else:
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        size = 1 if kind == "month" else 3
        keys = np.floor_divide(months, size)
        ukeys = np.unique(keys)
        first_month = (ukeys * size).astype("datetime64[M]")
        next_month = ((ukeys + 1) * size).astype("datetime64[M]")
        starts = first_month.astype("datetime64[D]").astype(np.int64)
        lengths = next_month.astype("datetime64[D]").astype(np.int64) - starts
    if kind == "day":
        of_day = np.arange(len(days), dtype=np.int32)
    else:
        of_day = (keys - keys[0]).astype(np.int32) if len(keys) else np.zeros(0, np.int32)
    return PeriodMap(kind, first_day, of_day, np.asarray(starts, np.int64),
                     np.asarray(lengths, np.int64))


class DayMapper:
    """Local days of UTC microsecond instants, batch after batch: the zone's table of UTC
    days is computed for a range around the first batch (SLACK days either side) and only
    recomputed, wider, when a batch has an instant outside it. ``bounds``: the least and
    greatest day returned so far; ``thread_bounds``: after one call only, the least and
    greatest day of each thread's share of the rows (``_activity.day_bitmaps`` reads them).
    """

    SLACK = 400

    def __init__(self, calendar: Calendar, threads: int, column: str):
        self.calendar, self.threads, self.column = calendar, threads, column
        self.lo = self.hi = self.table = self.thread_bounds = None
        self.bounds = (None, None)

    def __call__(self, ts_us, out: np.ndarray | None = None) -> np.ndarray:
        """The days of ``ts_us`` (an int64 array or ``_columns.Int64Chunks``)."""
        if len(ts_us) == 0:
            return np.zeros(0, dtype=np.int32)
        if self.table is None and self.calendar.fixed_offset is not None:
            # one offset for all time: every day of years 1..9999 in a one-entry table, no
            # pass for the instants' range first
            off = np.full(1, self.calendar.fixed_offset, dtype=np.int64)
            self.lo, self.hi = MIN_DAY, MAX_DAY
            self.table = (off, np.full(1, 86400, dtype=np.int64), off)
        if self.table is not None:
            days, outside, lo, hi = _columns.local_days(ts_us, self.lo, *self.table,
                                                        self.threads, out,
                                                        self.hi - self.lo + 1)
            if outside == 0:
                return self._seen(days, lo, hi)
        lo, hi = _columns.chunks_minmax(_columns.as_chunks(ts_us), self.threads)
        lo, hi = lo // 86_400_000_000, hi // 86_400_000_000
        if lo < MIN_DAY or hi > MAX_DAY:
            raise SchemaError(f"column {self.column!r} (timestamp): values outside the years 1..9999")
        if self.table is not None:
            lo, hi = min(lo, self.lo), max(hi, self.hi)
        self.lo, self.hi = max(lo - self.SLACK, MIN_DAY), min(hi + self.SLACK, MAX_DAY)
        self.table = self.calendar.utc_day_table(self.lo, self.hi)
        days, _, lo, hi = _columns.local_days(ts_us, self.lo, *self.table, self.threads, out,
                                              self.hi - self.lo + 1)
        return self._seen(days, lo, hi)

    def _seen(self, days, thread_lo, thread_hi):
        # the days of each thread's share of the rows, while every row was one call
        self.thread_bounds = (thread_lo, thread_hi) if self.bounds[0] is None else None
        lo, hi = int(thread_lo.min()), int(thread_hi.max())
        if self.bounds[0] is not None:
            lo, hi = min(lo, self.bounds[0]), max(hi, self.bounds[1])
        self.bounds = (lo, hi)
        return days


def local_days(column, calendar: Calendar | None = None, threads: int | None = None,
               name: str = "timestamp") -> "pa.Array":
    """Each value's local day in ``calendar``'s zone as an Arrow ``date32`` array (null where
    the value is null), computed exactly as :func:`prepare_events` computes event days.

    >>> import pyarrow as pa, datetime as dt
    >>> ts = pa.array([dt.datetime(2025, 3, 9, 4, 30), None], pa.timestamp("us"))
    >>> local_days(ts, Calendar(timezone="America/New_York")).to_pylist()
    [datetime.date(2025, 3, 8), None]
    """
    import pyarrow as pa

    from engage_core import arrow_io
    from engage_core.events import _check_timestamp, default_threads

    calendar = calendar or Calendar()
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(col, pa.ChunkedArray):  # no chunks
        col = pa.array([], col.type)
    _check_timestamp(col.type, name)
    if pa.types.is_timestamp(col.type):
        ts, valid = arrow_io.timestamp_us(col)
        ts = np.where(valid.astype(bool), ts, 0) if valid is not None else ts
        days = DayMapper(calendar, threads or default_threads(), name)(
            np.ascontiguousarray(ts, dtype=np.int64))
    else:
        days, valid = arrow_io.date_days(col)
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(np.asarray(days, dtype=np.int32), pa.int32(), mask=mask).cast(pa.date32())
