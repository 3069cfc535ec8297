"""Operations: /healthz, /readyz, /metrics (admin_http), JSON logs, graceful shutdown (issue 10).

Every test starts its own bindproxy, so the counters it reads moved only because of what it did. Metrics are
read through prometheus_client's own parser of the text exposition.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PG_HOST, PG_PORT, Proxy, pg_config, pg_url, wait_until


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------
def admin_config(backends, **extra) -> tuple[dict, None]:
    cfg = pg_config(backends)
    cfg["admin_http"] = "127.0.0.1:0"  # the port the kernel gives: see admin_port()
    cfg.update(extra)
    return cfg, None


def admin_port(proxy: Proxy) -> int:
    """The admin_http port of a proxy started with admin_http on port 0, from its start-up log line."""
    def find():
        m = re.findall(r"admin_http: /healthz /readyz /metrics addr=127\.0\.0\.1:(\d+)", proxy.log_tail(200))
        return int(m[-1]) if m else None
    port = wait_until(find, timeout=10)
    assert port, proxy.log_tail()
    return port


def http_get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    status, ctype, body = http_get(port, "/metrics")
    assert status == 200, body
    assert ctype.startswith("text/plain"), ctype
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def connect(proxy: Proxy, autocommit: bool = True) -> psycopg.Connection:
    # no server-side prepared statements: one Parse per execute, so routing counts are exact
    return proxy.connect(autocommit=autocommit, prepare_threshold=None)


def exits_within(proxy: Proxy, seconds: float) -> int | None:
    try:
        return proxy.proc.wait(timeout=seconds)
    except Exception:  # noqa: BLE001
        return None


def shutting_down_refusal(proxy: Proxy) -> str | None:
    """The error a new connection gets, or None if it was accepted."""
    try:
        c = proxy.connect(connect_timeout=5)
    except psycopg.OperationalError as e:
        return str(e)
    c.close()
    return None


# --------------------------------------------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------------------------------------------
def test_metrics_counters_move_by_what_ran(backends, start_proxy, uid):
    cfg, port = admin_config(backends)
    proxy = start_proxy(cfg, "metrics")
    port = admin_port(proxy)
    before = scrape(port)
    assert value(before, "bindproxy_client_connections") == 0
    with connect(proxy) as c:
        for i in (1, 2, 1):
            c.execute(f"SELECT name FROM users WHERE id = {i}").fetchall()
        for _ in range(2):
            c.execute("INSERT INTO items VALUES (%s, 'metrics')", (uid(),))
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM no_such_table_metrics")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute("SELECT * FROM users JOIN items ON true")
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT * FROM ghost")
        during = scrape(port)
        assert value(during, "bindproxy_client_connections") == 1
    after = scrape(port)

    # statements per bind (Execute messages) and per table and kind (Parse messages)
    assert delta(before, after, "bindproxy_statements_total", bind="userdb") == 3
    assert delta(before, after, "bindproxy_statements_total", bind="main") == 3  # 2 inserts + the failing one
    assert delta(before, after, "bindproxy_table_statements_total", bind="userdb", table="users",
                 kind="select") == 3
    assert delta(before, after, "bindproxy_table_statements_total", bind="main", table="items",
                 kind="insert") == 2
    assert delta(before, after, "bindproxy_table_statements_total", bind="userdb", table="users",
                 kind="insert") == 0
    # every query string analysed once: the repeated SELECT (other literals) and INSERT come from the cache
    parsed = delta(before, after, "bindproxy_route_decisions_total", source="parsed")
    cached = delta(before, after, "bindproxy_route_decisions_total", source="cache")
    assert parsed + cached == 8, (parsed, cached)
    assert cached >= 3, (parsed, cached)
    assert delta(before, after, "bindproxy_cross_bind_refusals_total") == 1
    # errors by bind and SQLSTATE class
    assert delta(before, after, "bindproxy_errors_total", bind="main", **{"class": "42"}) == 1
    assert delta(before, after, "bindproxy_errors_total", bind="(none)", **{"class": "0A"}) == 1
    assert delta(before, after, "bindproxy_errors_total", bind="dead", **{"class": "08"}) == 1
    # pools: one lease per bind for the session; the dead bind failed to connect
    assert delta(before, after, "bindproxy_pool_checkouts_total", bind="userdb") == 1
    assert delta(before, after, "bindproxy_pool_checkouts_total", bind="main") == 1
    assert delta(before, after, "bindproxy_backend_connect_failures_total", bind="dead") == 1
    assert delta(before, after, "bindproxy_pool_checkout_wait_seconds_count", bind="userdb") == 1
    assert value(after, "bindproxy_pool_waiting_clients", bind="userdb") == 0
    # the client is gone
    assert wait_until(lambda: value(scrape(port), "bindproxy_client_connections") == 0, timeout=5)
    # after the session, both connections were cleaned and are idle in their pools
    assert wait_until(lambda: value(scrape(port), "bindproxy_pool_connections", bind="userdb", state="idle") == 1,
                      timeout=5)
    assert value(scrape(port), "bindproxy_pool_connections", bind="userdb", state="in_use") == 0


def test_metrics_client_sessions_by_state(backends, start_proxy, uid):
    cfg, port = admin_config(backends)
    proxy = start_proxy(cfg, "metrics-states")
    port = admin_port(proxy)

    def states():
        got = scrape(port)
        return {s: value(got, "bindproxy_client_sessions", state=s)
                for s in ("idle", "idle_in_transaction", "active", "paused")}

    assert states() == {"idle": 0, "idle_in_transaction": 0, "active": 0, "paused": 0}
    with connect(proxy) as idle, connect(proxy, autocommit=False) as in_tx, connect(proxy) as busy:
        idle.execute("SELECT 1").fetchall()
        in_tx.execute("INSERT INTO items VALUES (%s, 'states')", (uid(),))
        t = threading.Thread(target=lambda: busy.execute("SELECT pg_sleep(2)").fetchall())
        t.start()
        want = {"idle": 1, "idle_in_transaction": 1, "active": 1, "paused": 0}
        assert wait_until(lambda: states() == want, timeout=5), states()
        t.join()
        in_tx.rollback()
        assert wait_until(lambda: states()["idle"] == 3, timeout=5), states()
    assert wait_until(lambda: sum(states().values()) == 0, timeout=5), states()


def test_metrics_transactions_by_participants(backends, start_proxy, uid):
    cfg, port = admin_config(backends)
    proxy = start_proxy(cfg, "metrics-tx")
    port = admin_port(proxy)
    two_phase = int(backends.scalar("main", "SHOW max_prepared_transactions")) > 0
    before = scrape(port)
    with connect(proxy, autocommit=False) as c:
        c.execute("INSERT INTO items VALUES (%s, 'tx1')", (uid(),))
        c.commit()
        c.execute("INSERT INTO items VALUES (%s, 'tx2')", (uid(),))
        c.execute("INSERT INTO user_profiles VALUES (%s, 'tx2')", (uid(),))
        c.commit()
    after = scrape(port)
    assert delta(before, after, "bindproxy_transactions_total", participants="1") == 1
    assert delta(before, after, "bindproxy_transactions_total", participants="2") == 1
    commits = delta(before, after, "bindproxy_two_phase_commit_seconds_count")
    assert commits == (1 if two_phase else 0), commits
    # each step of that two-phase COMMIT is timed: both binds prepare, none is a last resource
    for step, n in (("prepare", commits), ("last_resource", 0), ("decision_log", commits), ("commit_prepared", commits)):
        assert delta(before, after, "bindproxy_two_phase_step_seconds_count", step=step) == n, step
    assert value(after, "bindproxy_in_doubt_branches") == 0


def test_metrics_on_a_mariadb_bind(backends, mariadb, start_proxy, uid):
    from conftest import MY_HOST, MY_PORT, MY_USER, my_admin

    with my_admin(mariadb) as m, m.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS log_ops")
        cur.execute("CREATE TABLE log_ops (id INT PRIMARY KEY, what VARCHAR(20))")
    cfg, port = admin_config(backends)
    cfg["binds"]["logs"] = f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{mariadb}"
    cfg["tables"]["log_*"] = "logs"
    proxy = start_proxy(cfg, "metrics-my")
    port = admin_port(proxy)
    before = scrape(port)
    a, b = uid(), uid()
    with connect(proxy) as c:
        c.execute("INSERT INTO log_ops VALUES (%s, 'a')", (a,))
        c.execute("INSERT INTO log_ops VALUES (%s, 'b')", (b,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO log_ops VALUES (%s, 'again')", (a,))
        assert c.execute("SELECT count(*) FROM log_ops").fetchone() == (2,)
    after = scrape(port)
    assert delta(before, after, "bindproxy_statements_total", bind="logs") == 4
    assert delta(before, after, "bindproxy_table_statements_total", bind="logs", table="log_ops",
                 kind="insert") == 3
    assert delta(before, after, "bindproxy_table_statements_total", bind="logs", table="log_ops",
                 kind="select") == 1
    assert delta(before, after, "bindproxy_errors_total", bind="logs", **{"class": "23"}) == 1
    assert delta(before, after, "bindproxy_pool_checkouts_total", bind="logs") == 1
    status, _, body = http_get(port, "/readyz")
    logs = {b["name"]: b for b in json.loads(body)["binds"]}["logs"]
    assert (logs["engine"], logs["ok"], logs["pool"]["idle"]) == ("mysql", True, None), logs


# --------------------------------------------------------------------------------------------------------------
# /healthz, /readyz
# --------------------------------------------------------------------------------------------------------------
class Forwarder:
    """A TCP relay to PostgreSQL that can be shut, to make a bind's server unreachable."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection((PG_HOST, PG_PORT))
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way and stops listening
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_healthz_and_readyz(backends, start_proxy):
    fwd = Forwarder()
    cfg = {
        "default_bind": "main",
        "admin_http": "127.0.0.1:0",
        "binds": {
            "main": pg_url(backends.db("main")),
            "flaky": {"url": pg_url(backends.db("userdb"), port=fwd.port), "connect_timeout_ms": 1000},
        },
        "tables": {"users": "flaky"},
    }
    proxy = start_proxy(cfg, "ready")
    port = admin_port(proxy)
    status, _, body = http_get(port, "/healthz")
    assert status == 200, body
    status, ctype, body = http_get(port, "/readyz")
    assert status == 200, body
    assert ctype == "application/json"
    r = json.loads(body)
    assert r["ready"] is True and r["stage"] == "running"
    assert [(b["name"], b["engine"], b["ok"], b["error"]) for b in r["binds"]] == [
        ("main", "postgresql", True, None), ("flaky", "postgresql", True, None)]
    assert {"size", "in_use", "idle"} <= set(r["binds"][0]["pool"])
    with connect(proxy) as c:
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)

    fwd.close()
    time.sleep(1.2)  # the answer is cached for a second
    status, _, body = http_get(port, "/readyz")
    assert status == 503, body
    r = json.loads(body)
    assert r["ready"] is False
    by_name = {b["name"]: b for b in r["binds"]}
    assert by_name["main"]["ok"] is True
    assert by_name["flaky"]["ok"] is False
    assert "flaky" in by_name["flaky"]["error"], by_name["flaky"]
    # the other bind's clients keep working; the process stays alive and healthy
    with connect(proxy) as c:
        assert c.execute("SELECT label FROM items WHERE false").fetchall() == []
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1
    assert http_get(port, "/healthz")[0] == 200
    assert http_get(port, "/nope")[0] == 404


