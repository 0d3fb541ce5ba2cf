"""OpenLineage datasets for Engage's tasks, built without importing OpenLineage.

:func:`dataset_for_uri` names a source or a table the way the OpenLineage naming spec does
(https://openlineage.io/docs/spec/naming): ``postgres://host:port`` + ``db.schema.table``,
``duckdb://<file>`` / ``sqlite://<file>`` + ``schema.table``, ``file`` + a path. The
operators turn these pairs into ``OperatorLineage`` only when the OpenLineage provider is
installed (:func:`operator_lineage`), and never fail a task because of lineage.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql",
            "sqlite": "sqlite", "duckdb": "duckdb"}


def _file_of(uri: str) -> str:
    """The file of ``duckdb:///rel.duckdb`` / ``sqlite:////abs.db`` as an absolute path."""
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    path = path.split("?", 1)[0]
    return os.path.abspath(path) if path and path != ":memory:" else ":memory:"


def dataset_for_uri(uri: str, table: str | None = None, schema: str | None = None,
                    ) -> tuple[str, str]:
    """``(namespace, name)`` of ``table`` (or of the whole database) behind ``uri``."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()
    kind = _SCHEMES.get(scheme)
    if kind in ("duckdb", "sqlite"):
        namespace = f"{kind}://{_file_of(uri)}"
        database = None
    elif kind is not None:
        parts = urlsplit(uri)
        host = parts.hostname or "localhost"
        port = parts.port or {"postgres": 5432, "mysql": 3306}.get(kind)
        namespace = f"{kind}://{host}:{port}"
        database = parts.path.lstrip("/") or None
    else:
        namespace = f"{scheme or 'unknown'}://"
        database = None
    if kind == "postgres" and table and not schema:
        schema = "public"
    name = ".".join(p for p in (database, schema, table) if p) or (database or "")
    return namespace, name


def dataset_for_path(path: str) -> tuple[str, str]:
    """``(namespace, name)`` of a file source (a glob stays a glob: it names the data set)."""
    parts = urlsplit(path)
    if parts.scheme and parts.scheme not in ("file",) and len(parts.scheme) > 1:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    return "file", os.path.abspath(parts.path if parts.scheme == "file" else path)


def operator_lineage(inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]):
    """An ``OperatorLineage`` for the pairs, or ``None`` when OpenLineage is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    try:
        return OperatorLineage(
            inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
            outputs=[Dataset(namespace=ns, name=name) for ns, name in outputs],
        )
    except Exception:  # lineage must never fail a task
        log.warning("Engage: could not build OpenLineage datasets", exc_info=True)
        return None
