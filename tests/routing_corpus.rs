//! Table extraction and routing over the captured client corpora in tests/fixtures/corpus, checked
//! against the expectations written by hand in tests/fixtures/corpus_expected.txt.

use std::collections::BTreeMap;
use std::path::Path;

use bindproxy::router::{default_search_path, Router, SearchPathView};
use bindproxy::sql::{analyze_uncached, AnalysisCache};

const FILES: &[&str] = &[
    "asyncpg.sql",
    "manual.sql",
    "pgdump.sql",
    "psql.sql",
    "sqlalchemy.sql",
];

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The `;;;;`-separated chunks of a corpus file (a blank remainder after the last separator is
/// not a chunk).
fn chunks(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("corpus").join(file)).expect("corpus file");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        // psql meta-commands (pg_dump's `\restrict`) are psql's, never sent to a server
        if line.starts_with('\\') {
            continue;
        }
        if line == ";;;;" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

struct Expected {
    /// per statement, sorted relation names
    statements: Vec<Vec<String>>,
}

fn expectations() -> BTreeMap<(String, usize), Expected> {
    let text =
        std::fs::read_to_string(fixtures().join("corpus_expected.txt")).expect("expectations");
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, tables) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {}: no colon", n + 1));
        let mut words = head.split_whitespace();
        let file = words.next().expect("file").to_owned();
        let idx: usize = words.next().expect("index").parse().expect("numeric index");
        let tables = tables.trim();
        let statements = if tables.is_empty() {
            vec![]
        } else {
            tables
                .split(" | ")
                .map(|s| {
                    let s = s.trim();
                    let mut v: Vec<String> = if s == "-" {
                        vec![]
                    } else {
                        s.split(", ").map(|t| t.trim().to_owned()).collect()
                    };
                    v.sort();
                    v
                })
                .collect()
        };
        let prev = out.insert((file.clone(), idx), Expected { statements });
        assert!(prev.is_none(), "duplicate expectation {file} {idx}");
    }
    out
}

fn actual(sql: &str) -> Vec<Vec<String>> {
    let a = analyze_uncached(sql);
    assert_eq!(
        a.error, None,
        "PostgreSQL's parser rejects a corpus statement:\n{sql}"
    );
    let statements = a
        .statements
        .iter()
        .map(|s| {
            let mut v: Vec<String> = s.tables.iter().map(|t| t.to_string()).collect();
            v.sort();
            v
        })
        .collect();
    statements
}

