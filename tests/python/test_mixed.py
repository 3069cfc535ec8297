"""Issue 3: MySQL/MariaDB and SQLite binds behind the same PostgreSQL endpoint.

One proxy with a config that mixes PostgreSQL (default bind `main`), MariaDB (`logs`: tables `log_*`), a
SQLite file (`files`: `file_*`) and an in-memory SQLite bind (`mem`: `mem_*`). Every test writes through
real PostgreSQL clients (psycopg 3 extended/text, psycopg2 simple, asyncpg binary/prepared, psql,
SQLAlchemy's postgresql dialect) and checks on each backend directly where the rows landed: PyMySQL for
MariaDB, the sqlite3 module for the file, and a second proxy connection for :memory: (the only way in).

MariaDB missing is a failure (the `mariadb` fixture), never a skip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import sqlite3
import threading
import uuid

import psycopg
import pytest
from psycopg import errors as pgerr
from sqlalchemy import (Boolean, DateTime, ForeignKey, Numeric, String, create_engine, delete, event, func,
                        inspect, select, update)
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from conftest import mixed_config, my_admin, require_tool

# bind name -> table prefix
BINDS = {"logs": "log_", "files": "file_", "mem": "mem_"}
TRANSLATED = ["logs", "files"]  # binds checked directly (mem is checked through the proxy)

_n = iter(range(1, 1_000_000))


def tname(bind: str, what: str) -> str:
    """A fresh table name routed to `bind`."""
    return f"{BINDS[bind]}{what}_{next(_n)}"


@pytest.fixture(scope="module")
def mx(backends, mariadb, start_proxy):
    p = start_proxy(mixed_config(backends), "mixed")
    p.mariadb = mariadb
    p.sqlite_file = backends.sqlite_path("files")
    return p


@pytest.fixture
def px(mx):
    mx.ensure_running()
    return mx


def my_rows(db: str, sql: str, params=None) -> list[tuple]:
    with my_admin(db) as c, c.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def lite_rows(path, sql: str, params=()) -> list[tuple]:
    c = sqlite3.connect(path, timeout=10)
    try:
        return c.execute(sql, params).fetchall()
    finally:
        c.close()


def direct_rows(px, bind: str, sql_mysql: str, sql_lite: str | None = None) -> list[tuple]:
    """Rows as the bind's own engine has them (`mem`: through a second proxy connection)."""
    if bind == "logs":
        return my_rows(px.mariadb, sql_mysql)
    if bind == "files":
        return lite_rows(px.sqlite_file, sql_lite or sql_mysql.replace("`", '"'))
    with px.connect() as c:
        return c.execute((sql_lite or sql_mysql).replace("`", '"')).fetchall()


def table_exists_directly(px, bind: str, table: str) -> bool:
    if bind == "logs":
        return bool(my_rows(px.mariadb, "SHOW TABLES LIKE %s", (table,)))
    if bind == "files":
        return bool(lite_rows(px.sqlite_file, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                              (table,)))
    raise AssertionError(bind)


# --------------------------------------------------------------------------------------------------------------
# Where rows land, per client
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bind", list(BINDS))
def test_psycopg3_extended_rows_land_on_their_bind(px, backends, bind):
    t = tname(bind, "p3")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id serial PRIMARY KEY, name varchar(50) NOT NULL, qty int)")
        cur = c.execute(f"INSERT INTO {t} (name, qty) VALUES (%s, %s), (%s, %s) RETURNING id",
                        ("a", 1, "b", 2))
        assert [r[0] for r in cur.fetchall()] == [1, 2]
        assert cur.statusmessage == "INSERT 0 2"
        cur = c.execute(f"UPDATE {t} SET qty = qty + %s WHERE name = %s", (10, "b"))
        assert cur.statusmessage == "UPDATE 1"
        assert c.execute(f"SELECT id, name, qty FROM {t} ORDER BY id").fetchall() == [(1, "a", 1), (2, "b", 12)]
        assert c.execute(f"SELECT name FROM {t} WHERE id = %s", (2,)).fetchone() == ("b",)
        assert c.execute(f"DELETE FROM {t} WHERE id = %s", (1,)).statusmessage == "DELETE 1"
    assert direct_rows(px, bind, f"SELECT id, name, qty FROM `{t}`") == [(2, "b", 12)]
    # not on the PostgreSQL default bind
    assert not backends.table_exists("main", t)
    if bind != "mem":
        other = [b for b in TRANSLATED if b != bind][0]
        assert not table_exists_directly(px, other, t)


