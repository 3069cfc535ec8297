//! Execution tests: translated statements run on real engines (SQLite in memory via rusqlite, and
//! MariaDB at 127.0.0.1:3306 as root without password via mysql_async). A missing MariaDB fails.

use bindproxy::translate::{
    pg_type_from_mysql_comment, pg_type_from_sqlite_decltype, rewrite_sql, Kind, Target,
    TranslateError, MYSQL_SESSION_SETUP, SQLITE_SESSION_SETUP,
};

#[derive(Clone, Debug)]
enum P {
    Int(i64),
    Text(String),
}

fn t(s: &str) -> P {
    P::Text(s.to_string())
}

#[derive(Debug, Default)]
struct Out {
    rows: Vec<Vec<String>>,
    affected: u64,
}

trait Engine {
    fn target(&self) -> Target;
    async fn raw(&mut self, sql: &str, params: Vec<P>) -> Result<Out, String>;
}

async fn try_run<E: Engine>(e: &mut E, pg: &str, params: &[P]) -> Result<Out, String> {
    let rs = rewrite_sql(pg, e.target()).map_err(|e| format!("translate: {e}"))?;
    assert_eq!(rs.len(), 1, "{pg}");
    let r = &rs[0];
    for b in &r.before {
        e.raw(b, vec![]).await?;
    }
    let ps = r.params.iter().map(|&i| params[i].clone()).collect();
    e.raw(&r.sql, ps)
        .await
        .map_err(|err| format!("{err}\n  pg: {pg}\n  sql: {}", r.sql))
}

async fn run<E: Engine>(e: &mut E, pg: &str, params: &[P]) -> Out {
    match try_run(e, pg, params).await {
        Ok(o) => o,
        Err(err) => panic!("{:?}: {err}", e.target()),
    }
}

async fn rows<E: Engine>(e: &mut E, pg: &str, params: &[P]) -> Vec<Vec<String>> {
    run(e, pg, params).await.rows
}

fn col(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| r[0].clone()).collect()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

// ------------------------------------------------------------------ SQLite

struct Sqlite(rusqlite::Connection);

impl Engine for Sqlite {
    fn target(&self) -> Target {
        Target::Sqlite
    }
    async fn raw(&mut self, sql: &str, params: Vec<P>) -> Result<Out, String> {
        use rusqlite::types::{Value, ValueRef};
        let vals: Vec<Value> = params
            .into_iter()
            .map(|p| match p {
                P::Int(i) => Value::Integer(i),
                P::Text(s) => Value::Text(s),
            })
            .collect();
        let mut stmt = self.0.prepare(sql).map_err(|e| e.to_string())?;
        let n = stmt.column_count();
        if n == 0 {
            let affected = stmt
                .execute(rusqlite::params_from_iter(vals))
                .map_err(|e| e.to_string())?;
            return Ok(Out {
                rows: vec![],
                affected: affected as u64,
            });
        }
        let mut out = Out::default();
        let mut rs = stmt
            .query(rusqlite::params_from_iter(vals))
            .map_err(|e| e.to_string())?;
        while let Some(row) = rs.next().map_err(|e| e.to_string())? {
            let mut r = Vec::new();
            for i in 0..n {
                r.push(match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => "NULL".into(),
                    ValueRef::Integer(i) => i.to_string(),
                    ValueRef::Real(f) => f.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    ValueRef::Blob(b) => format!(
                        "\\x{}",
                        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                    ),
                });
            }
            out.rows.push(r);
        }
        drop(rs);
        out.affected = self.0.changes();
        Ok(out)
    }
}

fn sqlite() -> Sqlite {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    for s in SQLITE_SESSION_SETUP {
        c.execute_batch(s).unwrap();
    }
    // The range checks bindproxy registers on every SQLite connection (identity here: these
    // statements stay in range; tests/python/test_differential.py checks the errors).
    for ty in bindproxy::translate::SQLITE_RANGE_TYPES {
        c.create_scalar_function(
            bindproxy::translate::sqlite_range_function(ty).as_str(),
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            |ctx| ctx.get::<rusqlite::types::Value>(0),
        )
        .unwrap();
    }
    Sqlite(c)
}

// ------------------------------------------------------------------ MariaDB

struct My(mysql_async::Conn);

