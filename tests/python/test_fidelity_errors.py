"""Issue 9: on a MySQL/MariaDB or SQLite bind the client gets PostgreSQL's answer or a clear error, never
a silent difference.

Each case runs the same DDL and statement on a scratch PostgreSQL database and through bindproxy on a
MariaDB bind and on a SQLite bind. An error case must fail with PostgreSQL's SQLSTATE (and, where marked,
its message); a value case must return PostgreSQL's rows. Covered: division by zero (22012), integer
range (22003), NUL bytes in text parameters (22021), impossible dates and timestamps (22008).
"""

from __future__ import annotations

import datetime
import itertools

import psycopg
import pytest
from psycopg.adapt import Dumper
from psycopg.pq import Format

from conftest import engines_config, pg_direct, scratch_pg_database

_n = itertools.count(1)

BINDS = {"my": "m_", "lite": "s_"}


@pytest.fixture(scope="module")
def ep(backends, mariadb, start_proxy):
    return start_proxy(engines_config(backends, mariadb, "fidelity_errors"), "fidelity-errors")


@pytest.fixture(scope="module")
def pgscratch(backends):
    yield from scratch_pg_database("fidelity")


class Raw(str):
    """A string sent as it is, in text format, with the type left to the server (OID 0): psycopg would
    refuse a NUL byte in a str itself."""


class RawDumper(Dumper):
    oid = 0

    def dump(self, obj):
        return obj.encode()


class RawText(str):
    """A string sent as it is, in binary format, typed text: libpq would cut a text-format value at
    its first NUL, so that is how a NUL reaches the server."""


class RawTextDumper(Dumper):
    oid = 25
    format = Format.BINARY

    def dump(self, obj):
        return obj.encode()


def _register(conn):
    conn.adapters.register_dumper(Raw, RawDumper)
    conn.adapters.register_dumper(RawText, RawTextDumper)
    return conn


def connect(ep):
    ep.ensure_running()
    return _register(psycopg.connect(host="127.0.0.1", port=ep.port, user="app", dbname="app",
                                     autocommit=True, connect_timeout=10))


def direct(db):
    return _register(pg_direct(db))


T = ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, a int, s smallint, b bigint, n numeric(10,2), "
     "f float8, v text, d date, ts timestamp); "
     "INSERT INTO {p}t{k} (id, a, s, b, n, f) VALUES (1, 7, 3, 10, 2.50, 1.5)")

# (statement, params, compare the primary message too)
ERRORS = [
    # 1. division by zero
    ("SELECT 1/0 FROM {p}t{k}", None, True),
    ("SELECT a / 0 FROM {p}t{k}", None, True),
    ("SELECT a % 0 FROM {p}t{k}", None, True),
    ("SELECT n / 0 FROM {p}t{k}", None, True),
    ("SELECT n % 0 FROM {p}t{k}", None, True),
    ("SELECT 1.5 / 0.0 FROM {p}t{k}", None, True),
    ("SELECT f / 0 FROM {p}t{k}", None, True),
    ("SELECT a / (a - 7) FROM {p}t{k}", None, True),
    ("SELECT a / (b - 10) FROM {p}t{k}", None, True),
    ("SELECT id FROM {p}t{k} WHERE a / 0 = 1", None, True),
    ("SELECT id FROM {p}t{k} WHERE a % (s - 3) = 1", None, True),
    ("SELECT a / %s FROM {p}t{k}", (0,), True),
    ("UPDATE {p}t{k} SET a = a / 0", None, True),
    ("UPDATE {p}t{k} SET a = a % (a - 7)", None, True),
    ("UPDATE {p}t{k} SET a = 1 WHERE a / 0 = 1", None, True),
    ("DELETE FROM {p}t{k} WHERE n / 0 > 1", None, True),
    ("DELETE FROM {p}t{k} WHERE (a / 0) IS NULL", None, True),  # MariaDB alone would delete the row
    ("DELETE FROM {p}t{k} WHERE a % %s IS NULL", (0,), True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, 1/0)", None, True),
    # 2. integer range
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, 99999999999999999999)", None, False),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, 2147483648)", None, True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, -2147483649)", None, True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, '99999999999999999999')", None, False),
    ("INSERT INTO {p}t{k} (id, s) VALUES (2, 32768)", None, True),
    ("INSERT INTO {p}t{k} (id, s) VALUES (2, -32769)", None, True),
    ("INSERT INTO {p}t{k} (id, b) VALUES (2, 9223372036854775808)", None, False),
    ("INSERT INTO {p}t{k} (id, b) VALUES (2, 99999999999999999999)", None, False),
    ("UPDATE {p}t{k} SET a = a * 1000000000", None, True),
    ("UPDATE {p}t{k} SET s = s * 100000", None, True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, %s)", (Raw("99999999999999999999"),), True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, %s)", (Raw("2147483648"),), True),
    ("INSERT INTO {p}t{k} (id, s) VALUES (2, %s)", (Raw("32768"),), True),
    ("INSERT INTO {p}t{k} (id, b) VALUES (2, %s)", (Raw("9223372036854775808"),), True),
    ("INSERT INTO {p}t{k} (id, a) VALUES (2, %s)", (2**31,), False),
    ("UPDATE {p}t{k} SET s = %s", (Raw("-32769"),), True),
    # 3. NUL in a text parameter
    ("INSERT INTO {p}t{k} (id, v) VALUES (2, %s)", (RawText("a\x00b"),), True),
    ("SELECT id FROM {p}t{k} WHERE v = %s", (RawText("\x00"),), True),
    ("UPDATE {p}t{k} SET v = %s", (RawText("x\x00"),), True),
    # 4. impossible dates and timestamps
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, '2024-02-30')", None, False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, '2023-02-29')", None, False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, '2024-04-31')", None, False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, '0000-00-00')", None, False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, '2024-13-01')", None, False),
    ("INSERT INTO {p}t{k} (id, ts) VALUES (2, '2024-02-30 10:00:00')", None, False),
    ("INSERT INTO {p}t{k} (id, ts) VALUES (2, '2024-01-01 10:61:00')", None, False),
    ("UPDATE {p}t{k} SET d = '2024-02-30'", None, False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, %s)", (Raw("2024-02-30"),), False),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, %s)", (Raw("0000-00-00"),), False),
    ("INSERT INTO {p}t{k} (id, ts) VALUES (2, %s)", (Raw("2023-02-29 00:00:00"),), False),
    ("UPDATE {p}t{k} SET d = %s", (Raw("2024-06-31"),), False),
]


