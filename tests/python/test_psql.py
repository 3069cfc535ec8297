"""psql through the proxy: simple protocol, meta-commands, \\copy in and out."""

from conftest import require_tool


def test_psql_simple_queries(proxy, backends, uid):
    require_tool("psql")
    i = uid()
    proxy.psql("-c", f"INSERT INTO users (id, name) VALUES ({i}, 'from psql')")
    out = proxy.psql("-At", "-c", f"SELECT name FROM users WHERE id = {i}").stdout
    assert out.strip() == "from psql"
    assert backends.scalar("userdb", "SELECT name FROM users WHERE id = %s", (i,)) == "from psql"
    assert backends.scalar("main", "SELECT count(*) FROM users WHERE id = %s", (i,)) == 0


def test_psql_script_with_transactions(proxy, backends, uid):
    i = uid()
    script = f"""
BEGIN;
INSERT INTO user_profiles VALUES ({i}, 'one');
UPDATE user_profiles SET bio = bio || ' two' WHERE user_id = {i};
COMMIT;
BEGIN;
INSERT INTO orders VALUES ({i}, 1, 5);
ROLLBACK;
SELECT bio FROM user_profiles WHERE user_id = {i};
"""
    out = proxy.psql("-At", input=script).stdout
    assert "one two" in out
    assert backends.scalar("userdb", "SELECT bio FROM user_profiles WHERE user_id = %s", (i,)) == "one two"
    assert backends.scalar("main", "SELECT count(*) FROM orders WHERE id = %s", (i,)) == 0


def test_psql_on_error_stop_reports_sqlstate(proxy):
    p = proxy.psql("-v", "VERBOSITY=verbose", "-c", "SELECT * FROM users JOIN orders ON orders.user_id = users.id",
                   check=False)
    assert p.returncode != 0
    assert "0A000" in p.stderr, p.stderr


def test_psql_describe(proxy):
    out = proxy.psql("-c", r"\dt").stdout
    assert "items" in out and "orders" in out, out   # tables of the default bind
    out = proxy.psql("-c", r"\d orders").stdout
    assert "user_id" in out and "amount" in out and "numeric(10,2)" in out, out
    out = proxy.psql("-c", r"\l").stdout
    assert "Name" in out
    out = proxy.psql("-c", r"\dn").stdout
    assert "public" in out


def test_psql_copy_in_and_out(proxy, backends, uid, tmp_path):
    ids = [uid() for _ in range(20)]
    src = tmp_path / "in.csv"
    src.write_text("".join(f"{i},copied {i}\n" for i in ids))
    proxy.psql("-c", rf"\copy users (id, name) from '{src}' csv")
    assert backends.scalar("userdb", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 20
    assert backends.scalar("main", "SELECT count(*) FROM users WHERE id = ANY(%s)", (ids,)) == 0

    dst = tmp_path / "out.csv"
    lo, hi = min(ids), max(ids)
    proxy.psql("-c", rf"\copy (SELECT id, name FROM users WHERE id BETWEEN {lo} AND {hi} ORDER BY id) to '{dst}' csv")
    assert dst.read_text() == src.read_text()

    dst2 = tmp_path / "table.txt"
    proxy.psql("-c", rf"\copy user_profiles to '{dst2}'")
    assert "seed profile" in dst2.read_text()
