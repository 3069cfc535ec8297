"""Issue 6: routing can be trusted. No statement ever runs on a wrong bind; what cannot be determined is refused.

A test-first harness for the routing analysis (src/sql/). Every case is checked on the backends DIRECTLY, not
through the proxy:

  bind a  PostgreSQL  bp_<pid>_trust_a   (default bind)   t_a, w_a
  bind b  PostgreSQL  bp_<pid>_trust_b                    t_b, w_b, domain, type, language, key, schema,
                                                          sequence, partition, pg_stuff, and schema s2.*
  bind m  MariaDB     bp_<pid>_trust_m                    t_m
  bind s  SQLite file trust_s.db                          t_s

EVERY backend holds the SAME tables (all of the above, plus s2.t2 and s2.t_a on the two PostgreSQL ones), and
each copy holds one row whose `who` column names its own bind ('a', 'b', 'm', 's'). So a statement sent to the
wrong bind does not fail: it quietly reads or writes the wrong copy, and the checks here catch it:

- a read must return the right bind's `who`;
- a write (`UPDATE w_b SET who = 'hit'`, DELETE, TRUNCATE, INSERT) must change exactly that table on the right
  bind, and nothing anywhere else (every table's contents, and every relation and rule, on every backend);
- a refusal must carry the expected SQLSTATE (0A000 for cross-bind / cannot-be-determined, 54001/54000 for too
  deep / too large) and a message, and must change nothing anywhere;
- after every case a bystander connection must still be served (`SELECT 1`, `SELECT who FROM t_a`).

Transactions in these cases end with COMMIT, never ROLLBACK (unless ROLLBACK is the point), so a write that
ran on a wrong bind inside a transaction becomes visible to the direct check.

"Either" cases accept routing to the right bind or a refusal (0A000 unless stated): the invariant allows
refusing what cannot be determined. A refusal in such a case passes, with a warning, so over-cautious
refusals stay visible. The cases that must keep working (plain reads, extended protocol, prepared
statements, search_path, keyword-named tables, ...) do not accept a refusal.

Many of these cases fail against the sqlparser-based analysis; they are the acceptance tests for the
libpg_query-based one.
"""

from __future__ import annotations

import re
import sqlite3
import warnings
from dataclasses import dataclass, field
from typing import Callable

import psycopg
import pymysql
import pytest

from conftest import MY_HOST, MY_PASSWORD, MY_PORT, MY_USER, PREFIX, pg_admin, pg_url

# ------------------------------------------------------------------------------------------------------------
# The layout
# ------------------------------------------------------------------------------------------------------------
PG_BINDS = ("a", "b")
ALL_BINDS = ("a", "b", "m", "s")
KEYWORD_TABLES = ("domain", "type", "language", "key", "schema", "sequence", "partition")
TABLES = ("t_a", "w_a", "t_b", "w_b", "t_m", "t_s", *KEYWORD_TABLES, "pg_stuff")
PG_ONLY_TABLES = ("s2.t2", "s2.t_a")  # on the PostgreSQL binds only
TABLE_MAP = {
    "t_a": "a", "w_a": "a",
    "t_b": "b", "w_b": "b",
    "t_m": "m",
    "t_s": "s",
    **{k: "b" for k in KEYWORD_TABLES},
    "pg_stuff": "b",
    "s2.*": "b",
}

REFUSED = "0A000"
TOO_DEEP = "54001"
TOO_LARGE = "54000"


def pg_ident(name: str) -> str:
    return ".".join('"' + p + '"' for p in name.split("."))


