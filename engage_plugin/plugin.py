"""The Engage Airflow plugin (entry point ``airflow.plugins``).

* Macros, under ``macros.engage``: ``{{ macros.engage.table('shop', 'active_users') }}``
  is the (schema-qualified, prefixed) table name of a pipeline's metric table, and
  ``{{ macros.engage.tables('shop') }}`` lists them all.
* A FastAPI app at ``/engage`` in the API server: ``GET /engage/pipelines`` lists the
  pipelines of the pipelines folder with their DAG, tables and last run report (the newest
  row of the target's ``{prefix}runs`` table, when it has one); ``GET
  /engage/pipelines/{name}`` shows one. Callers need an Airflow JWT of a user who may read
  DAGs (see :func:`authorized`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request

from engage_core.errors import ConfigError, EngageError
from engage_plugin import airflow_config as ac


def _default_dir() -> Path:
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")) / "pipelines"


def _configs() -> dict[str, tuple[Path, Any, str | None]]:
    """``{pipeline or file stem: (file, config or None, error or None)}``."""
    from engage_plugin.dag_factory import pipeline_files, pipelines_dir

    out: dict[str, tuple[Path, Any, str | None]] = {}
    for path in pipeline_files(pipelines_dir(_default_dir())):
        try:
            config = ac.load(path)
            out[ac.pipeline_name(config)] = (path, config, None)
        except EngageError as exc:
            out[path.stem] = (path, None, str(exc))
    return out


def _config(pipeline: str) -> Any:
    found = _configs().get(pipeline)
    if found is None or found[1] is None:
        raise ConfigError(f"macros.engage: no pipeline {pipeline!r} in the pipelines folder"
                          + (f" ({found[2]})" if found else ""))
    return found[1]


def table(pipeline: str, metric_table: str) -> str:
    """The table name to query for ``metric_table`` (``active_users``, ``retention``, ...)
    of ``pipeline``: prefix and schema applied."""
    config = _config(pipeline)
    prefix = ac.table_prefix(config)
    name = metric_table if metric_table.startswith(prefix) else prefix + metric_table
    return ac.qualified(config, name)


def tables(pipeline: str) -> list[str]:
    """Every output table of ``pipeline``, schema-qualified."""
    config = _config(pipeline)
    return [ac.qualified(config, t) for t in ac.all_tables(config)]


def last_run(config: Any) -> dict | None:
    """The newest row of the target's ``{prefix}runs`` table, or ``None``."""
    from engage_plugin import airflow_runtime as rt

    config = rt.resolve_connections(config, lenient=True)
    runs = ac.table_prefix(config) + "runs"
    uri = ac.target_uri(config) or ""
    schema = ac._get(ac._get(config, "target"), "schema")
    name = f'"{schema}"."{runs}"' if schema else f'"{runs}"'
    try:
        path = rt._duckdb_file(uri)
        if path is not None:
            if not os.path.exists(path):
                return None
            import duckdb

            with duckdb.connect(path, read_only=True) as con:
                cur = con.execute(f"select * from {name}")
                rows = cur.fetchall()
                cols = [d[0] for d in cur.description]
        elif uri:
            import sqlalchemy

            engine = sqlalchemy.create_engine(uri)
            try:
                with engine.connect() as con:
                    result = con.exec_driver_sql(f"select * from {name}")
                    cols, rows = list(result.keys()), result.fetchall()
            finally:
                engine.dispose()
        else:
            return None
    except Exception:  # no runs table yet, or the database is busy
        return None
    if not rows:
        return None
    order = next((c for c in ("finished_at", "ended_at", "started_at", "run_at",
                              "computed_at") if c in cols), None)
    row = max(rows, key=lambda r: (r[cols.index(order)] is not None, r[cols.index(order)])) \
        if order else rows[-1]
    out = {c: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v)
           for c, v in zip(cols, row)}
    if isinstance(out.get("report"), str):
        try:
            out["report"] = json.loads(out["report"])
        except ValueError:
            pass
    return out


def _describe(name: str, path: Path, config: Any, error: str | None,
              with_runs: bool) -> dict:
    from engage_plugin.dag_factory import dag_id_for

    if config is None:
        return {"pipeline": name, "file": str(path), "error": error}
    return {
        "pipeline": name, "file": str(path), "dag_id": dag_id_for(name),
        "timezone": ac.timezone(config), "metrics": ac.metric_families(config),
        "tables": [ac.qualified(config, t) for t in ac.all_tables(config)],
        "last_run": last_run(config) if with_runs else None,
    }


async def authorized(request: Request) -> None:
    """Airflow's own authentication for the ``/engage`` app: a JWT (bearer header or the UI's
    cookie) of a user allowed to read DAGs. Airflow mounts plugin apps without auth, so the
    app asks the auth manager itself; imported at request time, so loading the plugin in a
    task or CLI process stays cheap."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api import security

    credentials = await security.bearer_scheme(request)
    user = await security.get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_dag(method="GET", user=user):
        raise HTTPException(status_code=403, detail="Forbidden: needs read access to DAGs")


def _make_app():
    async def guard(request: Request) -> None:
        await authorized(request)

    app = FastAPI(title="Engage", description="Engage pipelines, their tables and last runs",
                  dependencies=[Depends(guard)])
    app.state.guard = guard

    @app.get("/pipelines")
    def list_pipelines() -> list[dict]:
        return [_describe(n, p, c, e, True) for n, (p, c, e) in sorted(_configs().items())]

    @app.get("/pipelines/{name}")
    def get_pipeline(name: str) -> dict:
        found = _configs().get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no pipeline {name!r}")
        return _describe(name, *found, True)

    return app


class EngagePlugin(AirflowPlugin):
    """Macros ``macros.engage.table`` / ``tables`` and the ``/engage`` API."""

    name = "engage"
    macros = [table, tables]
    fastapi_apps = [{"app": _make_app(), "url_prefix": "/engage", "name": "Engage pipelines"}]