def test_readyz_is_cached(backends, start_proxy):
    """Probes in a burst reach a bind at most about once a second (connections counted by a relay)."""
    fwd = Forwarder()
    cfg = {
        "default_bind": "main",
        "admin_http": "127.0.0.1:0",
        "binds": {"main": pg_url(backends.db("main"), port=fwd.port)},
    }
    port = admin_port(start_proxy(cfg, "ready-cache"))
    opened_at_start = len(fwd.conns) // 2  # start-up recovery connects too
    started = time.monotonic()
    for _ in range(30):
        assert http_get(port, "/readyz")[0] == 200
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    checks = len(fwd.conns) // 2 - opened_at_start
    assert 1 <= checks <= int(elapsed) + 2, (checks, elapsed)
    fwd.close()


# --------------------------------------------------------------------------------------------------------------
# graceful shutdown
# --------------------------------------------------------------------------------------------------------------
def test_sigterm_lets_an_open_transaction_commit(backends, start_proxy, uid):
    proxy = start_proxy(pg_config(backends), "drain")
    key, key2 = uid(), uid()
    busy = connect(proxy, autocommit=False)
    busy.execute("INSERT INTO items VALUES (%s, 'drain')", (key,))
    idle = connect(proxy)
    idle.execute("SELECT 1")
    os.kill(proxy.proc.pid, signal.SIGTERM)

    # new connections are refused as PostgreSQL refuses them while shutting down
    refusal = wait_until(lambda: shutting_down_refusal(proxy), timeout=5)
    assert refusal and "the database system is shutting down" in refusal, refusal
    # the idle client is closed at once (FATAL 57P01)
    with pytest.raises(psycopg.OperationalError, match="terminating connection due to administrator command"):
        idle.execute("SELECT 1")
    assert proxy.alive(), "the open transaction keeps the process up"
    # the transaction goes on and commits
    busy.execute("INSERT INTO items VALUES (%s, 'drain-2')", (key2,))
    busy.commit()
    assert backends.scalar("main", "SELECT count(*) FROM items WHERE id IN (%s, %s)", (key, key2)) == 2
    assert exits_within(proxy, 10) == 0, proxy.log_tail()
    busy.close()
    idle.close()


