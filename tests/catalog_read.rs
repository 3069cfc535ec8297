//! The catalog readers (`catalog::read`) and the renderer (`catalog::ddl`) against the real
//! servers: PostgreSQL 15 at 127.0.0.1:5432 and MariaDB at 127.0.0.1:3306 (a missing server FAILS
//! these tests), SQLite files.
//!
//! - PostgreSQL bind: a schema is read, rendered and applied to an empty database; `pg_dump
//!   --schema-only` of both must match.
//! - MySQL/SQLite binds: the same PostgreSQL DDL is run directly on PostgreSQL (the reference) and
//!   through the translator on MariaDB and on SQLite; the engine's tables are read back, rendered
//!   and applied to a scratch PostgreSQL database, and the catalogs of the two PostgreSQL
//!   databases are compared (columns and their types, nullability, defaults; constraints; indexes),
//!   with the documented differences asserted as such.
//!
//! Scratch databases are named `bp_<pid>_*` and dropped at the end of each test.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bindproxy::backend::translated::TranslatedBind;
use bindproxy::backend::Bind;
use bindproxy::catalog::ddl::render;
use bindproxy::catalog::model::BindSchema;
use bindproxy::catalog::read::{read_bind, read_tables};
use bindproxy::config::{parse_bind_url, BindConfig, BindUrl};
use bindproxy::sql::TableName;
use bindproxy::translate::{rewrite_sql, Target};
use mysql_async::prelude::Queryable;
use tokio_postgres::Client;

const MARIADB: &str = "mysql://root@127.0.0.1:3306";

fn cfg(name: &str, url: BindUrl) -> BindConfig {
    BindConfig {
        name: name.into(),
        url,
        pool_size: 2,
        checkout_timeout: Duration::from_millis(3000),
        connect_timeout: Duration::from_millis(3000),
    }
}

/// A scratch PostgreSQL database `bp_<pid>_<tag>`.
struct PgDb {
    name: String,
}

impl PgDb {
    async fn new(tag: &str) -> PgDb {
        let name = format!("bp_{}_{tag}", std::process::id());
        let admin = common::admin().await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        PgDb { name }
    }

    fn conninfo(&self) -> String {
        format!("{} dbname={}", common::PG, self.name)
    }

    async fn client(&self) -> Client {
        common::connect(&self.conninfo()).await
    }

    fn bind(&self) -> Bind {
        let url = parse_bind_url(&format!(
            "postgresql://postgres@127.0.0.1:5432/{}",
            self.name
        ))
        .unwrap();
        Bind::open(&cfg("pgbind", url)).unwrap()
    }

    async fn drop(self) {
        let admin = common::admin().await;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

/// Applies rendered statements one by one, naming the one that fails.
async fn apply(c: &Client, stmts: &[String]) {
    for s in stmts {
        if let Err(e) = c.batch_execute(s).await {
            panic!("rendered statement failed: {s}\n{e:?}");
        }
    }
}

fn normalize_dump(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("--")
                || l.starts_with("SET ")
                || l.starts_with("SELECT pg_catalog.set_config")
                || l.starts_with("\\restrict")
                || l.starts_with("\\unrestrict"))
        })
        .map(str::to_owned)
        .collect()
}

fn pg_dump(db: &PgDb) -> Vec<String> {
    let out = std::process::Command::new("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            &db.name,
        ])
        .output()
        .expect("pg_dump must be installed (postgresql-client)");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalize_dump(&String::from_utf8_lossy(&out.stdout))
}

