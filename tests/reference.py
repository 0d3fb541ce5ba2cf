"""A slow, obviously-right pure-Python reference of METRICS.md (sections 1-4) for
active_users, engagement_daily, stickiness, retention (calendar), lifecycle and first_week,
following the choices written down in docs/engine.md where METRICS.md is silent.

Written from the contracts only, never from the engine. Plain loops, sets and dicts.

Input rows are dicts with `user_id` (int, str or None), `ts` (aware datetime = that instant;
naive datetime = a UTC instant; datetime.date = already the local day, ordered as local
midnight; int = nanoseconds since the UTC epoch; or None), `event` (str or None) and any
breakdown columns (str or None).
Output rows are dicts with exactly the engine's column names (docs/engine.md table), days as
datetime.date and rates as float or None.
"""

from datetime import date, datetime, time, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_DAY = timedelta(days=1)
ALL = "all"
NONE_SEGMENT = "(none)"

COLUMNS = {
    "active_users": ["day", "window_days", "segment", "active_users"],
    "engagement_daily": ["day", "segment", "dau", "wau", "mau", "stickiness", "new_users",
                         "total_users", "engagement_rate"],
    "stickiness": ["period_start", "period", "segment", "days_active", "users", "is_complete"],
    "retention": ["cohort_start", "period", "segment", "period_offset", "cohort_size",
                  "retained_users", "retained_users_unbounded", "retention_rate",
                  "retention_rate_unbounded", "is_complete"],
    "lifecycle": ["period_start", "period", "segment", "new_users", "returning_users",
                  "resurrecting_users", "dormant_users"],
    "first_week": ["cohort_day", "segment", "new_users", "returned_users", "returned_rate",
                   "avg_active_days", "is_complete"],
}

PRIMARY_KEYS = {
    "active_users": ["day", "window_days", "segment"],
    "engagement_daily": ["day", "segment"],
    "stickiness": ["period_start", "period", "segment", "days_active"],
    "retention": ["cohort_start", "period", "segment", "period_offset"],
    "lifecycle": ["period_start", "period", "segment"],
    "first_week": ["cohort_day", "segment"],
}


# ----------------------------------------------------------------------------- calendar

