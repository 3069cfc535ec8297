"""The admin console: database `bindproxy` for the users of `admin_users`, used with psql and psycopg.

Every answer is checked against reality: the config (binds, rules), the clients this test connects, the pools
while a client holds a connection, the rows on the backends after KILL, the timing of a statement under PAUSE.
Ordinary clients of the console-enabled proxy use another database name (`app`): with `admin_users`, database
`bindproxy` is the console; without it, it is an ordinary database name (checked too)."""

from __future__ import annotations

import csv
import io
import json
import socket
import struct
import subprocess
import threading
import time

import psycopg
import pytest

from conftest import PROXY_USER, Proxy, bindproxy_bin, pg_config, pg_url, wait_until

ADMIN = "ops"
APP_DB = "app"


@pytest.fixture(scope="module")
def console_proxy(backends, tmp_path_factory):
    cfg = pg_config(backends)
    # a password in a bind URL (trust ignores it): SHOW BINDS must never print it
    cfg["binds"]["main"] = pg_url(backends.db("main")).replace("postgres@", "postgres:s3cretpw@")
    cfg["admin_users"] = [ADMIN]
    p = Proxy(cfg, tmp_path_factory.mktemp("admin"), name="admin").start()
    yield p
    p.stop()


def app(p: Proxy, name: str = "admin-test-app", **kw) -> psycopg.Connection:
    kw.setdefault("autocommit", True)
    return psycopg.connect(host="127.0.0.1", port=p.port, user=PROXY_USER, dbname=APP_DB, application_name=name,
                           connect_timeout=10, **kw)


def console(p: Proxy) -> psycopg.Connection:
    # autocommit: the console has no BEGIN
    return psycopg.connect(host="127.0.0.1", port=p.port, user=ADMIN, dbname="bindproxy", autocommit=True,
                           connect_timeout=10)


def show(p: Proxy, what: str) -> list[dict]:
    with console(p) as c:
        cur = c.execute(what)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def psql(p: Proxy, command: str, check: bool = True) -> subprocess.CompletedProcess:
    env = p.libpq_env()
    env.update(PGUSER=ADMIN, PGDATABASE="bindproxy")
    r = subprocess.run(["psql", "-X", "-w", "--csv", "-v", "ON_ERROR_STOP=1", "-c", command], env=env,
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"psql {command!r}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def psql_rows(p: Proxy, command: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(psql(p, command).stdout)))


def client_row(p: Proxy, app_name: str) -> dict | None:
    rows = [r for r in show(p, "SHOW CLIENTS") if r["application_name"] == app_name]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def startup_fields(port: int, user: str, database: str) -> dict:
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data[:1] == b"E", data[:40]
    length = struct.unpack("!i", data[1:5])[0]
    return {f[:1].decode(): f[1:].decode() for f in data[5:1 + length].split(b"\0") if f}


def test_only_admin_users_get_the_console(console_proxy):
    f = startup_fields(console_proxy.port, PROXY_USER, "bindproxy")
    assert (f["S"], f["C"]) == ("FATAL", "28000"), f
    assert "admin_users" in f["M"] and PROXY_USER in f["M"], f
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(host="127.0.0.1", port=console_proxy.port, user=PROXY_USER, dbname="bindproxy",
                        connect_timeout=10)
    assert "admin console" in str(e.value)
    # the console user on another database is an ordinary client, routed by table
    with psycopg.connect(host="127.0.0.1", port=console_proxy.port, user=ADMIN, dbname=APP_DB,
                         autocommit=True) as c:
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)
    # and other clients carried on
    with app(console_proxy) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_without_admin_users_bindproxy_is_an_ordinary_database(proxy, backends):
    with proxy.connect() as c:  # dbname bindproxy, no admin_users in the shared proxy's config
        assert c.execute("SELECT current_database()").fetchone() == (backends.db("main"),)
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)


def test_show_binds_with_psql(console_proxy, backends):
    rows = psql_rows(console_proxy, "SHOW BINDS;")
    by = {r["name"]: r for r in rows}
    for name, bind in console_proxy.config["binds"].items():
        assert name in by, rows
        assert by[name]["engine"] == "postgresql"
        if isinstance(bind, dict) and "pool_size" in bind:
            assert int(by[name]["pool_size"]) == bind["pool_size"], by[name]
        assert by[name]["state"] == "running"
    assert by["tiny"]["pool_size"] == "1"
    assert backends.db("main") in by["main"]["url"] and "s3cretpw" not in by["main"]["url"]
    assert "s3cretpw" not in psql(console_proxy, "SHOW BINDS").stdout
    assert by["main"]["reachable"] == "yes" and by["userdb"]["reachable"] == "yes"
    assert by["dead"]["reachable"].startswith("no"), by["dead"]
    assert by["main"]["capability"] == "two-phase"  # max_prepared_transactions > 0 on the test server