const PG_SCHEMA: &str = r#"
CREATE SCHEMA shop;
CREATE SCHEMA "Other Place";
CREATE TYPE mood AS ENUM ('happy', 'it''s complicated');
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    "Display Name" varchar(50) DEFAULT 'anon',
    feeling mood,
    created timestamptz DEFAULT now(),
    CHECK (length(email) > 3)
);
CREATE TABLE shop.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int REFERENCES users(id) ON DELETE CASCADE,
    total numeric(10,2) CHECK (total >= 0),
    note text,
    tags text[]
);
CREATE TABLE shop.items (
    order_id bigint,
    line int,
    qty int NOT NULL DEFAULT 1,
    PRIMARY KEY (order_id, line),
    FOREIGN KEY (order_id) REFERENCES shop.orders(id) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE "Other Place"."order" (
    "user" int REFERENCES users(id) ON UPDATE SET NULL,
    "Group" text GENERATED ALWAYS AS (upper("user"::text)) STORED,
    n smallint GENERATED BY DEFAULT AS IDENTITY
);
CREATE INDEX orders_open ON shop.orders (user_id) WHERE note IS NULL;
CREATE INDEX users_lower_email ON users (lower(email));
CREATE INDEX items_desc ON shop.items (qty DESC NULLS LAST, line NULLS FIRST);
CREATE UNIQUE INDEX order_user_uq ON "Other Place"."order" ("user");
CREATE INDEX orders_hash ON shop.orders USING hash (note);
CREATE SEQUENCE shop.counter AS integer START 10 INCREMENT 5 MAXVALUE 1000 CYCLE;
CREATE SEQUENCE shop.orphan;
CREATE SEQUENCE shop.items_seq OWNED BY shop.items.line;
COMMENT ON TABLE users IS 'people''s table';
COMMENT ON COLUMN users.email IS 'login';
COMMENT ON COLUMN "Other Place"."order"."Group" IS 'upper';
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;
COMMENT ON VIEW shop.big_orders IS 'big';
CREATE VIEW shop.bigger AS SELECT id FROM shop.big_orders WHERE total > 1000;
"#;

#[tokio::test]
async fn postgresql_bind_round_trips_through_pg_dump() {
    let src = PgDb::new("cat_src").await;
    let dst = PgDb::new("cat_dst").await;
    src.client().await.batch_execute(PG_SCHEMA).await.unwrap();

    let schema = read_bind(&src.bind()).await.unwrap();
    assert_eq!(schema.enums.len(), 1, "{:?}", schema.enums);
    // The identity columns' sequences are implied by them; the serial's and the others are read.
    let mut seqs: Vec<&str> = schema.sequences.iter().map(|s| s.name.as_str()).collect();
    seqs.sort();
    assert_eq!(seqs, ["counter", "items_seq", "orphan", "users_id_seq"]);

    let stmts = render(&schema);
    apply(&dst.client().await, &stmts).await;
    let (a, b) = (pg_dump(&src), pg_dump(&dst));
    if a != b {
        let d: Vec<_> = a
            .iter()
            .zip(b.iter())
            .filter(|(x, y)| x != y)
            .take(10)
            .collect();
        panic!(
            "pg_dump differs ({} vs {} lines); first differences: {d:#?}\nrendered:\n{}",
            a.len(),
            b.len(),
            stmts.join(";\n")
        );
    }

    // A subset: one table, by a schema-qualified name; a missing one is simply absent.
    let some = read_tables(
        &src.bind(),
        &[
            TableName::new(Some("shop"), "orders"),
            TableName::new(Some("shop"), "missing"),
            TableName::new(None, "users"),
        ],
    )
    .await
    .unwrap();
    let mut names: Vec<&str> = some.tables.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["orders", "users"]);
    assert_eq!(
        some.sequences
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["users_id_seq"]
    );
    let orders = some.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.columns[4].type_sql, "text[]");
    assert_eq!(orders.indexes.len(), 2, "{:?}", orders.indexes);

    src.drop().await;
    dst.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Through the translator

/// Every column type and feature the translator supports for CREATE TABLE / CREATE INDEX
/// (translate/types.rs `classify`, translate/ddl.rs), written as a client would.
const TRANSLATED: &[&str] = &[
    "CREATE TABLE parent (id serial PRIMARY KEY, code varchar(10) NOT NULL UNIQUE, \
       label varchar(40) DEFAULT 'none', note text)",
    "CREATE TABLE big (id bigserial PRIMARY KEY, n int8)",
    "CREATE TABLE ident (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
       a smallint NOT NULL DEFAULT 0)",
    "CREATE TABLE ident_always (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
    "CREATE TABLE types (k int PRIMARY KEY, a int2, b int4, c int8, d numeric(10,2), e numeric, \
       f varchar(20), g char(3), h text, i boolean DEFAULT true, j date, t time, \
       l timestamp DEFAULT CURRENT_TIMESTAMP, m timestamptz, n bytea, o uuid, p json, q jsonb, \
       r real, s double precision NOT NULL DEFAULT 1.5, u date DEFAULT CURRENT_DATE, \
       v character varying(5) DEFAULT 'it''s', w boolean NOT NULL DEFAULT false)",
    "CREATE TABLE child (id int NOT NULL, parent_id int REFERENCES parent(id) ON DELETE CASCADE, \
       qty int, price numeric(8,2), tag varchar(10), PRIMARY KEY (id), \
       UNIQUE (parent_id, qty), CHECK (qty > 0), CHECK (price >= 0), CHECK (qty < 1000 AND price < 100000), \
       CONSTRAINT child_tag_fk FOREIGN KEY (tag) REFERENCES parent(code))",
    "CREATE TABLE pair (a int, b int, c text, PRIMARY KEY (a, b))",
    "CREATE INDEX child_price_idx ON child (price DESC)",
    "CREATE UNIQUE INDEX parent_label_uq ON parent (label)",
    "CREATE INDEX ON child (parent_id, price)",
];

