"""Issue 9: differential testing of the MySQL/MariaDB and SQLite binds against a real PostgreSQL.

A client of a translated bind writes PostgreSQL and trusts the answer: it must get PostgreSQL's answer,
or a clear refusal (0A000, before anything runs), never a silent difference.

The corpus (tests/corpus/differential.sql, format in its header) is loaded once on a scratch PostgreSQL
database (directly) and through bindproxy onto a MariaDB bind and onto a SQLite bind (two proxies, each
with one translated bind as the default, so the same table names reach it). Each entry then runs, in a
transaction that is rolled back, on PostgreSQL and through each proxy, with the simple and the extended
protocol. Per statement the rows (text format, byte for byte), the column type OIDs, the typmods
PostgreSQL reports (numeric precision/scale, varchar length) and the command tag must be PostgreSQL's, or the SQLSTATE when PostgreSQL fails; otherwise the proxy must have refused with
0A000. An entry marked `-- @refused <engine>` must be refused on that engine, and one not marked must
not be: the corpus is also the record of what each engine supports (README, "Differential testing").
`-- @differs <engine>: reason` records a difference not fixed yet (listed in docs/sql-subset.md); the
test then requires the difference, so a fix shows up as a failure asking to drop the mark.

`test_generated` runs random expressions of a small typed grammar (seeded, SQLancer-style) the same
way: BINDPROXY_DIFF_N (default 150 per engine) expressions, BINDPROXY_DIFF_SEED (default 9).

`BINDPROXY_DIFF_REPORT=path` writes the per-engine counts (equal / refused) as JSON at the end.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.adapt import Dumper
from psycopg.pq import ExecStatus, Format

from conftest import PG_USER, ROOT, my_admin, pg_admin, pg_direct

CORPUS = ROOT / "tests" / "corpus" / "differential.sql"
ENGINES = ("my", "lite")
REFUSED = "0A000"


# ------------------------------------------------------------------------------------------- parameters
class RawText(str):
    """A string sent as it is, in binary format, typed text (libpq cuts a text-format value at a NUL)."""


class RawTextDumper(Dumper):
    oid = 25
    format = Format.BINARY

    def dump(self, obj):
        return obj.encode()


class Raw(str):
    """A string sent as it is, in text format, its type left to the server (OID 0)."""


class RawDumper(Dumper):
    oid = 0

    def dump(self, obj):
        return obj.encode()


def _register(conn):
    conn.adapters.register_dumper(RawText, RawTextDumper)
    conn.adapters.register_dumper(Raw, RawDumper)
    return conn


# ------------------------------------------------------------------------------------------- the corpus
@dataclass
class Entry:
    line: int
    statements: list[str]
    params: tuple | None = None
    refused: set[str] = field(default_factory=set)
    differs: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        first = re.sub(r"\s+", " ", self.statements[0])[:70]
        return f"L{self.line}:{first}"


def _statements(lines: list[str]) -> list[str]:
    """Statements of a block: each ends with `;` at the end of a line."""
    out, cur = [], []
    for ln in lines:
        cur.append(ln)
        if ln.rstrip().endswith(";"):
            out.append("\n".join(cur).strip().rstrip(";").strip())
            cur = []
    if any(c.strip() for c in cur):
        out.append("\n".join(cur).strip())
    return out


def parse_corpus(text: str) -> tuple[list[str], list[Entry]]:
    """`-- @setup` then `-- @cases`. Setup: statements. Cases: entries separated by blank lines, each one
    or more statements; before an entry, `-- @refused my,lite` and `-- @params (python tuple)`; other
    `--` lines are comments."""
    setup: list[str] = []
    entries: list[Entry] = []
    section = None
    block: list[str] = []
    start = 0
    pending_refused: set[str] = set()
    pending_differs: set[str] = set()
    pending_params = None

    def flush():
        nonlocal block, pending_refused, pending_differs, pending_params
        if block:
            if section == "setup":
                setup.extend(_statements(block))
            else:
                entries.append(Entry(start, _statements(block), pending_params, pending_refused,
                                     pending_differs))
                pending_refused, pending_differs, pending_params = set(), set(), None
        block = []

    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("-- @"):
            flush()
            word, _, rest = s[4:].partition(" ")
            if word in ("setup", "cases"):
                section = word
            elif word in ("refused", "differs"):
                engines = {e.strip() for e in rest.split(":")[0].split(",") if e.strip()}
                assert engines <= set(ENGINES), f"line {n}: unknown engine in {s}"
                if word == "refused":
                    pending_refused = engines
                else:
                    assert ":" in rest, f"line {n}: a known difference needs its reason after `:`"
                    pending_differs = engines
            elif word == "params":
                pending_params = eval(rest, {"RawText": RawText, "Raw": Raw})  # noqa: S307 (our own file)
            else:
                raise AssertionError(f"line {n}: unknown directive {s}")
            continue
        if s.startswith("--"):
            continue
        if not s:
            flush()
            continue
        if not block:
            start = n
        block.append(line)
    flush()
    return setup, entries


SETUP, ENTRIES = parse_corpus(CORPUS.read_text())


# ------------------------------------------------------------------------------------------- running
def run(conn, statements: list[str], params, protocol: str) -> list[tuple]:
    """Each statement's outcome: ("ok", tag, oids, rows-as-text-bytes) or ("error", sqlstate, message);
    stops at the first error. The transaction is rolled back afterwards."""
    out = []
    try:
        for s in statements:
            cur = conn.cursor()
            p = params if (params is not None and "%s" in s) else None
            try:
                cur.execute(s, p, prepare=(protocol == "extended") if p is None else None)
            except psycopg.Error as e:
                out.append(("error", e.sqlstate, e.diag.message_primary))
                break
            res = cur.pgresult
            oids, mods, rows = [], [], []
            if res is not None and res.status == ExecStatus.TUPLES_OK:
                oids = [res.ftype(i) for i in range(res.nfields)]
                mods = [res.fmod(i) for i in range(res.nfields)]
                rows = [tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples)]
            out.append(("ok", cur.statusmessage, oids, Typmods(mods), rows))
    finally:
        conn.rollback()
    return out


class Typmods(list):
    """Column typmods (numeric precision and scale, varchar length). Equal when every typmod
    PostgreSQL reports (not -1) is the same on the other side: where PostgreSQL has none, the
    engine's is not compared."""

    def __eq__(self, other):
        return len(self) == len(other) and all(w == -1 or w == g for w, g in zip(self, other))

    __hash__ = None


