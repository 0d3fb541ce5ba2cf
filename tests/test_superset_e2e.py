"""End to end: a pipeline run into DuckDB, its bundle imported into a real Superset 6.1, and
every chart's data endpoint compared with the warehouse tables.

Superset runs from its own cached venv (tests/superset_harness.py), on 127.0.0.1 with a
SQLite metadata database in a temporary folder; every process started is stopped in the
fixture's teardown. With ``CI=true`` a failure to install or start Superset fails the test;
elsewhere an unreachable package index skips it. ``ENGAGE_SKIP_SUPERSET_E2E=1`` skips it.
A headless-Chromium screenshot of the dashboard goes to docs/superset-dashboard.png when
Debian's ``chromium`` is installed (``make env`` / .ci/run install it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import duckdb
import pytest
import yaml

from engage_plugin.config import load_pipeline
from engage_plugin.runner import run_pipeline
from engage_plugin.superset import build_bundle
from engage_plugin.superset.push import push_bundle

import superset_harness as sh

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "superset-dashboard.png"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LAST_DAY = dt.date(2025, 3, 31)

pytestmark = pytest.mark.skipif(os.environ.get("ENGAGE_SKIP_SUPERSET_E2E") == "1",
                                reason="ENGAGE_SKIP_SUPERSET_E2E=1")

PIPELINE = """\
pipeline: e2e_shop
timezone: America/New_York
source:
  path: events.parquet
target:
  uri: duckdb:///warehouse/engage.duckdb
  table_prefix: e2e_
metrics:
  active_users: {windows: [1, 7, 30], breakdown: platform}
  engagement_daily: {breakdown: platform}
  stickiness: {periods: [week]}
  retention: {periods: [week], max_offset: 6, start_events: [signup], breakdown: platform}
  lifecycle: {periods: [week]}
  first_week: {}
"""
# the rest of the catalogue, a second pipeline (and dashboard) over the same DuckDB file
CATALOGUE = """\
pipeline: e2e_catalogue
timezone: America/New_York
source:
  path: events.parquet
target:
  uri: duckdb:///warehouse/engage.duckdb
  table_prefix: e2e_cat_
metrics:
  sessions: {session_gap: 30m, breakdown: platform}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], periods: [week]}
  conversions:
    email_open_rate: {denominator: [email_delivered], numerator: [email_open]}
    email_click_rate: {denominator: [email_open], numerator: [email_click]}
  commerce: {periods: [week]}
  cohort_revenue: {periods: [week], max_offset: 6}
  survey: {periods: [week]}
  engagement_score:
    weights: {purchase: 10, add_to_cart: 3}
    tiers: {power: 50, core: 10, casual: 0}
"""


def _setup_failed(exc: sh.SetupFailed):
    if exc.offline and not IN_CI:
        pytest.skip(f"Superset E2E skipped: {exc}")
    pytest.fail(f"could not install/start Superset: {exc}")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Pipelines run with the runner into a DuckDB file Superset's duckdb (1.x) can read:
    ``[(config, db)]``, the core metrics first, then the rest of the catalogue when this
    version's runner computes it."""
    import pyarrow.parquet as pq

    from engage_plugin.config import AVAILABLE_METRICS
    from engage_plugin.demo import make_demo_log

    folder = tmp_path_factory.mktemp("e2e")
    pq.write_table(make_demo_log(n_users=1500, days=70, end=LAST_DAY), folder / "events.parquet")
    (folder / "warehouse").mkdir()
    db = folder / "warehouse" / "engage.duckdb"
    # Until the target writer creates new files with storage_compatibility_version
    # (docs/superset.md), create the file in the format duckdb 1.x reads; later writes by
    # duckdb 2.x keep a file's format.
    duckdb.connect(str(db), config={"storage_compatibility_version": "v1.0.0"}).close()
    out = []
    texts = [PIPELINE] + ([CATALOGUE] if "engagement_score" in AVAILABLE_METRICS else [])
    for i, text in enumerate(texts):
        (folder / f"pipeline{i}.yaml").write_text(text, encoding="utf-8")
        config = load_pipeline(folder / f"pipeline{i}.yaml")
        assert run_pipeline(config).status == "success"
        out.append((config, db))
    return out


@pytest.fixture(scope="module")
def superset(tmp_path_factory):
    timings = {}
    t0 = time.monotonic()
    try:
        venv = sh.ensure_venv()
    except sh.SetupFailed as exc:
        _setup_failed(exc)
    timings["venv"] = round(time.monotonic() - t0, 1)
    server = sh.SupersetServer(venv, tmp_path_factory.mktemp("superset-home"))
    try:
        with server:
            server.timings.update(timings)
            yield server
    except sh.SetupFailed as exc:
        _setup_failed(exc)
    finally:
        print("\nSuperset timings (s):", json.dumps(server.timings))


def _rows_from_warehouse(db: Path, dataset: dict, query: dict) -> list[dict]:
    """The chart's query run by duckdb on the warehouse: group by the query's columns,
    the saved metrics' SQL, the filters."""
    metrics = {m["metric_name"]: m["expression"] for m in dataset["metrics"]}
    cols = [c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]]
    where = []
    for f in query["filters"]:
        v = f["val"]
        lit = ("TRUE" if v is True else "FALSE" if v is False else
               "'" + str(v).replace("'", "''") + "'")
        assert f["op"] == "==", f
        where.append(f'"{f["col"]}" = {lit}')
    select = [f'"{c}"' for c in cols] + [f'{metrics[m]} AS "{m}"' for m in query["metrics"]]
    group = ", ".join(f'"{c}"' for c in cols)
    sql = (f'SELECT {", ".join(select)} FROM "{dataset["table_name"]}" '
           f'WHERE {" AND ".join(where)}' + (f" GROUP BY {group}" if cols else ""))
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _norm(value):
    if isinstance(value, (dt.datetime, dt.date)):
        d = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
        return d.replace(tzinfo=dt.timezone.utc).timestamp() * 1000
    if isinstance(value, float):
        return round(value, 9)
    return value


