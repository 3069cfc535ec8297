"""Issue 9 (parts 3-4): COPY on MySQL/MariaDB and SQLite binds, compared with real PostgreSQL.

Every COPY output here is compared byte for byte with what real PostgreSQL writes for the same rows
(the rows are loaded into a PostgreSQL table of the same definition first, and its own COPY output is
the reference; the data files fed to the proxy are PostgreSQL's output too). Row checks read the engine
directly (PyMySQL for MariaDB, sqlite3 for the SQLite file).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import sqlite3
import subprocess
import threading

import psycopg
import pytest
from psycopg import errors as pgerr

from conftest import PG_HOST, PG_PORT, PG_USER, PREFIX, mixed_config, my_admin, pg_admin, pg_direct, require_tool

ENGINES = {"logs": "log_", "files": "file_"}
FORMATS = ["text", "csv", "binary"]

_n = iter(range(1, 1_000_000))

COLUMNS = "id integer PRIMARY KEY, name text, amount numeric(10,2), flag boolean, born date, score double precision"

# Rows with what the formats must escape or quote: tabs, newlines, backslashes, quotes, commas, NULLs,
# empty strings, non-ASCII text, a lone `\.`.
ROWS_SQL = r"""
INSERT INTO {t} VALUES
 (1, 'plain', 12.50, true, '2024-01-31', 1.5),
 (2, E'tab\there', -3.00, false, NULL, -0.25),
 (3, E'new\nline and \\ back', NULL, NULL, '1999-12-31', NULL),
 (4, 'quote " and comma ,', 0.01, true, '2000-02-29', 1e10),
 (5, '', 7, false, '2024-06-01', 0),
 (6, NULL, 99999999.99, true, '1970-01-01', 3.25),
 (7, 'żółw – ünïcode', 1, false, '2038-01-19', -1e-5),
 (8, E'\\.', 2, true, '2010-10-10', 42)
