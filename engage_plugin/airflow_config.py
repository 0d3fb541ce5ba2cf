"""What the Airflow side needs from a loaded pipeline, in one place.

The Airflow modules read a :class:`engage_plugin.config.PipelineConfig` only through these
functions, so the provider depends on a handful of attributes: ``pipeline``, ``timezone``,
``source``, ``target`` and ``metrics`` (PIPELINE.md). The DAG-only keys (``schedule``,
``start_date``, ``catchup``) are read from the config when it keeps them and otherwise from
the file itself (``yaml.safe_load``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from engage_core.errors import ConfigError

def load(path: str | os.PathLike) -> Any:
    """Engage's loader (``yaml.safe_load`` plus the schema of PIPELINE.md)."""
    from engage_plugin.config import load_pipeline

    return load_pipeline(os.fspath(path))


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def source_file(config: Any) -> str:
    return str(_get(config, "path") or _get(config, "source_path") or _get(config, "file")
               or "<pipeline>")


def pipeline_name(config: Any) -> str:
    name = _get(config, "pipeline") or _get(config, "name")
    if not name:
        raise ConfigError(f"{source_file(config)}: pipeline: missing")
    return str(name)


def timezone(config: Any) -> str:
    tz = _get(config, "timezone") or _get(_get(config, "calendar"), "timezone") or "UTC"
    return str(getattr(tz, "key", tz))


def metric_families(config: Any) -> list[str]:
    """The configured metric families in file order."""
    return list((_get(config, "metrics") or {}).keys())


def family_tables(config: Any, family: str) -> list[str]:
    """The prefixed tables one family writes (``retention`` with ``brackets`` also writes
    ``retention_brackets``; ``engagement_score`` with ``user_scores`` writes that too)."""
    from engage_plugin.compute import FAMILY_TABLES, family_tables as tables_of

    options = (_get(config, "metrics") or {}).get(family)
    names = tables_of(family, options) if family in FAMILY_TABLES else (family,)
    return [table_prefix(config) + n for n in names]


def all_tables(config: Any) -> list[str]:
    return [t for f in metric_families(config) for t in family_tables(config, f)]


def table_prefix(config: Any) -> str:
    prefix = _get(_get(config, "target"), "table_prefix")
    return "engage_" if prefix is None else str(prefix)


def qualified(config: Any, table: str) -> str:
    schema = _get(_get(config, "target"), "schema")
    return f"{schema}.{table}" if schema else table


def dag_setting(config: Any, key: str, default: Any) -> Any:
    """``schedule`` / ``start_date`` / ``catchup`` from the config, else from the file."""
    for holder in (config, _get(config, "dag"), _get(config, "airflow")):
        value = _get(holder, key)
        if value is not None:
            return value
    path = source_file(config)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
        if isinstance(raw, dict) and raw.get(key) is not None:
            return raw[key]
    return default


def source_uri(config: Any) -> str | None:
    return _get(_get(config, "source"), "uri")


def target_uri(config: Any) -> str | None:
    return _get(_get(config, "target"), "uri")


def target_identity(config: Any) -> tuple[str, str]:
    """``(target id, schema)`` for Asset URIs: the connection id (stable across machines:
    the way to go in production), or the database file's stem and a hash of its absolute
    path (``engage-1a2b3c4d``), or ``host[:port]-database``; the schema, or ``default``."""
    target = _get(config, "target")
    schema = _get(target, "schema") or "default"
    conn_id = _get(target, "conn_id")
    if conn_id:
        return _slug(conn_id), _slug(schema)
    uri = _get(target, "uri") or ""
    parts = urlsplit(uri)
    if parts.scheme.split("+")[0] in ("duckdb", "sqlite"):
        path = uri.split(":///", 1)[-1].split("?")[0]
        stem = os.path.splitext(os.path.basename(path))[0] or "memory"
        # two files called engage.duckdb are two warehouses: tell them apart by full path
        digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
        ident = f"{stem}-{digest}"
    else:
        ident = f"{parts.hostname or 'localhost'}{':' + str(parts.port) if parts.port else ''}"
        if parts.path.strip("/"):
            ident += "-" + parts.path.strip("/")
    return _slug(ident), _slug(schema)


def redacted(uri: str | None) -> str | None:
    """``uri`` without a password (for Asset extras and logs)."""
    if not uri or "@" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", str(text)).strip("-") or "default"


def with_metrics(config: Any, families: list[str]) -> Any:
    """A copy of ``config`` that computes only ``families`` (unknown names are an error)."""
    metrics = _get(config, "metrics") or {}
    unknown = [f for f in families if f not in metrics]
    if unknown:
        raise ConfigError(f"{source_file(config)}: metrics: {unknown} not in the pipeline; "
                          f"it has {list(metrics)}")
    subset = type(metrics)((k, v) for k, v in metrics.items() if k in families) \
        if isinstance(metrics, dict) else {k: metrics[k] for k in families}
    return _replace(config, metrics=subset,
                    store_metrics=_get(config, "store_metrics") or metrics)


def with_connections(config: Any, source_uri_value: str | None, target_uri_value: str | None,
                     ) -> Any:
    """A copy of ``config`` whose ``conn_id`` source / target are replaced by their URIs."""
    out = config
    for attr, uri in (("source", source_uri_value), ("target", target_uri_value)):
        if uri:
            part = _replace(_get(out, attr), uri=uri, conn_id=None)
            out = _replace(out, **{attr: part})
    return out


def _replace(obj: Any, **changes: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        fields = {f.name for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **{k: v for k, v in changes.items() if k in fields})
    if isinstance(obj, dict):
        return {**obj, **changes}
    clone = __import__("copy").copy(obj)
    for k, v in changes.items():
        setattr(clone, k, v)
    return clone
