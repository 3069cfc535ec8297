"""Configuration checks at start-up and the listen address's precedence (issue 11, items 1, 3, 6).

None of these need a database server: the binds are SQLite (in memory), or MariaDB/PostgreSQL URLs that a
refused configuration never connects to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from conftest import bindproxy_bin, free_port

MYSQL_URL = "mysql://root@127.0.0.1:1/never_connected"


def run(args: list[str], env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BINDPROXY_") or k == "BINDPROXY_BIN"}
    full_env.update(env or {})
    return subprocess.run([str(bindproxy_bin()), *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def write(tmp_path: Path, text: str, name: str = "bp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------------------------
# 1. A rule its bind cannot serve
# --------------------------------------------------------------------------------------------------------------
SCHEMA_ON_MYSQL = f"""\
listen: 127.0.0.1:{{port}}
default_bind: main
binds:
  main: "sqlite:///:memory:"
  logs: {MYSQL_URL}
tables:
  "audit.*": logs
"""


def assert_schema_refusal(out: str, path: Path):
    for part in (path.name, "tables.audit.*", "`logs`", "MySQL/MariaDB", "schema audit",
                 "map schema audit to a PostgreSQL bind", "drop the schema from the pattern (`*`)"):
        assert part in out, f"{part!r} missing from:\n{out}"


def test_daemon_refuses_a_schema_rule_on_a_mysql_bind(tmp_path):
    port = free_port()
    path = write(tmp_path, SCHEMA_ON_MYSQL.format(port=port))
    p = run(["--config", str(path)], timeout=15)  # a daemon that started would time out here
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert_schema_refusal(p.stderr, path)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_check_refuses_a_schema_rule_on_a_sqlite_bind(tmp_path):
    path = write(tmp_path, """\
default_bind: main
binds:
  main: "sqlite:///:memory:"
  lite: "sqlite:///:memory:"
tables:
  audit.events: lite
""")
    p = run(["check", "--config", str(path)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    out = p.stdout + p.stderr
    assert "configuration is valid" not in out, out
    for part in (path.name, "tables.audit.events", "`lite`", "SQLite", "(`events`)"):
        assert part in out, f"{part!r} missing from:\n{out}"


def test_check_refuses_the_mysql_case_too(tmp_path):
    path = write(tmp_path, SCHEMA_ON_MYSQL.format(port=free_port()))
    p = run(["check", "--config", str(path)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert_schema_refusal(p.stdout + p.stderr, path)


def test_public_and_unqualified_rules_on_translated_binds_still_load(tmp_path):
    # the same binds, rules they can serve: `check` gets past the configuration (the MySQL bind then fails to
    # connect, which is exit 1, not the configuration's 2)
    path = write(tmp_path, SCHEMA_ON_MYSQL.format(port=free_port()).replace('"audit.*": logs',
                                                                          '"public.log_*": logs\n  events: logs'))
    p = run(["check", "--config", str(path)])
    assert "configuration is valid" in p.stdout, (p.stdout, p.stderr)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "bind main: ok" in p.stdout and "bind logs: FAILED" in p.stdout, p.stdout


# --------------------------------------------------------------------------------------------------------------
# 6. A YAML value ending with a colon
# --------------------------------------------------------------------------------------------------------------
HINT = "hint: quote URLs that end with ':' (e.g. cache: \"sqlite:///:memory:\")"


@pytest.mark.parametrize("command", [[], ["check"]])
def test_unquoted_value_ending_with_a_colon_gets_a_hint(tmp_path, command):
    path = write(tmp_path, "default_bind: cache\nbinds:\n  cache: sqlite:///:memory:\n")
    p = run([*command, "--config", str(path)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "mapping values are not allowed" in p.stderr, p.stderr
    assert HINT in p.stderr and path.name in p.stderr, p.stderr
    # quoted, the same file loads
    path.write_text("default_bind: cache\nbinds:\n  cache: \"sqlite:///:memory:\"\n")
    p = run(["route", "--config", str(path), "SELECT 1"])
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_other_yaml_errors_get_no_colon_hint(tmp_path):
    path = write(tmp_path, "binds:\n  cache: [sqlite://\n")
    p = run(["check", "--config", str(path)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "hint:" not in p.stderr, p.stderr


# --------------------------------------------------------------------------------------------------------------
# 3. --listen, BINDPROXY_LISTEN, the file, the default
# --------------------------------------------------------------------------------------------------------------
class Daemon:
    def __init__(self, args: list[str], env: dict, log: Path):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("BINDPROXY_") or k == "BINDPROXY_BIN"}
        full_env.update(env)
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([str(bindproxy_bin()), *args], stdout=f, stderr=subprocess.STDOUT,
                                         env=full_env, start_new_session=True)

    def wait_accepting(self, port: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bindproxy exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"bindproxy did not accept on {port}:\n{self.log.read_text()}")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def serves_on(port: int) -> bool:
    """A PostgreSQL client gets an answer through bindproxy on this port."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="bindproxy", autocommit=True,
                         connect_timeout=5) as c:
        return c.execute("SELECT 40 + 2").fetchone() == (42,)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except OSError:
        return True


def config_with_listen(tmp_path: Path, port: int | None) -> Path:
    listen = f"listen: 127.0.0.1:{port}\n" if port is not None else ""
    return write(tmp_path, listen + "binds:\n  main: \"sqlite:///:memory:\"\n", name=f"listen-{port}.yaml")