def test_show_clients_lists_a_client_with_its_state_and_binds(console_proxy):
    name = "clients-probe"
    assert client_row(console_proxy, name) is None
    with app(console_proxy, name) as c:
        c.execute("SELECT * FROM users").fetchall()
        row = client_row(console_proxy, name)
        assert row is not None
        assert row["user"] == PROXY_USER and row["database"] == APP_DB and row["tls"] == "no"
        assert row["state"] == "idle" and row["binds"] == "userdb", row
        assert row["address"].startswith("127.0.0.1:")
        c.execute("BEGIN")
        c.execute("SELECT * FROM orders").fetchall()
        row = client_row(console_proxy, name)
        assert row["state"] == "in transaction" and set(row["binds"].split(", ")) == {"userdb", "main"}, row
        c.execute("ROLLBACK")
        # the id is the BackendKeyData process id the client was given
        assert row["id"] == c.info.backend_pid
    assert wait_until(lambda: client_row(console_proxy, name) is None)
    # the console sees itself
    mine = [r for r in show(console_proxy, "SHOW CLIENTS") if r["database"] == "bindproxy"]
    assert mine and all(r["state"] == "console" and r["user"] == ADMIN for r in mine)


def test_show_pools_follows_a_client_holding_a_connection(console_proxy):
    def userdb():
        return next(r for r in show(console_proxy, "SHOW POOLS") if r["bind"] == "userdb")

    before = userdb()
    with app(console_proxy, "pools-probe") as c:
        c.execute("BEGIN")
        c.execute("SELECT * FROM users FOR UPDATE").fetchall()
        during = userdb()
        assert during["in_use"] == before["in_use"] + 1, (before, during)
        assert during["checkouts"] == before["checkouts"] + 1, (before, during)
        assert during["total_wait_us"] >= before["total_wait_us"]
        c.execute("ROLLBACK")
    assert wait_until(lambda: userdb()["in_use"] == before["in_use"]), userdb()


def test_show_stats_counts_statements_and_bytes(console_proxy):
    def tiny():
        return next(r for r in show(console_proxy, "SHOW STATS") if r["bind"] == "tiny")

    before = tiny()
    with app(console_proxy, "stats-probe") as c:
        for _ in range(3):
            assert c.execute("SELECT id FROM scarce").fetchall() == [(1,)]
        with pytest.raises(psycopg.errors.UndefinedColumn):
            c.execute("SELECT nope FROM scarce")
    after = tiny()
    # 4 statements (one failing) and nothing else ran on tiny meanwhile
    assert after["statements"] - before["statements"] == 4, (before, after)
    assert after["errors"] - before["errors"] == 1, (before, after)
    assert after["bytes_sent"] - before["bytes_sent"] >= 4 * len("SELECT id FROM scarce")
    assert after["bytes_received"] > before["bytes_received"]


def test_show_tables_matches_the_rules_and_the_catalog(console_proxy):
    rows = show(console_proxy, "SHOW TABLES")
    rules = {r["table"]: r["bind"] for r in rows if r["found_on"] is None}
    assert rules == console_proxy.config["tables"], rows
    found = {(r["table"], r["found_on"]): r for r in rows if r["found_on"] is not None}
    # users exists on main and on userdb: the map sends it to userdb by its exact rule either way
    for on in ("main", "userdb"):
        r = found[("public.users", on)]
        assert (r["bind"], r["rule"]) == ("userdb", "rule users"), r
    assert found[("public.user_profiles", "userdb")]["rule"] == "rule user_*"
    assert found[("audit.events", "userdb")]["rule"] == "rule audit.*"
    r = found[("public.items", "main")]
    assert (r["bind"], r["rule"]) == ("main", "default bind (no rule)"), r