def instant_ns(moment):
    """Nanoseconds since the UTC epoch of an aware datetime."""
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def instant_and_day(ts, tz):
    """(instant in ns since the UTC epoch, local day) of one `ts` value (METRICS.md 1, 2)."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            utc = ts.replace(tzinfo=timezone.utc)      # a naive timestamp is a UTC instant
        else:
            utc = ts.astimezone(timezone.utc)
        return instant_ns(utc), utc.astimezone(tz).date()
    if isinstance(ts, date):
        # A date column is already the local day; its instant is local midnight.
        midnight = datetime.combine(ts, time(0), tzinfo=tz)
        return instant_ns(midnight), ts
    if isinstance(ts, int) and not isinstance(ts, bool):
        utc = EPOCH + timedelta(microseconds=ts // 1000)
        return ts, utc.astimezone(tz).date()
    raise TypeError(f"unsupported ts value {ts!r}")


def period_start(day, period, week_start="monday"):
    if period == "day":
        return day
    if period == "week":
        first_weekday = 0 if week_start == "monday" else 6   # datetime: Monday 0 .. Sunday 6
        return day - timedelta(days=(day.weekday() - first_weekday) % 7)
    if period == "month":
        return date(day.year, day.month, 1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"unknown period {period!r}")


def _add_months(start, months):
    index = start.year * 12 + (start.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def shift_period(start, period, k):
    """The start of period `start + k` (k may be negative)."""
    if period == "day":
        return start + timedelta(days=k)
    if period == "week":
        return start + timedelta(days=7 * k)
    if period == "month":
        return _add_months(start, k)
    if period == "quarter":
        return _add_months(start, 3 * k)
    raise ValueError(f"unknown period {period!r}")


def period_last_day(start, period):
    return shift_period(start, period, 1) - ONE_DAY


def period_length(start, period):
    return (period_last_day(start, period) - start).days + 1


def days_between(first, last):
    """Every day from `first` to `last`, both included."""
    out = []
    day = first
    while day <= last:
        out.append(day)
        day += ONE_DAY
    return out


def periods_between(first_day, last_day, period, week_start):
    """Every period start from the period of `first_day` to the period of `last_day`."""
    out = []
    start = period_start(first_day, period, week_start)
    last = period_start(last_day, period, week_start)
    while start <= last:
        out.append(start)
        start = shift_period(start, period, 1)
    return out


def segment_text(value):
    return NONE_SEGMENT if value is None else str(value)


def ratio(numerator, denominator):
    return None if denominator == 0 else numerator / denominator


# ----------------------------------------------------------------------------- the log

class Event:
    def __init__(self, user, instant, day, event, values):
        self.user = user
        self.instant = instant
        self.day = day
        self.event = event
        self.values = values


def qualifies(event, names):
    """docs/engine.md: with None every row qualifies; with a list, a null event never does."""
    if names is None:
        return True
    return event.event is not None and event.event in names


class Log:
    """The kept rows of an event log, with the run report counts (METRICS.md section 1)."""

    def __init__(self, rows, tz, week_start="monday", user="user_id", ts="ts", event="event"):
        self.tz = tz
        self.week_start = week_start
        self.rows_read = 0
        self.rows_skipped_null_user = 0
        self.rows_skipped_null_timestamp = 0
        self.events = []
        for row in rows:
            self.rows_read += 1
            if row.get(user) is None:
                self.rows_skipped_null_user += 1        # a null user is counted first
                continue
            if row.get(ts) is None:
                self.rows_skipped_null_timestamp += 1
                continue
            instant, day = instant_and_day(row[ts], tz)
            values = {k: v for k, v in row.items() if k not in (user, ts, event)}
            self.events.append(Event(row[user], instant, day, row.get(event), values))
        self.num_rows = len(self.events)
        self.num_users = len({e.user for e in self.events})
        days = [e.day for e in self.events]
        self.first_day = min(days) if days else None
        self.last_day = max(days) if days else None

    def report(self):
        return {"rows_read": self.rows_read,
                "rows_skipped_null_user": self.rows_skipped_null_user,
                "rows_skipped_null_timestamp": self.rows_skipped_null_timestamp,
                "num_rows": self.num_rows, "num_users": self.num_users,
                "first_day": self.first_day, "last_day": self.last_day}

    def end(self, end_day):
        return self.last_day if end_day is None else end_day

    def segments(self, breakdown):
        """'all' plus, with a breakdown, every segment seen on a kept row."""
        if breakdown is None:
            return [ALL]
        seen = set()
        for e in self.events:
            seen.add(segment_text(e.values.get(breakdown)))
        return [ALL] + sorted(seen)

    def activity_events(self, segment, breakdown, names):
        """The qualifying events of one activity segment (METRICS.md section 3)."""
        out = []
        for e in self.events:
            if not qualifies(e, names):
                continue
            if segment == ALL or segment_text(e.values.get(breakdown)) == segment:
                out.append(e)
        return out

    def first_rows(self, names, breakdown):
        """user -> (instant, day, segment) of their first qualifying event. Among rows at that
        instant the smallest segment text wins and a null value loses (docs/engine.md)."""
        best = {}
        for e in self.events:
            if not qualifies(e, names):
                continue
            value = e.values.get(breakdown) if breakdown is not None else None
            key = (e.instant, value is None, "" if value is None else str(value))
            if e.user not in best or key < best[e.user][0]:
                best[e.user] = (key, e.day, segment_text(value))
        return {user: (key[0], day, seg) for user, (key, day, seg) in best.items()}


def user_days(events):
    days = {}
    for e in events:
        days.setdefault(e.user, set()).add(e.day)
    return days


def sort_rows(rows, metric):
    key = PRIMARY_KEYS[metric]
    return sorted(rows, key=lambda r: tuple(r[k] for k in key))


# ----------------------------------------------------------------------------- metrics

def active_users(log, windows=(1, 7, 30), events=None, breakdown=None, end_day=None):
    if log.first_day is None:
        return []
    out = []
    for segment in log.segments(breakdown):
        days_of = user_days(log.activity_events(segment, breakdown, events))
        for day in days_between(log.first_day, log.end(end_day)):
            for w in windows:
                lo = day - timedelta(days=w - 1)
                users = {u for u, ds in days_of.items() if any(lo <= d <= day for d in ds)}
                out.append({"day": day, "window_days": w, "segment": segment,
                            "active_users": len(users)})
    return sort_rows(out, "active_users")


def engagement_daily(log, mau_window=30, events=None, breakdown=None, end_day=None):
    if log.first_day is None:
        return []
    out = []
    for segment in log.segments(breakdown):
        days_of = user_days(log.activity_events(segment, breakdown, events))
        first_of = {u: min(ds) for u, ds in days_of.items()}

        def window(day, w):
            lo = day - timedelta(days=w - 1)
            return len([u for u, ds in days_of.items() if any(lo <= d <= day for d in ds)])

        for day in days_between(log.first_day, log.end(end_day)):
            dau, wau, mau = window(day, 1), window(day, 7), window(day, mau_window)
            new = len([u for u, f in first_of.items() if f == day])
            total = len([u for u, f in first_of.items() if f <= day])
            out.append({"day": day, "segment": segment, "dau": dau, "wau": wau, "mau": mau,
                        "stickiness": ratio(dau, mau), "new_users": new, "total_users": total,
                        "engagement_rate": ratio(mau, total)})
    return sort_rows(out, "engagement_daily")


def stickiness(log, period="week", events=None, breakdown=None, end_day=None):
    if log.first_day is None:
        return []
    last = log.end(end_day)
    out = []
    for segment in log.segments(breakdown):
        days_of = user_days(log.activity_events(segment, breakdown, events))
        for start in periods_between(log.first_day, last, period, log.week_start):
            stop = period_last_day(start, period)
            counts = {}
            for ds in days_of.values():
                n = len([d for d in ds if start <= d <= stop])
                counts[n] = counts.get(n, 0) + 1
            for k in range(1, period_length(start, period) + 1):
                out.append({"period_start": start, "period": period, "segment": segment,
                            "days_active": k, "users": counts.get(k, 0),
                            "is_complete": stop <= last})
    return sort_rows(out, "stickiness")


def retention(log, period="week", max_offset=12, start_events=None, return_events=None,
              breakdown=None, end_day=None):
    if log.first_day is None:
        return []
    last = log.end(end_day)
    ws = log.week_start
    firsts = log.first_rows(start_events, breakdown)
    return_periods = {}
    for e in log.events:
        if qualifies(e, return_events):
            return_periods.setdefault(e.user, set()).add(period_start(e.day, period, ws))
    cohorts = {}          # (cohort_start, segment) -> set of users
    for user, (_, day, seg) in firsts.items():
        cohort = period_start(day, period, ws)
        cohorts.setdefault((cohort, ALL), set()).add(user)
        if breakdown is not None:
            cohorts.setdefault((cohort, seg), set()).add(user)
    out = []
    for (cohort, segment), users in cohorts.items():
        size = len(users)
        for k in range(max_offset + 1):
            target = shift_period(cohort, period, k)
            if target > last:
                break
            retained = 0
            unbounded = 0
            for user in users:
                periods = return_periods.get(user, set())
                if target in periods:
                    retained += 1
                if any(p >= target for p in periods):
                    unbounded += 1
            out.append({"cohort_start": cohort, "period": period, "segment": segment,
                        "period_offset": k, "cohort_size": size, "retained_users": retained,
                        "retained_users_unbounded": unbounded,
                        "retention_rate": ratio(retained, size),
                        "retention_rate_unbounded": ratio(unbounded, size),
                        "is_complete": period_last_day(target, period) <= last})
    return sort_rows(out, "retention")


def lifecycle(log, period="week", events=None, end_day=None):
    if log.first_day is None:
        return []
    ws = log.week_start
    active = {}           # user -> set of period starts with a qualifying event
    for e in log.events:
        if qualifies(e, events):
            active.setdefault(e.user, set()).add(period_start(e.day, period, ws))
    out = []
    for p in periods_between(log.first_day, log.end(end_day), period, ws):
        prev = shift_period(p, period, -1)
        new = returning = resurrecting = dormant = 0
        for periods in active.values():
            in_p, in_prev = p in periods, prev in periods
            if in_p and min(periods) == p:
                new += 1
            if in_p and in_prev:
                returning += 1
            if in_p and not in_prev and any(q < prev for q in periods):
                resurrecting += 1
            if in_prev and not in_p:
                dormant += 1
        out.append({"period_start": p, "period": period, "segment": ALL, "new_users": new,
                    "returning_users": returning, "resurrecting_users": resurrecting,
                    "dormant_users": dormant})
    return sort_rows(out, "lifecycle")


def first_week(log, events=None, breakdown=None, end_day=None):
    if log.first_day is None:
        return []
    last = log.end(end_day)
    firsts = log.first_rows(events, breakdown)
    days_of = user_days([e for e in log.events if qualifies(e, events)])
    cohorts = {}          # (d0, segment) -> set of users
    for user, (_, d0, seg) in firsts.items():
        cohorts.setdefault((d0, ALL), set()).add(user)
        if breakdown is not None:
            cohorts.setdefault((d0, seg), set()).add(user)
    out = []
    for (d0, segment), users in cohorts.items():
        week = set(days_between(d0, d0 + timedelta(days=6)))
        returned = 0
        active_days = 0
        for user in users:
            in_week = days_of[user] & week
            active_days += len(in_week)
            if any(d > d0 for d in in_week):
                returned += 1
        out.append({"cohort_day": d0, "segment": segment, "new_users": len(users),
                    "returned_users": returned, "returned_rate": ratio(returned, len(users)),
                    "avg_active_days": ratio(active_days, len(users)),
                    "is_complete": d0 + timedelta(days=6) <= last})
    return sort_rows(out, "first_week")


METRICS = {"active_users": active_users, "engagement_daily": engagement_daily,
           "stickiness": stickiness, "retention": retention, "lifecycle": lifecycle,
           "first_week": first_week}


def compute(metric, rows, tz, week_start="monday", **options):
    """The reference rows of `metric` for an event log given as row dicts."""
    return METRICS[metric](Log(rows, tz, week_start), **options)