def test_memory_bind_is_shared_by_all_clients(px):
    t = tname("mem", "shared")
    with px.connect() as a, px.connect() as b:
        a.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
        a.execute(f"INSERT INTO {t} VALUES (1, 'one')")
        assert b.execute(f"SELECT v FROM {t}").fetchall() == [("one",)]
    with px.connect() as c:  # a later client still sees it
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (1,)


@pytest.mark.parametrize("bind", list(BINDS))
def test_psycopg2_simple_protocol(px, bind):
    import psycopg2

    t = tname(bind, "p2")
    c = px.connect2()
    try:
        c.autocommit = True
        cur = c.cursor()
        cur.execute(f"CREATE TABLE {t} (id serial PRIMARY KEY, label text, amount numeric(10,2), "
                    "at timestamptz, day date, flag boolean, raw bytea)")
        cur.execute(f"INSERT INTO {t} (label, amount, at, day, flag, raw) VALUES (%s, %s, %s, %s, %s, %s) "
                    "RETURNING id",
                    ("it's", decimal.Decimal("12.5"),
                     dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                     dt.date(2024, 5, 6), True, psycopg2.Binary(b"\x00\x01\xff")))
        assert cur.fetchone() == (1,)
        assert cur.statusmessage == "INSERT 0 1"
        cur.execute(f"SELECT label, amount, at, day, flag, raw FROM {t} WHERE label = %s", ("it's",))
        label, amount, at, day, flag, raw = cur.fetchone()
        assert label == "it's"
        assert amount == decimal.Decimal("12.50") and str(amount) == "12.50"
        assert at == dt.datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=dt.timezone.utc)
        assert day == dt.date(2024, 5, 6)
        assert flag is True
        assert bytes(raw) == b"\x00\x01\xff"
        cur.execute(f"SELECT count(*) FROM {t}")
        assert [d.name for d in cur.description] == ["count"]
    finally:
        c.close()
    if bind != "mem":
        assert direct_rows(px, bind, f"SELECT label FROM `{t}`") == [("it's",)]


@pytest.mark.parametrize("bind", list(BINDS))
def test_asyncpg_binary_prepared_described_params(px, bind):
    t = tname(bind, "apg")

    async def go():
        c = await px.connect_asyncpg()
        try:
            await c.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, name text, score double precision, "
                            "ok boolean, amount numeric(8,3))")
            ins = await c.prepare(f"INSERT INTO {t} (id, name, score, ok, amount) VALUES ($1, $2, $3, $4, $5)")
            assert [p.name for p in ins.get_parameters()] == ["int8", "text", "float8", "bool", "numeric"]
            await ins.executemany([(1, "a", 1.5, True, decimal.Decimal("1.5")),
                                   (2, "b", None, False, None),
                                   (3, "ç", -2.25, None, decimal.Decimal("-7.125"))])
            sel = await c.prepare(f"SELECT id, name, score, ok, amount FROM {t} WHERE id = $1")
            assert [p.name for p in sel.get_parameters()] == ["int8"]
            assert [a.name for a in sel.get_attributes()] == ["id", "name", "score", "ok", "amount"]
            assert [a.type.name for a in sel.get_attributes()] == ["int8", "text", "float8", "bool", "numeric"]
            r = await sel.fetchrow(1)
            assert tuple(r) == (1, "a", 1.5, True, decimal.Decimal("1.500"))
            r = await sel.fetchrow(3)
            assert tuple(r) == (3, "ç", -2.25, None, decimal.Decimal("-7.125"))
            assert await sel.fetchrow(99) is None
            rows = await c.fetch(f"SELECT id FROM {t} WHERE id > $1 AND name <> $2 ORDER BY id", 1, "zz")
            assert [r["id"] for r in rows] == [2, 3]
            assert await c.fetchval(f"SELECT count(*) FROM {t} WHERE ok = $1", True) == 1
            assert await c.fetchval(f"SELECT max(id) FROM {t}") == 3
            status = await c.execute(f"UPDATE {t} SET name = $1 WHERE id = $2", "B", 2)
            assert status == "UPDATE 1"
        finally:
            await c.close()

    asyncio.run(go())
    assert sorted(direct_rows(px, bind, f"SELECT id, name FROM `{t}`")) == [(1, "a"), (2, "B"), (3, "ç")]


