//! Routing: which bind a statement goes to, from the relations it touches and the table rules.
//!
//! Owns: the table rules (`pattern → bind`, in file order), their validation at startup, the
//! lookup of one relation's bind ([`Router::bind_for_table`]) and the route of a whole analysed
//! query string ([`Router::route`]): one bind, no bind (no relations), or a cross-bind rejection.
//!
//! Must never: parse SQL (it reads [`crate::sql::Analysis`]), check that a bind exists (the
//! config loader does), or touch connections. The route of a whole query string, with the
//! session's `search_path`, routing hints and statements whose tables cannot be known, is in
//! `router/route.rs`.
//!
//! # Patterns
//! A pattern is `name` or `schema.name`; each part follows PostgreSQL identifier rules (unquoted
//! folds to lower case, `"Quoted"` keeps its case) and may be a glob (`*`, `?`, `[abc]`, via the
//! `glob` crate). A pattern without a schema means the default schema (usually `public`), and a
//! relation named without a schema is taken to be in the default schema, so `users` matches
//! `users` and `public.users`; `audit.*` matches every relation of schema `audit`.
//!
//! # Precedence (the overlap rule)
//! 1. An exact pattern (no wildcard in either part) always wins over globs. Two exact patterns
//!    naming the same relation (`users` and `public.users`) with different binds are a config
//!    error.
//! 2. Among globs that match, the most specific wins: the one with the most literal
//!    (non-wildcard) characters, counting the schema part (an omitted schema counts as the default
//!    schema written out). So `user_*` (public + 5) beats `*_log` (public + 4) for `user_log`, and
//!    `audit.log_*` beats `audit.*`.
//! 3. Two globs with the same number of literal characters and different binds that could both
//!    match one name are a config error, reported at startup. "Could both match" is decided from
//!    the literal prefix and suffix of each part: `a*` and `*b` overlap (`ab`), `a_*` and `b_*`
//!    cannot. This check may reject a pair that in fact never overlaps (`a*x*c` vs `a*y*c`);
//!    it never lets an ambiguous pair through. Equal globs for the same bind are fine.
//!
//! # Special relations
//! - Catalog relations (`pg_catalog.*`, `information_schema.*`, unqualified `pg_*`) are never
//!   looked up in the rules. Every database has its own catalog, so they are neutral: with user
//!   tables of one bind they go with those; alone, the route has no bind (the session uses the
//!   open transaction's bind, else the default bind).
//! - Unmapped relations go to the default bind.
//! - Sequences and indexes PostgreSQL names after their table (`orders_id_seq`, `orders_pkey`,
//!   `orders_user_id_fkey`, `users_name_idx`): when such a name is not mapped exactly, the owning
//!   table candidates from [`TableName::serial_owner_candidates`] are tried, so `nextval('orders_id_seq')`,
//!   `CREATE SEQUENCE orders_id_seq`, `ALTER SEQUENCE … OWNED BY` and `DROP INDEX orders_pkey` follow
//!   `orders`. Order: exact rule for the name, exact rule for a candidate (longest first), glob for
//!   the name, glob for a candidate.
//! - With a shadow catalog, what the catalog knows comes after the exact rules: an index or a
//!   sequence the catalog holds goes with its table (`DROP INDEX ix_users_email` follows `users`,
//!   whatever its name), and with `discover: true` an unmapped table found on exactly one bind goes
//!   there ([`KnownRelations`], learnt from every sync).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::sql::TableName;

mod place;
mod route;
mod why;
pub use place::{CatalogFollow, Placement, SessionView};
pub use route::{default_search_path, CrossBind, Route, RouteError, SearchPathView};
pub use why::{RouteReason, RuleRow};

/// What the shadow catalog taught the router: relations no rule names but the catalog knows.
#[derive(Debug, Default, Clone)]
pub struct KnownRelations {
    /// Index or sequence (schema-qualified) → its table (schema-qualified).
    pub owners: HashMap<TableName, TableName>,
    /// With `discover: true`: an unmapped table (schema-qualified) found on exactly one bind →
    /// that bind's name.
    pub discovered: HashMap<TableName, String>,
}

