"""Errors with their SQLSTATEs: cross-bind statements and transactions, parse fallback, dead backend,
pool exhaustion, cancel; plus startup parameters."""

import threading
import time

import psycopg
import pytest

from conftest import PG_HOST, PG_PORT, PG_USER, wait_until


def expect_error(conn, sql, sqlstate, params=None):
    with pytest.raises(psycopg.Error) as ei:
        conn.execute(sql, params)
    assert ei.value.sqlstate == sqlstate, f"{sql!r}: got {ei.value.sqlstate} {ei.value}"
    return ei.value


# ---------------------------------------------------------------- cross-bind statement
def test_cross_bind_join_rejected(conn):
    e = expect_error(conn, "SELECT * FROM users JOIN orders ON orders.user_id = users.id", "0A000")
    msg = str(e)
    for word in ("users", "orders", "userdb", "main"):
        assert word in msg, msg
    # the session carries on
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1


def test_cross_bind_statement_runs_nothing(conn, backends, uid):
    i = uid()
    expect_error(conn, "WITH x AS (INSERT INTO users (id, name) VALUES (%s, 'nope') RETURNING id) "
                       "SELECT * FROM orders, x", "0A000", (i,))
    expect_error(conn, "INSERT INTO orders (id, user_id) SELECT id + %s, id FROM users", "0A000", (i,))
    expect_error(conn, "DELETE FROM users USING orders WHERE users.id = orders.user_id AND orders.id = %s",
                 "0A000", (i,))
    for bind in ("main", "userdb"):
        assert backends.scalar(bind, "SELECT count(*) FROM users WHERE id = %s", (i,)) == 0
        assert backends.scalar(bind, "SELECT count(*) FROM orders WHERE id > %s", (i,)) == 0
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_multi_statement_query_across_binds_is_one_transaction(proxy, backends, uid):
    """A Query whose statements go to two binds runs both, as one transaction (issue 7)."""
    import psycopg2

    i = uid()
    c = proxy.connect2()
    c.autocommit = True
    cur = c.cursor()
    cur.execute(f"INSERT INTO users VALUES ({i}, 'multi'); INSERT INTO orders VALUES ({i}, 1, 1)")
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = %s", (i,)) == 1
    assert backends.scalar("main", "SELECT count(*) FROM orders WHERE id = %s", (i,)) == 1
    # the second statement fails: the first one's row is gone too, on its own bind
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute(f"INSERT INTO users VALUES ({i + 1}, 'multi'); INSERT INTO orders VALUES ({i}, 1, 1)")
    assert ei.value.pgcode == "23505"
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()
    for bind in ("main", "userdb"):
        assert backends.scalar(bind, "SELECT count(*) FROM users WHERE id = %s", (i + 1,)) == 0
    assert backends.scalar("main", "SELECT count(*) FROM orders WHERE id = %s", (i,)) == 1


# ---------------------------------------------------------------- cross-bind transaction
def test_transaction_across_binds_and_a_cross_bind_join_inside(conn, backends, uid):
    i = uid()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO users (id, name) VALUES (%s, 'in tx')", (i,))
    conn.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 1)", (i,))
    # one statement over both binds is still refused, and fails the transaction
    e = expect_error(conn, "SELECT * FROM users JOIN orders ON orders.user_id = users.id", "0A000")
    assert "userdb" in str(e) and "main" in str(e) and "cross-bind" in str(e), str(e)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    expect_error(conn, "SELECT 1", "25P02")
    expect_error(conn, "SELECT * FROM users", "25P02")
    expect_error(conn, "SELECT * FROM orders", "25P02")
    conn.execute("ROLLBACK")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = %s", (i,)) == 0
    assert backends.scalar("main", "SELECT count(*) FROM orders WHERE id = %s", (i,)) == 0
    # and both binds work again, in one committed transaction
    conn.execute("BEGIN")
    conn.execute("INSERT INTO users (id, name) VALUES (%s, 'in tx')", (i,))
    conn.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 1)", (i,))
    conn.execute("COMMIT")
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = %s", (i,)) == 1
    assert backends.scalar("main", "SELECT count(*) FROM orders WHERE id = %s", (i,)) == 1


