"""Fixtures for the bindproxy integration tests.

Every run creates its own databases, named after the pytest process id:

  PostgreSQL (127.0.0.1:5432, user postgres, trust):  bp_<pid>_main, bp_<pid>_users, bp_<pid>_bench, bp_<pid>_tiny
  MariaDB    (127.0.0.1:3306, root, empty password):  bp_<pid>_logs          (issue 3 binds)
  SQLite:                                             files in a temp dir   (issue 3 binds)

writes a YAML config with a free port, starts the bindproxy binary ($BINDPROXY_BIN or target/debug/bindproxy),
waits until it accepts, and on teardown kills it and drops the databases. Leftover databases of dead runs are
dropped at start. Backends that are missing make the tests fail (never skip).

The default proxy (`proxy` fixture) maps:

  bind main   (default)     bp_<pid>_main     orders, and everything unmapped
  bind userdb               bp_<pid>_users    users (exact), user_* (glob), audit.* (schema)
  bind bench                bp_<pid>_bench    pgbench_*
  bind tiny                 bp_<pid>_tiny     scarce         pool_size 1, checkout_timeout_ms 500
  bind dead                 nothing listens   ghost

`users` and `orders` exist with the same columns in BOTH main and userdb, so a statement routed to the wrong bind
succeeds there and the row check on the backends catches it.

Env overrides: BP_PG_HOST/BP_PG_PORT/BP_PG_USER, BP_MY_HOST/BP_MY_PORT/BP_MY_USER/BP_MY_PASSWORD, BINDPROXY_BIN.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymysql
import pytest

ROOT = Path(__file__).resolve().parents[2]
PID = os.getpid()
PREFIX = f"bp_{PID}_"

PG_HOST = os.environ.get("BP_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BP_PG_PORT", "5432"))
PG_USER = os.environ.get("BP_PG_USER", "postgres")
MY_HOST = os.environ.get("BP_MY_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("BP_MY_PORT", "3306"))
MY_USER = os.environ.get("BP_MY_USER", "root")
MY_PASSWORD = os.environ.get("BP_MY_PASSWORD", "")

# The database name clients put in their startup packet. bindproxy routes by table, not by database name.
PROXY_DBNAME = "bindproxy"
PROXY_USER = PG_USER

BIND_DB = {  # bind name -> PostgreSQL database (suffix)
    "main": "main",
    "userdb": "users",
    "bench": "bench",
    "tiny": "tiny",
}


def bindproxy_bin() -> Path:
    env = os.environ.get("BINDPROXY_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "bindproxy"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_url(dbname: str, port: int = PG_PORT) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{port}/{dbname}"


def pg_admin() -> psycopg.Connection:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True,
                           connect_timeout=5)


def pg_direct(dbname: str) -> psycopg.Connection:
    """A direct autocommit connection to a backend database (bypassing the proxy)."""
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True,
                           connect_timeout=5)


def my_admin(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password=MY_PASSWORD, database=database,
                           autocommit=True, connect_timeout=5)


# --------------------------------------------------------------------------------------------------------------
# YAML (the venv has no YAML library; the config is simple enough to write by hand)
# --------------------------------------------------------------------------------------------------------------
def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_yaml(obj, indent: int = 0) -> str:
    pad = "  " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append(f"{pad}{_yaml_scalar(k)}:")
            out.append(to_yaml(v, indent + 1))
        elif isinstance(v, list):
            out.append(f"{pad}{_yaml_scalar(k)}: [{', '.join(_yaml_scalar(x) for x in v)}]")
        else:
            out.append(f"{pad}{_yaml_scalar(k)}: {_yaml_scalar(v)}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_stale_databases():
    """Drop bp_<pid>_* databases left by runs whose process is gone."""
    with pg_admin() as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname ~ '^bp_[0-9]+_'").fetchall():
            pid = int(name.split("_")[1])
            if pid != PID and not _pid_alive(pid):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # shadow catalogs bindproxy created by default (`catalog:` unset) for the proxies of dead runs
        for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname ~ '^bindproxy_catalog_p[0-9]+_'").fetchall():
            pid = int(re.match(r"bindproxy_catalog_p(\d+)_", name).group(1))
            if pid != PID and not _pid_alive(pid):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        with my_admin() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'bp\\_%'")
            for (name,) in cur.fetchall():
                m = re.match(r"bp_(\d+)_", name)
                if m and int(m.group(1)) != PID and not _pid_alive(int(m.group(1))):
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    except pymysql.err.OperationalError:
        pass  # reported by the mariadb fixture


@dataclass
class Backends:
    pg_dbs: dict[str, str] = field(default_factory=dict)   # bind -> database name
    tmpdir: Path = Path(".")
    my_dbs: list[str] = field(default_factory=list)

    def db(self, bind: str) -> str:
        return self.pg_dbs[bind]

    def direct(self, bind: str) -> psycopg.Connection:
        return pg_direct(self.pg_dbs[bind])

    def query(self, bind: str, sql: str, params=None) -> list[tuple]:
        with self.direct(bind) as c:
            return c.execute(sql, params).fetchall()

    def scalar(self, bind: str, sql: str, params=None):
        rows = self.query(bind, sql, params)
        return rows[0][0] if rows else None

    def table_exists(self, bind: str, name: str) -> bool:
        return self.scalar(bind, "SELECT to_regclass(%s) IS NOT NULL", (name,))

    def mysql_db(self, suffix: str = "logs") -> str:
        """Create (once) and return a MariaDB database bp_<pid>_<suffix>."""
        name = PREFIX + suffix
        if name not in self.my_dbs:
            with my_admin() as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            self.my_dbs.append(name)
        return name

    def sqlite_path(self, name: str) -> Path:
        return self.tmpdir / f"{name}.db"


SCHEMA_BOTH = """
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, amount numeric(10,2));
"""
SCHEMA_USERDB = """
CREATE TABLE user_profiles (user_id int PRIMARY KEY, bio text);
CREATE SCHEMA audit;
CREATE TABLE audit.events (id serial PRIMARY KEY, what text);
INSERT INTO users VALUES (1, 'seed-userdb'), (2, 'seed-userdb-2');
INSERT INTO user_profiles VALUES (1, 'seed profile');
"""
SCHEMA_MAIN = """
CREATE TABLE items (id int PRIMARY KEY, label text);
INSERT INTO users VALUES (1, 'seed-main');
INSERT INTO orders VALUES (1, 1, 10.00);
"""
SCHEMA_TINY = "CREATE TABLE scarce (id int PRIMARY KEY); INSERT INTO scarce VALUES (1);"


@pytest.fixture(scope="session")
def backends(tmp_path_factory):
    """Creates this run's databases; drops them at the end. Fails (never skips) if PostgreSQL is missing."""
    try:
        pg_admin().close()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_USER}: {e}", pytrace=False)
    _drop_stale_databases()
    b = Backends(tmpdir=tmp_path_factory.mktemp("bindproxy"))
    with pg_admin() as conn:
        for bind, suffix in BIND_DB.items():
            name = PREFIX + suffix
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                         "LC_COLLATE 'C' LC_CTYPE 'C'")
            b.pg_dbs[bind] = name
    with b.direct("main") as c:
        c.execute(SCHEMA_BOTH)
        c.execute(SCHEMA_MAIN)
    with b.direct("userdb") as c:
        c.execute(SCHEMA_BOTH)
        c.execute(SCHEMA_USERDB)
    with b.direct("tiny") as c:
        c.execute(SCHEMA_TINY)
    yield b
    with pg_admin() as conn:
        for name in b.pg_dbs.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # the shadow catalogs this run's proxies made by default (instance ids p<pid>_<n>, see Proxy)
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                    (f"bindproxy\\_catalog\\_p{PID}\\_%",)).fetchall():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if b.my_dbs:
        with my_admin() as conn, conn.cursor() as cur:
            for name in b.my_dbs:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def mariadb(backends):
    """The run's MariaDB database (bp_<pid>_logs). Fails if MariaDB is not reachable."""
    try:
        return backends.mysql_db("logs")
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"MariaDB is not reachable on {MY_HOST}:{MY_PORT} as {MY_USER}: {e}", pytrace=False)


