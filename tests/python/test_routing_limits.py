"""Issue 6: statements too deep or too large for the routing analysis get a clear error for that client only;
wide-but-flat statements and bulk INSERTs of many megabytes keep working, on the right bind, in bounded memory.

Uses the standard PostgreSQL config (conftest.pg_config), where `user_*` tables map to bind `userdb`. The table
`user_limits` exists on `userdb` (2 rows) and on the default bind `main` (1 row), so every count shows where the
statement ran.
"""
import threading
import time

import psycopg
import pytest

from conftest import wait_until


@pytest.fixture(scope="module", autouse=True)
def user_limits(backends):
    for bind, rows in (("userdb", 2), ("main", 1)):
        with backends.direct(bind) as c:
            c.execute("DROP TABLE IF EXISTS user_limits")
            c.execute("CREATE TABLE user_limits (id int PRIMARY KEY)")
            c.execute("INSERT INTO user_limits SELECT generate_series(1, %s)", (rows,))


def _error(conn, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    return info.value


def _bystander_ok(proxy):
    assert proxy.alive(), f"daemon died:\n{proxy.log_tail()}"
    with proxy.connect() as c:
        assert c.execute("SELECT count(*) FROM user_limits").fetchone() == (2,)  # userdb's copy
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_wide_or_routes_and_runs(proxy):
    """A 1000-way OR (ORM `or_`, IN-list expansions) is flat in PostgreSQL's tree: it must run, on userdb."""
    where = " OR ".join(f"id = {i}" for i in range(1000))
    with proxy.connect() as c:
        assert c.execute(f"SELECT count(*) FROM user_limits WHERE {where}").fetchone() == (2,)
        in_list = ", ".join(str(i) for i in range(20000))
        assert c.execute(f"SELECT count(*) FROM user_limits WHERE id IN ({in_list})").fetchone() == (2,)
    _bystander_ok(proxy)


@pytest.mark.parametrize("terms", [2000, 40000])
def test_long_operator_chain_is_refused_54001(proxy, terms):
    chain = "+".join(["1"] * terms)
    with proxy.connect() as c:
        e = _error(c, f"SELECT {chain} FROM user_limits")
        assert e.sqlstate == "54001", (e.sqlstate, str(e))
        assert "nested too deeply" in str(e)
        # the session carries on
        assert c.execute("SELECT count(*) FROM user_limits").fetchone() == (2,)
    _bystander_ok(proxy)


@pytest.mark.parametrize("shape", ["parens", "subqueries", "case"])
def test_deep_nesting_is_refused(proxy, shape):
    if shape == "parens":
        sql = f"SELECT {'(' * 20000}1{')' * 20000} FROM user_limits"
    elif shape == "subqueries":
        sql = "SELECT * FROM " + "(SELECT * FROM " * 300 + "user_limits" + ") x" * 300
    else:
        sql = "SELECT " + "CASE WHEN true THEN " * 500 + "1" + " END" * 500 + " FROM user_limits"
    with proxy.connect() as c:
        e = _error(c, sql)
        assert e.sqlstate == "54001", (e.sqlstate, str(e)[:200])
        assert c.execute("SELECT 1").fetchone() == (1,)
    _bystander_ok(proxy)


def test_huge_in_list_runs_and_uncollapsible_statements_are_refused_54000(proxy):
    """A 5 MB IN list is routed after its literals are collapsed (and runs on userdb); 300 KB of
    expressions that cannot be collapsed are refused with 54000, in bounded memory."""
    baseline = proxy.rss_kib()
    ids = ",".join(str(i) for i in range(800_000))
    assert len(ids) > 5_000_000
    with proxy.connect() as c:
        assert c.execute(f"SELECT count(*) FROM user_limits WHERE id IN ({ids})").fetchone() == (2,)
        ors = " OR ".join(f"id = id + {i}" for i in range(20_000))
        e = _error(c, f"SELECT count(*) FROM user_limits WHERE {ors}")
        assert e.sqlstate == "54000", (e.sqlstate, str(e)[:200])
        assert "too large" in str(e)
        assert c.execute("SELECT count(*) FROM user_limits").fetchone() == (2,)
    assert proxy.rss_kib() < baseline + 512 * 1024, f"RSS {proxy.rss_kib()} KiB, baseline {baseline} KiB"
    _bystander_ok(proxy)


def test_fifty_megabyte_insert_lands_on_its_bind_in_bounded_memory(proxy, backends):
    """A 50 MB multi-row INSERT is routed by its head: it runs on userdb, a bystander is served meanwhile, and
    the daemon's memory goes back to where it was."""
    for bind in ("userdb", "main"):
        with backends.direct(bind) as c:
            c.execute("CREATE TABLE IF NOT EXISTS user_bulk (id int PRIMARY KEY, payload text)")
            c.execute("TRUNCATE user_bulk")
    payload = "x" * 1000
    rows = 50_000
    sql = "INSERT INTO user_bulk (id, payload) VALUES " + ", ".join(
        f"({i}, '{payload}')" for i in range(rows))
    assert len(sql) > 50_000_000
    baseline = proxy.rss_kib()

    done = threading.Event()
    errors: list[BaseException] = []

    def load():
        try:
            with proxy.connect() as c:
                c.execute(sql)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=load)
    t.start()
    served = 0
    with proxy.connect() as by:
        while not done.is_set():
            assert by.execute("SELECT count(*) FROM user_limits").fetchone() == (2,)
            served += 1
            time.sleep(0.05)
    t.join(120)
    assert not errors, errors
    assert served >= 1
    assert backends.scalar("userdb", "SELECT count(*) FROM user_bulk") == rows
    assert backends.scalar("main", "SELECT count(*) FROM user_bulk") == 0
    # the message buffer and the statement are released when the client goes
    assert wait_until(lambda: proxy.rss_kib() < baseline + 64 * 1024, timeout=10), \
        f"RSS {proxy.rss_kib()} KiB after the load, baseline {baseline} KiB"
    _bystander_ok(proxy)
