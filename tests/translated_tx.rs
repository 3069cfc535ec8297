//! Transaction control of MySQL/MariaDB and SQLite binds as the session's transaction logic drives
//! it (`TranslatedConn::begin/prepare/commit_prepared/…`, issue 7: transactions spanning binds), and
//! the client's own COMMIT/ROLLBACK/SAVEPOINT text inside an XA branch. Real engines: MariaDB at
//! 127.0.0.1:3306 (root, empty password; a missing server FAILS these tests), SQLite files. Each test
//! has its own scratch database `bp_txtest_<pid>_<n>` and its own XA ids `bptx<pid>_<n>`.
//!
//! `cargo test --release --test translated_tx -- --ignored --nocapture xa_cost` measures XA against
//! plain BEGIN/COMMIT.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bindproxy::backend::translated::session::{Committed, Prepared};
use bindproxy::backend::translated::{TranslatedBind, TranslatedConn};
use bindproxy::config::{BindConfig, BindUrl};
use bindproxy::error::ProxyError;
use bindproxy::protocol::messages::{Bind, Parse};
use bytes::{BufMut, BytesMut};
use mysql_async::prelude::Queryable;

const MARIADB: &str = "mysql://root@127.0.0.1:3306";
static SEQ: AtomicUsize = AtomicUsize::new(0);

fn seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

fn cfg(name: &str, url: BindUrl, pool: usize) -> BindConfig {
    BindConfig {
        name: name.into(),
        url,
        pool_size: pool,
        checkout_timeout: Duration::from_millis(2000),
        connect_timeout: Duration::from_millis(3000),
    }
}

/// A fresh XA id, unique to this test process.
fn xid() -> String {
    format!("bptx{}_{}", std::process::id(), seq())
}

/// A fresh MariaDB database with a table `t (a int primary key)`, dropped by `drop()`.
struct MyDb {
    name: String,
    bind: Arc<TranslatedBind>,
}

impl MyDb {
    async fn new() -> MyDb {
        let name = format!("bp_txtest_{}_{}", std::process::id(), seq());
        let mut c = mysql_async::Conn::from_url(MARIADB).await.expect(
            "MariaDB must be running on 127.0.0.1:3306 (root, empty password): run scripts/test.sh",
        );
        c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        c.query_drop(format!(
            "CREATE TABLE {name}.t (a INT PRIMARY KEY) ENGINE=InnoDB"
        ))
        .await
        .unwrap();
        c.disconnect().await.unwrap();
        let url = format!("{MARIADB}/{name}");
        let bind = TranslatedBind::new(&cfg(
            "maria",
            BindUrl::MySql {
                url: url.clone(),
                display: url,
                tls: Default::default(),
            },
            4,
        ))
        .unwrap();
        MyDb { name, bind }
    }

    async fn direct(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(format!("{MARIADB}/{}", self.name))
            .await
            .unwrap()
    }

    /// The committed rows of `t`, from another connection.
    async fn rows(&self) -> Vec<i64> {
        let mut c = self.direct().await;
        let v: Vec<i64> = c.query("SELECT a FROM t ORDER BY a").await.unwrap();
        c.disconnect().await.unwrap();
        v
    }

    async fn table_exists(&self, table: &str) -> bool {
        let mut c = self.direct().await;
        let n: Option<i64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table,),
            )
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        n == Some(1)
    }

    async fn drop(self) {
        let mut c = mysql_async::Conn::from_url(MARIADB).await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {}", self.name))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    }
}

