"""The second half of ``make demo``: the example pipeline as an Airflow DAG.

After ``engage demo`` has written ``demo_out/events.parquet`` (and filled
``demo_out/engage.duckdb``), this runs ``dags/pipelines/shop.yaml`` as the DAG
``engage_shop`` with ``airflow dags test`` on a throw-away Airflow home
(``demo_out/airflow``: SQLite metadata database, no example DAGs, DAGs folder = the repo's
``dags/``), then prints what happened: each task's state and time, the rows each metric
task wrote, and the Asset events of the publish step with their day range.

No server runs: ``airflow dags test`` executes every task in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DAG = "engage_shop"
# The demo log ends on 2025-06-30 (America/New_York); the run whose data interval ends at
# the next local midnight covers that day.
DEFAULT_RUN_AFTER = "2025-07-01T00:00:00-04:00"


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """Environment of a self-contained Airflow: SQLite metadata in ``home``."""
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
    })
    env.pop("ENGAGE_PIPELINES_DIR", None)  # the demo uses the repo's dags/pipelines/
    return env


def _airflow() -> str:
    local = Path(sys.executable).with_name("airflow")
    return str(local) if local.exists() else "airflow"


def _run(args: list[str], env: dict, log_path: Path, what: str) -> float:
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    took = time.monotonic() - started
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"{what} failed (exit {proc.returncode}); full log: {log_path}")
    return took


def summarize(db_path: Path, dag_id: str, out=None) -> dict:
    """Print (and return) the run's tasks, rows written and Asset events from the metadata
    database."""
    out = sys.stdout if out is None else out
    con = sqlite3.connect(db_path)
    try:
        run_id, state, start, end = con.execute(
            "select run_id, state, data_interval_start, data_interval_end from dag_run "
            "where dag_id = ? order by id desc limit 1", (dag_id,)).fetchone()
        tasks = con.execute(
            "select task_id, state, duration from task_instance where dag_id = ? and run_id = ?"
            " order by start_date", (dag_id, run_id)).fetchall()
        xcoms = dict(con.execute(
            "select task_id, value from xcom where dag_id = ? and run_id = ? and "
            "key = 'return_value'", (dag_id, run_id)).fetchall())
        events = con.execute(
            "select a.name, e.extra from asset_event e join asset a on a.id = e.asset_id "
            "where e.source_dag_id = ? and e.source_run_id = ? order by a.name",
            (dag_id, run_id)).fetchall()
    finally:
        con.close()
    start, end = (str(v).replace(".000000", "") + " UTC" for v in (start, end))
    print(f"\nAirflow run of {dag_id}: {state}  (data interval {start} .. {end})", file=out)
    for task_id, task_state, duration in tasks:
        line = f"  {task_id:<26} {task_state:<8} {duration or 0:6.1f} s"
        report = _load(xcoms.get(task_id))
        written = report.get("rows_written") if isinstance(report, dict) else None
        if isinstance(written, dict):
            line += "  wrote " + ", ".join(f"{t} {n:,}" for t, n in written.items())
        print(line, file=out)
    print(f"Asset events ({len(events)}):", file=out)
    for name, extra in events:
        extra = _load(extra) or {}
        print(f"  {name:<44} days {extra.get('start_day')}..{extra.get('end_day')}  "
              f"rows {extra.get('rows')}", file=out)
    return {"state": state, "tasks": {t: s for t, s, _ in tasks},
            "events": {n: _load(x) for n, x in events}}


def table_fingerprints(db: Path) -> dict[str, str]:
    """``table -> hash of its rows without computed_at`` for every ``engage_`` metric table."""
    import duckdb

    if not db.exists():
        return {}
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.columns where table_name like 'engage_%' "
            "and table_name not like 'engage_rolling_%' and column_name = 'computed_at'"
        ).fetchall()]
        for name in sorted(names):
            out[name] = con.execute(
                f'select count(*) || \':\' || coalesce(sum(hash(t)), 0) from '
                f'(select * exclude (computed_at) from "{name}") t').fetchone()[0]
    return out


def _load(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    try:
        value = json.loads(value)
        return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="demo_out", help="the demo folder (default demo_out)")
    parser.add_argument("--dag", default=DEFAULT_DAG)
    parser.add_argument("--run-after", default=DEFAULT_RUN_AFTER,
                        help="logical date given to `airflow dags test`")
    args = parser.parse_args(argv)
    demo_dir = Path(args.dir).resolve()
    if not (demo_dir / "events.parquet").exists():
        raise SystemExit(f"{demo_dir / 'events.parquet'} is missing: run `engage demo` first")
    home = demo_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    # a fresh metadata database each time: the demo shows one run, not leftovers of earlier
    # runs (an earlier version's assets would still be active under their old names)
    (home / "airflow.db").unlink(missing_ok=True)
    env = airflow_env(home, REPO / "dags")
    print(f"\nAirflow: metadata database {home / 'airflow.db'} (SQLite), DAGs folder "
          f"{REPO / 'dags'}")
    took = _run([_airflow(), "db", "migrate"], env, home / "db_migrate.log", "airflow db migrate")
    print(f"  airflow db migrate: {took:.1f} s")
    before = table_fingerprints(demo_dir / "engage.duckdb")
    took = _run([_airflow(), "dags", "test", args.dag, args.run_after], env,
                home / "dags_test.log", f"airflow dags test {args.dag}")
    print(f"  airflow dags test {args.dag} {args.run_after}: {took:.1f} s "
          f"(log: {home / 'dags_test.log'})")
    result = summarize(home / "airflow.db", args.dag)
    after = table_fingerprints(demo_dir / "engage.duckdb")
    same = [t for t in before if after.get(t) == before[t]]
    print(f"Idempotent: {len(same)} of {len(before)} tables have the same rows as after "
          f"`engage demo` (only computed_at changed); tables in {demo_dir / 'engage.duckdb'}")
    return 0 if result["state"] == "success" and len(same) == len(before) else 1


if __name__ == "__main__":
    sys.exit(main())
