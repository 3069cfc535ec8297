//! What routing analysis costs per statement: uncached (PostgreSQL's parser and the relation
//! walk) and a cache hit (the literal-free key and one map lookup).
//!
//! ```sh
//! cargo run --release --example analysis_cost
//! ```
//!
//! Prints one line per statement: mean µs per uncached analysis and per cache hit (a different
//! literal each time, so that the hit goes through the normalised key as pgbench's do).

use std::time::Instant;

use bindproxy::sql::{analyze_uncached, AnalysisCache};

const STATEMENTS: &[(&str, &str)] = &[
    ("pgbench -S", "SELECT abalance FROM pgbench_accounts WHERE aid = {};"),
    (
        "ORM join",
        "SELECT users.id, users.name, orders.total FROM users JOIN orders ON orders.user_id = users.id WHERE users.id = {} AND orders.status = 'paid' ORDER BY orders.created_at DESC LIMIT 10",
    ),
    (
        "ORM insert",
        "INSERT INTO orders (user_id, total, status) VALUES ({}, 12.5, 'new') RETURNING orders.id",
    ),
    (
        "psql \\d lookup",
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) AND c.relkind <> {} ORDER BY 2, 3",
    ),
];

fn main() {
    let n = 20_000;
    println!("{:<16} {:>14} {:>12}", "statement", "uncached µs", "hit µs");
    for (name, template) in STATEMENTS {
        let texts: Vec<String> = (0..n)
            .map(|i| template.replace("{}", &i.to_string()))
            .collect();
        let t = Instant::now();
        for s in texts.iter().take(n / 10) {
            std::hint::black_box(analyze_uncached(s));
        }
        let uncached = t.elapsed().as_secs_f64() * 1e6 / (n / 10) as f64;
        let cache = AnalysisCache::new(4096);
        cache.analyze(&texts[0]);
        let t = Instant::now();
        for s in &texts {
            std::hint::black_box(cache.analyze(s));
        }
        let hit = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{name:<16} {uncached:>14.2} {hit:>12.2}");
    }
}
