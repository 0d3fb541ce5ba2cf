"""The dashboard YAML: a position tree placing every chart and the native ``segment`` filter."""

from __future__ import annotations

CHART_HEIGHT = 50


def _rows(placed):
    """Pack charts into rows of width <= 12, in order."""
    rows, row, used = [], [], 0
    for item in placed:
        width = item[0].width
        if row and used + width > 12:
            rows.append(row)
            row, used = [], 0
        row.append(item)
        used += width
    if row:
        rows.append(row)
    return rows


def dashboard_yaml(pipeline: str, placed, *, uuid: str, filter_dataset_uuid: str,
                   filter_id: str, version: str) -> dict:
    """``placed``: ``[(Chart, chart uuid, local chart id)]``. CHART nodes carry ``type``,
    ``meta.uuid`` and ``meta.chartId`` (Superset remaps the ids on import)."""
    title = f"Engage: {pipeline}"
    position: dict = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"id": "ROOT_ID", "type": "ROOT", "children": ["GRID_ID"]},
        "GRID_ID": {"id": "GRID_ID", "type": "GRID", "parents": ["ROOT_ID"], "children": []},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": title}},
    }
    for r, row in enumerate(_rows(placed), start=1):
        row_id = f"ROW-engage-{r}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"id": row_id, "type": "ROW", "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}, "children": []}
        for chart, chart_uuid, chart_id in row:
            node_id = f"CHART-engage-{chart.key}"
            position[row_id]["children"].append(node_id)
            position[node_id] = {
                "id": node_id, "type": "CHART", "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"chartId": chart_id, "uuid": chart_uuid, "sliceName": chart.title,
                         "width": chart.width, "height": CHART_HEIGHT}}
    excluded = [chart_id for chart, _, chart_id in placed if not chart.segment_filter]
    segment_filter = {
        "id": "NATIVE_FILTER-engage-segment-" + filter_id[:8],
        "name": "Segment", "filterType": "filter_select", "type": "NATIVE_FILTER",
        "description": "'all' is the whole population; other values are breakdown segments",
        "targets": [{"column": {"name": "segment"}, "datasetUuid": filter_dataset_uuid}],
        "controlValues": {"enableEmptyFilter": True, "defaultToFirstItem": False,
                          "multiSelect": False, "searchAllOptions": False,
                          "inverseSelection": False},
        "defaultDataMask": {
            "extraFormData": {"filters": [{"col": "segment", "op": "IN", "val": ["all"]}]},
            "filterState": {"value": ["all"], "label": "all"}, "ownState": {}},
        "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": excluded},
        "requiredFirst": True,
    }
    return {
        "dashboard_title": title, "description": None, "css": "", "slug": f"engage-{pipeline}",
        "certified_by": None, "certification_details": None, "published": True,
        "uuid": uuid, "position": position,
        "metadata": {"native_filter_configuration": [segment_filter],
                     "chart_configuration": {}, "global_chart_configuration": {},
                     "color_scheme": "supersetColors", "cross_filters_enabled": False,
                     "refresh_frequency": 0, "expanded_slices": {},
                     "timed_refresh_immune_slices": [], "default_filters": "{}",
                     "shared_label_colors": [], "label_colors": {}},
        "version": version,
    }
