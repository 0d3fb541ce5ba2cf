"""The charts of an Engage dashboard: Superset ``params`` and a stored ``query_context``.

Each chart reads one metric table. ``params`` is what Superset's Explore view edits; the
dashboard builds its queries from it plus the native ``segment`` filter (default ``all``).
``query_context`` is the query Superset runs for ``GET /api/v1/chart/<id>/data/`` (and for
reports and thumbnails): the same query with ``segment = 'all'`` fixed, because without a
segment every row would be counted once per segment.

Metrics are the dataset's saved metrics (datasets.py), referenced by name.
"""

from __future__ import annotations

import dataclasses
import json

from engage_plugin.config import PipelineConfig

ROW_LIMIT = 10000
SEGMENT_ALL = {"col": "segment", "op": "==", "val": "all"}


@dataclasses.dataclass
class Chart:
    key: str            # stable name inside the pipeline (the UUID derives from it)
    title: str
    viz_type: str
    table: str          # metric table without prefix
    x_axis: str
    metrics: list
    groupby: list = dataclasses.field(default_factory=list)
    filters: list = dataclasses.field(default_factory=list)  # [(col, op, val)]
    temporal_x: bool = True
    extra: dict = dataclasses.field(default_factory=dict)
    width: int = 6
    segment_filter: bool = True   # in the native filter's scope

    def params(self, datasource: str) -> dict:
        adhoc = [{"expressionType": "SIMPLE", "subject": c, "operator": op, "comparator": v,
                  "clause": "WHERE", "isExtra": False, "isNew": False}
                 for c, op, v in self.filters]
        p = {"datasource": datasource, "viz_type": self.viz_type, "adhoc_filters": adhoc,
             "row_limit": ROW_LIMIT, "color_scheme": "supersetColors", "extra_form_data": {},
             "dashboards": []}
        if self.viz_type == "heatmap_v2":
            p.update({"x_axis": self.x_axis, "groupby": self.groupby[0], "metric": self.metrics[0],
                      "sort_x_axis": "alpha_asc", "sort_y_axis": "alpha_asc",
                      "normalize_across": "heatmap", "linear_color_scheme": "blue_white_yellow",
                      "show_values": True, "show_percentage": False, "value_bounds": [None, None],
                      "y_axis_format": ".0%", "xscale_interval": -1, "yscale_interval": -1,
                      "left_margin": "auto", "bottom_margin": "auto", "legend_type": "continuous",
                      "time_format": "%Y-%m-%d", "currency_format": {}})
        elif self.viz_type == "funnel":
            p.update({"groupby": [self.x_axis], "metric": self.metrics[0],
                      "sort_by_metric": True, "show_labels": True, "show_legend": False,
                      "label_type": "key_value_percent", "number_format": "SMART_NUMBER"})
        else:
            p.update({"x_axis": self.x_axis, "metrics": list(self.metrics),
                      "groupby": list(self.groupby), "time_grain_sqla": "P1D" if self.temporal_x
                      else None, "x_axis_sort_asc": True, "x_axis_sort_series": "name",
                      "x_axis_sort_series_ascending": True, "order_desc": True,
                      "truncate_metric": True, "show_legend": True, "legendType": "scroll",
                      "legendOrientation": "top", "rich_tooltip": True, "markerEnabled": True,
                      "y_axis_format": "SMART_NUMBER", "x_axis_time_format": "smart_date",
                      "comparison_type": "values", "annotation_layers": [], "forecastEnabled":
                      False, "only_total": True, "truncateYAxis": False})
        p.update(self.extra)
        return p

    def query_columns(self) -> list:
        if self.viz_type == "funnel":
            return [self.x_axis]
        axis = {"columnType": "BASE_AXIS", "sqlExpression": self.x_axis, "label": self.x_axis,
                "expressionType": "SQL"}
        if self.temporal_x and self.viz_type != "heatmap_v2":
            axis["timeGrain"] = "P1D"
        if self.viz_type == "heatmap_v2":
            return [self.x_axis] + list(self.groupby)
        return [axis] + list(self.groupby)

    def query_context(self, datasource_id: int, params: dict) -> str:
        filters = [dict(SEGMENT_ALL)] + [{"col": c, "op": op, "val": v}
                                         for c, op, v in self.filters]
        query = {
            "filters": filters,
            "extras": {"having": "", "where": ""} | (
                {"time_grain_sqla": "P1D"} if self.temporal_x and self.viz_type not in
                ("heatmap_v2", "funnel") else {}),
            "applied_time_extras": {},
            "columns": self.query_columns(),
            "metrics": list(self.metrics),
            "orderby": [[self.metrics[0], False]] if self.viz_type == "funnel" else [],
            "annotation_layers": [],
            "row_limit": ROW_LIMIT,
            "series_columns": list(self.groupby) if self.viz_type.startswith("echarts") else [],
            "series_limit": 0,
            "order_desc": True,
            "url_params": {},
            "custom_params": {},
            "custom_form_data": {},
        }
        return json.dumps({"datasource": {"id": datasource_id, "type": "table"}, "force": False,
                           "queries": [query], "form_data": params, "result_format": "json",
                           "result_type": "full"}, sort_keys=True)


def _line(key, title, table, x, metrics, **kw) -> Chart:
    return Chart(key, title, "echarts_timeseries_line", table, x, metrics, **kw)