def refused(outcome: list[tuple]) -> bool:
    return any(o[0] == "error" and o[1] == REFUSED for o in outcome)


def same(want: list[tuple], got: list[tuple]) -> bool:
    """Equal in everything but error messages."""
    if len(want) != len(got):
        return False
    for w, g in zip(want, got):
        if w[0] != g[0]:
            return False
        if w[0] == "error" and w[1] != g[1]:
            return False
        if w[0] == "ok" and w != g:
            return False
    return True


def show(outcome: list[tuple]) -> str:
    return "\n".join(f"    {o!r}" for o in outcome)


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def diffdb():
    """The scratch PostgreSQL database (C collation, as utf8mb4_bin and SQLite compare) and the MariaDB
    database, named alike; the proxies' clients connect with the same database name and user, so
    current_database() and current_user must agree."""
    name = f"bp_{os.getpid()}_diff"
    with pg_admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        with my_admin() as m, m.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"MariaDB is not reachable: {e}", pytrace=False)
    yield name
    with pg_admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with my_admin() as m, m.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def proxies(backends, diffdb, start_proxy):
    """engine -> a proxy whose default bind is that engine (every table of the corpus goes there)."""
    my = start_proxy({"default_bind": "my",
                      "binds": {"my": f"mysql://root@127.0.0.1:3306/{diffdb}"}}, "diff-my")
    lite = start_proxy({"default_bind": "lite",
                        "binds": {"lite": f"sqlite:///{backends.sqlite_path('differential')}"}},
                       "diff-lite")
    return {"my": my, "lite": lite}


def connect_proxy(p, db):
    p.ensure_running()
    return _register(psycopg.connect(host="127.0.0.1", port=p.port, user=PG_USER, dbname=db,
                                     autocommit=False, connect_timeout=10))


