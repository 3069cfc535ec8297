//! Client authentication with `users:` configured: SCRAM-SHA-256 with a verifier made by
//! PostgreSQL itself, SCRAM-SHA-256 with a password from an environment variable, MD5, and the
//! failures (28P01), driven by tokio-postgres, psql and a raw wire client.

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use common::{admin, sqlstate, Proxy};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TABLES: &str = "  users: users\n";

/// A SCRAM-SHA-256 verifier for `password`, computed by PostgreSQL.
async fn verifier_from_postgres(password: &str) -> String {
    let a = admin().await;
    let role = format!("bpt_auth_{}", std::process::id());
    a.batch_execute(&format!(
        "SET password_encryption = 'scram-sha-256'; DROP ROLE IF EXISTS {role}; CREATE ROLE {role} PASSWORD '{password}'"
    ))
    .await
    .expect("create role");
    let row = a
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .expect("read verifier");
    a.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .expect("drop role");
    let v: String = row.get(0);
    assert!(v.starts_with("SCRAM-SHA-256$"), "{v}");
    v
}

async fn login(
    p: &Proxy,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(p.port)
        .user(user)
        .password(password)
        .dbname("app")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(c)
}

async fn try_connect(p: &Proxy, user: &str, password: &str) -> Result<(), tokio_postgres::Error> {
    let c = login(p, user, password).await?;
    let n: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(n, 1);
    Ok(())
}

fn assert_auth_failed(e: &tokio_postgres::Error, user: &str) {
    assert_eq!(sqlstate(e), "28P01", "{e:?}");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(
        db.message(),
        format!("password authentication failed for user \"{user}\"")
    );
}

/// Runs psql against the proxy; (success, stdout, stderr).
fn psql(p: &Proxy, user: &str, password: &str, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p"])
        .arg(p.port.to_string())
        .args(["-U", user, "-d", "app", "-c", sql])
        .output()
        .expect("run psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

// ------------------------------------------------------------------------------------------------
// A raw wire client, to see exactly what the proxy sends.

async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> (u8, BytesMut) {
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() > len {
                let tag = buf[0];
                buf.advance(5);
                return (tag, buf.split_to(len - 4));
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf))
            .await
            .expect("read timed out")
            .expect("read");
        assert!(n > 0, "proxy closed the connection");
    }
}

fn startup(user: &str) -> BytesMut {
    let mut out = BytesMut::new();
    frontend::startup_message([("user", user), ("database", "app")], &mut out).expect("encode");
    out
}

/// Runs a SCRAM exchange by hand; returns every message after the SASLFinal up to and including
/// ReadyForQuery.
async fn raw_scram(port: u16, user: &str, password: &str) -> Vec<(u8, BytesMut)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut buf = BytesMut::new();
    s.write_all(&startup(user)).await.expect("write");
    let (tag, body) = read_msg(&mut s, &mut buf).await;
    assert_eq!(tag, b'R');
    assert_eq!(&body[..4], &10i32.to_be_bytes(), "AuthenticationSASL");
    assert_eq!(&body[4..], b"SCRAM-SHA-256\0\0");
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let mut out = BytesMut::new();
    frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut out).expect("encode");
    s.write_all(&out).await.expect("write");
    let (tag, body) = read_msg(&mut s, &mut buf).await;
    assert_eq!((tag, &body[..4]), (b'R', &11i32.to_be_bytes()[..]));
    scram.update(&body[4..]).expect("server-first");
    out.clear();
    frontend::sasl_response(scram.message(), &mut out).expect("encode");
    s.write_all(&out).await.expect("write");
    let (tag, body) = read_msg(&mut s, &mut buf).await;
    assert_eq!((tag, &body[..4]), (b'R', &12i32.to_be_bytes()[..]));
    scram
        .finish(&body[4..])
        .expect("the server signature verifies");
    let mut msgs = Vec::new();
    loop {
        let m = read_msg(&mut s, &mut buf).await;
        let done = m.0 == b'Z';
        msgs.push(m);
        if done {
            break;
        }
    }
    // Nothing more arrives before the client speaks.
    let more = tokio::time::timeout(Duration::from_millis(200), s.read_buf(&mut buf)).await;
    assert!(
        more.is_err() && buf.is_empty(),
        "unexpected bytes after ReadyForQuery"
    );
    msgs
}

