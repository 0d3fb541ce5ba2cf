"""spark-submit entry point: run a pipeline with ``engine: spark``.

    spark-submit --master yarn \
        --conf spark.archives=engage_env.tar.gz#env \
        --conf spark.pyspark.python=./env/bin/python \
        "$(python -c 'import engage_plugin.spark.submit as m; print(m.__file__)')" \
        pipeline.yaml --start 2025-06-01 --end 2025-06-30 [--shards 64] [--full-refresh] [--json]

(spark-submit takes a file, not ``-m``: give it this module's file; ``python -m
engage_plugin.spark.submit ...`` also works where pyspark runs a local session.)
The SparkSession is the one spark-submit configured; the pipeline runs through
``engage_plugin.runner.run_pipeline`` (same tables, same loaders, same run report) with the
engine forced to ``spark``. ``--shards`` (default: the session's default parallelism) is
passed as ``ENGAGE_SPARK_SHARDS``. Exit status as ``engage run``: 0 done, 2 a bad file or
option, 1 a failure while running.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys

from engage_core.errors import ConfigError, EngageError, SchemaError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2025-06-01, found {text!r}") from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="engage_plugin.spark.submit",
                                description="Run an Engage pipeline on Spark (engine: spark).")
    p.add_argument("pipeline", help="the pipeline YAML file")
    p.add_argument("--start", type=_date, help="first local day (default: the source's first)")
    p.add_argument("--end", type=_date, help="last local day (default: the source's last)")
    p.add_argument("--shards", type=int, help="user shards (default: default parallelism)")
    p.add_argument("--full-refresh", action="store_true")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from engage_plugin.config import load_pipeline
    from engage_plugin.runner import run_pipeline
    from engage_plugin.spark.engine import spark_session

    try:
        if args.shards is not None:
            if args.shards < 1:
                raise ConfigError(f"--shards: expected a positive number, found {args.shards}")
            os.environ["ENGAGE_SPARK_SHARDS"] = str(args.shards)
        config = dataclasses.replace(load_pipeline(args.pipeline), engine="spark")
        spark_session()  # spark-submit's session, created before the run asks for it
        report = run_pipeline(config, start=args.start, end=args.end,
                              full_refresh=args.full_refresh)
    except (ConfigError, SchemaError) as exc:
        print(f"engage: {exc}", file=sys.stderr)
        return 2
    except EngageError as exc:
        print(f"engage: {exc}", file=sys.stderr)
        return 1
    out = report.to_dict()
    print(json.dumps(out, default=str) if args.json else
          f"engage: {config.pipeline}: {out['status']}, {out['rows_read']} rows read, "
          f"{sum(out['rows_written'].values())} rows written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