@pytest.mark.parametrize("bind", list(BINDS))
def test_psql(px, bind):
    require_tool("psql")
    t = tname(bind, "psql")
    p = px.psql("-c", f"CREATE TABLE {t} (id int PRIMARY KEY, v text, n numeric(6,2))",
                "-c", f"INSERT INTO {t} VALUES (1, 'x', 1.5), (2, NULL, 3)",
                "-c", f"SELECT count(*), sum(id) AS total FROM {t}",
                "-c", f"SELECT id, v, n FROM {t} ORDER BY id")
    out = p.stdout
    assert "CREATE TABLE" in out and "INSERT 0 2" in out
    assert " count | total" in out
    assert "1.50" in out and "3.00" in out
    assert "(2 rows)" in out
    p = px.psql("-c", f"SELECT * FROM {t} WHERE id = 3", check=False)
    assert p.returncode == 0 and "(0 rows)" in p.stdout
    p = px.psql("-c", f"INSERT INTO {t} VALUES (1, 'dup', 0)", check=False)
    assert p.returncode != 0 and "duplicate key" in p.stderr
    if bind != "mem":
        assert direct_rows(px, bind, f"SELECT id FROM `{t}` ORDER BY id") == [(1,), (2,)]


# --------------------------------------------------------------------------------------------------------------
# Result shape: column names, numeric scale
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bind", list(BINDS))
def test_column_names_like_postgresql(px, bind):
    t = tname(bind, "names")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, x int, b text)")
        c.execute(f"INSERT INTO {t} VALUES (1, 5, 'z')")
        cur = c.execute(f"SELECT count(*), max(x), min(x), sum(x), x::text, 1, 'a' || b, id, "
                        f"coalesce(b, 'n'), lower(b), x AS renamed, CASE WHEN x > 1 THEN 'big' END "
                        f"FROM {t} GROUP BY id, x, b")
        assert [d.name for d in cur.description] == [
            "count", "max", "min", "sum", "x", "?column?", "?column?", "id", "coalesce", "lower", "renamed",
            "case"]
        assert cur.fetchone()[:8] == (1, 5, 5, 5, "5", 1, "az", 1)
        cur = c.execute(f"SELECT count(*) FROM {t} WHERE id = %s", (42,))
        assert [d.name for d in cur.description] == ["count"] and cur.fetchone() == (0,)


@pytest.mark.parametrize("bind", list(BINDS))
def test_numeric_keeps_declared_scale(px, bind):
    t = tname(bind, "num")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, price numeric(10,2), rate numeric(6,4))")
        c.execute(f"INSERT INTO {t} VALUES (1, 12.5, 0.5), (2, 3, 1), (3, 7.125, 0.12345), (4, NULL, NULL)")
        # text results straight from the wire
        c.adapters.register_loader("numeric", psycopg.types.string.TextLoader)
        rows = c.execute(f"SELECT price, rate FROM {t} ORDER BY id").fetchall()
        assert rows == [("12.50", "0.5000"), ("3.00", "1.0000"), ("7.13", "0.1235"), (None, None)]

    async def go():
        a = await px.connect_asyncpg()
        try:
            return await a.fetch(f"SELECT price FROM {t} ORDER BY id")
        finally:
            await a.close()

    got = [r[0] for r in asyncio.run(go())]
    assert [str(v) if v is not None else None for v in got] == ["12.50", "3.00", "7.13", None]


@pytest.mark.parametrize("proto", ["extended", "simple"])
@pytest.mark.parametrize("bind", list(BINDS))
def test_expression_result_types_like_postgresql(px, bind, proto):
    """Expressions are typed as PostgreSQL types them, before any row is seen (Describe)."""
    t = tname(bind, "rtype")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, name varchar(20), qty int, price numeric(10,2))")
        c.execute(f"INSERT INTO {t} VALUES (1, 'A', 2, 12.5), (2, 'b', 3, 3), (3, 'c', NULL, NULL)")
    sql = (f"SELECT count(id) AS count_1, count(*), max(price) AS mp, min(price), sum(qty) AS sq, "
           f"sum(price) AS sp, max(qty) AS mq, min(name) AS mn, lower(max(name)), "
           f"count(*) > 1 AS gt, max(qty) + 1 AS q1, max(price) * 2 AS p2 FROM {t} WHERE id > %s")
    if proto == "extended":
        with px.connect() as c:
            row = c.execute(sql, (0,)).fetchone()
    else:
        c2 = px.connect2()
        try:
            cur = c2.cursor()
            cur.execute(sql, (0,))
            row = cur.fetchone()
        finally:
            c2.close()
    D = decimal.Decimal
    # (avg() of integers is refused: its scale differs on the engines, tests/corpus/differential.sql)
    assert row == (3, 3, D("12.50"), D("3.00"), 5, D("15.50"), 3, "A", "c", True, 4, D("25.00"))
    assert str(row[2]) == "12.50" and str(row[3]) == "3.00"
    if bind != "logs":  # MySQL reports its own types for expressions (sum(int) is DECIMAL there)
        assert [type(v) for v in row] == [int, int, D, D, int, D, int, str, str, bool, int, D]


