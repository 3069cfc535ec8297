"""TLS on both sides of bindproxy (issue 10).

Client side: psql, psycopg and asyncpg connect with TLS to a bindproxy that has `tls:` configured; `mode:
require` refuses plaintext clients; PostgreSQL 17's direct TLS (ALPN `postgresql`) works; GSSENCRequest is
refused with 'N'; plaintext bytes sent after an SSLRequest are never taken as part of the TLS session.

Bind side: a second, real PostgreSQL postmaster runs with ssl=on and only `hostssl` lines in pg_hba.conf (so a
plaintext connection is refused by the server itself), and a third one with ssl=off. Bind URLs with `sslmode`
and `sslrootcert` must behave as libpq does.

Certificates are made with openssl (Debian's) in a temp dir: a CA, a server certificate for localhost and
127.0.0.1 signed by it, and an unrelated CA (the "wrong" one).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from conftest import PG_USER, PROXY_DBNAME, PROXY_USER, Proxy, bindproxy_bin, free_port, pg_config

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def run(*cmd: str, cwd: Path | None = None, user: str | None = None) -> str:
    if user and os.geteuid() == 0:
        cmd = ("runuser", "-u", user, "--", *cmd)
    elif user:
        cmd = ("sudo", "-n", "-u", user, *cmd)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


# --------------------------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------------------------
class Certs:
    def __init__(self, d: Path):
        self.dir = d
        self.ca = d / "ca.crt"
        self.ca_key = d / "ca.key"
        self.server = d / "server.crt"
        self.server_key = d / "server.key"
        self.wrong_ca = d / "wrong-ca.crt"
        # the extra postmaster's certificate: names localhost only (not 127.0.0.1)
        self.pg = d / "pg.crt"
        self.pg_key = d / "pg.key"

    def make(self):
        d = self.dir
        for name in ("ca", "wrong-ca"):
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=bindproxy test {name}", "-keyout", str(d / f"{name}.key"),
                "-out", str(d / f"{name}.crt"),
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("pg", "DNS:localhost")):
            run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
            ext = d / f"{name}.ext"
            ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                           "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
            run("openssl", "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(self.ca), "-CAkey",
                str(self.ca_key), "-CAcreateserial", "-days", "2", "-out", str(d / f"{name}.crt"),
                "-extfile", str(ext))
        for p in d.iterdir():
            p.chmod(0o644)
        return self


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="bp-tls-certs-"))
    d.chmod(0o755)
    yield Certs(d).make()
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# Extra postmasters: one with ssl=on and hostssl only, one with ssl=off
# --------------------------------------------------------------------------------------------------------------
class Postmaster:
    def __init__(self, datadir: Path, port: int):
        self.datadir = datadir
        self.port = port

    def start(self):
        run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "log"), "-w", "-t", "60",
            "start", user="postgres")

    def stop(self):
        subprocess.run(self.as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                                        "-w", "stop"), capture_output=True, timeout=60)

    @staticmethod
    def as_postgres(*cmd: str) -> tuple:
        return ("runuser", "-u", "postgres", "--", *cmd) if os.geteuid() == 0 else ("sudo", "-n", "-u", "postgres",
                                                                                    *cmd)


@pytest.fixture(scope="module")
def postmasters(certs):
    """(tls, plain): two real PostgreSQL 15 postmasters in temp dirs on free ports."""
    base = Path(tempfile.mkdtemp(prefix="bp-tls-pg-"))
    base.chmod(0o755)
    shutil.chown(base, "postgres", "postgres")
    tls_dir, plain_dir = base / "tls", base / "plain"
    run(str(PG_BIN / "initdb"), "-D", str(tls_dir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
        "--locale=C", user="postgres")
    run("cp", "-a", str(tls_dir), str(plain_dir), user="postgres")
    common = ("listen_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nport = {port}\nfsync = off\n"
              "max_connections = 30\nshared_buffers = 16MB\n")
    tls_pm, plain_pm = Postmaster(tls_dir, free_port()), Postmaster(plain_dir, free_port())
    for name in ("server.crt", "server.key"):
        shutil.copy(certs.dir / name.replace("server", "pg"), tls_dir / name)
        shutil.chown(tls_dir / name, "postgres", "postgres")
    (tls_dir / "server.key").chmod(0o600)
    with open(tls_dir / "postgresql.conf", "a") as f:
        f.write(common.format(dir=tls_dir, port=tls_pm.port))
        f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    # hostssl only: the server itself refuses every plaintext TCP connection
    (tls_dir / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    with open(plain_dir / "postgresql.conf", "a") as f:
        f.write(common.format(dir=plain_dir, port=plain_pm.port))
        f.write("ssl = off\n")
    (plain_dir / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    started = []
    try:
        for pm in (tls_pm, plain_pm):
            pm.start()
            started.append(pm)
        with psycopg.connect(host="127.0.0.1", port=tls_pm.port, user="postgres", dbname="postgres",
                             sslmode="require", autocommit=True) as c:
            c.execute("CREATE TABLE secure_items (id int PRIMARY KEY, label text)")
            c.execute("INSERT INTO secure_items VALUES (1, 'over tls'), (2, 'still tls')")
        with psycopg.connect(host="127.0.0.1", port=plain_pm.port, user="postgres", dbname="postgres",
                             sslmode="disable", autocommit=True) as c:
            c.execute("CREATE TABLE plain_items (id int PRIMARY KEY)")
        yield tls_pm, plain_pm
    finally:
        for pm in started:
            pm.stop()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# Proxies
# --------------------------------------------------------------------------------------------------------------
def _proxy(backends, tmp_path, name, tls=None, **binds) -> Proxy:
    config = pg_config(backends, **binds)
    if tls is not None:
        config["tls"] = tls
    return Proxy(config, tmp_path, name=name).start()


@pytest.fixture
def tls_proxy(backends, certs, tmp_path):
    p = _proxy(backends, tmp_path, "tls", tls={"cert": str(certs.server), "key": str(certs.server_key)})
    yield p
    p.stop()


def psql_env(port: int, **libpq) -> dict:
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER=PROXY_USER, PGDATABASE=PROXY_DBNAME,
               PGCONNECT_TIMEOUT="10")
    env.pop("PGPASSWORD", None)
    env.update({k: str(v) for k, v in libpq.items()})
    return env


def psql(port: int, sql: str, **libpq) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-w", "-c", sql], capture_output=True,
                          text=True, env=psql_env(port, **libpq), timeout=60)


USERS_SQL = "SELECT id, name FROM users ORDER BY id"


def direct_users(backends) -> str:
    rows = backends.query("userdb", USERS_SQL)
    return "\n".join(f"{i}|{n}" for i, n in rows)


# --------------------------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------------------------
def test_psql_sslmode_require(tls_proxy, backends):
    p = psql(tls_proxy.port, "\\conninfo", PGSSLMODE="require")
    assert p.returncode == 0, p.stderr
    assert "SSL connection" in p.stdout, p.stdout
    p = psql(tls_proxy.port, USERS_SQL, PGSSLMODE="require")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == direct_users(backends)
    assert "tls=true" in tls_proxy.log_tail(200)


def test_psql_verify_full_with_the_ca(tls_proxy, backends, certs):
    for host in ("localhost", "127.0.0.1"):  # the certificate names both (DNS and IP SAN)
        p = psql(tls_proxy.port, USERS_SQL, PGHOST=host, PGSSLMODE="verify-full", PGSSLROOTCERT=certs.ca)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == direct_users(backends)
    # the same with a CA that did not sign the certificate: libpq refuses the server
    p = psql(tls_proxy.port, "SELECT 1", PGHOST="localhost", PGSSLMODE="verify-full",
             PGSSLROOTCERT=certs.wrong_ca)
    assert p.returncode != 0
    assert "certificate verify failed" in p.stderr, p.stderr


def test_psycopg_sslmode_require(tls_proxy, backends):
    with tls_proxy.connect(sslmode="require") as c:
        assert c.pgconn.ssl_in_use
        rows = c.execute(USERS_SQL).fetchall()
        assert rows == backends.query("userdb", USERS_SQL)
        # the extended protocol with parameters, and a transaction, over TLS
        with c.transaction():
            c.execute("INSERT INTO orders VALUES (%s, %s, %s)", (9001, 1, 12.5))
        assert c.execute("SELECT amount FROM orders WHERE id = %s", (9001,)).fetchone()[0] == 12.5
        c.execute("DELETE FROM orders WHERE id = 9001")
    # a plaintext client is still served (mode: prefer)
    with tls_proxy.connect(sslmode="disable") as c:
        assert not c.pgconn.ssl_in_use
        assert c.execute(USERS_SQL).fetchall() == backends.query("userdb", USERS_SQL)


def test_tls12_and_large_results(tls_proxy):
    """TLS 1.2 is offered too; a result larger than many TLS records arrives whole."""
    for version in ("TLSv1.2", "TLSv1.3"):
        p = psql(tls_proxy.port, "\\conninfo", PGSSLMODE="require", PGSSLMINPROTOCOLVERSION=version,
                 PGSSLMAXPROTOCOLVERSION=version)
        assert p.returncode == 0, p.stderr
        assert f"protocol: {version}" in p.stdout, p.stdout
    with tls_proxy.connect(sslmode="require", ssl_max_protocol_version="TLSv1.2") as c:
        assert c.pgconn.ssl_in_use
        n, total = c.execute("SELECT count(*), sum(length(x)) FROM (SELECT repeat('x', 1000) || g AS x "
                             "FROM generate_series(1, 5000) g) s").fetchone()
        assert n == 5000
        rows = c.execute("SELECT repeat('y', 1000) || g FROM generate_series(1, 5000) g").fetchall()
        assert sum(len(r[0]) for r in rows) == total


def test_asyncpg_with_an_ssl_context(tls_proxy, backends, certs):
    import asyncpg

    async def go():
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        conn = await asyncpg.connect(host="localhost", port=tls_proxy.port, user=PROXY_USER,
                                     database=PROXY_DBNAME, ssl=ctx, timeout=10)
        try:
            assert conn._transport.get_extra_info("ssl_object") is not None
            rows = await conn.fetch(USERS_SQL)
            return [tuple(r) for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(go()) == backends.query("userdb", USERS_SQL)


def test_mode_require_refuses_plaintext(backends, certs, tmp_path):
    p = _proxy(backends, tmp_path, "tls-require",
               tls={"cert": str(certs.server), "key": str(certs.server_key), "mode": "require"})
    try:
        r = psql(p.port, "SELECT 1", PGSSLMODE="disable")
        assert r.returncode != 0
        assert "TLS is required" in r.stderr, r.stderr
        with pytest.raises(psycopg.OperationalError) as e:
            psycopg.connect(host="127.0.0.1", port=p.port, user=PROXY_USER, dbname=PROXY_DBNAME,
                            sslmode="disable", connect_timeout=10)
        assert "TLS is required" in str(e.value)
        # the SQLSTATE, as the raw protocol shows it
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw:
            raw.sendall(startup_packet())
            tag, body = read_message(raw)
        fields = {f[:1]: f[1:].decode() for f in body.split(b"\0") if f}
        assert tag == b"E" and fields[b"S"] == "FATAL" and fields[b"C"] == "28000", fields
        # a plaintext CancelRequest is still accepted (no answer, the connection is closed)
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw:
            raw.sendall(struct.pack("!iiii", 16, 80877102, 1, 2))
            assert raw.recv(16) == b""
        r = psql(p.port, "SELECT 1", PGSSLMODE="require")
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    finally:
        p.stop()


def test_without_tls_ssl_request_is_refused(backends, tmp_path):
    p = _proxy(backends, tmp_path, "notls")
    try:
        assert ssl_request(p.port) == b"N"
        r = psql(p.port, "SELECT 1", PGSSLMODE="require")
        assert r.returncode != 0 and "server does not support SSL" in r.stderr, r.stderr
        r = psql(p.port, "SELECT 1", PGSSLMODE="prefer")
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    finally:
        p.stop()


def test_bad_cert_path_is_a_startup_error(backends, certs, tmp_path):
    config = pg_config(backends)
    missing = tmp_path / "no-such-cert.pem"
    for tls, key, named in (
        ({"cert": str(missing), "key": str(certs.server_key)}, "tls.cert", missing),
        ({"cert": str(certs.server), "key": str(tmp_path / "nokey.pem")}, "tls.key", tmp_path / "nokey.pem"),
        # a key that is not the certificate's
        ({"cert": str(certs.server), "key": str(certs.ca_key)}, "tls", certs.server),
    ):
        p = Proxy({**config, "tls": tls}, tmp_path, name="badcert")
        p.config_path.write_text(__import__("conftest").to_yaml(p.config) + "\n")
        r = subprocess.run([str(bindproxy_bin()), "--config", str(p.config_path)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0
        assert f"{key}:" in r.stderr and str(named) in r.stderr, r.stderr


# --- raw protocol: the negotiation itself ---------------------------------------------------------------------
def startup_packet(user: str = PROXY_USER, database: str = PROXY_DBNAME) -> bytes:
    body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in (
        ("user", user), ("database", database))) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)


def ssl_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(SSL_REQUEST)
        return s.recv(1)


def read_message(sock) -> tuple[bytes, bytes]:
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    tag, length = head[:1], struct.unpack("!i", head[1:])[0]
    body = b""
    while len(body) < length - 4:
        chunk = sock.recv(length - 4 - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return tag, body


def client_context(certs, alpn: list[str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


def test_direct_tls_with_alpn(tls_proxy, certs):
    """PostgreSQL 17's sslnegotiation=direct: TLS from the first byte, ALPN postgresql."""
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        with client_context(certs, ["postgresql"]).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "postgresql"
            s.sendall(startup_packet())
            tag, body = read_message(s)
            assert tag == b"R" and struct.unpack("!i", body[:4])[0] == 0  # AuthenticationOk
            while tag != b"Z":
                tag, body = read_message(s)
            q = b"SELECT 41 + 1\0"
            s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
            values = []
            while tag != b"Z" or not values:
                tag, body = read_message(s)
                if tag == b"D":
                    values.append(body[6:].decode())
            assert values == ["42"]


