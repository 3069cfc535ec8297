//! The analysis cache shared by every session.
//!
//! Owns: [`AnalysisCache`], a bounded LRU from the normalised text of a query string (literal
//! values replaced, see `normalize.rs`) to its [`Analysis`], sharded into independently locked
//! parts so that concurrent sessions rarely wait on one another; each lock is held only for one
//! map lookup or insert.
//!
//! An analysis that read a relation name, a body or a setting out of a string literal
//! (`nextval('orders_id_seq')`, `'users'::regclass`, `DO $$…$$`, `SET search_path`) must not be
//! shared between texts that differ in that literal: it is stored under its exact text only, and
//! every lookup tries the exact text first.
//!
//! Must never: parse while holding a lock, grow without bound, or cache very long texts (bulk
//! INSERTs), which are analysed every time instead.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::analysis::{analyze_inner, Analysis};
use super::normalize::{exact_into, normalize_into};

/// Texts longer than this are analysed without the cache.
const MAX_CACHED_BYTES: usize = 32 * 1024;
const SHARDS: usize = 16;

/// A bounded, thread-safe LRU of query analyses keyed by normalised SQL text.
pub struct AnalysisCache {
    shards: Vec<Mutex<LruCache<String, Arc<Analysis>>>>,
    hasher: std::hash::RandomState,
}

thread_local! {
    /// The key being looked up, reused so that a hit allocates nothing.
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

impl AnalysisCache {
    /// A cache holding about `capacity` entries (at least one per shard).
    pub fn new(capacity: usize) -> AnalysisCache {
        let per_shard =
            NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        AnalysisCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|g| g.len()).unwrap_or(0))
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> &Mutex<LruCache<String, Arc<Analysis>>> {
        let mut h = self.hasher.build_hasher();
        h.write(key.as_bytes());
        let i = (h.finish() as usize) % SHARDS;
        &self.shards[i]
    }

    fn get(&self, key: &str) -> Option<Arc<Analysis>> {
        let mut guard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        guard.get(key).map(Arc::clone)
    }

    fn put(&self, key: String, entry: Arc<Analysis>) {
        let mut guard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        guard.put(key, entry);
    }

    /// The analysis of `sql`, from the cache when an equivalent text was analysed before.
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        if sql.len() > MAX_CACHED_BYTES {
            crate::metrics::route_decision(true);
            return Arc::new(analyze_inner(sql).0);
        }
        KEY.with(|cell| match cell.try_borrow_mut() {
            Ok(mut key) => self.analyze_with(sql, &mut key),
            Err(_) => self.analyze_with(sql, &mut String::new()),
        })
    }

    /// Lookup order: the exact text (statements without literals, prepared statements, analyses
    /// that depend on a literal), then the literal-free key from PostgreSQL's scanner.
    fn analyze_with(&self, sql: &str, key: &mut String) -> Arc<Analysis> {
        exact_into(sql, key);
        if let Some(a) = self.get(key) {
            crate::metrics::route_decision(false);
            return a;
        }
        let normalised = normalize_into(sql, key);
        if normalised {
            if let Some(a) = self.get(key) {
                crate::metrics::route_decision(false);
                return a;
            }
        }
        crate::metrics::route_decision(true);
        let (analysis, literal_names) = analyze_inner(sql);
        let analysis = Arc::new(analysis);
        if !normalised || literal_names {
            exact_into(sql, key);
        }
        self.put(key.clone(), Arc::clone(&analysis));
        analysis
    }
}

impl Default for AnalysisCache {
    /// 4096 entries.
    fn default() -> Self {
        AnalysisCache::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn tables(a: &Analysis) -> Vec<String> {
        a.all_tables().iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn literals_share_an_entry() {
        let c = AnalysisCache::new(100);
        let a = c.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1;");
        let b = c.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 99999;");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(c.len(), 1);
        assert_eq!(tables(&b), ["pgbench_accounts"]);
        let d = c.analyze("SELECT * FROM t WHERE name = 'x'");
        let e = c.analyze("SELECT * FROM t WHERE name = 'y'");
        assert!(Arc::ptr_eq(&d, &e));
    }

    #[test]
    fn literal_table_names_are_not_shared() {
        let c = AnalysisCache::new(100);
        let a = c.analyze("SELECT nextval('a_seq')");
        let b = c.analyze("SELECT nextval('b_seq')");
        assert_eq!(tables(&a), ["a_seq"]);
        assert_eq!(tables(&b), ["b_seq"]);
        // and both are cached under their exact text
        let a2 = c.analyze("SELECT nextval('a_seq')");
        assert!(Arc::ptr_eq(&a, &a2));
        // an OID-looking literal first must not poison a later name
        let o = c.analyze("SELECT 1 FROM pg_class WHERE oid = '16385'::regclass");
        let u = c.analyze("SELECT 1 FROM pg_class WHERE oid = 'users'::regclass");
        assert_eq!(tables(&o), ["pg_class"]);
        assert_eq!(tables(&u), ["pg_class", "users"]);
        let s1 = c.analyze("SELECT pg_catalog.setval('public.orders_id_seq', 1, false)");
        let s2 = c.analyze("SELECT pg_catalog.setval('public.users_id_seq', 1, false)");
        assert_eq!(tables(&s1), ["public.orders_id_seq"]);
        assert_eq!(tables(&s2), ["public.users_id_seq"]);
    }

    #[test]
    fn bounded() {
        let c = AnalysisCache::new(32);
        for i in 0..1000 {
            c.analyze(&format!("SELECT * FROM t{i}"));
        }
        assert!(c.len() <= 32 + SHARDS);
        let long = format!("INSERT INTO t VALUES {}", vec!["(1)"; 20000].join(","));
        assert_eq!(tables(&c.analyze(&long)), ["t"]);
    }

    #[test]
    fn threads() {
        let c = Arc::new(AnalysisCache::new(64));
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let a =
                            c.analyze(&format!("SELECT * FROM t{} WHERE x = {i}", (i + t) % 10));
                        assert_eq!(a.statements.len(), 1);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
    }

    #[test]
    fn random_input_never_panics() {
        // xorshift; an alphabet of SQL's special characters, keywords and multibyte text
        let pieces = [
            "'", "\"", "$", "$$", "$a$", "E'", "\\", "--", "\n", "/*", "*/", "(", ")", ";", ",",
            ".", "::", "1", "1.5e", "x", "é", "ü1", " ", "SELECT", "FROM", "ONLY", "DO",
            "nextval(", "regclass", "JOIN", "INTO", "TABLE", "COPY", "ON", "\u{1}", "0x", "U&'",
            "WITH", "AS",
        ];
        let c = AnalysisCache::new(64);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5_000 {
            let mut sql = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..(x % 24) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                sql.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            let cached = c.analyze(&sql);
            assert_eq!(*cached, analyze_inner(&sql).0, "{sql:?}");
        }
    }

    /// `cargo test --release --lib cache_hit_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cache_hit_cost() {
        let c = AnalysisCache::default();
        let texts: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
                    i * 7919 + 1
                )
            })
            .collect();
        c.analyze(&texts[0]);
        let n = 2_000_000;
        let t = Instant::now();
        for i in 0..n {
            std::hint::black_box(c.analyze(std::hint::black_box(&texts[i % texts.len()])));
        }
        let hit = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        let m = 2000;
        for i in 0..m {
            std::hint::black_box(analyze_inner(&texts[i % texts.len()]));
        }
        let miss = t.elapsed().as_nanos() as f64 / m as f64;
        println!("cache hit: {hit:.0} ns per statement; uncached analysis: {miss:.0} ns");
    }
}