# --------------------------------------------------------------------------------------------------------------
# Type round trips (text: psycopg 3; binary: asyncpg)
# --------------------------------------------------------------------------------------------------------------
TYPES_DDL = ("id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, num numeric(12,3), f4 real, "
             "f8 double precision, b boolean, t text, vc varchar(300), ba bytea, d date, tm time, "
             "ts timestamp, tz timestamptz, j json, jb jsonb, u uuid")
COLS = ["i2", "i4", "i8", "num", "f4", "f8", "b", "t", "vc", "ba", "d", "tm", "ts", "tz", "j", "jb", "u"]
BIG_TEXT = "é€😀" * 5000 + "x" * 100_000
BIG_BYTES = bytes(range(256)) * 4000
UTC = dt.timezone.utc

SAMPLES = [
    # ordinary values
    (-32768, -2147483648, -9223372036854775808, decimal.Decimal("-123456789.125"), 1.5, -2.0000000000000004,
     True, "héllo wörld", "varchar ✓", b"\x00\x01\x02\xfe\xff", dt.date(1999, 12, 31), dt.time(23, 59, 59, 999999),
     dt.datetime(2024, 2, 29, 12, 0, 0, 1), dt.datetime(2024, 2, 29, 12, 0, 0, 500000, tzinfo=UTC),
     {"a": [1, 2, {"b": None}]}, {"k": "v", "n": 1.5}, uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    # extremes
    (32767, 2147483647, 9223372036854775807, decimal.Decimal("999999999.999"), 3.4028234663852886e38,
     1e308, False, "", "", b"", dt.date(1, 1, 2), dt.time(0, 0), dt.datetime(1970, 1, 1),
     dt.datetime(2000, 1, 1, tzinfo=UTC), [], {}, uuid.UUID(int=0)),
    # large values
    (0, 0, 0, decimal.Decimal("0.000"), 0.0, 0.0, True, BIG_TEXT, "v" * 300, BIG_BYTES,
     dt.date(9999, 12, 30), dt.time(12, 30, 15, 250000), dt.datetime(9999, 12, 30, 23, 59, 59, 999999),
     dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), {"big": "x" * 10000}, [1, "two", None],
     uuid.UUID(int=2**128 - 1)),
    # NULLs
    tuple([None] * 17),
]


def norm(v):
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return v


def expected(v):
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return v


@pytest.mark.parametrize("bind", list(BINDS))
def test_type_round_trips_text_psycopg3(px, bind):
    t = tname(bind, "types_txt")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} ({TYPES_DDL})")
        for i, row in enumerate(SAMPLES):
            params = [psycopg.types.json.Json(v) if k in ("j", "jb") and v is not None else v
                      for k, v in zip(COLS, row)]
            c.execute(f"INSERT INTO {t} (id, {', '.join(COLS)}) VALUES ({', '.join(['%s'] * 18)})",
                      [i, *params])
        cur = c.execute(f"SELECT {', '.join(COLS)} FROM {t} ORDER BY id")
        assert [d.type_code for d in cur.description] == [
            21, 23, 20, 1700, 700, 701, 16, 25, 1043, 17, 1082, 1083, 1114, 1184, 114, 3802, 2950]
        got = cur.fetchall()
    for row_in, row_out in zip(SAMPLES, got):
        for k, a, b in zip(COLS, row_in, row_out):
            assert norm(b) == expected(a), (k, a, b)


@pytest.mark.parametrize("bind", list(BINDS))
def test_type_round_trips_binary_asyncpg(px, bind):
    t = tname(bind, "types_bin")

    async def go():
        c = await px.connect_asyncpg()
        try:
            await c.execute(f"CREATE TABLE {t} ({TYPES_DDL})")
            for typ in ("json", "jsonb"):
                await c.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            ins = await c.prepare(f"INSERT INTO {t} (id, {', '.join(COLS)}) "
                                  f"VALUES ({', '.join(f'${i}' for i in range(1, 19))})")
            assert [p.name for p in ins.get_parameters()] == [
                "int4", "int2", "int4", "int8", "numeric", "float4", "float8", "bool", "text", "varchar", "bytea",
                "date", "time", "timestamp", "timestamptz", "json", "jsonb", "uuid"]
            for i, row in enumerate(SAMPLES):
                await ins.fetch(i, *row)
            return await c.fetch(f"SELECT {', '.join(COLS)} FROM {t} ORDER BY id")
        finally:
            await c.close()

    got = asyncio.run(go())
    for row_in, row_out in zip(SAMPLES, got):
        for k, a, b in zip(COLS, row_in, tuple(row_out)):
            assert norm(b) == expected(a), (k, a, b)


