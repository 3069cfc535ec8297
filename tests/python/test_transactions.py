"""Issue 7: transactions that span binds.

One proxy (`px`, cross_bind: two_phase, the default) with six binds:

  main    PostgreSQL bp_<pid>_tx_main  (default)   products
  users   PostgreSQL bp_<pid>_tx_users             users, accounts (deferred UNIQUE email), roles (deferred FK)
  orders  MariaDB    bp_<pid>_tx_orders            orders, ord_*
  views   SQLite file tx_views.db                  page_views
  views2  SQLite file tx_views2.db                 clicks
  fl*_…   tables of the Flask-like test, created through the proxy (fl*_users → users, …)

and the same map under `cross_bind: sequential` (`px_seq`) and `cross_bind: reject` (`px_rej`).

Every table has (id, tag); a test writes rows with its own tag and then reads EVERY backend directly
(psycopg for PostgreSQL, PyMySQL for MariaDB, sqlite3 for the files) to see which rows exist. After each
commit, nothing of this proxy's instance id may stay prepared (pg_prepared_xacts, XA RECOVER).

Clients: psycopg2 (simple protocol), psycopg 3 (extended protocol), asyncpg (extended protocol, binary),
psql, SQLAlchemy ORM sessions (psycopg2 and psycopg 3 drivers).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import sqlite3
import time
from pathlib import Path

import psycopg
import pymysql
import pytest
from sqlalchemy import Integer, String, create_engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from conftest import (MY_HOST, MY_PORT, MY_USER, PREFIX, Proxy, my_admin, pg_admin, pg_direct, pg_url, require_tool,
                      wait_until)

CLIENTS = ["psycopg2", "psycopg3", "asyncpg"]

_ids = itertools.count(10_000)
_tags = itertools.count(1)


def nid() -> int:
    return next(_ids)


def new_tag() -> str:
    return f"tg{os.getpid()}_{next(_tags)}"


# --------------------------------------------------------------------------------------------------------------
# Backends and proxies
# --------------------------------------------------------------------------------------------------------------
class TxEnv:
    def __init__(self, backends):
        self.pg_main = PREFIX + "tx_main"
        self.pg_users = PREFIX + "tx_users"
        self.my_orders = backends.mysql_db("tx_orders")
        self.lite_views = backends.sqlite_path("tx_views")
        self.lite_views2 = backends.sqlite_path("tx_views2")

    def config(self, cross_bind: str | None = None) -> dict:
        cfg = {
            "default_bind": "main",
            "binds": {
                "main": pg_url(self.pg_main),
                "users": pg_url(self.pg_users),
                "orders": f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{self.my_orders}",
                "views": f"sqlite:///{self.lite_views}",
                "views2": f"sqlite:///{self.lite_views2}",
            },
            "tables": {
                "products": "main",
                "users": "users",
                "accounts": "users",
                "roles": "users",
                "orders": "orders",
                "ord_*": "orders",
                "page_views": "views",
                "clicks": "views2",
                "fl*_users": "users",
                "fl*_orders": "orders",
                "fl*_views": "views",
            },
        }
        if cross_bind:
            cfg["transactions"] = {"cross_bind": cross_bind}
        return cfg


SCHEMA_MAIN = "CREATE TABLE products (id int PRIMARY KEY, tag text)"
SCHEMA_USERS = """
CREATE TABLE users (id int PRIMARY KEY, tag text);
CREATE TABLE accounts (id int PRIMARY KEY, tag text, email text,
                       CONSTRAINT accounts_email_key UNIQUE (email) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE roles (id int PRIMARY KEY, tag text,
                    user_id int CONSTRAINT roles_user_id_fkey REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED);
"""


@pytest.fixture(scope="module")
def txenv(backends, mariadb):
    env = TxEnv(backends)
    with pg_admin() as c:
        for db in (env.pg_main, env.pg_users):
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{db}"')
    with pg_direct(env.pg_main) as c:
        c.execute(SCHEMA_MAIN)
    with pg_direct(env.pg_users) as c:
        c.execute(SCHEMA_USERS)
    with my_admin(env.my_orders) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE orders (id int PRIMARY KEY, tag varchar(64)) ENGINE=InnoDB")
    for path, table in ((env.lite_views, "page_views"), (env.lite_views2, "clicks")):
        path.unlink(missing_ok=True)
        lc = sqlite3.connect(path)
        lc.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, tag text)")
        lc.commit()
        lc.close()
    yield env
    with pg_admin() as c:
        for db in (env.pg_main, env.pg_users):
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _proxy(start_proxy, txenv, mode, name) -> Proxy:
    p = start_proxy(txenv.config(mode), name)
    p.env = txenv
    return p


@pytest.fixture(scope="module")
def _px(start_proxy, txenv):
    return _proxy(start_proxy, txenv, None, "tx")


@pytest.fixture(scope="module")
def _px_seq(start_proxy, txenv):
    return _proxy(start_proxy, txenv, "sequential", "txseq")


@pytest.fixture(scope="module")
def _px_rej(start_proxy, txenv):
    return _proxy(start_proxy, txenv, "reject", "txrej")


@pytest.fixture
def px(_px):
    _px.ensure_running()
    return _px


@pytest.fixture
def px_seq(_px_seq):
    _px_seq.ensure_running()
    return _px_seq


@pytest.fixture
def px_rej(_px_rej):
    _px_rej.ensure_running()
    return _px_rej


# --------------------------------------------------------------------------------------------------------------
# Reading the backends directly
# --------------------------------------------------------------------------------------------------------------
PG_TABLES = {"products": "main", "users": "users", "accounts": "users", "roles": "users"}


def pg_ids(db: str, table: str, tag: str) -> list[int]:
    with pg_direct(db) as c:
        return [r[0] for r in c.execute(f"SELECT id FROM {table} WHERE tag = %s ORDER BY id", (tag,))]


def my_ids(db: str, table: str, tag: str) -> list[int]:
    with my_admin(db) as c, c.cursor() as cur:
        cur.execute(f"SELECT id FROM `{table}` WHERE tag = %s ORDER BY id", (tag,))
        return [r[0] for r in cur.fetchall()]


def lite_ids(path, table: str, tag: str) -> list[int]:
    c = sqlite3.connect(path, timeout=10)
    try:
        return [r[0] for r in c.execute(f"SELECT id FROM {table} WHERE tag = ? ORDER BY id", (tag,))]
    finally:
        c.close()


def where(env: TxEnv, tag: str) -> dict[str, list[int]]:
    """table -> ids of rows with `tag`, read on each table's own backend."""
    return {
        "products": pg_ids(env.pg_main, "products", tag),
        "users": pg_ids(env.pg_users, "users", tag),
        "accounts": pg_ids(env.pg_users, "accounts", tag),
        "roles": pg_ids(env.pg_users, "roles", tag),
        "orders": my_ids(env.my_orders, "orders", tag),
        "page_views": lite_ids(env.lite_views, "page_views", tag),
        "clicks": lite_ids(env.lite_views2, "clicks", tag),
    }


def expect(**tables) -> dict[str, list[int]]:
    base = {t: [] for t in ("products", "users", "accounts", "roles", "orders", "page_views", "clicks")}
    base.update({k: sorted(v) for k, v in tables.items()})
    return base


def nothing_anywhere(env: TxEnv, tag: str):
    assert where(env, tag) == expect(), "rows of a rolled-back transaction are on a backend"


def seed(env: TxEnv, table: str, id_: int, tag: str = "seed"):
    """A committed row written directly on the table's backend."""
    if table in PG_TABLES:
        db = env.pg_main if PG_TABLES[table] == "main" else env.pg_users
        with pg_direct(db) as c:
            c.execute(f"INSERT INTO {table} (id, tag) VALUES (%s, %s)", (id_, tag))
    elif table == "orders":
        with my_admin(env.my_orders) as c, c.cursor() as cur:
            cur.execute("INSERT INTO orders (id, tag) VALUES (%s, %s)", (id_, tag))
    else:
        path = env.lite_views if table == "page_views" else env.lite_views2
        c = sqlite3.connect(path, timeout=10)
        c.execute(f"INSERT INTO {table} (id, tag) VALUES (?, ?)", (id_, tag))
        c.commit()
        c.close()


def instance_prefix(px: Proxy) -> str:
    return f"bp_{px.config['transactions']['instance_id']}_"


def prepared_leftovers(px: Proxy) -> dict[str, list[str]]:
    prefix = instance_prefix(px)
    with pg_admin() as c:
        pg = [r[0] for r in c.execute("SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, %s)", (prefix,))]
    with my_admin() as c, c.cursor() as cur:
        cur.execute("XA RECOVER")
        xa = []
        for row in cur.fetchall():
            data = row[3].decode(errors="replace") if isinstance(row[3], (bytes, bytearray)) else str(row[3])
            if data.startswith(prefix):
                xa.append(data)
    return {"pg_prepared_xacts": pg, "xa_recover": xa}


def assert_nothing_prepared(px: Proxy):
    left = prepared_leftovers(px)
    assert left == {"pg_prepared_xacts": [], "xa_recover": []}, f"prepared transactions left behind: {left}"


# --------------------------------------------------------------------------------------------------------------
# Clients: one small synchronous face over psycopg2, psycopg 3 and asyncpg
# --------------------------------------------------------------------------------------------------------------
class DbError(Exception):
    def __init__(self, sqlstate: str | None, message: str, detail: str | None = None, hint: str | None = None):
        super().__init__(f"{sqlstate}: {message} (detail: {detail}; hint: {hint})")
        self.sqlstate = sqlstate
        self.message = message or ""
        self.detail = detail or ""
        self.hint = hint or ""

    @property
    def text(self) -> str:
        return f"{self.message}\n{self.detail}\n{self.hint}"


def _abort_fd(fd: int):
    s = socket.socket(fileno=os.dup(fd))
    try:
        s.shutdown(socket.SHUT_RDWR)
    finally:
        s.close()


class Psycopg2Client:
    kind = "psycopg2"

    def __init__(self, px: Proxy):
        self.conn = px.connect2()
        self.conn.autocommit = True

    def run(self, sql: str, params=None) -> str:
        import psycopg2

        cur = self.conn.cursor()
        try:
            cur.execute(sql, params)
        except psycopg2.Error as e:
            d = e.diag
            raise DbError(e.pgcode, d.message_primary or str(e), d.message_detail, d.message_hint) from None
        status = cur.statusmessage
        self._last = cur.fetchall() if cur.description else []
        return status

    def rows(self, sql: str, params=None) -> list[tuple]:
        self.run(sql, params)
        return [tuple(r) for r in self._last]

    def notices(self) -> list[str]:
        return [n.strip() for n in self.conn.notices]

    def abort(self):
        _abort_fd(self.conn.fileno())

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


class Psycopg3Client:
    kind = "psycopg3"

    def __init__(self, px: Proxy):
        self.conn = px.connect()
        self._notices: list[str] = []
        self.conn.add_notice_handler(
            lambda d: self._notices.append(f"{d.severity}:  {d.message_primary} {d.message_detail or ''}".strip()))

    def run(self, sql: str, params=None) -> str:
        try:
            cur = self.conn.execute(sql, params)
        except psycopg.Error as e:
            d = e.diag
            raise DbError(e.sqlstate, d.message_primary or str(e), d.message_detail, d.message_hint) from None
        self._last = cur.fetchall() if cur.description else []
        return cur.statusmessage

    def rows(self, sql: str, params=None) -> list[tuple]:
        self.run(sql, params)
        return [tuple(r) for r in self._last]

    def notices(self) -> list[str]:
        return list(self._notices)

    def abort(self):
        _abort_fd(self.conn.fileno())

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _dollar(sql: str) -> str:
    n = itertools.count(1)
    return re.sub(r"%s", lambda _m: f"${next(n)}", sql)


class AsyncpgClient:
    kind = "asyncpg"

    def __init__(self, px: Proxy):
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(px.connect_asyncpg())
        self._notices: list[str] = []
        self.conn.add_log_listener(
            lambda _c, m: self._notices.append(f"{m.severity}:  {m.message} {getattr(m, 'detail', '') or ''}".strip()))

    def _call(self, coro):
        import asyncpg

        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, 30))
        except asyncpg.PostgresError as e:
            raise DbError(e.sqlstate, getattr(e, "message", str(e)), getattr(e, "detail", None),
                          getattr(e, "hint", None)) from None

    def run(self, sql: str, params=None) -> str:
        if params:
            return self._call(self.conn.execute(_dollar(sql), *params))
        return self._call(self.conn.execute(sql))

    def rows(self, sql: str, params=None) -> list[tuple]:
        return [tuple(r) for r in self._call(self.conn.fetch(_dollar(sql), *(params or ())))]

    def notices(self) -> list[str]:
        # log listeners are called from the loop: give it a turn
        self.loop.run_until_complete(asyncio.sleep(0.05))
        return list(self._notices)

    def abort(self):
        self.conn.terminate()  # transport.abort(): no Terminate message, the socket just closes

    def close(self):
        try:
            if not self.conn.is_closed():
                self.loop.run_until_complete(asyncio.wait_for(self.conn.close(), 10))
        except Exception:  # noqa: BLE001
            pass
        self.loop.close()


