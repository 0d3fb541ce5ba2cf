"""SQL sources: a table or a query behind any warehouse URL, read with the day range pushed
down. The day is 2025-03-09 in America/New_York, the 23-hour day of the DST change: rows
just inside and just outside its UTC bounds, and NULL timestamps (always kept), for
timestamptz, naive UTC and date columns on every dialect."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pyarrow as pa
import pytest

from engage_core.errors import ConfigError
from engage_plugin.config import load_pipeline
from engage_plugin.sources import read_source
from engage_plugin.warehouse import open_warehouse
from engage_plugin.warehouse.source import read_relation, relation_batches, relation_schema

from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

NY = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.timezone.utc
DAY = dt.date(2025, 3, 9)
LO = dt.datetime.combine(DAY, dt.time(), NY).astimezone(UTC)                      # 05:00Z
HI = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), NY).astimezone(UTC)  # 04:00Z
US = dt.timedelta(microseconds=1)
#: id -> UTC instant; the ids inside [LO, HI) (and the NULL one) are what a read returns
INSTANTS = {1: LO - US, 2: LO, 3: LO + dt.timedelta(hours=2, minutes=30), 4: HI - US, 5: HI,
            6: None, 7: LO - dt.timedelta(hours=17), 8: HI + dt.timedelta(days=1)}
INSIDE = [2, 3, 4, 6]
DATES = {1: DAY - dt.timedelta(days=1), 2: DAY, 3: DAY, 4: None, 5: DAY + dt.timedelta(days=1)}
#: SQLite text: ISO-8601 with a space or a T, Z or an offset, or no offset (UTC)
SQLITE_TEXT = {1: "2025-03-09 04:59:59.999999", 2: "2025-03-09T05:00:00Z",
               3: "2025-03-09T02:30:00-05:00", 4: "2025-03-10 09:29:59.999999+05:30",
               5: "2025-03-10T04:00", 6: None, 7: "2025-03-08 12:00:00",
               8: "2025-03-11T04:00:00+00:00"}
TS_SQL = {"postgresql": {"tz": "TIMESTAMPTZ", "naive": "TIMESTAMP", "date": "DATE"},
          "mysql": {"tz": "TIMESTAMP(6) NULL", "naive": "DATETIME(6)", "date": "DATE"},
          "duckdb": {"tz": "TIMESTAMPTZ", "naive": "TIMESTAMP", "date": "DATE"},
          "sqlite": {"tz": "TEXT", "naive": "TEXT", "date": "TEXT"}}


def _events(place, kind: str):
    """Table ``events`` (user_id BIGINT, ts <kind>, event TEXT) holding the rows above."""
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:
        s.ensure_schema()
        s.execute(f"CREATE TABLE {wh.qualified('events')} (user_id BIGINT, ts "
                  f"{TS_SQL[place.dialect][kind]}, event TEXT)")
    if kind == "date":
        values = pa.array(list(DATES.values()), pa.date32())
        ids = list(DATES)
    elif place.dialect == "sqlite":
        values, ids = pa.array(list(SQLITE_TEXT.values())), list(SQLITE_TEXT)
    else:
        values = pa.array(list(INSTANTS.values()), pa.timestamp("us", "UTC"))
        ids = list(INSTANTS)
    rows = pa.table({"user_id": pa.array(ids, pa.int64()), "ts": values,
                     "event": [f"e{i}" for i in ids]})
    with wh.session() as s:
        s.insert("events", rows)
    return f"{place.schema}.events" if place.schema else "events"


def _reading_uri(place) -> str:
    """PostgreSQL read with a session TimeZone far from UTC: bounds must not depend on it."""
    if place.dialect == "postgresql":
        return place.uri + "?options=-c%20TimeZone%3DAsia/Tokyo"
    return place.uri


@pytest.mark.parametrize("kind", ["tz", "naive"])
@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_timestamp_columns_read_exactly_the_utc_range(place, kind):
    table = _events(place, kind)
    uri = _reading_uri(place)
    schema = relation_schema(uri, table=table)
    ts_type = schema.field("ts").type
    assert pa.types.is_timestamp(ts_type)
    assert schema.field("user_id").type == pa.int64() and schema.field("event").type == pa.string()
    if place.dialect in ("postgresql", "duckdb"):
        assert (ts_type.tz is not None) == (kind == "tz")
    got = read_relation(uri, table, None, ["user_id", "ts"], "ts", ts_type, LO, HI)
    assert sorted(got["user_id"].to_pylist()) == INSIDE
    assert got.schema.equals(pa.schema([schema.field("user_id"), schema.field("ts")]))
    back = {r["user_id"]: r["ts"] for r in got.to_pylist()}
    for uid in INSIDE:  # the instants themselves survive (naive values are UTC)
        v = back[uid]
        want = INSTANTS[uid]
        assert (v if v is None or v.tzinfo else v and v.replace(tzinfo=UTC)) == want
    # a query instead of a table, and naive bounds (taken as UTC); open upper bound
    q = f"SELECT user_id, ts FROM {_qualified(place, 'events')} WHERE user_id <> 3;"
    got = read_relation(uri, None, q, ["user_id"], "ts", ts_type,
                        LO.replace(tzinfo=None), None)
    assert sorted(got["user_id"].to_pylist()) == [2, 4, 5, 6, 8]


def _qualified(place, table):
    return open_warehouse(place.uri, place.schema).qualified(table)


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_date_columns_compare_dates(place):
    table = _events(place, "date")
    schema = relation_schema(place.uri, table=table)
    assert schema.field("ts").type == pa.date32()
    got = read_relation(place.uri, table, None, ["user_id", "ts"], "ts", pa.date32(),
                        DAY, DAY + dt.timedelta(days=1))
    assert sorted(got["user_id"].to_pylist()) == [2, 3, 4]
    assert got["ts"].type == pa.date32()


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_batches_are_bounded_and_typed_alike(place):
    table = _events(place, "naive")
    reader = relation_batches(place.uri, table, batch_rows=3)
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == len(INSTANTS) and max(sizes) <= 3 and len(sizes) >= 3


@pytest.mark.parametrize("place", ["sqlite", "mysql"], indirect=True)
def test_read_source_pushes_the_local_days_down(place, tmp_path):
    """Through sources.read_source (what `engage run --start/--end` calls): SQLite text
    with offsets, MariaDB TIMESTAMP; the local day 2025-03-09 in New York."""
    table = _events(place, "tz")
    path = tmp_path / "p.yaml"
    path.write_text(f"pipeline: src\ntimezone: America/New_York\nsource:\n  uri: {place.uri}\n"
                    f"  table: {table}\n  columns: {{user_id: user_id, timestamp: ts, event: "
                    f"event}}\ntarget:\n  uri: duckdb:///{tmp_path / 'o.duckdb'}\nmetrics:\n"
                    "  active_users: {windows: [1]}\n", encoding="utf-8")
    got, roles = read_source(load_pipeline(path), DAY, DAY)
    assert roles["timestamp"] == "ts"
    assert sorted(got["user_id"].to_pylist()) == INSIDE


def test_bad_sources_are_config_errors_naming_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 's.db'}"
    with open_warehouse(uri).session() as s:
        s.execute("CREATE TABLE events (user_id INTEGER, ts TEXT)")
    with pytest.raises(ConfigError, match=r"source: cannot read the source at sqlite:///.*"
                       "no_such"):
        relation_schema(uri, table="no_such")
    with pytest.raises(ConfigError, match="exactly one of table or query"):
        relation_schema(uri)
    with pytest.raises(ConfigError, match=r"column\(s\) \['nope'\] not in the source"):
        read_relation(uri, "events", None, ["user_id", "nope"], "ts")
