"""Read replicas of a PostgreSQL bind (issue 10): which statements a replica runs, read-your-writes, lag and
outage exclusion, round-robin.

The setup builds a real streaming-replication cluster in a temp dir: a throwaway primary (initdb, a
pg_hba.conf that allows replication from 127.0.0.1; the shared server is left alone) and two standbys made
with `pg_basebackup -R`, each its own postmaster on a free port. Where a statement ran is read from the
statement itself: `pg_is_in_recovery()` and `inet_server_port()` in its select list, so every assertion
names the server that answered.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
import json
import signal
from pathlib import Path

import asyncpg
import psycopg
import pytest

from conftest import PROXY_USER, Proxy, free_port, to_yaml, wait_until

ADMIN = "replica_admin"
# with admin_users, database `bindproxy` is the admin console: clients use another name
PROXY_DBNAME = "app"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WHERE = "SELECT pg_is_in_recovery(), inet_server_port() FROM items WHERE id = 1"
LAG_MAX_MS = 400
READ_YOUR_WRITES_MS = 1500


def as_postgres(*cmd: str) -> tuple:
    return ("runuser", "-u", "postgres", "--", *cmd) if os.geteuid() == 0 else ("sudo", "-n", "-u", "postgres", *cmd)


def run(*cmd: str) -> str:
    p = subprocess.run(as_postgres(*cmd), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


class Server:
    def __init__(self, datadir: Path, port: int):
        self.datadir, self.port = datadir, port

    def configure(self):
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{self.datadir}'\nport = {self.port}\n"
                    "fsync = off\nmax_connections = 40\nshared_buffers = 16MB\nhot_standby = on\n"
                    "wal_level = replica\nmax_wal_senders = 10\n")

    def start(self):
        run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "log"), "-w", "-t", "60", "start")

    def stop(self):
        subprocess.run(as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               sslmode="disable", autocommit=True)

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"


@pytest.fixture(scope="module")
def cluster():
    """(primary, [replica1, replica2]): real streaming replication, all in a temp dir."""
    base = Path(tempfile.mkdtemp(prefix="bp-replicas-"))
    base.chmod(0o755)
    shutil.chown(base, "postgres", "postgres")
    primary = Server(base / "primary", free_port())
    run(str(PG_BIN / "initdb"), "-D", str(primary.datadir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
        "--locale=C")
    primary.configure()
    (primary.datadir / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
    started = []
    try:
        primary.start()
        started.append(primary)
        with primary.connect() as c:
            c.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
            c.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
            c.execute("CREATE SEQUENCE item_ids START 100")
        replicas = []
        for i in (1, 2):
            r = Server(base / f"replica{i}", free_port())
            run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", str(r.datadir), "-R", "-X", "stream", "--no-sync")
            r.configure()
            r.start()
            started.append(r)
            replicas.append(r)
        for r in replicas:
            with r.connect() as c:
                assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 2
        yield primary, replicas
    finally:
        for s in started:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def proxy(cluster, tmp_path_factory):
    primary, replicas = cluster
    config = {
        "default_bind": "main",
        "admin_http": "127.0.0.1:0",
        "binds": {
            "main": {
                "url": primary.url(),
                "pool_size": 8,
                "replicas": [r.url() for r in replicas],
                "replica_lag_max_ms": LAG_MAX_MS,
                "read_your_writes_ms": READ_YOUR_WRITES_MS,
            },
        },
        "tables": {"items": "main", "item_ids": "main"},
        "admin_users": [ADMIN],
    }
    p = Proxy(config, tmp_path_factory.mktemp("replicas"), name="replicas").start()
    yield p
    p.stop()


def admin_port(proxy: Proxy) -> int:
    def find():
        m = re.findall(r"admin_http: /healthz /readyz /metrics addr=127\.0\.0\.1:(\d+)", proxy.log_tail(200))
        return int(m[-1]) if m else None
    port = wait_until(find, timeout=10)
    assert port, proxy.log_tail()
    return port


def readyz(proxy: Proxy) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(proxy)}/readyz", timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def replica_states(proxy: Proxy) -> list[dict]:
    return next(b for b in readyz(proxy)["binds"] if b["name"] == "main")["replicas"]


def wait_replicas_usable(proxy: Proxy, usable: bool = True, timeout: float = 15.0):
    ok = wait_until(lambda: all(r["usable"] == usable for r in replica_states(proxy)), timeout=timeout,
                    interval=0.2)
    assert ok, (replica_states(proxy), proxy.log_tail())


def connect(proxy: Proxy, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=proxy.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                           autocommit=autocommit)


def where(c: psycopg.Connection, sql: str = WHERE) -> tuple[bool, int]:
    return tuple(c.execute(sql).fetchone()[-2:])


def metric(proxy: Proxy, name: str, bind: str = "main") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(proxy)}/metrics", timeout=10) as r:
        body = r.read().decode()
    m = re.search(rf'^{name}{{bind="{bind}"}} (\S+)$', body, re.M)
    return float(m.group(1)) if m else 0.0


# --------------------------------------------------------------------------------------------------------------
def test_plain_reads_go_to_a_replica_round_robin(cluster, proxy):
    primary, replicas = cluster
    wait_replicas_usable(proxy)
    before = metric(proxy, "bindproxy_replica_statements_total")
    seen = set()
    conns = [connect(proxy) for _ in range(4)]
    try:
        for c in conns:
            in_recovery, port = where(c)
            assert in_recovery, "a plain SELECT outside a transaction must run on a replica"
            seen.add(port)
            # the session keeps its replica lease: the same replica again, simple protocol too
            cur = c.cursor()
            cur.execute(WHERE, prepare=False)
            assert tuple(cur.fetchone()) == (True, port)
    finally:
        for c in conns:
            c.close()
    assert seen == {r.port for r in replicas}, "sessions are spread over both replicas"
    assert metric(proxy, "bindproxy_replica_statements_total") - before == 8


def test_what_must_run_on_the_primary(cluster, proxy):
    primary, _ = cluster
    wait_replicas_usable(proxy)
    with connect(proxy) as c:
        assert where(c)[0]
        cases = [
            WHERE + " FOR UPDATE",
            WHERE + " FOR SHARE",
            "SELECT nextval('item_ids'), pg_is_in_recovery(), inet_server_port() FROM items WHERE id = 1",
            "SELECT set_config('application_name', 'x', false), pg_is_in_recovery(), inet_server_port() "
            "FROM items WHERE id = 1",
            "WITH d AS (UPDATE items SET label = label WHERE id = 2 RETURNING id) "
            "SELECT pg_is_in_recovery(), inet_server_port() FROM items, d",
        ]
        for sql in cases:
            assert where(c, sql) == (False, primary.port), sql
            time.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)  # each counted as a write: let the window pass
            assert where(c)[0], f"after {sql!r} and its window, reads go back to a replica"


def test_inside_a_transaction_everything_runs_on_the_primary(cluster, proxy):
    primary, _ = cluster
    wait_replicas_usable(proxy)
    with connect(proxy, autocommit=False) as c:
        assert where(c) == (False, primary.port)
        assert where(c) == (False, primary.port)
        c.rollback()
    with connect(proxy) as c:
        assert where(c)[0]
        c.execute("BEGIN")
        assert where(c) == (False, primary.port)
        c.execute("COMMIT")
        # the COMMIT counts as a write
        assert where(c) == (False, primary.port)
        time.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)
        assert where(c)[0]


def test_read_your_writes(cluster, proxy, uid):
    primary, _ = cluster
    wait_replicas_usable(proxy)
    with connect(proxy) as c, connect(proxy) as other:
        assert where(c)[0] and where(other)[0]
        n = 1000 + uid()
        c.execute("INSERT INTO items VALUES (%s, 'ryw')", (n,))
        started = time.monotonic()
        row = c.execute("SELECT label, pg_is_in_recovery(), inet_server_port() FROM items WHERE id = %s",
                        (n,)).fetchone()
        assert time.monotonic() - started < READ_YOUR_WRITES_MS / 1000
        assert tuple(row) == ("ryw", False, primary.port), "the writer reads its write on the primary"
        # another client did not write: its reads stay on its replica
        assert where(other)[0]
        time.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)
        row = c.execute("SELECT label, pg_is_in_recovery() FROM items WHERE id = %s", (n,)).fetchone()
        assert tuple(row) == ("ryw", True), "after read_your_writes_ms the replica serves (and has the row)"


def test_named_prepared_statements_follow_the_transaction(cluster, proxy):
    """asyncpg prepares named statements: one prepared outside a transaction (on a replica) runs on the
    primary inside one, and on the replica again after it and its window."""
    primary, _ = cluster
    wait_replicas_usable(proxy)

    async def go():
        c = await asyncpg.connect(host="127.0.0.1", port=proxy.port, user=PROXY_USER, database=PROXY_DBNAME)
        try:
            stmt = await c.prepare(WHERE)
            assert tuple(await stmt.fetchrow())[0] is True
            async with c.transaction():
                assert tuple(await stmt.fetchrow()) == (False, primary.port)
                # a replica-safe statement prepared inside the transaction
                inner = await c.prepare(WHERE + " AND id > 0")
                assert tuple(await inner.fetchrow()) == (False, primary.port)
            await asyncio.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)
            assert tuple(await stmt.fetchrow())[0] is True
            assert tuple(await inner.fetchrow())[0] is True
            # asyncpg's own fetch with parameters
            assert (await c.fetchrow("SELECT label, pg_is_in_recovery() FROM items WHERE id = $1", 1))[1] is True
        finally:
            await c.close()

    asyncio.run(go())


def test_a_lagging_replica_is_left_out(cluster, proxy, uid):
    primary, replicas = cluster
    wait_replicas_usable(proxy)
    for r in replicas:
        with r.connect() as c:
            c.execute("SELECT pg_wal_replay_pause()")
    try:
        with primary.connect() as c:
            c.execute("INSERT INTO items VALUES (%s, 'lag')", (2000 + uid(),))
        # more than replica_lag_max_ms and a monitor round later: both excluded
        wait_replicas_usable(proxy, usable=False, timeout=10)
        states = replica_states(proxy)
        assert all("lag" in (r["error"] or "") for r in states), states
        with connect(proxy) as c:
            assert where(c) == (False, primary.port)
        assert readyz(proxy)["ready"], "lagging replicas do not make the bind unready"
    finally:
        for r in replicas:
            with r.connect() as c:
                c.execute("SELECT pg_wal_replay_resume()")
    wait_replicas_usable(proxy)
    with connect(proxy) as c:
        assert where(c)[0]


def test_replicas_down_the_primary_serves(cluster, proxy):
    primary, replicas = cluster
    wait_replicas_usable(proxy)
    held = connect(proxy)
    try:
        assert where(held)[0]  # this session holds a replica lease
        # a named statement prepared there (libpq's PQprepare: Parse + Sync)
        res = held.pgconn.prepare(b"held_stmt", WHERE.encode())
        assert res.status == psycopg.pq.ExecStatus.COMMAND_OK, res.error_message
        for r in replicas:
            r.stop()
        # at once, before the monitor has noticed: no client error
        with connect(proxy) as c:
            for _ in range(3):
                assert where(c) == (False, primary.port)
        for _ in range(3):
            assert where(held) == (False, primary.port)
        # its replica connection is gone: the statement is described and run on the primary
        res = held.pgconn.describe_prepared(b"held_stmt")
        assert res.status == psycopg.pq.ExecStatus.COMMAND_OK and res.nfields == 2, res.error_message
        res = held.pgconn.exec_prepared(b"held_stmt", [])
        assert res.status == psycopg.pq.ExecStatus.TUPLES_OK, res.error_message
        assert (res.get_value(0, 0), res.get_value(0, 1)) == (b"f", str(primary.port).encode())
        wait_replicas_usable(proxy, usable=False)
        assert readyz(proxy)["ready"]
    finally:
        held.close()
        for r in replicas:
            r.start()
    wait_replicas_usable(proxy)
    with connect(proxy) as c:
        assert where(c)[0]


def test_temporary_tables_keep_the_session_on_the_primary(cluster, proxy):
    """A temporary table exists in the primary's session only: after creating one, the session's reads of the
    bind stay on the primary, also after read_your_writes_ms; other sessions still read from replicas."""
    primary, _ = cluster
    wait_replicas_usable(proxy)
    with connect(proxy) as c, connect(proxy) as other:
        assert where(c)[0]
        c.execute("CREATE TEMP TABLE scratch_rows AS SELECT id FROM items")
        time.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)
        assert c.execute("SELECT count(*), pg_is_in_recovery() FROM scratch_rows").fetchone()[1] is False
        assert where(c) == (False, primary.port)
        assert where(other)[0]


def test_session_settings_reach_the_replica_connection(cluster, proxy):
    """Startup parameters and session SETs apply to the replica lease as to the primary's."""
    wait_replicas_usable(proxy)
    with psycopg.connect(host="127.0.0.1", port=proxy.port, user=PROXY_USER, dbname=PROXY_DBNAME, autocommit=True,
                         application_name="replica-app") as c:
        row = c.execute("SELECT current_setting('application_name'), pg_is_in_recovery() FROM items "
                        "WHERE id = 1").fetchone()
        assert tuple(row) == ("replica-app", True)
        # a SET on the default bind, replayed on the replica lease (and not a write: no read-your-writes wait)
        c.execute("SET statement_timeout = '12s'")
        row = c.execute("SELECT current_setting('statement_timeout'), pg_is_in_recovery() FROM items "
                        "WHERE id = 1").fetchone()
        assert tuple(row) == ("12s", True)


