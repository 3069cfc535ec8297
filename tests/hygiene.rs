//! Sessions and connections that must not leak, and input that must not take the daemon down:
//! clients that vanish or flood while their pipeline waits on another bind, COPY data pipelined
//! before the server asks for it, connections given back mid-transaction, SQL-level prepared
//! statements on several binds, temporary tables on pooled SQLite/MariaDB connections, and a
//! bounded fuzz run. Real PostgreSQL, MariaDB and SQLite; raw protocol bytes where a driver would
//! not misbehave on purpose.

mod common;

use std::time::{Duration, Instant};

use common::{sqlstate, Proxy};
use mysql_async::prelude::Queryable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TABLES: &str = "  users: users\n  \"user_*\": users\n";
const MARIADB: &str = "mysql://root@127.0.0.1:3306";
const DIRECT_APP: &str = "hygiene-direct";

// ---------------------------------------------------------------------------------------------
// A raw protocol client.

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

/// Describe of a portal ('P') or statement ('S').
fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend(cstr(name));
    msg(b'D', &b)
}

/// Bind of `stmt` to `portal`, no parameters, text results.
fn bind(portal: &str, stmt: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg(b'B', &b)
}

/// One backend message: its tag and body.
#[derive(Debug, Clone)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

impl Msg {
    /// The SQLSTATE of an ErrorResponse.
    fn code(&self) -> Option<String> {
        self.body
            .split(|&b| b == 0)
            .find_map(|f| f.strip_prefix(b"C"))
            .map(|c| String::from_utf8_lossy(c).into_owned())
    }
}

struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    async fn connect(port: u16, dbname: &str) -> Wire {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut body = 196_608u32.to_be_bytes().to_vec();
        // Direct connections to PostgreSQL are told apart from bindproxy's by their name.
        let app = if port == 5432 { DIRECT_APP } else { "" };
        for (k, v) in [
            ("user", "postgres"),
            ("database", dbname),
            ("application_name", app),
        ] {
            body.extend(cstr(k));
            body.extend(cstr(v));
        }
        body.push(0);
        let mut start = (body.len() as u32 + 4).to_be_bytes().to_vec();
        start.extend(body);
        let mut w = Wire { s, buf: Vec::new() };
        w.send(&start).await;
        let greeting = w.until_ready(1).await.expect("startup");
        assert!(greeting.iter().all(|m| m.tag != b'E'), "{greeting:?}");
        w
    }

    async fn proxy(p: &Proxy) -> Wire {
        Wire::connect(p.port, "app").await
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// The next message, or None if the server closed or nothing came within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Msg> {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let m = Msg {
                        tag: self.buf[0],
                        body: self.buf[5..len + 1].to_vec(),
                    };
                    self.buf.drain(..len + 1);
                    return Some(m);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout(left, self.s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Messages up to and including the `n`th ReadyForQuery; None on timeout or close.
    async fn until_ready(&mut self, n: usize) -> Option<Vec<Msg>> {
        let mut out = Vec::new();
        let mut seen = 0;
        while seen < n {
            let m = self.next(Duration::from_secs(10)).await?;
            seen += usize::from(m.tag == b'Z');
            out.push(m);
        }
        Some(out)
    }

    /// Messages until one with `tag` (included).
    async fn until_tag(&mut self, tag: u8) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let m = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no '{}' after {out:?}", tag as char));
            let done = m.tag == tag;
            out.push(m);
            if done {
                return out;
            }
        }
    }

    /// True when the server closes the connection within `wait` (reading and dropping whatever
    /// comes first); also returns the messages read.
    async fn closed_within(&mut self, wait: Duration) -> (bool, Vec<Msg>) {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return (false, got);
            };
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout(left, self.s.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return (false, got),
            }
        }
        while let Some(m) = self.next(Duration::ZERO).await {
            got.push(m);
        }
        (true, got)
    }
}

fn tags(ms: &[Msg]) -> String {
    ms.iter().map(|m| m.tag as char).collect()
}