def test_mysql_quirks_not_leaked(px):
    """TINYINT(1) booleans, unsigned BIGINT beyond int8, JSON as text: tables made outside bindproxy."""
    t = tname("logs", "quirks")
    with my_admin(px.mariadb) as m, m.cursor() as cur:
        cur.execute(f"CREATE TABLE `{t}` (id INT PRIMARY KEY, flag TINYINT(1), big BIGINT UNSIGNED, doc JSON)")
        cur.execute(f"INSERT INTO `{t}` VALUES (1, 1, 18446744073709551615, '{{\"a\": 1}}')")
    with px.connect() as c:
        cur = c.execute(f"SELECT flag, big, doc FROM {t}")
        assert [d.type_code for d in cur.description] == [16, 1700, 114]
        assert cur.fetchone() == (True, decimal.Decimal("18446744073709551615"), {"a": 1})


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bind", TRANSLATED + ["mem"])
def test_errors_have_postgresql_sqlstates(px, bind):
    parent, child = tname(bind, "parent"), tname(bind, "child")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {parent} (id int PRIMARY KEY, name text NOT NULL)")
        c.execute(f"CREATE TABLE {child} (id int PRIMARY KEY, parent_id int REFERENCES {parent} (id))")
        c.execute(f"INSERT INTO {parent} VALUES (1, 'p')")
        cases = [
            (f"INSERT INTO {parent} VALUES (1, 'again')", pgerr.UniqueViolation, "23505"),
            (f"INSERT INTO {child} VALUES (1, 999)", pgerr.ForeignKeyViolation, "23503"),
            (f"INSERT INTO {parent} (id, name) VALUES (2, NULL)", pgerr.NotNullViolation, "23502"),
            (f"SELECT * FROM {BINDS[bind]}does_not_exist", pgerr.UndefinedTable, "42P01"),
            (f"SELECT * FROM {parent} WHERE", pgerr.SyntaxError, "42601"),
        ]
        for sql, exc, code in cases:
            with pytest.raises(exc) as ei:
                c.execute(sql)
            assert ei.value.sqlstate == code, (sql, ei.value)
            if code not in ("42601",):
                assert ei.value.diag.message_detail, (sql, "original engine message in the detail")
        # the session is still usable and nothing was written by the failed statements
        assert c.execute(f"SELECT id, name FROM {parent}").fetchall() == [(1, "p")]
        assert c.execute(f"SELECT count(*) FROM {child}").fetchone() == (0,)