def test_explain_route_agrees_with_the_route_cli(console_proxy):
    sql = "SELECT * FROM users u JOIN user_profiles p ON p.user_id = u.id"
    rows = show(console_proxy, f"EXPLAIN ROUTE {sql}")
    assert len(rows) == 1
    cli = subprocess.run([str(bindproxy_bin()), "route", "--config", str(console_proxy.config_path), "--json", sql],
                         capture_output=True, text=True, timeout=30)
    expected = json.loads(cli.stdout)
    assert rows[0]["bind"] == expected["bind"] == "userdb"
    assert sorted(rows[0]["tables"].split(", ")) == sorted(expected["tables"])
    assert "rule users" in rows[0]["why"] and "rule user_*" in rows[0]["why"], rows[0]
    # several statements on several binds: one row each
    rows = show(console_proxy, "EXPLAIN ROUTE SELECT 1 FROM users; SELECT 1 FROM orders;")
    assert [r["bind"] for r in rows] == ["userdb", "main"], rows
    # a statement whose tables are on two binds is refused with the daemon's error
    with console(console_proxy) as c, pytest.raises(psycopg.errors.FeatureNotSupported) as e:
        c.execute("EXPLAIN ROUTE SELECT * FROM users JOIN orders ON true")
    assert "several binds" in str(e.value)


def test_unknown_commands_list_the_commands(console_proxy):
    for bad in ("SHOW HELP", "SELECT 1", "show me"):
        r = psql(console_proxy, bad, check=False)
        assert r.returncode != 0
        assert "SHOW BINDS" in r.stderr and "KILL" in r.stderr, r.stderr
    with console(console_proxy) as c:
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SHOW HELP")
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("PAUSE nosuchbind")
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("KILL 999999")
        # the session carries on after errors, case-insensitive, trailing semicolon
        assert len(c.execute("show binds;").fetchall()) == len(console_proxy.config["binds"]) + 1  # + catalog


def test_reload_answers(console_proxy):
    r = psql_rows(console_proxy, "RELOAD")
    assert len(r) == 1 and list(r[0].values())[0], r
    with app(console_proxy) as c:
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)


def test_pause_holds_new_statements_until_resume(console_proxy):
    done = threading.Event()
    result = {}
    waiter = app(console_proxy, "pause-probe")
    other = app(console_proxy, "pause-other")
    try:
        waiter.execute("SELECT 1 FROM users").fetchall()  # holds a userdb connection already
        assert psql_rows(console_proxy, "PAUSE userdb")[0]["result"] == "paused userdb"
        state = {r["name"]: r["state"] for r in show(console_proxy, "SHOW BINDS")}
        assert state["userdb"] == "paused" and state["main"] == "running", state

        def run():
            try:
                result["rows"] = waiter.execute("SELECT name FROM users WHERE id = 1").fetchall()
            except Exception as e:  # noqa: BLE001
                result["error"] = e
            done.set()

        started = time.monotonic()
        t = threading.Thread(target=run)
        t.start()
        assert not done.wait(1.2), result
        assert client_row(console_proxy, "pause-probe")["state"] == "waiting (paused)"
        # another bind is not paused
        assert other.execute("SELECT count(*) FROM orders").fetchone() == (1,)
        assert psql_rows(console_proxy, "RESUME userdb")[0]["result"] == "resumed userdb"
        assert done.wait(10), "statement still waiting after RESUME"
        t.join(5)
        assert result.get("rows") == [("seed-userdb",)], result
        assert time.monotonic() - started >= 1.2
        # PAUSE of every bind, then RESUME of every bind
        assert psql_rows(console_proxy, "PAUSE")[0]["result"].startswith("paused main")
        assert all(r["state"] == "paused" for r in show(console_proxy, "SHOW BINDS") if r["capability"] != "catalog")
        psql(console_proxy, "RESUME")
        assert other.execute("SELECT 1 FROM users").fetchone() == (1,)
    finally:
        psql(console_proxy, "RESUME", check=False)
        waiter.close()
        other.close()


def test_pause_lets_transactions_end_and_holds_simple_queries(console_proxy, backends):
    tx = app(console_proxy, "pause-tx")
    simple = app(console_proxy, "pause-simple")
    try:
        tx.execute("BEGIN")
        tx.execute("INSERT INTO users VALUES (5151, 'committed-while-paused')")
        simple.execute("SELECT 1 FROM orders").fetchall()
        psql(console_proxy, "PAUSE")
        # transaction control is never held: the open transaction commits while its bind is paused
        t0 = time.monotonic()
        tx.execute("COMMIT")
        assert time.monotonic() - t0 < 1.0
        assert backends.scalar("userdb", "SELECT name FROM users WHERE id = 5151") == "committed-while-paused"
        # a simple-protocol Query waits
        done = threading.Event()
        out = {}

        def run():
            out["rows"] = psycopg.ClientCursor(simple).execute("SELECT count(*) FROM orders").fetchall()
            done.set()

        t = threading.Thread(target=run)
        t.start()
        assert not done.wait(1.0)
        psql(console_proxy, "RESUME main")
        assert done.wait(10)
        t.join(5)
        assert out["rows"] == [(1,)]
    finally:
        psql(console_proxy, "RESUME", check=False)
        tx.execute("DELETE FROM users WHERE id = 5151")
        tx.close()
        simple.close()