# --------------------------------------------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------------------------------------------
_instance_ids = iter(range(1, 1_000_000))


class Proxy:
    """One bindproxy process with its own config file and port."""

    def __init__(self, config: dict, workdir: Path, name: str = "proxy"):
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.config = {"listen": f"127.0.0.1:{self.port}", **config}
        # Each proxy its own decision log and instance id (the prefix of its prepared transactions' ids),
        # so proxies of this run and of other runs never recover or see each other's branches.
        tx = dict(self.config.get("transactions") or {})
        tx.setdefault("log_dir", str(workdir / f"{name}-txlog"))
        tx.setdefault("instance_id", f"p{PID}_{next(_instance_ids)}")
        self.config["transactions"] = tx
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # extra environment for the next start (e.g. FAILPOINTS for the crash tests)
        self.extra_env: dict[str, str] = {}

    # -- lifecycle --
    def start(self, timeout: float = 30.0):
        binary = bindproxy_bin()
        if not binary.exists():
            pytest.fail(f"bindproxy binary not found at {binary} (run `cargo build` or set BINDPROXY_BIN)",
                        pytrace=False)
        self.config_path.write_text(to_yaml(self.config) + "\n")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        logf = open(self.log_path, "ab")
        logf.write(f"\n----- start #{self.starts + 1}: {binary} --config {self.config_path}\n".encode())
        logf.flush()
        self.proc = subprocess.Popen([str(binary), "--config", str(self.config_path)], stdout=logf,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        logf.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"bindproxy exited with {self.proc.returncode} at start-up; log:\n{self.log_tail()}",
                            pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"bindproxy did not accept on port {self.port} within {timeout}s; log:\n{self.log_tail()}",
                    pytrace=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def ensure_running(self):
        if not self.alive():
            self.start()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # -- clients --
    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={PROXY_USER} dbname={PROXY_DBNAME}"

    @property
    def url(self) -> str:
        return f"postgresql://{PROXY_USER}@127.0.0.1:{self.port}/{PROXY_DBNAME}"

    def connect(self, autocommit: bool = True, **kw) -> psycopg.Connection:
        """psycopg 3 connection through the proxy (extended protocol, text results by default)."""
        kw.setdefault("connect_timeout", 10)
        return psycopg.connect(host="127.0.0.1", port=self.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                               autocommit=autocommit, **kw)

    def connect2(self, **kw):
        """psycopg2 connection through the proxy (simple protocol, client-side parameters)."""
        import psycopg2

        kw.setdefault("connect_timeout", 10)
        c = psycopg2.connect(host="127.0.0.1", port=self.port, user=PROXY_USER, dbname=PROXY_DBNAME, **kw)
        return c

    async def connect_asyncpg(self, **kw):
        import asyncpg

        kw.setdefault("timeout", 10)
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user=PROXY_USER, database=PROXY_DBNAME,
                                     **kw)

    def libpq_env(self) -> dict:
        env = dict(os.environ)
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=PROXY_USER, PGDATABASE=PROXY_DBNAME,
                   PGCONNECT_TIMEOUT="10")
        env.pop("PGPASSWORD", None)
        return env

    def psql(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess:
        cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-w", *args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.libpq_env(),
                           timeout=timeout, cwd=cwd)
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def pgbench(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = ["pgbench", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.libpq_env(), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p


def pg_config(backends: Backends, **extra_binds) -> dict:
    """The standard PostgreSQL-only config (see module docstring). Pass name=url-or-dict to add binds."""
    dead_port = free_port()  # nothing listens there
    binds = {
        "main": pg_url(backends.db("main")),
        "userdb": {"url": pg_url(backends.db("userdb")), "pool_size": 10},
        "bench": pg_url(backends.db("bench")),
        "tiny": {"url": pg_url(backends.db("tiny")), "pool_size": 1, "checkout_timeout_ms": 500},
        "dead": {"url": pg_url("nowhere", port=dead_port), "checkout_timeout_ms": 2000},
    }
    binds.update(extra_binds)
    return {
        "default_bind": "main",
        "binds": binds,
        "tables": {
            "users": "userdb",
            "user_*": "userdb",
            "audit.*": "userdb",
            "pgbench_*": "bench",
            "scarce": "tiny",
            "ghost": "dead",
        },
    }


def mixed_config(backends: Backends) -> dict:
    """PostgreSQL + MariaDB + SQLite (file and memory) binds, for the issue 3 tests."""
    cfg = pg_config(backends)
    logs = backends.mysql_db("logs")
    cfg["binds"]["logs"] = f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{logs}"
    cfg["binds"]["files"] = f"sqlite:///{backends.sqlite_path('files')}"  # sqlite:////abs/path
    cfg["binds"]["mem"] = "sqlite:///:memory:"
    cfg["tables"].update({"log_*": "logs", "file_*": "files", "mem_*": "mem"})
    return cfg


_ALL_PROXIES: list[Proxy] = []


@pytest.fixture(scope="session")
def start_proxy(backends):
    """Factory: start_proxy(config_dict, name) -> running Proxy, stopped at the end of the session."""
    started = []

    def _start(config: dict, name: str = "proxy") -> Proxy:
        p = Proxy(config, backends.tmpdir, name=f"{name}-{len(started)}")
        started.append(p)
        _ALL_PROXIES.append(p)
        return p.start()

    yield _start
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def _session_proxy(backends, start_proxy):
    return start_proxy(pg_config(backends), "main")


@pytest.fixture
def proxy(_session_proxy) -> Proxy:
    """The shared proxy with the standard config, restarted if an earlier test killed it."""
    _session_proxy.ensure_running()
    return _session_proxy


@pytest.fixture
def conn(proxy):
    """A psycopg 3 autocommit connection through the shared proxy."""
    with proxy.connect() as c:
        yield c


_counter = iter(range(1_000_000, 10_000_000))


@pytest.fixture
def uid():
    """Unique ids for rows a test inserts (seed rows use small ids)."""
    return lambda: next(_counter)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for p in _ALL_PROXIES:
            state = "running" if p.alive() else f"NOT RUNNING (exit {p.proc.returncode if p.proc else '?'})"
            rep.sections.append((f"bindproxy {p.name} log tail ({state}, {p.log_path})", p.log_tail(40)))


def pytest_sessionfinish(session, exitstatus):
    for p in _ALL_PROXIES:
        p.stop()


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed (scripts/test.sh installs it)", pytrace=False)
    return path


def wait_until(pred, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


__all__ = ["Proxy", "Backends", "pg_config", "mixed_config", "require_tool", "wait_until", "tempfile"]


def engines_config(backends: Backends, mariadb: str, sqlite_name: str) -> dict:
    """A MariaDB bind `my` (tables m_*, the default) and a SQLite file bind `lite` (tables s_*), for
    tests that compare the engines with PostgreSQL."""
    return {
        "default_bind": "my",
        "binds": {
            "my": f"mysql://root@127.0.0.1:3306/{mariadb}",
            "lite": f"sqlite:///{backends.sqlite_path(sqlite_name)}",
        },
        "tables": {"m_*": "my", "s_*": "lite"},
    }


def scratch_pg_database(suffix: str):
    """A fresh PostgreSQL database bp_<pid>_<suffix> for the duration of a fixture (a generator)."""
    name = PREFIX + suffix
    with pg_admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    yield name
    with pg_admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
