"""Superset datasets for Engage's metric tables: typed columns and saved metrics.

Column types follow the tables the loader writes (docs/engine.md: days and period starts
``DATE``, counts ``BIGINT``, ``window_days`` / ``days_active`` / ``period_offset`` /
``step`` ``INTEGER``, rates and averages ``DOUBLE``, ``is_complete`` ``BOOLEAN``, text
``VARCHAR``, ``computed_at`` ``TIMESTAMP``). Date and timestamp columns are ``is_dttm``.

Saved metrics are written so that they are right whatever the chart groups by: counts are
``SUM`` (and ``MAX``), rates are ``AVG`` of the stored rate, and where a pooled rate is
meaningful (retention, first week, funnel) a ratio of sums ``1.0 * SUM(a) / NULLIF(SUM(b), 0)``
(portable: no integer division on PostgreSQL, no DuckDB-only syntax).
"""

from __future__ import annotations

D, T, I, B, F, S, TS = "DATE", "VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP"

#: table (without prefix) -> (columns in table order as (name, type), main date column)
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], str | None]] = {
    "active_users": ((("day", D), ("window_days", I), ("segment", T), ("active_users", B)),
                     "day"),
    "engagement_daily": ((("day", D), ("segment", T), ("dau", B), ("wau", B), ("mau", B),
                          ("stickiness", F), ("new_users", B), ("total_users", B),
                          ("engagement_rate", F)), "day"),
    "stickiness": ((("period_start", D), ("period", T), ("segment", T), ("days_active", I),
                    ("users", B), ("is_complete", S)), "period_start"),
    "retention": ((("cohort_start", D), ("period", T), ("segment", T), ("period_offset", I),
                   ("cohort_size", B), ("retained_users", B), ("retained_users_unbounded", B),
                   ("retention_rate", F), ("retention_rate_unbounded", F), ("is_complete", S)),
                  "cohort_start"),
    "retention_summary": ((("period", T), ("segment", T), ("period_offset", I), ("cohorts", B),
                           ("cohort_users", B), ("retained_users", B), ("pooled_rate", F),
                           ("mean_rate", F)), None),
    "retention_brackets": ((("cohort_start", D), ("period", T), ("segment", T),
                            ("bracket_start", I), ("bracket_end", I), ("cohort_size", B),
                            ("retained_users", B), ("retention_rate", F), ("is_complete", S)),
                           "cohort_start"),
    "lifecycle": ((("period_start", D), ("period", T), ("segment", T), ("new_users", B),
                   ("returning_users", B), ("resurrecting_users", B), ("dormant_users", B)),
                  "period_start"),
    "first_week": ((("cohort_day", D), ("segment", T), ("new_users", B), ("returned_users", B),
                    ("returned_rate", F), ("avg_active_days", F), ("is_complete", S)),
                   "cohort_day"),
    "sessions_daily": ((("day", D), ("segment", T), ("sessions", B), ("users", B),
                        ("sessions_per_user", F), ("avg_session_seconds", F),
                        ("median_session_seconds", F), ("events_per_session", F)), "day"),
    "funnel": ((("period_start", D), ("period", T), ("segment", T), ("funnel", T), ("step", I),
                ("step_name", T), ("users", B), ("conversion_from_start", F),
                ("conversion_from_previous", F), ("is_complete", S)), "period_start"),
    "conversion": ((("period_start", D), ("period", T), ("segment", T), ("name", T),
                    ("denominator_users", B), ("numerator_users", B), ("rate", F)),
                   "period_start"),
    "commerce": ((("period_start", D), ("period", T), ("segment", T), ("customers", B),
                  ("orders", B), ("revenue", F), ("avg_order_value", F),
                  ("purchase_frequency", F), ("repeat_customers", B),
                  ("repeat_purchase_rate", F), ("returning_customers", B),
                  ("returning_customer_rate", F)), "period_start"),
    "cohort_revenue": ((("cohort_start", D), ("period", T), ("segment", T),
                        ("period_offset", I), ("cohort_size", B), ("active_customers", B),
                        ("revenue", F), ("cumulative_revenue", F), ("ltv", F),
                        ("is_complete", S)), "cohort_start"),
    "survey": ((("period_start", D), ("period", T), ("segment", T), ("survey", T),
                ("responses", B), ("promoters", B), ("passives", B), ("detractors", B),
                ("satisfied", B), ("score", F)), "period_start"),
    "score_tiers": ((("period_start", D), ("period", T), ("segment", T), ("tier", T),
                     ("users", B), ("avg_score", F)), "period_start"),
}