def _bar(key, title, table, x, metrics, **kw) -> Chart:
    return Chart(key, title, "echarts_timeseries_bar", table, x, metrics, **kw)


ADJ = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}


def charts_for(config: PipelineConfig) -> list[Chart]:
    """Every chart for the metrics ``config`` enables, in dashboard order."""
    m = config.metrics
    out: list[Chart] = []
    if "engagement_daily" in m:
        out.append(_line("dau_wau_mau", "DAU / WAU / MAU", "engagement_daily", "day",
                         ["sum__dau", "sum__wau", "sum__mau"], width=8))
        out.append(_line("stickiness_dau_mau", "Stickiness (DAU / MAU)", "engagement_daily",
                         "day", ["avg__stickiness"], width=4,
                         extra={"y_axis_format": ".0%"}))
    if "active_users" in m:
        out.append(_line("active_users", "Active users by window (days)", "active_users", "day",
                         ["sum__active_users"], groupby=["window_days"], width=12))
    for p in getattr(m.get("stickiness"), "periods", ()) or ():
        out.append(_bar(f"stickiness_{p}", f"Stickiness: days active per {p} (complete {p}s)",
                        "stickiness", "days_active", ["sum__users"], temporal_x=False,
                        filters=[("period", "==", p), ("is_complete", "==", True)]))
    for p in getattr(m.get("retention"), "periods", ()) or ():
        out.append(Chart(f"retention_heatmap_{p}", f"Retention by {ADJ[p]} cohort",
                         "heatmap_v2", "retention", "period_offset", ["avg__retention_rate"],
                         groupby=["cohort_start"], filters=[("period", "==", p)],
                         temporal_x=False, width=8))
        out.append(_line(f"retention_curve_{p}", f"Retention curve, {ADJ[p]} (classic and "
                         "unbounded)", "retention", "period_offset",
                         ["pooled_retention", "pooled_retention_unbounded"], temporal_x=False,
                         filters=[("period", "==", p), ("is_complete", "==", True)], width=4,
                         extra={"y_axis_format": ".0%"}))
    for p in getattr(m.get("lifecycle"), "periods", ()) or ():
        out.append(_bar(f"lifecycle_{p}", f"Lifecycle ({ADJ[p]}): new, returning, "
                        "resurrecting, dormant", "lifecycle", "period_start",
                        ["sum__new_users", "sum__returning_users", "sum__resurrecting_users",
                         "dormant_negative"], filters=[("period", "==", p)], width=12,
                        segment_filter=False, extra={"stack": "Stack"}))
    if "first_week" in m:
        out.append(_line("first_week", "First week: share of new users who came back "
                         "(complete cohorts)", "first_week", "cohort_day",
                         ["pooled_returned_rate"], filters=[("is_complete", "==", True)],
                         extra={"y_axis_format": ".0%"}))
        out.append(_bar("first_week_new_users", "New users per day", "first_week",
                        "cohort_day", ["sum__new_users"]))
    if "sessions" in m:
        out.append(_line("sessions", "Sessions and users per day", "sessions_daily", "day",
                         ["sum__sessions", "sum__users"]))
        out.append(_line("session_length", "Average session length (seconds)",
                         "sessions_daily", "day", ["avg__avg_session_seconds"]))
    for name, opts in (m.get("funnels") or {}).items():
        p = opts.periods[0]
        out.append(Chart(f"funnel_{name}", f"Funnel {name} ({ADJ[p]} entrants, all periods)",
                         "funnel", "funnel", "step_name", ["sum__users"],
                         filters=[("funnel", "==", name), ("period", "==", p)]))
    conv_periods = sorted({p for o in (m.get("conversions") or {}).values() for p in o.periods})
    for p in conv_periods:
        out.append(_line(f"conversion_{p}", f"Conversion rates ({ADJ[p]})", "conversion",
                         "period_start", ["avg__rate"], groupby=["name"],
                         filters=[("period", "==", p)], extra={"y_axis_format": ".0%"}))
    for p in getattr(m.get("commerce"), "periods", ()) or ():
        out.append(_bar(f"revenue_{p}", f"Revenue ({ADJ[p]})", "commerce", "period_start",
                        ["sum__revenue"], filters=[("period", "==", p)]))
        out.append(_line(f"orders_{p}", f"Customers and orders ({ADJ[p]})", "commerce",
                         "period_start", ["sum__customers", "sum__orders",
                                          "sum__repeat_customers"],
                         filters=[("period", "==", p)]))
    for p in getattr(m.get("cohort_revenue"), "periods", ()) or ():
        out.append(_line(f"cltv_{p}", f"Customer lifetime value by {ADJ[p]} cohort",
                         "cohort_revenue", "period_offset", ["max__ltv"],
                         groupby=["cohort_start"], temporal_x=False,
                         filters=[("period", "==", p)], width=12))
    for p in getattr(m.get("survey"), "periods", ()) or ():
        out.append(_line(f"survey_{p}", f"NPS and CSAT ({ADJ[p]})", "survey", "period_start",
                         ["avg__score"], groupby=["survey"], filters=[("period", "==", p)]))
    for p in getattr(m.get("engagement_score"), "periods", ()) or ():
        out.append(_bar(f"score_tiers_{p}", f"Users per engagement tier ({ADJ[p]})",
                        "score_tiers", "period_start", ["sum__users"], groupby=["tier"],
                        filters=[("period", "==", p)], extra={"stack": "Stack"}))
    return out