def _key(row: dict, cols: list[str]):
    return tuple(_norm(row[c]) for c in cols)


def test_bundle_imports_and_every_chart_returns_the_warehouse_numbers(warehouse, superset,
                                                                      tmp_path):
    client = sh.Client(superset.url)
    client.login()
    files: dict = {}
    t0 = time.monotonic()
    for config, _ in warehouse:
        bundle = build_bundle(config, tmp_path / f"{config.pipeline}.zip")
        with zipfile.ZipFile(bundle) as zf:
            files.update({n: yaml.safe_load(zf.read(n)) for n in zf.namelist()})
        client.import_bundle(bundle)  # POST /api/v1/dashboard/import/ (overwrite=true)
        # a re-import (Engage's own client, /api/v1/assets/import/) updates in place
        assert push_bundle(superset.url, bundle, username=sh.ADMIN[0],
                           password=sh.ADMIN[1]) == {"message": "OK"}
    superset.timings["imports"] = round(time.monotonic() - t0, 1)
    db = warehouse[0][1]

    charts = client.json("GET", "/api/v1/chart/?q=(columns:!(id,uuid,slice_name),"
                         "page_size:100)")["result"]
    ids = {c["uuid"]: c["id"] for c in charts}
    bundle_charts = {k: v for k, v in files.items() if "/charts/" in k}
    assert sorted(ids) == sorted(c["uuid"] for c in bundle_charts.values()), \
        "every chart imported once (a re-import must not duplicate charts)"
    datasets = {v["uuid"]: v for k, v in files.items() if "/datasets/" in k}
    for name, chart in sorted(bundle_charts.items()):
        out = client.json("GET", f"/api/v1/chart/{ids[chart['uuid']]}/data/")
        rows = out["result"][0]["data"]
        assert rows, f"{name}: no rows"
        query = json.loads(chart["query_context"])["queries"][0]
        cols = [c if isinstance(c, str) else c["label"] for c in query["columns"]]
        want = _rows_from_warehouse(db, datasets[chart["dataset_uuid"]], query)
        got = sorted(((_key(r, cols), tuple(_norm(r[m]) for m in query["metrics"]))
                      for r in rows), key=repr)
        exp = sorted(((_key(r, cols), tuple(_norm(r[m]) for m in query["metrics"]))
                      for r in want), key=repr)
        assert got == exp, f"{name}: Superset's rows differ from the warehouse"

    # direct reads of warehouse columns, independent of the bundle's metric SQL
    con = duckdb.connect(str(db), read_only=True)
    dau = dict(con.execute("select day, dau from e2e_engagement_daily "
                           "where segment = 'all'").fetchall())
    triangle = {(c, o): r for c, o, r in con.execute(
        "select cohort_start, period_offset, retention_rate from e2e_retention "
        "where segment = 'all' and period = 'week'").fetchall()}
    con.close()
    uuid_of = {c["slice_name"]: c["uuid"] for c in bundle_charts.values()}

    def data(title):
        chart_id = ids[uuid_of[title]]
        return client.json("GET", f"/api/v1/chart/{chart_id}/data/")["result"][0]["data"]
    assert {_norm(d): v for d, v in dau.items()} == {r["day"]: r["sum__dau"]
                                                      for r in data("DAU / WAU / MAU")}
    assert {(_norm(c), o): _norm(r) for (c, o), r in triangle.items()} == {
        (r["cohort_start"], r["period_offset"]): _norm(r["avg__retention_rate"])
        for r in data("Retention by weekly cohort")}

    dashboards = client.json("GET", "/api/v1/dashboard/")["result"]
    titles = {d["dashboard_title"]: d["id"] for d in dashboards}
    assert sorted(titles) == sorted(f"Engage: {c.pipeline}" for c, _ in warehouse)
    meta = json.loads(client.json("GET", f"/api/v1/dashboard/{titles['Engage: e2e_shop']}")
                      ["result"]["json_metadata"])
    (segment,) = meta["native_filter_configuration"]
    assert segment["targets"][0]["datasetId"] > 0 and segment["name"] == "Segment"

    # Superset opens the file read-only and closes it after each query: Engage can load
    # again right after the charts were read, and the charts read the new load
    config = warehouse[0][0]
    assert run_pipeline(config).status == "success"
    assert data("DAU / WAU / MAU")
    _screenshot(superset, titles["Engage: e2e_shop"], tmp_path)


def _screenshot(superset, dashboard_id: int, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium is not installed: no screenshot (apt-get install -y chromium)")
        return
    t0 = time.monotonic()
    out = tmp_path / "dashboard.png"
    proc = subprocess.run(
        [str(superset.venv / "bin" / "python"), str(Path(__file__).with_name(
            "superset_screenshot.py")), chromium, superset.url,
         f"/superset/dashboard/{dashboard_id}/?standalone=1", str(out),
         str(tmp_path / "chromium-profile"), *sh.ADMIN], capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, f"screenshot failed:\n{proc.stderr[-3000:]}"
    assert out.stat().st_size > 20_000
    shutil.copyfile(out, SCREENSHOT)
    superset.timings["screenshot"] = round(time.monotonic() - t0, 1)
