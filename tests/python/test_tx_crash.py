"""Issue 7: bindproxy killed in the middle of a two-phase COMMIT, then restarted.

One proxy over two PostgreSQL databases and a MariaDB database (all three can prepare). The crash points are
`fail` failpoints compiled in by `--features failpoints` (scripts/test.sh builds the tested binary with it); each
aborts the process (as kill -9 would: no clean-up, no flush) at one instant of the commit:

  tx::after_prepare   every participant prepared, no decision yet        -> every participant rolls back
  tx::after_decision  the decision is on disk, nothing committed yet      -> every participant commits
  tx::mid_commit      the decision is on disk, the first branch committed -> every participant commits

After the restart (start-up recovery), or after `bindproxy recover`, all three backends are checked directly:
all rows or none, and nothing of this proxy's instance stays prepared (pg_prepared_xacts, XA RECOVER).
"""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import time

import psycopg
import pytest

from conftest import MY_HOST, MY_PORT, MY_USER, PREFIX, Proxy, bindproxy_bin, my_admin, pg_admin, pg_direct, pg_url

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def crash_env(backends):
    dbs = {"a": PREFIX + "crash_a", "b": PREFIX + "crash_b"}
    with pg_admin() as c:
        for db in dbs.values():
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{db}"')
    for db in dbs.values():
        with pg_direct(db) as c:
            c.execute("CREATE TABLE IF NOT EXISTS t_a (id int PRIMARY KEY, tag text)")
            c.execute("CREATE TABLE IF NOT EXISTS t_b (id int PRIMARY KEY, tag text)")
    my = backends.mysql_db("crash_m")
    with my_admin(my) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS t_m (id int PRIMARY KEY, tag varchar(50))")
    lite = backends.sqlite_path("crash_s")
    with sqlite3.connect(lite) as c:
        c.execute("CREATE TABLE IF NOT EXISTS t_s (id int PRIMARY KEY, tag text)")
    config = {
        "default_bind": "a",
        "binds": {"a": pg_url(dbs["a"]), "b": pg_url(dbs["b"]),
                  "m": f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{my}", "s": f"sqlite:///{lite}"},
        "tables": {"t_a": "a", "t_b": "b", "t_m": "m", "t_s": "s"},
    }
    yield {"dbs": dbs, "my": my, "lite": lite, "config": config, "tmp": backends.tmpdir}
    with pg_admin() as c:
        for db in dbs.values():
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def rows(env, tag: str, lite: bool = False) -> dict[str, int]:
    out = {}
    if lite:
        with sqlite3.connect(env["lite"]) as c:
            out["s"] = c.execute("SELECT count(*) FROM t_s WHERE tag = ?", (tag,)).fetchone()[0]
    for bind, table in (("a", "t_a"), ("b", "t_b")):
        with pg_direct(env["dbs"][bind]) as c:
            out[bind] = c.execute(f"SELECT count(*) FROM {table} WHERE tag = %s", (tag,)).fetchone()[0]
    with my_admin(env["my"]) as c, c.cursor() as cur:
        cur.execute("SELECT count(*) FROM t_m WHERE tag = %s", (tag,))
        out["m"] = cur.fetchone()[0]
    return out


def prepared(instance: str) -> dict[str, list]:
    prefix = f"bp_{instance}_"
    with pg_admin() as c:
        pg = [r[0] for r in c.execute("SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, %s)", (prefix,))]
    with my_admin() as c, c.cursor() as cur:
        cur.execute("XA RECOVER")
        xa = [r[3] for r in cur.fetchall()]
    xa = [x.decode() if isinstance(x, bytes) else x for x in xa]
    return {"pg": pg, "xa": [x for x in xa if x.startswith(prefix)]}


def crash_during_commit(env, failpoint: str, name: str, lite: bool = False) -> tuple[Proxy, str]:
    """Runs one transaction over the three binds with `failpoint` armed; returns the dead proxy and the tag."""
    p = Proxy(env["config"], env["tmp"], name=name)
    p.extra_env = {"FAILPOINTS": f"{failpoint}=return"}
    p.start()
    tag = f"{name}_{next(_ids)}"
    c = psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="app", autocommit=True)
    c.execute("BEGIN")
    c.execute("INSERT INTO t_a VALUES (%s, %s)", (next(_ids), tag))
    c.execute("INSERT INTO t_b VALUES (%s, %s)", (next(_ids), tag))
    c.execute("INSERT INTO t_m VALUES (%s, %s)", (next(_ids), tag))
    if lite:
        c.execute("INSERT INTO t_s VALUES (%s, %s)", (next(_ids), tag))
    with pytest.raises(psycopg.OperationalError):
        c.execute("COMMIT")
        pytest.fail(f"COMMIT succeeded although {failpoint} was armed: the binary was built without "
                    "`--features failpoints` (scripts/test.sh builds it with them)", pytrace=False)
    p.proc.wait(timeout=10)
    assert p.proc.returncode != 0, "bindproxy should have died at the failpoint"
    p.proc = None
    p.extra_env = {}
    return p, tag