def make_client(kind: str, px: Proxy):
    return {"psycopg2": Psycopg2Client, "psycopg3": Psycopg3Client, "asyncpg": AsyncpgClient}[kind](px)


@pytest.fixture(params=CLIENTS)
def client_kind(request):
    return request.param


@pytest.fixture
def cl(px, client_kind):
    c = make_client(client_kind, px)
    yield c
    c.close()


def ins(c, table: str, tag: str, id_: int | None = None) -> int:
    """INSERT one (id, tag) row through client `c` (parameters: extended protocol on psycopg 3 / asyncpg)."""
    id_ = nid() if id_ is None else id_
    status = c.run(f"INSERT INTO {table} (id, tag) VALUES (%s, %s)", (id_, tag))
    assert status == "INSERT 0 1", status
    return id_


def fails(sqlstate: str, fn, *args, **kw) -> DbError:
    with pytest.raises(DbError) as ei:
        fn(*args, **kw)
    assert ei.value.sqlstate == sqlstate, f"expected {sqlstate}, got {ei.value}"
    return ei.value


FOUR = ["products", "users", "orders", "page_views"]


# --------------------------------------------------------------------------------------------------------------
# The harness on one bind (worked before issue 7 and must keep working)
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", FOUR)
def test_single_bind_commit_and_rollback(px, cl, table):
    tag = new_tag()
    assert cl.run("BEGIN") == "BEGIN"
    a = ins(cl, table, tag)
    assert cl.run("COMMIT") == "COMMIT"
    cl.run("BEGIN")
    ins(cl, table, tag)
    assert cl.run("ROLLBACK") == "ROLLBACK"
    assert where(px.env, tag) == expect(**{table: [a]})
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# Commit and rollback across binds
# --------------------------------------------------------------------------------------------------------------
def test_commit_across_four_binds(px, cl):
    tag = new_tag()
    assert cl.run("BEGIN") == "BEGIN"
    ids = {t: ins(cl, t, tag) for t in FOUR}
    # each bind sees its own uncommitted row inside the transaction
    for t in FOUR:
        assert cl.rows(f"SELECT id FROM {t} WHERE tag = %s", (tag,)) == [(ids[t],)]
    # nothing is visible outside before COMMIT
    nothing_anywhere(px.env, tag)
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})
    assert_nothing_prepared(px)
    assert cl.rows("SELECT 1") == [(1,)]  # the session carries on
    # two_phase made its decision durable in this proxy's log_dir
    assert (Path(px.config["transactions"]["log_dir"]) / "decisions.log").exists()