def test_a_statement_waiting_for_a_paused_bind_can_be_cancelled(console_proxy):
    c = app(console_proxy, "pause-cancel")
    try:
        psql(console_proxy, "PAUSE userdb")
        err = {}
        done = threading.Event()

        def run():
            try:
                c.execute("SELECT name FROM users WHERE id = 1").fetchall()
            except psycopg.Error as e:
                err["e"] = e
            done.set()

        t = threading.Thread(target=run)
        t.start()
        assert wait_until(lambda: (client_row(console_proxy, "pause-cancel") or {}).get("state") == "waiting (paused)")
        c.cancel()
        assert done.wait(10), "the cancel did not end the wait"
        t.join(5)
        assert isinstance(err.get("e"), psycopg.errors.QueryCanceled), err
        # the session carries on: another bind works while userdb is still paused, and userdb after RESUME
        assert c.execute("SELECT count(*) FROM orders").fetchone() == (1,)
        psql(console_proxy, "RESUME userdb")
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)
    finally:
        psql(console_proxy, "RESUME", check=False)
        c.close()


def test_asyncpg_prepares_console_commands(console_proxy):
    import asyncio

    import asyncpg

    async def go():
        c = await asyncpg.connect(host="127.0.0.1", port=console_proxy.port, user=ADMIN, database="bindproxy",
                                  timeout=10)
        try:
            rows = await c.fetch("SHOW POOLS")
            assert {r["bind"] for r in rows} >= {"main", "userdb", "tiny"}
            assert all(isinstance(r["in_use"], int) for r in rows)  # int8 columns
            stmt = await c.prepare("SHOW STATS")
            assert [a.name for a in stmt.get_attributes()] == ["bind", "statements", "errors", "bytes_sent",
                                                                "bytes_received"]
            assert len(await stmt.fetch()) == len(rows)
        finally:
            await c.close()

    asyncio.run(go())


