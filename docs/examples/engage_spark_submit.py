"""Example DAG: run an Engage pipeline on a Spark cluster with SparkSubmitOperator.

Copy it into your DAGs folder next to the pipeline file (docs/spark.md). It needs the Spark
provider (pip install apache-airflow-providers-apache-spark) and a `spark_default`
connection (Admin -> Connections: type Spark, host yarn / k8s://... / spark://host:7077).
Without the provider the file defines no DAG and imports cleanly, so the DAG folder shows
no import error.

Each run computes the local days of its data interval, so retries and backfills are safe,
as with the YAML-generated DAGs (dags/engage_pipelines.py).
"""

from __future__ import annotations

import os

import pendulum

try:  # the Spark provider is optional: no provider, no DAG (and no import error)
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:  # pragma: no cover - depends on the installation
    SparkSubmitOperator = None

from airflow.sdk import DAG

PIPELINE = os.path.join(os.path.dirname(__file__), "pipelines", "shop_spark.yaml")
# The environment shipped to the executors (docs/spark.md: "Ship the wheel"): a venv-pack
# archive holding engage, pyarrow and numpy, unpacked as ./env on every executor.
ENV_ARCHIVE = os.environ.get("ENGAGE_SPARK_ENV", "hdfs:///envs/engage_env.tar.gz")
# spark-submit takes the entry point as a file: this one is inside the unpacked archive
APPLICATION = os.environ.get(
    "ENGAGE_SPARK_APP", "./env/lib/python3.11/site-packages/engage_plugin/spark/submit.py")

if SparkSubmitOperator is not None:
    with DAG(
        dag_id="engage_shop_spark",
        schedule="@daily",
        start_date=pendulum.datetime(2025, 6, 1, tz="America/New_York"),
        catchup=False,
        tags=["engage", "spark"],
    ):
        SparkSubmitOperator(
            task_id="compute_on_spark",
            conn_id="spark_default",
            application=APPLICATION,
            application_args=[
                PIPELINE,
                # the local days of the data interval (the pipeline's time zone)
                "--start", "{{ data_interval_start.in_tz('America/New_York').to_date_string() }}",
                "--end", "{{ (data_interval_end.in_tz('America/New_York') - macros.timedelta(seconds=1)).to_date_string() }}",
                "--shards", "64",
                "--json",
            ],
            archives=f"{ENV_ARCHIVE}#env",
            conf={
                "spark.pyspark.python": "./env/bin/python",
                "spark.pyspark.driver.python": "./env/bin/python",
                "spark.sql.session.timeZone": "UTC",
                "spark.task.cpus": "2",              # the kernels use the task's cores
                "spark.executorEnv.OMP_WAIT_POLICY": "passive",
            },
            name="engage_shop_{{ ds_nodash }}",
            verbose=False,
        )
