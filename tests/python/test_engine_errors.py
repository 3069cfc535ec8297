"""Issue 11 items 5 and 7 on MySQL/MariaDB and SQLite binds, through the real daemon.

Errors: each statement runs on a scratch PostgreSQL database and through bindproxy on a MariaDB bind and a
SQLite bind, after the same DDL; SQLSTATE and diag.message_primary must be PostgreSQL's, and the engine's own
message must be in diag.message_detail.

Identity: a client logged in as `app` to database `app` sees `app` from current_user & co., alone, combined
and inside ordinary statements.
"""

from __future__ import annotations

import itertools

import psycopg
import pytest

from conftest import PROXY_DBNAME, engines_config, pg_admin, pg_direct, scratch_pg_database

_n = itertools.count(1)

BINDS = {"my": "m_", "lite": "s_"}


@pytest.fixture(scope="module")
def ep(backends, mariadb, start_proxy):
    return start_proxy(engines_config(backends, mariadb, "engine_errors"), "engine-errors")


@pytest.fixture(scope="module")
def pgscratch(backends):
    yield from scratch_pg_database("errcmp")


def connect(ep, user="app", dbname="app"):
    ep.ensure_running()
    return psycopg.connect(host="127.0.0.1", port=ep.port, user=user, dbname=dbname, autocommit=True,
                           connect_timeout=10)


def failure(conn, sql):
    with pytest.raises(psycopg.Error) as ei:
        conn.execute(sql)
    return ei.value


# (setup DDL/DML, failing statement); {p} is the table prefix, {k} a fresh suffix.
CASES = [
    ("", "SELECT * FROM {p}nope{k}"),
    ("", "DROP TABLE {p}nope{k}"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text)", "SELECT nope FROM {p}t{k}"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text)", "SELECT {p}t{k}.nope FROM {p}t{k}"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY)", "CREATE TABLE {p}t{k} (id int)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY); INSERT INTO {p}t{k} VALUES (1)",
     "INSERT INTO {p}t{k} VALUES (1)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text UNIQUE); INSERT INTO {p}t{k} VALUES (1, 'a')",
     "INSERT INTO {p}t{k} VALUES (2, 'a')"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, a int, b int, UNIQUE (a, b)); INSERT INTO {p}t{k} VALUES (1, 1, 1)",
     "INSERT INTO {p}t{k} VALUES (2, 1, 1)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, a int); CREATE UNIQUE INDEX {p}uq{k} ON {p}t{k} (a); "
     "INSERT INTO {p}t{k} VALUES (1, 1)",
     "INSERT INTO {p}t{k} VALUES (2, 1)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text NOT NULL)", "INSERT INTO {p}t{k} VALUES (1, NULL)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text NOT NULL)", "INSERT INTO {p}t{k} (id) VALUES (1)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY, v text NOT NULL); INSERT INTO {p}t{k} VALUES (1, 'a')",
     "UPDATE {p}t{k} SET v = NULL"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY); CREATE TABLE {p}c{k} (id int, tid int REFERENCES {p}t{k} (id))",
     "INSERT INTO {p}c{k} VALUES (1, 7)"),
    ("CREATE TABLE {p}t{k} (id int PRIMARY KEY); CREATE TABLE {p}c{k} (id int, tid int REFERENCES {p}t{k} (id)); "
     "INSERT INTO {p}t{k} VALUES (1); INSERT INTO {p}c{k} VALUES (1, 1)",
     "DELETE FROM {p}t{k}"),
]


@pytest.mark.parametrize("bind", list(BINDS))
@pytest.mark.parametrize("setup,stmt", CASES)
def test_engine_errors_read_like_postgresql(ep, pgscratch, bind, setup, stmt):
    k = next(_n)
    names = {"p": BINDS[bind], "k": k}
    setup_sql = [s.strip().format(**names) for s in setup.split(";") if s.strip()]
    sql = stmt.format(**names)
    with pg_direct(pgscratch) as pg:
        for s in setup_sql:
            pg.execute(s)
        want = failure(pg, sql)
    with connect(ep) as c:
        for s in setup_sql:
            c.execute(s)
        got = failure(c, sql)
    assert (got.sqlstate, got.diag.message_primary) == (want.sqlstate, want.diag.message_primary), sql
    detail = got.diag.message_detail or ""
    assert ("MySQL error" if bind == "my" else "SQLite") in detail, (sql, detail)
    with connect(ep) as c:  # the session and the bind carry on
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_mariadb_division_by_zero_in_a_write(ep):
    t = f"m_div{next(_n)}"
    with connect(ep) as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v int)")
        e = failure(c, f"INSERT INTO {t} VALUES (1, 1/0)")
    assert (e.sqlstate, e.diag.message_primary) == ("22012", "division by zero")
    assert "Division by 0" in (e.diag.message_detail or "")


IDENTITY_SQL = [
    ("SELECT current_user", ("app",)),
    ("SELECT current_database()", ("app",)),
    ("SELECT current_database(), current_user", ("app", "app")),
    ("SELECT current_database(), current_user, 1+1", ("app", "app", 2)),
    ("SELECT session_user, user, current_role, current_catalog, current_schema, current_schema()",
     ("app", "app", "app", "app", "public", "public")),
]


@pytest.mark.parametrize("bind", list(BINDS))
@pytest.mark.parametrize("prepare", [False, True], ids=["extended", "prepared"])
def test_identity_functions_answer_the_client(ep, bind, prepare):
    with connect(ep) as c, pg_admin() as pg:
        for sql, row in IDENTITY_SQL:
            hinted = f"/* bindproxy: bind={bind} */ {sql}"
            cur = c.execute(hinted, prepare=prepare)
            assert cur.fetchone() == row, sql
            # PostgreSQL's column names
            want = [d.name for d in pg.execute(sql).description]
            assert [d.name for d in cur.description] == want, sql


@pytest.mark.parametrize("bind", list(BINDS))
def test_identity_functions_in_ordinary_statements(ep, bind):
    t = f"{BINDS[bind]}own{next(_n)}"
    with connect(ep) as c:
        c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, owner text, db text)")
        c.execute(f"INSERT INTO {t} VALUES (1, current_user, current_database()), (2, 'other', 'x')")
        assert c.execute(f"SELECT id FROM {t} WHERE owner = current_user AND db = current_catalog").fetchall() \
            == [(1,)]
        c.execute(f"UPDATE {t} SET owner = session_user WHERE id = 2")
        assert c.execute(f"SELECT count(*) FROM {t} WHERE owner = user").fetchone() == (2,)
    with connect(ep, user="report", dbname="reports") as c:
        assert c.execute(f"SELECT current_user, current_database(), count(*) FROM {t} "
                         "WHERE owner = current_user").fetchone() == ("report", "reports", 0)


def test_identity_in_psycopg2_simple_protocol(ep):
    import psycopg2

    c = psycopg2.connect(host="127.0.0.1", port=ep.port, user="app", dbname="app")
    try:
        cur = c.cursor()
        cur.execute("/* bindproxy: bind=lite */ SELECT current_database(), current_user, 1+1")
        assert cur.fetchone() == ("app", "app", 2)
        cur.execute("SELECT current_database(), current_user, 1+1")
        assert cur.fetchone() == ("app", "app", 2)
    finally:
        c.close()


def test_ddl_default_current_user_is_not_frozen(ep):
    with connect(ep) as c:
        e = failure(c, f"CREATE TABLE m_dflt{next(_n)} (id int, owner text DEFAULT current_user)")
    assert e.sqlstate == "0A000"