/// SQLite only: MySQL has no partial index, and the translator's column-level CHECK is refused
/// by MariaDB (it writes the column COMMENT after the CHECK).
const SQLITE_ONLY: &[&str] = &[
    "CREATE INDEX child_partial ON child (qty) WHERE qty > 10",
    "CREATE TABLE colcheck (a int CHECK (a > 0), b int CONSTRAINT b_small CHECK (b < 10))",
];

/// What PostgreSQL's catalog says about the tables of schema public.
#[derive(Debug, Clone, PartialEq)]
struct ColumnFacts {
    table: String,
    column: String,
    type_sql: String,
    not_null: bool,
    /// The default, or `AUTO` for a serial/identity column (see `auto`).
    default: Option<String>,
    /// serial (nextval default) or identity.
    auto: bool,
    identity: String,
}

async fn columns(c: &Client) -> Vec<ColumnFacts> {
    c.query(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
           a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' \
           AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, a.attnum",
        &[],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        let default: Option<String> = r.get(4);
        let identity: String = r.get(5);
        let auto = !identity.is_empty()
            || default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("));
        ColumnFacts {
            table: r.get(0),
            column: r.get(1),
            type_sql: r.get(2),
            not_null: r.get(3),
            default: if auto { None } else { default },
            auto,
            identity,
        }
    })
    .collect()
}

