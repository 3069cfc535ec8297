//! The PostgreSQL relay, driven by tokio-postgres (extended protocol, binary results), checked
//! against the backend databases directly.

mod common;

use common::{sqlstate, Proxy};
use futures::future::join_all;

/// Runs each DDL statement on its own (one bind per statement).
async fn create(c: &tokio_postgres::Client, ddl: &[&str]) {
    for d in ddl {
        c.batch_execute(d)
            .await
            .unwrap_or_else(|e| panic!("{d}: {e}"));
    }
}

const TABLES: &str = "  users: users\n  \"user_*\": users\n";

#[tokio::test]
async fn rows_land_on_their_bind_and_binary_values_round_trip() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    // One statement per bind: a multi-statement query must stay on one bind.
    c.batch_execute(
        "CREATE TABLE users (id serial PRIMARY KEY, name text, score numeric(10,2), born timestamptz, photo bytea, ok bool);
         CREATE TABLE user_prefs (user_id int, k text);",
    )
    .await
    .unwrap();
    c.batch_execute("CREATE TABLE orders (id serial PRIMARY KEY, user_id int, total float8)")
        .await
        .unwrap();
    let row = c
        .query_one(
            "INSERT INTO users (name, photo, ok) VALUES ($1, $2, $3) RETURNING id, name, photo, ok",
            &[&"ann", &vec![0u8, 1, 255], &true],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, &str>(1), "ann");
    assert_eq!(row.get::<_, Vec<u8>>(2), vec![0u8, 1, 255]);
    assert!(row.get::<_, bool>(3));
    c.execute(
        "INSERT INTO orders (user_id, total) VALUES ($1, $2)",
        &[&1i32, &9.5f64],
    )
    .await
    .unwrap();
    c.execute("INSERT INTO user_prefs VALUES (1, 'theme')", &[])
        .await
        .unwrap();

    // Where did they land?
    assert_eq!(p.count_on(1, "users").await, 1);
    assert_eq!(p.count_on(1, "user_prefs").await, 1);
    assert_eq!(p.count_on(0, "orders").await, 1);
    let stray = "pg_tables WHERE tablename IN ('users', 'user_prefs', 'orders')";
    assert_eq!(p.count_on(0, stray).await, 1, "only orders is on main");
    assert_eq!(
        p.count_on(1, stray).await,
        2,
        "users and user_prefs are on users"
    );
}

#[tokio::test]
async fn pipelined_queries_on_two_binds_answer_in_order() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    create(
        &c,
        &[
            "CREATE TABLE users (id int PRIMARY KEY, name text)",
            "CREATE TABLE orders (id int PRIMARY KEY, user_id int)",
        ],
    )
    .await;
    for i in 0..20i32 {
        c.execute("INSERT INTO users VALUES ($1, $2)", &[&i, &format!("u{i}")])
            .await
            .unwrap();
        c.execute("INSERT INTO orders VALUES ($1, $2)", &[&(i + 100), &i])
            .await
            .unwrap();
    }
    let users = c
        .prepare("SELECT name FROM users WHERE id = $1")
        .await
        .unwrap();
    let orders = c
        .prepare("SELECT id FROM orders WHERE user_id = $1")
        .await
        .unwrap();
    // tokio-postgres pipelines these: one connection, alternating binds, no waiting in between.
    let futures = (0..20i32).map(|i| {
        let (c, users, orders) = (&c, &users, &orders);
        async move {
            let name: String = c.query_one(users, &[&i]).await.unwrap().get(0);
            let order: i32 = c.query_one(orders, &[&i]).await.unwrap().get(0);
            (i, name, order)
        }
    });
    for (i, name, order) in join_all(futures).await {
        assert_eq!(name, format!("u{i}"));
        assert_eq!(order, i + 100);
    }
}

