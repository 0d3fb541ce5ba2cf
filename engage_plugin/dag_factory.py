"""One Airflow DAG per Engage pipeline YAML file.

``dags/engage_pipelines.py`` calls :func:`load_pipeline_dags`, which looks for ``*.yaml`` /
``*.yml`` files in the pipelines folder (``ENGAGE_PIPELINES_DIR``, else the Airflow Variable
``engage_pipelines_dir``, else the folder given by the DAG file, ``dags/pipelines/``) and
builds, for each file, the DAG ``engage_<pipeline>``::

    validate >> ingest >> [metric_<family>, ...] >> publish

Files are read with ``yaml.safe_load`` only, through Engage's own loader
(:func:`engage_plugin.config.load_pipeline`), so a bad file fails with the file, line and
key. A bad file never hides the good ones: its error is carried by a placeholder DAG whose
``validate()`` raises; Airflow's DagBag calls ``validate()`` on each DAG of a file
separately and records the failure as an *import error of the DAG file*, message
``ConfigError: engage pipeline <file>, line N: <key> ...`` (one line per bad file), while
every other DAG of the file is bagged.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engage_core.errors import ConfigError, EngageError
from engage_plugin import airflow_config as ac

log = logging.getLogger(__name__)

ENV_VAR = "ENGAGE_PIPELINES_DIR"
VARIABLE = "engage_pipelines_dir"
DEFAULT_ARGS = {"owner": "engage", "retries": 2, "retry_delay": dt.timedelta(minutes=5)}


def pipelines_dir(default: str | os.PathLike | None = None) -> Path:
    """The folder of pipeline files: env var, then Airflow Variable, then ``default``."""
    folder = os.environ.get(ENV_VAR)
    if not folder:
        try:
            from airflow.sdk import Variable

            folder = Variable.get(VARIABLE, default=None)
        except Exception:  # no metadata database / API reachable: use the default
            folder = None
    if not folder:
        if default is None:
            raise ConfigError(f"no pipelines folder: set {ENV_VAR} or the Airflow Variable "
                              f"{VARIABLE!r}")
        folder = default
    return Path(folder).expanduser()


def pipeline_files(folder: str | os.PathLike) -> list[Path]:
    """The pipeline files of ``folder``, sorted (hidden files are skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith("."))


def dag_id_for(pipeline: str) -> str:
    return f"engage_{pipeline}"


def asset_for(config: Any, table: str):
    """The Asset of one output table: uri ``engage://<target>/<schema>/<table>``, name
    ``<target>.<table>`` (``<target>.<schema>.<table>`` with a schema).

    The name carries the target because Airflow 3 deactivates an asset whose name (or URI)
    is already taken by another active asset, and two pipelines writing ``engage_retention``
    to two warehouses are two assets. The Asset's extra has ``pipeline``, ``table`` and
    ``target`` (password redacted)."""
    from airflow.sdk import Asset

    target_id, schema = ac.target_identity(config)
    has_schema = bool(ac._get(ac._get(config, "target"), "schema"))
    name = f"{target_id}.{schema}.{table}" if has_schema else f"{target_id}.{table}"
    return Asset(name=name, uri=f"engage://{target_id}/{schema}/{table}", group="engage",
                 extra={"pipeline": ac.pipeline_name(config), "table": table,
                        "target": ac.redacted(ac.target_uri(config))
                        or ac._get(ac._get(config, "target"), "conn_id")})


def _schedule(config: Any, tz: str):
    """A preset or cron becomes a ``CronDataIntervalTimetable`` in the pipeline's zone, so a
    run's data interval is real local days (a ``@daily`` run covers one local day)."""
    from airflow.sdk import CronDataIntervalTimetable

    schedule = ac.dag_setting(config, "schedule", None)
    if schedule is None or schedule in ("@once", "@continuous", "None", "null"):
        return None if schedule in (None, "None", "null") else schedule
    presets = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@quarterly": "0 0 1 */3 *",
               "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
    cron = presets.get(str(schedule), str(schedule))
    try:
        return CronDataIntervalTimetable(cron, timezone=tz)
    except Exception as exc:
        raise ConfigError(f"{ac.source_file(config)}: schedule: {schedule!r} is not a cron "
                          f"expression or preset ({exc})") from exc


