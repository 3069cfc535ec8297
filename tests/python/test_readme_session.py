"""Issue 11 item 8: the psql session in README.md is what happens.

bindproxy runs as a new user runs it — no configuration, so the embedded `config.example.yaml`, in an empty
working directory — and the README's psql session is replayed through psql. psql echoes each statement (`-a`)
in place of the interactive prompt; apart from that, its output must be the README's, line for line.
"""
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from conftest import bindproxy_bin, free_port

README = Path(__file__).resolve().parents[2] / "README.md"
PROMPT = re.compile(r"^app=[*!]?> (.*)$")


def readme_session() -> list[str]:
    lines = README.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("$ psql -h 127.0.0.1 -p 6432 -U app app"))
    end = next(i for i in range(start, len(lines)) if lines[i] == "```")
    return lines[start + 1:end]


def test_readme_psql_session(tmp_path):
    psql = shutil.which("psql")
    assert psql, "psql is missing (scripts/test.sh installs postgresql-client)"
    session = readme_session()
    inputs = [m.group(1) for l in session if (m := PROMPT.match(l))]
    assert len(inputs) >= 8, session
    expected = [m.group(1) if (m := PROMPT.match(l)) else l for l in session]

    port = free_port()
    env = dict(os.environ, BINDPROXY_LISTEN=f"127.0.0.1:{port}")
    env.pop("BINDPROXY_CONFIG", None)
    log = open(tmp_path / "bindproxy.log", "wb")
    proc = subprocess.Popen([str(bindproxy_bin().resolve())], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "bindproxy.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "bindproxy did not listen"
                time.sleep(0.1)
        # stdout line-buffered, so that errors (stderr) and results come out in order
        run = subprocess.run(["stdbuf", "-oL", "-eL", psql, "-X", "-a", "-h", "127.0.0.1", "-p", str(port),
                              "-U", "app", "app"],
                             input="\n".join(inputs) + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=60, env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    # non-interactive psql prefixes its errors with where they came from
    actual = [re.sub(r"^psql:<stdin>:\d+: ", "", l).rstrip() for l in run.stdout.splitlines()]
    while actual and not actual[-1]:
        actual.pop()
    assert actual == [l.rstrip() for l in expected], "\n".join(
        f"{'  ' if a == e else '!!'} README: {e!r}\n   psql:   {a!r}"
        for a, e in zip(actual + [""] * len(expected), expected + [""] * len(actual)))
    # the embedded default put its SQLite files in the working directory
    assert (tmp_path / "data" / "app.db").exists()
