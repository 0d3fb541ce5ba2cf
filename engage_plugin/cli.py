"""The ``engage`` command: run, validate, demo, superset-bundle.

Exit status: 0 done; 2 a bad file, option or schema (nothing written); 1 a failure while
running (tables as they were before the run). Errors go to stderr as ``engage: error: ...``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from engage_core.errors import ConfigError, EngageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: exit 2 with our prefix
        self.print_usage(sys.stderr)
        raise ConfigError(message)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2025-01-31, found {text!r}") \
            from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="engage", description="Customer-engagement metrics pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a pipeline over local days [start, end]")
    run.add_argument("file", help="the pipeline YAML file")
    run.add_argument("--start", type=_day, help="first local day (YYYY-MM-DD)")
    run.add_argument("--end", type=_day, help="last local day (YYYY-MM-DD)")
    run.add_argument("--full-refresh", action="store_true",
                     help="forget the previously loaded range and rebuild every table")
    run.add_argument("--json", action="store_true", help="print the report as one JSON object")
    val = sub.add_parser("validate", help="check the file and the source's schema; write nothing")
    val.add_argument("file")
    demo = sub.add_parser("demo", help="make a sample log, run a full pipeline, print a summary")
    demo.add_argument("--dir", default="demo_out", help="folder for the sample files")
    bundle = sub.add_parser("superset-bundle", help="write a Superset import bundle")
    bundle.add_argument("file")
    bundle.add_argument("-o", "--output", required=True)
    return parser


def format_report(report: dict) -> str:
    """The readable run report."""
    lines = [f"Engage run {report['run_id']}: {report['status']}",
             f"  pipeline       {report['pipeline']}",
             f"  days           {report.get('start_day') or '-'} .. {report.get('end_day') or '-'}",
             f"  read days      {report.get('read_start') or 'first'} .. "
             f"{report.get('read_end') or 'last'}"
             + (f" (store rebuilt: {report['store_rebuilt']})" if report.get("store_rebuilt")
                else ""),
             f"  rows read      {report['rows_read']} (events in the store: "
             f"{report.get('store_rows', 0)})",
             f"  rows skipped   {report['rows_skipped']} (null user_id: "
             f"{report['rows_skipped_null_user']}, null timestamp: "
             f"{report['rows_skipped_null_timestamp']})"]
    rejected = report.get("rows_rejected") or {}  # metric -> reason -> rows
    pairs = [(f"{metric}: {reason}", n) for metric, reasons in sorted(rejected.items())
             for reason, n in sorted(reasons.items())]
    lines.append(f"  rows rejected  {sum(n for _, n in pairs)} (see the rejected_rows table)"
                 if pairs else "  rows rejected  0")
    for label, n in pairs:
        lines.append(f"    {label:<36} {n}")
    written = report.get("rows_written") or {}
    lines.append(f"  rows written   {sum(written.values())} in {len(written)} tables")
    for table, n in written.items():
        lines.append(f"    {table:<28} {n}")
    seconds = report.get("seconds") or {}
    lines.append(f"  seconds        {sum(seconds.values()):.3f}")
    for step, s in seconds.items():
        lines.append(f"    {step:<28} {s:.3f}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from engage_plugin.config import load_pipeline
    from engage_plugin.runner import run_pipeline

    config = load_pipeline(args.file)
    report = run_pipeline(config, start=args.start, end=args.end,
                          full_refresh=args.full_refresh).to_dict()
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(format_report(report))
    return 0


def cmd_validate(args) -> int:
    from engage_plugin.config import check_available, load_pipeline
    from engage_plugin.sources import check_schema, role_columns, source_schema

    config = load_pipeline(args.file)
    check_available(config)
    schema = source_schema(config)
    check_schema(config, schema)
    _engine_schema_check(config, schema)
    cols = ", ".join(f"{role}={col}" for role, col in role_columns(config, schema).items())
    print(f"{args.file}: ok: pipeline {config.pipeline}, metrics "
          f"{', '.join(config.metrics)}; source columns {cols}")
    return 0


def _engine_schema_check(config, schema) -> None:
    """Let the engine check the column types on an empty table of the source's schema."""
    from engage_plugin.compute import prepare
    from engage_plugin.sources import role_columns

    prepare(config, schema.empty_table(), role_columns(config, schema))


def cmd_demo(args) -> int:
    from engage_plugin.demo import run_demo

    return int(run_demo(args.dir) or 0)


def cmd_superset_bundle(args) -> int:
    from engage_plugin.superset import build_bundle

    print(build_bundle(args.file, args.output))
    return 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "demo": cmd_demo,
            "superset-bundle": cmd_superset_bundle}


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except EngageError as exc:
        print(f"engage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("engage: error: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # a failure while running
        print(f"engage: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
