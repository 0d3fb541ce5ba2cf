"""``EngageSupersetPushOperator``: push a pipeline's Superset bundle to a Superset.

Optional and off by default: the generated DAGs never add it. Add it yourself after the
pipeline's tasks, e.g. in a DAG file of your own::

    from engage_plugin.operators.superset import EngageSupersetPushOperator

    EngageSupersetPushOperator(task_id="superset", pipeline_path="/dags/pipelines/shop.yaml",
                               superset_conn_id="superset")

The Superset connection is an Airflow ``http`` (or generic) connection: host (with or
without ``http(s)://``), port, login, password; ``schema`` may be ``https``; extra
``{"provider": "db" | "ldap", "endpoint": "assets" | "dashboard"}``. The target's URL comes
from the pipeline file or from ``target_conn_id`` (an Engage warehouse connection); its
password, if any, is sent only in the import request (``passwords``), never in the bundle.

Airflow is imported lazily: this module imports without it, and ``push_to_superset`` (the
work of ``execute``) can be called from plain Python.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from urllib.parse import unquote, urlsplit

from engage_plugin.superset.bundle import build_bundle
from engage_plugin.superset.push import push_bundle


def superset_base_url(conn: Any) -> str:
    """``http(s)://host[:port]`` of an Airflow HTTP/generic connection."""
    host = (conn.host or "").strip().rstrip("/")
    if "://" in host:
        return host + (f":{conn.port}" if conn.port and host.count(":") < 2 else "")
    scheme = (conn.schema or "http").strip() or "http"
    if scheme not in ("http", "https"):
        scheme = "http"
    return f"{scheme}://{host or 'localhost'}" + (f":{conn.port}" if conn.port else "")


def push_to_superset(pipeline_path: str, *, base_url: str, username: str, password: str,
                     provider: str = "db", endpoint: str = "assets",
                     target_uri: str | None = None, bundle_dir: str | None = None) -> dict:
    """Build the bundle for ``pipeline_path`` and import it; the target's password (from
    ``target_uri``) goes in the request's ``passwords``. Returns a small summary."""
    from engage_plugin.config import load_pipeline

    config = load_pipeline(pipeline_path)
    uri = target_uri or config.target.uri
    with tempfile.TemporaryDirectory(dir=bundle_dir) as tmp:
        bundle = build_bundle(config, os.path.join(tmp, f"engage_{config.pipeline}.zip"),
                              target_uri=uri)
        db_file = f"databases/engage_{config.pipeline}.yaml"
        secret = urlsplit(uri).password if uri and "://" in uri else None
        answer = push_bundle(base_url, bundle, username=username, password=password,
                             provider=provider, endpoint=endpoint,
                             passwords={db_file: unquote(secret)} if secret else None)
    return {"pipeline": config.pipeline, "superset": base_url, "endpoint": endpoint,
            "answer": answer}


def _operator_class():
    from airflow.sdk import BaseHook, BaseOperator

    class EngageSupersetPushOperator(BaseOperator):
        """Build the pipeline's Superset bundle and import it through the REST API.

        :param pipeline_path: the pipeline YAML file (templated)
        :param superset_conn_id: Airflow HTTP connection of the Superset (templated)
        :param target_conn_id: optional Engage warehouse connection overriding the file's
            target (templated)
        :param endpoint: ``assets`` (overwrite everything, the default) or ``dashboard``
        """

        template_fields = ("pipeline_path", "superset_conn_id", "target_conn_id")
        ui_color = "#e0f0ff"

        def __init__(self, *, pipeline_path: str, superset_conn_id: str = "superset_default",
                     target_conn_id: str | None = None, endpoint: str | None = None,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.pipeline_path = pipeline_path
            self.superset_conn_id = superset_conn_id
            self.target_conn_id = target_conn_id
            self.endpoint = endpoint

        def execute(self, context: Any) -> dict:
            conn = BaseHook.get_connection(self.superset_conn_id)
            extra = conn.extra_dejson or {}
            target_uri = None
            if self.target_conn_id:
                from engage_plugin.hooks.engage import EngageWarehouseHook

                target_uri = EngageWarehouseHook(self.target_conn_id).get_uri()
            else:
                from engage_plugin.config import load_pipeline

                config = load_pipeline(self.pipeline_path)
                if config.target.conn_id:
                    from engage_plugin.hooks.engage import EngageWarehouseHook

                    target_uri = EngageWarehouseHook(config.target.conn_id).get_uri()
            out = push_to_superset(
                self.pipeline_path, base_url=superset_base_url(conn),
                username=conn.login or "", password=conn.password or "",
                provider=extra.get("provider", "db"),
                endpoint=self.endpoint or extra.get("endpoint", "assets"),
                target_uri=target_uri)
            self.log.info("pushed the Superset bundle of %s to %s", out["pipeline"],
                          out["superset"])
            return out

    EngageSupersetPushOperator.__module__ = __name__
    return EngageSupersetPushOperator


_CLASS = None


def __getattr__(name: str):
    global _CLASS
    if name == "EngageSupersetPushOperator":
        if _CLASS is None:
            _CLASS = _operator_class()
        return _CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
