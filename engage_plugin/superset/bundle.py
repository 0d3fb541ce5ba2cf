"""``build_bundle(config, out_path)``: a Superset 6 import bundle for a pipeline's tables.

The zip holds ONE top-level folder ``engage_<pipeline>/`` with ``metadata.yaml``
(``version: 1.0.0``, no ``type``, so both the dashboard and the assets importers take it),
``databases/<db>.yaml`` (the pipeline's target), ``datasets/<db>/<table>.yaml`` (one per
metric table the pipeline writes), ``charts/<chart>.yaml`` and ``dashboards/<pipeline>.yaml``.

UUIDs are ``uuid5`` of a fixed namespace and ``<pipeline>/<kind>/<name>``, so a second
bundle of the same pipeline has the same UUIDs and a re-import updates in place.

The database entry never holds a password: it is removed from the URI (give it at import:
``passwords={"databases/<db>.yaml": ...}`` in the REST import, the password prompt of the
UI import, or the database's edit form afterwards). Query-string secrets are refused.
"""

from __future__ import annotations

import os
import uuid as uuidlib
import zipfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import yaml

from engage_core.errors import ConfigError
from engage_plugin.config import PipelineConfig, load_pipeline
from engage_plugin.superset import charts as charts_mod
from engage_plugin.superset import datasets as ds
from engage_plugin.superset.dashboard import dashboard_yaml

#: namespace of every Engage bundle UUID (never change it: re-imports match on UUIDs)
NAMESPACE = uuidlib.UUID("6f1b3c2e-8a47-5d0e-9c21-3e8b7a5d4f10")
VERSION = "1.0.0"
SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "token", "secret", "access_token")


def stable_uuid(pipeline: str, kind: str, name: str) -> str:
    """``uuid5(NAMESPACE, "<pipeline>/<kind>/<name>")`` as text."""
    return str(uuidlib.uuid5(NAMESPACE, f"{pipeline}/{kind}/{name}"))