fn my_str(v: mysql_async::Value) -> String {
    use mysql_async::Value as V;
    match v {
        V::NULL => "NULL".into(),
        V::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Float(f) => f.to_string(),
        V::Double(d) => d.to_string(),
        V::Date(y, m, d, 0, 0, 0, 0) => format!("{y:04}-{m:02}-{d:02}"),
        V::Date(y, m, d, h, mi, s, us) => {
            format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        V::Time(neg, d, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if neg { "-" } else { "" },
            d * 24 + h as u32
        ),
    }
}

impl Engine for My {
    fn target(&self) -> Target {
        Target::MySql
    }
    async fn raw(&mut self, sql: &str, params: Vec<P>) -> Result<Out, String> {
        use mysql_async::prelude::*;
        let rows: Vec<mysql_async::Row> = if params.is_empty() {
            self.0.query(sql).await.map_err(|e| e.to_string())?
        } else {
            let ps: Vec<mysql_async::Value> = params
                .into_iter()
                .map(|p| match p {
                    P::Int(i) => mysql_async::Value::Int(i),
                    P::Text(s) => mysql_async::Value::Bytes(s.into_bytes()),
                })
                .collect();
            self.0.exec(sql, ps).await.map_err(|e| e.to_string())?
        };
        let affected = self.0.affected_rows();
        Ok(Out {
            rows: rows
                .into_iter()
                .map(|r| r.unwrap().into_iter().map(my_str).collect())
                .collect(),
            affected,
        })
    }
}

async fn mariadb(db: &str) -> My {
    use mysql_async::prelude::*;
    let opts = mysql_async::Opts::from_url("mysql://root@127.0.0.1:3306").unwrap();
    let mut c = mysql_async::Conn::new(opts)
        .await
        .expect("MariaDB must be running at 127.0.0.1:3306 (user root, no password)");
    c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("USE {db}")).await.unwrap();
    for s in MYSQL_SESSION_SETUP {
        c.query_drop(*s).await.unwrap();
    }
    My(c)
}

// ------------------------------------------------------------------ the scenario, on both engines