def test_a_pipeline_that_writes_reads_its_write_on_the_primary(cluster, proxy, uid):
    primary, _ = cluster
    wait_replicas_usable(proxy)
    n = 3000 + uid()
    with connect(proxy) as c:
        with c.pipeline():
            first = c.execute(WHERE)
            c.execute("INSERT INTO items VALUES (%s, 'piped')", (n,))
            after = c.execute("SELECT label, pg_is_in_recovery(), inet_server_port() FROM items WHERE id = %s", (n,))
        assert tuple(first.fetchone())[0] is True, "the pipeline's first read, before any write, on a replica"
        assert tuple(after.fetchone()) == ("piped", False, primary.port)
        time.sleep(READ_YOUR_WRITES_MS / 1000 + 0.2)
        assert where(c)[0]


def test_admin_console_pools_and_pause(cluster, proxy):
    """SHOW POOLS lists each replica's pool; PAUSE of a bind holds its reads on replicas too."""
    import threading

    wait_replicas_usable(proxy)

    def console():
        return psycopg.connect(host="127.0.0.1", port=proxy.port, user=ADMIN, dbname="bindproxy", autocommit=True)

    with connect(proxy) as c:
        assert where(c)[0]  # this session holds a replica lease
        with console() as adm:
            pools = {r[0]: r for r in adm.execute("SHOW POOLS").fetchall()}
            assert {"main (replica 1)", "main (replica 2)"} <= set(pools), pools
            assert sum(pools[f"main (replica {i})"][1] for i in (1, 2)) >= 1, pools
            adm.execute("PAUSE main")
            done = {}
            t = threading.Thread(target=lambda: done.setdefault("row", where(c)))
            t.start()
            time.sleep(0.7)
            assert "row" not in done, "a read for a paused bind waits, on a replica too"
            adm.execute("RESUME main")
            t.join(10)
            assert done["row"][0] is True


