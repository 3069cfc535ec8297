"""TLS from bindproxy to a MySQL/MariaDB bind (issue 10): `ssl_mode` and `ssl_ca` in the bind URL, also in the
forms SQLAlchemy users write for PyMySQL (`ssl_ca=…` alone, `ssl=true`).

A throwaway mariadbd runs with TLS (certificates made by openssl: a CA, a server certificate for localhost and
127.0.0.1, an unrelated CA) in a temp dir on a free port, with performance_schema on, so that a side
connection can read the `Ssl_cipher` of every bindproxy connection from the server itself
(performance_schema.status_by_thread). The shared MariaDB (127.0.0.1:3306, no TLS) is the "server without
TLS".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pymysql
import pytest

from conftest import MY_PORT, PROXY_DBNAME, PROXY_USER, Proxy, bindproxy_bin, free_port
from test_tls import Certs

DB = "tlsdb"
USER = "bp_tls"


def as_mysql(*cmd: str) -> tuple:
    return ("runuser", "-u", "mysql", "--", *cmd) if os.geteuid() == 0 else ("sudo", "-n", "-u", "mysql", *cmd)


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="bp-mytls-certs-"))
    d.chmod(0o755)
    yield Certs(d).make()
    shutil.rmtree(d, ignore_errors=True)


class MariaDb:
    def __init__(self, base: Path, port: int):
        self.base, self.port = base, port
        self.datadir, self.socket, self.pid = base / "data", base / "mysqld.sock", base / "mysqld.pid"

    def side(self) -> pymysql.connections.Connection:
        """A connection of the test's own, over the Unix socket as root."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True, connect_timeout=5)

    def ciphers(self) -> list[str]:
        """The Ssl_cipher of every connection of the bind's user, as the server reports it."""
        with self.side() as c, c.cursor() as cur:
            cur.execute(
                "SELECT s.VARIABLE_VALUE FROM performance_schema.status_by_thread s "
                "JOIN performance_schema.threads t USING (THREAD_ID) "
                "WHERE s.VARIABLE_NAME = 'Ssl_cipher' AND t.PROCESSLIST_USER = %s", (USER,))
            return [r[0] for r in cur.fetchall()]