"""


def tname(bind: str, what: str) -> str:
    return f"{ENGINES[bind]}{what}_{next(_n)}"


@pytest.fixture(scope="module")
def cx(backends, mariadb, start_proxy):
    p = start_proxy(mixed_config(backends), "copy")
    p.mariadb = mariadb
    p.sqlite_file = backends.sqlite_path("files")
    p.pgdb = backends.db("main")
    return p


@pytest.fixture
def px(cx):
    cx.ensure_running()
    return cx


def engine_rows(px, bind: str, sql: str) -> list[tuple]:
    if bind == "logs":
        with my_admin(px.mariadb) as c, c.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    c = sqlite3.connect(px.sqlite_file, timeout=10)
    try:
        return c.execute(sql.replace("`", '"')).fetchall()
    finally:
        c.close()


def count(px, bind: str, t: str) -> int:
    return engine_rows(px, bind, f"SELECT count(*) FROM {t}")[0][0]


def pg_reference(px, t: str, fill: bool = True) -> str:
    """A PostgreSQL table of the same definition (in the default bind's database), filled with ROWS."""
    ref = f"ref_{t}"
    with pg_direct(px.pgdb) as c:
        c.execute(f"DROP TABLE IF EXISTS {ref}")
        c.execute(f"CREATE TABLE {ref} ({COLUMNS})")
        if fill:
            c.execute(ROWS_SQL.format(t=ref))
    return ref


def pg_copy_out(px, sql: str) -> bytes:
    with pg_direct(px.pgdb) as c, c.cursor() as cur:
        with cur.copy(sql) as cp:
            return b"".join(bytes(b) for b in cp)


def proxy_copy_out(px, sql: str) -> bytes:
    with px.connect() as c, c.cursor() as cur:
        with cur.copy(sql) as cp:
            return b"".join(bytes(b) for b in cp)


def make_table(px, bind: str, what: str) -> str:
    t = tname(bind, what)
    with px.connect() as c:
        c.execute(f"CREATE TABLE {t} ({COLUMNS})")
    return t


def opts(fmt: str, header: bool = False) -> str:
    h = ", HEADER" if header and fmt != "binary" else ""
    return f"(FORMAT {fmt}{h})"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bind", list(ENGINES))
def test_psql_copy_in_and_out_byte_identical(px, bind, fmt, tmp_path):
    """psql \\copy loads PostgreSQL's own COPY output, and \\copy out writes exactly PostgreSQL's bytes."""
    require_tool("psql")
    t = make_table(px, bind, "psql")
    ref = pg_reference(px, t)
    reference = pg_copy_out(px, f"COPY {ref} TO STDOUT {opts(fmt, True)}")
    src = tmp_path / f"in.{fmt}"
    src.write_bytes(reference)
    out = tmp_path / f"out.{fmt}"
    p = px.psql("-c", f"\\copy {t} from '{src}' {opts(fmt, True)}")
    assert "COPY 8" in p.stdout
    assert count(px, bind, t) == 8
    px.psql("-c", f"\\copy (SELECT * FROM {t} ORDER BY id) to '{out}' {opts(fmt, True)}")
    ordered = pg_copy_out(px, f"COPY (SELECT * FROM {ref} ORDER BY id) TO STDOUT {opts(fmt, True)}")
    assert out.read_bytes() == ordered
    # The rows themselves, as the engine holds them, agree with PostgreSQL's.
    with pg_direct(px.pgdb) as c:
        want = c.execute(f"SELECT id, name, amount, flag, born FROM {ref} ORDER BY id").fetchall()
    with px.connect() as c:
        got = c.execute(f"SELECT id, name, amount, flag, born FROM {t} ORDER BY id").fetchall()
    assert got == want


@pytest.mark.parametrize("bind", list(ENGINES))
def test_copy_table_to_stdout_with_columns_and_options(px, bind):
    """COPY t (cols) TO STDOUT with DELIMITER/NULL/FORCE_QUOTE options: PostgreSQL's bytes."""
    t = make_table(px, bind, "opts")
    ref = pg_reference(px, t)
    with px.connect() as c:
        c.execute(ROWS_SQL.format(t=t))
    for o in ["(DELIMITER '|', NULL 'nil')", "(FORMAT csv, FORCE_QUOTE (name), QUOTE '''', HEADER)",
              "(FORMAT csv, FORCE_QUOTE *, NULL 'NULL')", "(FORMAT csv, ESCAPE '\\')"]:
        got = proxy_copy_out(px, f"COPY (SELECT id, name, amount FROM {t} ORDER BY id) TO STDOUT {o}")
        want = pg_copy_out(px, f"COPY (SELECT id, name, amount FROM {ref} ORDER BY id) TO STDOUT {o}")
        assert got == want, o


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bind", list(ENGINES))
def test_psycopg_copy_write_rows_and_read(px, bind, fmt):
    """psycopg 3 cursor.copy() (extended protocol) in and out; binary through write_row with types."""
    t = make_table(px, bind, "pyc")
    ref = pg_reference(px, t, fill=False)
    rows = [
        (1, "a\tb", decimal.Decimal("1.25"), True, dt.date(2024, 1, 2), 0.5),
        (2, None, None, None, None, None),
        (3, "x,\"y\"\n", decimal.Decimal("-7.00"), False, dt.date(1901, 12, 13), -2.0),
    ]
    stmt = "COPY {} (id, name, amount, flag, born, score) FROM STDIN " + opts(fmt)
    for target, conn in ((t, px.connect()), (ref, pg_direct(px.pgdb))):
        with conn, conn.cursor() as cur:
            with cur.copy(stmt.format(target)) as cp:
                if fmt == "binary":
                    cp.set_types(["int4", "text", "numeric", "bool", "date", "float8"])
                if fmt == "csv":  # psycopg writes rows in text or binary format only
                    buf = io.StringIO()
                    csv.writer(buf, lineterminator="\n").writerows(
                        ["" if v is None else v for v in r] for r in rows)
                    cp.write(buf.getvalue())
                else:
                    for r in rows:
                        cp.write_row(r)
            assert cur.rowcount == 3
    assert count(px, bind, t) == 3
    got = proxy_copy_out(px, f"COPY (SELECT * FROM {t} ORDER BY id) TO STDOUT {opts(fmt)}")
    want = pg_copy_out(px, f"COPY (SELECT * FROM {ref} ORDER BY id) TO STDOUT {opts(fmt)}")
    assert got == want
    with px.connect() as c, c.cursor() as cur:
        with cur.copy(f"COPY {t} (id, name) TO STDOUT") as cp:
            assert list(cp.rows()) == [("1", "a\tb"), ("2", None), ("3", "x,\"y\"\n")]


@pytest.mark.parametrize("bind", list(ENGINES))
def test_bad_row_in_the_middle_loads_nothing(px, bind):
    t = make_table(px, bind, "bad")
    ref = pg_reference(px, t, fill=False)
    data = "1\tok\n2\tok\nthree\tbad\n4\tok\n"
    errors = {}
    for target, conn in (("proxy", px.connect()), ("pg", pg_direct(px.pgdb))):
        table = t if target == "proxy" else ref
        with conn, conn.cursor() as cur:
            with pytest.raises(pgerr.InvalidTextRepresentation) as ei:
                with cur.copy(f"COPY {table} (id, name) FROM STDIN") as cp:
                    cp.write(data)
            errors[target] = ei.value
    assert count(px, bind, t) == 0
    assert errors["proxy"].sqlstate == errors["pg"].sqlstate == "22P02"
    assert errors["proxy"].diag.message_primary == errors["pg"].diag.message_primary
    # PostgreSQL's CONTEXT line (bindproxy sends it as the detail)
    assert f"COPY {t}, line 3, column id: \"three\"" in str(errors["proxy"])
    # psql reports the same and the session goes on
    p = px.psql("-c", f"COPY {t} (id, name) FROM STDIN", input="1\ta\n2\n", check=False)
    assert p.returncode != 0 and "missing data for column \"name\"" in p.stderr
    assert count(px, bind, t) == 0


def copy_fail(conn: psycopg.Connection, sql: str, data: bytes) -> psycopg.pq.PGresult:
    """COPY FROM STDIN, some data, then CopyFail, through libpq itself; the final result."""
    pg = conn.pgconn
    pg.send_query(sql.encode())
    r = pg.get_result()
    assert r.status == psycopg.pq.ExecStatus.COPY_IN, r.error_message
    assert pg.put_copy_data(data) == 1
    assert pg.put_copy_end(b"client gave up") == 1
    final = pg.get_result()
    while pg.get_result() is not None:
        pass
    return final


@pytest.mark.parametrize("bind", list(ENGINES))
def test_copy_fail_loads_nothing(px, bind):
    t = make_table(px, bind, "fail")
    ref = pg_reference(px, t, fill=False)
    data = "".join(f"{i}\tx\n" for i in range(5000)).encode()
    with px.connect() as c:
        got = copy_fail(c, f"COPY {t} (id, name) FROM STDIN", data)
        assert c.execute("SELECT 1").fetchone() == (1,)
    with pg_direct(px.pgdb) as c:
        want = copy_fail(c, f"COPY {ref} (id, name) FROM STDIN", data)
    assert got.status == want.status == psycopg.pq.ExecStatus.FATAL_ERROR
    field = psycopg.pq.DiagnosticField
    assert got.error_field(field.SQLSTATE) == want.error_field(field.SQLSTATE) == b"57014"
    assert got.error_field(field.MESSAGE_PRIMARY) == want.error_field(field.MESSAGE_PRIMARY)
    assert count(px, bind, t) == 0
    # psycopg sends CopyFail when the block raises; the connection goes on
    with px.connect() as c, c.cursor() as cur:
        with pytest.raises(RuntimeError):
            with cur.copy(f"COPY {t} (id, name) FROM STDIN") as cp:
                cp.write(data)
                raise RuntimeError("client gave up")
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,)