def test_kill_ends_a_session_and_rolls_back_its_transaction(console_proxy, backends):
    victim = app(console_proxy, "kill-victim")
    bystander = app(console_proxy, "kill-bystander")
    try:
        victim.execute("BEGIN")
        victim.execute("INSERT INTO users VALUES (4242, 'killed-before-commit')")
        bystander.execute("BEGIN")
        bystander.execute("INSERT INTO users VALUES (4343, 'bystander')")
        vid = client_row(console_proxy, "kill-victim")["id"]
        assert vid == victim.info.backend_pid
        r = psql_rows(console_proxy, f"KILL {vid}")
        assert r[0]["result"].startswith(f"killed client {vid}"), r
        with pytest.raises(psycopg.OperationalError) as e:
            victim.execute("SELECT 1")
        assert "administrator command" in str(e.value), str(e.value)
        assert wait_until(lambda: client_row(console_proxy, "kill-victim") is None)
        # its transaction rolled back on the bind; the bystander carries on and commits
        assert wait_until(lambda: backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = 4242") == 0)
        bystander.execute("COMMIT")
        assert backends.scalar("userdb", "SELECT name FROM users WHERE id = 4343") == "bystander"
        assert backends.scalar("main", "SELECT count(*) FROM users WHERE id IN (4242, 4343)") == 0
        # no connection leaked: only the bystander holds one of userdb
        pools = {r["bind"]: r for r in show(console_proxy, "SHOW POOLS")}
        assert wait_until(lambda: {r["bind"]: r for r in show(console_proxy, "SHOW POOLS")}["userdb"]["in_use"]
                          == pools["userdb"]["in_use"])
    finally:
        bystander.execute("DELETE FROM users WHERE id = 4343")
        victim.close()
        bystander.close()


def test_show_transactions_lists_an_open_multi_bind_transaction(console_proxy):
    with app(console_proxy, "tx-probe") as c:
        c.execute("BEGIN")
        c.execute("SELECT * FROM users").fetchall()
        c.execute("SELECT * FROM orders").fetchall()
        pid = c.info.backend_pid
        rows = [r for r in show(console_proxy, "SHOW TRANSACTIONS") if r["client"] == pid]
        assert len(rows) == 1, rows
        assert rows[0]["kind"] == "open"
        assert rows[0]["participants"] == "userdb (active), main (active)", rows
        c.execute("ROLLBACK")
        assert not [r for r in show(console_proxy, "SHOW TRANSACTIONS") if r["client"] == pid]


def test_show_transactions_lists_in_doubt_decisions(backends, tmp_path):
    """A commit decision whose participant `dead` cannot be reached stays in the decision log after the
    start-up recovery: SHOW TRANSACTIONS lists it as in doubt, with its participants."""
    cfg = pg_config(backends)
    cfg["admin_users"] = [ADMIN]
    log_dir = tmp_path / "txlog"
    log_dir.mkdir()
    gid = "bp_admin_test_gid_1"
    (log_dir / "decisions.log").write_text(json.dumps({"commit": gid, "participants": ["main", "dead"]}) + "\n")
    cfg["transactions"] = {"log_dir": str(log_dir)}
    p = Proxy(cfg, tmp_path, name="indoubt").start()
    try:
        rows = [r for r in show(p, "SHOW TRANSACTIONS") if r["transaction"] == gid]
        assert len(rows) == 1, show(p, "SHOW TRANSACTIONS")
        assert rows[0]["kind"].startswith("in doubt") and rows[0]["participants"] == "main, dead", rows
        assert rows[0]["client"] is None
    finally:
        p.stop()


def _messages(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack("!i", data[i + 1:i + 5])[0]
        out.append((data[i:i + 1], data[i + 5:i + 1 + n]))
        i += 1 + n
    return out


def _fields(body: bytes) -> dict:
    return {f[:1].decode(): f[1:].decode() for f in body.split(b"\0") if f}


def test_bad_messages_to_the_console_are_refused_cleanly(console_proxy):
    body = struct.pack("!i", 196608) + b"user\0" + ADMIN.encode() + b"\0database\0bindproxy\0\0"
    with socket.create_connection(("127.0.0.1", console_proxy.port), timeout=10) as s:
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        data = b""
        while not data.endswith(b"Z\0\0\0\x05I"):
            data += s.recv(4096)
        # a Bind with a parameter: 08P01, the rest skipped until Sync, then the session carries on
        parse = b"\0SHOW POOLS\0" + struct.pack("!h", 0)
        bind = b"\0\0" + struct.pack("!hh", 0, 1) + struct.pack("!i", 1) + b"x" + struct.pack("!h", 0)
        execute = b"\0" + struct.pack("!i", 0)
        msgs = [(b"P", parse), (b"B", bind), (b"E", execute), (b"S", b""), (b"Q", b"SHOW POOLS\0")]
        s.sendall(b"".join(t + struct.pack("!i", len(b) + 4) + b for t, b in msgs))
        data = b""
        while data.count(b"Z\0\0\0\x05I") < 2:
            data += s.recv(65536)
        tags = [t for t, _ in _messages(data)]
        assert tags[:4] == [b"1", b"E", b"Z", b"T"], tags
        err = _fields(_messages(data)[1][1])
        assert err["C"] == "08P01" and "no parameters" in err["M"], err
        assert tags[-2:] == [b"C", b"Z"] and tags.count(b"D") >= 5, tags
        # a message the console does not take: FATAL 08P01 and the connection closes
        s.sendall(b"d" + struct.pack("!i", 8) + b"junk")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        (tag, body), = _messages(data)
        assert tag == b"E" and _fields(body)["S"] == "FATAL" and _fields(body)["C"] == "08P01", data
    # the proxy carries on
    assert show(console_proxy, "SHOW BINDS")


def test_pause_answers_once_running_statements_finish(console_proxy):
    c = app(console_proxy, "pause-inflight")
    try:
        c.execute("SELECT 1 FROM users").fetchall()
        t = threading.Thread(target=lambda: c.execute("SELECT pg_sleep(2), count(*) FROM users").fetchall())
        t.start()
        assert wait_until(lambda: (client_row(console_proxy, "pause-inflight") or {}).get("state") == "active")
        t0 = time.monotonic()
        assert psql_rows(console_proxy, "PAUSE userdb")[0]["result"] == "paused userdb"
        waited = time.monotonic() - t0
        t.join(10)
        assert not t.is_alive()
        # PAUSE waited for the statement that was running (pg_sleep(2)), which finished
        assert 1.0 <= waited < 9, waited
    finally:
        psql(console_proxy, "RESUME", check=False)
        c.close()


def test_each_command_is_logged_with_its_user(console_proxy):
    psql(console_proxy, "SHOW STATS")
    log = console_proxy.log_path.read_text(errors="replace")
    lines = [ln for ln in log.splitlines() if "admin console command" in ln and "ShowStats" in ln]
    assert lines and all(f"user={ADMIN}" in ln for ln in lines), lines[-3:]