def test_cross_bind_transaction_non_autocommit_client(proxy, backends, uid):
    i = uid()
    with proxy.connect(autocommit=False) as c:
        c.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 1)", (i,))
        c.execute("UPDATE users SET name = 'x' WHERE id = 1")
        c.rollback()
        c.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 2)", (i,))
        c.execute("UPDATE users SET name = name WHERE id = 1")
        c.commit()
    assert backends.scalar("main", "SELECT amount FROM orders WHERE id = %s", (i,)) == 2


# ---------------------------------------------------------------- parse fallback
def test_fallback_vacuum(conn):
    # user_profiles exists on userdb only: VACUUM on the wrong bind would fail with 42P01
    conn.execute("VACUUM user_profiles")
    conn.execute("VACUUM (ANALYZE) audit.events")
    conn.execute("ANALYZE user_profiles")


def test_fallback_table_statement(conn):
    rows = conn.execute("TABLE users").fetchall()
    names = {r[1] for r in rows}
    assert "seed-userdb" in names and "seed-main" not in names


def test_fallback_select_from_only(conn):
    rows = conn.execute("SELECT name FROM ONLY users WHERE id = 1").fetchall()
    assert rows == [("seed-userdb",)]
    rows = conn.execute("SELECT name FROM ONLY public.users u WHERE u.id = 1").fetchall()
    assert rows == [("seed-userdb",)]


def test_fallback_other_unparsable(conn, backends, uid):
    assert conn.execute("SELECT name FROM users WHERE id BETWEEN SYMMETRIC 2 AND 1 ORDER BY id").fetchall() \
        == [("seed-userdb",), ("seed-userdb-2",)]
    assert conn.execute("SELECT id FROM users WHERE id = 1 FOR KEY SHARE").fetchall() == [(1,)]
    assert conn.execute("SELECT name::text COLLATE \"C\" FROM users WHERE id = 1").fetchall() \
        == [("seed-userdb",)]
    conn.execute("CREATE TABLE user_tmp_like (LIKE users INCLUDING ALL)")
    assert backends.table_exists("userdb", "user_tmp_like")
    assert not backends.table_exists("main", "user_tmp_like")
    conn.execute("DROP TABLE user_tmp_like")


def test_fallback_cross_bind_rejected(conn):
    expect_error(conn, "VACUUM users, orders", "0A000")
    expect_error(conn, "SELECT * FROM ONLY users, ONLY orders", "0A000")


# ---------------------------------------------------------------- dead backend
def test_dead_backend(proxy, conn):
    t0 = time.monotonic()
    with pytest.raises(psycopg.Error) as ei:
        conn.execute("SELECT * FROM ghost")
    assert time.monotonic() - t0 < 10
    assert ei.value.sqlstate in ("08001", "08006"), f"{ei.value.sqlstate}: {ei.value}"
    assert "dead" in str(ei.value), str(ei.value)
    # the same session still reaches the other binds
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1
    # and again, the dead bind still answers with an error, not a hang
    with pytest.raises(psycopg.Error) as ei:
        conn.execute("SELECT * FROM ghost")
    assert ei.value.sqlstate in ("08001", "08006")
    # other clients are fine
    with proxy.connect() as other:
        assert other.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    assert proxy.alive()