def test_rollback_across_four_binds(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    for t in FOUR:
        ins(cl, t, tag)
    assert cl.run("ROLLBACK") == "ROLLBACK"
    nothing_anywhere(px.env, tag)
    assert_nothing_prepared(px)
    # and the next transaction across binds works on the same session
    cl.run("BEGIN")
    ids = {t: ins(cl, t, tag) for t in ("orders", "products")}
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})


def test_psycopg2_transaction_mode_commit_and_rollback(px):
    """psycopg2 without autocommit: the driver sends BEGIN itself; conn.commit()/rollback()."""
    tag = new_tag()
    c = px.connect2()
    try:
        cur = c.cursor()
        ids = {}
        for t in FOUR:
            ids[t] = nid()
            cur.execute(f"INSERT INTO {t} (id, tag) VALUES (%s, %s)", (ids[t], tag))
        c.commit()
        for t in FOUR:
            cur.execute(f"INSERT INTO {t} (id, tag) VALUES (%s, %s)", (nid(), tag))
        c.rollback()
    finally:
        c.close()
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})
    assert_nothing_prepared(px)


def test_psycopg3_transaction_blocks(px):
    """psycopg 3's `with conn.transaction()`: BEGIN, then nested blocks as SAVEPOINTs."""
    tag = new_tag()
    with px.connect() as c:
        keep = {}
        with c.transaction():
            keep["products"] = nid()
            c.execute("INSERT INTO products (id, tag) VALUES (%s, %s)", (keep["products"], tag))
            with pytest.raises(psycopg.errors.UniqueViolation):
                with c.transaction():  # SAVEPOINT; the error rolls back to it
                    c.execute("INSERT INTO orders (id, tag) VALUES (%s, %s)", (nid(), tag))
                    dup = nid()
                    c.execute("INSERT INTO users (id, tag) VALUES (%s, %s)", (dup, tag))
                    c.execute("INSERT INTO users (id, tag) VALUES (%s, %s)", (dup, tag))
            keep["page_views"] = nid()
            c.execute("INSERT INTO page_views (id, tag) VALUES (%s, %s)", (keep["page_views"], tag))
    assert where(px.env, tag) == expect(**{t: [i] for t, i in keep.items()})
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# An error on one participant fails the whole transaction
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failing", ["orders", "users"])
def test_error_on_one_bind_fails_the_transaction(px, cl, failing):
    tag = new_tag()
    dup = nid()
    seed(px.env, failing, dup)
    cl.run("BEGIN")
    ins(cl, "products", tag)
    ins(cl, "page_views", tag)
    ins(cl, "users" if failing == "orders" else "orders", tag)
    fails("23505", ins, cl, failing, tag, dup)
    # every later statement, to any bind (joined or not), gets 25P02
    for t in FOUR:
        fails("25P02", cl.rows, f"SELECT count(*) FROM {t}")
    fails("25P02", ins, cl, "clicks", tag)
    fails("25P02", cl.rows, "SELECT 1")
    assert cl.run("ROLLBACK") == "ROLLBACK"
    nothing_anywhere(px.env, tag)
    assert_nothing_prepared(px)
    assert cl.rows("SELECT 1") == [(1,)]