@pytest.mark.parametrize("bind", list(BINDS))
def test_unsupported_construct_rejected_before_anything_ran(px, bind):
    t = tname(bind, "unsup")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
        c.execute(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        for sql in [
            f"UPDATE {t} SET v = 'z' WHERE v ~ '^a'",                     # regex operator
            f"DELETE FROM {t} WHERE id = ANY(ARRAY[1, 2])",               # arrays
            f"SELECT DISTINCT ON (v) id FROM {t}",
            f"UPDATE {t} SET v = 'z' WHERE id IN (SELECT unnest(ARRAY[1,2]))",
        ]:
            with pytest.raises(pgerr.FeatureNotSupported) as ei:
                c.execute(sql)
            assert bind in str(ei.value), (sql, str(ei.value))
        # a multi-statement simple query with an unsupported statement runs none of it
    c2 = px.connect2()
    try:
        c2.autocommit = True
        import psycopg2
        with pytest.raises(psycopg2.errors.FeatureNotSupported):
            c2.cursor().execute(f"DELETE FROM {t} WHERE id = 1; UPDATE {t} SET v = 'z' WHERE v ~ 'b'")
    finally:
        c2.close()
    with px.connect() as c:
        assert c.execute(f"SELECT id, v FROM {t} ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    if bind != "mem":
        assert direct_rows(px, bind, f"SELECT id, v FROM `{t}` ORDER BY id") == [(1, "a"), (2, "b")]


# --------------------------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bind", list(BINDS))
def test_transactions_and_savepoints(px, bind):
    t = tname(bind, "tx")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (1, 'rolled back')")
        c.execute("ROLLBACK")
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (2, 'kept')")
        c.execute("SAVEPOINT sp1")
        c.execute(f"INSERT INTO {t} VALUES (3, 'undone')")
        c.execute("ROLLBACK TO SAVEPOINT sp1")
        c.execute("SAVEPOINT sp2")
        c.execute(f"INSERT INTO {t} VALUES (4, 'released')")
        c.execute("RELEASE SAVEPOINT sp2")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        c.execute("COMMIT")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert c.execute(f"SELECT id FROM {t} ORDER BY id").fetchall() == [(2,), (4,)]
    if bind != "mem":
        assert direct_rows(px, bind, f"SELECT id FROM `{t}` ORDER BY id") == [(2,), (4,)]


@pytest.mark.parametrize("bind", list(BINDS))
def test_error_in_transaction_is_25p02_until_rollback(px, bind):
    t = tname(bind, "abort")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY)")
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (1)")
        with pytest.raises(pgerr.UniqueViolation):
            c.execute(f"INSERT INTO {t} VALUES (1)")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        for sql in (f"SELECT * FROM {t}", f"INSERT INTO {t} VALUES (2)", "SELECT 1"):
            with pytest.raises(pgerr.InFailedSqlTransaction):
                c.execute(sql)
        c.execute("ROLLBACK")
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,)
        # COMMIT of a failed block reports ROLLBACK and keeps nothing
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (5)")
        with pytest.raises(pgerr.UniqueViolation):
            c.execute(f"INSERT INTO {t} VALUES (5)")
        cur = c.execute("COMMIT")
        assert cur.statusmessage == "ROLLBACK"
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,)
        # savepoint recovery
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (7)")
        c.execute("SAVEPOINT s")
        with pytest.raises(pgerr.UniqueViolation):
            c.execute(f"INSERT INTO {t} VALUES (7)")
        c.execute("ROLLBACK TO SAVEPOINT s")
        c.execute(f"INSERT INTO {t} VALUES (8)")
        c.execute("COMMIT")
        assert c.execute(f"SELECT id FROM {t} ORDER BY id").fetchall() == [(7,), (8,)]


@pytest.mark.parametrize("bind", list(BINDS))
def test_psycopg_non_autocommit_transactions(px, bind):
    """psycopg's default mode: BEGIN before the first statement, commit()/rollback()."""
    t = tname(bind, "nac")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY)")
    with px.connect(autocommit=False) as c:
        c.execute(f"INSERT INTO {t} VALUES (1)")
        c.rollback()
        c.execute(f"INSERT INTO {t} VALUES (2)")
        c.commit()
        with c.transaction():
            c.execute(f"INSERT INTO {t} VALUES (3)")
            with pytest.raises(pgerr.UniqueViolation):
                with c.transaction():  # a savepoint
                    c.execute(f"INSERT INTO {t} VALUES (3)")
            c.execute(f"INSERT INTO {t} VALUES (4)")
        c.commit()
    with px.connect() as c:
        assert c.execute(f"SELECT id FROM {t} ORDER BY id").fetchall() == [(2,), (3,), (4,)]


@pytest.mark.parametrize("bind", list(BINDS))
def test_session_statements_inside_a_translated_transaction(px, bind):
    """SET/SHOW/version() with no table, while the transaction is on a MySQL/SQLite bind: answered without
    sending PostgreSQL syntax to the engine (which would be a syntax error there)."""
    t = tname(bind, "sess")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY)")
        c.execute("BEGIN")
        c.execute(f"INSERT INTO {t} VALUES (1)")
        c.execute("SET application_name = 'mixed-test'")
        c.execute("SET LOCAL statement_timeout = 0")
        c.execute("SET TIME ZONE 'UTC'")
        assert c.execute("SHOW application_name").fetchone() == ("mixed-test",)
        assert c.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL")
        assert c.execute("SELECT current_setting('application_name')").fetchone() == ("mixed-test",)
        c.execute(f"INSERT INTO {t} VALUES (2)")
        c.execute("COMMIT")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (2,)