def test_direct_tls_without_alpn_is_refused(tls_proxy, certs):
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        try:
            with client_context(certs, None).wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(startup_packet())
                with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
                    read_message(s)
        except (ssl.SSLError, ConnectionError):
            pass  # refused during the handshake itself: also a refusal
    # the proxy is still serving
    assert psql(tls_proxy.port, "SELECT 1", PGSSLMODE="require").stdout.strip() == "1"


def test_wrong_alpn_after_ssl_request_is_refused(tls_proxy, certs):
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with pytest.raises(ssl.SSLError) as e:
            client_context(certs, ["http/1.1"]).wrap_socket(raw, server_hostname="localhost")
        assert "NO_APPLICATION_PROTOCOL" in str(e.value).upper() or "ALERT" in str(e.value).upper(), e.value
    # offering postgresql among others is fine
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with client_context(certs, ["http/1.1", "postgresql"]).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "postgresql"
            s.sendall(startup_packet())
            assert read_message(s)[0] == b"R"


def test_gssenc_request_is_refused_then_ssl(tls_proxy, certs):
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        raw.sendall(GSSENC_REQUEST)
        assert raw.recv(1) == b"N"
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with client_context(certs, None).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(startup_packet())
            assert read_message(s)[0] == b"R"


def test_plaintext_after_ssl_request_is_not_trusted(tls_proxy):
    """CVE-2021-23214: bytes sent in plaintext right behind the SSLRequest must not be read as if they had come
    through TLS. bindproxy hands them to the TLS handshake, which fails; no authentication answer is sent."""
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST + startup_packet())
        assert raw.recv(1) == b"S"
        rest = b""
        try:
            while chunk := raw.recv(4096):
                rest += chunk
        except ConnectionResetError:
            pass
        assert b"R\0\0\0\x08\0\0\0\0" not in rest  # never AuthenticationOk
        # a TLS alert (content type 21) or nothing at all
        assert rest == b"" or rest[0] == 21, rest[:20]