# --------------------------------------------------------------------------------------------------------------
def app_sessions(server: Server, app: str) -> int:
    with server.connect() as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]


def test_a_reload_that_replaces_the_bind_brings_its_new_replicas(cluster, tmp_path):
    """A reload that changes a bind with replicas (its pool size and its replica list) opens a new slot with
    its own replica set: reads, on a session opened before the reload too (a prepared one included), go to
    the new slot's replica; the old replica's connection of that session is given back and closed."""
    primary, (r1, r2) = cluster
    app = "replica-reload"
    config = {
        "default_bind": "main",
        "admin_http": "127.0.0.1:0",
        "binds": {"main": {"url": primary.url(), "pool_size": 4, "replicas": [r1.url()],
                           "replica_lag_max_ms": LAG_MAX_MS, "read_your_writes_ms": READ_YOUR_WRITES_MS}},
        "tables": {"items": "main", "item_ids": "main"},
    }
    p = Proxy(config, tmp_path, name="replicas-reload").start()
    try:
        def states():
            return next(b for b in readyz(p)["binds"] if b["name"] == "main")["replicas"]

        def usable_on(port: int) -> bool:
            s = states()
            return len(s) == 1 and s[0]["usable"] and f":{port}/" in s[0]["target"]

        assert wait_until(lambda: usable_on(r1.port), timeout=15, interval=0.2), (states(), p.log_tail())
        before = psycopg.connect(host="127.0.0.1", port=p.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                                 autocommit=True, application_name=app)
        try:
            assert where(before) == (True, r1.port)
            cur = before.cursor()
            cur.execute(WHERE, prepare=True)
            assert tuple(cur.fetchone()) == (True, r1.port), "a prepared read runs on the replica"
            assert app_sessions(r1, app) == 1, "the session holds a lease on replica 1"

            cfg = dict(config)
            cfg["binds"] = {"main": {**config["binds"]["main"], "pool_size": 5, "replicas": [r2.url()]}}
            last = len(p.log_path.read_text(errors="replace"))
            p.config_path.write_text(to_yaml(cfg) + "\n")
            os.kill(p.proc.pid, signal.SIGHUP)
            assert wait_until(lambda: "reloaded" in p.log_path.read_text(errors="replace")[last:], timeout=10), \
                p.log_tail()
            assert "binds replaced" in p.log_path.read_text(errors="replace")[last:], p.log_tail()
            assert wait_until(lambda: usable_on(r2.port), timeout=15, interval=0.2), (states(), p.log_tail())

            # the session opened before the reload reads on the new slot's replica, plainly and prepared
            assert where(before) == (True, r2.port)
            cur.execute(WHERE, prepare=True)
            assert tuple(cur.fetchone()) == (True, r2.port), "the prepared read follows the replaced bind"
            # its lease on the old slot's replica was given back, and the retired pool closed it
            assert wait_until(lambda: app_sessions(r1, app) == 0, timeout=10), app_sessions(r1, app)
            assert app_sessions(r2, app) == 1

            # a new session too; writes still go to the primary, and read-your-writes holds on the new slot
            with psycopg.connect(host="127.0.0.1", port=p.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                                 autocommit=True, application_name=app) as after:
                assert where(after) == (True, r2.port)
                wrote = after.execute("SELECT nextval('item_ids'), pg_is_in_recovery(), inet_server_port() "
                                      "FROM items WHERE id = 1").fetchone()
                assert tuple(wrote[1:]) == (False, primary.port)
                assert where(after) == (False, primary.port), "read-your-writes: the primary right after a write"
        finally:
            before.close()
    finally:
        p.stop()
