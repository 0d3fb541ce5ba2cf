"""Arrow types written with ``Session.insert`` read back unchanged with ``Session.read(...,
schema=)`` on every dialect (real PostgreSQL and MariaDB servers): 64-bit limits, unicode
and quotes, NULLs in every column, dates before 1970, timestamps of every unit and zone;
columns are matched by name; loads are bulk statements, not one per row."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engage_plugin.warehouse import open_warehouse

from warehouse_servers import DIALECTS, place  # noqa: F401  (fixture)

UTC = dt.timezone.utc
EXTREMES = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "big": pa.array([2 ** 63 - 1, -(2 ** 63 - 1), -2 ** 63, None], pa.int64()),
    "small": pa.array([2 ** 31 - 1, -2 ** 31, 0, None], pa.int32()),
    "text": pa.array(["it's \"quoted\" `x` \\ %s ?", "日本語 ☃ é", "", None], pa.string()),
    "day": pa.array([dt.date(1969, 12, 31), dt.date(2025, 3, 9), dt.date(9999, 12, 31), None],
                    pa.date32()),
    "ratio": pa.array([0.1, -1e300, 5e-324, None], pa.float64()),
    "flag": pa.array([True, False, None, True], pa.bool_()),
    "at": pa.array([dt.datetime(2025, 3, 9, 6, 59, 59, 999999), dt.datetime(1969, 7, 20, 20, 17),
                    None, dt.datetime(2025, 11, 2, 5, 30)], pa.timestamp("us")),
})


def _fresh(place, table: str, schema: pa.Schema, key=("id",)):
    wh = open_warehouse(place.uri, place.schema)
    with wh.session() as s:  # DDL in its own session (MySQL commits on DDL)
        s.ensure_schema()
        s.create_table(table, schema, key)
    return wh


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_extremes_round_trip_exactly(place):
    wh = _fresh(place, "extremes", EXTREMES.schema)
    with wh.session() as s:
        assert s.insert("extremes", EXTREMES) == 4
    with wh.session(read_only=True) as s:
        back = s.read("extremes", schema=EXTREMES.schema)
        assert s.table_columns("extremes") == EXTREMES.schema.names
    assert back.schema.equals(EXTREMES.schema)
    assert back.sort_by("id").to_pylist() == EXTREMES.to_pylist()


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_every_arrow_flavour_is_stored_plainly_and_read_back_as_asked(place):
    """int8/16, unsigned, float32, decimal, large and dictionary strings, timestamps in
    s/ms/ns and with a zone: stored as plain columns (aware instants as naive UTC), and read
    back with the types the table was created from."""
    ny = "America/New_York"
    data = pa.table({
        "id": pa.array([1, 2, 3], pa.int16()),
        "i8": pa.array([-128, None, 127], pa.int8()),
        "u32": pa.array([0, 2 ** 32 - 1, None], pa.uint32()),
        "u64": pa.array([0, 2 ** 63 - 1, None], pa.uint64()),
        "f32": pa.array([1.5, None, -2.25], pa.float32()),
        "dec": pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-0.01")],
                        pa.decimal128(9, 2)),
        "large": pa.array(["a", None, "ü"], pa.large_string()),
        "dict": pa.array(["x", None, "x"]).dictionary_encode(),
        "t_s": pa.array([0, None, 1_741_500_000], pa.timestamp("s")),
        "t_ms": pa.array([1, None, 1_741_500_000_123], pa.timestamp("ms")),
        "t_ns": pa.array([1_000, None, 1_741_500_000_123_456_000], pa.timestamp("ns")),
        "t_ny": pa.array([dt.datetime(2025, 3, 9, 6, 30, tzinfo=UTC), None,
                          dt.datetime(2025, 3, 9, 7, 30, tzinfo=UTC)], pa.timestamp("us", ny)),
    })
    wh = _fresh(place, "flavours", data.schema)
    with wh.session() as s:  # a stream of batches, columns in another order than the table's
        shuffled = data.select(list(reversed(data.column_names)))
        assert s.insert("flavours", shuffled.to_reader(max_chunksize=1)) == 3
    with wh.session(read_only=True) as s:
        back = s.read("flavours", schema=data.schema).sort_by("id")
        raw = s.read("flavours", columns=["id", "t_ny"]).sort_by("id")
    assert back.schema.equals(data.schema)
    assert back.to_pylist() == data.to_pylist()
    # the zone-aware column is stored as naive UTC
    stored = raw["t_ny"].to_pylist()
    if pa.types.is_string(raw["t_ny"].type):  # SQLite: ISO text
        assert stored[0] == "2025-03-09 06:30:00.000000"
    else:
        assert [v.replace(tzinfo=None) if v else v for v in stored] == \
            [dt.datetime(2025, 3, 9, 6, 30), None, dt.datetime(2025, 3, 9, 7, 30)]


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_null_ratios_and_constants_in_a_200k_row_bulk_load(place):
    n = 200_000
    ids = pa.array(range(n), pa.int64())
    # a float column NULL on every third row, a string id column NULL on every seventh
    def every(k):
        return pc.equal(pc.subtract(ids, pc.multiply(pc.divide(ids, k), k)), 0)

    ratio = pc.if_else(every(3), pa.scalar(None, pa.float64()),
                       pc.divide(pc.cast(ids, pa.float64()), n))
    user = pc.if_else(every(7), pa.scalar(None, pa.string()), pc.cast(ids, pa.string()))
    data = pa.table({"id": ids, "user_id": user, "ratio": ratio})
    computed_at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    schema = data.schema.append(pa.field("computed_at", pa.timestamp("us")))
    wh = _fresh(place, "big", schema)
    statements = _insert_statements(wh) if place.dialect in ("postgresql", "mysql") else None
    with wh.session() as s:
        before = statements(s) if statements else 0
        assert s.insert("big", data.to_reader(max_chunksize=50_000),
                        constants={"computed_at": computed_at}) == n
        if statements:  # bulk by design: COPY once, or multi-row INSERTs (~1 MB each)
            used = statements(s) - before
            print(f"{place.dialect}: {n} rows in {used} statement(s)")
            assert 1 <= used <= n // 1000
    with wh.session(read_only=True) as s:
        back = s.read("big", schema=schema)
        counts = s.execute(f"SELECT COUNT(*), COUNT(ratio), COUNT(user_id) FROM "
                           f"{wh.qualified('big')}")
    assert tuple(counts[0]) == (n, n - len(range(0, n, 3)), n - len(range(0, n, 7)))
    back = back.sort_by("id")
    assert back.drop_columns(["computed_at"]).equals(data)
    assert pc.unique(back["computed_at"]).to_pylist() == [dt.datetime(2026, 1, 2, 8, 4, 5, 6)]


def _insert_statements(wh):
    if wh.dialect == "mysql":
        return lambda s: int(s.execute("SHOW SESSION STATUS LIKE 'Com_insert'")[0][1])
    # PostgreSQL: a statement-level trigger counts the statements that insert rows
    name = wh.qualified("big")
    with wh.session() as s:
        s.execute(f"CREATE TABLE {wh.qualified('stmts')} (n INTEGER)")
        s.execute(f"CREATE FUNCTION {wh.quote(wh.schema)}.count_stmt() RETURNS trigger "
                  f"LANGUAGE plpgsql AS $$ BEGIN INSERT INTO {wh.qualified('stmts')} VALUES (1);"
                  " RETURN NULL; END $$")
        s.execute(f"CREATE TRIGGER count_stmt AFTER INSERT ON {name} FOR EACH STATEMENT "
                  f"EXECUTE FUNCTION {wh.quote(wh.schema)}.count_stmt()")
    return lambda s: s.execute(f"SELECT COUNT(*) FROM {wh.qualified('stmts')}")[0][0]


@pytest.mark.parametrize("place", DIALECTS, indirect=True)
def test_delete_by_key_range_and_null_then_read_a_range(place):
    schema = pa.schema([("day", pa.date32()), ("segment", pa.string()), ("n", pa.int64())])
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(10)]
    data = pa.table({"day": days * 2, "segment": ["all"] * 10 + ["web"] * 10,
                     "n": list(range(20))}, schema=schema)
    wh = _fresh(place, "daily", schema, ("day", "segment"))
    with wh.session() as s:
        s.insert("daily", data)
    with wh.session() as s:
        gone = s.delete("daily", where={"segment": "web"},
                        between=("day", dt.date(2025, 3, 3), dt.date(2025, 3, 5)))
        assert gone == 3
        got = s.read("daily", between=("day", dt.date(2025, 3, 2), dt.date(2025, 3, 6)),
                     schema=schema)
    assert sorted((r["day"].day, r["segment"]) for r in got.to_pylist()) == \
        sorted([(d, "all") for d in range(2, 7)] + [(2, "web"), (6, "web")])
    with wh.session() as s:
        assert s.delete("daily") == 17
        assert s.read("daily", schema=schema).num_rows == 0
