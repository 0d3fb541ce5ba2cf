"""The ``engage`` command: exit status 0/2/1, the report, --json, validate writes nothing."""

import json
import os
import subprocess
import sys

import duckdb
import pytest

from engage_plugin.cli import main

from engage_fixtures import events_table, write_parquet, write_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGAGE = os.path.join(ROOT, ".venv", "bin", "engage")


@pytest.fixture()
def shop(tmp_path):
    write_parquet(tmp_path / "data")
    return write_pipeline(tmp_path, "  path: data/events.parquet")


def test_run_prints_the_report(shop, tmp_path, capsys):
    assert main(["run", str(shop), "--start", "2025-01-01", "--end", "2025-01-20"]) == 0
    out = capsys.readouterr().out
    n = events_table().num_rows
    assert f"rows read      {n}" not in out  # a range reads fewer rows than the whole log
    assert "rows skipped   2 (null user_id: 1, null timestamp: 1)" in out
    assert "rows rejected  0" in out
    assert "days           2025-01-01 .. 2025-01-20" in out
    assert "engage_first_week" in out and "seconds" in out and "load" in out
    assert ": success" in out
    assert (tmp_path / "engage.duckdb").exists()


def test_run_json_is_one_object(shop, tmp_path, capsys):
    assert main(["run", str(shop), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "success" and report["pipeline"] == "shop"
    assert report["rows_read"] == events_table().num_rows
    assert report["rows_skipped_null_user"] == 1
    assert report["rows_skipped_null_timestamp"] == 1
    assert report["rows_rejected"] == {}
    con = duckdb.connect(str(tmp_path / "engage.duckdb"), read_only=True)
    try:
        n = con.execute("select count(*) from engage_lifecycle").fetchone()[0]
    finally:
        con.close()
    assert report["rows_written"]["engage_lifecycle"] == n > 0
    assert set(report["seconds"]) == {"read", "read_store", "prepare", "active_users",
                                      "engagement_daily", "stickiness", "retention", "lifecycle", "first_week",
                                      "load"}
    assert (report["start_day"], report["end_day"]) == ("2025-01-01", "2025-01-25")


def test_validate_writes_nothing(shop, tmp_path, capsys):
    assert main(["validate", str(shop)]) == 0
    assert "ok: pipeline shop" in capsys.readouterr().out
    assert not (tmp_path / "engage.duckdb").exists()


def test_schema_error_names_the_column_exit_2(tmp_path, capsys):
    t = events_table()
    write_parquet(tmp_path / "data", t.set_column(0, "user_id", t["user_id"].cast("float64")))
    path = write_pipeline(tmp_path, "  path: data/events.parquet")
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("engage: error: ")
        assert "column `user_id` (user_id) has type double; accepted: an integer or string" in err
    assert not (tmp_path / "engage.duckdb").exists()


def test_missing_column_exit_2(tmp_path, capsys):
    write_parquet(tmp_path / "data", events_table().drop_columns(["platform"]))
    path = write_pipeline(tmp_path, "  path: data/events.parquet")
    assert main(["validate", str(path)]) == 2
    assert "column `platform` (breakdown platform) not found" in capsys.readouterr().err


def test_bad_file_and_options_exit_2(shop, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(shop.read_text().replace("active_users:", "activ_users:"))
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"engage: error: {bad}:8: metrics.activ_users: unknown key" in err
    assert "did you mean `active_users`?" in err
    assert main(["run", str(shop), "--start", "2025-13-01"]) == 2
    assert "expected a date like 2025-01-31" in capsys.readouterr().err
    assert main(["run", str(shop), "--start", "2025-01-05", "--end", "2025-01-01"]) == 2
    assert "after --end" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the pipeline file" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert not (tmp_path / "engage.duckdb").exists()


def test_engine_not_available_fails_early_exit_2(shop, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else real(name, *a))
    path = tmp_path / "spark.yaml"
    path.write_text(shop.read_text().replace("timezone:", "engine: spark\ntimezone:", 1))
    assert main(["run", str(path)]) == 2
    assert "engine: engine `spark` needs pyspark" in capsys.readouterr().err
    assert main(["validate", str(path)]) == 2
    assert not (tmp_path / "engage.duckdb").exists()


def test_superset_bundle_exit_status(shop, tmp_path, capsys):
    """superset-bundle (engage_plugin.superset) writes the zip; a bad file exits 2."""
    import zipfile

    assert main(["superset-bundle", str(shop), "-o", str(tmp_path / "b.zip")]) == 0
    assert zipfile.ZipFile(tmp_path / "b.zip").namelist()
    assert main(["superset-bundle", str(tmp_path / "nope.yaml"), "-o",
                 str(tmp_path / "c.zip")]) == 2
    assert "cannot read the pipeline file" in capsys.readouterr().err
    assert not (tmp_path / "c.zip").exists()


def test_failure_while_running_exit_1(shop, tmp_path, capsys):
    (tmp_path / "engage.duckdb").write_bytes(b"not a duckdb file" * 100)
    assert main(["run", str(shop)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("engage: error: ") and "target.uri: cannot open" in err
    assert "engage.duckdb" in err and "not a valid DuckDB database" in err


def test_demo_calls_run_demo(tmp_path, monkeypatch, capsys):
    import engage_plugin.demo as demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda d: seen.append(d) or 0)
    assert main(["demo", "--dir", str(tmp_path / "d")]) == 0
    assert seen == [str(tmp_path / "d")]


@pytest.mark.skipif(not os.path.exists(ENGAGE), reason="no .venv/bin/engage")
def test_the_installed_command(shop, tmp_path):
    def engage(*args):
        return subprocess.run([ENGAGE, *args], capture_output=True, text=True, timeout=300)

    done = engage("run", str(shop), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "success" and report["rows_written"]["engage_active_users"] > 0
    assert done.stderr == ""  # no progress line when stderr is not a terminal
    bad = engage("validate", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2 and bad.stderr.startswith("engage: error: ")
    other = write_pipeline(tmp_path / "broken", "  path: ../data/events.parquet")
    (tmp_path / "broken" / "engage.duckdb").write_bytes(b"garbage" * 500)
    failed = engage("run", str(other))
    assert failed.returncode == 1 and "engage: error:" in failed.stderr
    missing = engage("superset-bundle", str(tmp_path / "nope.yaml"), "-o",
                     str(tmp_path / "x.zip"))
    assert missing.returncode == 2 and not (tmp_path / "x.zip").exists()


def test_module_entry_point(shop):
    done = subprocess.run([sys.executable, "-m", "engage_plugin.cli", "validate", str(shop)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "ok: pipeline shop" in done.stdout


def test_no_source_file_is_a_bad_file_exit_2(tmp_path, capsys):
    path = write_pipeline(tmp_path, "  path: data/*.parquet")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: source.path: expected Parquet or CSV files, found no file matching " \
        f"{tmp_path / 'data' / '*.parquet'}" in err


def test_glob_over_several_parquet_files(tmp_path, capsys):
    t = events_table()
    write_parquet(tmp_path / "data" / "a", t.slice(0, 20))
    write_parquet(tmp_path / "data" / "b", t.slice(20))
    path = write_pipeline(tmp_path, "  path: data/*/events.parquet")
    assert main(["run", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_read"] == t.num_rows