@pytest.fixture(scope="module")
def pg(diffdb):
    c = _register(pg_direct(diffdb))
    for s in SETUP:
        c.execute(s)
    c.sequences = c.execute("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences").fetchall()
    c.autocommit = False
    yield c
    c.close()


def writes(entry: Entry) -> bool:
    return any(s.lstrip().upper().startswith("INSERT") for s in entry.statements)


def reset_counters(engine: str, conn, db: str):
    """Sequences (PostgreSQL) and AUTO_INCREMENT counters (InnoDB) do not roll back: put them back
    where the setup left them, so generated keys agree. SQLite's AUTOINCREMENT rolls back."""
    if engine == "pg":
        for seq, last in conn.sequences:
            conn.execute("SELECT setval(%s, %s)", (seq, last))
        conn.commit()
    elif engine == "my":
        with my_admin(db) as m, m.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "AND AUTO_INCREMENT IS NOT NULL")
            for (t,) in cur.fetchall():
                cur.execute(f"ALTER TABLE `{t}` AUTO_INCREMENT = 1")


@pytest.fixture(scope="module")
def engine_conns(proxies, diffdb):
    conns = {}
    for engine, p in proxies.items():
        c = _register(psycopg.connect(host="127.0.0.1", port=p.port, user=PG_USER, dbname=diffdb,
                                      autocommit=True, connect_timeout=10))
        for s in SETUP:
            try:
                c.execute(s)
            except psycopg.Error as e:
                pytest.fail(f"corpus setup failed on {engine}: {s}\n{e.sqlstate} {e}", pytrace=False)
        c.autocommit = False
        conns[engine] = c
    yield conns
    for c in conns.values():
        c.close()


_pg_cache: dict[tuple[int, str], list[tuple]] = {}
OUTCOMES: dict[str, str] = {}
COUNTS: dict[str, dict[str, int]] = {
    e: {"equal": 0, "refused": 0, "known difference": 0, "different": 0} for e in ENGINES}


def _protocols(entry: Entry) -> tuple[str, ...]:
    return ("extended",) if entry.params is not None else ("simple", "extended")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_corpus(pg, engine_conns, proxies, engine, entry):
    conn = engine_conns[engine]
    if conn.closed or conn.broken:
        conn = engine_conns[engine] = connect_proxy(proxies[engine], pg.info.dbname)
    problems, was_refused = [], False
    for protocol in _protocols(entry):
        key = (entry.line, protocol)
        if key not in _pg_cache:
            _pg_cache[key] = run(pg, entry.statements, entry.params, protocol)
            if writes(entry):
                reset_counters("pg", pg, pg.info.dbname)
        want = _pg_cache[key]
        got = run(conn, entry.statements, entry.params, protocol)
        if writes(entry):
            reset_counters(engine, conn, pg.info.dbname)
        if refused(got) and not refused(want):
            was_refused = True
        elif not same(want, got):
            problems.append(f"{protocol} protocol:\n  PostgreSQL:\n{show(want)}\n  {engine}:\n{show(got)}")
    OUTCOMES[f"{entry.line}:{engine}"] = "differs" if problems else ("refused" if was_refused else "equal")
    if problems and engine in entry.differs:
        COUNTS[engine]["known difference"] += 1
        return
    if engine in entry.differs:
        pytest.fail(f"{engine} no longer differs for {entry.statements}: drop `{engine}` from its "
                    f"`-- @differs` line", pytrace=False)
    if problems:
        COUNTS[engine]["different"] += 1
        pytest.fail(f"{engine} differs from PostgreSQL for\n  {entry.statements}\n" + "\n".join(problems),
                    pytrace=False)
    COUNTS[engine]["refused" if was_refused else "equal"] += 1
    if was_refused and engine not in entry.refused:
        pytest.fail(f"{engine} refuses (0A000) {entry.statements}: mark the entry `-- @refused {engine}` "
                    f"if that is intended", pytrace=False)
    if not was_refused and engine in entry.refused:
        pytest.fail(f"{engine} now answers {entry.statements} as PostgreSQL does: drop `{engine}` from its "
                    f"`-- @refused` line", pytrace=False)


DOC_MARK = re.compile(r"^<!-- (corpus|refused)(?: (my|lite))?: (.*) -->$")


