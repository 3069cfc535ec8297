"""Issue 7: a CancelRequest also cancels a statement running on a MySQL/MariaDB or SQLite bind.

One proxy with the mixed config (PostgreSQL `main`, MariaDB `logs`: tables `log_*`, a SQLite file `files`:
`file_*`). A long statement on a translated bind is cancelled from another thread with the client's own
`cancel()` (psycopg 3: extended protocol, psycopg2: simple Query): the client gets 57014 within ~2 s, its
session and the bind's connection stay usable, inside BEGIN the transaction fails (25P02) until ROLLBACK,
and neither a cancel nor a stale one (no statement running) touches another client's statement.

Long statements: on MariaDB a three-way cross join of a generated table (the translator has no `sleep`);
on SQLite a recursive CTE counting to 10^8.

MariaDB missing is a failure (the `mariadb` fixture), never a skip.
"""

from __future__ import annotations

import threading
import time

import psycopg
import psycopg2
import pytest
from psycopg import errors as pgerr

from conftest import mixed_config

# bind -> (a statement of many seconds, one of about a second)
LONG = {
    "logs": (
        "SELECT count(*) FROM log_cbig a, log_cbig b, log_cbig c WHERE a.n + b.n + c.n = -1",
        "SELECT count(*) FROM log_cmid a, log_cmid b, log_cmid c WHERE a.n + b.n + c.n = -1",
    ),
    "files": (
        # string building, not arithmetic: a CTE column's type is not known to the translator
        "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || 'x' FROM r WHERE length(s) < 2000000) "
        "SELECT count(*) FROM r",
        "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || 'x' FROM r WHERE length(s) < 40000) "
        "SELECT count(*) FROM r",
    ),
}
TABLE = {"logs": "log_cbig", "files": "file_cbig"}
BINDS = list(LONG)


@pytest.fixture(scope="module")
def cx(backends, mariadb, start_proxy):
    p = start_proxy(mixed_config(backends), "cancel")
    with p.connect() as c:
        # 500 rows: the cross join of three takes ~10 s on MariaDB; 250: about one second
        for name, rows in (("log_cbig", 500), ("log_cmid", 250), ("file_cbig", 10)):
            c.execute(f"DROP TABLE IF EXISTS {name}")
            c.execute(f"CREATE TABLE {name} (n integer)")
            values = ", ".join(f"({i})" for i in range(rows))
            c.execute(f"INSERT INTO {name} VALUES {values}")
    return p


@pytest.fixture
def px(cx):
    cx.ensure_running()
    return cx


def cancelled(conn, sql: str, after: float = 0.5) -> float:
    """Runs `sql` on `conn`, cancelled `after` seconds in; returns the seconds from the cancel to the error."""
    sent = []

    def cancel():
        sent.append(time.monotonic())
        conn.cancel()

    threading.Timer(after, cancel).start()
    t0 = time.monotonic()
    if isinstance(conn, psycopg.Connection):
        with pytest.raises(pgerr.QueryCanceled) as ei:
            conn.execute(sql)
        assert ei.value.sqlstate == "57014"
        assert ei.value.diag.message_primary == "canceling statement due to user request"
    else:
        with pytest.raises(psycopg2.errors.QueryCanceled) as ei2:
            conn.cursor().execute(sql)
        assert ei2.value.pgcode == "57014"
    done = time.monotonic()
    assert sent, f"the statement ended after {done - t0:.1f} s, before the cancel"
    return done - sent[0]


@pytest.mark.parametrize("bind", BINDS)
def test_cancel_extended(px, bind):
    with px.connect() as c:
        assert cancelled(c, LONG[bind][0]) < 2
        # the session and the bind's connection go on
        assert c.execute(f"SELECT count(*) FROM {TABLE[bind]}").fetchone()[0] > 0
        assert c.execute("SELECT 1").fetchone() == (1,)
        assert cancelled(c, LONG[bind][0]) < 2
        assert c.execute(LONG[bind][1]).fetchone()[0] in (0, 40_000)