# --------------------------------------------------------------------------------------------------------------
# Concurrency on one SQLite file
# --------------------------------------------------------------------------------------------------------------
def test_concurrent_writers_on_one_sqlite_file_lose_nothing(px):
    t = tname("files", "conc")
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} (id serial PRIMARY KEY, writer int NOT NULL, n int NOT NULL)")
        c.execute(f"CREATE TABLE {t}_ctr (id int PRIMARY KEY, total int NOT NULL)")
        c.execute(f"INSERT INTO {t}_ctr VALUES (1, 0)")
    writers, per = 8, 25
    errors: list[BaseException] = []

    def work(w: int):
        try:
            with px.connect(autocommit=False) as c:
                for i in range(per):
                    c.execute(f"INSERT INTO {t} (writer, n) VALUES (%s, %s)", (w, i))
                    c.execute(f"UPDATE {t}_ctr SET total = total + 1 WHERE id = 1")
                    c.commit()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=110)
    assert not errors, errors
    rows = lite_rows(px.sqlite_file, f'SELECT writer, count(*), count(DISTINCT n) FROM "{t}" GROUP BY writer')
    assert sorted(rows) == [(w, per, per) for w in range(writers)]
    assert lite_rows(px.sqlite_file, f'SELECT total FROM "{t}_ctr"') == [(writers * per,)]
    assert lite_rows(px.sqlite_file, "PRAGMA integrity_check") == [("ok",)]