async fn scenario<E: Engine>(e: &mut E) {
    let tg = e.target();
    // SQLAlchemy create_all, exactly as emitted for PostgreSQL.
    run(e, "DROP TABLE IF EXISTS public.sa_book", &[]).await;
    run(e, "DROP TABLE IF EXISTS sa_author", &[]).await;
    let ddl = run(
        e,
        "CREATE TABLE sa_author (\n\t\tid SERIAL NOT NULL, \n\t\tname VARCHAR(100) NOT NULL, \n\t\tPRIMARY KEY (id)\n\t)",
        &[],
    )
    .await;
    assert_eq!(ddl.rows.len(), 0);
    run(e, "CREATE INDEX ix_sa_author_name ON sa_author (name)", &[]).await;
    run(
        e,
        "CREATE TABLE public.sa_book (\n\t\tid SERIAL NOT NULL, \n\t\ttitle VARCHAR(200), \n\t\tauthor_id INTEGER, \n\t\tprice NUMERIC(10, 2), \n\t\tPRIMARY KEY (id), \n\t\tFOREIGN KEY(author_id) REFERENCES sa_author (id)\n\t)",
        &[],
    )
    .await;

    // INSERT … RETURNING generated keys (native on MariaDB ≥ 10.5 and SQLite).
    let r = rows(
        e,
        "INSERT INTO sa_author (name) VALUES ($1::VARCHAR) RETURNING sa_author.id",
        &[t("alice")],
    )
    .await;
    assert_eq!(r, vec![vec!["1".to_string()]]);
    let r = rows(
        e,
        "INSERT INTO sa_author (name) VALUES ($1::VARCHAR) RETURNING sa_author.id",
        &[t("bob")],
    )
    .await;
    assert_eq!(r, vec![vec!["2".to_string()]]);
    let r = rows(
        e,
        "INSERT INTO public.sa_book (title, author_id, price) VALUES ('t', 1, 1.5) RETURNING public.sa_book.id",
        &[],
    )
    .await;
    assert_eq!(col(&r), ["1"]);
    // Foreign key enforced.
    assert!(try_run(
        e,
        "INSERT INTO sa_book (title, author_id) VALUES ('x', 99)",
        &[]
    )
    .await
    .is_err());

    let r = rows(
        e,
        "SELECT public.sa_book.title, sa_author.name \n\tFROM public.sa_book JOIN sa_author ON public.sa_book.author_id = sa_author.id \n\tWHERE sa_author.name LIKE 'a%' ORDER BY public.sa_book.id \n\t LIMIT 10",
        &[],
    )
    .await;
    assert_eq!(r, vec![vec!["t".to_string(), "alice".to_string()]]);
    let o = run(
        e,
        "UPDATE public.sa_book SET price=(public.sa_book.price + 1) WHERE public.sa_book.id = $1",
        &[P::Int(1)],
    )
    .await;
    assert_eq!(o.affected, 1);
    let r = rows(e, "SELECT price FROM sa_book WHERE id = 1", &[]).await;
    assert_eq!(num(&r[0][0]), 2.5);
    let o = run(
        e,
        "DELETE FROM public.sa_book WHERE public.sa_book.title = 'zzz'",
        &[],
    )
    .await;
    assert_eq!(o.affected, 0);

    // LIKE is case-sensitive, ILIKE is not (as in PostgreSQL).
    assert!(
        rows(e, "SELECT name FROM sa_author WHERE name LIKE 'ALI%'", &[])
            .await
            .is_empty()
    );
    assert_eq!(
        col(&rows(
            e,
            "SELECT name FROM sa_author WHERE name ILIKE $1",
            &[t("ALI%")]
        )
        .await),
        ["alice"]
    );
    assert_eq!(
        col(&rows(
            e,
            "SELECT name FROM sa_author WHERE name NOT ILIKE 'ALI%'",
            &[]
        )
        .await),
        ["bob"]
    );
    assert_eq!(
        col(&rows(e, "SELECT name FROM sa_author WHERE name = 'Alice'", &[]).await),
        Vec::<String>::new()
    );
    // Backslash is an ordinary character in LIKE patterns only when escaped.
    assert_eq!(
        col(&rows(
            e,
            "SELECT count(*) FROM sa_author WHERE name LIKE 'a\\%'",
            &[]
        )
        .await),
        ["0"]
    );

    // Casts, concatenation, booleans.
    let r = rows(e, "SELECT '42'::int + 1, CAST('2024-01-02' AS date), 'a' || name || 'z' FROM sa_author WHERE id = 1", &[]).await;
    assert_eq!(r[0][0], "43");
    assert_eq!(r[0][1], "2024-01-02");
    assert_eq!(r[0][2], "aalicez");
    let r = rows(e, "SELECT 'x' || NULL IS NULL", &[]).await;
    assert_eq!(r[0][0], "1");
    run(e, "DROP TABLE IF EXISTS flags", &[]).await;
    run(e, "CREATE TABLE flags (id integer PRIMARY KEY, active boolean NOT NULL DEFAULT false, note text)", &[]).await;
    run(
        e,
        "INSERT INTO flags (id, active) VALUES (1, true), (2, FALSE)",
        &[],
    )
    .await;
    run(e, "INSERT INTO flags (id, active) VALUES (3, DEFAULT)", &[]).await;
    assert_eq!(
        col(&rows(e, "SELECT id FROM flags WHERE active = true", &[]).await),
        ["1"]
    );
    assert_eq!(
        col(&rows(
            e,
            "SELECT id FROM flags WHERE active IS NOT TRUE ORDER BY id",
            &[]
        )
        .await),
        ["2", "3"]
    );
    assert_eq!(
        col(&rows(e, "SELECT id FROM flags WHERE active = 't'::boolean", &[]).await),
        ["1"]
    );

    // NULL placement follows PostgreSQL: NULLs last ascending, first descending.
    run(
        e,
        "INSERT INTO flags (id, note) VALUES (4, 'b'), (5, 'a')",
        &[],
    )
    .await;
    let asc = col(&rows(
        e,
        "SELECT id FROM flags WHERE id > 2 ORDER BY note, id",
        &[],
    )
    .await);
    assert_eq!(asc, ["5", "4", "3"]);
    let desc = col(&rows(
        e,
        "SELECT id FROM flags WHERE id > 2 ORDER BY note DESC, id",
        &[],
    )
    .await);
    assert_eq!(desc, ["3", "4", "5"]);

    // LIMIT / OFFSET with parameters.
    assert_eq!(
        col(&rows(
            e,
            "SELECT id FROM flags ORDER BY id LIMIT $1 OFFSET $2",
            &[P::Int(2), P::Int(1)]
        )
        .await),
        ["2", "3"]
    );
    assert_eq!(
        col(&rows(e, "SELECT id FROM flags ORDER BY id OFFSET 3", &[]).await),
        ["4", "5"]
    );
    assert_eq!(
        col(&rows(
            e,
            "SELECT id FROM flags ORDER BY id FETCH FIRST 1 ROWS ONLY",
            &[]
        )
        .await),
        ["1"]
    );

    // ON CONFLICT both ways.
    run(e, "DROP TABLE IF EXISTS kv", &[]).await;
    run(
        e,
        "CREATE TABLE kv (k varchar(50) PRIMARY KEY, v text, n integer DEFAULT 0)",
        &[],
    )
    .await;
    run(
        e,
        "INSERT INTO kv (k, v) VALUES ($1, $2)",
        &[t("a"), t("one")],
    )
    .await;
    let o = run(
        e,
        "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING",
        &[t("a"), t("two")],
    )
    .await;
    assert_eq!(o.affected, 0);
    assert_eq!(
        col(&rows(e, "SELECT v FROM kv WHERE k = 'a'", &[]).await),
        ["one"]
    );
    run(
        e,
        "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = kv.n + 1",
        &[t("a"), t("three")],
    )
    .await;
    assert_eq!(
        rows(e, "SELECT v, n FROM kv WHERE k = 'a'", &[]).await,
        vec![vec!["three".to_string(), "1".to_string()]]
    );
    // Duplicate key is still an error without ON CONFLICT.
    assert!(try_run(e, "INSERT INTO kv (k, v) VALUES ('a', 'x')", &[])
        .await
        .is_err());

    // Savepoints.
    run(e, "BEGIN", &[]).await;
    run(e, "INSERT INTO kv (k, v) VALUES ('s1', 'kept')", &[]).await;
    run(e, "SAVEPOINT sp", &[]).await;
    run(e, "INSERT INTO kv (k, v) VALUES ('s2', 'undone')", &[]).await;
    run(e, "ROLLBACK TO SAVEPOINT sp", &[]).await;
    run(e, "RELEASE SAVEPOINT sp", &[]).await;
    run(e, "COMMIT", &[]).await;
    assert_eq!(
        col(&rows(e, "SELECT k FROM kv WHERE k LIKE 's%' ORDER BY k", &[]).await),
        ["s1"]
    );
    run(e, "BEGIN ISOLATION LEVEL SERIALIZABLE", &[]).await;
    run(e, "DELETE FROM kv WHERE k = 's1'", &[]).await;
    run(e, "ROLLBACK", &[]).await;
    assert_eq!(
        col(&rows(e, "SELECT k FROM kv WHERE k = 's1'", &[]).await),
        ["s1"]
    );

    // DELETE … RETURNING (native on both).
    let r = rows(e, "DELETE FROM kv WHERE k = $1 RETURNING kv.v", &[t("s1")]).await;
    assert_eq!(col(&r), ["kept"]);

    // Literal text is verbatim: backslashes and quotes.
    run(e, "INSERT INTO kv (k, v) VALUES ('bs', 'a\\b''c')", &[]).await;
    assert_eq!(
        col(&rows(e, "SELECT v FROM kv WHERE k = 'bs'", &[]).await),
        ["a\\b'c"]
    );
    assert_eq!(
        col(&rows(e, "SELECT length(v) FROM kv WHERE k = 'bs'", &[]).await),
        ["5"]
    );

    // Types that must map back: uuid, json, timestamptz, bytea.
    run(e, "DROP TABLE IF EXISTS typed", &[]).await;
    run(
        e,
        "CREATE TABLE typed (id BIGSERIAL PRIMARY KEY, u UUID, j JSONB, ts TIMESTAMP WITH TIME ZONE DEFAULT now(), d DATE DEFAULT CURRENT_DATE, b BYTEA, f DOUBLE PRECISION, ok BOOLEAN)",
        &[],
    )
    .await;
    let r = rows(
        e,
        "INSERT INTO typed (u, j, f, ok) VALUES ($1, $2, 1.25, true) RETURNING id, ts IS NOT NULL",
        &[t("5f0c6b8e-2a43-4c2b-9a1e-0d6e0b7f4c11"), t("{\"a\": 1}")],
    )
    .await;
    assert_eq!(r[0][0], "1");
    assert_eq!(r[0][1], "1");
    let r = rows(
        e,
        "SELECT u, j, f, ok FROM typed WHERE u = $1",
        &[t("5f0c6b8e-2a43-4c2b-9a1e-0d6e0b7f4c11")],
    )
    .await;
    assert_eq!(r[0][0], "5f0c6b8e-2a43-4c2b-9a1e-0d6e0b7f4c11");
    assert!(r[0][1].contains("\"a\""));
    assert_eq!(num(&r[0][2]), 1.25);
    assert_eq!(r[0][3], "1");

    // Aggregates, window functions, subqueries, CTE.
    let r = rows(
        e,
        "WITH x AS (SELECT id, name FROM sa_author) SELECT name, row_number() OVER (ORDER BY id DESC) FROM x WHERE id IN (SELECT author_id FROM sa_book) OR name = 'bob' ORDER BY name",
        &[],
    )
    .await;
    assert_eq!(
        r,
        vec![
            vec!["alice".to_string(), "2".to_string()],
            vec!["bob".to_string(), "1".to_string()]
        ]
    );
    let r = rows(
        e,
        "SELECT count(*), max(id), coalesce(NULL, 'z') FROM sa_author",
        &[],
    )
    .await;
    assert_eq!(r[0], ["2", "2", "z"]);

    // Unsupported constructs are rejected before anything runs.
    let rej = |sql: &str| match rewrite_sql(sql, tg) {
        Err(TranslateError::Unsupported { construct }) => construct,
        other => panic!("{sql}: expected Unsupported, got {other:?}"),
    };
    rej("SELECT DISTINCT ON (name) name FROM sa_author");
    rej("COPY sa_author FROM STDIN");
    rej("LISTEN foo");
    rej("SELECT 'sa_author'::regclass");
    if tg == Target::MySql {
        assert!(rej("UPDATE sa_author SET name = 'x' RETURNING id").contains("RETURNING on UPDATE"));
    } else {
        assert!(rej("SELECT * FROM sa_author FOR UPDATE").contains("SQLite"));
        let r = rows(
            e,
            "UPDATE sa_author SET name = 'al' WHERE id = 1 RETURNING id, name",
            &[],
        )
        .await;
        assert_eq!(r, vec![vec!["1".to_string(), "al".to_string()]]);
    }

    // drop_all.
    run(e, "DROP TABLE public.sa_book", &[]).await;
    run(e, "DROP TABLE sa_author", &[]).await;
    assert!(try_run(e, "SELECT * FROM sa_author", &[]).await.is_err());
}