# Statements a bind refuses (0A000, before anything runs) rather than answer: numeric division and
# numbers SQLite cannot hold (tests/corpus/differential.sql records why).
REFUSED = {
    "SELECT n / 0 FROM {p}t{k}": {"my", "lite"},
    "SELECT n % 0 FROM {p}t{k}": {"lite"},
    "SELECT 1.5 / 0.0 FROM {p}t{k}": {"my", "lite"},
    "DELETE FROM {p}t{k} WHERE n / 0 > 1": {"my", "lite"},
    "INSERT INTO {p}t{k} (id, a) VALUES (2, 99999999999999999999)": {"lite"},
    "INSERT INTO {p}t{k} (id, b) VALUES (2, 99999999999999999999)": {"lite"},
}


def _setup(stmts, names):
    return [s.strip().format(**names) for s in stmts.split(";") if s.strip()]


def _failure(conn, sql, params):
    with pytest.raises(psycopg.Error) as ei:
        conn.execute(sql, params)
    return ei.value


@pytest.mark.parametrize("bind", list(BINDS))
@pytest.mark.parametrize("stmt,params,same_message", ERRORS)
def test_errors_like_postgresql(ep, pgscratch, bind, stmt, params, same_message):
    names = {"p": BINDS[bind], "k": f"fe{next(_n)}"}
    sql = stmt.format(**names)
    with direct(pgscratch) as pg:
        for s in _setup(T, names):
            pg.execute(s)
        want = _failure(pg, sql, params)
        after_pg = pg.execute("SELECT * FROM {p}t{k} ORDER BY id".format(**names)).fetchall()
    with connect(ep) as c:
        for s in _setup(T, names):
            c.execute(s)
        got = _failure(c, sql, params)
        after = c.execute("SELECT * FROM {p}t{k} ORDER BY id".format(**names)).fetchall()
        assert c.execute("SELECT 1").fetchone() == (1,)
    if bind in REFUSED.get(stmt, set()):
        assert got.sqlstate == "0A000", (sql, got.sqlstate, str(got))
        assert after == after_pg, sql
        return
    assert got.sqlstate == want.sqlstate, (sql, got.sqlstate, str(got), want.sqlstate, str(want))
    if same_message:
        assert got.diag.message_primary == want.diag.message_primary, sql
    assert after == after_pg, sql  # nothing was written


