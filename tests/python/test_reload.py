"""Configuration reload (SIGHUP) while clients run (issue 10, "Reload and shutdown").

Four PostgreSQL databases of this run (rl_a, rl_b, rl_c, rl_x) each hold the same tables; `marker` holds the
name of its own database, so `SELECT max(db) FROM marker` says WHERE a statement ran, and every write is checked
on the databases directly. bindproxy runs on a config file on disk; the test rewrites the file and sends SIGHUP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psycopg
import pytest

from conftest import PREFIX, Proxy, bindproxy_bin, pg_admin, pg_direct, pg_url, to_yaml, wait_until

DBS = ["a", "b", "c", "x"]
SCHEMA = """
CREATE TABLE marker (db text);
INSERT INTO marker VALUES (current_database());
CREATE TABLE notes (id int, txt text);
CREATE TABLE xtab (id int);
CREATE TABLE ytab (id int);
"""


@pytest.fixture(scope="module")
def dbs(backends):
    names = {k: f"{PREFIX}rl_{k}" for k in DBS}
    with pg_admin() as c:
        for n in names.values():
            c.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{n}"')
    for n in names.values():
        with pg_direct(n) as c:
            c.execute(SCHEMA)
    yield names
    with pg_admin() as c:
        for n in names.values():
            c.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def url(dbs, k: str, app: str | None = None) -> str:
    u = pg_url(dbs[k]) + "?sslmode=disable"
    return u + (f"&application_name={app}" if app else "")


def base_config(dbs) -> dict:
    return {
        "default_bind": "a",
        "catalog": "off",
        "binds": {"a": url(dbs, "a"), "b": url(dbs, "b"), "x": url(dbs, "x")},
        "tables": {"marker": "a", "notes": "a", "xtab": "x"},
    }


@pytest.fixture
def reloadable(dbs, backends, request):
    """A bindproxy started on a config file; `.reload(binds=..., tables=...)` rewrites it and sends SIGHUP."""
    p = Proxy(base_config(dbs), backends.tmpdir, name=f"reload-{request.node.name}")
    p.start()
    for n in dbs.values():
        with pg_direct(n) as c:
            c.execute("TRUNCATE notes, xtab, ytab")
    yield p
    p.stop()


def rewrite(p: Proxy, text: str) -> None:
    p.config_path.write_text(text)


def sighup_and_wait(p: Proxy, needle: str) -> str:
    """Sends SIGHUP and waits for a new log line containing `needle`; returns the new part of the log."""
    before = len(p.log_path.read_text(errors="replace"))
    os.kill(p.proc.pid, signal.SIGHUP)
    got = wait_until(lambda: needle in p.log_path.read_text(errors="replace")[before:], timeout=10)
    new = p.log_path.read_text(errors="replace")[before:]
    assert got, f"no {needle!r} in the log after SIGHUP:\n{new}"
    return new


def reload_with(p: Proxy, **changes) -> str:
    cfg = dict(p.config)
    cfg.update(changes)
    rewrite(p, to_yaml(cfg) + "\n")
    return sighup_and_wait(p, "reloaded")


def where(conn) -> str:
    return conn.execute("SELECT max(db) FROM marker").fetchone()[0]


def rows(db: str, sql: str) -> list[tuple]:
    with pg_direct(db) as c:
        return c.execute(sql).fetchall()


def test_moved_table_new_statements_follow_open_transaction_stays(reloadable, dbs):
    p = reloadable
    idle = p.connect()
    assert where(idle) == dbs["a"]
    tx = p.connect(autocommit=False)
    tx.execute("INSERT INTO notes VALUES (1, 'before reload')")
    assert where(tx) == dbs["a"]

    log = reload_with(p, tables={"marker": "b", "notes": "b", "xtab": "x"})
    assert "table rule(s) changed" in log

    # new statements, on a new connection and on one opened before the reload, see the new map
    with p.connect() as fresh:
        assert where(fresh) == dbs["b"]
    assert where(idle) == dbs["b"]
    idle.execute("INSERT INTO notes VALUES (3, 'after reload')")
    # the transaction open during the reload keeps its map and commits where it started
    tx.execute("INSERT INTO notes VALUES (2, 'in the open transaction')")
    assert where(tx) == dbs["a"]
    tx.commit()
    assert rows(dbs["a"], "SELECT id FROM notes ORDER BY id") == [(1,), (2,)]
    assert rows(dbs["b"], "SELECT id FROM notes ORDER BY id") == [(3,)]
    # after its transaction the session follows the new map too
    assert where(tx) == dbs["b"]
    tx.close()
    idle.close()


def test_invalid_file_keeps_running_config(reloadable, dbs):
    p = reloadable
    with p.connect() as c:
        assert where(c) == dbs["a"]
        rewrite(p, "binds: [unclosed\n")
        log = sighup_and_wait(p, "reload failed")
        assert str(p.config_path) in log
        assert p.alive()
        assert where(c) == dbs["a"]

        cfg = dict(p.config)
        cfg["tables"] = {"marker": "nosuch"}
        rewrite(p, to_yaml(cfg) + "\n")
        log = sighup_and_wait(p, "reload failed")
        line = next(ln for ln in log.splitlines() if "reload failed" in ln)
        assert str(p.config_path) in line and "tables.marker" in line and "nosuch" in line, line
        assert p.alive()
        assert where(c) == dbs["a"]
    with p.connect() as c:
        assert where(c) == dbs["a"]


def app_connections(app: str) -> int:
    with pg_admin() as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                         (app,)).fetchone()[0]


def app_activity(app: str) -> list[tuple]:
    with pg_admin() as c:
        return c.execute("SELECT pid, state, query, backend_start FROM pg_stat_activity WHERE application_name = %s",
                         (app,)).fetchall()


def test_changed_url_drains_old_pool(reloadable, dbs):
    p = reloadable
    old_app, new_app = f"rl_old_{os.getpid()}", f"rl_new_{os.getpid()}"
    binds = dict(p.config["binds"])
    binds["a"] = url(dbs, "a", old_app)
    reload_with(p, binds=binds)
    idle = p.connect()
    assert where(idle) == dbs["a"]
    tx = p.connect(autocommit=False)
    tx.execute("INSERT INTO notes VALUES (1, 'old pool')")
    # a session that leased on the old pool and then says nothing more
    sleeper = p.connect()
    assert where(sleeper) == dbs["a"]
    assert app_connections(old_app) == 3

    binds["a"] = url(dbs, "c", new_app)
    log = reload_with(p, binds=binds)
    assert "binds replaced" in log and "a" in log
    # new statements go to the new URL, also from a session that leased on the old pool
    assert where(idle) == dbs["c"]
    with p.connect() as fresh:
        assert where(fresh) == dbs["c"]
    # the transaction open on the old pool finishes there
    tx.execute("INSERT INTO notes VALUES (2, 'still old pool')")
    tx.commit()
    assert rows(dbs["a"], "SELECT id FROM notes ORDER BY id") == [(1,), (2,)]
    assert rows(dbs["c"], "SELECT count(*) FROM notes") == [(0,)]
    # its next statement leases from the new pool; the old pool's connections are all closed
    assert where(tx) == dbs["c"]
    assert wait_until(lambda: app_connections(old_app) == 0, timeout=10), app_activity(old_app)
    assert app_connections(new_app) >= 1
    # the sleeper's lease went back without a statement from it; it uses the new pool when it speaks
    assert where(sleeper) == dbs["c"]
    tx.close()
    idle.close()
    sleeper.close()
    assert p.alive()


def test_removed_bind_refuses_new_statements_open_transaction_finishes(reloadable, dbs):
    p = reloadable
    tx = p.connect(autocommit=False)
    tx.execute("INSERT INTO xtab VALUES (1)")

    binds = {k: v for k, v in p.config["binds"].items() if k != "x"}
    log = reload_with(p, binds=binds, tables={"marker": "a", "notes": "a"})
    assert "binds removed: x" in log

    with p.connect() as c:
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT count(*) FROM xtab")
        assert e.value.sqlstate == "57P04"
        assert 'bind "x"' in str(e.value) and "removed" in str(e.value)
        # the session carries on
        assert where(c) == dbs["a"]
        with pytest.raises(psycopg.Error) as e:
            c.execute("INSERT INTO xtab VALUES (99)")
        assert e.value.sqlstate == "57P04"
    # the open transaction on the removed bind finishes
    tx.execute("INSERT INTO xtab VALUES (2)")
    tx.commit()
    assert rows(dbs["x"], "SELECT id FROM xtab ORDER BY id") == [(1,), (2,)]
    # nothing went to the default bind, which has a table of the same name
    assert rows(dbs["a"], "SELECT count(*) FROM xtab") == [(0,)]
    tx.close()


def test_added_bind_works_without_restart(reloadable, dbs):
    p = reloadable
    pid = p.proc.pid
    binds = dict(p.config["binds"])
    binds["y"] = url(dbs, "b")
    log = reload_with(p, binds=binds, tables={**p.config["tables"], "ytab": "y"})
    assert "binds added: y" in log
    with p.connect() as c:
        c.execute("INSERT INTO ytab VALUES (7)")
        assert c.execute("SELECT id FROM ytab").fetchall() == [(7,)]
        assert where(c) == dbs["a"]
    assert rows(dbs["b"], "SELECT id FROM ytab") == [(7,)]
    assert rows(dbs["a"], "SELECT count(*) FROM ytab") == [(0,)]
    assert p.proc.pid == pid and p.alive()


def test_restart_only_setting_is_kept_and_named(reloadable, dbs):
    p = reloadable
    cfg = dict(p.config)
    cfg["max_client_conn"] = 3
    cfg["tables"] = {**p.config["tables"], "marker": "b"}
    rewrite(p, to_yaml(cfg) + "\n")
    log = sighup_and_wait(p, "reloaded")
    assert "max_client_conn" in log
    # the rest of the file is in force; the cap is not (it needs a restart)
    conns = [p.connect() for _ in range(5)]
    assert where(conns[0]) == dbs["b"]
    for c in conns:
        c.close()


def test_route_and_check_cli_on_the_reloaded_file(reloadable, dbs):
    p = reloadable
    reload_with(p, tables={"marker": "b", "notes": "a", "xtab": "x"})
    r = subprocess.run([str(bindproxy_bin()), "route", "--config", str(p.config_path), "--json",
                        "SELECT * FROM marker"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bind"] == "b"
    r = subprocess.run([str(bindproxy_bin()), "check", "--config", str(p.config_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bind b: ok" in r.stdout


def test_catalog_follows_the_reloaded_map(dbs, backends):
    """With the shadow catalog (the default for several PostgreSQL binds), a reload that moves a table re-syncs
    the catalog: catalog queries then show the table as the bind it now lives on has it."""
    for k, col in (("a", "on_a"), ("b", "on_b")):
        with pg_direct(dbs[k]) as c:
            c.execute(f"DROP TABLE IF EXISTS moving; CREATE TABLE moving (id int, {col} int)")
    cfg = base_config(dbs)
    del cfg["catalog"]
    cfg["tables"] = {**cfg["tables"], "moving": "a"}
    p = Proxy(cfg, backends.tmpdir, name="reload-catalog")
    p.start()
    cols = ("SELECT column_name FROM information_schema.columns WHERE table_name = 'moving' "
            "ORDER BY ordinal_position")
    try:
        with p.connect() as c:
            assert [r[0] for r in c.execute(cols)] == ["id", "on_a"]
        log = reload_with(p, tables={**cfg["tables"], "moving": "b"})
        assert "catalog sync queued" in log
        with p.connect() as c:
            # a catalog query waits for the sync queued before it
            assert [r[0] for r in c.execute(cols)] == ["id", "on_b"]
            c.execute("INSERT INTO moving VALUES (1, 2)")
        assert rows(dbs["b"], "SELECT id, on_b FROM moving") == [(1, 2)]
        assert rows(dbs["a"], "SELECT count(*) FROM moving") == [(0,)]
    finally:
        p.stop()
        for k in ("a", "b"):
            with pg_direct(dbs[k]) as c:
                c.execute("DROP TABLE IF EXISTS moving")


def test_reloads_under_load_lose_nothing(reloadable, dbs):
    """Clients keep running transactions while the map flips between a and b: no error, and each transaction's
    rows are all on one database (the one its first statement saw)."""
    import threading

    p = reloadable
    stop = threading.Event()
    errors: list[BaseException] = []
    done: list[tuple[int, str]] = []  # (transaction id, database it reported)

    def worker(w: int):
        try:
            with p.connect(autocommit=False) as c:
                n = 0
                while not stop.is_set():
                    k = w * 100000 + n
                    c.execute("INSERT INTO notes VALUES (%s, 'first')", (k,))
                    seen = where(c)
                    c.execute("INSERT INTO notes VALUES (%s, 'second')", (k,))
                    c.commit()
                    done.append((k, seen))
                    n += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            target = "b" if i % 2 == 0 else "a"
            reload_with(p, tables={"marker": target, "notes": target, "xtab": "x"})
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert len(done) > 20, len(done)
    assert {seen for _, seen in done} == {dbs["a"], dbs["b"]}, "the map flipped under the clients"
    on = {k: {r[0]: r[1] for r in rows(dbs[k], "SELECT id, count(*) FROM notes GROUP BY id")} for k in ("a", "b")}
    for k, seen in done:
        home = "a" if seen == dbs["a"] else "b"
        other = "b" if home == "a" else "a"
        assert on[home].get(k) == 2, (k, seen, on[home].get(k), on[other].get(k))
        assert k not in on[other], (k, seen)
    assert p.alive()


def test_mariadb_bind_replaced_old_connections_close(dbs, backends, mariadb):
    """A MariaDB bind whose pool size changes gets a new pool; the old pool's connections close once the
    session that held one has moved on (checked in MariaDB's processlist)."""
    from conftest import MY_HOST, MY_PORT, MY_USER, my_admin

    with my_admin(mariadb) as m, m.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS my_rl")
        cur.execute("CREATE TABLE my_rl (id int)")
    cfg = base_config(dbs)
    cfg["binds"] = {**cfg["binds"], "my": {"url": f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{mariadb}",
                                           "pool_size": 2}}
    cfg["tables"] = {**cfg["tables"], "my_rl": "my"}
    p = Proxy(cfg, backends.tmpdir, name="reload-mariadb")
    p.start()

    def ids() -> set[int]:
        with my_admin() as m, m.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (mariadb,))
            return {r[0] for r in cur.fetchall()}

    try:
        with p.connect() as c:
            c.execute("INSERT INTO my_rl VALUES (1)")
            old = ids()
            assert old, "the session holds a MariaDB connection"
            binds = dict(p.config["binds"])
            binds["my"] = {**binds["my"], "pool_size": 3}
            assert "binds replaced" in reload_with(p, binds=binds)
            c.execute("INSERT INTO my_rl VALUES (2)")
            assert c.execute("SELECT count(*) FROM my_rl").fetchone()[0] == 2
            assert wait_until(lambda: not (ids() & old), timeout=10), (old, ids())
            assert ids(), "the new pool's connection"
        with my_admin(mariadb) as m, m.cursor() as cur:
            cur.execute("SELECT id FROM my_rl ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == [1, 2]
    finally:
        p.stop()


def test_console_reload_shows_new_binds_and_a_pause_survives_a_replaced_pool(dbs, backends):
    """RELOAD from the admin console: SHOW BINDS lists what the file now says; a bind paused before a
    reload that replaces its pool (new URL) stays paused, and its statements run on the new pool once resumed."""
    cfg = base_config(dbs) | {"admin_users": ["bp_admin"]}
    p = Proxy(cfg, backends.tmpdir, name="reload-console").start()
    try:
        admin = psycopg.connect(host="127.0.0.1", port=p.port, user="bp_admin", dbname="bindproxy",
                                autocommit=True, connect_timeout=10)
        names = lambda: [r[0] for r in admin.execute("SHOW BINDS").fetchall()]  # noqa: E731
        assert names() == ["a", "b", "x"]
        admin.execute("PAUSE a")
        new = dict(p.config)
        new["binds"] = {"a": url(dbs, "c"), "b": url(dbs, "b"), "x": url(dbs, "x"), "y": url(dbs, "b")}
        new["tables"] = {"marker": "a", "notes": "a", "xtab": "x", "ytab": "y"}
        rewrite(p, to_yaml(new) + "\n")
        admin.execute("RELOAD")
        assert names() == ["a", "b", "x", "y"]
        assert [r for r in admin.execute("SHOW BINDS").fetchall() if r[0] == "a"][0][5] == "paused"
        with psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="app", autocommit=True) as c:
            # ytab (a new bind) is not paused
            c.execute("INSERT INTO ytab VALUES (7)")
        assert rows(dbs["b"], "SELECT id FROM ytab") == [(7,)]
        done = {}

        def read_marker():
            with psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="app", autocommit=True) as c:
                done["db"] = where(c)

        import threading
        t = threading.Thread(target=read_marker)
        t.start()
        t.join(1.0)
        assert t.is_alive(), "a statement for the paused bind ran after its pool was replaced"
        admin.execute("RESUME a")
        t.join(10)
        assert not t.is_alive() and done["db"] == dbs["c"], done
        admin.close()
    finally:
        p.stop()
