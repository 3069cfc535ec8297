"""Bad bytes from the network: the offending client gets an ErrorResponse or is disconnected; the daemon and
every other client carry on (asserted after each case). Runs against its own daemon so a crash here cannot
take the other test modules down with it."""

import socket
import struct
import time

import pytest

from conftest import PROXY_DBNAME, PROXY_USER, pg_admin, pg_config, wait_until

PROTO_3_0 = 196608


def startup_packet(params: dict, proto: int = PROTO_3_0) -> bytes:
    body = struct.pack("!I", proto)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def msg(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("!I", len(payload) + 4) + payload


class Outcome:
    def __init__(self, data: bytes, closed: bool):
        self.data, self.closed = data, closed

    @property
    def got_error(self) -> bool:
        return error_in(self.data)

    def __repr__(self):
        return f"Outcome(closed={self.closed}, data={self.data[:200]!r})"


def error_in(data: bytes) -> bool:
    """Whether a well-formed ErrorResponse ('E') appears among the backend messages in data."""
    i = 0
    while i + 5 <= len(data):
        tag = data[i:i + 1]
        (n,) = struct.unpack("!I", data[i + 1:i + 5])
        if tag == b"E":
            return True
        if tag == b"N" and n == 0:  # SSL 'N' answer, single byte
            i += 1
            continue
        i += 1 + n
    return False


def drain(sock: socket.socket, timeout: float = 5.0) -> Outcome:
    """Read until the server closes or `timeout` passes."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if error_in(data):
                return Outcome(data, False)
            continue
        except (ConnectionResetError, BrokenPipeError):
            return Outcome(data, True)
        if not chunk:
            return Outcome(data, True)
        data += chunk
    return Outcome(data, False)


def read_until_ready(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read a startup answer until ReadyForQuery ('Z'), failing on an ErrorResponse."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, f"server closed during startup: {data!r}"
        data += chunk
        i = 0
        while i + 5 <= len(data):
            tag = data[i:i + 1]
            (n,) = struct.unpack("!I", data[i + 1:i + 5])
            if i + 1 + n > len(data):
                break
            if tag == b"E":
                raise AssertionError(f"ErrorResponse during startup: {data[i:i + 1 + n]!r}")
            if tag == b"Z":
                return data
            i += 1 + n


@pytest.fixture(scope="module")
def bad_proxy(backends, start_proxy):
    return start_proxy(pg_config(backends), "badinput")


@pytest.fixture
def bystander(bad_proxy):
    """An already-connected client that must keep working through every case."""
    bad_proxy.ensure_running()
    with bad_proxy.connect() as c:
        assert c.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
        yield c


def connect_raw(proxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def ready_session(proxy) -> socket.socket:
    s = connect_raw(proxy)
    s.sendall(startup_packet({"user": PROXY_USER, "database": PROXY_DBNAME}))
    read_until_ready(s)
    return s


def assert_unaffected(proxy, bystander, outcome: Outcome):
    assert outcome.got_error or outcome.closed, f"neither an error nor a disconnect: {outcome!r}"
    assert proxy.alive(), f"daemon died:\n{proxy.log_tail()}"
    assert bystander.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    assert bystander.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1
    with proxy.connect() as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
    assert proxy.rss_kib() < 512 * 1024, f"daemon RSS {proxy.rss_kib()} KiB"


GARBAGE = {
    "random_bytes": bytes((i * 97 + 13) % 256 for i in range(300)),
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "all_ff": b"\xff" * 64,
    "zeros": b"\0" * 64,
    "tiny_length": struct.pack("!I", 3) + b"\0\0\0\0",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_instead_of_startup(bad_proxy, bystander, name):
    with connect_raw(bad_proxy) as s:
        s.sendall(GARBAGE[name])
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_garbage_after_startup(bad_proxy, bystander):
    with ready_session(bad_proxy) as s:
        s.sendall(GARBAGE["random_bytes"])
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_truncated_startup_packet(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(startup_packet({"user": PROXY_USER, "database": PROXY_DBNAME})[:11])
        s.shutdown(socket.SHUT_WR)
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_truncated_message_after_startup(bad_proxy, bystander):
    with ready_session(bad_proxy) as s:
        full = msg(b"Q", b"SELECT count(*) FROM users\0")
        s.sendall(full[:10])
        s.shutdown(socket.SHUT_WR)
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_unknown_message_type(bad_proxy, bystander):
    with ready_session(bad_proxy) as s:
        s.sendall(msg(b"Y", b"whatever"))
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_function_call_message(bad_proxy, bystander):
    with ready_session(bad_proxy) as s:
        # FunctionCall: oid 1 (no such function), no arg formats, 0 args, text result
        s.sendall(msg(b"F", struct.pack("!IhhH", 1, 0, 0, 0)))
        out = drain(s)
        assert out.got_error or out.closed, out
    assert_unaffected(bad_proxy, bystander, out)


def test_two_gigabyte_length_after_startup(bad_proxy, bystander):
    with ready_session(bad_proxy) as s:
        s.sendall(b"Q" + struct.pack("!I", 0x80000000) + b"SELECT 1\0")
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_two_gigabyte_startup_length(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(struct.pack("!II", 0x7FFFFFFF, PROTO_3_0) + b"user\0postgres\0\0")
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_startup_without_user(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(startup_packet({"database": PROXY_DBNAME, "application_name": "nouser"}))
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_unsupported_protocol_version(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(startup_packet({"user": PROXY_USER}, proto=(2 << 16)))
        out = drain(s)
    assert_unaffected(bad_proxy, bystander, out)


def test_replication_startup_rejected(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(startup_packet({"user": PROXY_USER, "database": PROXY_DBNAME, "replication": "database"}))
        out = drain(s)
        assert out.got_error or out.closed, out
    assert_unaffected(bad_proxy, bystander, out)


def test_ssl_request_answered(bad_proxy, bystander):
    with connect_raw(bad_proxy) as s:
        s.sendall(struct.pack("!II", 8, 80877103))
        s.settimeout(5)
        assert s.recv(1) in (b"N", b"S")


def test_abrupt_disconnect_mid_query(bad_proxy, bystander):
    for _ in range(5):
        s = ready_session(bad_proxy)
        s.sendall(msg(b"Q", b"SELECT pg_sleep(0.5) FROM users LIMIT 1\0"))
        s.close()
    out = Outcome(b"", True)
    assert_unaffected(bad_proxy, bystander, out)
    # many abandoned sessions did not exhaust userdb's pool (10): new clients still get it
    for _ in range(12):
        with bad_proxy.connect() as c:
            assert c.execute("SELECT count(*) FROM users").fetchone()[0] >= 1


def test_newline_in_names_cannot_forge_a_log_line(bad_proxy, bystander):
    """Trust mode: user and database names reach the log; a newline in them must stay inside the line."""
    forged = "2026-01-01T00:00:00.000000Z  INFO forged: client connected"
    with connect_raw(bad_proxy) as s:
        s.sendall(startup_packet({"user": f"{PROXY_USER}\n{forged}", "database": f"app\r\n{forged}"}))
        out = drain(s, timeout=2.0)
    assert wait_until(lambda: "forged" in bad_proxy.log_path.read_text(errors="replace"), timeout=5.0)
    lines = bad_proxy.log_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith("2026-01-01T00:00:00") for line in lines), bad_proxy.log_tail()
    assert any("\\n2026-01-01T00:00:00" in line for line in lines), bad_proxy.log_tail()
    assert bad_proxy.alive()
    assert bystander.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    assert out.data or out.closed


def test_flood_while_held_is_bounded(bad_proxy, bystander):
    """A client that keeps sending while its next message waits for another bind is cut off, memory
    stays bounded, and its backend connection goes back (the statement does not run on)."""
    rss_before = bad_proxy.rss_kib()
    with ready_session(bad_proxy) as s:
        s.sendall(msg(b"Q", b"SELECT pg_sleep(20) FROM users LIMIT 1\0"))  # userdb
        s.sendall(msg(b"Q", b"SELECT 1\0"))  # main: held behind userdb
        chunk = msg(b"Q", b"SELECT 1\0") * 8192
        started = time.monotonic()
        sent = 0
        try:
            while sent < 64 << 20:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        out = drain(s, timeout=10)
        assert out.closed or out.got_error, out
        assert time.monotonic() - started < 15, "the flood was buffered until the statement ended"
    assert bad_proxy.alive(), bad_proxy.log_tail()
    grown = bad_proxy.rss_kib() - rss_before
    assert grown < 128 * 1024, f"RSS grew by {grown} KiB while flooding"
    assert bystander.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    with pg_admin() as admin:
        assert wait_until(lambda: admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%' AND state = 'active'"
        ).fetchone()[0] == 0, timeout=5.0)
