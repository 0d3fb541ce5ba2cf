"""Warehouses Engage reads from and writes to: DuckDB, PostgreSQL, MySQL/MariaDB, SQLite.

:func:`open_warehouse` turns a SQLAlchemy-style URL into a :class:`~.base.Warehouse`;
``Warehouse.session()`` opens one connection and one transaction (optionally holding the
pipeline's lock) and gives a :class:`~.base.Session` with the few operations the runner
needs: create tables from Arrow schemas, bulk inserts of Arrow data, deletes by key or
range, reads back to Arrow. Identifiers are checked and quoted; values are always bound.

URLs are parsed here (no SQLAlchemy needed); a ``+driver`` part (``postgresql+psycopg2``,
``mysql+pymysql``) is accepted and ignored: PostgreSQL is reached through ADBC, MySQL and
MariaDB through PyMySQL, SQLite through the standard library, DuckDB through duckdb.

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
ACCEPTED = ("duckdb:///file.duckdb, sqlite:///file.db, postgresql://user@host/db "
            "(pip install 'airflow-provider-engage[postgres]'), mysql:// or mariadb://"
            "user@host/db (pip install 'airflow-provider-engage[mysql]'); an optional "
            "+driver part is accepted")

__all__ = ["Session", "Warehouse", "open_warehouse", "parse_url", "mask_url", "SCHEMES"]


def parse_url(uri: str, where: str = "target.uri") -> tuple[str, urllib.parse.SplitResult]:
    """``(dialect, parts)`` of a warehouse URL; ``+driver`` suffixes are accepted."""
    if not isinstance(uri, str) or "://" not in uri:
        shown = mask_url(uri) if isinstance(uri, str) else repr(uri)
        raise ConfigError(f"{where}: expected a warehouse URL, one of {ACCEPTED}; "
                          f"found {shown!r}")
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{where}: unknown warehouse scheme {parts.scheme}:// in "
                          f"{mask_url(uri)}; accepted: {ACCEPTED}")
    return SCHEMES[scheme], parts


def mask_url(uri: str) -> str:
    """``uri`` with its password (in the user part or a ``password=`` query item) as ***."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return "<unparsable URL>"
    masked = uri
    if "@" in parts.netloc:
        userinfo, hostport = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = userinfo.split(":", 1)[0] + ":***@" + hostport
            masked = masked.replace(parts.netloc, netloc, 1)
    if "password" in parts.query.lower():
        query = "&".join(f"{item.split('=', 1)[0]}=***" if
                         item.split("=", 1)[0].lower() == "password" else item
                         for item in parts.query.split("&"))
        masked = masked.replace("?" + parts.query, "?" + query, 1)
    return masked


def open_warehouse(uri: str, schema: str | None = None, *, where: str = "target.uri") -> Warehouse:
    """The warehouse behind ``uri`` (nothing is opened until a session starts)."""
    dialect, parts = parse_url(uri, where)
    schema_key = f"{where.rsplit('.', 1)[0]}.schema" if "." in where else f"{where} schema"
    if schema is not None:
        check_identifier(schema, schema_key, dialect)
    if dialect == "sqlite" and schema:
        raise ConfigError(f"{schema_key}: SQLite has no schemas; found {schema!r} (leave it "
                          "out, or use table_prefix)")
    module, extra = DRIVERS.get(dialect, (None, None))
    if module and importlib.util.find_spec(module) is None:
        raise ConfigError(f"{where}: found a {parts.scheme}:// URL, which needs the Python "
                          f"package {module} (not installed); install it with "
                          f"pip install 'airflow-provider-engage[{extra}]'")
    if dialect == "duckdb":
        from engage_plugin.warehouse.duckdb_wh import DuckDBWarehouse as cls
    elif dialect == "postgresql":
        from engage_plugin.warehouse.postgres_wh import PostgresWarehouse as cls
    elif dialect == "mysql":
        from engage_plugin.warehouse.mysql_wh import MySQLWarehouse as cls
    else:
        from engage_plugin.warehouse.sqlite_wh import SQLiteWarehouse as cls
    return cls(uri, parts, schema, mask_url(uri), where)