def superset_uri(uri: str) -> str:
    """The SQLAlchemy URI Superset gets for the target ``uri``, without any password.

    DuckDB files become ``duckdb:////abs/path`` (the pipeline loader already made them
    absolute); ``postgres://`` becomes ``postgresql://``; ``mysql://`` uses the mysqldb
    driver as Superset's default."""
    if not isinstance(uri, str) or "://" not in uri:
        raise ConfigError(f"target.uri: expected a URL like duckdb:///engage.duckdb, found {uri!r}")
    scheme = uri.split("://", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    if base == "duckdb":
        path = uri.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        path = path.split("?", 1)[0]
        if not path or path == ":memory:":
            raise ConfigError("target.uri: an in-memory DuckDB target has no tables Superset "
                              "could read; use a file (duckdb:///engage.duckdb)")
        return "duckdb:///" + os.path.abspath(path)
    if base not in ("postgresql", "postgres", "mysql", "mariadb"):
        raise ConfigError(f"target.uri: Superset bundles support duckdb, postgresql and mysql "
                          f"targets, found {scheme}://")
    parts = urlsplit(uri)
    if base == "postgres":
        scheme = "postgresql" + scheme[len("postgres"):]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    for key, _ in parse_qsl(parts.query):
        if key.lower() in SECRET_QUERY_KEYS:
            raise ConfigError(f"target.uri: the query parameter `{key}` looks like a secret; "
                              "it must not go into a Superset bundle (give it in Superset)")
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def database_yaml(config: PipelineConfig, uri: str, db_name: str) -> dict:
    extra: dict = {"allows_virtual_table_explore": True, "metadata_params": {},
                   "engine_params": {}, "schemas_allowed_for_csv_upload": []}
    if uri.startswith("duckdb:"):
        # Superset only reads: a read-only connection never takes DuckDB's writer lock, so
        # Engage's loads are not blocked by an idle dashboard (NullPool closes it after use)
        extra["engine_params"] = {"connect_args": {"read_only": True}}
    return {"database_name": db_name, "sqlalchemy_uri": uri, "cache_timeout": None,
            "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False,
            "allow_cvas": False, "allow_dml": False, "allow_csv_upload": False,
            "extra": extra, "uuid": stable_uuid(config.pipeline, "database", db_name),
            "version": VERSION}


def enabled_tables(config: PipelineConfig) -> list[str]:
    """Metric tables (without prefix) the pipeline writes, in a stable order."""
    from engage_plugin.compute import FAMILY_TABLES, family_tables

    out: list[str] = []
    for family in FAMILY_TABLES:
        if family in config.metrics:
            out.extend(t for t in family_tables(family, config.metrics[family])
                       if t not in out and t in ds.TABLES)
    return out


def bundle_files(config: PipelineConfig, target_uri: str | None = None) -> dict[str, dict]:
    """``path inside the bundle folder -> YAML content`` (without the top-level folder)."""
    uri = target_uri or config.target.uri
    if not uri:
        raise ConfigError(f"{config.where('target', 'conn_id')}: the target is the Airflow "
                          f"connection {config.target.conn_id!r}; a Superset bundle needs its "
                          "URL: pass target_uri= (EngageSupersetPushOperator resolves it)")
    uri = superset_uri(uri)
    pipeline, prefix, schema = config.pipeline, config.target.table_prefix, config.target.schema
    db_name = f"engage_{pipeline}"
    db = database_yaml(config, uri, db_name)
    files: dict[str, dict] = {"metadata.yaml": {"version": VERSION},
                              f"databases/{db_name}.yaml": db}
    dataset_uuids: dict[str, str] = {}
    for table in enabled_tables(config):
        table_name = prefix + table
        dataset_uuids[table] = stable_uuid(pipeline, "dataset", table_name)
        files[f"datasets/{db_name}/{table_name}.yaml"] = ds.dataset_yaml(
            table, table_name=table_name, schema=schema, uuid=dataset_uuids[table],
            database_uuid=db["uuid"])
    placed = []
    for i, chart in enumerate(charts_mod.charts_for(config), start=1):
        chart_uuid = stable_uuid(pipeline, "chart", chart.key)
        params = chart.params(f"{i}__table")
        files[f"charts/{pipeline}_{chart.key}.yaml"] = {
            "slice_name": chart.title, "description": None, "certified_by": None,
            "certification_details": None, "viz_type": chart.viz_type, "params": params,
            "query_context": chart.query_context(i, params), "cache_timeout": None,
            "uuid": chart_uuid, "version": VERSION, "dataset_uuid": dataset_uuids[chart.table]}
        placed.append((chart, chart_uuid, i))
    filter_dataset = next((t for t in ("engagement_daily", "active_users")
                           if t in dataset_uuids), next(iter(dataset_uuids)))
    files[f"dashboards/{pipeline}.yaml"] = dashboard_yaml(
        pipeline, placed, uuid=stable_uuid(pipeline, "dashboard", pipeline),
        filter_dataset_uuid=dataset_uuids[filter_dataset],
        filter_id=stable_uuid(pipeline, "filter", "segment"), version=VERSION)
    return files


def build_bundle(config: PipelineConfig | str | os.PathLike, out_path,
                 *, target_uri: str | None = None) -> Path:
    """Write the import zip for ``config`` (a :class:`PipelineConfig` or a pipeline file)
    to ``out_path``; return its path. ``target_uri`` overrides the pipeline's target URL
    (needed when the target is an Airflow ``conn_id``)."""
    if not isinstance(config, PipelineConfig):
        config = load_pipeline(config)
    files = bundle_files(config, target_uri)
    out = Path(out_path)
    if out.parent and not out.parent.exists():
        raise ConfigError(f"{out}: the folder {out.parent} does not exist")
    root = f"engage_{config.pipeline}"
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files, key=lambda n: (n != "metadata.yaml", n)):
            info = zipfile.ZipInfo(f"{root}/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, yaml.safe_dump(files[name], sort_keys=False,
                                             allow_unicode=True))
    os.replace(tmp, out)
    return out