#[tokio::test]
async fn sqlite_executes_translated_sql() {
    let mut e = sqlite();
    scenario(&mut e).await;
    // The declared types keep the PostgreSQL names.
    let mut st =
        e.0.prepare("SELECT name, type FROM pragma_table_info('typed')")
            .unwrap();
    let types: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    let mapped: Vec<(&str, &str)> = types
        .iter()
        .map(|(n, t)| (n.as_str(), pg_type_from_sqlite_decltype(t)))
        .collect();
    assert_eq!(
        mapped,
        [
            ("id", "int4"),
            ("u", "uuid"),
            ("j", "jsonb"),
            ("ts", "timestamptz"),
            ("d", "date"),
            ("b", "bytea"),
            ("f", "float8"),
            ("ok", "bool")
        ]
    );
}

#[tokio::test]
async fn mariadb_executes_translated_sql() {
    use mysql_async::prelude::*;
    let db = format!("bindproxy_xlate_test_{}", std::process::id());
    let mut e = mariadb(&db).await;
    scenario(&mut e).await;
    let comments: Vec<(String, String)> = e
        .0
        .exec(
            "SELECT COLUMN_NAME, COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'typed' ORDER BY ORDINAL_POSITION",
            (db.clone(),),
        )
        .await
        .unwrap();
    let mapped: Vec<(&str, Option<&str>)> = comments
        .iter()
        .map(|(n, c)| (n.as_str(), pg_type_from_mysql_comment(c)))
        .collect();
    assert_eq!(
        mapped,
        [
            ("id", Some("int8")),
            ("u", Some("uuid")),
            ("j", Some("jsonb")),
            ("ts", Some("timestamptz")),
            ("d", Some("date")),
            ("b", Some("bytea")),
            ("f", Some("float8")),
            ("ok", Some("bool"))
        ]
    );
    // DROP INDEX needs the table on MySQL.
    run(&mut e, "CREATE TABLE ix_t (a integer)", &[]).await;
    run(&mut e, "CREATE INDEX ix_a ON ix_t (a)", &[]).await;
    let r = &rewrite_sql("DROP INDEX ix_a", Target::MySql).unwrap()[0];
    assert_eq!(r.kind, Kind::DropIndex);
    let lookup = r.drop_index_lookup.clone().unwrap();
    let table: Option<String> = e
        .0
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?",
            (lookup.index.clone(),),
        )
        .await
        .unwrap();
    e.0.query_drop(bindproxy::translate::mysql_drop_index_sql(
        &lookup.index,
        &table.unwrap(),
    ))
    .await
    .unwrap();
    e.0.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}