# Ordinary arithmetic, boundary values and valid dates keep PostgreSQL's answers.
VALUES = [
    ("SELECT a % 2, -a % 2, a % -2, f / 2 FROM {p}t{k}", None),
    ("SELECT id FROM {p}t{k} WHERE a / 7 = 1 AND a % 7 = 0", None),
    ("SELECT a / NULLIF(a - 7, 0), a % NULLIF(a - 7, 0) FROM {p}t{k}", None),
    ("SELECT id FROM {p}t{k} WHERE a / NULLIF(0, 0) IS NULL", None),
    ("INSERT INTO {p}t{k} (id, a, s, b) VALUES (2, 2147483647, 32767, 9223372036854775807) RETURNING a, s, b",
     None),
    ("INSERT INTO {p}t{k} (id, a, s, b) VALUES (2, -2147483648, -32768, -9223372036854775808) "
     "RETURNING a, s, b", None),
    ("INSERT INTO {p}t{k} (id, a, s) VALUES (2, %s, %s) RETURNING a, s", (Raw("2147483647"), Raw("-32768"))),
    ("INSERT INTO {p}t{k} (id, d, ts) VALUES (2, '2024-02-29', '2024-02-29 23:59:59') RETURNING d, ts", None),
    ("INSERT INTO {p}t{k} (id, d, ts) VALUES (2, %s, %s) RETURNING d, ts",
     (Raw("2024-02-29"), Raw("2024-12-31 00:00:01"))),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, %s) RETURNING d", (Raw("2024-2-9"),)),
    ("INSERT INTO {p}t{k} (id, d) VALUES (2, %s) RETURNING d", (datetime.date(2000, 2, 29),)),
    ("INSERT INTO {p}t{k} (id, v) VALUES (2, %s) RETURNING v", ("plain text",)),
]

# Integer division truncates on SQLite as in PostgreSQL (MySQL's `/` gives a decimal: a documented
# difference), with the divisor guarded.
VALUES_LITE = [
    ("SELECT a / 2, -a / 2, a / -2, 7 / 2, b / 3 FROM {p}t{k}", None),
    ("SELECT a / (a - 5) FROM {p}t{k}", None),
]


@pytest.mark.parametrize("bind", list(BINDS))
@pytest.mark.parametrize("stmt,params", VALUES)
def test_values_like_postgresql(ep, pgscratch, bind, stmt, params):
    names = {"p": BINDS[bind], "k": f"fe{next(_n)}"}
    sql = stmt.format(**names)
    with direct(pgscratch) as pg:
        for s in _setup(T, names):
            pg.execute(s)
        want = pg.execute(sql, params).fetchall()
    with connect(ep) as c:
        for s in _setup(T, names):
            c.execute(s)
        got = c.execute(sql, params).fetchall()
    assert got == want, sql
    assert [tuple(type(v) for v in r) for r in got] == [tuple(type(v) for v in r) for r in want], sql


@pytest.mark.parametrize("stmt,params", VALUES_LITE)
def test_sqlite_integer_division(ep, pgscratch, stmt, params):
    test_values_like_postgresql(ep, pgscratch, "lite", stmt, params)


@pytest.mark.parametrize("bind", list(BINDS))
def test_division_by_zero_aborts_the_transaction(ep, bind):
    t = f"{BINDS[bind]}fetx{next(_n)}"
    with connect(ep) as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, a int)")
        c.execute(f"INSERT INTO {t} VALUES (1, 0)")
        c.autocommit = False
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute(f"SELECT 10 / a FROM {t}")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute(f"DELETE FROM {t} WHERE (10 / a) IS NULL")
        c.rollback()
        c.autocommit = True
        assert c.execute(f"SELECT count(*) FROM {t} WHERE 10 % (a + 5) = 0").fetchone() == (1,)



@pytest.mark.parametrize("bind", list(BINDS))
def test_added_columns_are_checked_too(ep, pgscratch, bind):
    names = {"p": BINDS[bind], "k": f"fe{next(_n)}"}
    setup = ["CREATE TABLE {p}t{k} (id int PRIMARY KEY)".format(**names),
             "ALTER TABLE {p}t{k} ADD COLUMN a int".format(**names),
             "ALTER TABLE {p}t{k} ADD COLUMN d date".format(**names)]
    for sql in ["INSERT INTO {p}t{k} (id, a) VALUES (1, 2147483648)",
                "INSERT INTO {p}t{k} (id, d) VALUES (1, '2024-02-30')"]:
        sql = sql.format(**names)
        with direct(pgscratch) as pg:
            for s in setup:
                pg.execute(s)
            want = _failure(pg, sql, None)
            pg.execute("DROP TABLE {p}t{k}".format(**names))
        with connect(ep) as c:
            for s in setup:
                c.execute(s)
            got = _failure(c, sql, None)
            c.execute("DROP TABLE {p}t{k}".format(**names))
        assert got.sqlstate == want.sqlstate, (sql, str(got))


@pytest.mark.parametrize("bind", list(BINDS))
def test_timestamp_parameter_with_a_zone(ep, pgscratch, bind):
    names = {"p": BINDS[bind], "k": f"fe{next(_n)}"}
    sql = "INSERT INTO {p}t{k} (id, ts) VALUES (2, %s::timestamp) RETURNING ts".format(**names)
    params = (Raw("2024-01-01 00:30:00+02"),)
    with direct(pgscratch) as pg:
        for s in _setup(T, names):
            pg.execute(s)
        want = pg.execute(sql, params).fetchall()
    with connect(ep) as c:
        for s in _setup(T, names):
            c.execute(s)
        got = c.execute(sql, params).fetchall()
    assert got == want