/// The `state` of every connection to database `db`, except this test's own direct ones.
async fn backend_states(db: &str) -> Vec<(String, String)> {
    let admin = common::admin().await;
    admin
        .query(
            "SELECT coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2",
            &[&db, &DIRECT_APP],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Waits until every bindproxy connection to `db` is idle (back in its pool); returns the states
/// last seen.
async fn wait_pool_idle(db: &str, wait: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + wait;
    loop {
        let states = backend_states(db).await;
        if states.iter().all(|(s, _)| s == "idle") || Instant::now() > deadline {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A client that leaves while its pipeline waits on another bind.

#[tokio::test]
async fn client_leaving_mid_copy_while_held_gives_its_connection_back() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    // Six clients, more than the users bind's pool of 4: each starts a COPY on users, then sends
    // a query for main (held: users still owes the COPY's answers), then vanishes.
    for _ in 0..6 {
        let mut w = Wire::proxy(&p).await;
        w.send(&query("COPY users FROM STDIN")).await;
        w.until_tag(b'G').await;
        w.send(&query("SELECT 1")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(w);
    }
    // A bystander on another connection still gets a users connection (not 53300) ...
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap_or_else(|e| panic!("bystander: {e} ({})", sqlstate(&e)))
        .get(0);
    assert_eq!(n, 0);
    // ... and no backend is left in COPY.
    let states = wait_pool_idle(&p.dbs[1], Duration::from_secs(5)).await;
    assert!(
        states
            .iter()
            .all(|(s, q)| s == "idle" && !q.contains("COPY")),
        "{states:?}"
    );
}

#[tokio::test]
async fn describe_unknown_portal_then_query_bind_sync_answers_as_postgresql() {
    let p = Proxy::start(TABLES, "").await;
    let mut pipeline = describe(b'P', "nope");
    pipeline.extend(query("SELECT 1"));
    pipeline.extend(bind("", "no_such_statement"));
    pipeline.extend(sync());
    pipeline.extend(query("SELECT 2"));

    let mut direct = Wire::connect(5432, &p.dbs[0]).await;
    direct.send(&pipeline).await;
    let want = direct.until_ready(2).await.expect("PostgreSQL answers");

    let mut w = Wire::proxy(&p).await;
    w.send(&pipeline).await;
    let got = w
        .until_ready(2)
        .await
        .expect("bindproxy must answer, not hang");
    assert_eq!(tags(&got), tags(&want), "{got:?}");
    assert_eq!(got[0].code().as_deref(), Some("34000"));
}

/// Holds a message back (main waits behind a long statement on users), then sends `first` and
/// repeats `chunk` for 24 MiB, more than a held session may buffer (16 MiB): the client must be
/// cut off, the bystander `c` unaffected and the users connection not left running.
async fn flood_while_held(first: &[u8], chunk: &[u8]) {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    let mut w = Wire::proxy(&p).await;
    w.send(&query("SELECT pg_sleep(30), count(*) FROM users"))
        .await;
    w.send(&query("SELECT 1")).await; // main: held behind users
    let started = Instant::now();
    let flood = async {
        if w.s.write_all(first).await.is_err() {
            return;
        }
        let mut sent = 0;
        while sent < 24 << 20 {
            if w.s.write_all(chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
    };
    // A session that stopped reading its client would block this write for good.
    tokio::time::timeout(Duration::from_secs(20), flood)
        .await
        .expect("bindproxy stopped reading the client while its message was held");
    let (closed, got) = w.closed_within(Duration::from_secs(10)).await;
    assert!(closed, "the flooding client must be disconnected");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cut off while its statement still ran"
    );
    // The FATAL may be lost to a reset (its unread input), but if it came it says why.
    if let Some(e) = got.iter().find(|m| m.tag == b'E') {
        assert_eq!(e.code().as_deref(), Some("54000"), "{got:?}");
    }
    // The bystander works, and the statement of the flooding client does not run on.
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let states = wait_pool_idle(&p.dbs[1], Duration::from_secs(5)).await;
    assert!(
        states.iter().all(|(_, q)| !q.contains("pg_sleep")),
        "{states:?}"
    );
}

#[tokio::test]
async fn client_flooding_while_held_is_cut_off_and_others_carry_on() {
    let queries: Vec<u8> = std::iter::repeat_n(query("SELECT 1"), 4096)
        .flatten()
        .collect();
    flood_while_held(b"", &queries).await;
}

#[tokio::test]
async fn client_declaring_a_huge_message_while_held_is_cut_off() {
    // A header announcing 2 GiB (more than max_message_bytes) must not stretch the bound.
    let mut header = vec![b'Q'];
    header.extend_from_slice(&0x7fff_fff0u32.to_be_bytes());
    flood_while_held(&header, &[b'x'; 1 << 16]).await;
}

#[tokio::test]
async fn deep_pipeline_is_answered_in_order_with_bounded_queue() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    let w = Wire::proxy(&p).await;
    // 100 000 queries in one go, written while the answers are read (a client that only writes
    // would deadlock against any server). The first one, on users, holds the rest (for main)
    // back for a second, so that they arrive in the session's buffer all at once.
    const N: usize = 100_000;
    let mut bytes = Vec::new();
    for i in 0..N {
        let sql = if i == 0 {
            // Held for a second on users: meanwhile the rest piles up in the session's buffer.
            "SELECT 0 FROM (SELECT count(*) FROM users, pg_sleep(1)) s".to_string()
        } else {
            format!("SELECT {i}")
        };
        bytes.extend(query(&sql));
    }
    let (mut rd, mut wr) = w.s.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&bytes).await.map(|_| wr) });
    let started = Instant::now();
    let mut buf = Vec::new();
    let (mut ready, mut rows) = (0usize, 0usize);
    let mut chunk = vec![0u8; 1 << 16];
    while ready < N {
        let n = tokio::time::timeout(Duration::from_secs(20), rd.read(&mut chunk))
            .await
            .expect("answers stopped coming")
            .unwrap();
        assert!(n > 0, "closed after {ready} answers");
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while buf.len() >= at + 5 {
            let len =
                u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
            if buf.len() < at + 1 + len {
                break;
            }
            match buf[at] {
                b'D' => {
                    // One column: its text is the query's number, answers in request order.
                    let value = std::str::from_utf8(&buf[at + 11..at + 1 + len]).unwrap();
                    assert_eq!(value, ready.to_string(), "answer out of order");
                    rows += 1;
                }
                b'Z' => ready += 1,
                b'E' => panic!(
                    "error: {:?}",
                    String::from_utf8_lossy(&buf[at..at + 1 + len])
                ),
                _ => {}
            }
            at += 1 + len;
        }
        buf.drain(..at);
    }
    assert_eq!(rows, N);
    writer.await.unwrap().expect("the whole pipeline was read");
    eprintln!("{N} pipelined queries answered in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}

// ---------------------------------------------------------------------------------------------
// 2. COPY data pipelined before CopyInResponse.

#[tokio::test]
async fn copy_data_pipelined_before_copy_in_response() {
    let p = Proxy::start(&format!("{TABLES}  \"mem_*\": mem\n"), "  mem: sqlite://\n").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE mem_t (id int)")
        .await
        .unwrap();

    let copy = |table: &str| {
        let mut m = query(&format!("COPY {table} FROM STDIN"));
        m.extend(msg(b'd', b"1\n"));
        m.extend(msg(b'd', b"2\n"));
        m.extend(msg(b'c', b""));
        m.extend(query(&format!("SELECT count(*) FROM {table}")));
        m
    };
    // PostgreSQL bind: the whole pipeline in one write, as PostgreSQL accepts it.
    let mut w = Wire::proxy(&p).await;
    w.send(&copy("users")).await;
    let got = w
        .until_ready(2)
        .await
        .expect("COPY pipelined must not hang");
    assert!(
        got.iter().any(|m| m.tag == b'C' && m.body == b"COPY 2\0"),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.tag == b'D'), "{got:?}");
    assert_eq!(p.count_on(1, "users").await, 2);

    // A COPY that fails before CopyInResponse: the data behind it is ignored, as PostgreSQL does.
    let mut direct = Wire::connect(5432, &p.dbs[1]).await;
    direct.send(&copy("user_missing")).await;
    let want = direct.until_ready(2).await.unwrap();
    w.send(&copy("user_missing")).await;
    let got = w.until_ready(2).await.expect("failed COPY must not hang");
    assert_eq!(tags(&got), tags(&want), "{got:?}");

    // Extended protocol: Parse/Bind/Execute of the COPY, its data and Sync in one write.
    let mut ext = msg(
        b'P',
        &[cstr(""), cstr("COPY users FROM STDIN"), vec![0, 0]].concat(),
    );
    ext.extend(bind("", ""));
    ext.extend(msg(b'E', &[cstr(""), vec![0, 0, 0, 0]].concat()));
    ext.extend(msg(b'd', b"3\n"));
    ext.extend(msg(b'c', b""));
    ext.extend(sync());
    let mut direct = Wire::connect(5432, &p.dbs[1]).await;
    direct.send(&ext).await;
    let want = direct.until_ready(1).await.unwrap();
    w.send(&ext).await;
    let got = w
        .until_ready(1)
        .await
        .expect("extended COPY pipelined must not hang");
    assert_eq!(tags(&got), tags(&want), "{got:?}");
    assert!(
        got.iter().any(|m| m.tag == b'C' && m.body == b"COPY 1\0"),
        "{got:?}"
    );
    // (the direct run added one row too)
    assert_eq!(p.count_on(1, "users").await, 4);

    // SQLite bind: a clear answer, never a hang, and the session goes on.
    w.send(&copy("mem_t")).await;
    let got = w
        .until_ready(2)
        .await
        .expect("COPY on SQLite must not hang");
    assert!(
        got.iter().any(|m| m.tag == b'E') || got.iter().any(|m| m.body == b"COPY 2\0"),
        "{got:?}"
    );
    w.send(&query("SELECT 1")).await;
    let got = w.until_ready(1).await.unwrap();
    assert!(got.iter().any(|m| m.tag == b'D'), "{got:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. A connection given back mid-transaction is cleaned and reused.

#[tokio::test]
async fn connection_returned_mid_transaction_is_reused_clean() {
    let p = Proxy::start(TABLES, "").await;
    let setup = p.client().await;
    setup
        .batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    drop(setup);
    wait_pool_idle(&p.dbs[1], Duration::from_secs(5)).await;

    let c = p.client().await;
    c.batch_execute("CREATE TEMP TABLE user_tmp (id int)")
        .await
        .unwrap();
    c.batch_execute("PREPARE user_p AS SELECT count(*) FROM users")
        .await
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO users VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("SET work_mem = '7MB'").await.unwrap();
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(c); // mid-transaction

    // It goes back to the pool, cleaned (not closed). (The setup client's connection may still be
    // there too, when it was not back in the pool yet as `c` checked out: look at `pid` only.)
    let deadline = Instant::now() + Duration::from_secs(5);
    let admin = common::admin().await;
    loop {
        let states: Vec<(String, String)> = admin
            .query(
                "SELECT coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if states.len() == 1 && states[0].0 == "idle" && states[0].1 == "DISCARD ALL" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connection not given back clean: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let c = p.client().await;
    c.batch_execute("BEGIN").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the abandoned transaction was rolled back");
    let row = c
        .query_one(
            "SELECT pg_backend_pid(), current_setting('work_mem'), \
             (SELECT count(*) FROM pg_prepared_statements WHERE from_sql), \
             (SELECT count(*) FROM pg_class WHERE relname = 'user_tmp')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), pid, "the same connection is reused");
    assert_eq!(row.get::<_, String>(1), "4MB");
    assert_eq!(row.get::<_, i64>(2), 0);
    assert_eq!(row.get::<_, i64>(3), 0);
    c.batch_execute("COMMIT").await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. Temporary tables and transactions on pooled SQLite and MariaDB connections.

#[tokio::test]
async fn sqlite_connection_is_reset_before_reuse() {
    let p = Proxy::start(
        &format!("{TABLES}  \"mem_*\": mem\n"),
        "  mem:\n    url: sqlite://\n    pool_size: 1\n",
    )
    .await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE mem_t (id int)")
        .await
        .unwrap();
    c.batch_execute("CREATE TEMP TABLE mem_tmp (id int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO mem_tmp VALUES (1)")
        .await
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO mem_t VALUES (1)")
        .await
        .unwrap();
    drop(c); // mid-transaction, with a temp table

    // pool_size 1: the next client gets the same connection once it is back.
    let c = p.client().await;
    let e = c
        .query_one("SELECT count(*) FROM mem_tmp", &[])
        .await
        .expect_err("the temp table of the last client must be gone");
    assert_eq!(sqlstate(&e), "42P01", "{e}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM mem_t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the abandoned transaction was rolled back");
    // Not locked by the abandoned transaction either.
    c.batch_execute("INSERT INTO mem_t VALUES (2)")
        .await
        .unwrap();
    c.batch_execute("CREATE TEMP TABLE mem_tmp (id int)")
        .await
        .unwrap();
}

#[tokio::test]
async fn mariadb_connection_does_not_leak_temp_tables() {
    let db = format!("bph_{}", std::process::id());
    let mut admin = mysql_async::Conn::from_url(MARIADB)
        .await
        .expect("MariaDB on 127.0.0.1:3306 (run ./scripts/test.sh)");
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let p = Proxy::start(
        &format!("{TABLES}  \"my_*\": my\n"),
        &format!("  my:\n    url: {MARIADB}/{db}\n    pool_size: 1\n"),
    )
    .await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE my_t (id int)").await.unwrap();
    c.batch_execute("CREATE TEMP TABLE my_tmp (id int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO my_tmp VALUES (1)")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM my_tmp", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the temp table works in its own session");
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO my_t VALUES (1)")
        .await
        .unwrap();
    drop(c); // mid-transaction, with a temp table
    tokio::time::sleep(Duration::from_millis(300)).await;
    // pool_size 1: the same MariaDB connection. Its temp table is gone (42P07 if it leaked),
    // and the abandoned insert was rolled back.
    let c = p.client().await;
    c.batch_execute("CREATE TEMP TABLE my_tmp (id int)")
        .await
        .unwrap_or_else(|e| panic!("the last client's temp table leaked: {e}"));
    let n: i64 = c
        .query_one("SELECT count(*) FROM my_t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    drop(c);
    // COPY data pipelined before CopyInResponse on a MariaDB bind: a clear answer, never a hang.
    let mut w = Wire::proxy(&p).await;
    let mut pipeline = query("COPY my_t FROM STDIN");
    pipeline.extend(msg(b'd', b"1\n"));
    pipeline.extend(msg(b'c', b""));
    pipeline.extend(query("SELECT 1"));
    w.send(&pipeline).await;
    let got = w
        .until_ready(2)
        .await
        .expect("COPY on MariaDB must not hang");
    assert!(
        got.iter().any(|m| m.tag == b'E') || got.iter().any(|m| m.body == b"COPY 1\0"),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.tag == b'D'), "{got:?}");
    drop(w);
    drop(p);
    let _ = admin
        .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await;
}

// ---------------------------------------------------------------------------------------------
// 5. SQL-level prepared statements follow their bind.

#[tokio::test]
async fn deallocate_and_execute_go_to_the_bind_that_prepared() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO users VALUES (1), (2)")
        .await
        .unwrap();
    c.batch_execute("PREPARE q AS SELECT count(*) FROM users")
        .await
        .unwrap();
    c.batch_execute("PREPARE m AS SELECT 1").await.unwrap(); // main
    let rows = c.simple_query("EXECUTE q").await.unwrap();
    let n = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(n.as_deref(), Some("2"));
    c.batch_execute("DEALLOCATE q")
        .await
        .unwrap_or_else(|e| panic!("DEALLOCATE q: {e}"));
    c.batch_execute("PREPARE q AS SELECT count(*) FROM users")
        .await
        .unwrap_or_else(|e| panic!("re-PREPARE q: {e}"));
    // Inside a transaction on main, the users statement runs on users, which joins the
    // transaction.
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let rows = c.simple_query("EXECUTE q").await.unwrap();
    let n = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(n.as_deref(), Some("2"));
    c.batch_execute("ROLLBACK").await.unwrap();
    // The same through the extended protocol (Parse/Bind/Execute of EXECUTE and DEALLOCATE).
    let rows = c.query("EXECUTE q", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    c.execute("DEALLOCATE q", &[])
        .await
        .unwrap_or_else(|e| panic!("extended DEALLOCATE q: {e}"));
    c.batch_execute("PREPARE q AS SELECT count(*) FROM users")
        .await
        .unwrap_or_else(|e| panic!("re-PREPARE q after extended DEALLOCATE: {e}"));
    // DEALLOCATE ALL reaches every bind.
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    for name in ["q", "m"] {
        let e = c
            .batch_execute(&format!("EXECUTE {name}"))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "26000", "{name}: {e}");
    }
    c.batch_execute("PREPARE q AS SELECT count(*) FROM users")
        .await
        .unwrap();
    c.batch_execute("PREPARE m AS SELECT 1").await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6. Client-supplied names cannot forge log lines: see src/frontend/logsafe.rs's unit test and
//    tests/python/test_bad_input.py (the daemon's real log).

// ---------------------------------------------------------------------------------------------
// 7. A bounded fuzz run.

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const SQLS: &[&str] = &[
    "SELECT 1",
    "SELECT count(*) FROM users",
    "SELECT count(*) FROM orders",
    "SELECT count(*) FROM mem_t",
    "INSERT INTO users VALUES (1)",
    "INSERT INTO mem_t VALUES (1)",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "COPY users FROM STDIN",
    "COPY orders TO STDOUT",
    "SELECT pg_sleep(0.01) FROM users",
    "PREPARE f AS SELECT 1",
    "EXECUTE f",
    "DEALLOCATE ALL",
    "SET work_mem = '5MB'",
    "SELECT * FROM users JOIN orders ON true",
];

/// One frontend message: valid, corrupted, truncated or garbage.
fn fuzz_message(r: &mut Rng) -> Vec<u8> {
    let sql = *r.pick(SQLS);
    let name = *r.pick(&["", "s1", "s2", "nope"]);
    let portal = *r.pick(&["", "p1"]);
    let valid = match r.below(9) {
        0 => query(sql),
        1 => {
            let mut b = cstr(name);
            b.extend(cstr(sql));
            b.extend_from_slice(&[0, 0]);
            msg(b'P', &b)
        }
        2 => bind(portal, name),
        3 => describe(*r.pick(b"SP"), name),
        4 => {
            let mut b = cstr(portal);
            b.extend_from_slice(&(r.below(3) as u32).to_be_bytes());
            msg(b'E', &b)
        }
        5 => sync(),
        6 => msg(b'H', b""),
        7 => msg(b'd', b"1\n"),
        _ => msg(*r.pick(b"cfC"), b"S\0"),
    };
    match r.below(10) {
        // Valid.
        0..=4 => valid,
        // A corrupted byte in the body.
        5 => {
            let mut m = valid;
            if m.len() > 5 {
                let i = 5 + r.below(m.len() as u64 - 5) as usize;
                m[i] = r.next() as u8;
            }
            m
        }
        // A wrong declared length.
        6 => {
            let mut m = valid;
            let len = match r.below(3) {
                0 => r.below(8) as u32,
                1 => u32::MAX - r.below(16) as u32,
                _ => r.below(1 << 20) as u32,
            };
            m[1..5].copy_from_slice(&len.to_be_bytes());
            m
        }
        // Truncated.
        7 => {
            let mut m = valid;
            m.truncate(r.below(m.len() as u64) as usize);
            m
        }
        // A random tag.
        8 => {
            let mut m = valid;
            m[0] = r.next() as u8;
            m
        }
        // Garbage.
        _ => (0..r.below(64)).map(|_| r.next() as u8).collect(),
    }
}

#[tokio::test]
async fn bounded_fuzz_leaves_daemon_alive_and_pools_idle() {
    let started = Instant::now();
    let p = Proxy::start(&format!("{TABLES}  \"mem_*\": mem\n"), "  mem: sqlite://\n").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE orders (id int)")
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE mem_t (id int)")
        .await
        .unwrap();

    const CONNECTIONS: u64 = 8;
    const MESSAGES: usize = 600;
    let runs = (0..CONNECTIONS).map(|k| {
        let port = p.port;
        tokio::spawn(async move {
            let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ (k + 1).wrapping_mul(0x1234_5678_9abc_def1));
            let mut sent = 0;
            while sent < MESSAGES {
                let Ok(mut w) =
                    tokio::time::timeout(Duration::from_secs(5), Wire::connect(port, "app")).await
                else {
                    panic!("bindproxy stopped accepting clients");
                };
                // A burst of messages in one write, then read what comes for a moment; the
                // daemon may end this session (garbage): then start a new one.
                let burst = 1 + r.below(40) as usize;
                let mut bytes = Vec::new();
                for _ in 0..burst {
                    bytes.extend(fuzz_message(&mut r));
                }
                sent += burst;
                if w.s.write_all(&bytes).await.is_err() {
                    continue;
                }
                let _ = w.closed_within(Duration::from_millis(r.below(150))).await;
                if r.below(2) == 0 {
                    drop(w); // vanish mid-whatever
                }
            }
            sent
        })
    });
    let mut total = 0;
    for run in futures::future::join_all(runs).await {
        total += run.expect("fuzz task");
    }
    assert!(total >= (CONNECTIONS as usize) * MESSAGES);

    // The daemon is alive, a control client works on every bind ...
    let control = p.client().await;
    for sql in [
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM orders",
        "SELECT count(*) FROM mem_t",
    ] {
        control
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(control);
    drop(c);
    // ... and every PostgreSQL connection of bindproxy is back idle in its pool.
    for db in &p.dbs {
        let states = wait_pool_idle(db, Duration::from_secs(10)).await;
        assert!(states.iter().all(|(s, _)| s == "idle"), "{db}: {states:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "fuzz run took {:?}",
        started.elapsed()
    );
}