def _start_date(config: Any, tz: str):
    import pendulum

    value = ac.dag_setting(config, "start_date", None)
    if value is None:
        value = dt.date(2024, 1, 1)
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{ac.source_file(config)}: start_date: {value!r} is not a "
                              f"date (YYYY-MM-DD)") from exc
    if isinstance(value, dt.datetime):
        return pendulum.instance(value, tz=tz) if value.tzinfo is None else pendulum.instance(value)
    return pendulum.datetime(value.year, value.month, value.day, tz=tz)


def build_dag(path: str | os.PathLike, *, config: Any = None):
    """The DAG of one pipeline file (raises :class:`ConfigError` for a bad file)."""
    from airflow.sdk import DAG

    from engage_plugin.operators.engage import (
        EngageIngestOperator,
        EngagePublishOperator,
        EngageRunOperator,
        EngageValidateOperator,
    )

    path = os.path.abspath(os.fspath(path))
    if config is None:
        config = ac.load(path)
    name = ac.pipeline_name(config)
    tz = ac.timezone(config)
    families = ac.metric_families(config)
    tables = {family: ac.family_tables(config, family) for family in families}
    outlets = [asset_for(config, t) for family in families for t in tables[family]]
    doc = (f"Engage pipeline `{name}` from `{path}`.\n\nEach run computes the local days "
           f"({tz}) of its data interval; every task is idempotent, so retries and reruns "
           f"are safe. Output tables: " + ", ".join(f"`{t}`" for f in families
                                                   for t in tables[f]) + ".")
    dag = DAG(
        dag_id=dag_id_for(name),
        schedule=_schedule(config, tz),
        start_date=_start_date(config, tz),
        catchup=bool(ac.dag_setting(config, "catchup", False)),
        max_active_runs=1,
        default_args=dict(DEFAULT_ARGS),
        tags=["engage", name],
        doc_md=doc,
        params={"full_refresh": False},
    )
    with dag:
        validate = EngageValidateOperator(task_id="validate", pipeline_path=path)
        ingest = EngageIngestOperator(task_id="ingest", pipeline_path=path)
        runs = [
            EngageRunOperator(task_id=f"metric_{family}", pipeline_path=path, metrics=[family],
                              full_refresh="{{ params.full_refresh }}")
            for family in families
        ]
        publish = EngagePublishOperator(task_id="publish", pipeline_path=path, outlets=outlets)
        validate >> ingest >> runs >> publish
    return dag


class _BrokenPipelines:
    """Marker base: DAG placeholders that carry the errors of bad pipeline files."""


def _placeholder_dag(errors: list[str]):
    """A DAG that Airflow refuses, so that the errors become the DAG file's import error."""
    from airflow.sdk import DAG

    message = "\n".join(errors)

    class BrokenEngagePipelines(DAG, _BrokenPipelines):
        def validate(self):  # called by DagBag before bagging: an import error, per DAG
            raise ConfigError(message)

    return BrokenEngagePipelines(dag_id="engage_pipeline_errors", schedule=None,
                                 description=message[:200])


def load_pipeline_dags(folder: str | os.PathLike,
                       files: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """``{name: DAG}`` for every pipeline file of ``folder`` (put it into ``globals()``).

    A file that fails to load is logged and reported through one placeholder DAG that
    Airflow records as an import error naming each bad file and its error; the other files'
    DAGs load normally.
    """
    out: dict[str, Any] = {}
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for path in (pipeline_files(folder) if files is None else [Path(f) for f in files]):
        try:
            dag = build_dag(path)
            if dag.dag_id in seen:
                raise ConfigError(f"{path}: pipeline: {dag.dag_id[len('engage_'):]!r} is "
                                  f"already the pipeline of {seen[dag.dag_id]}")
        except (EngageError, OSError, ValueError, TypeError) as exc:
            message = str(exc)
            if str(path) not in message and path.name not in message:
                message = f"{path}: {message}"
            log.error("engage pipeline %s", message)
            errors.append(f"engage pipeline {message}")
            continue
        seen[dag.dag_id] = path
        out[dag.dag_id] = dag
    if errors:
        out["engage_pipeline_errors"] = _placeholder_dag(errors)
    return out