def doc_marks() -> list[tuple[str, tuple[str, ...], list[str]]]:
    """docs/sql-subset.md's `<!-- corpus[ engine]: a | b -->` (supported) and `<!-- refused[ engine]: … -->`
    lines: (what, engines, constructs)."""
    out = []
    for line in (ROOT / "docs" / "sql-subset.md").read_text().splitlines():
        m = DOC_MARK.match(line.strip())
        if m:
            engines = (m.group(2),) if m.group(2) else ENGINES
            out.append((m.group(1), engines, [x.strip() for x in m.group(3).split("|") if x.strip()]))
    return out


def test_subset_doc_agrees_with_the_corpus():
    """docs/sql-subset.md cannot drift from what the engines do: every construct it lists as supported
    (`<!-- corpus: … -->`) is in a corpus entry that answers as PostgreSQL on that engine (not marked
    `@refused` or `@differs` there), and every construct it lists as refused (`<!-- refused: … -->`) is in
    an entry marked `@refused` on that engine. test_corpus holds the marks to what the engines do, so the
    doc is checked against the engines through them."""
    marks = doc_marks()
    assert any(w == "corpus" for w, _, _ in marks) and any(w == "refused" for w, _, _ in marks), \
        "docs/sql-subset.md lists no `<!-- corpus: … -->` or `<!-- refused: … -->` constructs"
    problems = []
    for what, engines, constructs in marks:
        for x in constructs:
            having = [e for e in ENTRIES if x.lower() in " ".join(e.statements).lower()]
            for engine in engines:
                if what == "corpus":
                    ok = any(engine not in e.refused and engine not in e.differs for e in having)
                else:
                    ok = any(engine in e.refused for e in having)
                if not ok:
                    problems.append(f"{x!r} is listed as {'supported' if what == 'corpus' else 'refused'} on "
                                    f"{engine}, but no corpus entry shows it ({len(having)} entries name it)")
    assert not problems, "docs/sql-subset.md and the corpus disagree:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------------------------------- generator