async fn constraints(c: &Client) -> Vec<(String, String, String)> {
    c.query(
        "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        &[],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn indexes(c: &Client) -> Vec<(String, String)> {
    c.query(
        "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid \
         WHERE ic.relnamespace = 'public'::regnamespace AND NOT EXISTS (SELECT 1 FROM pg_constraint k \
           WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid) ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn place(mut schema: BindSchema) -> BindSchema {
    for t in &mut schema.tables {
        assert_eq!(
            t.schema, None,
            "MySQL/SQLite tables are placed by the caller"
        );
        t.schema = Some("public".into());
    }
    schema
}

/// Runs the statements through the translator for `target`; each rendering goes to `run`.
fn translated(stmts: &[&str], target: Target) -> Vec<String> {
    let mut out = Vec::new();
    for s in stmts {
        for r in rewrite_sql(s, target).unwrap_or_else(|e| panic!("{s}: {e}")) {
            out.extend(r.before.iter().cloned());
            out.push(r.sql);
        }
    }
    out
}

/// Compares the reference (DDL run on PostgreSQL) with the round trip, after asserting the
/// documented differences: every serial/identity column reads back as `GENERATED BY DEFAULT AS
/// IDENTITY` (`auto_type`: the type it then has, `None` = the written one).
async fn compare(reference: &Client, round: &Client, auto_type: Option<&str>) {
    let (mut want, got) = (columns(reference).await, columns(round).await);
    for c in &mut want {
        if c.auto {
            c.identity = "d".into();
            if let Some(t) = auto_type {
                c.type_sql = t.into();
            }
        }
    }
    assert_eq!(got, want, "columns");
    assert_eq!(
        constraints(round).await,
        constraints(reference).await,
        "constraints"
    );
    assert_eq!(indexes(round).await, indexes(reference).await, "indexes");
}

#[tokio::test]
async fn mariadb_tables_made_through_the_translator_read_back_as_postgresql_wrote_them() {
    let reference = PgDb::new("cat_my_ref").await;
    let round = PgDb::new("cat_my_rt").await;
    let ref_client = reference.client().await;
    for s in TRANSLATED {
        ref_client.batch_execute(s).await.unwrap();
    }

    let db = format!("bp_{}_cat_my", std::process::id());
    let mut my = mysql_async::Conn::from_url(MARIADB).await.expect(
        "MariaDB must be running on 127.0.0.1:3306 (root, empty password): run scripts/test.sh",
    );
    my.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    my.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    my.query_drop(format!("USE {db}")).await.unwrap();
    for sql in translated(TRANSLATED, Target::MySql) {
        my.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let url = format!("{MARIADB}/{db}");
    let bind = Bind::Translated(
        TranslatedBind::new(&cfg(
            "maria",
            BindUrl::MySql {
                url: url.clone(),
                display: url,
                tls: Default::default(),
            },
        ))
        .unwrap(),
    );
    let schema = place(read_bind(&bind).await.unwrap());
    let stmts = render(&schema);
    apply(&round.client().await, &stmts).await;
    compare(&ref_client, &round.client().await, None).await;

    // One table alone, after DDL on it; a missing one is absent.
    let some = place(
        read_tables(
            &bind,
            &[TableName::new(None, "child"), TableName::new(None, "nope")],
        )
        .await
        .unwrap(),
    );
    assert_eq!(some.tables.len(), 1);
    assert_eq!(
        some.tables[0],
        *schema.tables.iter().find(|t| t.name == "child").unwrap()
    );

    my.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
    let _ = my.disconnect().await;
    reference.drop().await;
    round.drop().await;
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn sqlite_tables_made_through_the_translator_read_back_as_postgresql_wrote_them() {
    let reference = PgDb::new("cat_lite_ref").await;
    let round = PgDb::new("cat_lite_rt").await;
    let ref_client = reference.client().await;
    let all: Vec<&str> = TRANSLATED.iter().chain(SQLITE_ONLY).copied().collect();
    for s in &all {
        ref_client.batch_execute(s).await.unwrap();
    }

    let dir = TempDir(std::env::temp_dir().join(format!("bp_{}_cat_lite", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("t.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in translated(&all, Target::Sqlite) {
            conn.execute_batch(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let bind = Bind::Translated(
        TranslatedBind::new(&cfg("lite", BindUrl::Sqlite { path: Some(path) })).unwrap(),
    );
    let schema = place(read_bind(&bind).await.unwrap());
    let stmts = render(&schema);
    apply(&round.client().await, &stmts).await;
    // A rowid alias keeps its written width (serial/identity integer: its range check says int4;
    // bigserial: bigint), as bindproxy's Describe does.
    compare(&ref_client, &round.client().await, None).await;

    let some = place(
        read_tables(&bind, &[TableName::new(None, "types")])
            .await
            .unwrap(),
    );
    assert_eq!(some.tables.len(), 1);
    assert_eq!(
        some.tables[0],
        *schema.tables.iter().find(|t| t.name == "types").unwrap()
    );

    reference.drop().await;
    round.drop().await;
    drop(bind);
}

/// Where MySQL keeps less than PostgreSQL, the read-back differs from what the client wrote, in
/// the documented ways (catalog/read/mysql.rs).
#[tokio::test]
async fn mariadb_documented_differences() {
    use bindproxy::catalog::model::{ConstraintKind, Identity};
    let db = format!("bp_{}_cat_mydiff", std::process::id());
    let mut my = mysql_async::Conn::from_url(MARIADB).await.expect(
        "MariaDB must be running on 127.0.0.1:3306 (root, empty password): run scripts/test.sh",
    );
    my.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    my.query_drop(format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    my.query_drop(format!("USE {db}")).await.unwrap();
    let ddl = [
        "CREATE TABLE d1 (id serial PRIMARY KEY, at timestamp DEFAULT now(), \
           p int REFERENCES d1(id) ON DELETE RESTRICT, code varchar UNIQUE)",
        "CREATE TABLE d2 (n int GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
    ];
    for sql in translated(&ddl, Target::MySql) {
        my.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let url = format!("{MARIADB}/{db}");
    let bind = Bind::Translated(
        TranslatedBind::new(&cfg(
            "maria",
            BindUrl::MySql {
                url: url.clone(),
                display: url,
                tls: Default::default(),
            },
        ))
        .unwrap(),
    );
    let schema = read_bind(&bind).await.unwrap();
    let t = &schema.tables[0];
    let col = |n: &str| {
        schema
            .tables
            .iter()
            .flat_map(|t| t.columns.iter())
            .find(|c| c.name == n)
            .unwrap()
    };
    // serial and GENERATED ALWAYS both read as identity BY DEFAULT.
    assert_eq!(col("id").identity, Some(Identity::ByDefault));
    assert_eq!(col("id").default, None);
    assert_eq!(col("n").identity, Some(Identity::ByDefault));
    // now() reads as CURRENT_TIMESTAMP (the translator renders both alike).
    assert_eq!(col("at").default.as_deref(), Some("CURRENT_TIMESTAMP"));
    // An unbounded varchar in a key is VARCHAR(255) on MySQL.
    assert_eq!(col("code").type_sql, "character varying(255)");
    // RESTRICT reads as NO ACTION.
    let fk = t
        .constraints
        .iter()
        .find_map(|c| match &c.kind {
            ConstraintKind::ForeignKey(fk) => Some(fk),
            _ => None,
        })
        .unwrap();
    assert_eq!(fk.on_delete, "NO ACTION");
    my.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
    let _ = my.disconnect().await;
}