def start(tmp_path: Path, args: list[str], env: dict, expect_port: int, others: list[int]) -> None:
    """Starts the daemon, checks that it serves on expect_port and not on the other candidates, stops it."""
    d = Daemon(args, env, tmp_path / f"daemon-{expect_port}.log")
    try:
        d.wait_accepting(expect_port)
        assert serves_on(expect_port)
        for other in others:
            assert refused(other), f"also listening on {other}"
        log = d.log.read_text()
        assert f"127.0.0.1:{expect_port}" in log, log
    finally:
        d.stop()


def test_listen_from_the_file(tmp_path):
    file_port = free_port()
    path = config_with_listen(tmp_path, file_port)
    start(tmp_path, ["--config", str(path)], {}, file_port, [])


def test_env_beats_the_file(tmp_path):
    file_port, env_port = free_port(), free_port()
    path = config_with_listen(tmp_path, file_port)
    start(tmp_path, ["--config", str(path)], {"BINDPROXY_LISTEN": f"127.0.0.1:{env_port}"}, env_port, [file_port])


def test_flag_beats_the_env_and_the_file(tmp_path):
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    path = config_with_listen(tmp_path, file_port)
    start(tmp_path, ["--config", str(path), "--listen", f"127.0.0.1:{flag_port}"],
          {"BINDPROXY_LISTEN": f"127.0.0.1:{env_port}"}, flag_port, [env_port, file_port])


def test_flag_after_the_run_subcommand(tmp_path):
    flag_port = free_port()
    path = config_with_listen(tmp_path, None)
    start(tmp_path, ["--config", str(path), "run", "--listen", f"127.0.0.1:{flag_port}"], {}, flag_port, [])


def test_empty_env_falls_back_to_the_file(tmp_path):
    file_port = free_port()
    path = config_with_listen(tmp_path, file_port)
    start(tmp_path, ["--config", str(path)], {"BINDPROXY_LISTEN": ""}, file_port, [])


def test_check_reports_where_listen_came_from(tmp_path):
    path = config_with_listen(tmp_path, 7123)
    cases = [
        ([], {}, "listen: 127.0.0.1:7123 (from the file's `listen`)"),
        ([], {"BINDPROXY_LISTEN": "127.0.0.1:7124"}, "listen: 127.0.0.1:7124 (from BINDPROXY_LISTEN)"),
        (["--listen", "0.0.0.0:7125"], {"BINDPROXY_LISTEN": "127.0.0.1:7124"}, "listen: 0.0.0.0:7125 (from --listen)"),
    ]
    for args, env, line in cases:
        p = run(["check", "--config", str(path), *args], env=env)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert line in p.stdout.splitlines(), (line, p.stdout)
    no_listen = config_with_listen(tmp_path, None)
    p = run(["check", "--config", str(no_listen)])
    assert "listen: 127.0.0.1:6432 (from the default)" in p.stdout.splitlines(), p.stdout


@pytest.mark.parametrize("args,env,origin,value", [
    (["--listen", "localhost:6432"], {}, "--listen", "localhost:6432"),
    (["--listen", "127.0.0.1"], {}, "--listen", "127.0.0.1"),
    (["--listen", "127.0.0.1:70000"], {"BINDPROXY_LISTEN": "127.0.0.1:7000"}, "--listen", "127.0.0.1:70000"),
    ([], {"BINDPROXY_LISTEN": "not an address"}, "BINDPROXY_LISTEN", "not an address"),
    ([], {"BINDPROXY_LISTEN": ":6432"}, "BINDPROXY_LISTEN", ":6432"),
])
def test_invalid_listen_is_a_clear_error(tmp_path, args, env, origin, value):
    path = config_with_listen(tmp_path, free_port())
    for command in ([], ["check"]):
        p = run([*command, "--config", str(path), *args], env=env, timeout=15)
        assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith(f"bindproxy: {origin}: `{value}` is not an address:port"), p.stderr
        assert "e.g. 0.0.0.0:6432" in p.stderr, p.stderr


def test_passwd_prints_a_verifier_that_logs_in(tmp_path):
    """`bindproxy passwd NAME` reads the password from stdin (never argv) and prints a users: entry whose
    SCRAM-SHA-256 verifier lets exactly that password in."""
    run = subprocess.run([str(bindproxy_bin()), "passwd", "app"], input="s3cret pw\n", capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert "s3cret" not in run.stdout
    verifier = next(l.split('"')[1] for l in run.stdout.splitlines() if "scram_verifier" in l)
    assert verifier.startswith("SCRAM-SHA-256$4096:"), verifier
    # a second run salts differently
    again = subprocess.run([str(bindproxy_bin()), "passwd", "app"], input="s3cret pw\n", capture_output=True,
                           text=True, timeout=30)
    assert verifier not in again.stdout
    empty = subprocess.run([str(bindproxy_bin()), "passwd", "app"], input="\n", capture_output=True, text=True,
                           timeout=30)
    assert empty.returncode != 0 and "empty" in empty.stderr
    port = free_port()
    cfg = tmp_path / "users.yaml"
    cfg.write_text(f"listen: 127.0.0.1:{port}\nbinds:\n  main: \"sqlite:///:memory:\"\n"
                   f"transactions:\n  log_dir: {tmp_path}/txlog\n"
                   "users:\n" + "\n".join(l for l in run.stdout.splitlines() if not l.startswith("#")) + "\n")
    proc = subprocess.Popen([str(bindproxy_bin()), "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "bindproxy did not listen"
                time.sleep(0.1)
        with psycopg.connect(host="127.0.0.1", port=port, user="app", password="s3cret pw", dbname="app") as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError) as ei:
            psycopg.connect(host="127.0.0.1", port=port, user="app", password="wrong", dbname="app")
        assert "28P01" in str(ei.value) or "password" in str(ei.value)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