def test_sigterm_with_a_transaction_that_outlives_shutdown_timeout(backends, start_proxy, uid):
    cfg = pg_config(backends)
    cfg["shutdown_timeout"] = 2
    proxy = start_proxy(cfg, "drain-timeout")
    key = uid()
    slow = connect(proxy, autocommit=False)
    slow.execute("INSERT INTO items VALUES (%s, 'outlived')", (key,))
    errors: list[Exception] = []

    def sleeper():
        try:
            slow.execute("SELECT pg_sleep(60)")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=sleeper)
    t.start()
    assert wait_until(lambda: backends.scalar(
        "main", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'"
        " AND datname = current_database()") == 1, timeout=5)
    started = time.monotonic()
    os.kill(proxy.proc.pid, signal.SIGTERM)
    code = exits_within(proxy, 10)
    elapsed = time.monotonic() - started
    assert code == 0, proxy.log_tail()
    assert 1.5 <= elapsed < 6, elapsed
    t.join(timeout=10)
    assert errors and isinstance(errors[0], psycopg.OperationalError), errors
    # the statement was cancelled and the transaction rolled back on the server
    assert wait_until(lambda: backends.scalar(
        "main", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"
        " AND datname = current_database()") == 0, timeout=5)
    assert backends.scalar("main", "SELECT count(*) FROM items WHERE id = %s", (key,)) == 0
    slow.close()


