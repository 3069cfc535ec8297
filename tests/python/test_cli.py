"""The `route` and `check` subcommands (no server needed for route)."""

import json
import subprocess

from conftest import bindproxy_bin, pg_config, to_yaml


def write_config(backends, cfg, name):
    path = backends.tmpdir / f"{name}.yaml"
    path.write_text(to_yaml({"listen": "127.0.0.1:0", **cfg}) + "\n")
    return path


def route(path, sql):
    p = subprocess.run([str(bindproxy_bin()), "route", "--config", str(path), "--json", sql],
                       capture_output=True, text=True, timeout=30)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines, f"route printed nothing (exit {p.returncode}); stderr:\n{p.stderr}"
    return json.loads(lines[-1])


def test_route_json(backends):
    path = write_config(backends, pg_config(backends), "cli-route")
    assert route(path, "SELECT * FROM users WHERE id = 1") == {"tables": ["public.users"], "bind": "userdb"}
    r = route(path, "SELECT * FROM orders")
    assert r["bind"] == "main"
    assert route(path, "SELECT * FROM user_profiles")["bind"] == "userdb"        # glob
    assert route(path, "INSERT INTO audit.events (what) VALUES ('x')")["bind"] == "userdb"  # schema
    assert route(path, "SELECT count(*) FROM pgbench_accounts")["bind"] == "bench"
    assert route(path, "SELECT 1")["bind"] == "main"
    assert route(path, "WITH users AS (SELECT 1) SELECT * FROM users")["bind"] == "main"  # CTE is no table


def test_route_json_cross_bind(backends):
    path = write_config(backends, pg_config(backends), "cli-route-x")
    r = route(path, "SELECT * FROM users u JOIN orders o ON o.user_id = u.id")
    assert r.get("sqlstate") == "0A000", r
    for word in ("users", "orders", "userdb", "main"):
        assert word in r["error"], r


def test_route_json_fallback(backends):
    path = write_config(backends, pg_config(backends), "cli-route-fb")
    assert route(path, "VACUUM user_profiles")["bind"] == "userdb"
    assert route(path, "TABLE users")["bind"] == "userdb"
    assert route(path, "SELECT * FROM ONLY users")["bind"] == "userdb"


def test_check_rejects_bad_config(backends):
    cfg = pg_config(backends)
    cfg["tables"]["stray"] = "no_such_bind"
    path = write_config(backends, cfg, "cli-bad")
    p = subprocess.run([str(bindproxy_bin()), "check", "--config", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "no_such_bind" in out and str(path.name) in out, out


def test_check_unknown_key(backends):
    cfg = pg_config(backends)
    cfg["bogus_key"] = 1
    path = write_config(backends, cfg, "cli-unknown")
    p = subprocess.run([str(bindproxy_bin()), "check", "--config", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    assert "bogus_key" in p.stdout + p.stderr