def test_commit_of_failed_transaction_rolls_back(px, cl):
    tag = new_tag()
    dup = nid()
    seed(px.env, "orders", dup)
    cl.run("BEGIN")
    ins(cl, "users", tag)
    ins(cl, "products", tag)
    fails("23505", ins, cl, "orders", tag, dup)
    assert cl.run("COMMIT") == "ROLLBACK"  # as PostgreSQL answers COMMIT of a failed transaction
    nothing_anywhere(px.env, tag)
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# Savepoints
# --------------------------------------------------------------------------------------------------------------
def test_savepoints_across_binds(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    assert cl.run("SAVEPOINT s0") == "SAVEPOINT"  # before any bind joined
    p1 = ins(cl, "products", tag)
    cl.run("SAVEPOINT s1")
    ins(cl, "orders", tag)  # orders joins after s1 (and s0) exist
    ins(cl, "users", tag)  # so does users
    assert cl.run("ROLLBACK TO SAVEPOINT s1") == "ROLLBACK"
    # products' row stays, the rows of the binds that joined after s1 are gone (seen inside the transaction)
    assert cl.rows("SELECT id FROM products WHERE tag = %s", (tag,)) == [(p1,)]
    assert cl.rows("SELECT count(*) FROM orders WHERE tag = %s", (tag,)) == [(0,)]
    assert cl.rows("SELECT count(*) FROM users WHERE tag = %s", (tag,)) == [(0,)]
    v1 = ins(cl, "page_views", tag)  # views joins: s0 and s1 are open
    cl.run("SAVEPOINT s2")
    o2 = ins(cl, "orders", tag)
    assert cl.run("RELEASE SAVEPOINT s2") == "RELEASE"
    cl.run("SAVEPOINT s3")
    ins(cl, "users", tag)
    ins(cl, "products", tag)
    ins(cl, "page_views", tag)
    ins(cl, "orders", tag)
    cl.run("ROLLBACK TO s3")
    # an error inside a savepoint, then ROLLBACK TO restores every participant
    cl.run("SAVEPOINT s4")
    dup = nid()
    seed(px.env, "orders", dup)
    fails("23505", ins, cl, "orders", tag, dup)
    fails("25P02", ins, cl, "products", tag)
    cl.run("ROLLBACK TO SAVEPOINT s4")
    p5 = ins(cl, "products", tag)
    u5 = ins(cl, "users", tag)
    cl.run("RELEASE s1")
    fails("3B001", cl.run, "ROLLBACK TO SAVEPOINT s2")  # released with s1
    cl.run("ROLLBACK")  # 3B001 failed the transaction
    nothing_anywhere(px.env, tag)

    # the same again, committed this time
    cl.run("BEGIN")
    cl.run("SAVEPOINT s0")
    p1 = ins(cl, "products", tag)
    cl.run("SAVEPOINT s1")
    ins(cl, "orders", tag)
    ins(cl, "users", tag)
    cl.run("ROLLBACK TO SAVEPOINT s1")
    v1 = ins(cl, "page_views", tag)
    cl.run("SAVEPOINT s2")
    o2 = ins(cl, "orders", tag)
    cl.run("RELEASE SAVEPOINT s2")
    cl.run("SAVEPOINT s3")
    ins(cl, "users", tag)
    ins(cl, "products", tag)
    ins(cl, "page_views", tag)
    cl.run("ROLLBACK TO s3")
    cl.run("SAVEPOINT s4")
    dup = nid()
    seed(px.env, "users", dup)
    fails("23505", ins, cl, "users", tag, dup)
    cl.run("ROLLBACK TO SAVEPOINT s4")
    p5 = ins(cl, "products", tag)
    u5 = ins(cl, "users", tag)
    cl.run("RELEASE s1")
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(products=[p1, p5], users=[u5], orders=[o2], page_views=[v1])
    assert_nothing_prepared(px)


@pytest.mark.parametrize("late", ["users", "orders", "page_views"])
def test_savepoint_made_after_a_bind_joined(px, cl, late):
    """SAVEPOINT while main is a participant; `late` joins after it; ROLLBACK TO undoes both sides."""
    tag = new_tag()
    cl.run("BEGIN")
    p = ins(cl, "products", tag)
    cl.run("SAVEPOINT sp")
    ins(cl, "products", tag)
    ins(cl, late, tag)
    assert cl.run("ROLLBACK TO SAVEPOINT sp") == "ROLLBACK"
    k = ins(cl, late, tag)
    cl.run("RELEASE SAVEPOINT sp")
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(**{"products": [p], late: [k]})
    assert_nothing_prepared(px)


def test_rollback_to_savepoint_made_before_any_bind(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    cl.run("SAVEPOINT a")
    for t in FOUR:
        ins(cl, t, tag)
    dup = nid()
    seed(px.env, "orders", dup)
    fails("23505", ins, cl, "orders", tag, dup)  # the error fails every participant …
    fails("25P02", ins, cl, "users", tag)
    cl.run("ROLLBACK TO SAVEPOINT a")  # … and ROLLBACK TO restores every one of them
    u = ins(cl, "users", tag)
    o = ins(cl, "orders", tag)
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(users=[u], orders=[o])
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# Isolation level and access mode travel with BEGIN to every bind
# --------------------------------------------------------------------------------------------------------------
def test_serializable_joins_every_bind(px, cl):
    tag = new_tag()
    assert cl.run("BEGIN ISOLATION LEVEL SERIALIZABLE") == "BEGIN"
    p = ins(cl, "products", tag)
    u = ins(cl, "users", tag)  # the second PostgreSQL bind joins
    # a query on the users bind reports the isolation of ITS transaction
    assert cl.rows("SELECT current_setting('transaction_isolation'), count(*) FROM users WHERE tag = %s",
                   (tag,)) == [("serializable", 1)]
    assert cl.rows("SHOW transaction_isolation") == [("serializable",)]
    assert cl.rows("/* bindproxy: bind=users */ SHOW transaction_isolation") == [("serializable",)]
    o = ins(cl, "orders", tag)  # MariaDB joins: its InnoDB transaction is SERIALIZABLE too
    with my_admin() as m, m.cursor() as cur:
        cur.execute("SELECT trx_isolation_level FROM information_schema.innodb_trx")
        levels = [r[0] for r in cur.fetchall()]
    assert "SERIALIZABLE" in levels, levels
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(products=[p], users=[u], orders=[o])
    assert_nothing_prepared(px)


def test_read_only_joins_every_bind(px, cl):
    tag = new_tag()
    assert cl.run("BEGIN READ ONLY") == "BEGIN"
    assert cl.rows("SELECT count(*) FROM products WHERE tag = %s", (tag,)) == [(0,)]
    # the second PostgreSQL bind joins read-only
    assert cl.rows("SELECT current_setting('transaction_read_only'), count(*) FROM users WHERE tag = %s",
                   (tag,)) == [("on", 0)]
    fails("25006", ins, cl, "users", tag)
    fails("25P02", cl.rows, "SELECT 1")
    assert cl.run("ROLLBACK") == "ROLLBACK"
    # a write on the second PostgreSQL bind as its first statement: still read-only
    cl.run("START TRANSACTION READ ONLY")
    cl.rows("SELECT count(*) FROM products")
    fails("25006", ins, cl, "users", tag)
    cl.run("ROLLBACK")
    nothing_anywhere(px.env, tag)


def test_set_transaction_before_first_statement_joins_every_bind(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    cl.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    ins(cl, "products", tag)
    assert cl.rows("SELECT current_setting('transaction_isolation'), count(*) FROM users") [0][0] == \
        "repeatable read"
    cl.run("ROLLBACK")


# --------------------------------------------------------------------------------------------------------------
# Deferred constraints failing at COMMIT
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["unique", "fk"])
def test_deferred_constraint_fails_at_commit(px, cl, kind):
    tag = new_tag()
    email = f"{tag}@example.org"
    if kind == "unique":
        with pg_direct(px.env.pg_users) as c:
            c.execute("INSERT INTO accounts (id, tag, email) VALUES (%s, 'seed', %s)", (nid(), email))
    cl.run("BEGIN")
    ins(cl, "products", tag)
    if kind == "unique":
        cl.run("INSERT INTO accounts (id, tag, email) VALUES (%s, %s, %s)", (nid(), tag, email))  # deferred: ok now
    else:
        cl.run("INSERT INTO roles (id, tag, user_id) VALUES (%s, %s, %s)", (nid(), tag, 999_999_999))
    ins(cl, "orders", tag)
    ins(cl, "page_views", tag)
    err = fails("23505" if kind == "unique" else "23503", cl.run, "COMMIT")
    assert ("accounts_email_key" if kind == "unique" else "roles_user_id_fkey") in err.text
    nothing_anywhere(px.env, tag)
    assert_nothing_prepared(px)
    assert cl.rows("SELECT 1") == [(1,)]
    # the session is out of the transaction: a new one across binds commits
    cl.run("BEGIN")
    p = ins(cl, "products", tag)
    o = ins(cl, "orders", tag)
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(products=[p], orders=[o])


# --------------------------------------------------------------------------------------------------------------
# Multi-statement simple Query and pipelines: one transaction across binds
# --------------------------------------------------------------------------------------------------------------
def _multi(tag: str, ids: dict[str, int]) -> str:
    return "; ".join(f"INSERT INTO {t} (id, tag) VALUES ({i}, '{tag}')" for t, i in ids.items())


def test_multi_statement_query_psycopg2(px):
    tag = new_tag()
    ok = {t: nid() for t in FOUR}
    c = px.connect2()
    c.autocommit = True
    try:
        cur = c.cursor()
        cur.execute(_multi(tag, ok))
        assert where(px.env, tag) == expect(**{t: [i] for t, i in ok.items()})
        assert_nothing_prepared(px)
        dup = nid()
        seed(px.env, "orders", dup)
        bad = {"products": nid(), "users": nid(), "orders": dup, "page_views": nid()}
        import psycopg2

        with pytest.raises(psycopg2.Error) as ei:
            cur.execute(_multi(tag, bad))
        assert ei.value.pgcode == "23505"
        cur.execute("SELECT 1")
        assert cur.fetchall() == [(1,)]
    finally:
        c.close()
    # none of the failing query's statements committed, on any bind
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ok.items()})
    assert_nothing_prepared(px)


