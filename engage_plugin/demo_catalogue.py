"""The demo summary's second half: one line per catalogue metric (sessions, funnel,
conversions, commerce, lifetime value, surveys, engagement tiers), read back from DuckDB."""

from __future__ import annotations

from engage_plugin.demo_summary import _pct, _print_grid, _rows, _table_exists


def print_catalogue(con, prefix: str, out) -> None:
    lines = []
    t = f"{prefix}sessions_daily"
    if _table_exists(con, t):
        r = _rows(con, f"select day, sessions, users, sessions_per_user, median_session_seconds, "
                       f"events_per_session from {t} where segment = 'all' and sessions > 0 "
                       f"order by day desc limit 1")
        if r:
            d, s, u, spu, med, eps = r[0]
            lines.append(("sessions", str(d), f"{s} sessions by {u} users, {spu:.2f} per user, "
                          f"median {med / 60:.1f} min, {eps:.1f} events each"))
    t = f"{prefix}funnel"
    if _table_exists(con, t):
        r = _rows(con, f"select period_start, funnel, step, step_name, users, conversion_from_start "
                       f"from {t} where segment = 'all' and is_complete order by period_start desc, "
                       f"funnel, step")
        if r:
            last = [x for x in r if x[0] == r[0][0] and x[1] == r[0][1]]
            steps = " -> ".join(f"{x[3]} {x[4]}" for x in last)
            lines.append((f"funnel {last[0][1]}", f"week {last[0][0]}",
                          f"{steps} ({_pct(last[-1][5])} convert)"))
    t = f"{prefix}conversion"
    if _table_exists(con, t):
        for name, p, rate, den in _rows(con, f"""
                select name, max(period_start), arg_max(rate, period_start), arg_max(denominator_users, period_start)
                from {t} where segment = 'all' and denominator_users > 0 group by name order by name"""):
            lines.append((name, f"{p}", f"{_pct(rate)} of {den} users"))
    t = f"{prefix}commerce"
    if _table_exists(con, t):
        r = _rows(con, f"select period_start, customers, orders, revenue, avg_order_value, "
                       f"repeat_purchase_rate from {t} where segment = 'all' and period = 'month' "
                       f"and orders > 0 order by period_start desc limit 2")
        if r:
            p, c, o, rev, aov, rep = r[-1]
            lines.append(("commerce", f"month {p}", f"{c} customers, {o} orders, revenue "
                          f"{rev:,.2f}, AOV {aov:.2f}, repeat {_pct(rep)}"))
    t = f"{prefix}cohort_revenue"
    if _table_exists(con, t):
        r = _rows(con, f"select cohort_start, period_offset, ltv from {t} where segment = 'all' "
                       f"and period = 'month' and is_complete order by cohort_start, period_offset")
        if r:
            first = [x for x in r if x[0] == r[0][0]]
            curve = ", ".join(f"m{x[1]} {x[2]:.2f}" for x in first[:7])
            lines.append(("lifetime value", f"cohort {first[0][0]}", curve))
    t = f"{prefix}survey"
    if _table_exists(con, t):
        for survey, p, score, n in _rows(con, f"""
                select survey, max(period_start), arg_max(score, period_start), arg_max(responses, period_start)
                from {t} where segment = 'all' and responses > 0 group by survey order by survey"""):
            lines.append((survey.upper(), f"month {p}", f"{score:.1f} from {n} responses"))
    t = f"{prefix}score_tiers"
    if _table_exists(con, t):
        r = _rows(con, f"select period_start, tier, users from {t} where segment = 'all' and "
                       f"period_start = (select max(period_start) - interval 7 day from {t}) "
                       f"order by tier")
        if r:
            lines.append(("engagement tiers", f"week {r[0][0]}",
                          ", ".join(f"{tier} {users}" for _, tier, users in r)))
    if lines:
        print("\nThe rest of the catalogue (segment 'all'; latest period with data)", file=out)
        _print_grid(["metric", "period", "value"], lines, out)


def print_retention_variants(duckdb_path, out, prefix: str = "engage_",
                             rolling_prefix: str = "engage_rolling_") -> None:
    """Week-k retention of all complete cohorts, pooled, four ways: calendar or rolling
    weeks, classic ("on") or unbounded ("on or after"); then the brackets."""
    import duckdb

    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        tables = [(f"{prefix}retention", "calendar"), (f"{rolling_prefix}retention", "rolling")]
        if not all(_table_exists(con, t) for t, _ in tables):
            return
        rows = []
        for table, label in tables:
            for kind, col in (("on", "retained_users"), ("on or after", "retained_users_unbounded")):
                got = dict(_rows(con, f"""
                    select period_offset, sum({col}) / sum(cohort_size) from {table}
                    where period = 'week' and segment = 'all' and is_complete
                      and period_offset in (1, 2, 4, 8) group by 1"""))
                rows.append([f"{label} weeks, {kind}"] + [_pct(got.get(k)) for k in (1, 2, 4, 8)])
        print("\nRetention variants (cohort = week of signup; pooled over complete cohorts; "
              "docs/retention.md)", file=out)
        _print_grid(["retention", "wk 1", "wk 2", "wk 4", "wk 8"], rows, out)
        brackets = []
        for table, label in ((f"{prefix}retention_brackets", "calendar"),
                             (f"{rolling_prefix}retention_brackets", "rolling")):
            if _table_exists(con, table):
                got = _rows(con, f"""
                    select bracket_start, bracket_end, sum(retained_users) / sum(cohort_size)
                    from {table} where period = 'week' and segment = 'all' and is_complete
                    group by 1, 2 order by 1""")
                brackets.append([f"{label} weeks"] + [f"wk {a}-{b}: {_pct(r)}" for a, b, r in got])
        if brackets:
            width = max(len(b) for b in brackets)
            _print_grid(["brackets"] + [""] * (width - 1), [b + [""] * (width - len(b)) for b in brackets], out)
    finally:
        con.close()