# --------------------------------------------------------------------------------------------------------------
# SQLAlchemy 2.x, postgresql dialect, pointed only at bindproxy
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
@pytest.mark.parametrize("bind", TRANSLATED)
def test_sqlalchemy_orm(px, backends, bind, driver):
    pre = f"{BINDS[bind]}sa{next(_n)}_{driver[:3]}_"

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = pre + "author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100), unique=True)
        active: Mapped[bool] = mapped_column(Boolean, default=True)
        books: Mapped[list["Book"]] = relationship(back_populates="author", cascade="all, delete-orphan")

    class Book(Base):
        __tablename__ = pre + "book"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(200))
        price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
        published: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
        author_id: Mapped[int] = mapped_column(ForeignKey(Author.id))
        author: Mapped[Author] = relationship(back_populates="books")

    url = px.url.replace("postgresql://", f"postgresql+{driver}://")
    engine = create_engine(url)  # SQLAlchemy's defaults, incl. its batched "insertmanyvalues" INSERT
    try:
        # SQLAlchemy runs create_all in one transaction. With checkfirst (the default) it first asks
        # pg_catalog whether each table exists; a catalog query runs on the PostgreSQL default bind,
        # which pins the transaction there, and the CREATE TABLE for the MySQL/SQLite bind that follows
        # is then refused (a transaction cannot span binds). So in transactional mode: checkfirst=False.
        Base.metadata.create_all(engine, checkfirst=False)
        assert table_exists_directly(px, bind, Author.__tablename__)
        assert table_exists_directly(px, bind, Book.__tablename__)
        assert not backends.table_exists("main", Book.__tablename__)
        # The inspector sees the one catalog over every bind: these tables too.
        assert inspect(engine).has_table(Author.__tablename__)

        with Session(engine) as s:
            a1 = Author(name="Ann")
            a2 = Author(name="Bob", active=False)
            s.add_all([a1, a2])
            s.flush()  # INSERT … RETURNING id
            assert a1.id and a2.id and a1.id != a2.id
            s.add_all([Book(title="One", price=decimal.Decimal("12.5"), author=a1,
                            published=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
                       Book(title="Two", price=decimal.Decimal("7"), author=a1),
                       Book(title="Three", price=None, author=a2)])
            s.commit()
            ids = (a1.id, a2.id)

        with Session(engine) as s:
            rows = s.execute(select(Book.title, Author.name).join(Author).where(Author.active.is_(True))
                             .order_by(Book.title)).all()
            assert rows == [("One", "Ann"), ("Two", "Ann")]
            one = s.scalars(select(Book).where(Book.title == "One")).one()
            assert one.price == decimal.Decimal("12.50") and one.author.name == "Ann"
            assert one.published == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
            cnt = s.execute(select(Author.name, func.count(Book.id)).join(Book).group_by(Author.name)
                            .order_by(Author.name)).all()
            assert cnt == [("Ann", 2), ("Bob", 1)]
            n = s.scalar(select(func.count(Book.id)).where(Book.author_id == ids[0]))
            assert n == 2 and type(n) is int
            s.execute(update(Book).where(Book.title == "Two").values(price=decimal.Decimal("8.25")))
            bob = s.get(Author, ids[1])
            bob.active = True
            s.commit()

        with Session(engine) as s:
            assert s.scalar(select(Book.price).where(Book.title == "Two")) == decimal.Decimal("8.25")
            assert s.scalar(select(func.count()).select_from(Author).where(Author.active.is_(True))) == 2
            s.delete(s.get(Author, ids[1]))  # cascades to Bob's book via the ORM
            s.execute(delete(Book).where(Book.title == "One"))
            s.commit()
            assert s.scalars(select(Book.title)).all() == ["Two"]
            # a failing flush rolls back cleanly
            s.add(Author(name="Ann"))
            with pytest.raises(IntegrityError) as ei:
                s.flush()
            orig = ei.value.orig
            assert (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) == "23505"
            s.rollback()
            assert s.scalar(select(func.count()).select_from(Author)) == 1

        # where the rows are
        if bind == "logs":
            assert my_rows(px.mariadb, f"SELECT title, price FROM `{Book.__tablename__}`") == [
                ("Two", decimal.Decimal("8.25"))]
        else:
            assert lite_rows(px.sqlite_file, f'SELECT title, price FROM "{Book.__tablename__}"') == [
                ("Two", 8.25)]

        # drop_all with checkfirst=False (checkfirst would find nothing in pg_catalog and drop nothing)
        Base.metadata.drop_all(engine, checkfirst=False)
        assert not table_exists_directly(px, bind, Author.__tablename__)
        assert not table_exists_directly(px, bind, Book.__tablename__)
    finally:
        engine.dispose()

    # In autocommit mode with the default checkfirst=True: has_table asks the one catalog over every bind,
    # so a second create_all sees the tables (no 42P07) and drop_all finds and drops them.
    ac = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        Base.metadata.create_all(ac)
        assert table_exists_directly(px, bind, Book.__tablename__)
        Base.metadata.create_all(ac)  # sees them: creates nothing, fails nothing
        assert table_exists_directly(px, bind, Book.__tablename__)
        Base.metadata.drop_all(ac)  # checkfirst: sees them, drops them
        assert not table_exists_directly(px, bind, Book.__tablename__)
        assert not table_exists_directly(px, bind, Author.__tablename__)
    finally:
        ac.dispose()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
@pytest.mark.parametrize("bind", TRANSLATED)
def test_sqlalchemy_flush_many_objects_insertmanyvalues(px, bind, driver):
    """One ORM flush of several objects: SQLAlchemy's batched INSERT … SELECT … FROM (VALUES …) AS
    imp_sen(…) ORDER BY sen_counter RETURNING …, with the generated ids matched to the right objects."""
    pre = f"{BINDS[bind]}sam{next(_n)}_{driver[:3]}_"

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = pre + "item"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        flag: Mapped[bool] = mapped_column(Boolean, default=False)
        price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
        at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    url = px.url.replace("postgresql://", f"postgresql+{driver}://")
    engine = create_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: statements.append(stmt))
    try:
        Base.metadata.create_all(engine, checkfirst=False)
        when = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
        specs = [(f"n{i}", i % 2 == 0, decimal.Decimal(i) / 4 if i % 3 else None, when if i == 3 else None)
                 for i in range(7)]
        with Session(engine) as s:
            objs = [Item(name=n, flag=f, price=p, at=a) for n, f, p, a in specs]
            s.add_all(objs)
            s.flush()
            ids = [o.id for o in objs]
            assert all(isinstance(i, int) for i in ids)
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            s.commit()
        assert any("imp_sen" in st and "sen_counter" in st for st in statements), statements
        # each object got the id of its own row
        with Session(engine) as s:
            got = {o.id: (o.name, o.flag, o.price, o.at) for o in s.scalars(select(Item))}
        assert got == {i: (n, f, p if p is None else p.quantize(decimal.Decimal("0.01")), a)
                       for i, (n, f, p, a) in zip(ids, specs)}
        direct = direct_rows(px, bind, f"SELECT id, name FROM `{Item.__tablename__}` ORDER BY id")
        assert direct == [(i, n) for i, (n, *_rest) in zip(ids, specs)]
        Base.metadata.drop_all(engine, checkfirst=False)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------------------------
# Catalog queries on a translated bind
# --------------------------------------------------------------------------------------------------------------
def test_catalog_query_on_translated_bind_is_a_clear_0a000(px):
    with px.connect() as c:
        with pytest.raises(pgerr.FeatureNotSupported) as ei:
            c.execute("SELECT * FROM pg_catalog.pg_class JOIN log_x ON true")
        # with the shadow catalog a statement reading both is refused, naming the table's bind
        assert "mixes catalog relations" in str(ei.value) and "log_x → logs" in str(ei.value)
    # psql's \\d on a table of a translated bind: asked on the default bind, no crash, a clear answer
    p = px.psql("-c", "\\d log_not_there", check=False)
    assert "not find" in (p.stdout + p.stderr)