# --------------------------------------------------------------------------------------------------------------
# Bind side
# --------------------------------------------------------------------------------------------------------------
SECURE_SQL = "SELECT id, label FROM secure_items ORDER BY id"


def bind_proxy(backends, tmp_path, name: str, url: str) -> Proxy:
    config = pg_config(backends, sec={"url": url, "connect_timeout_ms": 5000, "checkout_timeout_ms": 8000})
    config["tables"]["secure_*"] = "sec"
    return Proxy(config, tmp_path, name=name).start()


def ssl_of_bind(c: psycopg.Connection) -> bool:
    return c.execute("/* bindproxy: bind=sec */ SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                     ).fetchone()[0]


def test_bind_verify_full_to_the_tls_postmaster(backends, certs, postmasters, tmp_path):
    tls_pm, _ = postmasters
    url = (f"postgresql+psycopg://{PG_USER}@localhost:{tls_pm.port}/postgres"
           f"?sslmode=verify-full&sslrootcert={certs.ca}")
    p = bind_proxy(backends, tmp_path, "bind-vfull", url)
    try:
        with p.connect() as c:
            assert c.execute(SECURE_SQL).fetchall() == [(1, "over tls"), (2, "still tls")]
            assert ssl_of_bind(c) is True
            # the other binds (the test PostgreSQL) are unaffected
            assert c.execute(USERS_SQL).fetchall() == backends.query("userdb", USERS_SQL)
        # `bindproxy check` says the bind is reached over TLS
        r = subprocess.run([str(bindproxy_bin()), "--config", str(p.config_path), "check"], capture_output=True,
                           text=True, timeout=60)
        line = next(x for x in r.stdout.splitlines() if x.startswith("bind sec:"))
        assert line.startswith("bind sec: ok (PostgreSQL 15") and line.endswith(", TLS)"), r.stdout
    finally:
        p.stop()


def test_bind_verify_ca_by_ip_and_default_prefer(backends, certs, postmasters, tmp_path):
    """verify-ca does not check the name; prefer (the default) takes TLS when the server offers it."""
    tls_pm, _ = postmasters
    for name, query in (("bind-vca", f"?sslmode=verify-ca&sslrootcert={certs.ca}"), ("bind-prefer", "")):
        p = bind_proxy(backends, tmp_path, name, f"postgresql://{PG_USER}@127.0.0.1:{tls_pm.port}/postgres{query}")
        try:
            with p.connect() as c:
                assert c.execute(SECURE_SQL).fetchall() == [(1, "over tls"), (2, "still tls")]
                assert ssl_of_bind(c) is True
        finally:
            p.stop()


def test_bind_with_a_wrong_ca_fails_naming_the_bind(backends, certs, postmasters, tmp_path):
    tls_pm, _ = postmasters
    url = f"postgresql://{PG_USER}@localhost:{tls_pm.port}/postgres?sslmode=verify-full&sslrootcert={certs.wrong_ca}"
    p = bind_proxy(backends, tmp_path, "bind-wrongca", url)
    try:
        with p.connect() as c:
            with pytest.raises(psycopg.Error) as e:
                c.execute(SECURE_SQL)
            msg = str(e.value)
            assert e.value.sqlstate == "08001", msg
            assert '"sec"' in msg and "certificate" in msg.lower(), msg
            # the client's session goes on with the other binds
            assert c.execute(USERS_SQL).fetchall() == backends.query("userdb", USERS_SQL)
    finally:
        p.stop()


def test_bind_verify_full_checks_the_host_name(backends, certs, postmasters, tmp_path):
    """The postmaster's certificate names localhost only: verify-full to 127.0.0.1 fails on the name,
    verify-ca to 127.0.0.1 passes (the chain is good)."""
    tls_pm, _ = postmasters
    url = f"postgresql://{PG_USER}@127.0.0.1:{tls_pm.port}/postgres?sslmode=verify-full&sslrootcert={certs.ca}"
    p = bind_proxy(backends, tmp_path, "bind-name", url)
    try:
        with p.connect() as c, pytest.raises(psycopg.Error) as e:
            c.execute(SECURE_SQL)
        assert '"sec"' in str(e.value) and "certificate not valid for name" in str(e.value), str(e.value)
    finally:
        p.stop()
    p = bind_proxy(backends, tmp_path, "bind-name-ca", url.replace("verify-full", "verify-ca"))
    try:
        with p.connect() as c:
            assert c.execute(SECURE_SQL).fetchall() == [(1, "over tls"), (2, "still tls")]
    finally:
        p.stop()


def test_bind_sslmode_require_to_a_plaintext_server_fails(backends, postmasters, tmp_path):
    _, plain_pm = postmasters
    p = bind_proxy(backends, tmp_path, "bind-req-plain",
                   f"postgresql://{PG_USER}@127.0.0.1:{plain_pm.port}/postgres?sslmode=require")
    try:
        with p.connect() as c, pytest.raises(psycopg.Error) as e:
            c.execute("/* bindproxy: bind=sec */ SELECT 1")
        msg = str(e.value)
        assert '"sec"' in msg and "does not support SSL" in msg and "sslmode=require" in msg, msg
    finally:
        p.stop()
    # prefer (the default) falls back to plaintext on that server
    p = bind_proxy(backends, tmp_path, "bind-prefer-plain", f"postgresql://{PG_USER}@127.0.0.1:{plain_pm.port}/postgres")
    try:
        with p.connect() as c:
            assert ssl_of_bind(c) is False
    finally:
        p.stop()


def test_bind_sslmode_disable_and_allow_against_hostssl(backends, postmasters, tmp_path):
    """The TLS postmaster refuses plaintext (hostssl only): disable fails there with the server's own refusal,
    allow retries with TLS after it."""
    tls_pm, _ = postmasters
    p = bind_proxy(backends, tmp_path, "bind-disable",
                   f"postgresql://{PG_USER}@127.0.0.1:{tls_pm.port}/postgres?sslmode=disable")
    try:
        with p.connect() as c, pytest.raises(psycopg.Error) as e:
            c.execute(SECURE_SQL)
        assert '"sec"' in str(e.value) and "no encryption" in str(e.value), str(e.value)
    finally:
        p.stop()
    p = bind_proxy(backends, tmp_path, "bind-allow",
                   f"postgresql://{PG_USER}@127.0.0.1:{tls_pm.port}/postgres?sslmode=allow")
    try:
        with p.connect() as c:
            assert c.execute(SECURE_SQL).fetchall() == [(1, "over tls"), (2, "still tls")]
            assert ssl_of_bind(c) is True
    finally:
        p.stop()


def test_bind_url_tls_options_are_checked_at_start(backends, certs, tmp_path):
    for query, needle in (
        ("?sslmode=verify-full", "needs sslrootcert"),
        ("?sslmode=bogus", "bad sslmode `bogus`"),
        (f"?sslmode=verify-ca&sslrootcert={tmp_path}/none.crt", f"{tmp_path}/none.crt"),
        ("?sslcrl=/x", "`sslcrl` is not supported"),
        (f"?sslcert={certs.server}", "sslcert and sslkey go together"),
    ):
        config = pg_config(backends, sec=f"postgresql://{PG_USER}@127.0.0.1:5432/postgres{query}")
        p = Proxy(config, tmp_path, name="badurl")
        p.config_path.write_text(__import__("conftest").to_yaml(p.config) + "\n")
        r = subprocess.run([str(bindproxy_bin()), "--config", str(p.config_path), "check"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0, r.stdout
        assert "binds.sec.url" in r.stderr and needle in r.stderr, r.stderr


def test_cancel_reaches_a_tls_bind(backends, certs, postmasters, tmp_path):
    """CancelRequests go to a bind in plaintext, as libpq's PQcancel sends them; the hostssl-only postmaster
    accepts them (they are not subject to pg_hba.conf), so a statement on a TLS bind can be cancelled, through a
    TLS client connection too."""
    import threading

    tls_pm, _ = postmasters
    url = f"postgresql://{PG_USER}@localhost:{tls_pm.port}/postgres?sslmode=verify-full&sslrootcert={certs.ca}"
    config = pg_config(backends, sec={"url": url})
    config["tables"]["secure_*"] = "sec"
    config["tls"] = {"cert": str(certs.server), "key": str(certs.server_key)}
    p = Proxy(config, tmp_path, name="bind-cancel").start()
    try:
        with p.connect(sslmode="require") as c:
            assert c.pgconn.ssl_in_use
            err = {}

            def run():
                try:
                    c.execute("/* bindproxy: bind=sec */ SELECT pg_sleep(30)")
                except psycopg.Error as e:
                    err["e"] = e

            t = threading.Thread(target=run)
            t.start()
            __import__("time").sleep(1.0)
            c.cancel()
            t.join(20)
            assert not t.is_alive()
            assert isinstance(err.get("e"), psycopg.errors.QueryCanceled), err
            assert c.execute(SECURE_SQL).fetchall() == [(1, "over tls"), (2, "still tls")]
    finally:
        p.stop()
