"""Issue 11 item 2: `bindproxy route` and the daemon place every statement of the routing corpus alike.

Both go through `Router::place` (src/router/place.rs); this test keeps it that way. Each corpus chunk is sent to
a daemon logging at debug level, on a fresh connection (no transaction, no earlier catalog query), and the bind of
its `route` log line — or its refusal's SQLSTATE — is compared with what `bindproxy route --json` prints for the
same text and configuration. The daemon's binds are scratch PostgreSQL databases; what the statements do there
(most fail: their tables do not exist) does not matter, only where they went.
"""
import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import PREFIX, bindproxy_bin, pg_admin, pg_url

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
ROUTE_LINE = re.compile(r"\broute\b.*\bbind=(\S+)")


def chunks() -> list[tuple[str, str]]:
    out = []
    for f in sorted(CORPUS.glob("*.sql")):
        text = "\n".join(l for l in f.read_text().splitlines() if not l.startswith("\\"))
        for i, chunk in enumerate(text.split("\n;;;;\n")):
            if chunk.strip():
                out.append((f"{f.name}#{i}", chunk))
    return out


@pytest.fixture(scope="module")
def agree_proxy(backends, start_proxy, monkeypatch_module):
    dbs = {b: f"{PREFIX}agree_{b}" for b in ("main", "users", "orders")}
    with pg_admin() as c:
        for db in dbs.values():
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{db}"')
    config = {
        "default_bind": "main",
        "binds": {b: pg_url(db) for b, db in dbs.items()} | {"lite": "sqlite:///:memory:"},
        "tables": {"users": "users", "user_*": "users", "orders": "orders", "reporting.*": "orders",
                   "sa_*": "lite"},
    }
    monkeypatch_module.setenv("BINDPROXY_LOG", "debug")
    proxy = start_proxy(config, "agree")
    yield proxy
    proxy.stop()
    with pg_admin() as c:
        for db in dbs.values():
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def cli(proxy, sql: str) -> tuple[str, str]:
    p = subprocess.run([str(bindproxy_bin()), "route", "--config", str(proxy.config_path), "--json", "--", sql],
                       capture_output=True, text=True, timeout=30)
    out = json.loads(p.stdout)
    return ("error", out["sqlstate"]) if "error" in out else ("bind", out["bind"])


def daemon(proxy, sql: str) -> tuple[str, str]:
    log_before = proxy.log_path.stat().st_size
    try:
        with proxy.connect() as c:
            c.execute(sql, prepare=False)
    except psycopg.Error as e:
        refused = e.sqlstate
    else:
        refused = None
    with open(proxy.log_path, "rb") as f:
        f.seek(log_before)
        new = f.read().decode(errors="replace")
    binds = ROUTE_LINE.findall(new)
    if binds:
        return ("bind", binds[0])
    if refused and refused.startswith("25"):
        # transaction control outside a transaction, answered by bindproxy itself
        return ("local", refused)
    if refused:
        return ("error", refused)
    return ("local", "")  # answered by bindproxy itself (BEGIN, an empty query): nothing was routed


def test_route_and_daemon_agree_on_the_corpus(agree_proxy):
    cases = chunks()
    assert len(cases) > 300
    disagree = []
    compared = {"bind": 0, "error": 0, "local": 0}
    for name, sql in cases:
        want = cli(agree_proxy, sql)
        got = daemon(agree_proxy, sql)
        compared[got[0]] += 1
        if got[0] != "local" and got != want:
            disagree.append(f"{name}: route says {want}, the daemon did {got}\n{sql[:200]}")
    assert not disagree, f"{len(disagree)} of {len(cases)} differ:\n" + "\n".join(disagree[:20])
    # the corpus exercises both outcomes
    assert compared["bind"] > 250 and compared["error"] >= 5, compared