@pytest.fixture(scope="module")
def tls_mariadb(certs):
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
    assert Path(mariadbd).exists() and Path(install).exists(), "mariadbd and mariadb-install-db are needed"
    base = Path(tempfile.mkdtemp(prefix="bp-mytls-"))
    base.chmod(0o755)
    shutil.chown(base, "mysql", "mysql")
    m = MariaDb(base, free_port())
    p = subprocess.run(as_mysql(install, "--no-defaults", f"--datadir={m.datadir}",
                                "--auth-root-authentication-method=normal", "--skip-test-db"),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    proc = subprocess.Popen(
        as_mysql(mariadbd, "--no-defaults", f"--datadir={m.datadir}", f"--port={m.port}", f"--socket={m.socket}",
                 f"--pid-file={m.pid}", "--bind-address=127.0.0.1,127.0.0.2", f"--ssl-cert={certs.server}",
                 f"--ssl-key={certs.server_key}", f"--ssl-ca={certs.ca}", "--performance-schema=ON",
                 "--skip-log-bin", "--innodb-buffer-pool-size=16M"),
        stdout=open(base / "err.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with m.side() as c, c.cursor() as cur:
                    cur.execute(f"CREATE USER IF NOT EXISTS {USER}@'%'")
                    cur.execute(f"GRANT ALL ON *.* TO {USER}@'%'")
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {DB}.tls_items (id int PRIMARY KEY, label text)")
                    cur.execute(f"REPLACE INTO {DB}.tls_items VALUES (1, 'encrypted')")
                break
            except pymysql.err.OperationalError:
                assert proc.poll() is None and time.monotonic() < deadline, (base / "err.log").read_text()
                time.sleep(0.3)
        yield m
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def url(m: MariaDb, query: str, host: str = "127.0.0.1", scheme: str = "mysql+pymysql") -> str:
    return f"{scheme}://{USER}@{host}:{m.port}/{DB}?{query}"


def start(tmp_path: Path, name: str, bind_url: str) -> Proxy:
    config = {"default_bind": "my", "binds": {"my": {"url": bind_url, "pool_size": 2}},
              "tables": {"tls_items": "my"}, "catalog": "off"}
    return Proxy(config, tmp_path, name=name).start()


def read(proxy: Proxy, during=None):
    """The label of row 1 through bindproxy, and what `during()` says while the session holds its connection."""
    with psycopg.connect(host="127.0.0.1", port=proxy.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                         autocommit=True) as c:
        label = c.execute("SELECT label FROM tls_items WHERE id = 1").fetchone()[0]
        return label if during is None else (label, during())


def check(proxy: Proxy) -> subprocess.CompletedProcess:
    return subprocess.run([str(bindproxy_bin()), "check", "--config", str(proxy.config_path)], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("query", [
    "ssl_mode=VERIFY_CA&ssl_ca={ca}",
    "ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}",
    "ssl_ca={ca}",  # PyMySQL's form: a CA alone verifies the certificate and its host name
    "ssl_mode=REQUIRED",
    "ssl=true",
    "ssl_mode=PREFERRED",
])
def test_encrypted_modes_connect_and_the_server_sees_tls(tls_mariadb, certs, tmp_path, query):
    proxy = start(tmp_path, "mytls", url(tls_mariadb, query.format(ca=certs.ca)))
    try:
        label, ciphers = read(proxy, tls_mariadb.ciphers)
        assert label == "encrypted"
        assert ciphers and all(ciphers), f"every connection of the bind must be encrypted: {ciphers}"
        out = check(proxy)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "bind my: ok (MariaDB" in out.stdout and ", TLS TLS_" in out.stdout, out.stdout
    finally:
        proxy.stop()
    wait_gone(tls_mariadb)


def wait_gone(m: MariaDb):
    """The next case counts only its own connections."""
    deadline = time.monotonic() + 10
    while m.ciphers() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_disabled_connects_in_plaintext(tls_mariadb, tmp_path):
    proxy = start(tmp_path, "mytls-off", url(tls_mariadb, "ssl_mode=DISABLED"))
    try:
        label, ciphers = read(proxy, tls_mariadb.ciphers)
        assert label == "encrypted"
        assert ciphers and not any(ciphers), ciphers
    finally:
        proxy.stop()
    wait_gone(tls_mariadb)


@pytest.mark.parametrize("query,problem", [
    ("ssl_mode=VERIFY_CA&ssl_ca={wrong}", "UnknownIssuer"),
    ("ssl_ca={wrong}", "UnknownIssuer"),
])
def test_a_wrong_ca_fails_at_connect(tls_mariadb, certs, tmp_path, query, problem):
    proxy = start(tmp_path, "mytls-wrong", url(tls_mariadb, query.format(wrong=certs.wrong_ca)))
    try:
        with pytest.raises(psycopg.OperationalError) as e:
            read(proxy)
        assert e.value.sqlstate.startswith("08"), (e.value.sqlstate, str(e.value))
        assert 'bind "my"' in str(e.value) and problem in str(e.value), str(e.value)
        assert proxy.alive()
        assert not tls_mariadb.ciphers(), "no connection of the bind got through"
    finally:
        proxy.stop()


def test_verify_identity_checks_the_host_name(tls_mariadb, certs, tmp_path):
    """The server's certificate names localhost and 127.0.0.1; through 127.0.0.2 (the same server, loopback too)
    the chain is right but the identity is not: VERIFY_IDENTITY refuses. (mysql_async 0.37's rustls verifier
    refuses a name mismatch under VERIFY_CA too: README, Known limitations.)"""
    proxy = start(tmp_path, "mytls-id", url(tls_mariadb, f"ssl_mode=VERIFY_IDENTITY&ssl_ca={certs.ca}",
                                            host="127.0.0.2"))
    try:
        with pytest.raises(psycopg.OperationalError) as e:
            read(proxy)
        assert e.value.sqlstate.startswith("08") and "not valid for name" in str(e.value), str(e.value)
        assert not tls_mariadb.ciphers()
    finally:
        proxy.stop()


def test_required_against_a_server_without_tls_fails(mariadb, tmp_path):
    proxy = start(tmp_path, "mytls-req", f"mysql://root@127.0.0.1:{MY_PORT}/{mariadb}?ssl_mode=REQUIRED")
    try:
        with pytest.raises(psycopg.OperationalError) as e:
            read(proxy)
        assert e.value.sqlstate.startswith("08") and 'bind "my"' in str(e.value), str(e.value)
        assert "SSL" in str(e.value) or "TLS" in str(e.value), str(e.value)
    finally:
        proxy.stop()


def test_preferred_against_a_server_without_tls_uses_plaintext(mariadb, tmp_path):
    with pymysql.connect(host="127.0.0.1", port=MY_PORT, user="root", database=mariadb, autocommit=True) as c:
        with c.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS tls_items (id int PRIMARY KEY, label text)")
            cur.execute("REPLACE INTO tls_items VALUES (1, 'plaintext')")
    proxy = start(tmp_path, "mytls-pref", f"mysql://root@127.0.0.1:{MY_PORT}/{mariadb}?ssl_mode=PREFERRED")
    try:
        assert read(proxy) == "plaintext"
        assert read(proxy) == "plaintext"
    finally:
        proxy.stop()


def test_bad_tls_settings_stop_bindproxy_at_startup(tls_mariadb, tmp_path):
    for query, problem in [
        ("ssl_mode=VERIFY_CA", "needs ssl_ca"),
        ("ssl_mode=SOMETIMES", "bad ssl_mode"),
        ("ssl_ca=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
    ]:
        proxy = Proxy({"binds": {"my": url(tls_mariadb, query)}}, tmp_path, name="mytls-bad")
        proxy.config_path.write_text(f"binds:\n  my: \"{url(tls_mariadb, query)}\"\n")
        out = subprocess.run([str(bindproxy_bin()), "check", "--config", str(proxy.config_path)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "binds.my.url" in out.stderr + out.stdout and problem in out.stderr + out.stdout, \
            out.stdout + out.stderr
