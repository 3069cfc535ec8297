"""Real drivers through the proxy: psycopg 3 (extended, text and binary), psycopg2 (simple), asyncpg."""

import asyncio
import datetime
import decimal
import uuid

import psycopg


# ---------------------------------------------------------------- psycopg 3
def test_psycopg3_extended_text(proxy, backends, uid):
    i = uid()
    with proxy.connect(autocommit=False) as c:
        with c.cursor() as cur:
            cur.execute("INSERT INTO users (id, name) VALUES (%s, %s)", (i, "zoë ✓"))
            cur.execute("SELECT id, name FROM users WHERE id = %s", (i,))
            assert cur.fetchall() == [(i, "zoë ✓")]
            assert [d.name for d in cur.description] == ["id", "name"]
        c.commit()
    assert backends.scalar("userdb", "SELECT name FROM users WHERE id = %s", (i,)) == "zoë ✓"


def test_psycopg3_binary_results_and_types(conn, uid):
    i = uid()
    conn.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, %s, %s)", (i, 7, decimal.Decimal("12.34")))
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT id, user_id, amount, now()::date, %s::uuid, NULL::text FROM orders WHERE id = %s",
                    (uuid.UUID(int=5), i))
        row = cur.fetchone()
    assert row[:3] == (i, 7, decimal.Decimal("12.34"))
    assert isinstance(row[3], datetime.date)
    assert row[4] == uuid.UUID(int=5) and row[5] is None


def test_psycopg3_named_prepared_statements(conn, backends, uid):
    ids = [uid() for _ in range(8)]
    for i in ids:  # prepare=True: a named server-side statement, reused
        conn.execute("INSERT INTO user_profiles (user_id, bio) VALUES (%s, %s)", (i, "prep"), prepare=True)
    for i in ids:
        assert conn.execute("SELECT bio FROM user_profiles WHERE user_id = %s", (i,), prepare=True).fetchone() \
            == ("prep",)
    assert backends.scalar("userdb", "SELECT count(*) FROM user_profiles WHERE user_id = ANY(%s)", (ids,)) == 8


def test_psycopg3_server_side_cursor(proxy, uid):
    ids = [uid() for _ in range(30)]
    with proxy.connect(autocommit=False) as c:
        with c.cursor() as cur:
            cur.executemany("INSERT INTO users (id, name) VALUES (%s, 'ssc')", [(i,) for i in ids])
        with c.cursor(name="bp_cursor") as cur:  # DECLARE ... CURSOR + FETCH
            cur.itersize = 7
            cur.execute("SELECT id FROM users WHERE name = 'ssc' ORDER BY id")
            got = [r[0] for r in cur]
        assert got[-30:] == ids or set(ids) <= set(got)
        c.rollback()


def test_psycopg3_copy(conn, backends, uid):
    ids = [uid() for _ in range(100)]
    with conn.cursor() as cur:
        with cur.copy("COPY users (id, name) FROM STDIN") as cp:
            for i in ids:
                cp.write_row((i, f"copy{i}"))
        assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 100
        out = []
        with cur.copy("COPY (SELECT id FROM users WHERE id = ANY(%s) ORDER BY id) TO STDOUT", (ids,)) as cp:
            for row in cp.rows():
                out.append(int(row[0]))
        assert out == ids


def test_psycopg3_notices_and_errors_keep_fields(conn):
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$")
    assert notices == ["hello from plpgsql"]
    try:
        conn.execute("INSERT INTO users (id, name) VALUES (1, 'dup')")
        raise AssertionError("duplicate key expected")
    except psycopg.errors.UniqueViolation as e:
        assert e.sqlstate == "23505"
        assert e.diag.constraint_name == "users_pkey"
        assert e.diag.table_name == "users"
    assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------- psycopg2