# ---------------------------------------------------------------- pool exhaustion
def test_pool_exhaustion(proxy):
    holder = proxy.connect()
    try:
        assert holder.execute("SELECT count(*) FROM scarce").fetchone() == (1,)  # holds tiny's one connection
        with proxy.connect() as second:
            t0 = time.monotonic()
            with pytest.raises(psycopg.Error) as ei:
                second.execute("SELECT count(*) FROM scarce")
            elapsed = time.monotonic() - t0
            assert ei.value.sqlstate == "53300", f"{ei.value.sqlstate}: {ei.value}"
            assert 0.3 <= elapsed < 5, elapsed
            # the failed checkout does not break the session
            assert second.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    finally:
        holder.close()

    # once the holder is gone its connection goes back to the pool
    def works():
        try:
            with proxy.connect() as c:
                return c.execute("SELECT count(*) FROM scarce").fetchone() == (1,)
        except psycopg.Error:
            return False

    assert wait_until(works, timeout=10, interval=0.3)


# ---------------------------------------------------------------- cancel
@pytest.mark.parametrize("sql", ["SELECT pg_sleep(10)", "SELECT pg_sleep(10) FROM users LIMIT 1"])
def test_cancel(proxy, sql):
    with proxy.connect() as c:
        threading.Timer(0.5, c.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as ei:
            c.execute(sql)
        assert ei.value.sqlstate == "57014"
        assert time.monotonic() - t0 < 5
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_cancel_does_not_hit_other_clients(proxy):
    with proxy.connect() as a, proxy.connect() as b:
        errors = []

        def run_b():
            try:
                b.execute("SELECT pg_sleep(1.5) FROM users LIMIT 1")
            except psycopg.Error as e:  # noqa: PERF203
                errors.append(e)

        t = threading.Thread(target=run_b)
        t.start()
        time.sleep(0.3)
        a.cancel()  # a is idle: nothing of b's may be cancelled
        t.join()
        assert errors == []


# ---------------------------------------------------------------- startup parameters
def test_session_parameters(proxy, backends):
    opts = "-c search_path=audit,public -c statement_timeout=0"
    # what PostgreSQL itself shows for these options
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=backends.db("main"), options=opts) as d:
        expected_path = d.execute("SHOW search_path").fetchone()
    with proxy.connect(application_name="foo", options=opts) as c:
        assert c.execute("SHOW application_name").fetchone() == ("foo",)
        assert c.info.parameter_status("application_name") == "foo"
        assert c.execute("SHOW search_path").fetchone() == expected_path
        # applied on every backend connection of the session
        assert c.execute("SELECT current_setting('application_name') FROM users LIMIT 1").fetchone() == ("foo",)
        assert c.execute("SELECT current_setting('application_name') FROM public.orders LIMIT 1").fetchone() == ("foo",)
        # unqualified, `orders` could be audit.orders (rule audit.* → userdb) or public.orders (main)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=r"audit\.orders.*public\.orders"):
            c.execute("SELECT 1 FROM orders")
        assert c.info.parameter_status("client_encoding") == "UTF8"
        assert c.info.parameter_status("server_version")


def test_extra_startup_parameters_accepted(proxy):
    with proxy.connect(options="-c extra_float_digits=3 -c DateStyle=ISO,MDY") as c:
        assert c.execute("SHOW extra_float_digits").fetchone() == ("3",)
        assert c.execute("SHOW DateStyle").fetchone() == ("ISO, MDY",)


def test_set_local_search_path_reaches_every_bind_of_the_transaction(conn, backends, uid):
    """SET LOCAL search_path after the transaction's first statement: the bind that joins later must
    resolve names as the routing did (issue 7)."""
    i = uid()
    for prepare in (False, True):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 1)", (i + int(prepare),))  # main
        conn.execute("SET LOCAL search_path TO audit", prepare=prepare)
        # `events` is audit.events on userdb: routed there by the search_path, and found there by it
        conn.execute("INSERT INTO events (what) VALUES (%s)", (f"sp{i}{prepare}",), prepare=prepare)
        assert conn.execute("SHOW search_path").fetchone()[0] == "audit"
        conn.execute("COMMIT")
        assert backends.scalar("userdb", "SELECT count(*) FROM audit.events WHERE what = %s",
                               (f"sp{i}{prepare}",)) == 1
    assert conn.execute("SHOW search_path").fetchone()[0] == "\"$user\", public"