def test_multi_statement_query_psql(px):
    require_tool("psql")
    tag = new_tag()
    ok = {t: nid() for t in FOUR}
    p = px.psql("-c", _multi(tag, ok))
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ok.items()}), p.stdout + p.stderr
    dup = nid()
    seed(px.env, "users", dup)
    bad = {"orders": nid(), "page_views": nid(), "products": nid(), "users": dup}
    p = px.psql("-c", _multi(tag, bad), check=False)
    assert p.returncode != 0 and "duplicate key" in p.stderr, p.stderr
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ok.items()})
    assert_nothing_prepared(px)


def test_pipeline_inside_begin(px):
    tag = new_tag()
    ids = {t: nid() for t in FOUR}
    with px.connect(autocommit=False) as c:
        with c.pipeline():
            for t, i in ids.items():
                c.execute(f"INSERT INTO {t} (id, tag) VALUES (%s, %s)", (i, tag))
            cur = c.execute("SELECT count(*) FROM orders WHERE tag = %s", (tag,))
        assert cur.fetchone() == (1,)
        nothing_anywhere(px.env, tag)
        c.commit()
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})
    assert_nothing_prepared(px)
    # a failing pipeline inside BEGIN: nothing
    tag2 = new_tag()
    dup = nid()
    seed(px.env, "users", dup)
    with px.connect(autocommit=False) as c:
        with pytest.raises(psycopg.errors.UniqueViolation):
            with c.pipeline():
                c.execute("INSERT INTO products (id, tag) VALUES (%s, %s)", (nid(), tag2))
                c.execute("INSERT INTO orders (id, tag) VALUES (%s, %s)", (nid(), tag2))
                c.execute("INSERT INTO users (id, tag) VALUES (%s, %s)", (dup, tag2))
                c.execute("INSERT INTO page_views (id, tag) VALUES (%s, %s)", (nid(), tag2))
        c.rollback()
    nothing_anywhere(px.env, tag2)