#[tokio::test]
async fn cross_bind_statement_is_refused_and_session_goes_on() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    create(
        &c,
        &[
            "CREATE TABLE users (id int)",
            "CREATE TABLE orders (id int, user_id int)",
        ],
    )
    .await;
    // A multi-statement query across binds is one transaction: a failing statement on one bind
    // leaves nothing on the other.
    let e = c
        .batch_execute("INSERT INTO users VALUES (1); INSERT INTO orders VALUES (1, 1, 1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42601", "{e}");
    let n: i64 = p.count_on(1, "users").await;
    assert_eq!(n, 0);
    // and it commits on both when every statement succeeds
    c.batch_execute("INSERT INTO users VALUES (1); INSERT INTO orders VALUES (1, 1)")
        .await
        .unwrap();
    assert_eq!(p.count_on(1, "users").await, 1);
    assert_eq!(p.count_on(0, "orders").await, 1);
    let e = c
        .query(
            "SELECT * FROM users u JOIN orders o ON o.user_id = u.id",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    assert!(
        msg.contains("users → users") && msg.contains("orders → main"),
        "{msg}"
    );
    // A cross-bind write runs nowhere.
    let e = c
        .execute("INSERT INTO orders SELECT id, id FROM users", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let n: i64 = p.count_on(0, "orders").await;
    assert_eq!(n, 1);
    // And the session carries on.
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn cross_bind_transaction_fails_like_postgres() {
    let p = Proxy::start(TABLES, "").await;
    let mut c = p.client().await;
    create(
        &c,
        &[
            "CREATE TABLE users (id int)",
            "CREATE TABLE orders (id int)",
        ],
    )
    .await;
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO users VALUES (1)", &[])
        .await
        .unwrap();
    // a second bind joins the transaction
    tx.execute("INSERT INTO orders VALUES (1)", &[])
        .await
        .unwrap();
    // a statement over both binds is refused and fails the transaction, as PostgreSQL would
    let e = tx
        .query("SELECT * FROM orders JOIN users USING (id)", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    assert!(
        msg.contains("users → users") && msg.contains("orders → main"),
        "{msg}"
    );
    let e = tx.query("SELECT * FROM users", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    // COMMIT of a failed transaction rolls back, as PostgreSQL does.
    tx.commit().await.ok();
    let n: i64 = p.count_on(1, "users").await;
    assert_eq!(
        n, 0,
        "the insert of the failed transaction must be rolled back"
    );
    let n: i64 = p.count_on(0, "orders").await;
    assert_eq!(n, 0, "on every bind");
    // A transaction on one bind commits.
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO users VALUES (2)", &[])
        .await
        .unwrap();
    tx.execute("INSERT INTO users VALUES (3)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = p.count_on(1, "users").await;
    assert_eq!(n, 2);
}

#[tokio::test]
async fn portal_suspension_with_row_limit() {
    let p = Proxy::start(TABLES, "").await;
    let mut c = p.client().await;
    c.batch_execute("CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 25) g")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT id FROM users ORDER BY id")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 10).await.unwrap();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn cancel_reaches_the_running_statement() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    let token = c.cancel_token();
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let e = c
        .query(
            "SELECT pg_sleep(10) FROM users UNION ALL SELECT pg_sleep(10)",
            &[],
        )
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn pool_exhaustion_is_53300_not_a_hang() {
    let p = Proxy::start(TABLES, "").await;
    // `users` has pool_size 4: four sessions hold a connection each.
    let mut holders = Vec::new();
    for _ in 0..4 {
        let c = p.client().await;
        c.query("SELECT count(*) FROM users_nothing_here_but_routed", &[])
            .await
            .ok();
        c.batch_execute("SELECT 1 FROM pg_catalog.pg_class LIMIT 0")
            .await
            .unwrap();
        let _ = c.query("SELECT * FROM user_x", &[]).await; // leases a users connection
        holders.push(c);
    }
    let c = p.client().await;
    let e = c.query("SELECT * FROM users", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "53300");
    drop(holders);
    // Connections come back once their sessions end.
    let mut ok = false;
    for _ in 0..50 {
        match c.query("SELECT 1 FROM users_none", &[]).await {
            Err(e) if sqlstate(&e) == "53300" => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            _ => {
                ok = true;
                break;
            }
        }
    }
    assert!(ok, "pool never recovered");
}

#[tokio::test]
async fn dead_backend_gives_08001_and_other_binds_carry_on() {
    let dead_port = common::free_port();
    let p = Proxy::start(
        "  users: users\n  lost_*: dead\n",
        &format!("  dead:\n    url: postgresql://postgres@127.0.0.1:{dead_port}/nope\n    connect_timeout_ms: 500\n"),
    )
    .await;
    let c = p.client().await;
    let e = c.query("SELECT * FROM lost_things", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "08001");
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    assert!(msg.contains("\"dead\""), "{msg}");
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn backend_killed_mid_session_reports_08006_and_reconnects() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    let pid: i32 = c
        .query_one(
            "SELECT pg_backend_pid() FROM users UNION SELECT pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let admin = common::admin().await;
    let killer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();
    });
    let e = c
        .query(
            "SELECT pg_sleep(5) FROM users UNION ALL SELECT pg_sleep(5)",
            &[],
        )
        .await
        .unwrap_err();
    killer.await.unwrap();
    let code = sqlstate(&e);
    assert!(code == "08006" || code == "57P01", "got {code}: {e}");
    // The next statement gets a fresh connection.
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn catalog_queries_find_their_bind_and_do_not_claim_the_transaction() {
    let p = Proxy::start(TABLES, "").await;
    let mut c = p.client().await;
    create(
        &c,
        &[
            "CREATE TABLE users (id int)",
            "CREATE TABLE orders (id int)",
        ],
    )
    .await;
    // Outside a transaction: a catalog query naming a mapped table asks that table's bind.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'users'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 1,
        "users lives on bind users, and the catalog query must have gone there"
    );
    // Inside BEGIN: an ORM's has_table check about `orders` (main) must not tie the transaction
    // to main before the first real statement, which goes to users.
    let tx = c.transaction().await.unwrap();
    let n: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    tx.execute("INSERT INTO users VALUES (7)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = p.count_on(1, "users WHERE id = 7").await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn session_set_reaches_every_bind_of_the_session() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO users VALUES (1)")
        .await
        .unwrap();
    let on_users =
        "SELECT current_setting('TimeZone'), current_setting('statement_timeout') FROM users";
    // `users` is leased now; the SET goes to the default bind and is replayed on users.
    c.batch_execute("SET TIME ZONE 'Asia/Tokyo'").await.unwrap();
    let row = c.query_one(on_users, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "Asia/Tokyo");
    assert_eq!(row.get::<_, String>(1), "0");
    // A second session: SET first, then the users bind is leased and gets it on the way.
    let c2 = p.client().await;
    c2.batch_execute("SET statement_timeout = '7s'")
        .await
        .unwrap();
    let row = c2.query_one(on_users, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(1), "7s");
    // Sessions do not leak settings into each other.
    let row = c.query_one(on_users, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(1), "0");
}

#[tokio::test]
async fn psql_describe_finds_tables_on_every_bind() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    create(
        &c,
        &[
            "CREATE TABLE users (id int PRIMARY KEY, name text)",
            "CREATE TABLE orders (id int PRIMARY KEY)",
        ],
    )
    .await;
    // psql asks by name, then by OID: both must reach the bind holding the table.
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &p.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "app",
        ])
        .args(["-c", "\\d users", "-c", "\\d orders", "-c", "\\d users"])
        .output()
        .expect("psql");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "psql said: {stderr}");
    assert_eq!(
        stdout.matches("Table \"public.users\"").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("Table \"public.orders\""), "{stdout}");
    assert!(stdout.contains("name"), "{stdout}");
}

#[tokio::test]
async fn savepoints_before_the_first_statement_follow_the_transaction() {
    let p = Proxy::start(TABLES, "").await;
    let c = p.client().await;
    c.batch_execute("CREATE TABLE users (id int)")
        .await
        .unwrap();
    // An ORM's begin_nested() right after BEGIN: no bind is known yet when SAVEPOINT arrives.
    for sql in [
        "BEGIN",
        "SAVEPOINT a",
        "INSERT INTO users VALUES (1)",
        "ROLLBACK TO SAVEPOINT a",
        "INSERT INTO users VALUES (2)",
        "RELEASE SAVEPOINT a",
        "COMMIT",
    ] {
        c.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let ids: Vec<i32> = p
        .direct(1)
        .await
        .query("SELECT id FROM users", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![2]);
    // Outside a transaction, as in PostgreSQL.
    let e = c.batch_execute("SAVEPOINT b").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P01");
    // The same through the extended protocol.
    let mut c = c;
    let tx = c.transaction().await.unwrap();
    tx.execute("SAVEPOINT x", &[]).await.unwrap();
    tx.execute("INSERT INTO users VALUES (3)", &[])
        .await
        .unwrap();
    tx.execute("RELEASE SAVEPOINT x", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = p.count_on(1, "users").await;
    assert_eq!(n, 2);
}