@pytest.mark.parametrize("bind", list(ENGINES))
def test_copy_inside_transaction_rollback_and_commit(px, bind):
    t = make_table(px, bind, "tx")
    with px.connect(autocommit=False) as c:
        with c.cursor() as cur:
            with cur.copy(f"COPY {t} (id, name) FROM STDIN") as cp:
                cp.write("1\ta\n2\tb\n")
            assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (2,)
        c.rollback()
    assert count(px, bind, t) == 0
    with px.connect(autocommit=False) as c:
        c.execute(f"INSERT INTO {t} (id, name) VALUES (10, 'before')")
        with c.cursor() as cur:
            with cur.copy(f"COPY {t} (id, name) FROM STDIN (FORMAT csv)") as cp:
                cp.write('11,"c"\n12,d\n')
        c.commit()
    assert count(px, bind, t) == 3
    # an error inside the block fails the block, as in PostgreSQL
    with px.connect(autocommit=False) as c:
        c.execute(f"INSERT INTO {t} (id, name) VALUES (20, 'x')")
        with pytest.raises(pgerr.UniqueViolation):
            with c.cursor() as cur:
                with cur.copy(f"COPY {t} (id, name) FROM STDIN") as cp:
                    cp.write("21\ty\n11\tdup\n")
        with pytest.raises(pgerr.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
    assert count(px, bind, t) == 3


@pytest.mark.parametrize("bind", list(ENGINES))
def test_simple_query_copy_with_pipelined_data(px, bind):
    """psql sends the COPY as a simple Query; data in the same script right behind it."""
    t = make_table(px, bind, "simple")
    script = f"COPY {t} (id, name) FROM STDIN WITH (FORMAT csv, HEADER);\nid,name\n1,\"one\"\n2,two\n\\.\n" \
             f"SELECT count(*) FROM {t};\n"
    p = px.psql("-At", "-f", "-", input=script)
    assert p.stdout.strip().splitlines()[-1] == "2"


@pytest.mark.parametrize("bind", list(ENGINES))
def test_bystander_served_during_copy(px, bind):
    """While one client is in the middle of a COPY, another client of the same bind is answered."""
    t = make_table(px, bind, "by")
    other = make_table(px, bind, "other")
    with px.connect() as c:
        c.execute(f"INSERT INTO {other} (id, name) VALUES (1, 'x')")
    started, done = threading.Event(), threading.Event()
    errors = []

    def loader():
        try:
            with px.connect() as c, c.cursor() as cur:
                with cur.copy(f"COPY {t} (id, name) FROM STDIN") as cp:
                    cp.write("".join(f"{i}\tn{i}\n" for i in range(3000)))
                    started.set()
                    done.wait(20)
                    cp.write("".join(f"{i}\tn{i}\n" for i in range(3000, 4000)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
            started.set()

    th = threading.Thread(target=loader)
    th.start()
    assert started.wait(20)
    with px.connect() as c:
        assert c.execute(f"SELECT name FROM {other}").fetchall() == [("x",)]
    done.set()
    th.join(30)
    assert not errors, errors
    assert count(px, bind, t) == 4000


DUMP_SOURCE = """
CREATE TABLE {p}authors (id serial PRIMARY KEY, name text NOT NULL UNIQUE, created date DEFAULT '2020-01-01',
                         rating numeric(4,1) DEFAULT 0 CHECK (rating >= 0));
CREATE TABLE {p}books (id bigserial PRIMARY KEY, author_id integer NOT NULL REFERENCES {p}authors(id),
                       title varchar(200) NOT NULL, pages integer, published boolean DEFAULT false);
CREATE INDEX {p}books_title_idx ON {p}books (title);
INSERT INTO {p}authors (name, created, rating) VALUES ('Ann', '2001-02-03', 4.5), (E'Bo\\tb', NULL, 3),
       ('Cé "quoted"', '1999-12-31', 0);
INSERT INTO {p}books (author_id, title, pages, published)
SELECT 1 + i % 3, 'title ' || i || E' \\\\ \\n', NULLIF(i % 7, 0) * 10, i % 2 = 0 FROM generate_series(1, 500) i;
DELETE FROM {p}books WHERE id % 50 = 0;
"""


@pytest.mark.parametrize("bind", list(ENGINES))
def test_pg_dump_restored_through_bindproxy(px, bind, backends):
    """pg_dump (plain) of a real PostgreSQL database with serial keys, a FK, an index, defaults and COPY
    data, restored with psql -f through bindproxy: every row equal, keys and defaults working."""
    require_tool("pg_dump")
    p = f"{ENGINES[bind]}d{next(_n)}_"
    src = f"{PREFIX}dumpsrc_{next(_n)}"
    with pg_admin() as a:
        a.execute(f'CREATE DATABASE "{src}"')
    try:
        with pg_direct(src) as c:
            c.execute(DUMP_SOURCE.format(p=p))
        dump = subprocess.run(["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, src], capture_output=True,
                              text=True, check=True, timeout=60).stdout
        assert f"COPY public.{p}books" in dump and "CREATE SEQUENCE" in dump
        r = px.psql("-f", "-", input=dump)
        assert "ERROR" not in r.stderr, r.stderr
        for table in ("authors", "books"):
            with pg_direct(src) as c:
                want = c.execute(f"SELECT * FROM {p}{table} ORDER BY id").fetchall()
            with px.connect() as c:
                got = c.execute(f"SELECT * FROM {p}{table} ORDER BY id").fetchall()
            assert got == want, table
        with px.connect() as c:
            # serial keys continue after the highest id, as setval left them; defaults apply
            assert c.execute(f"INSERT INTO {p}authors (name) VALUES ('new') RETURNING id, created, rating"
                             ).fetchone() == (4, dt.date(2020, 1, 1), 0)
            assert c.execute(f"INSERT INTO {p}books (author_id, title) VALUES (4, 't') RETURNING id, published"
                             ).fetchone() == (501, False)
            with pytest.raises(pgerr.ForeignKeyViolation):
                c.execute(f"INSERT INTO {p}books (author_id, title) VALUES (99, 'orphan')")
            with pytest.raises(pgerr.UniqueViolation):
                c.execute(f"INSERT INTO {p}authors (name) VALUES ('Ann')")
            with pytest.raises(pgerr.CheckViolation):
                c.execute(f"INSERT INTO {p}authors (name, rating) VALUES ('neg', -1)")
            # the sequence itself
            assert c.execute(f"SELECT nextval('{p}authors_id_seq')").fetchone()[0] >= 4
    finally:
        with pg_admin() as a:
            a.execute(f'DROP DATABASE IF EXISTS "{src}" WITH (FORCE)')


@pytest.mark.parametrize("bind", list(ENGINES))
def test_copy_from_options_agree_with_postgresql(px, bind):
    """The same input with DELIMITER / NULL / QUOTE / ESCAPE / FORCE_NOT_NULL / FORCE_NULL / HEADER MATCH and
    octal/hex escapes loads the same rows as on PostgreSQL (compared through PostgreSQL's COPY TO bytes)."""
    cases = [
        ("(FORMAT csv, DELIMITER ';', NULL 'NIL', QUOTE '''', ESCAPE '\\', HEADER MATCH)",
         "id;name\n1;'a;b'\n2;NIL\n3;'it\\'s'\n4;''\n"),
        ("(FORMAT csv, FORCE_NOT_NULL (name))", "1,\n2,\"\"\n3,x\n"),
        ("(FORMAT csv, FORCE_NULL (name))", "1,\n2,\"\"\n3,x\n"),
        ("(FORMAT text, NULL '')", "1\t\n2\t\\101\\x42\\\\\\n\n3\tz\\.\n\\.\n"),
    ]
    for i, (o, data) in enumerate(cases):
        t = make_table(px, bind, f"o{i}")
        ref = pg_reference(px, t, fill=False)
        for table, conn in ((t, px.connect()), (ref, pg_direct(px.pgdb))):
            with conn, conn.cursor() as cur:
                with cur.copy(f"COPY {table} (id, name) FROM STDIN {o}") as cp:
                    cp.write(data)
        out = "(FORMAT csv, FORCE_QUOTE (name))"
        got = proxy_copy_out(px, f"COPY (SELECT id, name FROM {t} ORDER BY id) TO STDOUT {out}")
        want = pg_copy_out(px, f"COPY (SELECT id, name FROM {ref} ORDER BY id) TO STDOUT {out}")
        assert got == want, o
    # HEADER MATCH with the wrong names fails as on PostgreSQL
    t = make_table(px, bind, "hm")
    with px.connect() as c, c.cursor() as cur:
        with pytest.raises(pgerr.BadCopyFileFormat) as ei:
            with cur.copy(f"COPY {t} (id, name) FROM STDIN (FORMAT csv, HEADER MATCH)") as cp:
                cp.write("id,nom\n1,a\n")
        assert "column name mismatch" in str(ei.value)
