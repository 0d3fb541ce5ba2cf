"""Where the warehouse tests write: a fresh, isolated place per test on every dialect.

PostgreSQL and MariaDB/MySQL are real servers (``ENGAGE_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``; ``ENGAGE_TEST_MYSQL_URL``, default
``mysql+pymysql://root@127.0.0.1:3306/test``): each test gets its own schema / database,
dropped afterwards. When a server cannot be reached the test is skipped with a message
saying how to point it at one, except in CI (``CI=true``), where that is a failure.
DuckDB and SQLite use files in the test's temporary folder.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("ENGAGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("ENGAGE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DIALECTS = ["duckdb", "sqlite", "postgresql", "mysql"]
SERVER_ENV = {"postgresql": ("ENGAGE_TEST_POSTGRES_URL", POSTGRES_URL),
              "mysql": ("ENGAGE_TEST_MYSQL_URL", MYSQL_URL)}


@dataclasses.dataclass
class Place:
    dialect: str
    uri: str
    schema: str | None


def _unreachable(dialect: str, exc: Exception) -> None:
    env, url = SERVER_ENV[dialect]
    message = (f"{dialect} at {url} is unreachable ({type(exc).__name__}: {exc}); start it, or "
               f"set {env} to a server URL the tests may create and drop schemas on")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _drop(place: Place) -> None:
    from engage_plugin.warehouse import open_warehouse

    wh = open_warehouse(place.uri)
    with wh.session() as s:
        if place.dialect == "postgresql":
            s.execute(f"DROP SCHEMA IF EXISTS {wh.quote(place.schema)} CASCADE")
        else:
            s.execute(f"DROP DATABASE IF EXISTS {wh.quote(place.schema)}")


def make_place(dialect: str, tmp_path) -> Place:
    """A place to write (servers: checked reachable; the caller drops it with _drop)."""
    if dialect == "duckdb":
        return Place(dialect, f"duckdb:///{tmp_path / 'target.duckdb'}", "analytics")
    if dialect == "sqlite":
        return Place(dialect, f"sqlite:///{tmp_path / 'target.db'}", None)
    from engage_plugin.warehouse import open_warehouse

    url = SERVER_ENV[dialect][1]
    try:
        with open_warehouse(url).session(read_only=True) as s:
            s.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 (any driver error means unreachable)
        _unreachable(dialect, exc)
    return Place(dialect, url, f"engage_t_{uuid.uuid4().hex[:10]}")


@pytest.fixture()
def place(request, tmp_path):
    """``Place`` for the dialect given by ``indirect`` parametrization."""
    p = make_place(request.param, tmp_path)
    yield p
    if p.dialect in SERVER_ENV:
        _drop(p)


def lock_worker(uri: str, schema: str | None, name: str, hold: bool, times, holding,
                release) -> None:
    """In a process of its own: take the lock ``engage:lock-test``, put ``(name, "in",
    time)`` on ``times``; the holder sets ``holding`` and waits for ``release``; then
    ``(name, "out", time)`` is put just before the session commits and lets go."""
    import time

    from engage_plugin.warehouse import open_warehouse

    wh = open_warehouse(uri, schema)
    with wh.session(lock="engage:lock-test", lock_timeout=60) as s:
        times.put((name, "in", time.time()))
        s.execute(f"INSERT INTO {wh.qualified('log')} (who) VALUES (?)", [name])
        if hold:
            holding.set()
            release.wait(60)
        times.put((name, "out", time.time()))