/// A table rule that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// The pattern is not `name` or `schema.name`.
    #[error("table pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// A part is not a valid glob.
    #[error("table pattern {pattern:?}: invalid glob: {reason}")]
    BadGlob {
        /// The pattern as written.
        pattern: String,
        /// The glob crate's message.
        reason: String,
    },
    /// Two exact patterns name the same relation with different binds.
    #[error("table patterns {first:?} and {second:?} both name {table} but map it to different binds ({first_bind}, {second_bind})")]
    Duplicate {
        /// The earlier pattern.
        first: String,
        /// Its bind.
        first_bind: String,
        /// The later pattern.
        second: String,
        /// Its bind.
        second_bind: String,
        /// The relation both name.
        table: String,
    },
    /// Two equally specific globs with different binds can match the same name.
    #[error("table patterns {first:?} (bind {first_bind}) and {second:?} (bind {second_bind}) can match the same table and neither is more specific; make one more specific (more literal characters) or map both to the same bind")]
    Overlap {
        /// The earlier pattern.
        first: String,
        /// Its bind.
        first_bind: String,
        /// The later pattern.
        second: String,
        /// Its bind.
        second_bind: String,
    },
}

/// One part of a pattern.
#[derive(Debug)]
enum Part {
    Exact(String),
    Glob {
        pattern: glob::Pattern,
        prefix: String,
        suffix: String,
        literal: usize,
    },
}

impl Part {
    fn literal(&self) -> usize {
        match self {
            Part::Exact(s) => s.chars().count(),
            Part::Glob { literal, .. } => *literal,
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Part::Exact(e) => e == s,
            Part::Glob { pattern, .. } => pattern.matches(s),
        }
    }

    /// Whether some string could match both parts (never false when one does).
    fn may_overlap(&self, other: &Part) -> bool {
        match (self, other) {
            (Part::Exact(a), Part::Exact(b)) => a == b,
            (Part::Exact(e), g @ Part::Glob { .. }) | (g @ Part::Glob { .. }, Part::Exact(e)) => {
                g.matches(e)
            }
            (
                Part::Glob {
                    prefix: p1,
                    suffix: s1,
                    ..
                },
                Part::Glob {
                    prefix: p2,
                    suffix: s2,
                    ..
                },
            ) => {
                (p1.starts_with(p2.as_str()) || p2.starts_with(p1.as_str()))
                    && (s1.ends_with(s2.as_str()) || s2.ends_with(s1.as_str()))
            }
        }
    }
}

#[derive(Debug)]
struct GlobRule {
    text: String,
    schema: Part,
    name: Part,
    specificity: usize,
    bind: usize,
}

/// Routes analysed statements to binds by the tables they touch.
#[derive(Debug)]
pub struct Router {
    binds: Vec<String>,
    default_bind: String,
    default_schema: String,
    /// schema → name → bind index
    exact: HashMap<String, HashMap<String, usize>>,
    /// most specific first, file order among equals
    globs: Vec<GlobRule>,
    /// Binds with a PostgreSQL catalog (PostgreSQL binds), which may answer catalog queries.
    catalog_binds: Vec<String>,
    /// The catalog bind (`catalog:`), which answers every catalog-only statement.
    catalog: Option<String>,
    /// Learnt from the shadow catalog; replaced whole after each sync.
    known: ArcSwap<KnownRelations>,
    /// (schema, name) of each exact rule → the pattern as written (`SHOW TABLES`).
    exact_patterns: HashMap<(String, String), String>,
}

/// Splits a pattern on `.` outside double quotes into (text, quoted) parts.
fn split_pattern(pattern: &str) -> Result<Vec<(String, bool)>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' if in_quotes => in_quotes = false,
            '"' if cur.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
            }
            '"' => return Err("a double quote in the middle of a name".into()),
            '.' if !in_quotes => {
                parts.push((std::mem::take(&mut cur), quoted));
                quoted = false;
            }
            _ if quoted && !in_quotes => return Err("text after a closing double quote".into()),
            _ => cur.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated double quote".into());
    }
    parts.push((cur, quoted));
    if parts.len() > 2 {
        return Err("expected `name` or `schema.name`".into());
    }
    if parts.iter().any(|(p, _)| p.is_empty()) {
        return Err("empty name".into());
    }
    Ok(parts)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Literal prefix, literal suffix and number of literal characters of a glob.