fn param_names(msgs: &[(u8, BytesMut)]) -> Vec<String> {
    msgs.iter()
        .filter(|(t, _)| *t == b'S')
        .map(|(_, b)| {
            let end = b.iter().position(|&c| c == 0).expect("nul");
            String::from_utf8_lossy(&b[..end]).into_owned()
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn scram_with_a_postgres_verifier() {
    let v = verifier_from_postgres("s3cret pw").await;
    let p = Proxy::start_with(
        TABLES,
        "",
        &format!("users:\n  - name: alice\n    scram_verifier: \"{v}\"\n"),
        &[],
    )
    .await;

    try_connect(&p, "alice", "s3cret pw")
        .await
        .expect("right password");
    // The session behind it works: a statement reaches its bind.
    let c = login(&p, "alice", "s3cret pw").await.expect("connect");
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .expect("create");
    p.direct(1)
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("the table is on the users bind");

    // Wrong password and unknown user: the same FATAL 28P01.
    let e = try_connect(&p, "alice", "wrong")
        .await
        .expect_err("wrong password");
    assert_auth_failed(&e, "alice");
    let e = try_connect(&p, "mallory", "s3cret pw")
        .await
        .expect_err("unknown user");
    assert_auth_failed(&e, "mallory");

    // The daemon keeps serving.
    try_connect(&p, "alice", "s3cret pw")
        .await
        .expect("right password again");
    let n: i64 = c
        .query_one("SELECT 2::int8", &[])
        .await
        .expect("old session")
        .get(0);
    assert_eq!(n, 2);

    // psql, too.
    let (ok, out, err) = psql(&p, "alice", "s3cret pw", "select 40 + 2");
    assert!(ok, "psql failed: {err}");
    assert_eq!(out, "42");
    let (ok, _, err) = psql(&p, "alice", "nope", "select 1");
    assert!(!ok);
    assert!(
        err.contains("password authentication failed for user \"alice\""),
        "{err}"
    );
}

#[tokio::test]
async fn scram_with_a_password_from_the_environment() {
    let p = Proxy::start_with(
        TABLES,
        "",
        "users:\n  - name: bob\n    password_env: BPT_TEST_BOB_PW\n  - name: carol\n    password_env: BPT_TEST_CAROL_PW\n",
        &[("BPT_TEST_BOB_PW", "b0b's p@ss"), ("BPT_TEST_CAROL_PW", "carol")],
    )
    .await;
    try_connect(&p, "bob", "b0b's p@ss")
        .await
        .expect("bob, right password");
    try_connect(&p, "carol", "carol")
        .await
        .expect("carol, right password");
    let e = try_connect(&p, "bob", "carol")
        .await
        .expect_err("carol's password for bob");
    assert_auth_failed(&e, "bob");
    try_connect(&p, "bob", "b0b's p@ss")
        .await
        .expect("bob again");
    let (ok, out, err) = psql(
        &p,
        "carol",
        "carol",
        "select current_database() is not null",
    );
    assert!(ok, "psql failed: {err}");
    assert_eq!(out, "t");
}

#[tokio::test]
async fn scram_greeting_is_sent_once_and_is_ours() {
    let p = Proxy::start_with(
        TABLES,
        "",
        "users:\n  - name: dave\n    password_env: BPT_TEST_DAVE_PW\n",
        &[("BPT_TEST_DAVE_PW", "pw")],
    )
    .await;
    let msgs = raw_scram(p.port, "dave", "pw").await;
    let count = |t: u8| msgs.iter().filter(|(m, _)| *m == t).count();
    assert_eq!(count(b'R'), 1, "one AuthenticationOk: {msgs:?}");
    let (_, ok) = msgs.iter().find(|(t, _)| *t == b'R').expect("R");
    assert_eq!(&ok[..], &0i32.to_be_bytes());
    assert_eq!(msgs[0].0, b'R', "AuthenticationOk first");
    assert_eq!(count(b'K'), 1, "one BackendKeyData");
    assert_eq!(count(b'Z'), 1, "one ReadyForQuery");
    let names = param_names(&msgs);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "no ParameterStatus twice: {names:?}"
    );
    for want in [
        "server_version",
        "client_encoding",
        "DateStyle",
        "integer_datetimes",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert_eq!(msgs.len(), names.len() + 3, "nothing else: {msgs:?}");

    // The BackendKeyData is the session's: a cancel request with it reaches the running query.
    let c = login(&p, "dave", "pw").await.expect("connect");
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let e = c
        .batch_execute("SELECT pg_sleep(10)")
        .await
        .expect_err("cancelled");
    assert_eq!(sqlstate(&e), "57014");
    canceller.await.expect("join").expect("cancel sent");
}

#[tokio::test]
async fn md5_with_psql_and_tokio_postgres() {
    let p = Proxy::start_with(
        TABLES,
        "",
        "auth_method: md5\nusers:\n  - name: erin\n    password_env: BPT_TEST_ERIN_PW\n",
        &[("BPT_TEST_ERIN_PW", "md5 pw")],
    )
    .await;

    // The server asks for MD5 (AuthenticationMD5Password, code 5, 4-byte salt).
    let mut s = TcpStream::connect(("127.0.0.1", p.port))
        .await
        .expect("connect");
    let mut buf = BytesMut::new();
    s.write_all(&startup("erin")).await.expect("write");
    let (tag, body) = read_msg(&mut s, &mut buf).await;
    assert_eq!(tag, b'R');
    assert_eq!(&body[..4], &5i32.to_be_bytes());
    assert_eq!(body.len(), 8);
    // An empty password never matches (also for unknown users).
    let mut out = BytesMut::new();
    frontend::password_message(b"", &mut out).expect("encode");
    s.write_all(&out).await.expect("write");
    let (tag, body) = read_msg(&mut s, &mut buf).await;
    assert_eq!(tag, b'E');
    assert!(String::from_utf8_lossy(&body).contains("28P01"), "{body:?}");
    drop(s);

    let (ok, out, err) = psql(&p, "erin", "md5 pw", "select 1");
    assert!(ok, "psql failed: {err}");
    assert_eq!(out, "1");
    let (ok, _, err) = psql(&p, "erin", "bad", "select 1");
    assert!(!ok);
    assert!(
        err.contains("password authentication failed for user \"erin\""),
        "{err}"
    );
    let (ok, _, err) = psql(&p, "nobody", "md5 pw", "select 1");
    assert!(!ok);
    assert!(
        err.contains("password authentication failed for user \"nobody\""),
        "{err}"
    );

    try_connect(&p, "erin", "md5 pw")
        .await
        .expect("tokio-postgres md5");
    let e = try_connect(&p, "erin", "wrong").await.expect_err("wrong");
    assert_auth_failed(&e, "erin");
    let c = login(&p, "erin", "md5 pw").await.expect("login");
    let n: i32 = c.query_one("SELECT 7", &[]).await.expect("query").get(0);
    assert_eq!(n, 7);
}

#[tokio::test]
async fn trust_without_users() {
    let p = Proxy::start(TABLES, "").await;
    try_connect(&p, "anyone", "ignored").await.expect("trust");
    let (ok, out, err) = psql(&p, "anyone", "", "select 1");
    assert!(ok, "psql failed: {err}");
    assert_eq!(out, "1");
}
