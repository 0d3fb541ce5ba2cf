"""The Superset bundle: the keys Superset 6.1's importer requires (SUPERSET_NOTES.md; the
importer's marshmallow schemas reject unknown keys, so the allowed keys are checked too),
stable UUIDs, only the enabled metrics, no password anywhere, and the CLI."""

from __future__ import annotations

import json
import re
import zipfile

import duckdb
import pytest
import yaml

from engage_core.errors import ConfigError, EngageError
from engage_plugin.cli import main
from engage_plugin.config import load_pipeline
from engage_plugin.superset import build_bundle, superset_uri
from engage_plugin.superset.bundle import bundle_files

# ImportV1*Schema of Superset 6.1: required keys, and every key the schema accepts
REQUIRED = {
    "databases": {"database_name", "sqlalchemy_uri", "version", "uuid", "extra"},
    "datasets": {"table_name", "uuid", "version", "database_uuid", "columns", "metrics"},
    "charts": {"slice_name", "viz_type", "uuid", "version", "dataset_uuid", "params",
               "query_context"},
    "dashboards": {"dashboard_title", "uuid", "version", "position"},
}
ALLOWED = {
    "databases": REQUIRED["databases"] | {
        "password", "encrypted_extra", "masked_encrypted_extra", "cache_timeout",
        "expose_in_sqllab", "allow_run_async", "allow_ctas", "allow_cvas", "allow_dml",
        "allow_csv_upload", "impersonate_user", "is_managed_externally", "external_url",
        "ssh_tunnel", "configuration_method"},
    "datasets": REQUIRED["datasets"] | {
        "main_dttm_col", "currency_code_column", "description", "default_endpoint", "offset",
        "cache_timeout", "schema", "catalog", "sql", "source_db_engine", "params",
        "template_params", "filter_select_enabled", "fetch_values_predicate", "extra", "data",
        "is_managed_externally", "external_url", "normalize_columns", "always_filter_main_dttm",
        "folders", "data_file"},
    "charts": REQUIRED["charts"] | {
        "description", "certified_by", "certification_details", "cache_timeout",
        "is_managed_externally", "external_url", "tags"},
    "dashboards": REQUIRED["dashboards"] | {
        "description", "css", "slug", "metadata", "is_managed_externally", "external_url",
        "certified_by", "certification_details", "published", "tags", "theme_uuid",
        "theme_id"},
}
COLUMN_KEYS = {"column_name", "extra", "verbose_name", "is_dttm", "is_active", "type",
               "advanced_data_type", "groupby", "filterable", "expression", "description",
               "python_date_format", "datetime_format"}
METRIC_KEYS = {"metric_name", "verbose_name", "metric_type", "expression", "description",
               "d3format", "currency", "extra"}
DB_EXTRA_KEYS = {"metadata_params", "engine_params", "metadata_cache_timeout",
                 "schemas_allowed_for_csv_upload", "cost_estimate_enabled",
                 "allows_virtual_table_explore", "cancel_query_on_windows_unload",
                 "disable_data_preview", "disable_drill_to_detail", "allow_multi_catalog",
                 "per_user_caching", "version", "schema_options"}
VIZ_TYPES = {"echarts_timeseries_line", "echarts_timeseries_bar", "heatmap_v2", "funnel",
             "big_number", "table"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

BASE = """\
pipeline: {name}
source:
  path: events.parquet
target:
  uri: {uri}
  table_prefix: {prefix}
metrics:
{metrics}"""
CORE = """\
  active_users: {windows: [1, 7, 30], breakdown: platform}
  engagement_daily: {}
  stickiness: {periods: [week, month]}
  retention: {periods: [week], max_offset: 8}
  lifecycle: {periods: [week]}
  first_week: {}
"""
CATALOGUE = """\
  sessions: {session_gap: 30m}
  funnels:
    checkout: {steps: [view, add_to_cart, purchase], periods: [week]}
  conversions:
    email_open_rate: {denominator: [email_delivered], numerator: [email_open]}
  commerce: {periods: [month]}
  cohort_revenue: {periods: [month]}
  survey: {periods: [month]}
  engagement_score: {tiers: {power: 50, core: 10, casual: 0}}
"""


def pipeline(tmp_path, *, name="shop", uri="duckdb:///wh/engage.duckdb", prefix="engage_",
             metrics=CORE):
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE.format(name=name, uri=uri, prefix=prefix, metrics=metrics),
                    encoding="utf-8")
    return path


