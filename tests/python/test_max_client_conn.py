"""max_client_conn: past it, a new client gets FATAL 53300 at startup, as PostgreSQL past max_connections; a
place is given back when a session ends, and CancelRequests are served even when every place is taken."""

from __future__ import annotations

import socket
import struct
import time

import psycopg
import pytest

from conftest import PROXY_DBNAME, PROXY_USER, Proxy, pg_config


def startup_error(port: int) -> dict:
    body = struct.pack("!i", 196608) + b"user\0" + PROXY_USER.encode() + b"\0database\0" + PROXY_DBNAME.encode() + b"\0\0"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data[:1] == b"E", data[:40]
    length = struct.unpack("!i", data[1:5])[0]
    return {f[:1].decode(): f[1:].decode() for f in data[5:1 + length].split(b"\0") if f}


@pytest.fixture
def limited(backends, tmp_path):
    p = Proxy({**pg_config(backends), "max_client_conn": 2}, tmp_path, name="limited").start()
    yield p
    p.stop()


def test_past_max_client_conn_is_53300(limited, backends):
    a = limited.connect()
    b = limited.connect()
    try:
        # both sessions work
        assert a.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)
        assert b.execute("SELECT 2").fetchone() == (2,)
        with pytest.raises(psycopg.OperationalError) as e:
            limited.connect()
        assert "too many clients" in str(e.value) and "max_client_conn is 2" in str(e.value), str(e.value)
        fields = startup_error(limited.port)
        assert (fields["S"], fields["C"]) == ("FATAL", "53300"), fields
        # a CancelRequest still gets through while every place is taken: it cancels a's running statement
        cur = a.cursor()
        import threading

        err = {}

        def run():
            try:
                cur.execute("SELECT pg_sleep(30)")
            except psycopg.Error as ex:  # noqa: PERF203
                err["e"] = ex

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.0)
        a.cancel()
        t.join(20)
        assert not t.is_alive()
        assert isinstance(err.get("e"), psycopg.errors.QueryCanceled), err
    finally:
        b.close()
    # b's place is free again (the session ends asynchronously: allow it a moment)
    deadline = time.monotonic() + 10
    while True:
        try:
            c = limited.connect()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        assert c.execute("SELECT name FROM users WHERE id = 1").fetchone() == ("seed-userdb",)
    finally:
        c.close()
        a.close()