class Direct:
    """Reads and repairs every copy of every table straight on its backend (never through the proxy)."""

    def __init__(self, pg_dbs: dict[str, str], my_db: str, sqlite_path):
        self.pg_dbs = pg_dbs
        self.my_db = my_db
        self.sqlite_path = sqlite_path
        self._pg: dict[str, psycopg.Connection] = {}
        self._my = None
        self._lite = None

    # -- connections (kept open, reopened when broken) --
    def pg(self, bind: str) -> psycopg.Connection:
        c = self._pg.get(bind)
        if c is None or c.closed or c.broken:
            c = psycopg.connect(pg_url(self.pg_dbs[bind]), autocommit=True, connect_timeout=5,
                                options="-c lock_timeout=5s -c statement_timeout=20s")
            self._pg[bind] = c
        return c

    def my(self):
        if self._my is None or not self._my.open:
            self._my = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password=MY_PASSWORD,
                                       database=self.my_db, autocommit=True, connect_timeout=5)
            with self._my.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 5, SESSION lock_wait_timeout = 5")
        return self._my

    def lite(self) -> sqlite3.Connection:
        if self._lite is None:
            self._lite = sqlite3.connect(str(self.sqlite_path), timeout=5, isolation_level=None)
        return self._lite

    def close(self):
        for c in self._pg.values():
            c.close()
        if self._my is not None:
            self._my.close()
        if self._lite is not None:
            self._lite.close()

    def _my_exec(self, sql: str) -> list[tuple]:
        with self.my().cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def _lite_exec(self, sql: str) -> list[tuple]:
        return self.lite().execute(sql).fetchall()

    # -- what a backend holds --
    def baseline_tables(self, bind: str) -> tuple[str, ...]:
        return TABLES + PG_ONLY_TABLES if bind in PG_BINDS else TABLES

    def state(self) -> dict[tuple[str, str], object]:
        """(bind, object) -> sorted `who` values of a table, or 'exists' for any other relation / rule."""
        st: dict[tuple[str, str], object] = {}
        for bind in PG_BINDS:
            c = self.pg(bind)
            rels = c.execute(
                "SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END, "
                "c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
                "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' "
                "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')").fetchall()
            for name, kind in rels:
                if name in self.baseline_tables(bind):
                    rows = c.execute(f"SELECT who FROM {pg_ident(name)}").fetchall()
                    st[(bind, name)] = tuple(sorted(r[0] for r in rows))
                else:
                    st[(bind, f"relation {name}")] = kind
            for (rule,) in c.execute("SELECT schemaname || '.' || tablename || '.' || rulename FROM pg_rules "
                                     "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall():
                st[(bind, f"rule {rule}")] = "exists"
            for (trig,) in c.execute("SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
                                     "WHERE NOT tgisinternal").fetchall():
                st[(bind, f"trigger {trig}")] = "exists"
        for (name, _kind) in self._my_exec("SHOW FULL TABLES"):
            if name in TABLES:
                st[("m", name)] = tuple(sorted(r[0] for r in self._my_exec(f"SELECT who FROM `{name}`")))
            else:
                st[("m", f"relation {name}")] = "exists"
        for (name, typ) in self._lite_exec("SELECT name, type FROM sqlite_master "
                                           "WHERE type IN ('table', 'view', 'trigger') "
                                           "AND name NOT LIKE 'sqlite_%'"):
            if typ == "table" and name in TABLES:
                st[("s", name)] = tuple(sorted(r[0] for r in self._lite_exec(f'SELECT who FROM "{name}"')))
            else:
                st[("s", f"{typ} {name}")] = "exists"
        return st

    @staticmethod
    def expected_baseline() -> dict[tuple[str, str], object]:
        st = {}
        for bind in ALL_BINDS:
            for t in TABLES + (PG_ONLY_TABLES if bind in PG_BINDS else ()):
                st[(bind, t)] = (bind,)
        return st

    # -- setup and repair --
    def create_all(self):
        for bind in PG_BINDS:
            c = self.pg(bind)
            c.execute("CREATE SCHEMA s2")
            for t in TABLES + PG_ONLY_TABLES:
                c.execute(f"CREATE TABLE {pg_ident(t)} (who text)")
                c.execute(f"INSERT INTO {pg_ident(t)} (who) VALUES (%s)", (bind,))
        for t in TABLES:
            self._my_exec(f"CREATE TABLE `{t}` (who VARCHAR(100)) ENGINE=InnoDB "
                          "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
            self._my_exec(f"INSERT INTO `{t}` (who) VALUES ('m')")
        for t in TABLES:
            self._lite_exec(f'CREATE TABLE "{t}" (who TEXT)')
            self._lite_exec(f"INSERT INTO \"{t}\" (who) VALUES ('s')")

    def restore(self):
        """Brings every backend back to the baseline: one row per table naming its bind, nothing else."""
        want = self.expected_baseline()
        have = self.state()
        for key in set(want) | set(have):
            if want.get(key) == have.get(key):
                continue
            bind, obj = key
            if key in want:  # a baseline table whose contents (or existence) changed
                if bind in PG_BINDS:
                    c = self.pg(bind)
                    if have.get(key) is None:
                        c.execute(f"CREATE TABLE IF NOT EXISTS {pg_ident(obj)} (who text)")
                    c.execute(f"DELETE FROM {pg_ident(obj)}")
                    c.execute(f"INSERT INTO {pg_ident(obj)} (who) VALUES (%s)", (bind,))
                elif bind == "m":
                    self._my_exec(f"CREATE TABLE IF NOT EXISTS `{obj}` (who VARCHAR(100)) "
                                  "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
                    self._my_exec(f"DELETE FROM `{obj}`")
                    self._my_exec(f"INSERT INTO `{obj}` (who) VALUES ('m')")
                else:
                    self._lite_exec(f'CREATE TABLE IF NOT EXISTS "{obj}" (who TEXT)')
                    self._lite_exec(f'DELETE FROM "{obj}"')
                    self._lite_exec(f"INSERT INTO \"{obj}\" (who) VALUES ('s')")
                continue
            # something that should not be there
            what, name = obj.split(" ", 1)
            if bind in PG_BINDS:
                c = self.pg(bind)
                if what == "rule":
                    sch, tab, rule = name.split(".", 2)
                    c.execute(f'DROP RULE IF EXISTS "{rule}" ON "{sch}"."{tab}"')
                elif what == "trigger":
                    tab, trig = name.rsplit(".", 1)
                    c.execute(f'DROP TRIGGER IF EXISTS "{trig}" ON {tab}')
                else:
                    kind = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE",
                            "f": "FOREIGN TABLE"}[have[key]]
                    c.execute(f"DROP {kind} IF EXISTS {pg_ident(name)} CASCADE")
            elif bind == "m":
                self._my_exec(f"DROP TABLE IF EXISTS `{name}`")
                self._my_exec(f"DROP VIEW IF EXISTS `{name}`")
            else:
                self._lite_exec(f'DROP {what.upper()} IF EXISTS "{name}"')
        after = self.state()
        assert after == want, f"could not restore the backends: {diff(want, after)}"


def diff(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)}


# ------------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trust_env(backends, mariadb, start_proxy):
    pg_dbs = {"a": PREFIX + "trust_a", "b": PREFIX + "trust_b"}
    with pg_admin() as conn:
        for name in pg_dbs.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                         "LC_COLLATE 'C' LC_CTYPE 'C'")
    my_db = backends.mysql_db("trust_m")  # dropped by the backends fixture at the end of the session
    lite_path = backends.sqlite_path("trust_s")
    direct = Direct(pg_dbs, my_db, lite_path)
    direct.create_all()
    config = {
        "default_bind": "a",
        "binds": {
            "a": {"url": pg_url(pg_dbs["a"]), "pool_size": 4},
            "b": {"url": pg_url(pg_dbs["b"]), "pool_size": 4},
            "m": {"url": f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{my_db}", "pool_size": 4},
            "s": f"sqlite:///{lite_path}",
        },
        "tables": dict(TABLE_MAP),
    }
    proxy = start_proxy(config, "trust")
    yield proxy, direct
    direct.close()
    proxy.stop()
    with pg_admin() as conn:
        for name in pg_dbs.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(trust_env):
    proxy, direct = trust_env
    proxy.ensure_running()
    direct.restore()
    return proxy, direct


# ------------------------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------------------------
@dataclass
class S:
    """One statement sent through the proxy. `want` (when given) is the rows it must return."""
    sql: str
    want: list | None = None
    params: tuple | None = None
    prepare: bool | None = None
    may_refuse: bool = False  # a setup step whose 0A000 refusal counts as the case's outcome
    repeat: int = 1           # run it this many times (prepared statements: the last run is the one checked)


def _s(x) -> S:
    return x if isinstance(x, S) else S(x)


@dataclass
class Outcome:
    results: list[list[tuple]] = field(default_factory=list)  # result sets of the statement under test
    error: tuple[str | None, str] | None = None               # (SQLSTATE, message) of the first error
    step: str = ""                                            # which statement raised


# ---- expectations ----
class Expect:
    may_refuse_codes: tuple[str, ...] = ()

    def check_success(self, out: Outcome, changes: dict) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError


def _last_rows(out: Outcome) -> list[tuple]:
    for rows in reversed(out.results):
        if rows:
            return rows
    return []


@dataclass
class Read(Expect):
    """Succeeds, returns at least one row, and the last column of every row of the last result is `bind`."""
    bind: str
    match: Callable[[list[tuple]], bool] | None = None
    what: str = ""

    def describe(self):
        return self.what or f"reads bind {self.bind}"

    def check_success(self, out, changes):
        problems = []
        rows = _last_rows(out)
        if self.match is not None:
            if not self.match(rows):
                problems.append(f"expected a result that {self.describe()}; got {rows!r}")
        elif not rows or any(r[-1] != self.bind for r in rows):
            problems.append(f"expected rows read from bind {self.bind} (who = {self.bind!r}); got {rows!r}")
        if changes:
            problems.append(f"a read changed the backends: {changes}")
        return problems


@dataclass
class Write(Expect):
    """Succeeds and changes exactly `table` on `bind` to `after` (sorted who values), nothing else anywhere."""
    bind: str
    table: str = "w_b"
    after: tuple = ("hit",)

    def describe(self):
        return f"writes {self.table} on bind {self.bind} only (-> {self.after})"

    def check_success(self, out, changes):
        want = {(self.bind, self.table): ((self.bind,), self.after)}
        if changes != want:
            return [f"expected exactly {want}; the backends changed: {changes or 'nothing'}"]
        return []


@dataclass
class NoChange(Expect):
    """Any outcome (success or any error), but nothing changes on any backend."""
    must_succeed: bool = False
    must_fail: bool = False

    def describe(self):
        return "changes nothing anywhere"

    def check_success(self, out, changes):
        problems = []
        if self.must_fail:
            problems.append("expected an error, but the statement succeeded")
        if changes:
            problems.append(f"expected no change anywhere; the backends changed: {changes}")
        return problems


@dataclass
class Refuse(Expect):
    """Fails with one of `codes` and a message (matching every regex in `msg`), and changes nothing."""
    codes: tuple[str, ...] = (REFUSED,)
    msg: tuple[str, ...] = ()

    def describe(self):
        return f"is refused with SQLSTATE {'/'.join(self.codes)}"


@dataclass
class RefuseConnect(Expect):
    """The connection itself is refused with a FATAL whose message matches `msg`; nothing changes."""
    msg: str

    def describe(self):
        return f"refuses the connection ({self.msg!r})"


@dataclass
class Either(Expect):
    """`ok` when it succeeds; otherwise it must be refused with one of `codes` and change nothing."""
    ok: Expect
    codes: tuple[str, ...] = (REFUSED,)

    def describe(self):
        return f"{self.ok.describe()}, or is refused with SQLSTATE {'/'.join(self.codes)}"


def evaluate(expect: Expect, out: Outcome, changes: dict) -> list[str]:
    err = out.error
    if isinstance(expect, RefuseConnect):
        problems = [] if changes == {} else [f"expected no change; the backends changed: {changes}"]
        if err is None or not (out.step or "").startswith("connect"):
            problems.append(f"expected the connection to be refused; got {err!r} at {out.step!r}")
        elif not re.search(expect.msg, err[1]):
            problems.append(f"connection refused, but the message {err[1]!r} does not match {expect.msg!r}")
        return problems
    if isinstance(expect, Refuse):
        problems = []
        if err is None:
            problems.append(f"expected a refusal ({'/'.join(expect.codes)}); it succeeded with "
                            f"{out.results!r}")
        else:
            code, msg = err
            if code not in expect.codes:
                problems.append(f"expected SQLSTATE {'/'.join(expect.codes)}; got {code}: {msg}")
            if not msg.strip():
                problems.append("the refusal carries no message")
            for rx in expect.msg:
                if not re.search(rx, msg):
                    problems.append(f"the refusal message does not match /{rx}/: {msg!r}")
        if changes:
            problems.append(f"a refused statement changed the backends: {changes}")
        return problems
    if isinstance(expect, Either):
        if err is None:
            return expect.ok.check_success(out, changes)
        code, msg = err
        problems = []
        if code not in expect.codes:
            problems.append(f"expected: {expect.describe()}; got an error {code}: {msg} (at {out.step!r})")
        elif not msg.strip():
            problems.append("the refusal carries no message")
        else:
            warnings.warn(f"refused (allowed): {code}: {msg}")
        if changes:
            problems.append(f"a failed statement changed the backends: {changes}")
        return problems
    if isinstance(expect, NoChange):
        if err is None:
            return expect.check_success(out, changes)
        problems = []
        if expect.must_succeed:
            problems.append(f"expected success; got {err[0]}: {err[1]} (at {out.step!r})")
        if changes:
            problems.append(f"expected no change anywhere; the backends changed: {changes}")
        return problems
    # Read / Write: must succeed
    if err is not None:
        problems = [f"expected: {expect.describe()}; got an error {err[0]}: {err[1]} (at {out.step!r})"]
        if changes:
            problems.append(f"and the backends changed: {changes}")
        return problems
    return expect.check_success(out, changes)


@dataclass
class Case:
    id: str
    sql: str | S
    expect: Expect
    before: list = field(default_factory=list)  # must succeed (rows checked when `want` is given)
    after: list = field(default_factory=list)   # run whatever happened (COMMIT); errors ignored unless `want`
    connect: dict = field(default_factory=dict)


def txn_on(bind: str, table: str | None = None) -> list:
    """BEGIN, then a read that ties the transaction to `bind`."""
    table = table or f"t_{bind}"
    return ["BEGIN", S(f"SELECT who FROM {table}", want=[(bind,)])]


def xml_has(bind: str) -> Callable[[list[tuple]], bool]:
    def m(rows):
        text = " ".join(str(v) for r in rows for v in r)
        return f"<who>{bind}</who>" in text and not any(f"<who>{o}</who>" in text for o in ALL_BINDS if o != bind)
    return m


def nested_subquery(depth: int, inner: str) -> str:
    return "(SELECT " * depth + inner + ")" * depth


CROSS_AB = (r"\bt_a\b", r"\bt_b\b")
PAD = "x" * (1 << 20)  # 1 MiB

CASES = [
    # --- must keep working -----------------------------------------------------------------------------
    Case("plain-read-b", "SELECT who FROM t_b", Read("b")),
    Case("plain-read-a", "SELECT who FROM t_a", Read("a")),
    Case("plain-read-m", "SELECT who FROM t_m", Read("m")),
    Case("plain-read-s", "SELECT who FROM t_s", Read("s")),
    Case("plain-table-b", "TABLE t_b", Read("b")),
    Case("plain-qualified-b", 'SELECT who FROM "public"."t_b"', Read("b")),
    Case("plain-write-b", "UPDATE w_b SET who = 'hit'", Write("b")),
    Case("plain-write-m", "UPDATE t_m SET who = 'hit'", Write("m", "t_m")),
    Case("plain-write-s", "UPDATE t_s SET who = 'hit'", Write("s", "t_s")),
    Case("plain-cte-shadows-table", "WITH t_b AS (SELECT who FROM t_a) SELECT who FROM t_b", Read("a")),
    Case("plain-subquery-b", "SELECT (SELECT who FROM t_b)", Read("b")),
    Case("plain-schema-rule", "SELECT who FROM s2.t2", Read("b")),
    Case("plain-explain-analyze-write", "EXPLAIN ANALYZE UPDATE w_b SET who = 'hit'", Write("b")),
    Case("sql-prepare-execute", "EXECUTE p", Either(Write("b")),
         before=["PREPARE p AS UPDATE w_b SET who = 'hit'"]),
    Case("ext-read-b", S("SELECT who FROM t_b WHERE who = %s", params=("b",)), Read("b")),
    Case("ext-read-a", S("SELECT who FROM t_a WHERE who = %s", params=("a",)), Read("a")),
    Case("ext-read-m", S("SELECT who FROM t_m WHERE who = %s", params=("m",)), Read("m")),
    Case("ext-write-b", S("UPDATE w_b SET who = %s", params=("hit",)), Write("b")),
    Case("prepared-read-b", S("SELECT who FROM t_b WHERE who = %s", params=("b",), prepare=True, repeat=3),
         Read("b")),
    Case("prepared-read-a", S("SELECT who FROM t_a WHERE who = %s", params=("a",), prepare=True, repeat=3),
         Read("a")),
    Case("prepared-write-b", S("UPDATE w_b SET who = %s", params=("hit",), prepare=True, repeat=2), Write("b")),
    # --- the tricky forms through the extended protocol (Parse/Bind/Execute) and server-side prepares ---------
    Case("ext-only-paren-select", S("SELECT who FROM ONLY (t_b) WHERE who = %s", params=("b",)), Either(Read("b"))),
    Case("ext-only-paren-cross", S("SELECT t_b.who FROM t_a, ONLY (t_b) WHERE t_a.who = %s", params=("a",)),
         Refuse()),
    Case("ext-uescape-update", S(r'UPDATE U&"\0077_b" SET who = %s', params=("hit",)), Either(Write("b"))),
    Case("ext-estring-read", S(r"SELECT E'a\'b', (SELECT who FROM t_b WHERE who = %s) --'", params=("b",)),
         Read("b")),
    Case("ext-pg-stuff-update", S("UPDATE pg_stuff SET who = %s", params=("hit",)), Write("b", "pg_stuff")),
    Case("ext-search-path-set", S("SELECT who FROM t2 WHERE who = %s", params=("b",)), Read("b"),
         before=["SET search_path TO s2"]),
    Case("prepared-keyword-table", S("SELECT who FROM key WHERE who = %s", params=("b",), prepare=True, repeat=2),
         Read("b")),
    Case("prepared-uescape-select", S('SELECT who FROM U&"t_b" WHERE who = %s', params=("b",), prepare=True,
                                      repeat=2), Either(Read("b"))),
    # --- plain cross-bind refusals ---------------------------------------------------------------------
    Case("cross-join", "SELECT * FROM t_a, t_b", Refuse(msg=CROSS_AB)),
    Case("cross-exists", "SELECT who FROM t_b WHERE EXISTS (SELECT 1 FROM t_a)", Refuse(msg=CROSS_AB)),
    Case("cross-insert-select", "INSERT INTO w_b SELECT who FROM t_a", Refuse()),
    Case("cross-update-subquery", "UPDATE w_b SET who = (SELECT who FROM t_a)", Refuse()),
    Case("cross-delete-using", "DELETE FROM w_b USING t_a", Refuse()),
    Case("cross-writing-cte", "WITH d AS (DELETE FROM w_a RETURNING who) SELECT who FROM t_b", Refuse()),
    Case("cross-merge", "MERGE INTO w_b USING t_a ON true WHEN MATCHED THEN UPDATE SET who = 'hit'", Refuse()),
    Case("cross-m-s", "SELECT who FROM t_m UNION ALL SELECT who FROM t_s", Refuse()),
    # a Query whose statements go to several binds runs each on its bind, as one transaction (issue 7)
    Case("cross-multi-statement", "SELECT who FROM t_a; UPDATE w_b SET who = 'hit'", Write("b")),
    Case("cross-multi-statement-fails-late", "UPDATE w_a SET who = 'hit'; UPDATE w_b SET nope = 1",
         NoChange(must_fail=True)),
    Case("cross-multi-statement-cross-join-late", "UPDATE w_a SET who = 'hit'; SELECT who FROM t_a, t_b",
         Refuse()),
    # --- ONLY (…) ----------------------------------------------------------------------------------------
    Case("only-paren-select", "SELECT who FROM ONLY (t_b)", Either(Read("b"))),
    Case("only-paren-table", "TABLE ONLY (t_b)", Either(Read("b"))),
    Case("only-paren-delete", "DELETE FROM ONLY (w_b)", Either(Write("b", after=()))),
    Case("only-paren-update", "UPDATE ONLY (w_b) SET who='hit'", Either(Write("b"))),
    Case("only-paren-truncate", "TRUNCATE ONLY (w_b)", Either(Write("b", after=()))),
    Case("only-paren-cross", "SELECT t_b.who FROM t_a, ONLY (t_b)", Refuse()),
    # --- U&"…" identifiers --------------------------------------------------------------------------------
    Case("uescape-select", 'SELECT who FROM U&"t_b"', Either(Read("b"))),
    Case("uescape-select-escaped", r'SELECT who FROM U&"t\005fb"', Either(Read("b"))),
    Case("uescape-update", r"""UPDATE U&"\0077_b" SET who='hit'""", Either(Write("b"))),
    Case("uescape-insert-uescape", """INSERT INTO U&"w!005fb" UESCAPE '!' (who) VALUES ('hit')""",
         Either(Write("b", after=("b", "hit")))),
    # --- E'…' strings -------------------------------------------------------------------------------------
    Case("estring-read", r"SELECT E'\xc3\xa9', E'a\'b', (SELECT who FROM t_b) --'", Read("b")),
    Case("estring-write", r"SELECT E'\xc3\xa9', E'a\'b'; UPDATE w_b SET who = 'hit' --'", Either(Write("b"))),
    # --- standard_conforming_strings = off ----------------------------------------------------------------
    Case("scs-off-set", r"SELECT 'x\''; UPDATE w_b SET who = 'hit'; --'", Either(Write("b")),
         before=[S("SET standard_conforming_strings = off", may_refuse=True)]),
    Case("scs-off-startup", r"SELECT 'x\''; UPDATE w_b SET who = 'hit'; --'",
         RefuseConnect(r"standard_conforming_strings = off is not supported"),
         connect={"options": "-c standard_conforming_strings=off"}),
    Case("scs-off-set-config", r"SELECT 'x\''; UPDATE w_b SET who = 'hit'; --'", Either(Write("b")),
         before=[S("SELECT set_config('standard_conforming_strings', 'off', false)", may_refuse=True)]),
    # --- the statement splitter of translated binds vs routing ---------------------------------------------
    *[Case(f"splitter-{name}-in-txn-on-{bind}", payload, NoChange(), before=txn_on(bind), after=["COMMIT"])
      for bind in ("m", "s")
      for name, payload in (
          ("1E-quote", r"SET application_name = 1E'\'; UPDATE w_b SET who = 'hit'; SET application_name = '"),
          ("dollar-e-acute", "SET application_name = $é$; UPDATE w_b SET who='hit'; SET application_name = $é$"),
      )],
    Case("splitter-dollar-e-acute-autocommit",
         "SET application_name = $é$; UPDATE w_b SET who='hit'; SET application_name = $é$", NoChange()),
    Case("splitter-1E-quote-autocommit",
         r"SET application_name = 1E'\'; UPDATE w_b SET who = 'hit'; SET application_name = '",
         NoChange(must_fail=True)),
    # --- cursors, CREATE TABLE AS -------------------------------------------------------------------------
    Case("declare-cursor-table", "FETCH ALL FROM c", Read("b"),
         before=["BEGIN", "DECLARE c CURSOR FOR TABLE t_b"], after=["COMMIT"]),
    Case("declare-cursor-select", "FETCH ALL FROM c", Read("b"),
         before=["BEGIN", "DECLARE c CURSOR FOR SELECT who FROM t_b"], after=["COMMIT"]),
    Case("create-table-as-table-cross", "CREATE TABLE x AS TABLE t_b", Refuse()),
    Case("select-into-cross", "SELECT who INTO x FROM t_b", Refuse()),
    # --- FROM lists that hide a second bind ---------------------------------------------------------------
    Case("tablesample-cross", "SELECT * FROM ONLY t_a TABLESAMPLE SYSTEM (100), t_b", Refuse()),
    Case("paren-join-cross", "SELECT * FROM ONLY t_a, (t_b x CROSS JOIN t_a y)", Refuse()),
    Case("lateral-cross", "SELECT x.who FROM t_a, LATERAL (SELECT who FROM t_b) x", Refuse()),
    # --- tables named like keywords (all mapped to b) -----------------------------------------------------
    *[Case(f"keyword-table-{k}", f"SELECT who FROM {k}", Read("b")) for k in KEYWORD_TABLES],
    Case("keyword-table-update-type", "UPDATE type SET who = 'hit'", Write("b", "type")),
    Case("keyword-table-delete-partition", "DELETE FROM partition", Write("b", "partition", after=())),
    # --- DO blocks and routing hints ----------------------------------------------------------------------
    Case("do-dollar-if", "DO $$BEGIN IF true THEN UPDATE w_b SET who='hit'; END IF; END$$", Either(Write("b"))),
    Case("do-quoted-body", "DO 'BEGIN UPDATE w_b SET who=''hit''; END'", Either(Write("b"))),
    Case("do-language-first", "DO LANGUAGE plpgsql $body$BEGIN UPDATE w_b SET who='hit'; END$body$",
         Either(Write("b"))),
    Case("do-dynamic-execute", "DO $$BEGIN EXECUTE 'UPDATE w_b SET who=''hit'''; END$$", Refuse()),
    Case("do-dynamic-format", "DO $$BEGIN EXECUTE format('UPDATE %I SET who = %L', 'w_b', 'hit'); END$$",
         Refuse()),
    Case("do-dynamic-execute-hint-b",
         "/* bindproxy: bind=b */ DO $$BEGIN EXECUTE 'UPDATE w_b SET who=''hit'''; END$$", Write("b")),
    Case("hint-agrees", "/* bindproxy: bind=b */ SELECT who FROM t_b", Read("b")),
    Case("hint-contradicts-tables", "/* bindproxy: bind=a */ UPDATE w_b SET who='hit'", NoChange(must_fail=True)),
    Case("hint-in-string-is-not-a-hint", "SELECT '/* bindproxy: bind=b */', who FROM t_a", Read("a")),
    # --- rules, functions that read tables by name --------------------------------------------------------
    Case("create-rule-cross", "CREATE RULE r AS ON INSERT TO t_a DO INSTEAD UPDATE w_b SET who='hit'", Refuse()),
    Case("table-to-xml", "SELECT table_to_xml('t_b', true, false, '')",
         Either(Read("b", match=xml_has("b"), what="is b's t_b as XML"))),
    Case("query-to-xml", "SELECT query_to_xml('SELECT who FROM t_b', true, false, '')",
         Either(Read("b", match=xml_has("b"), what="is b's t_b as XML"))),
    # --- a name in the table map wins over the catalog heuristic ------------------------------------------
    Case("pg-stuff-read", "SELECT who FROM pg_stuff", Read("b")),
    Case("pg-stuff-update", "UPDATE pg_stuff SET who = 'hit'", Write("b", "pg_stuff")),
    Case("pg-stuff-delete-rollback", "DELETE FROM pg_stuff", NoChange(must_succeed=True),
         before=["BEGIN"], after=["ROLLBACK"]),
    Case("pg-stuff-delete-commit", "DELETE FROM pg_stuff", Write("b", "pg_stuff", after=()),
         before=["BEGIN"], after=["COMMIT"]),
    # --- search_path ----------------------------------------------------------------------------------------
    Case("search-path-set", "SELECT who FROM t2", Read("b"), before=["SET search_path TO s2"]),
    # public could hold an unmapped t2 on the default bind: only the server could tell which schema has it
    Case("search-path-ambiguous-unmapped", "SELECT who FROM t2",
         Refuse(msg=(r"s2\.t2", r"public\.t2")), before=["SET search_path TO s2, public"]),
    Case("search-path-set-only-s2", "SELECT who FROM t_a", Read("b"), before=["SET search_path TO s2"]),
    Case("search-path-set-write", "UPDATE t2 SET who = 'hit'", Write("b", "s2.t2"),
         before=["SET search_path TO s2"]),
    Case("search-path-startup", "SELECT who FROM t2", Read("b"), connect={"options": "-c search_path=s2"}),
    Case("search-path-set-config", "SELECT who FROM t2", Either(Read("b")),
         before=["SELECT set_config('search_path', 's2', false)"]),
    Case("search-path-same-bind", "SELECT who FROM t_b", Read("b"), before=["SET search_path TO s2, public"]),
    Case("search-path-ambiguous", "SELECT who FROM t_a",
         Refuse(msg=(r"s2\.t_a", r"(?<!s2\.)\bt_a\b")), before=["SET search_path TO s2, public"]),
    Case("search-path-ambiguous-startup", "SELECT who FROM t_a",
         Refuse(msg=(r"s2\.t_a", r"(?<!s2\.)\bt_a\b")), connect={"options": "-c search_path=s2,public"}),
    Case("search-path-set-local", "SELECT who FROM t2", Read("b"),
         before=txn_on("b") + ["SET LOCAL search_path TO s2"],
         after=["COMMIT", S("SELECT who FROM t_a", want=[("a",)])]),
    Case("search-path-set-local-first", "SELECT who FROM t2", Read("b"),
         before=["BEGIN", "SET LOCAL search_path TO s2"],
         after=["COMMIT", S("SELECT who FROM t_a", want=[("a",)])]),
    Case("search-path-reset", "SELECT who FROM t_a", Read("a"),
         before=["SET search_path TO s2", S("SELECT who FROM t2", want=[("b",)]),
                 "RESET search_path"]),
    Case("search-path-set-default", "SELECT who FROM t_a", Read("a"),
         before=["SET search_path TO s2, public", "SET search_path TO DEFAULT"]),
    # --- too deep, too large, too many ---------------------------------------------------------------------
    Case("deep-subquery-200", "SELECT " + nested_subquery(200, "who FROM t_b"),
         Either(Read("b"), codes=(REFUSED, TOO_DEEP))),
    Case("deep-subquery-cross-200", "SELECT who FROM t_a WHERE who <> " + nested_subquery(200, "who FROM t_b"),
         Refuse(codes=(REFUSED, TOO_DEEP))),
    Case("deep-parens-write-900", "UPDATE w_b SET who = 'hit' WHERE " + "(" * 900 + "true" + ")" * 900,
         Either(Write("b"), codes=(REFUSED, TOO_DEEP))),
    Case("deep-subquery-cross-100000",  # PostgreSQL itself answers 42601 "memory exhausted" here
         "SELECT who FROM t_a WHERE who <> " + nested_subquery(100_000, "who FROM t_b"),
         Refuse(codes=(REFUSED, TOO_DEEP, TOO_LARGE, "42601"))),
    Case("large-padded-read", f"SELECT '{PAD}' AS pad, who FROM t_b", Either(Read("b"), codes=(REFUSED, TOO_LARGE))),
    Case("large-padded-cross", f"SELECT who FROM t_a WHERE who <> '{PAD}' UNION ALL SELECT who FROM t_b",
         Refuse(codes=(REFUSED, TOO_LARGE))),
    Case("many-statements-then-write", "SELECT 1;" * 5000 + "UPDATE w_b SET who = 'hit'",
         Either(Write("b"), codes=(REFUSED, TOO_LARGE))),
    Case("many-statements-cross", "SELECT who FROM t_a;" * 2000 + "UPDATE w_b SET who = 'hit'",
         Either(Write("b"), codes=(REFUSED, TOO_LARGE))),
]

_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"


# ------------------------------------------------------------------------------------------------------------
# The runner
# ------------------------------------------------------------------------------------------------------------
def _exec(conn: psycopg.Connection, step: S) -> list[list[tuple]]:
    sets: list[list[tuple]] = []
    for _ in range(step.repeat):
        cur = conn.cursor()
        cur.execute(step.sql, step.params, prepare=step.prepare)
        sets = []
        while True:
            if cur.description is not None:
                sets.append(cur.fetchall())
            if not cur.nextset():
                break
    return sets


def _short(sql: str) -> str:
    return sql if len(sql) <= 120 else sql[:100] + f"… ({len(sql)} chars)"


def _err(e: psycopg.Error) -> tuple[str | None, str]:
    msg = e.diag.message_primary if getattr(e, "diag", None) is not None and e.diag.message_primary else str(e)
    return e.sqlstate, msg or ""


def run_case(proxy, case: Case) -> tuple[Outcome, list[str]]:
    """Runs the case through the proxy. Returns the outcome of the statement under test and setup problems."""
    out = Outcome()
    problems: list[str] = []
    try:
        conn = proxy.connect(**case.connect)
    except psycopg.Error as e:
        out.error, out.step = _err(e), f"connect {case.connect}"
        return out, problems
    with conn:
        stopped = False
        for step in map(_s, case.before):
            try:
                rows = _exec(conn, step)
            except psycopg.Error as e:
                if step.may_refuse and e.sqlstate == REFUSED:
                    out.error, out.step = _err(e), step.sql
                else:
                    problems.append(f"setup statement {_short(step.sql)!r} failed: {e.sqlstate}: {_err(e)[1]}")
                stopped = True
                break
            if step.want is not None and (rows[-1] if rows else None) != step.want:
                problems.append(f"setup statement {_short(step.sql)!r} returned {rows!r}, expected {step.want!r}")
                stopped = True
                break
        if not stopped:
            step = _s(case.sql)
            try:
                out.results = _exec(conn, step)
            except psycopg.Error as e:
                out.error, out.step = _err(e), _short(step.sql)
        for step in map(_s, case.after):
            if stopped and step.want is not None:
                continue
            try:
                rows = _exec(conn, step)
            except psycopg.Error as e:
                if step.want is not None:
                    problems.append(f"follow-up {step.sql!r} failed: {e.sqlstate}: {_err(e)[1]}")
                continue
            if step.want is not None and (rows[-1] if rows else None) != step.want:
                problems.append(f"follow-up {step.sql!r} returned {rows!r}, expected {step.want!r}")
    return out, problems


def bystander(proxy) -> list[str]:
    if not proxy.alive():
        return [f"bindproxy is no longer running (exit {proxy.proc.returncode if proxy.proc else '?'})"]
    try:
        with proxy.connect() as c:
            problems = []
            if c.execute("SELECT 1").fetchone() != (1,):
                problems.append("bystander: SELECT 1 did not answer 1")
            rows = c.execute("SELECT who FROM t_a").fetchall()
            if rows != [("a",)]:
                problems.append(f"bystander: SELECT who FROM t_a returned {rows!r}")
            return problems
    except Exception as e:  # noqa: BLE001
        return [f"bystander connection failed: {e!r}"]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_routing_trust(env, case: Case):
    proxy, direct = env
    base = direct.state()
    out, problems = run_case(proxy, case)
    changes = diff(base, direct.state())
    print(f"outcome: error={out.error!r} at={out.step!r} results={str(out.results)[:300]} changes={changes}")
    problems += evaluate(case.expect, out, changes)
    problems += bystander(proxy)
    assert not problems, (f"{_short(_s(case.sql).sql)!r} must: {case.expect.describe()}\n  - "
                          + "\n  - ".join(problems))


def test_layout_sanity(env):
    """The harness itself: every copy names its own bind, and the proxy sees the default bind's copies."""
    proxy, direct = env
    assert direct.state() == Direct.expected_baseline()
    with proxy.connect() as c:
        assert c.execute("SELECT who FROM w_a").fetchall() == [("a",)]
        assert c.execute("SELECT current_database()").fetchone()[0] == direct.pg_dbs["a"]
