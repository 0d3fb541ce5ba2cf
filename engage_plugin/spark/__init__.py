"""``engine: spark``: compute a pipeline's metrics on Apache Spark, equal to the local
engine's tables (docs/spark.md). Importing this package does not import pyspark."""

from engage_plugin.spark.engine import SparkResult, compute_on_spark, spark_session

__all__ = ["SparkResult", "compute_on_spark", "spark_session"]
