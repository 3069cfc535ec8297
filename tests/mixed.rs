//! tokio-postgres (extended protocol, binary results) through bindproxy against a configuration
//! that mixes a PostgreSQL bind, a MariaDB bind, a SQLite file and a SQLite in-memory database;
//! rows are checked on each backend directly.

mod common;

use common::{sqlstate, Proxy};
use mysql_async::prelude::Queryable;

const MARIADB: &str = "mysql://root@127.0.0.1:3306";

struct MariaDb {
    name: String,
}

impl MariaDb {
    async fn create() -> MariaDb {
        let name = format!("bp_mixed_{}", std::process::id());
        let mut c = mysql_async::Conn::from_url(MARIADB).await.expect(
            "MariaDB must run on 127.0.0.1:3306 (root, no password): run ./scripts/test.sh",
        );
        c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        MariaDb { name }
    }

    async fn count(&self, table: &str) -> i64 {
        let mut c = mysql_async::Conn::from_url(format!("{MARIADB}/{}", self.name))
            .await
            .unwrap();
        let n: Option<i64> = c
            .query_first(format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap();
        n.unwrap_or(-1)
    }

    async fn drop(self) {
        if let Ok(mut c) = mysql_async::Conn::from_url(MARIADB).await {
            let _ = c
                .query_drop(format!("DROP DATABASE IF EXISTS {}", self.name))
                .await;
        }
    }
}

#[tokio::test]
async fn one_connection_string_for_postgres_mariadb_and_sqlite() {
    let my = MariaDb::create().await;
    let dir = std::env::temp_dir().join(format!("bp_mixed_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("files.db");
    let p = Proxy::start(
        "  users: users\n  \"log_*\": logs\n  notes: files\n  sessions: mem\n",
        &format!(
            "  logs: mysql+pymysql://root@127.0.0.1:3306/{}\n  files: sqlite:///{}\n  mem: \"sqlite:///:memory:\"\n",
            my.name,
            file.display()
        ),
    )
    .await;
    let c = p.client().await;
    for ddl in [
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE log_events (id bigserial PRIMARY KEY, level smallint, msg text, ok boolean, score double precision, payload bytea)",
        "CREATE TABLE notes (id serial PRIMARY KEY, body varchar(200), stars int)",
        "CREATE TABLE sessions (token text PRIMARY KEY, user_id int)",
    ] {
        c.batch_execute(ddl).await.unwrap_or_else(|e| panic!("{ddl}: {e}"));
    }
    // Binary parameters and results on every kind of bind.
    let id: i64 = c
        .query_one(
            "INSERT INTO log_events (level, msg, ok, score, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&3i16, &"dïsk fülл", &true, &2.5f64, &vec![0u8, 255, 7]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 1);
    let row = c
        .query_one(
            "SELECT level, msg, ok, score, payload FROM log_events WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 3);
    assert_eq!(row.get::<_, &str>(1), "dïsk fülл");
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, f64>(3), 2.5);
    assert_eq!(row.get::<_, Vec<u8>>(4), vec![0u8, 255, 7]);

    // A serial key on SQLite is int4, as in PostgreSQL (bindproxy's range check records its width).
    let note: i32 = c
        .query_one(
            "INSERT INTO notes (body, stars) VALUES ($1, $2) RETURNING id",
            &[&"hello", &5i32],
        )
        .await
        .unwrap()
        .get(0);
    let stars: i32 = c
        .query_one("SELECT stars FROM notes WHERE id = $1", &[&note])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stars, 5);
    c.execute(
        "INSERT INTO sessions (token, user_id) VALUES ($1, $2)",
        &[&"tok", &1i32],
    )
    .await
    .unwrap();
    c.execute("INSERT INTO users (name) VALUES ($1)", &[&"ann"])
        .await
        .unwrap();

    // Without a column list, parameters take the types of the table's columns in order.
    c.execute("INSERT INTO sessions VALUES ($1, $2)", &[&"tok2", &2i32])
        .await
        .unwrap();
    c.execute(
        "INSERT INTO log_events VALUES ($1, $2, $3, $4, $5, $6)",
        &[&2i64, &1i16, &"positional", &false, &0.5f64, &vec![1u8]],
    )
    .await
    .unwrap();

    // The in-memory bind is one database for every client.
    let c2 = p.client().await;
    let user: i32 = c2
        .query_one("SELECT user_id FROM sessions WHERE token = $1", &[&"tok"])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, 1);

    // Each row is where its bind says, and nowhere else.
    assert_eq!(my.count("log_events").await, 2);
    let lite = rusqlite::Connection::open(&file).unwrap();
    let n: i64 = lite
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let pg_users: i64 = p
        .direct(1)
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pg_users, 1);
    let stray: i64 = p
        .direct(0)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('log_events', 'notes', 'sessions')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stray, 0);

    // Errors keep PostgreSQL's SQLSTATEs, and a transaction on a MariaDB bind fails like PostgreSQL.
    let e = c
        .execute(
            "INSERT INTO sessions (token, user_id) VALUES ($1, $2)",
            &[&"tok", &2i32],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let mut c = c;
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO log_events (level, msg) VALUES (1, 'in tx')",
        &[],
    )
    .await
    .unwrap();
    let e = tx
        .execute("INSERT INTO log_events (id, level) VALUES (1, 1)", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = tx.query("SELECT 1 FROM log_events", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    tx.rollback().await.unwrap();
    assert_eq!(
        my.count("log_events").await,
        2,
        "the failed transaction must leave nothing"
    );

    // A cross-bind join is refused before anything runs.
    let e = c
        .query("SELECT * FROM notes JOIN log_events ON true", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
    drop(p);
    my.drop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