#[test]
fn every_corpus_statement_has_the_expected_tables() {
    let mut expected = expectations();
    let mut failures = Vec::new();
    let mut count = 0;
    for file in FILES {
        for (idx, sql) in chunks(file).iter().enumerate() {
            count += 1;
            let Some(want) = expected.remove(&(file.to_string(), idx)) else {
                failures.push(format!("{file} {idx}: no expectation written"));
                continue;
            };
            let got = actual(sql);
            if got != want.statements {
                failures.push(format!(
                    "{file} {idx}: expected {:?}, got {:?}",
                    want.statements, got
                ));
            }
        }
    }
    for (file, idx) in expected.keys() {
        failures.push(format!(
            "{file} {idx}: expectation for a statement that does not exist"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {count} corpus statements differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count > 300, "corpus unexpectedly small: {count}");
}

#[test]
fn the_cache_agrees_with_uncached_analysis_on_the_whole_corpus() {
    let cache = AnalysisCache::new(10_000);
    let all: Vec<String> = FILES.iter().flat_map(|f| chunks(f)).collect();
    for _ in 0..2 {
        for sql in &all {
            assert_eq!(*cache.analyze(sql), analyze_uncached(sql), "{sql}");
        }
    }
}

fn sample_router() -> Router {
    let rules: Vec<(String, String)> = [
        ("users", "users_db"),
        ("v_users", "users_db"),
        ("orders", "orders_db"),
        ("mv_totals", "orders_db"),
        ("docs", "docs_db"),
        ("meas*", "meas_db"),
        ("sa_*", "sa_db"),
        ("reporting.*", "reporting_db"),
    ]
    .iter()
    .map(|(p, b)| (p.to_string(), b.to_string()))
    .collect();
    Router::new(&rules, "main", "public").expect("sample rules are valid")
}

/// `Ok(Some(bind))`, `Ok(None)` (no relation: transaction's or default bind), `Err(())` cross-bind.
fn route(r: &Router, sql: &str) -> Result<Option<String>, String> {
    let path = default_search_path();
    let view = SearchPathView {
        schemas: &path,
        default: &path,
        user: "app",
    };
    r.route(&analyze_uncached(sql), view)
        .map(|route| route.bind)
        .map_err(|e| e.to_string())
}

#[test]
fn pg_dump_of_a_mapped_table_lands_on_its_bind() {
    let r = sample_router();
    let chunks = chunks("pgdump.sql");
    let bind_of = |idx: usize| -> Option<&'static str> {
        match idx {
            // the schema of `reporting.*` goes where its tables are
            10 | 11 => Some("reporting_db"),
            0..=17 => None,
            18..=20 | 57 | 64 | 69 | 76 | 79 => Some("docs_db"),
            21..=24 | 52 | 58 => Some("meas_db"),
            25..=31 | 53 | 59 | 65 | 70 | 82 => Some("orders_db"),
            32..=41 | 54 | 55 | 60 | 61 | 66 | 67 | 71 | 72 | 77 | 81 => Some("sa_db"),
            42..=49 | 56 | 62 | 68 | 73 | 74 | 78 => Some("users_db"),
            50 | 51 | 63 | 75 => Some("reporting_db"),
            _ => Some("CROSS"),
        }
    };
    for (idx, sql) in chunks.iter().enumerate() {
        let got = route(&r, sql);
        match bind_of(idx) {
            Some("CROSS") => assert!(
                got.is_err(),
                "pgdump {idx} should be rejected: {got:?}\n{sql}"
            ),
            want => assert_eq!(got, Ok(want.map(str::to_owned)), "pgdump {idx}:\n{sql}"),
        }
    }
    // the foreign key from orders to users crosses binds: rejected, naming both
    assert_eq!(
        route(&r, &chunks[80]),
        Err(
            "statement touches several binds: public.orders → orders_db, public.users → users_db; a single statement across binds (a cross-bind join) is not supported yet"
                .into()
        )
    );
}

#[test]
fn routing_of_hand_written_statements() {
    let r = sample_router();
    let cases: &[(&str, Result<Option<&str>, &str>)] = &[
        ("SELECT 1", Ok(None)),
        ("SHOW search_path", Ok(None)),
        ("SET search_path TO public, other", Ok(None)),
        ("select pg_catalog.version()", Ok(None)),
        ("SELECT * FROM pg_catalog.pg_class", Ok(None)),
        ("SELECT * FROM information_schema.columns", Ok(None)),
        ("SELECT * FROM pg_type", Ok(None)),
        ("SELECT c.oid::regclass FROM pg_class c WHERE c.oid = 'users'::regclass", Ok(Some("users_db"))),
        ("SELECT nextval('users_id_seq'), setval('users_id_seq', 10, false)", Ok(Some("users_db"))),
        ("ALTER SEQUENCE users_id_seq RESTART WITH 100", Ok(Some("users_db"))),
        ("DROP INDEX CONCURRENTLY IF EXISTS users_name_idx", Ok(Some("users_db"))),
        ("ALTER INDEX users_name_idx RENAME TO users_name_idx2", Ok(Some("users_db"))),
        ("CLUSTER users USING users_pkey", Ok(Some("users_db"))),
        ("VACUUM (VERBOSE, ANALYZE) users", Ok(Some("users_db"))),
        ("SELECT * FROM ONLY users", Ok(Some("users_db"))),
        ("TABLE users", Ok(Some("users_db"))),
        ("SELECT * FROM Users", Ok(Some("users_db"))),
        ("SELECT * FROM \"Users\"", Ok(Some("main"))),
        ("SELECT * FROM reporting.\"Daily Stats\"", Ok(Some("reporting_db"))),
        ("SELECT * FROM things", Ok(Some("main"))),
        ("SELECT * FROM generate_series(1, 10) AS g(i)", Ok(None)),
        ("INSERT INTO sa_author (name) VALUES ($1::VARCHAR) RETURNING sa_author.id", Ok(Some("sa_db"))),
        ("SELECT public.sa_book.title, sa_author.name FROM public.sa_book JOIN sa_author ON true", Ok(Some("sa_db"))),
        ("BEGIN; INSERT INTO users VALUES (1); COMMIT", Ok(Some("users_db"))),
        (
            "TRUNCATE users, orders RESTART IDENTITY CASCADE",
            Err("statement touches several binds: orders → orders_db, users → users_db; a single statement across binds (a cross-bind join) is not supported yet"),
        ),
        (
            "SELECT * FROM users WHERE id = 1; SELECT * FROM orders WHERE id = 2",
            Err("statement touches several binds: orders → orders_db, users → users_db; a single statement across binds (a cross-bind join) is not supported yet"),
        ),
        (
            "WITH upd AS (UPDATE orders SET total = total * 1.1 RETURNING *) INSERT INTO order_log SELECT * FROM upd",
            Err("statement touches several binds: order_log → main, orders → orders_db; a single statement across binds (a cross-bind join) is not supported yet"),
        ),
    ];
    for (sql, want) in cases {
        let want = want.map(|b| b.map(str::to_owned)).map_err(str::to_owned);
        assert_eq!(route(&r, sql), want, "{sql}");
    }
}

#[test]
fn catalog_and_client_probes_never_pick_a_bind() {
    let r = sample_router();
    for file in ["psql.sql", "asyncpg.sql"] {
        for sql in chunks(file) {
            assert_eq!(route(&r, &sql), Ok(None), "{sql}");
        }
    }
}

/// A second opinion on the relation walk: libpg_query's own table list (`ParseResult::tables`, which
/// drops every CTE name globally and so never lists more than the real tables) must be contained
/// in what bindproxy collects, for every corpus statement. A node type the walk misses shows up here.
#[test]
fn no_table_pg_query_sees_is_missed() {
    let mut checked = 0;
    for file in FILES {
        for sql in chunks(file) {
            let Ok(parsed) = pg_query::parse(&sql, 0) else {
                continue;
            };
            let mine: Vec<String> = analyze_uncached(&sql)
                .all_tables()
                .iter()
                .map(|t| match &t.schema {
                    Some(s) => format!("{s}.{}", t.name),
                    None => t.name.clone(),
                })
                .collect();
            for t in parsed.tables() {
                assert!(
                    mine.contains(&t),
                    "{file}: pg_query sees {t:?}, bindproxy only {mine:?}:\n{sql}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} tables compared");
}
