"""DAGs from pipeline YAML files: every example imports, a broken file is isolated, and a
whole DAG runs with ``dag.test()`` (after the serialization step AIRFLOW_NOTES.md describes)
writing exactly the tables of a full run, with Asset events that carry the day range."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import airflow_env  # noqa: F401  (skips this module without Airflow; private AIRFLOW_HOME)
import duckdb
import pendulum
import pytest

from engage_plugin import airflow_config as ac
from engage_plugin.dag_factory import build_dag, load_pipeline_dags
from pipeline_fixtures import LAST_DAY, TABLES, TZ, write_pipeline

DAG_FILE = airflow_env.DAGS / "engage_pipelines.py"
EXAMPLES = sorted((airflow_env.DAGS / "pipelines").glob("*.y*ml"))


def dagbag_of(dag_file: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dag_file), safe_mode=True)


def test_every_example_pipeline_imports_as_a_dag(monkeypatch):
    monkeypatch.delenv("ENGAGE_PIPELINES_DIR", raising=False)
    assert EXAMPLES, "dags/pipelines/ has no example pipeline"
    bag = dagbag_of(DAG_FILE)
    assert bag.import_errors == {}
    expected = {f"engage_{ac.pipeline_name(ac.load(p))}" for p in EXAMPLES}
    assert set(bag.dag_ids) == expected
    for dag_id in expected:
        dag = bag.dags[dag_id]
        assert [t.task_id for t in dag.tasks][:2] == ["validate", "ingest"]
        assert dag.task_dict["publish"].outlets, "publish has no Asset outlets"


def test_a_broken_file_is_an_import_error_naming_file_and_key(tmp_path, monkeypatch):
    good = write_pipeline(tmp_path, name="good")
    (tmp_path / "broken.yaml").write_text(
        "pipeline: broken\ntimezone: UTC\nsource: {path: x.parquet}\n"
        "target: {uri: 'duckdb:///x.duckdb'}\nmetrcs:\n  active_users: {}\n", encoding="utf-8")
    monkeypatch.setenv("ENGAGE_PIPELINES_DIR", str(tmp_path))
    bag = dagbag_of(DAG_FILE)
    assert set(bag.dag_ids) == {"engage_good"}
    assert list(bag.import_errors) == [str(DAG_FILE)]
    error = bag.import_errors[str(DAG_FILE)]
    assert "broken.yaml" in error and "metrcs" in error
    assert "ConfigError" in error
    assert good.name == "good"


def test_dag_shape_schedule_and_assets(tmp_path):
    shop = write_pipeline(tmp_path)
    dag = build_dag(shop.yaml)
    assert dag.dag_id == "engage_shop"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert str(dag.timezone.name if hasattr(dag.timezone, "name") else dag.timezone) == TZ
    assert dag.start_date == pendulum.datetime(2025, 3, 1, tz=TZ)
    families = ["active_users", "engagement_daily", "retention", "lifecycle"]
    runs = [f"metric_{f}" for f in families]
    assert sorted(dag.task_dict["validate"].downstream_task_ids) == ["ingest"]
    assert sorted(dag.task_dict["ingest"].downstream_task_ids) == sorted(runs)
    for task_id, family in zip(runs, families):
        task = dag.task_dict[task_id]
        assert task.metrics == [family]
        assert task.downstream_task_ids == {"publish"}
    outlets = dag.task_dict["publish"].outlets
    digest = hashlib.sha1(shop.db.encode()).hexdigest()[:8]
    assert [a.name for a in outlets] == [f"engage-{digest}.{t}" for t in TABLES]
    assert outlets[0].uri == f"engage://engage-{digest}/default/engage_active_users"
    assert outlets[0].extra == {"pipeline": "shop", "table": "engage_active_users",
                                "target": f"duckdb:///{shop.db}"}
    # another pipeline writing to another engage.duckdb gets other assets
    other = build_dag(write_pipeline(tmp_path / "other", name="other").yaml)
    assert other.task_dict["publish"].outlets[0].uri != outlets[0].uri


def _serialize(*dags) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull, collect_dags=False)
    for dag in dags:
        bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def _tables(db: str) -> dict:
    with duckdb.connect(db, read_only=True) as con:
        return {t: con.execute(f"select * exclude (computed_at) from {t} order by all").fetchall()
                for t in TABLES}


def test_whole_dag_runs_with_dag_test_exact_and_emits_asset_events(tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    airflow_env.migrate_once()
    shop = write_pipeline(tmp_path / "dag")
    full = write_pipeline(tmp_path / "full")
    from engage_plugin.runner import run_pipeline

    run_pipeline(ac.load(full.yaml))  # the reference: one full run of the same log
    run_pipeline(ac.load(shop.yaml), end=LAST_DAY - pendulum.duration(days=1))

    dag = build_dag(shop.yaml)
    # another pipeline with the same table names in another warehouse, known to Airflow too:
    # its assets must not deactivate this DAG's (Airflow 3 keeps asset names unique)
    other = build_dag(write_pipeline(tmp_path / "other", name="other").yaml)
    _serialize(other, dag)
    started = time.monotonic()
    run = dag.test(logical_date=pendulum.datetime(2025, 4, 1, tz=TZ))
    took = time.monotonic() - started
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == dict.fromkeys(
        ["validate", "ingest", "metric_active_users", "metric_engagement_daily",
         "metric_retention", "metric_lifecycle", "publish"], "success")
    # the run covered the last local day; per-family tasks wrote exactly a full run's tables
    assert _tables(shop.db) == _tables(full.db)
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_dag_id == "engage_shop",
                                                  AssetEvent.source_run_id == run.run_id).all()
        extras = {e.extra["table"]: e.extra for e in events}
        assert {e.asset.name for e in events} == {a.name for a in dag.task_dict["publish"].outlets}
    assert set(extras) == set(TABLES)
    for table, extra in extras.items():
        assert extra["start_day"] == extra["end_day"] == LAST_DAY.isoformat()
        assert extra["pipeline"] == "shop" and extra["table"] == table and extra["rows"] > 0
    assert took < 90


def test_pipelines_folder_from_env_var_then_airflow_variable_then_default(tmp_path, monkeypatch):
    from engage_plugin.dag_factory import pipelines_dir

    monkeypatch.delenv("ENGAGE_PIPELINES_DIR", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_ENGAGE_PIPELINES_DIR", raising=False)
    assert pipelines_dir(tmp_path / "default") == tmp_path / "default"
    monkeypatch.setenv("AIRFLOW_VAR_ENGAGE_PIPELINES_DIR", str(tmp_path / "from_variable"))
    assert pipelines_dir(tmp_path / "default") == tmp_path / "from_variable"
    monkeypatch.setenv("ENGAGE_PIPELINES_DIR", str(tmp_path / "from_env"))
    assert pipelines_dir(tmp_path / "default") == tmp_path / "from_env"


def test_two_files_with_one_pipeline_name_are_an_error_not_a_silent_override(tmp_path):
    write_pipeline(tmp_path / "a", name="same")
    write_pipeline(tmp_path / "b", name="same")
    dags = load_pipeline_dags(tmp_path, files=[tmp_path / "a" / "same.yaml",
                                               tmp_path / "b" / "same.yaml"])
    assert set(dags) == {"engage_same", "engage_pipeline_errors"}
    with pytest.raises(Exception, match=r"b/same.yaml: pipeline: 'same' is already the "
                                        r"pipeline of .*a/same.yaml"):
        dags["engage_pipeline_errors"].validate()


def test_asset_extras_never_carry_a_password():
    from engage_plugin.airflow_config import redacted

    assert redacted("postgresql://etl:s3cr3t@db:5432/wh") == "postgresql://etl:***@db:5432/wh"
    assert redacted("postgresql://etl@db/wh") == "postgresql://etl@db/wh"
    assert redacted("duckdb:////data/engage.duckdb") == "duckdb:////data/engage.duckdb"