def test_pipeline_outside_begin_is_one_transaction(px):
    """Autocommit + pipeline: everything up to Sync is one implicit transaction (as on PostgreSQL)."""
    tag = new_tag()
    ids = {t: nid() for t in FOUR}
    with px.connect() as c:
        with c.pipeline():
            for t, i in ids.items():
                c.execute(f"INSERT INTO {t} (id, tag) VALUES (%s, %s)", (i, tag))
        assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})
        assert_nothing_prepared(px)
        dup = nid()
        seed(px.env, "page_views", dup)
        tag2 = new_tag()
        with pytest.raises(psycopg.errors.UniqueViolation):
            with c.pipeline():
                c.execute("INSERT INTO products (id, tag) VALUES (%s, %s)", (nid(), tag2))
                c.execute("INSERT INTO users (id, tag) VALUES (%s, %s)", (nid(), tag2))
                c.execute("INSERT INTO orders (id, tag) VALUES (%s, %s)", (nid(), tag2))
                c.execute("INSERT INTO page_views (id, tag) VALUES (%s, %s)", (dup, tag2))
        assert c.execute("SELECT 1").fetchone() == (1,)
    nothing_anywhere(px.env, tag2)
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# A statement across binds is still refused
# --------------------------------------------------------------------------------------------------------------
JOIN = "SELECT p.id FROM products p JOIN orders o ON o.id = p.id"


def test_cross_bind_join_refused(px, cl):
    err = fails("0A000", cl.rows, JOIN)
    assert "cross-bind" in err.text.lower(), err.text
    assert cl.rows("SELECT 1") == [(1,)]
    tag = new_tag()
    cl.run("BEGIN")
    ins(cl, "products", tag)
    ins(cl, "orders", tag)
    err = fails("0A000", cl.rows, JOIN)
    assert "cross-bind" in err.text.lower(), err.text
    fails("25P02", ins, cl, "users", tag)
    fails("25P02", cl.rows, "SELECT count(*) FROM products")
    assert cl.run("COMMIT") == "ROLLBACK"
    nothing_anywhere(px.env, tag)
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# cross_bind: sequential and reject
# --------------------------------------------------------------------------------------------------------------
def test_sequential_commit_across_binds(px_seq, client_kind):
    c = make_client(client_kind, px_seq)
    try:
        tag = new_tag()
        c.run("BEGIN")
        ids = {t: ins(c, t, tag) for t in FOUR}
        assert c.run("COMMIT") == "COMMIT"
        c.run("BEGIN")
        for t in FOUR:
            ins(c, t, tag)
        assert c.run("ROLLBACK") == "ROLLBACK"
    finally:
        c.close()
    assert where(px_seq.env, tag) == expect(**{t: [i] for t, i in ids.items()})
    assert_nothing_prepared(px_seq)


def test_sequential_failure_midway_names_the_binds(px_seq):
    """Joining order main, orders, users; users fails at COMMIT (deferred unique): main and orders are
    committed already, and the error says so."""
    tag = new_tag()
    email = f"{tag}@example.org"
    with pg_direct(px_seq.env.pg_users) as d:
        d.execute("INSERT INTO accounts (id, tag, email) VALUES (%s, 'seed', %s)", (nid(), email))
    c = Psycopg3Client(px_seq)
    try:
        c.run("BEGIN")
        p = ins(c, "products", tag)
        o = ins(c, "orders", tag)
        c.run("INSERT INTO accounts (id, tag, email) VALUES (%s, %s, %s)", (nid(), tag, email))
        with pytest.raises(DbError) as ei:
            c.run("COMMIT")
        text = ei.value.text
        for bind in ("main", "orders", "users"):
            assert bind in text, text
        assert "committed" in text.lower() and "rolled back" in text.lower(), text
    finally:
        c.close()
    assert where(px_seq.env, tag) == expect(products=[p], orders=[o])
    assert_nothing_prepared(px_seq)


def test_reject_mode_refuses_second_bind(px_rej, client_kind):
    c = make_client(client_kind, px_rej)
    try:
        tag = new_tag()
        c.run("BEGIN")
        ins(c, "products", tag)
        fails("0A000", ins, c, "orders", tag)
        fails("25P02", ins, c, "products", tag)
        assert c.run("COMMIT") == "ROLLBACK"
        # single-bind transactions still work
        c.run("BEGIN")
        o = ins(c, "orders", tag)
        assert c.run("COMMIT") == "COMMIT"
    finally:
        c.close()
    assert where(px_rej.env, tag) == expect(orders=[o])


def test_reject_mode_refuses_multi_bind_query(px_rej):
    tag = new_tag()
    c = px_rej.connect2()
    c.autocommit = True
    try:
        import psycopg2

        with pytest.raises(psycopg2.Error) as ei:
            c.cursor().execute(_multi(tag, {"products": nid(), "orders": nid()}))
        assert ei.value.pgcode == "0A000"
    finally:
        c.close()
    nothing_anywhere(px_rej.env, tag)