def read_zip(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def parsed(path) -> dict:
    return {n.split("/", 1)[1]: yaml.safe_load(t) for n, t in read_zip(path).items()}


def test_bundle_has_one_folder_and_the_keys_the_importer_requires(tmp_path):
    out = build_bundle(load_pipeline(pipeline(tmp_path, metrics=CORE + CATALOGUE)),
                       tmp_path / "bundle.zip")
    names = list(read_zip(out))
    assert {n.split("/")[0] for n in names} == {"engage_shop"}
    files = parsed(out)
    assert files["metadata.yaml"] == {"version": "1.0.0"}  # no `type`: any importer takes it
    kinds = {}
    for name, doc in files.items():
        kind = name.split("/")[0]
        if kind == "metadata.yaml":
            continue
        kinds.setdefault(kind, []).append(name)
        assert REQUIRED[kind] <= set(doc), (name, REQUIRED[kind] - set(doc))
        assert set(doc) <= ALLOWED[kind], (name, set(doc) - ALLOWED[kind])
        assert doc["version"] == "1.0.0" and UUID_RE.match(doc["uuid"]), name
    assert len(kinds["databases"]) == 1 and len(kinds["dashboards"]) == 1
    db = files[kinds["databases"][0]]
    assert isinstance(db["extra"], dict) and set(db["extra"]) <= DB_EXTRA_KEYS
    assert db["sqlalchemy_uri"] == "duckdb:///" + str(tmp_path / "wh" / "engage.duckdb")
    assert db["sqlalchemy_uri"].startswith("duckdb:////")
    datasets = {files[n]["uuid"]: files[n] for n in kinds["datasets"]}
    for name in kinds["datasets"]:
        doc = files[name]
        assert name == f"datasets/{db['database_name']}/{doc['table_name']}.yaml"
        assert doc["database_uuid"] == db["uuid"]
        assert doc["columns"] and doc["metrics"]
        for col in doc["columns"]:
            assert set(col) <= COLUMN_KEYS and col["type"]
            assert col["is_dttm"] == (col["type"] in ("DATE", "TIMESTAMP"))
        assert {c["column_name"] for c in doc["columns"]} >= {"segment", "computed_at"}
        for metric in doc["metrics"]:
            assert set(metric) <= METRIC_KEYS and metric["expression"]
    charts = {}
    for name in kinds["charts"]:
        doc = files[name]
        assert doc["viz_type"] in VIZ_TYPES
        assert isinstance(doc["params"], dict)
        assert doc["dataset_uuid"] in datasets
        qc = json.loads(doc["query_context"])  # a JSON *string*
        assert isinstance(doc["query_context"], str) and qc["queries"]
        dataset = datasets[doc["dataset_uuid"]]
        cols = {c["column_name"] for c in dataset["columns"]}
        saved = {m["metric_name"] for m in dataset["metrics"]}
        for q in qc["queries"]:
            assert set(q["metrics"]) <= saved, name
            assert {f["col"] for f in q["filters"]} <= cols
            assert {"col": "segment", "op": "==", "val": "all"} in q["filters"]
            for c in q["columns"]:
                assert (c if isinstance(c, str) else c["sqlExpression"]) in cols
        charts[doc["uuid"]] = doc
    # the dashboard places every chart; the segment native filter targets a bundled dataset
    dash = files[kinds["dashboards"][0]]
    nodes = [v for v in dash["position"].values() if isinstance(v, dict)
             and v.get("type") == "CHART"]
    assert sorted(n["meta"]["uuid"] for n in nodes) == sorted(charts)
    assert all(isinstance(n["meta"]["chartId"], int) for n in nodes)
    assert len({n["meta"]["chartId"] for n in nodes}) == len(nodes)
    for node_id, node in dash["position"].items():
        if isinstance(node, dict):
            for child in node.get("children", []):
                assert child in dash["position"], (node_id, child)
    (flt,) = dash["metadata"]["native_filter_configuration"]
    assert flt["targets"][0]["column"]["name"] == "segment"
    assert flt["targets"][0]["datasetUuid"] in datasets
    assert flt["defaultDataMask"]["filterState"]["value"] == ["all"]


def test_uuids_are_stable_and_distinct_per_pipeline(tmp_path):
    one = parsed(build_bundle(load_pipeline(pipeline(tmp_path)), tmp_path / "a.zip"))
    two = parsed(build_bundle(pipeline(tmp_path), tmp_path / "b.zip"))  # a path works too
    assert one == two
    assert read_zip(tmp_path / "a.zip") == read_zip(tmp_path / "b.zip")
    other = parsed(build_bundle(load_pipeline(pipeline(tmp_path, name="blog", prefix="blog_")),
                                tmp_path / "c.zip"))
    uuids = lambda files: {d["uuid"] for n, d in files.items() if n != "metadata.yaml"}
    assert not uuids(one) & uuids(other)
    # per-pipeline table names (SQLite metadata collides on equal table names)
    assert {d["table_name"] for n, d in other.items() if n.startswith("datasets/")} == {
        "blog_" + t for t in ("active_users", "engagement_daily", "stickiness", "retention",
                              "retention_summary", "lifecycle", "first_week")}


def test_only_enabled_metrics(tmp_path):
    files = parsed(build_bundle(load_pipeline(pipeline(
        tmp_path, metrics="  engagement_daily: {}\n  retention: {periods: [week]}\n")),
        tmp_path / "b.zip"))
    tables = {d["table_name"] for n, d in files.items() if n.startswith("datasets/")}
    assert tables == {"engage_engagement_daily", "engage_retention", "engage_retention_summary"}
    viz = sorted(d["viz_type"] for n, d in files.items() if n.startswith("charts/"))
    assert viz == ["echarts_timeseries_line"] * 3 + ["heatmap_v2"]
    full = parsed(build_bundle(load_pipeline(pipeline(tmp_path, metrics=CORE + CATALOGUE)),
                               tmp_path / "c.zip"))
    titles = " | ".join(d["slice_name"] for n, d in full.items() if n.startswith("charts/"))
    for word in ("DAU / WAU / MAU", "Stickiness", "Retention by weekly cohort",
                 "Retention curve", "Lifecycle", "First week", "Sessions", "Funnel checkout",
                 "Revenue", "lifetime value", "NPS and CSAT", "Conversion"):
        assert word in titles, word
    assert "funnel" in {d["viz_type"] for d in full.values() if "viz_type" in d}
    brackets = parsed(build_bundle(load_pipeline(pipeline(
        tmp_path, metrics="  retention: {periods: [week], brackets: [[1, 3], [4, 7]]}\n")),
        tmp_path / "d.zip"))
    assert "datasets/engage_shop/engage_retention_brackets.yaml" in brackets


@pytest.mark.parametrize("uri, expected", [
    ("postgresql://bi:s3cr%40t@db.example:5432/analytics",
     "postgresql://bi@db.example:5432/analytics"),
    ("postgres://bi:pw@db/analytics?sslmode=require",
     "postgresql://bi@db/analytics?sslmode=require"),
    ("postgresql+psycopg2://bi:pw@db/a", "postgresql+psycopg2://bi@db/a"),
    ("mysql://bi:pw@db:3306/analytics", "mysql://bi@db:3306/analytics"),
    ("mysql+pymysql://bi@db/analytics", "mysql+pymysql://bi@db/analytics"),
])
def test_server_uris_never_carry_a_password(tmp_path, uri, expected):
    assert superset_uri(uri) == expected
    out = build_bundle(load_pipeline(pipeline(tmp_path, uri=uri)), tmp_path / "b.zip")
    for name, text in read_zip(out).items():
        assert "s3cr" not in text and ":pw@" not in text, name
    db = next(d for n, d in parsed(out).items() if n.startswith("databases/"))
    assert db["sqlalchemy_uri"] == expected and "password" not in db


def test_bad_targets_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="secret"):
        superset_uri("postgresql://bi@db/a?password=x")
    with pytest.raises(ConfigError, match="in-memory"):
        superset_uri("duckdb:///:memory:")
    with pytest.raises(ConfigError, match="support duckdb, postgresql and mysql"):
        superset_uri("sqlite:///x.db")
    path = tmp_path / "p.yaml"
    path.write_text("pipeline: p\nsource: {path: e.parquet}\ntarget: {conn_id: wh}\n"
                    "metrics: {engagement_daily: {}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="target_uri"):
        bundle_files(load_pipeline(path))
    files = bundle_files(load_pipeline(path), target_uri="postgresql://u:p@h/db")
    assert files["databases/engage_p.yaml"]["sqlalchemy_uri"] == "postgresql://u@h/db"
    assert issubclass(ConfigError, EngageError)


def test_cli_superset_bundle(tmp_path, capsys):
    path = pipeline(tmp_path)
    out = tmp_path / "bundle.zip"
    assert main(["superset-bundle", str(path), "-o", str(out)]) == 0
    assert zipfile.is_zipfile(out)
    assert str(out) in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: shop\nsource: {path: e.parquet}\nmetrics: {retension: {}}\n",
                   encoding="utf-8")
    assert main(["superset-bundle", str(bad), "-o", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert "retension" in err and "did you mean `retention`" in err
    assert not (tmp_path / "x.zip").exists()
    assert main(["superset-bundle", str(tmp_path / "missing.yaml"), "-o", str(out)]) == 2


def test_dataset_types_match_the_tables_the_runner_writes(tmp_path):
    """The dataset column types are the DuckDB types of a real run's tables."""
    import pyarrow.parquet as pq

    from engage_plugin.demo import make_demo_log
    from engage_plugin.runner import run_pipeline
    from engage_plugin.superset import datasets as ds

    import datetime as dt
    pq.write_table(make_demo_log(n_users=200, days=20, end=dt.date(2025, 3, 31)),
                   tmp_path / "events.parquet")
    from engage_plugin.config import AVAILABLE_METRICS

    catalogue = "engagement_score" in AVAILABLE_METRICS  # the runner computes every family
    config = load_pipeline(pipeline(tmp_path, metrics=CORE.replace(
        "max_offset: 8}", "max_offset: 8, brackets: [[1, 3], [4, 7]]}")
        + (CATALOGUE if catalogue else "")))
    run_pipeline(config)
    con = duckdb.connect(str(tmp_path / "wh" / "engage.duckdb"), read_only=True)
    try:
        from engage_plugin.superset.bundle import enabled_tables

        tables = enabled_tables(config)
        assert len(tables) == (len(ds.TABLES) if catalogue else 8)
        for table in tables:
            got = con.execute("select column_name, data_type from information_schema.columns "
                              "where table_name = ? order by ordinal_position",
                              ["engage_" + table]).fetchall()
            assert got == [(n, "VARCHAR" if t == "VARCHAR" else t)
                           for n, t in ds.columns(table)], table
    finally:
        con.close()


def duckdb_storage_version(path) -> int:
    """The storage version number in a DuckDB file's main header (bytes 12..20 after the
    checksum and the ``DUCK`` magic): 64 is v1.0.0's format, which duckdb 1.x reads."""
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[8:12] == b"DUCK"
    return int.from_bytes(head[12:20], "little")


def test_a_new_target_file_is_readable_by_superset_duckdb(tmp_path):
    import datetime as dt

    import pyarrow.parquet as pq

    from engage_plugin.demo import make_demo_log
    from engage_plugin.runner import run_pipeline

    pq.write_table(make_demo_log(n_users=50, days=10, end=dt.date(2025, 3, 31)),
                   tmp_path / "events.parquet")
    run_pipeline(load_pipeline(pipeline(tmp_path, metrics="  engagement_daily: {}\n")))
    assert duckdb_storage_version(tmp_path / "wh" / "engage.duckdb") <= 68


def test_a_compatible_file_stays_compatible_after_a_run(tmp_path):
    """A file created in v1.0.0's format keeps it when duckdb 2.x writes to it (what the
    end-to-end test and docs/superset.md rely on)."""
    import datetime as dt

    import pyarrow.parquet as pq

    from engage_plugin.demo import make_demo_log
    from engage_plugin.runner import run_pipeline

    (tmp_path / "wh").mkdir()
    db = tmp_path / "wh" / "engage.duckdb"
    duckdb.connect(str(db), config={"storage_compatibility_version": "v1.0.0"}).close()
    pq.write_table(make_demo_log(n_users=50, days=10, end=dt.date(2025, 3, 31)),
                   tmp_path / "events.parquet")
    run_pipeline(load_pipeline(pipeline(tmp_path, metrics="  engagement_daily: {}\n")))
    assert duckdb_storage_version(db) == 64
