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
