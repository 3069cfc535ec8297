"""pgbench through the proxy; pgbench_* is mapped to the non-default bind `bench`."""

import re
import subprocess

import pytest

from conftest import PG_HOST, PG_PORT, PG_USER, require_tool

PGBENCH_TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]


def processed(out: str) -> tuple[int, int]:
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def init_direct(backends):
    """pgbench -i straight into the bench bind's database (not through the proxy)."""
    require_tool("pgbench")
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER,
                    backends.db("bench")], check=True, capture_output=True, timeout=120)


def assert_only_on_bench(backends):
    for t in PGBENCH_TABLES:
        assert backends.table_exists("bench", t), t
        assert not backends.table_exists("main", t), f"{t} leaked to the default bind"
        assert not backends.table_exists("userdb", t), f"{t} leaked to userdb"


def test_pgbench_init_through_proxy(proxy, backends):
    require_tool("pgbench")
    p = proxy.pgbench("-i", "-s", "1")
    assert "done" in p.stderr + p.stdout
    # pgbench -i runs DROP TABLE a, b, c, d; CREATE TABLE; TRUNCATE; COPY FROM STDIN; VACUUM ANALYZE; ALTER TABLE
    assert "ERROR" not in p.stderr, p.stderr
    assert_only_on_bench(backends)
    assert backends.scalar("bench", "SELECT count(*) FROM pgbench_accounts") == 100000
    assert backends.scalar("bench", "SELECT count(*) FROM pgbench_branches") == 1
    # the primary keys from the ALTER TABLE steps
    assert backends.scalar("bench", "SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
                                    "AND conrelid::regclass::text LIKE 'pgbench_%'") == 3


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(proxy, backends, mode):
    init_direct(backends)
    p = proxy.pgbench("-S", "-M", mode, "-t", "200", "-c", "4")
    assert processed(p.stdout) == (800, 800), p.stdout
    # without -n pgbench VACUUMs pgbench_branches/tellers and TRUNCATEs pgbench_history first:
    # a VACUUM sent to the wrong bind prints "ERROR ... (ignoring this error and continuing anyway)"
    assert "ERROR" not in p.stderr and "ignoring this error" not in p.stderr, p.stderr
    assert_only_on_bench(backends)


@pytest.mark.parametrize("mode", ["simple", "prepared"])
def test_pgbench_tpcb(proxy, backends, mode):
    init_direct(backends)
    before = backends.scalar("bench", "SELECT sum(abalance) FROM pgbench_accounts")
    p = proxy.pgbench("-M", mode, "-t", "50", "-c", "2")
    assert processed(p.stdout) == (100, 100), p.stdout
    assert "ERROR" not in p.stderr, p.stderr
    assert backends.scalar("bench", "SELECT count(*) FROM pgbench_history") == 100
    # every transaction updated accounts, tellers and branches consistently
    acc = backends.scalar("bench", "SELECT sum(abalance) FROM pgbench_accounts")
    tel = backends.scalar("bench", "SELECT sum(tbalance) FROM pgbench_tellers")
    bra = backends.scalar("bench", "SELECT sum(bbalance) FROM pgbench_branches")
    hist = backends.scalar("bench", "SELECT sum(delta) FROM pgbench_history")
    assert before == 0 and acc == tel == bra == hist
    assert_only_on_bench(backends)