# --------------------------------------------------------------------------------------------------------------
# Two participants that cannot prepare (two SQLite binds) under two_phase
# --------------------------------------------------------------------------------------------------------------
def test_two_sqlite_binds_commit_with_warning(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    v = ins(cl, "page_views", tag)
    k = ins(cl, "clicks", tag)
    p = ins(cl, "products", tag)
    assert cl.run("COMMIT") == "COMMIT"
    assert where(px.env, tag) == expect(page_views=[v], clicks=[k], products=[p])
    warnings = [n for n in cl.notices() if n.startswith("WARNING")]
    assert any("views" in w and "views2" in w for w in warnings), cl.notices()
    assert_nothing_prepared(px)


def test_one_sqlite_bind_commits_without_warning(px, cl):
    tag = new_tag()
    cl.run("BEGIN")
    ins(cl, "page_views", tag)
    ins(cl, "orders", tag)
    ins(cl, "products", tag)
    assert cl.run("COMMIT") == "COMMIT"
    assert len(where(px.env, tag)["page_views"]) == 1
    assert not [n for n in cl.notices() if n.startswith("WARNING")], cl.notices()


# --------------------------------------------------------------------------------------------------------------
# MySQL DDL inside a transaction
# --------------------------------------------------------------------------------------------------------------
def my_table_exists(env: TxEnv, name: str) -> bool:
    with my_admin(env.my_orders) as c, c.cursor() as cur:
        cur.execute("SHOW TABLES LIKE %s", (name,))
        return bool(cur.fetchall())


def test_mysql_ddl_in_transaction(px, client_kind):
    c = make_client(client_kind, px)
    try:
        tag = new_tag()
        t1 = f"ord_ddl_{nid()}"
        c.run("BEGIN")
        ins(c, "products", tag)  # main joined; MariaDB has done nothing yet
        assert c.run(f"CREATE TABLE {t1} (id int PRIMARY KEY, tag text)") == "CREATE TABLE"
        assert [n for n in c.notices() if n.startswith("NOTICE")], c.notices()
        ins(c, t1, tag)
        ins(c, "orders", tag)
        assert c.run("ROLLBACK") == "ROLLBACK"
        assert my_table_exists(px.env, t1), "the DDL ran at once (MariaDB commits DDL implicitly)"
        nothing_anywhere(px.env, tag)
        assert my_ids(px.env.my_orders, t1, tag) == []

        t0 = f"ord_ddl_{nid()}"
        c.run("BEGIN")
        n_before = len(c.notices())
        assert c.run(f"CREATE TABLE {t0} (id int PRIMARY KEY, tag text)") == "CREATE TABLE"  # first statement
        assert [n for n in c.notices()[n_before:] if n.startswith("NOTICE")], c.notices()
        ins(c, "users", tag)
        assert c.run("ROLLBACK") == "ROLLBACK"
        assert my_table_exists(px.env, t0)
        nothing_anywhere(px.env, tag)

        t2 = f"ord_ddl_{nid()}"
        c.run("BEGIN")
        ins(c, "orders", tag)  # the MariaDB participant has done something
        fails("0A000", c.run, f"CREATE TABLE {t2} (id int PRIMARY KEY)")
        fails("25P02", ins, c, "products", tag)
        c.run("ROLLBACK")
        assert not my_table_exists(px.env, t2)
        nothing_anywhere(px.env, tag)
    finally:
        c.close()
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# The client goes away mid-transaction
# --------------------------------------------------------------------------------------------------------------
def test_disconnect_mid_transaction_leaves_nothing(px, client_kind):
    env = px.env
    ids = {t: nid() for t in ("products", "users", "orders")}
    for t, i in ids.items():
        seed(env, t, i, "seed")
    c = make_client(client_kind, px)
    c.run("BEGIN")
    for t, i in ids.items():
        assert c.run(f"UPDATE {t} SET tag = %s WHERE id = %s", ("dirty", i)) == "UPDATE 1"
    ins(c, "page_views", "dirty-" + str(ids["products"]))
    c.abort()  # the socket closes: no Terminate, no ROLLBACK
    try:
        c.close()
    except Exception:  # noqa: BLE001
        pass

    # no lock is held: direct connections with short lock timeouts update the same rows at once
    t0 = time.monotonic()
    for t, db in (("products", env.pg_main), ("users", env.pg_users)):
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db) as d:
            d.execute("SET lock_timeout = '3s'")
            assert d.execute(f"UPDATE {t} SET tag = 'probe' WHERE id = %s", (ids[t],)).rowcount == 1
            d.rollback()
    m = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password="", database=env.my_orders,
                        autocommit=False)
    try:
        with m.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 3")
            assert cur.execute("UPDATE orders SET tag = 'probe' WHERE id = %s", (ids["orders"],)) == 1
        m.rollback()
    finally:
        m.close()
    assert time.monotonic() - t0 < 6

    # nothing was committed
    for t, i in ids.items():
        assert where(env, "dirty")[t] == [] and i in where(env, "seed")[t]
    assert lite_ids(env.lite_views, "page_views", "dirty-" + str(ids["products"])) == []
    assert_nothing_prepared(px)

    # no backend connection stays inside a transaction
    def idle_in_tx():
        with pg_admin() as a:
            return a.execute("SELECT count(*) FROM pg_stat_activity WHERE datname IN (%s, %s) "
                             "AND state LIKE 'idle in transaction%%'", (env.pg_main, env.pg_users)).fetchone()[0]
    assert wait_until(lambda: idle_in_tx() == 0, timeout=3), "a pooled connection is still in a transaction"

    # a new client through the proxy locks and updates the same rows at once
    after = new_tag()
    with px.connect(options="-c lock_timeout=3s") as n:
        n.execute("BEGIN")
        for t, i in ids.items():
            assert n.execute(f"UPDATE {t} SET tag = %s WHERE id = %s", (after, i)).rowcount == 1
        n.execute("COMMIT")
    for t, i in ids.items():
        assert where(env, after)[t] == [i]
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# SQLAlchemy ORM
# --------------------------------------------------------------------------------------------------------------
SA_DRIVERS = {"psycopg2": "postgresql+psycopg2", "psycopg3": "postgresql+psycopg"}


def sa_models():
    class Base(DeclarativeBase):
        pass

    def model(table):
        return type(table.title().replace("_", ""), (Base,), {
            "__tablename__": table,
            "id": mapped_column(Integer, primary_key=True, autoincrement=False),
            "tag": mapped_column(String(64)),
            "__annotations__": {"id": Mapped[int], "tag": Mapped[str]},
        })

    return Base, {t: model(t) for t in FOUR}


@pytest.mark.parametrize("driver", list(SA_DRIVERS))
def test_sqlalchemy_session_commit_rollback_and_integrity_error(px, driver):
    _, M = sa_models()
    engine = create_engine(px.url.replace("postgresql", SA_DRIVERS[driver], 1))
    tag = new_tag()
    try:
        ids = {t: nid() for t in FOUR}
        with Session(engine) as s:
            s.add_all([M[t](id=i, tag=tag) for t, i in ids.items()])
            s.commit()
        with Session(engine) as s:
            s.add_all([M[t](id=nid(), tag=tag) for t in FOUR])
            s.flush()
            s.rollback()
        dup = nid()
        seed(px.env, "users", dup)
        with Session(engine) as s:
            s.add(M["products"](id=nid(), tag=tag))
            s.add(M["orders"](id=nid(), tag=tag))
            s.add(M["page_views"](id=nid(), tag=tag))
            s.flush()
            s.add(M["users"](id=dup, tag=tag))
            with pytest.raises(IntegrityError):
                s.commit()
            s.rollback()
    finally:
        engine.dispose()
    assert where(px.env, tag) == expect(**{t: [i] for t, i in ids.items()})
    assert_nothing_prepared(px)