def test_second_sigint_exits_at_once(backends, start_proxy, uid):
    proxy = start_proxy(pg_config(backends), "drain-twice")
    busy = connect(proxy, autocommit=False)
    busy.execute("INSERT INTO items VALUES (%s, 'twice')", (uid(),))
    os.kill(proxy.proc.pid, signal.SIGINT)
    assert wait_until(lambda: shutting_down_refusal(proxy), timeout=5)
    assert exits_within(proxy, 1) is None, "draining: waits for the open transaction"
    started = time.monotonic()
    os.kill(proxy.proc.pid, signal.SIGINT)
    code = exits_within(proxy, 5)
    assert code is not None and time.monotonic() - started < 2
    assert code != 0, "an abandoned drain is not a clean exit"
    busy.close()


# --------------------------------------------------------------------------------------------------------------
# logs
# --------------------------------------------------------------------------------------------------------------
def test_json_logs_are_json_lines(backends, start_proxy):
    cfg = pg_config(backends)
    cfg["log_format"] = "json"
    proxy = start_proxy(cfg, "jsonlog")
    with connect(proxy) as c:
        with socket.socket(fileno=os.dup(c.pgconn.socket)) as s:
            local_port = s.getsockname()[1]
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM no_such_table_json")
    proxy.stop()
    text = proxy.log_path.read_text()
    lines = [ln for ln in text.split("\n----- start")[-1].splitlines()[1:] if ln.strip()]
    assert lines
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) and "level" in r and "timestamp" in r for r in records)
    messages = [r.get("message", "") for r in records]
    assert any(m == "bindproxy listening" for m in messages), messages
    assert any(m == "client connected" for m in messages), messages
    failed = [r for r in records if r.get("message", "").startswith("statement failed")]
    assert len(failed) == 1, failed
    f = failed[0]
    assert f["level"] == "INFO"
    assert f["bind"] == "main"
    assert f["sqlstate"] == "42P01"
    assert f["table"] == "no_such_table_json"
    assert f["client"] == f"127.0.0.1:{local_port}"
