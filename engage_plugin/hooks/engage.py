"""``EngageWarehouseHook``: an Airflow connection turned into the URI Engage understands.

Engage's sources and targets take a SQLAlchemy-style URL (``duckdb:///engage.duckdb``,
``postgresql://user@host/db``, ``sqlite:///events.db``). This hook builds that URL from

* its own connection type ``engage_warehouse``: the URL in the *host* field (or in the
  extra ``{"uri": "..."}``); the *login* / *password* fields, when set, are put into the URL
  so the secret stays in Airflow's masked password field;
* the standard ``postgres``, ``mysql``, ``sqlite`` and ``duckdb`` connections, whatever
  provider defines them (the fields are read the way those providers read them).

The hook never imports a database driver: it only builds a string.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from airflow.sdk import BaseHook

from engage_core.errors import ConfigError

#: connection types the hook turns into a URI, and the URL scheme each one gets
SUPPORTED_CONN_TYPES = {
    "engage_warehouse": None,          # the URL is given as is
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
}


def _quote(value: str | None) -> str:
    return quote(value or "", safe="")


def _with_credentials(url: str, login: str | None, password: str | None) -> str:
    """Put ``login`` / ``password`` into ``url`` unless the URL already has them."""
    if not login and not password:
        return url
    parts = urlsplit(url)
    if "@" in parts.netloc or not parts.netloc:
        return url
    userinfo = _quote(login)
    if password:
        userinfo += ":" + _quote(password)
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query,
                       parts.fragment))


def _file_url(scheme: str, path: str | None) -> str:
    """``sqlite:///rel.db``, ``sqlite:////abs.db``; an empty path is an in-memory database."""
    if not path or path == ":memory:":
        return f"{scheme}:///:memory:" if scheme == "duckdb" else f"{scheme}://"
    return f"{scheme}:///{path}"


def _extra(conn: Any, key: str) -> Any:
    """An extra field, stored plain (Airflow 3 forms) or prefixed (older forms)."""
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return extra.get(key) or extra.get(f"extra__{conn.conn_type}__{key}")


def conn_to_uri(conn: Any) -> str:
    """The SQLAlchemy-style URL for an Airflow connection (``Connection`` or look-alike).

    Raises :class:`ConfigError` naming the connection and its type when the type is not one
    Engage can use, or when an ``engage_warehouse`` connection has no URL.
    """
    conn_type = (conn.conn_type or "").lower()
    if conn_type not in SUPPORTED_CONN_TYPES:
        raise ConfigError(
            f"connection {conn.conn_id!r}: type {conn_type or '(none)'!r} is not a warehouse "
            f"Engage can use; use one of {sorted(SUPPORTED_CONN_TYPES)}")
    if conn_type == "engage_warehouse":
        url = (conn.host or "").strip() or str(_extra(conn, "uri") or "").strip()
        if "://" not in url:
            raise ConfigError(
                f"connection {conn.conn_id!r} (engage_warehouse): put a SQLAlchemy URL such as "
                f"duckdb:///engage.duckdb in the host field or in the extra key 'uri'; "
                f"found {url or '(empty)'!r}")
        return _with_credentials(url, conn.login, conn.password)
    scheme = SUPPORTED_CONN_TYPES[conn_type]
    if scheme in ("sqlite", "duckdb"):
        # the sqlite provider and the community duckdb provider keep the file in `host`
        return _file_url(scheme, conn.host or _extra(conn, "database") or conn.schema)
    netloc = conn.host or "localhost"
    if conn.port:
        netloc += f":{conn.port}"
    if conn.login or conn.password:
        userinfo = _quote(conn.login)
        if conn.password:
            userinfo += ":" + _quote(conn.password)
        netloc = f"{userinfo}@{netloc}"
    database = conn.schema or _extra(conn, "database") or ""
    query = ""
    if scheme == "postgresql" and _extra(conn, "sslmode"):
        query = "sslmode=" + _quote(str(_extra(conn, "sslmode")))
    return urlunsplit((scheme, netloc, "/" + database, query, ""))


class EngageWarehouseHook(BaseHook):
    """A warehouse Engage reads events from or writes metric tables to.

    :param engage_conn_id: the Airflow connection id (type ``engage_warehouse``, or a
        standard ``postgres`` / ``mysql`` / ``sqlite`` / ``duckdb`` connection).
    """

    conn_name_attr = "engage_conn_id"
    default_conn_name = "engage_default"
    conn_type = "engage_warehouse"
    hook_name = "Engage warehouse"

    def __init__(self, engage_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engage_conn_id = engage_conn_id

    def get_uri(self) -> str:
        """The SQLAlchemy-style URL of the connection's warehouse."""
        return conn_to_uri(self.get_connection(self.engage_conn_id))

    def get_schema(self) -> str | None:
        """The schema the connection names for Engage's tables (extra ``table_schema``)."""
        conn = self.get_connection(self.engage_conn_id)
        return _extra(conn, "table_schema") or None

    def get_conn(self) -> str:
        """Engage opens its own connections; the hook's "connection" is the URL."""
        return self.get_uri()

    def test_connection(self) -> tuple[bool, str]:
        """Check that the URL can be built and, for SQLAlchemy URLs, opened."""
        try:
            uri = self.get_uri()
        except ConfigError as exc:
            return False, str(exc)
        try:
            scheme = uri.split(":", 1)[0].split("+", 1)[0]
            path = uri.split(":///", 1)[1].split("?", 1)[0] if ":///" in uri else ""
            if scheme in ("duckdb", "sqlite") and path and path != ":memory:":
                import os

                if not os.path.exists(path):
                    folder = os.path.dirname(os.path.abspath(path))
                    if not os.access(folder, os.W_OK):
                        return False, f"{path} does not exist and {folder} is not writable"
                    return True, f"{path} will be created on the first run"
                if scheme == "duckdb":
                    import duckdb

                    with duckdb.connect(path, read_only=True) as con:
                        con.execute("select 1").fetchone()
                else:
                    import sqlite3

                    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
                        con.execute("select 1").fetchone()
            elif scheme not in ("duckdb", "sqlite"):
                import sqlalchemy

                engine = sqlalchemy.create_engine(uri)
                with engine.connect() as connection:
                    connection.exec_driver_sql("select 1")
                engine.dispose()
        except Exception as exc:  # report, do not raise: this is the UI's "Test" button
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"connected to {uri.split('@')[-1]}"
