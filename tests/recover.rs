//! Recovery of prepared branches against the real servers: PostgreSQL on 127.0.0.1:5432
//! (max_prepared_transactions > 0) and MariaDB on 127.0.0.1:3306.
//!
//! Branches are prepared by hand under ids of instance `rtest`; one transaction gets a commit
//! decision in the log, the other none. Recovery must commit the first everywhere, roll back the
//! second, and leave a branch of another instance (`rtestother`) alone.

use std::path::PathBuf;
use std::process::Command;

use mysql_async::prelude::Queryable;
use tokio_postgres::NoTls;

use bindproxy::config::Config;
use bindproxy::proxy::Proxy;
use bindproxy::tx::gid::{branch, GidMaker};
use bindproxy::tx::log::DecisionLog;
use bindproxy::tx::recover::{detect_capabilities, finish_in_background, recover};
use bindproxy::tx::Capability;

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres";
const PG_DB: &str = "bp_recover_a";
const MARIADB: &str = "mysql://root@127.0.0.1:3306";
const MY_DB: &str = "bp_recover_m";
const INSTANCE: &str = "rtest";
const OTHER: &str = "rtestother";

/// The tests share the scratch databases: one at a time.
static SCRATCH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "bp_recover_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn pg(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect with `{conninfo}`: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn pg_db() -> tokio_postgres::Client {
    pg(&format!("{PG_ADMIN} dbname={PG_DB}")).await
}

async fn my(db: Option<&str>) -> mysql_async::Conn {
    let url = match db {
        Some(d) => format!("{MARIADB}/{d}"),
        None => MARIADB.to_string(),
    };
    mysql_async::Conn::from_url(url)
        .await
        .expect("MariaDB on 127.0.0.1:3306")
}

/// Prepared transactions of the test database.
async fn pg_prepared() -> Vec<String> {
    pg_db()
        .await
        .query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// XA transactions prepared on the MariaDB server whose id starts with `bp_rtest`.
async fn my_prepared() -> Vec<String> {
    let mut c = my(None).await;
    let rows: Vec<(i64, i64, i64, Vec<u8>)> = c.query("XA RECOVER").await.unwrap();
    let _ = c.disconnect().await;
    let mut ids: Vec<String> = rows
        .into_iter()
        .map(|(_, g, _, data)| String::from_utf8_lossy(&data[..g as usize]).into_owned())
        .filter(|id| id.starts_with(&format!("bp_{INSTANCE}")))
        .collect();
    ids.sort();
    ids
}

/// Rolls back whatever an earlier (crashed) run left prepared, and drops the scratch databases.
async fn clean_up() {
    let admin = pg(PG_ADMIN).await;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&PG_DB])
        .await
        .unwrap()
        .is_some();
    if exists {
        let c = pg_db().await;
        for id in pg_prepared().await {
            let _ = c.batch_execute(&format!("ROLLBACK PREPARED '{id}'")).await;
        }
        drop(c);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
            .await
            .unwrap();
    }
    let mut c = my(None).await;
    for id in my_prepared().await {
        let _ = c.query_drop(format!("XA ROLLBACK '{id}'")).await;
    }
    c.query_drop(format!("DROP DATABASE IF EXISTS {MY_DB}"))
        .await
        .unwrap();
    let _ = c.disconnect().await;
}

async fn set_up() {
    clean_up().await;
    let admin = pg(PG_ADMIN).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {PG_DB}"))
        .await
        .unwrap();
    pg_db()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, tag text NOT NULL)")
        .await
        .unwrap();
    let mut c = my(None).await;
    c.query_drop(format!("CREATE DATABASE {MY_DB}"))
        .await
        .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {MY_DB}.t (id int PRIMARY KEY, tag varchar(64) NOT NULL) ENGINE=InnoDB"
    ))
    .await
    .unwrap();
    let _ = c.disconnect().await;
}

/// A branch on PostgreSQL: one row, then PREPARE TRANSACTION.
async fn prepare_pg(id: &str, row: i32, tag: &str) {
    let c = pg_db().await;
    c.batch_execute(&format!(
        "BEGIN; INSERT INTO t VALUES ({row}, '{tag}'); PREPARE TRANSACTION '{id}'"
    ))
    .await
    .unwrap_or_else(|e| panic!("PREPARE TRANSACTION {id}: {e}"));
}