#: table -> extra saved metrics (name, SQL expression, d3 format); pooled ratios of sums
RATIOS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "retention": (
        ("pooled_retention", "1.0 * SUM(retained_users) / NULLIF(SUM(cohort_size), 0)", ".1%"),
        ("pooled_retention_unbounded",
         "1.0 * SUM(retained_users_unbounded) / NULLIF(SUM(cohort_size), 0)", ".1%"),
    ),
    "retention_brackets": (
        ("pooled_retention", "1.0 * SUM(retained_users) / NULLIF(SUM(cohort_size), 0)", ".1%"),
    ),
    "retention_summary": (
        ("pooled_retention", "1.0 * SUM(retained_users) / NULLIF(SUM(cohort_users), 0)", ".1%"),
    ),
    "first_week": (
        ("pooled_returned_rate", "1.0 * SUM(returned_users) / NULLIF(SUM(new_users), 0)",
         ".1%"),
    ),
    "engagement_daily": (
        ("dau_over_mau", "1.0 * SUM(dau) / NULLIF(SUM(mau), 0)", ".1%"),
    ),
    "lifecycle": (
        ("dormant_negative", "-SUM(dormant_users)", ",d"),
    ),
    "commerce": (
        ("aov", "1.0 * SUM(revenue) / NULLIF(SUM(orders), 0)", ",.2f"),
    ),
    "cohort_revenue": (
        ("pooled_ltv", "1.0 * SUM(cumulative_revenue) / NULLIF(SUM(cohort_size), 0)", ",.2f"),
    ),
    "survey": (
        ("nps", "100.0 * (SUM(promoters) - SUM(detractors)) / NULLIF(SUM(responses), 0)",
         ",.1f"),
    ),
}

KEY_COLUMNS = {"bracket_start", "bracket_end", "day", "cohort_start", "cohort_day", "period_start", "period", "segment",
               "window_days", "days_active", "period_offset", "funnel", "step", "step_name",
               "name", "survey", "tier"}
RATE_FORMAT = ".1%"


def columns(table: str) -> list[tuple[str, str]]:
    """``(name, type)`` of the table's columns, ``computed_at`` last."""
    cols, _ = TABLES[table]
    return list(cols) + [("computed_at", TS)]


def main_dttm_col(table: str) -> str | None:
    return TABLES[table][1]


def saved_metrics(table: str) -> list[dict]:
    """Saved metrics: ``COUNT(*)``, then per measure column SUM/MAX (counts) or AVG/MAX
    (rates, averages), then the pooled ratios."""
    out = [_metric("count", "COUNT(*)", "COUNT(*)")]
    for name, typ in columns(table):
        if name in KEY_COLUMNS or typ in (D, TS, T, S):
            continue
        if typ in (B, I):
            out.append(_metric(f"sum__{name}", f"SUM({name})", name, ",d"))
            out.append(_metric(f"max__{name}", f"MAX({name})", f"MAX({name})", ",d"))
        else:
            fmt = RATE_FORMAT if _is_rate(name) else ",.2f"
            if not _is_rate(name) and not name.startswith(("avg_", "median_")) \
                    and "_per_" not in name:
                out.append(_metric(f"sum__{name}", f"SUM({name})", f"total {name}", fmt))
            out.append(_metric(f"avg__{name}", f"AVG({name})", name, fmt))
            out.append(_metric(f"max__{name}", f"MAX({name})", f"MAX({name})", fmt))
    for name, expr, fmt in RATIOS.get(table, ()):
        out.append(_metric(name, expr, name.replace("_", " "), fmt))
    return out


def _is_rate(name: str) -> bool:
    return name.endswith(("_rate", "rate_unbounded")) or name in (
        "stickiness", "rate", "conversion_from_start", "conversion_from_previous", "pooled_rate",
        "mean_rate")


def _metric(name: str, expression: str, verbose: str, d3format: str | None = None) -> dict:
    return {"metric_name": name, "verbose_name": verbose, "metric_type": None,
            "expression": expression, "description": None, "d3format": d3format,
            "currency": None, "extra": {}}


def dataset_yaml(table: str, *, table_name: str, schema: str | None, uuid: str,
                 database_uuid: str) -> dict:
    """The ``datasets/<db>/<table>.yaml`` content for one metric table."""
    cols = []
    for name, typ in columns(table):
        cols.append({
            "column_name": name, "verbose_name": None, "is_dttm": typ in (D, TS),
            "is_active": True, "type": typ, "advanced_data_type": None,
            "groupby": typ != F, "filterable": True, "expression": None,
            "description": None, "python_date_format": None, "extra": {}})
    return {
        "table_name": table_name,
        "main_dttm_col": main_dttm_col(table),
        "description": f"Engage table {table_name} (see METRICS.md).",
        "default_endpoint": None, "offset": 0, "cache_timeout": None,
        "schema": schema, "catalog": None, "sql": None, "params": None,
        "template_params": None, "filter_select_enabled": True,
        "fetch_values_predicate": None, "extra": None, "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": uuid, "metrics": saved_metrics(table), "columns": cols,
        "version": "1.0.0", "database_uuid": database_uuid,
    }