@pytest.mark.parametrize("failpoint, committed", [
    ("tx::after_prepare", False),
    ("tx::after_decision", True),
    ("tx::mid_commit", True),
])
def test_crash_then_restart_is_all_or_nothing(crash_env, failpoint, committed):
    name = "crash_" + failpoint.split("::")[1]
    p, tag = crash_during_commit(crash_env, failpoint, name)
    instance = p.config["transactions"]["instance_id"]
    # the crash left branches prepared, holding their locks
    left = prepared(instance)
    assert left["pg"] or left["xa"], f"expected prepared branches after a crash at {failpoint}: {left}"
    p.start()  # start-up recovery
    try:
        want = 1 if committed else 0
        assert rows(crash_env, tag) == {"a": want, "b": want, "m": want}, failpoint
        assert prepared(instance) == {"pg": [], "xa": []}
        # the proxy works after recovery, and the rows are not locked
        with psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="app",
                             autocommit=True) as c:
            c.execute("BEGIN")
            c.execute("SET LOCAL lock_timeout = '2s'")
            c.execute("UPDATE t_a SET tag = tag WHERE tag = %s", (tag,))
            c.execute("UPDATE t_m SET tag = tag WHERE tag = %s", (tag,))
            c.execute("COMMIT")
    finally:
        p.stop()


def test_recover_command_rolls_back_an_undecided_transaction(crash_env):
    p, tag = crash_during_commit(crash_env, "tx::after_prepare", "crash_cli")
    instance = p.config["transactions"]["instance_id"]
    assert prepared(instance)["pg"], "expected prepared branches"
    r = subprocess.run([str(bindproxy_bin()), "recover", "--config", str(p.config_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rows(crash_env, tag) == {"a": 0, "b": 0, "m": 0}
    assert prepared(instance) == {"pg": [], "xa": []}
    # a second run finds nothing to do
    r = subprocess.run([str(bindproxy_bin()), "recover", "--config", str(p.config_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_recover_command_refuses_while_the_daemon_runs(crash_env):
    p = Proxy(crash_env["config"], crash_env["tmp"], name="crash_lock")
    p.start()
    try:
        r = subprocess.run([str(bindproxy_bin()), "recover", "--config", str(p.config_path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "in use" in (r.stdout + r.stderr), r.stdout + r.stderr
    finally:
        p.stop()


@pytest.mark.parametrize("failpoint, committed", [
    ("tx::after_prepare", False),         # the last resource (SQLite) has not committed
    ("tx::after_last_resource", True),    # it has; the decision is not in the log yet
    ("tx::after_decision", True),
])
def test_crash_with_a_last_resource_is_all_or_nothing(crash_env, failpoint, committed):
    """A SQLite bind takes part: it commits last, and its own transaction carries the decision."""
    name = "crash_lr_" + failpoint.split("::")[1]
    p, tag = crash_during_commit(crash_env, failpoint, name, lite=True)
    instance = p.config["transactions"]["instance_id"]
    assert prepared(instance)["pg"], f"expected prepared branches after a crash at {failpoint}"
    p.start()
    try:
        want = 1 if committed else 0
        assert rows(crash_env, tag, lite=True) == {"s": want, "a": want, "b": want, "m": want}, failpoint
        assert prepared(instance) == {"pg": [], "xa": []}
        # the last resource's copy of the decision is gone once recovery finished the transaction
        with sqlite3.connect(crash_env["lite"]) as c:
            exists = c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'bindproxy_decisions'").fetchone()[0]
            left = c.execute("SELECT count(*) FROM bindproxy_decisions WHERE gid LIKE ?",
                             (f"bp_{instance}_%",)).fetchone()[0] if exists else 0
        assert left == 0
    finally:
        p.stop()


def test_last_resource_commit_leaves_no_decision_row(crash_env):
    p = Proxy(crash_env["config"], crash_env["tmp"], name="lr_clean")
    p.start()
    try:
        tag = f"lr_clean_{next(_ids)}"
        with psycopg.connect(host="127.0.0.1", port=p.port, user="postgres", dbname="app", autocommit=True) as c:
            c.execute("BEGIN")
            c.execute("INSERT INTO t_a VALUES (%s, %s)", (next(_ids), tag))
            c.execute("INSERT INTO t_s VALUES (%s, %s)", (next(_ids), tag))
            c.execute("COMMIT")
        assert rows(crash_env, tag, lite=True) == {"s": 1, "a": 1, "b": 0, "m": 0}
        with sqlite3.connect(crash_env["lite"]) as c:
            assert c.execute("SELECT count(*) FROM bindproxy_decisions").fetchone()[0] == 0
    finally:
        p.stop()
