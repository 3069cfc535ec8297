"""Rows land on the bind their table maps to, and only there (checked on the backends directly)."""

import psycopg


def where(backends, table, id_, col="id"):
    """Which binds (main/userdb) hold a row with this id."""
    found = []
    for bind in ("main", "userdb"):
        if backends.table_exists(bind, table) and backends.scalar(
                bind, f"SELECT count(*) FROM {table} WHERE {col} = %s", (id_,)):
            found.append(bind)
    return found


def test_exact_rule(proxy, conn, backends, uid):
    i = uid()
    conn.execute("INSERT INTO users (id, name) VALUES (%s, %s)", (i, "alice"))
    assert where(backends, "users", i) == ["userdb"]
    assert conn.execute("SELECT name FROM users WHERE id = %s", (i,)).fetchone() == ("alice",)
    # public.users is the same table
    assert conn.execute("SELECT name FROM public.users WHERE id = %s", (i,)).fetchone() == ("alice",)
    conn.execute("UPDATE users SET name = 'alice2' WHERE id = %s", (i,))
    assert backends.scalar("userdb", "SELECT name FROM users WHERE id = %s", (i,)) == "alice2"
    conn.execute("DELETE FROM users WHERE id = %s", (i,))
    assert where(backends, "users", i) == []


def test_unmapped_goes_to_default(conn, backends, uid):
    i = uid()
    conn.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, 1, 9.5)", (i,))
    assert where(backends, "orders", i) == ["main"]
    conn.execute("INSERT INTO items VALUES (%s, 'x')", (i,))
    assert backends.scalar("main", "SELECT label FROM items WHERE id = %s", (i,)) == "x"


def test_glob_rule(conn, backends, uid):
    i = uid()
    conn.execute("INSERT INTO user_profiles (user_id, bio) VALUES (%s, 'hi')", (i,))
    assert backends.scalar("userdb", "SELECT bio FROM user_profiles WHERE user_id = %s", (i,)) == "hi"
    assert not backends.table_exists("main", "user_profiles")
    # a table created through the proxy under a glob lands on the glob's bind
    conn.execute("CREATE TABLE user_settings (user_id int PRIMARY KEY, k text)")
    conn.execute("INSERT INTO user_settings VALUES (%s, 'dark')", (i,))
    assert backends.table_exists("userdb", "user_settings")
    assert not backends.table_exists("main", "user_settings")
    conn.execute("DROP TABLE user_settings")
    assert not backends.table_exists("userdb", "user_settings")


def test_schema_rule(conn, backends):
    (rid,) = conn.execute("INSERT INTO audit.events (what) VALUES ('login') RETURNING id").fetchone()
    assert backends.scalar("userdb", "SELECT what FROM audit.events WHERE id = %s", (rid,)) == "login"
    assert not backends.table_exists("main", "audit.events")
    conn.execute("CREATE TABLE audit.logins (id int)")
    assert backends.table_exists("userdb", "audit.logins")
    conn.execute("DROP TABLE audit.logins")


def test_quoted_identifiers_keep_case(conn, backends, uid):
    # "USERS" (quoted, upper case) is not users: unmapped -> default bind, where it does not exist.
    try:
        conn.execute('SELECT * FROM "USERS"')
        raise AssertionError('"USERS" should not resolve to users')
    except psycopg.errors.UndefinedTable:
        pass
    i = uid()
    conn.execute("INSERT INTO USERS (id, name) VALUES (%s, 'upper')", (i,))  # unquoted folds to users
    assert where(backends, "users", i) == ["userdb"]


def test_no_table_goes_to_default_or_transaction_bind(conn, backends):
    assert conn.execute("SELECT current_database()").fetchone()[0] == backends.db("main")
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM users")
    # inside a transaction opened on userdb, a table-less statement stays there
    assert conn.execute("SELECT current_database()").fetchone()[0] == backends.db("userdb")
    conn.execute("COMMIT")
    assert conn.execute("SELECT current_database()").fetchone()[0] == backends.db("main")


def test_subqueries_ctes_and_set_operations(conn, backends, uid):
    i = uid()
    conn.execute("INSERT INTO user_profiles (user_id, bio) "
                 "WITH src AS (SELECT id FROM users WHERE id = 1) SELECT id - 1 + %s, 'cte' FROM src", (i,))
    assert backends.scalar("userdb", "SELECT bio FROM user_profiles WHERE user_id = %s", (i,)) == "cte"
    rows = conn.execute("SELECT id FROM users WHERE id IN (SELECT user_id FROM user_profiles) "
                        "UNION SELECT id FROM audit.events WHERE false ORDER BY 1").fetchall()
    assert (1,) in rows
    # generate_series is not a table
    assert conn.execute("SELECT count(*) FROM users, generate_series(1, 3)").fetchone()[0] >= 3


def test_multi_statement_same_bind(proxy, backends, uid):
    i = uid()
    c = proxy.connect2()
    c.autocommit = True
    cur = c.cursor()
    cur.execute(f"INSERT INTO users VALUES ({i}, 'a'); INSERT INTO user_profiles VALUES ({i}, 'b')")
    c.close()
    assert where(backends, "users", i) == ["userdb"]
    assert backends.scalar("userdb", "SELECT bio FROM user_profiles WHERE user_id = %s", (i,)) == "b"


def test_pipeline_across_binds_keeps_order(proxy, backends, uid):
    """psycopg pipeline mode: many Parse/Bind/Execute before one Sync, touching two binds."""
    i = uid()
    with proxy.connect() as c:
        with c.pipeline():
            c1 = c.execute("INSERT INTO users (id, name) VALUES (%s, 'p1') RETURNING id", (i,))
            c2 = c.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, %s, 1) RETURNING id", (i, i))
            c3 = c.execute("SELECT name FROM users WHERE id = %s", (i,))
            c4 = c.execute("SELECT amount FROM orders WHERE id = %s", (i,))
            c5 = c.execute("SELECT current_database()")
        assert c1.fetchone() == (i,)
        assert c2.fetchone() == (i,)
        assert c3.fetchone() == ("p1",)
        assert float(c4.fetchone()[0]) == 1.0
        assert c5.fetchone() == (backends.db("main"),)
        assert c.execute("SELECT 42").fetchone() == (42,)
    assert where(backends, "users", i) == ["userdb"]
    assert where(backends, "orders", i) == ["main"]


def test_executemany_pipelined(conn, backends, uid):
    ids = [uid() for _ in range(50)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO users (id, name) VALUES (%s, %s)", [(i, f"m{i}") for i in ids])
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 50
    assert backends.scalar("main", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 0