def test_psycopg2_simple_protocol(proxy, backends, uid):
    i, j = uid(), uid()
    c = proxy.connect2()
    c.autocommit = True
    cur = c.cursor()
    cur.execute("INSERT INTO users (id, name) VALUES (%s, %s)", (i, "o'hara"))
    cur.execute("INSERT INTO orders (id, user_id, amount) VALUES (%s, %s, %s)", (j, i, 3))
    cur.execute("SELECT name FROM users WHERE id = %s", (i,))
    assert cur.fetchone() == ("o'hara",)
    cur.execute("SELECT u.name, count(*) FROM users u WHERE u.id = %s GROUP BY 1", (i,))
    assert cur.fetchall() == [("o'hara", 1)]
    c.close()
    assert backends.scalar("userdb", "SELECT name FROM users WHERE id = %s", (i,)) == "o'hara"
    assert backends.scalar("main", "SELECT amount FROM orders WHERE id = %s", (j,)) == 3


def test_psycopg2_transaction_commit_and_rollback(proxy, backends, uid):
    i, j = uid(), uid()
    c = proxy.connect2()
    cur = c.cursor()
    cur.execute("INSERT INTO users (id, name) VALUES (%s, 'tx')", (i,))
    c.commit()
    cur.execute("INSERT INTO users (id, name) VALUES (%s, 'tx-rolled-back')", (j,))
    c.rollback()
    c.close()
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id IN (%s, %s)", (i, j)) == 1


# ---------------------------------------------------------------- asyncpg
def test_asyncpg_prepared_binary_and_cursor(proxy, backends, uid):
    ids = [uid() for _ in range(25)]

    async def main():
        c = await proxy.connect_asyncpg()
        try:
            await c.executemany("INSERT INTO users (id, name) VALUES ($1, $2)", [(i, f"a{i}") for i in ids])
            stmt = await c.prepare("SELECT id, name FROM users WHERE id = $1")
            for i in ids[:5]:
                assert tuple(await stmt.fetchrow(i)) == (i, f"a{i}")
            assert [a.name for a in stmt.get_attributes()] == ["id", "name"]
            rows = await c.fetch("SELECT id FROM users WHERE id >= $1 AND id <= $2 ORDER BY id", ids[0], ids[-1])
            assert [r["id"] for r in rows] == ids
            assert await c.fetchval("SELECT amount FROM orders WHERE id = $1", 1) == decimal.Decimal("10.00")
            got = []
            async with c.transaction():
                async for r in c.cursor("SELECT id FROM users WHERE id = ANY($1::int[]) ORDER BY id", ids,
                                        prefetch=4):
                    got.append(r["id"])
                cur = await c.cursor("SELECT id FROM users WHERE id = ANY($1::int[]) ORDER BY id", ids)
                first = await cur.fetch(10)
                assert [r["id"] for r in first] == ids[:10]
                await cur.forward(5)
                assert (await cur.fetchrow())["id"] == ids[15]
            assert got == ids
            # types round-trip in binary
            v = await c.fetchrow("SELECT $1::int8 AS a, $2::float8 AS b, $3::bool AS c, $4::timestamptz AS d, "
                                 "$5::bytea AS e, $6::jsonb AS f", 2**40, 1.5, True,
                                 datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), b"\x00\xff",
                                 '{"k": [1, 2]}')
            assert (v["a"], v["b"], v["c"], v["e"]) == (2**40, 1.5, True, b"\x00\xff")
            assert v["d"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        finally:
            await c.close()

    asyncio.run(main())
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 25
    assert backends.scalar("main", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 0


def test_asyncpg_transaction_rollback(proxy, backends, uid):
    i = uid()

    async def main():
        c = await proxy.connect_asyncpg()
        try:
            tr = c.transaction()
            await tr.start()
            await c.execute("INSERT INTO audit.events (id, what) VALUES ($1, 'rolled back')", i)
            await tr.rollback()
            async with c.transaction():
                await c.execute("INSERT INTO audit.events (id, what) VALUES ($1, 'kept')", i)
        finally:
            await c.close()

    asyncio.run(main())
    assert backends.query("userdb", "SELECT what FROM audit.events WHERE id = %s", (i,)) == [("kept",)]