/// A branch on MariaDB: one row, XA END + XA PREPARE, then the connection goes away.
async fn prepare_my(id: &str, row: i32, tag: &str) {
    let mut c = my(Some(MY_DB)).await;
    for sql in [
        format!("XA START '{id}'"),
        format!("INSERT INTO t VALUES ({row}, '{tag}')"),
        format!("XA END '{id}'"),
        format!("XA PREPARE '{id}'"),
    ] {
        c.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    c.disconnect().await.unwrap();
}

async fn pg_tags() -> Vec<String> {
    pg_db()
        .await
        .query("SELECT tag FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn my_tags() -> Vec<String> {
    let mut c = my(Some(MY_DB)).await;
    let tags: Vec<String> = c.query("SELECT tag FROM t ORDER BY id").await.unwrap();
    let _ = c.disconnect().await;
    tags
}

fn config(log_dir: &std::path::Path) -> Config {
    let yaml = format!(
        "default_bind: pg\n\
         binds:\n  pg: postgresql://postgres@127.0.0.1:5432/{PG_DB}\n  my: mysql://root@127.0.0.1:3306/{MY_DB}\n  lite: \"sqlite:///:memory:\"\n\
         tables:\n  \"m_*\": my\n  \"l_*\": lite\n\
         transactions:\n  instance_id: {INSTANCE}\n  log_dir: {}\n",
        log_dir.display()
    );
    Config::parse(&yaml, "<recover test>", &|_| None).expect("test config")
}

#[tokio::test]
async fn recovery_commits_decided_and_rolls_back_the_rest() {
    let _guard = SCRATCH.lock().await;
    set_up().await;
    let dir = temp_dir("main");
    let proxy = Proxy::new(config(&dir)).expect("proxy");

    let gids = GidMaker::new(INSTANCE);
    let decided = gids.next();
    let undecided = gids.next();
    let foreign = branch(&GidMaker::new(OTHER).next(), 0);
    // participants in joining order: pg is branch 0, my branch 1
    prepare_pg(&branch(&decided, 0), 1, "decided").await;
    prepare_my(&branch(&decided, 1), 1, "decided").await;
    prepare_pg(&branch(&undecided, 0), 2, "undecided").await;
    prepare_my(&branch(&undecided, 1), 2, "undecided").await;
    prepare_pg(&foreign, 3, "foreign").await;
    prepare_my(&foreign, 3, "foreign").await;
    assert_eq!(pg_prepared().await.len(), 3);
    assert_eq!(my_prepared().await.len(), 3);

    proxy
        .tx
        .log
        .record_commit(&decided, &["pg".to_string(), "my".to_string()])
        .await
        .unwrap();

    detect_capabilities(&proxy).await;
    assert_eq!(proxy.capability(0), Some(Capability::TwoPhase));
    assert_eq!(proxy.capability(1), Some(Capability::TwoPhase));
    assert_eq!(proxy.capability(2), Some(Capability::LastResource));

    let report = recover(&proxy).await.expect("recovery");
    let text = report.to_string();
    assert!(report.is_clean(), "{text}");
    assert_eq!(report.decisions, 1, "{text}");
    assert_eq!(report.finished, vec![decided.clone()], "{text}");
    let pg_r = &report.binds[0];
    assert_eq!(pg_r.committed, vec![branch(&decided, 0)], "{text}");
    assert_eq!(pg_r.rolled_back, vec![branch(&undecided, 0)], "{text}");
    let my_r = &report.binds[1];
    assert_eq!(my_r.committed, vec![branch(&decided, 1)], "{text}");
    assert_eq!(my_r.rolled_back, vec![branch(&undecided, 1)], "{text}");
    assert!(report.binds[2].skipped.is_some(), "{text}");

    // The decided transaction committed on both binds, the other one left no trace.
    assert_eq!(pg_tags().await, vec!["decided"]);
    assert_eq!(my_tags().await, vec!["decided"]);
    // None of our branches is left; the other instance's is untouched.
    assert_eq!(pg_prepared().await, vec![foreign.clone()]);
    assert_eq!(my_prepared().await, vec![foreign.clone()]);
    // The decision is done and compacted away.
    assert!(proxy.tx.log.pending().unwrap().is_empty());
    let log = std::fs::read_to_string(dir.join("decisions.log")).unwrap();
    assert!(log.is_empty(), "{log}");

    // A second run finds nothing to do.
    let again = recover(&proxy).await.unwrap();
    assert!(again.is_clean() && again.committed() == 0 && again.rolled_back() == 0);

    // The other instance's branches are ours to clean up.
    pg_db()
        .await
        .batch_execute(&format!("ROLLBACK PREPARED '{foreign}'"))
        .await
        .unwrap();
    let mut c = my(None).await;
    c.query_drop(format!("XA ROLLBACK '{foreign}'"))
        .await
        .unwrap();
    let _ = c.disconnect().await;
    clean_up().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recover_command_refuses_while_the_log_is_locked() {
    let dir = temp_dir("lock");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bindproxy.yaml");
    std::fs::write(
        &cfg,
        format!(
            "default_bind: lite\nbinds:\n  lite: \"sqlite:///:memory:\"\ntables: {{}}\n\
             transactions:\n  instance_id: rtestlock\n  log_dir: {}\n",
            dir.join("txlog").display()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_bindproxy"))
            .arg("--config")
            .arg(&cfg)
            .arg("recover")
            .output()
            .expect("run bindproxy recover")
    };

    let held = DecisionLog::new(&dir.join("txlog")).lock().unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another bindproxy process")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );

    drop(held);
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("nothing is left in doubt"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn phase_two_is_retried_in_the_background() {
    let dir = temp_dir("background");
    let _guard = SCRATCH.lock().await;
    set_up().await;
    let proxy = Proxy::new(config(&dir)).expect("proxy");
    let g = GidMaker::new(INSTANCE).next();
    prepare_pg(&branch(&g, 0), 10, "background").await;
    prepare_my(&branch(&g, 1), 10, "background").await;
    finish_in_background(proxy.clone(), 0, branch(&g, 0), true).await;
    finish_in_background(proxy.clone(), 1, branch(&g, 1), true).await;
    // A branch that is not prepared (any more) ends the retry at once.
    finish_in_background(proxy.clone(), 0, branch(&g, 7), false).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if pg_prepared().await.is_empty() && my_prepared().await.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "phase 2 never ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pg_tags().await, vec!["background"]);
    assert_eq!(my_tags().await, vec!["background"]);
    assert!(
        !dir.exists(),
        "no decision was written, so the log was never opened"
    );
    clean_up().await;
}