fn glob_literals(s: &str) -> (String, String, usize) {
    let chars: Vec<char> = s.chars().collect();
    let mut literal = 0;
    let mut first_meta = None;
    let mut last_meta_end = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' | '?' => {
                first_meta.get_or_insert(i);
                last_meta_end = i + 1;
                i += 1;
            }
            '[' => {
                first_meta.get_or_insert(i);
                // `[` `]`… `]`: a leading `]` (or `!]`) is part of the class
                let mut j = i + 1;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                last_meta_end = (j + 1).min(chars.len());
                i = j + 1;
            }
            _ => {
                literal += 1;
                i += 1;
            }
        }
    }
    let first = first_meta.unwrap_or(chars.len());
    let prefix: String = chars[..first].iter().collect();
    let suffix: String = chars[last_meta_end.min(chars.len())..].iter().collect();
    (prefix, suffix, literal)
}

fn make_part(pattern: &str, text: &str, quoted: bool) -> Result<Part, RuleError> {
    let folded = crate::sql::name::fold_ident(text, quoted);
    if !is_glob(&folded) {
        return Ok(Part::Exact(folded));
    }
    let compiled = glob::Pattern::new(&folded).map_err(|e| RuleError::BadGlob {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })?;
    let (prefix, suffix, literal) = glob_literals(&folded);
    Ok(Part::Glob {
        pattern: compiled,
        prefix,
        suffix,
        literal,
    })
}

impl Router {
    /// Builds a router from `(pattern, bind)` rules in file order. Patterns: `users`,
    /// `public.users`, `"User_*"`, `user_*`, `audit.*`. `default_schema` is the schema of
    /// unqualified names (usually `public`).
    pub fn new(
        rules: &[(String, String)],
        default_bind: &str,
        default_schema: &str,
    ) -> Result<Router, RuleError> {
        let mut binds: Vec<String> = vec![default_bind.to_owned()];
        let mut bind_index = |b: &str| match binds.iter().position(|x| x == b) {
            Some(i) => i,
            None => {
                binds.push(b.to_owned());
                binds.len() - 1
            }
        };
        let mut exact: HashMap<String, HashMap<String, usize>> = HashMap::new();
        let mut exact_origin: HashMap<(String, String), (String, usize)> = HashMap::new();
        let mut globs: Vec<GlobRule> = Vec::new();
        for (pattern, bind) in rules {
            let bind = bind_index(bind);
            let parts = split_pattern(pattern.trim()).map_err(|reason| RuleError::BadPattern {
                pattern: pattern.clone(),
                reason,
            })?;
            let (schema, name) = match parts.as_slice() {
                [(n, q)] => (
                    Part::Exact(default_schema.to_owned()),
                    make_part(pattern, n, *q)?,
                ),
                [(s, sq), (n, nq)] => (make_part(pattern, s, *sq)?, make_part(pattern, n, *nq)?),
                _ => {
                    return Err(RuleError::BadPattern {
                        pattern: pattern.clone(),
                        reason: "expected `name` or `schema.name`".into(),
                    })
                }
            };
            match (schema, name) {
                (Part::Exact(s), Part::Exact(n)) => {
                    let key = (s.clone(), n.clone());
                    if let Some((first, first_bind)) = exact_origin.get(&key) {
                        if *first_bind != bind {
                            return Err(RuleError::Duplicate {
                                first: first.clone(),
                                first_bind: binds[*first_bind].clone(),
                                second: pattern.clone(),
                                second_bind: binds[bind].clone(),
                                table: TableName::new(Some(&s), &n).to_string(),
                            });
                        }
                        continue;
                    }
                    exact_origin.insert(key, (pattern.clone(), bind));
                    exact.entry(s).or_default().insert(n, bind);
                }
                (schema, name) => {
                    let specificity = schema.literal() + name.literal();
                    let rule = GlobRule {
                        text: pattern.clone(),
                        schema,
                        name,
                        specificity,
                        bind,
                    };
                    for other in &globs {
                        if other.bind != rule.bind
                            && other.specificity == rule.specificity
                            && other.schema.may_overlap(&rule.schema)
                            && other.name.may_overlap(&rule.name)
                        {
                            return Err(RuleError::Overlap {
                                first: other.text.clone(),
                                first_bind: binds[other.bind].clone(),
                                second: rule.text.clone(),
                                second_bind: binds[rule.bind].clone(),
                            });
                        }
                    }
                    globs.push(rule);
                }
            }
        }
        // stable: file order among equally specific globs
        globs.sort_by_key(|g| std::cmp::Reverse(g.specificity));
        let exact_patterns = exact_origin
            .into_iter()
            .map(|(k, (pattern, _))| (k, pattern))
            .collect();
        Ok(Router {
            exact_patterns,
            binds,
            default_bind: default_bind.to_owned(),
            default_schema: default_schema.to_owned(),
            exact,
            globs,
            catalog_binds: Vec::new(),
            catalog: None,
            known: ArcSwap::from_pointee(KnownRelations::default()),
        })
    }