/// The XA ids `XA RECOVER` lists (prepared branches), seen from a separate connection.
async fn xa_recover() -> Vec<String> {
    let mut c = mysql_async::Conn::from_url(MARIADB).await.unwrap();
    let rows: Vec<mysql_async::Row> = c.query("XA RECOVER").await.unwrap();
    c.disconnect().await.unwrap();
    rows.into_iter()
        .map(|r| {
            let data: Vec<u8> = r.get(3).unwrap();
            String::from_utf8(data).unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Complete(String),
    /// NoticeResponse: severity, SQLSTATE, message.
    Notice(String, String, String),
    Other(u8),
}

fn decode(out: &[u8]) -> Vec<Msg> {
    let mut msgs = vec![];
    let mut b = out;
    while !b.is_empty() {
        let tag = b[0];
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let body = &b[5..1 + len];
        b = &b[1 + len..];
        msgs.push(match tag {
            b'C' => Msg::Complete(String::from_utf8(body[..body.len() - 1].to_vec()).unwrap()),
            b'N' => {
                let (mut sev, mut code, mut msg) = (String::new(), String::new(), String::new());
                let mut p = body;
                while let Some((&f, rest)) = p.split_first() {
                    if f == 0 {
                        break;
                    }
                    let end = rest.iter().position(|x| *x == 0).unwrap();
                    let v = String::from_utf8(rest[..end].to_vec()).unwrap();
                    match f {
                        b'V' => sev = v,
                        b'C' => code = v,
                        b'M' => msg = v,
                        _ => {}
                    }
                    p = &rest[end + 1..];
                }
                Msg::Notice(sev, code, msg)
            }
            other => Msg::Other(other),
        });
    }
    msgs
}

async fn q(c: &mut TranslatedConn, sql: &str) -> Result<Vec<Msg>, ProxyError> {
    let mut out = BytesMut::new();
    c.query(sql, &mut out).await?;
    Ok(decode(&out))
}

async fn ok(c: &mut TranslatedConn, sql: &str) -> Vec<Msg> {
    match q(c, sql).await {
        Ok(m) => m,
        Err(e) => panic!("{sql}: {e} ({}) {e:?}", e.sqlstate()),
    }
}

async fn err(c: &mut TranslatedConn, sql: &str) -> ProxyError {
    match q(c, sql).await {
        Ok(m) => panic!("{sql}: expected an error, got {m:?}"),
        Err(e) => e,
    }
}

fn tags(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Complete(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// Parse (unnamed) + Bind + Execute of a statement without parameters; no Sync.
async fn ext(c: &mut TranslatedConn, sql: &str) -> Result<Vec<Msg>, ProxyError> {
    let mut out = BytesMut::new();
    let mut pb = BytesMut::new();
    pb.put_u8(0);
    pb.put_slice(sql.as_bytes());
    pb.put_u8(0);
    pb.put_i16(0);
    c.parse(&Parse::decode(&pb).unwrap(), &mut out).await?;
    let mut bb = BytesMut::new();
    bb.put_u8(0);
    bb.put_u8(0);
    bb.put_i16(0);
    bb.put_i16(0);
    bb.put_i16(0);
    c.bind(&Bind::decode(&bb).unwrap(), &mut out).await?;
    c.execute("", 0, &mut out).await?;
    Ok(decode(&out))
}

// ---------------------------------------------------------------------------------------------
// MariaDB: two-phase commit through XA

#[tokio::test]
async fn xa_lazy_begin_prepare_commit_prepared() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    assert!(c.can_prepare());
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    assert_eq!(c.status(), b'T');
    // Lazy: nothing reached the server yet (mysql_ddl_before_work_runs_outside_with_notice shows
    // it: DDL still runs, which an active XA branch would refuse).
    let other = db.direct().await;
    assert_eq!(
        tags(&ok(&mut c, "INSERT INTO t VALUES (1)").await),
        vec!["INSERT 0 1"]
    );
    assert_eq!(tags(&ok(&mut c, "SELECT a FROM t").await), vec!["SELECT 1"]);
    assert!(!xa_recover().await.contains(&id));
    assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
    assert!(xa_recover().await.contains(&id), "prepared branch listed");
    assert_eq!(
        db.rows().await,
        Vec::<i64>::new(),
        "not visible before phase 2"
    );
    c.commit_prepared().await.unwrap();
    assert_eq!(c.status(), b'I');
    assert!(!xa_recover().await.contains(&id), "gone after XA COMMIT");
    assert_eq!(db.rows().await, vec![1]);
    // The connection is reusable: another branch, and plain autocommit statements.
    let id2 = xid();
    c.begin("BEGIN", Some(&id2)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
    c.commit_prepared().await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    assert_eq!(db.rows().await, vec![1, 2, 3]);
    other.disconnect().await.unwrap();
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_rollback_prepared() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("START TRANSACTION", Some(&id)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
    assert!(xa_recover().await.contains(&id));
    // Nothing else may run on a prepared branch.
    assert_eq!(err(&mut c, "SELECT a FROM t").await.sqlstate(), "25000");
    assert_eq!(c.commit().await.unwrap_err().sqlstate(), "25000");
    c.rollback_prepared().await.unwrap();
    assert_eq!(c.status(), b'I');
    assert!(!xa_recover().await.contains(&id));
    assert_eq!(db.rows().await, Vec::<i64>::new());
    // Phase 2 without phase 1 is a clear error.
    assert_eq!(c.commit_prepared().await.unwrap_err().sqlstate(), "55000");
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_prepare_of_untouched_participant_is_nothing() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    assert_eq!(c.prepare().await.unwrap(), Prepared::Nothing);
    assert_eq!(c.status(), b'I');
    assert!(!xa_recover().await.contains(&id));
    // Idle: nothing either; phase 2 has nothing to act on.
    assert_eq!(c.prepare().await.unwrap(), Prepared::Nothing);
    // A transaction begun without an XA id cannot be prepared, and stays open.
    c.begin("BEGIN", None).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (5)").await;
    assert_eq!(c.prepare().await.unwrap_err().sqlstate(), "0A000");
    assert_eq!(c.status(), b'T');
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    assert_eq!(db.rows().await, vec![5]);
    // Ids that would need quoting are refused before anything runs.
    assert!(c
        .begin("BEGIN", Some("x'; DROP TABLE t; --"))
        .await
        .is_err());
    assert!(c.begin("BEGIN", Some(&"x".repeat(65))).await.is_err());
    assert_eq!(c.status(), b'I');
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_one_phase_commit_and_rollback() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    // The session's one-phase commit.
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    assert_eq!(c.status(), b'I');
    // The session's one-phase rollback.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    c.rollback().await.unwrap();
    assert_eq!(c.status(), b'I');
    assert_eq!(db.rows().await, vec![1]);
    // The client's own COMMIT / ROLLBACK text inside an XA branch: simple query.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    assert_eq!(tags(&ok(&mut c, "COMMIT").await), vec!["COMMIT"]);
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (4)").await;
    assert_eq!(tags(&ok(&mut c, "ROLLBACK").await), vec!["ROLLBACK"]);
    // … and extended protocol.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ext(&mut c, "INSERT INTO t VALUES (5)").await.unwrap();
    assert_eq!(tags(&ext(&mut c, "COMMIT").await.unwrap()), vec!["COMMIT"]);
    assert_eq!(c.sync().await, b'I');
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ext(&mut c, "INSERT INTO t VALUES (6)").await.unwrap();
    assert_eq!(
        tags(&ext(&mut c, "ROLLBACK").await.unwrap()),
        vec!["ROLLBACK"]
    );
    assert_eq!(c.sync().await, b'I');
    assert_eq!(db.rows().await, vec![1, 3, 5]);
    assert!(
        !xa_recover().await.contains(&id),
        "one-phase ends leave no branch"
    );
    // Plain (no XA) explicit transactions: the client's BEGIN, lazy too.
    assert_eq!(tags(&ok(&mut c, "BEGIN").await), vec!["BEGIN"]);
    ok(&mut c, "INSERT INTO t VALUES (7)").await;
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    assert_eq!(db.rows().await, vec![1, 3, 5, 7]);
    // COMMIT when idle: nothing to do, as PostgreSQL (which only warns).
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    c.rollback().await.unwrap();
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_failed_state_commit_rolls_back() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    assert_eq!(
        err(&mut c, "INSERT INTO t VALUES (1)").await.sqlstate(),
        "23505"
    );
    assert_eq!(c.status(), b'E');
    assert_eq!(err(&mut c, "SELECT a FROM t").await.sqlstate(), "25P02");
    assert_eq!(c.commit().await.unwrap(), Committed::RolledBack);
    assert_eq!(c.status(), b'I');
    assert_eq!(db.rows().await, Vec::<i64>::new());
    // The client's COMMIT of a failed XA branch answers ROLLBACK.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    c.fail_transaction();
    assert_eq!(tags(&ok(&mut c, "COMMIT").await), vec!["ROLLBACK"]);
    // Phase 1 of a failed branch: rolled back, 25P02, Idle.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    let _ = q(&mut c, "INSERT INTO t VALUES (3)").await.unwrap_err();
    assert_eq!(c.prepare().await.unwrap_err().sqlstate(), "25P02");
    assert_eq!(c.status(), b'I');
    assert_eq!(db.rows().await, Vec::<i64>::new());
    // BEGIN in a failed block is refused.
    c.begin("BEGIN", None).await.unwrap();
    c.fail_transaction();
    assert_eq!(
        c.begin("BEGIN", None).await.unwrap_err().sqlstate(),
        "25P02"
    );
    c.rollback().await.unwrap();
    // Still usable.
    ok(&mut c, "INSERT INTO t VALUES (9)").await;
    assert_eq!(db.rows().await, vec![9]);
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_savepoints() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    // A savepoint first opens the pending branch (MariaDB accepts savepoints inside XA).
    c.savepoint("a").await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    c.savepoint("b").await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    c.rollback_to_savepoint("b").await.unwrap();
    c.release_savepoint("b").await.unwrap();
    assert_eq!(
        c.release_savepoint("b").await.unwrap_err().sqlstate(),
        "3B001"
    );
    // The unknown savepoint aborted the block; ROLLBACK TO leaves the failed state.
    assert_eq!(c.status(), b'E');
    c.rollback_to_savepoint("a").await.unwrap();
    assert_eq!(c.status(), b'T');
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    // The client's text, too.
    assert_eq!(
        tags(&ok(&mut c, "SAVEPOINT \"Sp\"").await),
        vec!["SAVEPOINT"]
    );
    ok(&mut c, "INSERT INTO t VALUES (4)").await;
    let _ = q(&mut c, "INSERT INTO t VALUES (4)").await.unwrap_err();
    assert_eq!(c.status(), b'E');
    assert_eq!(
        tags(&ok(&mut c, "ROLLBACK TO SAVEPOINT \"Sp\"").await),
        vec!["ROLLBACK"]
    );
    assert_eq!(tags(&ok(&mut c, "RELEASE \"Sp\"").await), vec!["RELEASE"]);
    assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
    c.commit_prepared().await.unwrap();
    assert_eq!(db.rows().await, vec![3]);
    // Outside a block: 25P01, as PostgreSQL.
    assert_eq!(c.savepoint("x").await.unwrap_err().sqlstate(), "25P01");
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn xa_isolation_and_access_mode_apply() {
    let db = MyDb::new().await;
    let mut setup = db.direct().await;
    setup.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let mut c = db.bind.checkout().await.unwrap();
    // READ ONLY reaches the XA branch through SET TRANSACTION.
    c.begin("START TRANSACTION READ ONLY", Some(&xid()))
        .await
        .unwrap();
    ok(&mut c, "SELECT a FROM t").await;
    assert_eq!(
        err(&mut c, "INSERT INTO t VALUES (2)").await.sqlstate(),
        "25006"
    );
    c.rollback().await.unwrap();
    // And without XA.
    c.begin("BEGIN READ ONLY", None).await.unwrap();
    assert_eq!(
        err(&mut c, "INSERT INTO t VALUES (2)").await.sqlstate(),
        "25006"
    );
    c.rollback().await.unwrap();
    // SERIALIZABLE: InnoDB turns plain reads into share locks, so another writer waits.
    c.begin("BEGIN ISOLATION LEVEL SERIALIZABLE", Some(&xid()))
        .await
        .unwrap();
    ok(&mut c, "SELECT a FROM t WHERE a = 1").await;
    setup
        .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let blocked = setup.query_drop("UPDATE t SET a = 10 WHERE a = 1").await;
    match blocked {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1205, "{e:?}"),
        other => panic!("the update should wait for the serializable reader: {other:?}"),
    }
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    // The next transaction is back to the default level: the same read takes no lock.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "SELECT a FROM t WHERE a = 1").await;
    setup
        .query_drop("UPDATE t SET a = 10 WHERE a = 1")
        .await
        .unwrap();
    c.rollback().await.unwrap();
    setup.disconnect().await.unwrap();
    c.release().await;
    db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// MySQL DDL inside a transaction

fn notices(msgs: &[Msg]) -> Vec<(String, String, String)> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Notice(s, c, t) => Some((s.clone(), c.clone(), t.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn mysql_ddl_before_work_runs_outside_with_notice() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    for xa in [Some(xid()), None] {
        let table = if xa.is_some() { "ddl_xa" } else { "ddl_plain" };
        c.begin("BEGIN", xa.as_deref()).await.unwrap();
        let m = ok(&mut c, &format!("CREATE TABLE {table} (a INTEGER)")).await;
        let n = notices(&m);
        assert_eq!(n.len(), 1, "{m:?}");
        assert_eq!(n[0].0, "NOTICE");
        assert_eq!(n[0].1, "00000");
        assert!(n[0].2.contains("bind \"maria\""), "{}", n[0].2);
        assert!(n[0].2.contains("committed at once"), "{}", n[0].2);
        // The notice comes before the statement's CommandComplete.
        assert!(matches!(m.first(), Some(Msg::Notice(..))), "{m:?}");
        assert_eq!(m.last(), Some(&Msg::Complete("CREATE TABLE".into())));
        // Committed already, seen from another connection; the transaction is still open and lazy.
        assert!(db.table_exists(table).await);
        assert_eq!(c.status(), b'T');
        let m = ok(&mut c, &format!("CREATE INDEX {table}_i ON {table} (a)")).await;
        assert_eq!(notices(&m).len(), 1, "{m:?}");
        ok(&mut c, &format!("INSERT INTO {table} VALUES (1)")).await;
        c.rollback().await.unwrap();
        // The DDL stays, the insert is gone.
        assert!(db.table_exists(table).await);
        let mut d = db.direct().await;
        let n: Option<i64> = d
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        assert_eq!(n, Some(0));
        d.disconnect().await.unwrap();
    }
    // A participant that ran only DDL has nothing to prepare.
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    let m = ok(&mut c, "DROP TABLE ddl_plain").await;
    assert_eq!(notices(&m).len(), 1);
    assert_eq!(c.prepare().await.unwrap(), Prepared::Nothing);
    assert!(!db.table_exists("ddl_plain").await);
    assert!(!xa_recover().await.contains(&id));
    // CREATE TEMPORARY TABLE runs inside the branch (MySQL does not commit for it).
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    let m = ok(&mut c, "CREATE TEMPORARY TABLE tmp1 (a INTEGER)").await;
    assert!(notices(&m).is_empty(), "{m:?}");
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    assert_eq!(db.rows().await, vec![1]);
    // Outside a transaction DDL simply runs, without a notice.
    let m = ok(&mut c, "CREATE TABLE ddl_free (a INTEGER)").await;
    assert!(notices(&m).is_empty(), "{m:?}");
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn mysql_ddl_after_work_is_refused() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    for (xa, table) in [(Some(xid()), "late_xa"), (None, "late_plain")] {
        c.begin("BEGIN", xa.as_deref()).await.unwrap();
        ok(&mut c, "INSERT INTO t VALUES (1)").await;
        let e = err(&mut c, &format!("CREATE TABLE {table} (a INTEGER)")).await;
        assert!(
            matches!(e, ProxyError::DdlInMySqlTransaction { .. }),
            "{e:?}"
        );
        assert_eq!(e.sqlstate(), "0A000");
        let text = e.to_string();
        assert!(text.contains("implicitly commit"), "{text}");
        let mut out = BytesMut::new();
        e.write_to(&mut out);
        let body = String::from_utf8_lossy(&out);
        assert!(
            body.contains("before the transaction's other statements"),
            "{body}"
        );
        // Nothing ran: no table, and the insert is still uncommitted, then rolled back.
        assert!(!db.table_exists(table).await);
        assert_eq!(db.rows().await, Vec::<i64>::new());
        assert_eq!(c.status(), b'E');
        assert_eq!(c.commit().await.unwrap(), Committed::RolledBack);
        assert_eq!(db.rows().await, Vec::<i64>::new());
    }
    // Also after a mere SELECT or SAVEPOINT: the engine transaction has started.
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "SELECT a FROM t").await;
    let e = err(&mut c, "ALTER TABLE t ADD COLUMN b INTEGER").await;
    assert!(
        matches!(e, ProxyError::DdlInMySqlTransaction { .. }),
        "{e:?}"
    );
    c.rollback().await.unwrap();
    c.begin("BEGIN", None).await.unwrap();
    c.savepoint("s").await.unwrap();
    let e = err(&mut c, "CREATE INDEX t_i ON t (a)").await;
    assert!(
        matches!(e, ProxyError::DdlInMySqlTransaction { .. }),
        "{e:?}"
    );
    c.rollback().await.unwrap();
    // The client's BEGIN behaves the same.
    ok(&mut c, "BEGIN").await;
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    let e = err(&mut c, "DROP TABLE t").await;
    assert!(
        matches!(e, ProxyError::DdlInMySqlTransaction { .. }),
        "{e:?}"
    );
    ok(&mut c, "ROLLBACK").await;
    assert!(db.table_exists("t").await);
    c.release().await;
    db.drop().await;
}

#[tokio::test]
async fn release_keeps_a_prepared_branch_for_recovery() {
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
    c.release().await;
    // The lease ended between the phases: the branch is the coordinator's to decide.
    assert!(xa_recover().await.contains(&id));
    let mut d = db.direct().await;
    d.query_drop(format!("XA COMMIT '{id}'")).await.unwrap();
    d.disconnect().await.unwrap();
    assert_eq!(db.rows().await, vec![1]);
    // A lease that ends inside an open (unprepared) branch rolls it back.
    let mut c = db.bind.checkout().await.unwrap();
    let id = xid();
    c.begin("BEGIN", Some(&id)).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    c.release().await;
    assert!(!xa_recover().await.contains(&id));
    assert_eq!(db.rows().await, vec![1]);
    // The next lease of that pooled connection can start a branch.
    let mut c = db.bind.checkout().await.unwrap();
    c.begin("BEGIN", Some(&xid())).await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    c.release().await;
    assert_eq!(db.rows().await, vec![1, 3]);
    db.drop().await;
}

/// What MariaDB does with a prepared branch when its connection is reset (COM_RESET_CONNECTION, as
/// the pool does to a connection dropped without `release`) or closed: it keeps it.
#[tokio::test]
async fn mariadb_keeps_prepared_branches_across_reset_and_disconnect() {
    let db = MyDb::new().await;
    for reset in [true, false] {
        let id = xid();
        let mut d = db.direct().await;
        d.query_drop(format!("XA START '{id}'")).await.unwrap();
        d.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
        d.query_drop(format!("XA END '{id}'")).await.unwrap();
        d.query_drop(format!("XA PREPARE '{id}'")).await.unwrap();
        if reset {
            d.reset().await.unwrap();
            assert!(xa_recover().await.contains(&id), "kept across a reset");
        }
        d.disconnect().await.unwrap();
        assert!(xa_recover().await.contains(&id), "kept across a disconnect");
        let mut e = db.direct().await;
        e.query_drop(format!("XA ROLLBACK '{id}'")).await.unwrap();
        e.disconnect().await.unwrap();
    }
    db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// SQLite

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("bp_txtest_{}_{}", std::process::id(), seq()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sqlite_rows(c: &mut TranslatedConn) -> Vec<String> {
    let mut out = BytesMut::new();
    c.query("SELECT a FROM t ORDER BY a", &mut out)
        .await
        .unwrap();
    let mut rows = vec![];
    let mut b = &out[..];
    while !b.is_empty() {
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if b[0] == b'D' {
            let l = u32::from_be_bytes([b[7], b[8], b[9], b[10]]) as usize;
            rows.push(String::from_utf8(b[11..11 + l].to_vec()).unwrap());
        }
        b = &b[1 + len..];
    }
    rows
}

#[tokio::test]
async fn sqlite_transaction_control() {
    let dir = TempDir::new();
    let bind = TranslatedBind::new(&cfg(
        "lite",
        BindUrl::Sqlite {
            path: Some(dir.0.join("t.db")),
        },
        2,
    ))
    .unwrap();
    let mut c = bind.checkout().await.unwrap();
    assert!(!c.can_prepare());
    ok(&mut c, "CREATE TABLE t (a INTEGER PRIMARY KEY)").await;
    // No XA on SQLite.
    assert_eq!(
        c.begin("BEGIN", Some("bp_x_1"))
            .await
            .unwrap_err()
            .sqlstate(),
        "0A000"
    );
    assert_eq!(c.status(), b'I');
    c.begin("BEGIN", None).await.unwrap();
    assert_eq!(c.status(), b'T');
    ok(&mut c, "INSERT INTO t VALUES (1)").await;
    c.savepoint("a").await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (2)").await;
    c.rollback_to_savepoint("a").await.unwrap();
    c.release_savepoint("a").await.unwrap();
    // DDL stays transactional on SQLite, without a notice.
    let m = ok(&mut c, "CREATE TABLE u (b INTEGER)").await;
    assert!(notices(&m).is_empty(), "{m:?}");
    assert_eq!(c.prepare().await.unwrap_err().sqlstate(), "0A000");
    assert_eq!(c.status(), b'T');
    assert_eq!(c.commit().await.unwrap(), Committed::Committed);
    assert_eq!(sqlite_rows(&mut c).await, vec!["1"]);
    // Rollback undoes rows and DDL.
    c.begin("BEGIN ISOLATION LEVEL SERIALIZABLE", None)
        .await
        .unwrap();
    ok(&mut c, "INSERT INTO t VALUES (3)").await;
    ok(&mut c, "CREATE TABLE v (b INTEGER)").await;
    c.rollback().await.unwrap();
    assert_eq!(c.status(), b'I');
    assert_eq!(sqlite_rows(&mut c).await, vec!["1"]);
    assert_eq!(err(&mut c, "SELECT b FROM v").await.sqlstate(), "42P01");
    // Failed state: COMMIT rolls back; ROLLBACK TO leaves the failed state.
    c.begin("BEGIN", None).await.unwrap();
    c.savepoint("s").await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (4)").await;
    let _ = q(&mut c, "INSERT INTO t VALUES (4)").await.unwrap_err();
    assert_eq!(c.status(), b'E');
    c.rollback_to_savepoint("s").await.unwrap();
    assert_eq!(c.status(), b'T');
    ok(&mut c, "INSERT INTO t VALUES (5)").await;
    c.fail_transaction();
    assert_eq!(c.commit().await.unwrap(), Committed::RolledBack);
    assert_eq!(sqlite_rows(&mut c).await, vec!["1"]);
    // The client's text on SQLite.
    ok(&mut c, "BEGIN").await;
    ok(&mut c, "INSERT INTO t VALUES (6)").await;
    ok(&mut c, "SAVEPOINT x").await;
    ok(&mut c, "INSERT INTO t VALUES (7)").await;
    ok(&mut c, "ROLLBACK TO SAVEPOINT x").await;
    assert_eq!(tags(&ok(&mut c, "COMMIT").await), vec!["COMMIT"]);
    assert_eq!(sqlite_rows(&mut c).await, vec!["1", "6"]);
    c.release().await;
}

// ---------------------------------------------------------------------------------------------
// Cost of XA

/// Wall time per single-INSERT transaction on MariaDB, sequential, three ways side by side: plain
/// BEGIN/COMMIT (the client's text), an XA branch with one-phase commit, and an XA branch with
/// both phases. `cargo test --release --test translated_tx -- --ignored --nocapture xa_cost`
#[tokio::test]
#[ignore]
async fn xa_cost() {
    const N: usize = 2000;
    let db = MyDb::new().await;
    let mut c = db.bind.checkout().await.unwrap();
    ok(&mut c, "INSERT INTO t VALUES (0)").await;
    let mut k = 1;
    let mut results = vec![];
    for round in 0..2 {
        // plain
        let t0 = Instant::now();
        for _ in 0..N {
            ok(&mut c, "BEGIN").await;
            ok(&mut c, &format!("INSERT INTO t VALUES ({k})")).await;
            ok(&mut c, "COMMIT").await;
            k += 1;
        }
        let plain = t0.elapsed();
        // XA, one phase
        let t0 = Instant::now();
        for i in 0..N {
            c.begin(
                "BEGIN",
                Some(&format!("bpcost{}_{round}_1_{i}", std::process::id())),
            )
            .await
            .unwrap();
            ok(&mut c, &format!("INSERT INTO t VALUES ({k})")).await;
            assert_eq!(c.commit().await.unwrap(), Committed::Committed);
            k += 1;
        }
        let xa1 = t0.elapsed();
        // XA, two phases
        let t0 = Instant::now();
        for i in 0..N {
            c.begin(
                "BEGIN",
                Some(&format!("bpcost{}_{round}_2_{i}", std::process::id())),
            )
            .await
            .unwrap();
            ok(&mut c, &format!("INSERT INTO t VALUES ({k})")).await;
            assert_eq!(c.prepare().await.unwrap(), Prepared::Branch);
            c.commit_prepared().await.unwrap();
            k += 1;
        }
        let xa2 = t0.elapsed();
        results.push((round, plain, xa1, xa2));
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / N as f64;
    for (round, plain, xa1, xa2) in results {
        println!(
            "round {round}: {N} transactions of one INSERT: plain BEGIN/COMMIT {:.0} µs/tx, XA one-phase {:.0} µs/tx ({:+.0}%), XA two-phase {:.0} µs/tx ({:+.0}%)",
            per(plain),
            per(xa1),
            (per(xa1) / per(plain) - 1.0) * 100.0,
            per(xa2),
            (per(xa2) / per(plain) - 1.0) * 100.0,
        );
    }
    c.release().await;
    db.drop().await;
}
