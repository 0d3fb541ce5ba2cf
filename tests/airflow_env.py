"""Shared set-up of the Airflow tests (imported by tests/test_airflow_*.py).

Importing this module skips the importing test module when Airflow is not installed, and
points Airflow at a private home (SQLite metadata database, no example DAGs) *before*
Airflow is imported, so the tests never touch a real ``~/airflow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

if not os.environ.get("ENGAGE_TEST_AIRFLOW_HOME"):
    _home = Path(tempfile.mkdtemp(prefix="engage-airflow-tests-"))
    os.environ["ENGAGE_TEST_AIRFLOW_HOME"] = str(_home)
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.pop("ENGAGE_PIPELINES_DIR", None)

pytest.importorskip("airflow.sdk", reason="Apache Airflow is not installed: "
                    "pip install -e '.[airflow]' to run the Airflow tests")

HOME = Path(os.environ["ENGAGE_TEST_AIRFLOW_HOME"])
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))


def subprocess_env(home: Path, **extra: str) -> dict:
    """Environment for an ``airflow`` subprocess with its own home."""
    env = dict(os.environ)
    env.update({"AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)})
    env.update(extra)
    return env


def airflow_cli(home: Path, *args: str, **extra: str) -> str:
    """Run ``airflow <args>`` with its own home; return stdout (fails the test on error)."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([AIRFLOW_BIN, *args], env=subprocess_env(home, **extra),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


_migrated = False


def migrate_once() -> None:
    """``airflow db migrate`` on the shared test home, once per session (about 4 s)."""
    global _migrated
    if _migrated:
        return
    from airflow.utils import db

    db.initdb()
    _migrated = True