class Gen:
    """Random expressions of a small typed grammar (int, numeric, text, bool, date)."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def pick(self, *xs):
        return self.r.choice(xs)

    def expr(self, ty: str, depth: int = 0) -> str:
        if depth >= 3 or self.r.random() < 0.3:
            return self.leaf(ty)
        return getattr(self, "g_" + ty)(depth + 1)

    def leaf(self, ty: str) -> str:
        r = self.r
        if r.random() < 0.05:
            return f"NULL::{ty if ty != 'int' else 'int4'}" if r.random() < 0.5 else "NULL"
        if ty == "int":
            return str(self.pick(0, 1, 2, 3, 7, -5, 10, 100, 2147483647, -2147483648, r.randint(-1000, 1000)))
        if ty == "numeric":
            return self.pick("1.5", "0.1", "2.25", "-3.75", "100.005", "0.0", "12345.6789", f"{r.randint(-99, 99)}.{r.randint(0, 99):02d}")
        if ty == "text":
            return self.pick("'abc'", "'ABC'", "''", "'a_b%c'", "'Hello World'", "'12'", "'x''y'", "'ß'")
        if ty == "bool":
            return self.pick("TRUE", "FALSE")
        if ty == "date":
            return self.pick("DATE '2024-01-01'", "DATE '2024-02-29'", "DATE '1999-12-31'", "'2023-06-15'::date")
        raise AssertionError(ty)

    def g_int(self, d):
        k = self.r.randrange(9)
        if k < 4:
            return f"({self.expr('int', d)} {self.pick('+', '-', '*', '/', '%')} {self.expr('int', d)})"
        if k == 4:
            return f"CASE WHEN {self.expr('bool', d)} THEN {self.expr('int', d)} ELSE {self.expr('int', d)} END"
        if k == 5:
            return f"COALESCE({self.expr('int', d)}, {self.expr('int', d)})"
        if k == 6:
            return f"abs({self.expr('int', d)})"
        if k == 7:
            return f"length({self.expr('text', d)})"
        return f"CAST({self.expr('numeric', d)} AS int)"

    def g_numeric(self, d):
        k = self.r.randrange(6)
        if k < 3:
            return f"({self.expr('numeric', d)} {self.pick('+', '-', '*')} {self.expr(self.pick('numeric', 'int'), d)})"
        if k == 3:
            return f"round({self.expr('numeric', d)}, {self.r.randint(0, 3)})"
        if k == 4:
            return f"CAST({self.expr('int', d)} AS numeric)"
        return f"COALESCE({self.expr('numeric', d)}, {self.expr('numeric', d)})"

    def g_text(self, d):
        k = self.r.randrange(6)
        if k == 0:
            return f"({self.expr('text', d)} || {self.expr('text', d)})"
        if k == 1:
            return f"{self.pick('lower', 'upper')}({self.expr('text', d)})"
        if k == 2:
            return f"replace({self.expr('text', d)}, {self.leaf('text')}, {self.leaf('text')})"
        if k == 3:
            return f"CAST({self.expr('int', d)} AS text)"
        if k == 4:
            return f"concat({self.expr('text', d)}, {self.expr('int', d)})"
        return f"CASE WHEN {self.expr('bool', d)} THEN {self.expr('text', d)} ELSE {self.expr('text', d)} END"

    def g_bool(self, d):
        k = self.r.randrange(7)
        if k == 0:
            t = self.pick("int", "numeric", "text", "date")
            return f"({self.expr(t, d)} {self.pick('=', '<>', '<', '<=', '>', '>=')} {self.expr(t, d)})"
        if k == 1:
            return f"({self.expr('bool', d)} {self.pick('AND', 'OR')} {self.expr('bool', d)})"
        if k == 2:
            return f"(NOT {self.expr('bool', d)})"
        if k == 3:
            return f"({self.expr(self.pick('int', 'text', 'bool'), d)} IS {self.pick('', 'NOT ')}NULL)"
        if k == 4:
            return f"({self.expr('text', d)} {self.pick('LIKE', 'NOT LIKE', 'ILIKE')} {self.pick(chr(39) + 'a%' + chr(39), chr(39) + '%b_' + chr(39), chr(39) + 'ABC' + chr(39))})"
        if k == 5:
            return f"({self.expr('int', d)} BETWEEN {self.expr('int', d)} AND {self.expr('int', d)})"
        return f"({self.expr('int', d)} IN ({self.expr('int', d)}, {self.expr('int', d)}))"

    def g_date(self, d):
        k = self.r.randrange(3)
        if k == 0:
            return f"({self.expr('date', d)} {self.pick('+', '-')} {self.r.randint(-40, 400)})"
        if k == 1:
            return f"CASE WHEN {self.expr('bool', d)} THEN {self.expr('date', d)} ELSE {self.expr('date', d)} END"
        return f"COALESCE({self.expr('date', d)}, {self.expr('date', d)})"


def generated(n: int, seed: int) -> list[str]:
    g = Gen(random.Random(seed))
    return [f"SELECT {g.expr(g.pick('int', 'numeric', 'text', 'bool', 'date'))}" for _ in range(n)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("engine", ENGINES)
def test_generated(pg, engine_conns, engine):
    n = int(os.environ.get("BINDPROXY_DIFF_N", "150"))
    seed = int(os.environ.get("BINDPROXY_DIFF_SEED", "9"))
    conn = engine_conns[engine]
    diffs, n_refused = [], 0
    for sql in generated(n, seed):
        want = run(pg, [sql], None, "simple")
        got = run(conn, [sql], None, "simple")
        if refused(got) and not refused(want):
            n_refused += 1
        elif not same(want, got):
            diffs.append(f"{sql}\n  PostgreSQL: {want}\n  {engine}: {got}")
    assert n_refused < n, f"{engine} refused every generated expression"
    assert not diffs, f"{len(diffs)} of {n} generated expressions differ on {engine} (seed {seed}):\n" + \
        "\n".join(diffs[:40])


def pytest_sessionfinish_report():
    path = os.environ.get("BINDPROXY_DIFF_REPORT")
    if path:
        Path(path).write_text(json.dumps({"entries": len(ENTRIES), "counts": COUNTS, "outcomes": OUTCOMES},
                                         indent=2))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    pytest_sessionfinish_report()
