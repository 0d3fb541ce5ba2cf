"""The readable summary `engage demo` prints, read back from the DuckDB tables the pipeline
wrote (table and column names: METRICS.md section 4)."""

from __future__ import annotations

import sys

RETENTION_OFFSETS = 8
RETENTION_COHORTS = 16
LIFECYCLE_PERIODS = 8
FIRST_WEEK_COHORTS = 7


def _pct(value) -> str:
    return "" if value is None else f"{100.0 * value:.1f}%"


def _table_exists(con, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_name = ?", [name]
    ).fetchone()[0])


def _rows(con, sql: str, params=()):
    return con.execute(sql, list(params)).fetchall()


def _print_grid(header, rows, out) -> None:
    cells = [[str(h) for h in header]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        line = "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
        print("  " + line.rstrip(), file=out)
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths), file=out)


def _activity(con, prefix, out) -> None:
    t = f"{prefix}active_users"
    if not _table_exists(con, t):
        return
    day = _rows(con, f"select max(day) from {t}")[0][0]
    rows = _rows(con, f"""
        select segment,
               max(active_users) filter (where window_days = 1),
               max(active_users) filter (where window_days = 7),
               max(active_users) filter (where window_days = 30)
        from {t} where day = ? group by segment
        order by segment <> 'all', segment = '(none)', segment""", [day])
    print(f"\nActive users on {day} (latest day)", file=out)
    grid = []
    for seg, dau, wau, mau in rows:
        grid.append([seg, dau, wau, mau, _pct(dau / mau) if mau else ""])
    _print_grid(["segment", "DAU", "WAU", "MAU", "DAU/MAU"], grid, out)

    e = f"{prefix}engagement_daily"
    if _table_exists(con, e):
        r = _rows(con, f"""select new_users, total_users, engagement_rate from {e}
                           where day = ? and segment = 'all'""", [day])
        if r:
            new, total, rate = r[0]
            print(f"  new users that day: {new}; users so far: {total}; "
                  f"MAU / users so far: {_pct(rate)}", file=out)


def _stickiness(con, prefix, out) -> None:
    t = f"{prefix}stickiness"
    if not _table_exists(con, t):
        return
    last = _rows(con, f"""select max(period_start) from {t}
                          where period = 'week' and is_complete and segment = 'all'""")[0][0]
    if last is None:
        return
    rows = _rows(con, f"""select days_active, users from {t} where period = 'week'
                          and segment = 'all' and period_start = ? order by days_active""", [last])
    total = sum(u for _, u in rows)
    print(f"\nStickiness, week of {last}: share of the week's active users by days active",
          file=out)
    _print_grid(["days active"] + [str(d) for d, _ in rows],
                [["users"] + [u for _, u in rows],
                 ["share"] + [_pct(u / total) if total else "" for _, u in rows]], out)


def _retention(con, prefix, out) -> None:
    t = f"{prefix}retention"
    if not _table_exists(con, t):
        return
    rows = _rows(con, f"""
        select cohort_start, period_offset, cohort_size, retention_rate, is_complete
        from {t} where period = 'week' and segment = 'all' and period_offset <= ?
        order by cohort_start, period_offset""", [RETENTION_OFFSETS])
    cohorts = {}
    for start, k, size, rate, complete in rows:
        c = cohorts.setdefault(start, {"size": size})
        c[k] = _pct(rate) + ("" if complete else "*")
    starts = sorted(cohorts)[-RETENTION_COHORTS:]
    print("\nWeekly retention (cohort = week of signup; % of the cohort active in week k; "
          "* = week not over)", file=out)
    header = ["cohort", "users"] + [f"wk {k}" for k in range(RETENTION_OFFSETS + 1)]
    grid = [[str(s), cohorts[s]["size"]] + [cohorts[s].get(k, "") for k in range(RETENTION_OFFSETS + 1)]
            for s in starts]
    _print_grid(header, grid, out)