    /// Registers binds that no rule names, so that a routing hint can name them.
    pub fn with_binds<'a>(mut self, names: impl IntoIterator<Item = &'a String>) -> Router {
        for n in names {
            if !self.binds.contains(n) {
                self.binds.push(n.clone());
            }
        }
        self
    }

    /// Names the binds that have a PostgreSQL catalog (PostgreSQL binds): only they answer catalog
    /// queries about the tables they hold.
    pub fn with_catalog_binds<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Router {
        self.catalog_binds = names.into_iter().map(str::to_owned).collect();
        self
    }

    /// Names the catalog bind: catalog-only statements go there, and statements that mix catalog
    /// and user relations are refused.
    pub fn with_catalog(mut self, name: Option<&str>) -> Router {
        self.catalog = name.map(str::to_owned);
        self
    }

    /// Replaces what the catalog taught the router (after a sync).
    pub fn learn(&self, known: KnownRelations) {
        self.known.store(Arc::new(known));
    }

    /// What the catalog taught the router so far.
    pub fn known_relations(&self) -> Arc<KnownRelations> {
        self.known()
    }

    fn known(&self) -> Arc<KnownRelations> {
        // lock-free: read on the statement path for names no rule maps
        self.known.load_full()
    }

    /// The catalog bind, if there is one.
    pub fn catalog(&self) -> Option<&str> {
        self.catalog.as_deref()
    }

    pub(crate) fn has_catalog(&self, bind: &str) -> bool {
        self.catalog_binds.iter().any(|b| b == bind)
    }

    /// The default bind.
    pub fn default_bind(&self) -> &str {
        &self.default_bind
    }

    /// The schema of unqualified names in rules (usually `public`).
    pub fn default_schema(&self) -> &str {
        &self.default_schema
    }

    /// Bind index → name.
    pub(crate) fn bind_name(&self, idx: usize) -> &str {
        self.binds
            .get(idx)
            .map(String::as_str)
            .unwrap_or(&self.default_bind)
    }

    /// Whether any rule could place a relation in `schema` (the default schema always can).
    pub(crate) fn knows_schema(&self, schema: &str) -> bool {
        schema == self.default_schema
            || self.exact.contains_key(schema)
            || self.globs.iter().any(|g| g.schema.matches(schema))
            || (self.catalog.is_some()
                && self
                    .known()
                    .discovered
                    .keys()
                    .any(|t| t.schema.as_deref() == Some(schema)))
    }

    /// The binds that hold tables of `schema` as a whole: every bind a rule maps a name of it to,
    /// and the default bind unless a glob takes every name of it (`schema.*`).
    pub(crate) fn binds_of_schema(&self, schema: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .exact
            .get(schema)
            .map(|m| m.values().copied().collect())
            .unwrap_or_default();
        let mut whole = false;
        for g in self.globs.iter().filter(|g| g.schema.matches(schema)) {
            out.push(g.bind);
            whole |= matches!(&g.name, Part::Glob { pattern, .. } if pattern.as_str() == "*");
        }
        if !whole {
            out.push(0);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether a rule names this relation exactly (not through a glob or an owner candidate).
    pub(crate) fn is_mapped_exactly(&self, t: &TableName) -> bool {
        self.exact_bind(t).is_some()
    }

    pub(crate) fn exact_bind(&self, t: &TableName) -> Option<usize> {
        let schema = t.schema.as_deref().unwrap_or(&self.default_schema);
        self.exact.get(schema)?.get(&t.name).copied()
    }

    fn glob_bind(&self, t: &TableName) -> Option<usize> {
        let schema = t.schema.as_deref().unwrap_or(&self.default_schema);
        self.globs
            .iter()
            .find(|g| g.schema.matches(schema) && g.name.matches(&t.name))
            .map(|g| g.bind)
    }

    /// The bind the rules alone give a relation (exact, owner candidates, globs), without what the
    /// catalog knows.
    pub fn rule_bind(&self, t: &TableName) -> Option<usize> {
        let candidates = t.serial_owner_candidates();
        self.exact_bind(t)
            .or_else(|| candidates.iter().find_map(|c| self.exact_bind(c)))
            .or_else(|| self.glob_bind(t))
            .or_else(|| candidates.iter().find_map(|c| self.glob_bind(c)))
    }

    /// The bind a relation is mapped to, or `None` when it is unmapped or a catalog relation
    /// (the caller uses the default bind). See the module documentation for the precedence.
    pub fn bind_for_table(&self, t: &TableName) -> Option<&str> {
        if t.is_catalog() && !self.is_mapped_exactly(t) {
            return None;
        }
        if let Some(i) = self.exact_bind(t) {
            return self.binds.get(i).map(String::as_str);
        }
        let known = self.catalog.as_ref().map(|_| self.known());
        let qualified = || {
            TableName::new(
                Some(t.schema.as_deref().unwrap_or(&self.default_schema)),
                &t.name,
            )
        };
        if let Some(owner) = known.as_ref().and_then(|k| k.owners.get(&qualified())) {
            // an index or sequence of a table: where the table is
            if owner != t {
                return self.bind_for_table(&owner.clone());
            }
        }
        match self.rule_bind(t) {
            Some(i) => self.binds.get(i).map(String::as_str),
            None => {
                let found = known
                    .as_ref()
                    .and_then(|k| k.discovered.get(&qualified()).cloned())?;
                self.binds.iter().find(|b| **b == found).map(String::as_str)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(r: &[(&str, &str)]) -> Vec<(String, String)> {
        r.iter()
            .map(|(p, b)| (p.to_string(), b.to_string()))
            .collect()
    }

    fn router(r: &[(&str, &str)]) -> Router {
        Router::new(&rules(r), "main", "public").expect("valid rules")
    }

    fn t(s: &str) -> TableName {
        TableName::parse_regclass(s).expect("name")
    }

    fn bind(r: &Router, s: &str) -> Option<String> {
        r.bind_for_table(&t(s)).map(str::to_owned)
    }

    #[test]
    fn plain_and_qualified() {
        let r = router(&[
            ("users", "u"),
            ("audit.*", "a"),
            ("billing.invoices", "b"),
            ("\"Odd\"", "o"),
        ]);
        assert_eq!(bind(&r, "users").as_deref(), Some("u"));
        assert_eq!(bind(&r, "public.users").as_deref(), Some("u"));
        assert_eq!(bind(&r, "Users").as_deref(), Some("u"));
        assert_eq!(bind(&r, "\"Users\""), None);
        assert_eq!(bind(&r, "other.users"), None);
        assert_eq!(bind(&r, "audit.log").as_deref(), Some("a"));
        assert_eq!(bind(&r, "AUDIT.Log").as_deref(), Some("a"));
        assert_eq!(bind(&r, "log"), None);
        assert_eq!(bind(&r, "billing.invoices").as_deref(), Some("b"));
        assert_eq!(bind(&r, "invoices"), None);
        assert_eq!(bind(&r, "\"Odd\"").as_deref(), Some("o"));
        assert_eq!(bind(&r, "odd"), None);
        assert_eq!(bind(&r, "pg_catalog.pg_class"), None);
    }

    #[test]
    fn default_schema_is_configurable() {
        let r = Router::new(&rules(&[("users", "u")]), "main", "app").expect("valid");
        assert_eq!(bind(&r, "users").as_deref(), Some("u"));
        assert_eq!(bind(&r, "app.users").as_deref(), Some("u"));
        assert_eq!(bind(&r, "public.users"), None);
    }

    #[test]
    fn exact_beats_glob_and_specific_beats_general() {
        let r = router(&[
            ("user_*", "g"),
            ("user_log", "e"),
            ("*_log", "l"),
            ("audit.*", "a"),
            ("audit.log_*", "al"),
        ]);
        assert_eq!(bind(&r, "user_log").as_deref(), Some("e"));
        assert_eq!(bind(&r, "user_x").as_deref(), Some("g"));
        assert_eq!(bind(&r, "user_log2").as_deref(), Some("g"));
        assert_eq!(bind(&r, "app_log").as_deref(), Some("l"));
        let r = router(&[("*_log", "l"), ("user_*", "g")]);
        assert_eq!(bind(&r, "user_log").as_deref(), Some("g"));
        let r = router(&[("audit.*", "a"), ("audit.log_*", "al")]);
        assert_eq!(bind(&r, "audit.log_1").as_deref(), Some("al"));
        assert_eq!(bind(&r, "audit.x").as_deref(), Some("a"));
    }

    #[test]
    fn rule_errors() {
        let err =
            |r: &[(&str, &str)]| Router::new(&rules(r), "main", "public").expect_err("must fail");
        assert!(matches!(
            err(&[("a*", "x"), ("*a", "y")]),
            RuleError::Overlap { .. }
        ));
        assert!(matches!(
            err(&[("users", "x"), ("public.users", "y")]),
            RuleError::Duplicate { .. }
        ));
        assert!(matches!(
            err(&[("a.b.c", "x")]),
            RuleError::BadPattern { .. }
        ));
        assert!(matches!(err(&[("", "x")]), RuleError::BadPattern { .. }));
        assert!(matches!(err(&[("a.", "x")]), RuleError::BadPattern { .. }));
        assert!(matches!(
            err(&[("\"open", "x")]),
            RuleError::BadPattern { .. }
        ));
        assert!(matches!(err(&[("user_[", "x")]), RuleError::BadGlob { .. }));
        let e = err(&[("a*", "x"), ("*a", "y")]).to_string();
        assert!(e.contains("\"a*\"") && e.contains("\"*a\""), "{e}");
        // fine: same bind, disjoint prefixes, different specificity, schema-disjoint
        router(&[("a*", "x"), ("*a", "x")]);
        router(&[("a_*", "x"), ("b_*", "y")]);
        router(&[("user_*", "x"), ("*_log", "y")]);
        router(&[("audit.*", "x"), ("other.*", "y")]);
        router(&[("users", "x"), ("public.users", "x")]);
        router(&[("\"User_*\"", "x"), ("user_*", "y")]);
    }

    #[test]
    fn glob_literal_counting() {
        assert_eq!(glob_literals("user_*"), ("user_".into(), "".into(), 5));
        assert_eq!(glob_literals("*_log"), ("".into(), "_log".into(), 4));
        assert_eq!(glob_literals("a[bc]d?e"), ("a".into(), "e".into(), 3));
        assert_eq!(glob_literals("[!]x]y"), ("".into(), "y".into(), 1));
    }

    #[test]
    fn sequences_and_indexes_follow_their_table() {
        let r = router(&[
            ("orders", "o"),
            ("users_*", "g"),
            ("users", "u"),
            ("*", "all"),
        ]);
        assert_eq!(bind(&r, "orders_id_seq").as_deref(), Some("o"));
        assert_eq!(bind(&r, "public.orders_id_seq").as_deref(), Some("o"));
        assert_eq!(bind(&r, "orders_pkey").as_deref(), Some("o"));
        assert_eq!(bind(&r, "orders_user_id_fkey").as_deref(), Some("o"));
        // exact candidate beats a glob on the name itself
        assert_eq!(bind(&r, "users_id_seq").as_deref(), Some("u"));
        assert_eq!(bind(&r, "users_x").as_deref(), Some("g"));
        assert_eq!(bind(&r, "misc_id_seq").as_deref(), Some("all"));
        let r = router(&[("order_*", "o")]);
        assert_eq!(bind(&r, "order_items_id_seq").as_deref(), Some("o"));
        let r = router(&[("orders", "o")]);
        assert_eq!(bind(&r, "other_seq"), None);
    }

    #[test]
    fn what_the_catalog_knows_routes_after_the_rules() {
        let names = ["main".to_owned(), "o".to_owned(), "m".to_owned()];
        let r = router(&[("orders", "o")])
            .with_binds(names.iter())
            .with_catalog(Some("cat"));
        let mut known = KnownRelations::default();
        known
            .owners
            .insert(t("public.ix_orders_total"), t("public.orders"));
        known.discovered.insert(t("public.metrics"), "m".to_owned());
        known.discovered.insert(t("public.orders"), "m".to_owned());
        // before the catalog is read: the name heuristics only
        assert_eq!(bind(&r, "ix_orders_total"), None);
        r.learn(known.clone());
        assert_eq!(bind(&r, "ix_orders_total").as_deref(), Some("o"));
        assert_eq!(bind(&r, "public.ix_orders_total").as_deref(), Some("o"));
        assert_eq!(bind(&r, "metrics").as_deref(), Some("m"));
        // a rule beats discovery
        assert_eq!(bind(&r, "orders").as_deref(), Some("o"));
        assert_eq!(bind(&r, "other"), None);
        // without a catalog bind nothing is learnt
        let plain = router(&[("orders", "o")]).with_binds(names.iter());
        plain.learn(known);
        assert_eq!(bind(&plain, "metrics"), None);
    }
}