@pytest.mark.parametrize("bind", BINDS)
def test_cancel_simple_query(px, bind):
    c = px.connect2()
    try:
        c.autocommit = True
        assert cancelled(c, LONG[bind][0]) < 2
        cur = c.cursor()
        cur.execute(f"SELECT count(*) FROM {TABLE[bind]}")
        assert cur.fetchone()[0] > 0
    finally:
        c.close()


@pytest.mark.parametrize("bind", BINDS)
def test_cancel_inside_transaction(px, bind):
    with px.connect(autocommit=False) as c:
        c.execute(f"INSERT INTO {TABLE[bind]} VALUES (-7)")
        assert cancelled(c, LONG[bind][0]) < 2
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(pgerr.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        # the insert went with the transaction
        assert c.execute(f"SELECT count(*) FROM {TABLE[bind]} WHERE n = -7").fetchone() == (0,)
        c.commit()


@pytest.mark.parametrize("bind", BINDS)
def test_cancel_does_not_reach_another_client(px, bind):
    """A's statement is cancelled while B's runs on the same bind: B's completes."""
    with px.connect() as a, px.connect() as b:
        results, errors = [], []

        def run_b():
            try:
                results.append(b.execute(LONG[bind][1]).fetchone()[0])
            except psycopg.Error as e:  # noqa: PERF203
                errors.append(e)

        t = threading.Thread(target=run_b)
        t.start()
        assert cancelled(a, LONG[bind][0], after=0.3) < 2
        t.join(timeout=60)
        assert errors == []
        assert results and results[0] in (0, 40_000)


@pytest.mark.parametrize("bind", BINDS)
def test_stale_cancel_touches_nothing(px, bind):
    """A cancel for a client with no statement running (A idle, or A's statement over) does nothing,
    neither to the next statement of A nor to another client on the same bind."""
    with px.connect() as a, px.connect() as b:
        # A has used the bind, and its statement is over
        assert a.execute(f"SELECT count(*) FROM {TABLE[bind]}").fetchone()[0] > 0
        results, errors = [], []

        def run(conn):
            try:
                results.append(conn.execute(LONG[bind][1]).fetchone()[0])
            except psycopg.Error as e:  # noqa: PERF203
                errors.append(e)

        t = threading.Thread(target=run, args=(b,))
        t.start()
        time.sleep(0.3)
        a.cancel()  # a is idle: nothing of b's may be cancelled
        t.join(timeout=60)
        a.cancel()
        time.sleep(0.2)
        run(a)  # nor a's own next statement
        assert errors == []
        assert len(results) == 2


def test_cancel_after_release_does_not_hit_pooled_connection(px):
    """A client leaves; its pooled MySQL/SQLite connections go to the next client, whom a late cancel
    with the old key must not reach."""
    a = px.connect()
    assert a.execute("SELECT count(*) FROM log_cmid").fetchone()[0] > 0
    assert a.execute("SELECT count(*) FROM file_cbig").fetchone()[0] > 0
    a_cancel = a.pgconn.get_cancel()
    a.close()
    time.sleep(0.2)
    with px.connect() as b:
        for bind in BINDS:
            errors = []

            def later():
                time.sleep(0.3)
                try:
                    a_cancel.cancel()
                except psycopg.Error as e:
                    errors.append(e)

            t = threading.Thread(target=later)
            t.start()
            assert b.execute(LONG[bind][1]).fetchone()[0] in (0, 40_000)
            t.join()


@pytest.mark.parametrize("bind", BINDS)
def test_cancel_in_a_query_across_binds(px, bind):
    """A multi-statement Query whose pieces go to PostgreSQL and to the bind (run piece by piece)."""
    c = px.connect2()
    try:
        c.autocommit = True
        assert cancelled(c, f"SELECT count(*) FROM users; {LONG[bind][0]}") < 2
        cur = c.cursor()
        cur.execute(f"SELECT count(*) FROM {TABLE[bind]}")
        assert cur.fetchone()[0] > 0
    finally:
        c.close()
