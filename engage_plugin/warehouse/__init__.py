"""Warehouses Engage reads from and writes to: DuckDB, PostgreSQL, MySQL/MariaDB, SQLite.

:func:`open_warehouse` turns a SQLAlchemy-style URL into a :class:`~.base.Warehouse`;
``Warehouse.session()`` opens one connection and one transaction (optionally holding the
pipeline's lock) and gives a :class:`~.base.Session` with the few operations the runner
needs: create tables from Arrow schemas, bulk inserts of Arrow tables, deletes by key or
range, reads back to Arrow. Identifiers are checked and quoted; values are always bound.

>>> wh = open_warehouse("duckdb:///:memory:")
>>> wh.dialect, wh.qualified("engage_runs")
('duckdb', '"engage_runs"')
>>> open_warehouse("postgresql://u:secret@db.example.com/analytics", "mart").display
'postgresql://u:***@db.example.com/analytics'
"""

from __future__ import annotations

import importlib.util
import urllib.parse

from engage_core.errors import ConfigError
from engage_plugin.warehouse.base import Session, Warehouse, check_identifier

SCHEMES = {
    "duckdb": "duckdb", "postgresql": "postgresql", "postgres": "postgresql",
    "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
}
#: dialect -> (driver module, the pip extra that installs it)
DRIVERS = {"postgresql": ("adbc_driver_postgresql", "postgres"),
           "mysql": ("pymysql", "mysql")}

__all__ = ["Session", "Warehouse", "open_warehouse", "parse_url", "SCHEMES"]


def parse_url(uri: str, where: str = "target.uri") -> tuple[str, urllib.parse.SplitResult]:
    """``(dialect, parts)`` of a warehouse URL; ``+driver`` suffixes are accepted."""
    if not isinstance(uri, str) or "://" not in uri:
        raise ConfigError(f"{where}: expected a URL such as duckdb:///engage.duckdb or "
                          f"postgresql://user@host/db, found {uri!r}")
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{where}: unknown warehouse scheme {parts.scheme}://; accepted: "
                          f"{', '.join(sorted(SCHEMES))} (with an optional +driver)")
    return SCHEMES[scheme], parts


def _masked(parts: urllib.parse.SplitResult) -> str:
    if parts.password is None:
        return parts.geturl()
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_warehouse(uri: str, schema: str | None = None, *, where: str = "target.uri") -> Warehouse:
    """The warehouse behind ``uri`` (nothing is opened until a session starts)."""
    dialect, parts = parse_url(uri, where)
    if schema is not None:
        check_identifier(schema, f"{where.rsplit('.', 1)[0]}.schema", dialect)
    module, extra = DRIVERS.get(dialect, (None, None))
    if module and importlib.util.find_spec(module) is None:
        raise ConfigError(f"{where}: {dialect} needs the {module} package; install it with "
                          f"pip install 'airflow-provider-engage[{extra}]'")
    from engage_plugin.warehouse import dialects

    cls = {"duckdb": dialects.DuckDBWarehouse, "postgresql": dialects.PostgresWarehouse,
           "mysql": dialects.MySQLWarehouse, "sqlite": dialects.SQLiteWarehouse}[dialect]
    if dialect == "sqlite" and schema:
        raise ConfigError(f"{where.rsplit('.', 1)[0]}.schema: SQLite has no schemas; found "
                          f"{schema!r} (leave it out, or use table_prefix)")
    return cls(uri, parts, schema, _masked(parts), where)