@pytest.mark.parametrize("driver", list(SA_DRIVERS))
def test_flask_sqlalchemy_like_app(px, driver):
    """One engine at the proxy, four declarative models without bind keys, create_all on an empty setup,
    one Session, one commit: each row on its own backend."""
    n = nid()
    names = {"products": f"fl{n}_products", "users": f"fl{n}_users", "orders": f"fl{n}_orders",
             "views": f"fl{n}_views"}

    class Base(DeclarativeBase):
        pass

    class Product(Base):
        __tablename__ = names["products"]
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(80))

    class User(Base):
        __tablename__ = names["users"]
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(120), unique=True)

    class Order(Base):
        __tablename__ = names["orders"]
        id: Mapped[int] = mapped_column(primary_key=True)
        note: Mapped[str] = mapped_column(String(80))

    class PageView(Base):
        __tablename__ = names["views"]
        id: Mapped[int] = mapped_column(primary_key=True)
        path: Mapped[str] = mapped_column(String(200))

    engine = create_engine(px.url.replace("postgresql", SA_DRIVERS[driver], 1))
    env = px.env
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all([Product(name="lamp"), User(email=f"{n}@example.org"), Order(note="first"),
                       PageView(path="/home")])
            s.commit()
    finally:
        engine.dispose()
    with pg_direct(env.pg_main) as d:
        assert d.execute(f"SELECT name FROM {names['products']}").fetchall() == [("lamp",)]
        assert d.execute("SELECT to_regclass(%s)", (names["users"],)).fetchone() == (None,)
    with pg_direct(env.pg_users) as d:
        assert d.execute(f"SELECT email FROM {names['users']}").fetchall() == [(f"{n}@example.org",)]
    with my_admin(env.my_orders) as m, m.cursor() as cur:
        cur.execute(f"SELECT note FROM `{names['orders']}`")
        assert cur.fetchall() == (("first",),)
    lc = sqlite3.connect(env.lite_views)
    try:
        assert lc.execute(f"SELECT path FROM {names['views']}").fetchall() == [("/home",)]
    finally:
        lc.close()
    assert_nothing_prepared(px)


# --------------------------------------------------------------------------------------------------------------
# A statement that only lists objects of several binds runs each bind's share, in one transaction
# --------------------------------------------------------------------------------------------------------------
def _list_tables(px, n: int) -> dict[str, str]:
    """Four fresh tables, one per kind of bind, created through the proxy: table -> bind."""
    return {f"lst{n}_main": "main", f"fl{n}_users": "users", f"fl{n}_orders": "orders", f"fl{n}_views": "views"}


def _count_direct(env: TxEnv, table: str, bind: str) -> int | None:
    """Rows of `table` on `bind`, read directly; None when the table does not exist there."""
    try:
        if bind in ("main", "users"):
            with pg_direct(env.pg_main if bind == "main" else env.pg_users) as c:
                return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if bind == "orders":
            with my_admin(env.my_orders) as c, c.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {table}")
                return cur.fetchone()[0]
        with sqlite3.connect(env.lite_views) as c:
            return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except (psycopg.Error, pymysql.err.ProgrammingError, sqlite3.OperationalError):
        return None


def test_truncate_and_drop_lists_across_binds(px):
    import psycopg2

    tables = _list_tables(px, nid())
    c = px.connect2()
    c.autocommit = True
    cur = c.cursor()
    for t in tables:
        cur.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, tag text)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'x'), (2, 'y')")
    names = ", ".join(tables)
    # (MySQL and SQLite binds have no TRUNCATE: docs/sql-subset.md)
    truncatable = {t: b for t, b in tables.items() if b in ("main", "users")}
    # inside a transaction that rolls back, the PostgreSQL shares come back
    cur.execute("BEGIN")
    cur.execute(f"TRUNCATE {', '.join(t for t, b in tables.items() if b in ('main', 'users'))}")
    assert cur.statusmessage == "TRUNCATE TABLE"  # one tag for the client's one statement
    cur.execute("ROLLBACK")
    for t, b in tables.items():
        assert _count_direct(px.env, t, b) == 2, (t, b)
    # one TRUNCATE naming tables of two binds: each bind truncates its own
    cur.execute(f"TRUNCATE {', '.join(truncatable)}")
    assert cur.statusmessage == "TRUNCATE TABLE"
    for t, b in tables.items():
        assert _count_direct(px.env, t, b) == (0 if t in truncatable else 2), (t, b)
    # a table that does not exist fails the whole statement: nothing is dropped anywhere
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute(f"DROP TABLE {names}, lst_nope_{nid()}")
    assert ei.value.pgcode in ("42P01", "0A000"), ei.value
    for t, b in tables.items():
        assert _count_direct(px.env, t, b) is not None, (t, b)
    cur.execute(f"DROP TABLE IF EXISTS {names}")
    assert cur.statusmessage == "DROP TABLE"
    for t, b in tables.items():
        assert _count_direct(px.env, t, b) is None, (t, b)
    c.close()


def test_truncate_list_refused_under_reject(px_rej):
    import psycopg2

    c = px_rej.connect2()
    c.autocommit = True
    cur = c.cursor()
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute("TRUNCATE products, users")
    assert ei.value.pgcode == "0A000"
    c.close()


def test_cancel_a_query_across_binds(px):
    """A CancelRequest stops the piece running on a PostgreSQL bind; the whole string rolls back."""
    import threading

    import psycopg2
    import psycopg2.extensions

    tag = new_tag()
    c = px.connect2()
    c.autocommit = True
    cur = c.cursor()
    timer = threading.Timer(1.0, c.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute(f"INSERT INTO orders (id, tag) VALUES ({nid()}, '{tag}'); "
                    f"INSERT INTO products (id, tag) VALUES ({nid()}, '{tag}'); SELECT pg_sleep(20)")
    timer.join()
    assert ei.value.pgcode == "57014", ei.value
    assert time.monotonic() - started < 10
    nothing_anywhere(px.env, tag)
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()