def _last_day(con, prefix):
    """The last day of data, from the daily tables (None when neither is there)."""
    for t in (f"{prefix}engagement_daily", f"{prefix}active_users"):
        if _table_exists(con, t):
            return _rows(con, f"select max(day) from {t}")[0][0]
    return None


def _lifecycle(con, prefix, out) -> None:
    t = f"{prefix}lifecycle"
    if not _table_exists(con, t):
        return
    rows = _rows(con, f"""
        select period_start, new_users, returning_users, resurrecting_users, dormant_users
        from {t} where period = 'week' and segment = 'all'
        order by period_start desc limit ?""", [LIFECYCLE_PERIODS])
    last_day = _last_day(con, prefix)
    print(f"\nLifecycle, last {len(rows)} weeks (dormant = active the week before, not this "
          "week; * = week not over)", file=out)
    grid = [[str(p) + ("*" if last_day is not None and (last_day - p).days < 6 else ""),
             n + r + s, n, r, s, -d] for p, n, r, s, d in reversed(rows)]
    _print_grid(["week", "active", "new", "returning", "resurrecting", "dormant"], grid, out)


def _first_week(con, prefix, out) -> None:
    t = f"{prefix}first_week"
    if not _table_exists(con, t):
        return
    rows = _rows(con, f"""
        select cohort_day, new_users, returned_users, returned_rate, avg_active_days
        from {t} where segment = 'all' and is_complete
        order by cohort_day desc limit ?""", [FIRST_WEEK_COHORTS])
    print("\nFirst week of the latest complete daily cohorts (days d0..d0+6)", file=out)
    grid = [[str(d), n, r, _pct(rate), "" if avg is None else f"{avg:.2f}"]
            for d, n, r, rate, avg in reversed(rows)]
    _print_grid(["first day", "new users", "came back", "came back %", "avg active days"],
                grid, out)


def print_summary(duckdb_path, prefix: str = "engage_", out=sys.stdout) -> None:
    """Print latest DAU/WAU/MAU and DAU/MAU (all and per segment), the last complete week's
    stickiness, a weekly retention triangle, the lifecycle of the last weeks and first-week
    engagement of the latest complete cohorts, read from the DuckDB file."""
    import duckdb

    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        _activity(con, prefix, out)
        _stickiness(con, prefix, out)
        _retention(con, prefix, out)
        _lifecycle(con, prefix, out)
        _first_week(con, prefix, out)
        from engage_plugin.demo_catalogue import print_catalogue

        print_catalogue(con, prefix, out)
    finally:
        con.close()


def _sum_prefixed(d: dict, start: str) -> int:
    return sum(v for k, v in d.items() if k.startswith(start) and isinstance(v, (int, float)))


def print_report(report: dict, out=sys.stdout) -> None:
    """The run report's key figures: rows read, skipped and rejected, rows written, seconds."""
    print("\nRun report", file=out)
    read = report.get("rows_read")
    skipped = report.get("rows_skipped")
    if not isinstance(skipped, (int, float)):
        skipped = _sum_prefixed(report, "rows_skipped")
    rejected = report.get("rows_rejected")
    if isinstance(rejected, dict):  # metric -> reason -> rows
        rejected = sum(n for reasons in rejected.values() for n in reasons.values())
    written = report.get("rows_written")
    if isinstance(written, dict):
        written = f"{sum(written.values())} in {len(written)} tables"
    steps = report.get("seconds")
    seconds = report.get("total_seconds")
    if isinstance(steps, dict):
        if seconds is None:
            seconds = sum(v for v in steps.values() if isinstance(v, (int, float)))
        steps = ", ".join(f"{k} {v:.2f}" for k, v in steps.items() if isinstance(v, (int, float)))
    elif seconds is None:
        seconds, steps = steps, None
    figures = [("rows read", read), ("rows skipped", skipped), ("rows rejected", rejected),
               ("rows written", written),
               ("seconds", f"{seconds:.2f}" if isinstance(seconds, (int, float)) else seconds),
               ("seconds by step", steps or None)]
    for name, value in figures:
        if value is not None:
            print(f"  {name + ':':17s} {value}", file=out)
