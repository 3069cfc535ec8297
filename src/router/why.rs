//! Why a relation goes where it goes: the rule that gave it its bind (the admin console's
//! `SHOW TABLES`), and the rules as configured.
//!
//! Owns: [`Router::why`], which follows exactly the precedence of [`Router::bind_for_table`]
//! (exact rule, what the catalog knows of indexes and sequences, owner candidates, globs, tables
//! the catalog discovered, the default bind), and [`Router::rules`]. Must never: decide a route
//! of its own (the daemon only ever uses `bind_for_table`; a unit test keeps the two in step).

use super::Router;
use crate::sql::TableName;

/// What gave a relation its bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteReason {
    /// An exact rule names it (the pattern as written).
    Exact(String),
    /// A rule names the table it belongs to (`orders_id_seq` → `orders`).
    Owner { table: TableName, rule: String },
    /// The catalog knows it as an index or sequence of this table.
    CatalogOwner(TableName),
    /// A glob rule matches it (the pattern as written).
    Glob(String),
    /// `discover: true`: the catalog found it on exactly one bind.
    Discovered,
    /// No rule: the default bind.
    Default,
    /// A catalog relation (`pg_catalog.*`, …): it goes with the statement's other tables.
    CatalogRelation,
}

impl std::fmt::Display for RouteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteReason::Exact(p) => write!(f, "rule {p}"),
            RouteReason::Owner { table, rule } => write!(f, "rule {rule} (of its table {table})"),
            RouteReason::CatalogOwner(t) => write!(f, "with its table {t} (catalog)"),
            RouteReason::Glob(p) => write!(f, "rule {p}"),
            RouteReason::Discovered => f.write_str("discovered by the catalog"),
            RouteReason::Default => f.write_str("default bind (no rule)"),
            RouteReason::CatalogRelation => f.write_str("catalog relation (no bind of its own)"),
        }
    }
}

/// One configured rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub pattern: String,
    pub bind: String,
    pub glob: bool,
}

impl Router {
    /// The bind a relation goes to (the default bind when no rule maps it) and why.
    pub fn why(&self, t: &TableName) -> (String, RouteReason) {
        let bind = self
            .bind_for_table(t)
            .unwrap_or(&self.default_bind)
            .to_owned();
        (bind, self.reason(t, 0))
    }

    fn reason(&self, t: &TableName, depth: u8) -> RouteReason {
        if t.is_catalog() && !self.is_mapped_exactly(t) {
            return RouteReason::CatalogRelation;
        }
        let schema = t
            .schema
            .as_deref()
            .unwrap_or(&self.default_schema)
            .to_owned();
        if self.exact_bind(t).is_some() {
            let key = (schema.clone(), t.name.clone());
            return RouteReason::Exact(self.exact_patterns.get(&key).cloned().unwrap_or_default());
        }
        let qualified = TableName::new(Some(&schema), &t.name);
        if self.catalog.is_some() && depth == 0 {
            if let Some(owner) = self.known().owners.get(&qualified) {
                if owner != t {
                    return RouteReason::CatalogOwner(owner.clone());
                }
            }
        }
        let candidates = t.serial_owner_candidates();
        let pattern_of = |c: &TableName| {
            let s = c
                .schema
                .as_deref()
                .unwrap_or(&self.default_schema)
                .to_owned();
            self.exact_patterns
                .get(&(s, c.name.clone()))
                .cloned()
                .unwrap_or_default()
        };
        if let Some(c) = candidates.iter().find(|c| self.exact_bind(c).is_some()) {
            return RouteReason::Owner {
                table: c.clone(),
                rule: pattern_of(c),
            };
        }
        let glob_text = |n: &TableName| {
            let s = n.schema.as_deref().unwrap_or(&self.default_schema);
            self.globs
                .iter()
                .find(|g| g.schema.matches(s) && g.name.matches(&n.name))
                .map(|g| g.text.clone())
        };
        if let Some(p) = glob_text(t) {
            return RouteReason::Glob(p);
        }
        if let Some((c, p)) = candidates.iter().find_map(|c| glob_text(c).map(|p| (c, p))) {
            return RouteReason::Owner {
                table: c.clone(),
                rule: p,
            };
        }
        if self.catalog.is_some() && self.known().discovered.contains_key(&qualified) {
            return RouteReason::Discovered;
        }
        RouteReason::Default
    }

    /// The rules: exact ones (sorted), then globs in the order they are tried.
    pub fn rules(&self) -> Vec<RuleRow> {
        let mut exact: Vec<RuleRow> = self
            .exact_patterns
            .iter()
            .filter_map(|((s, n), pattern)| {
                let bind = self.exact.get(s)?.get(n)?;
                Some(RuleRow {
                    pattern: pattern.clone(),
                    bind: self.bind_name(*bind).to_owned(),
                    glob: false,
                })
            })
            .collect();
        exact.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        exact.extend(self.globs.iter().map(|g| RuleRow {
            pattern: g.text.clone(),
            bind: self.bind_name(g.bind).to_owned(),
            glob: true,
        }));
        exact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_rule_that_gave_the_bind() {
        let rules: Vec<(String, String)> = [
            ("users", "u"),
            ("orders", "o"),
            ("user_*", "u"),
            ("audit.*", "a"),
        ]
        .iter()
        .map(|(p, b)| (p.to_string(), b.to_string()))
        .collect();
        let r = Router::new(&rules, "main", "public").unwrap();
        let t = |s: &str| match s.split_once('.') {
            Some((a, b)) => TableName::new(Some(a), b),
            None => TableName::new(None, s),
        };
        assert_eq!(
            r.why(&t("users")),
            ("u".into(), RouteReason::Exact("users".into()))
        );
        assert_eq!(
            r.why(&t("public.user_log")),
            ("u".into(), RouteReason::Glob("user_*".into()))
        );
        assert_eq!(
            r.why(&t("orders_id_seq")),
            (
                "o".into(),
                RouteReason::Owner {
                    table: t("orders"),
                    rule: "orders".into()
                }
            )
        );
        assert_eq!(
            r.why(&t("audit.x")),
            ("a".into(), RouteReason::Glob("audit.*".into()))
        );
        assert_eq!(r.why(&t("other")), ("main".into(), RouteReason::Default));
        for name in ["users", "user_log", "orders_id_seq", "audit.x", "other"] {
            let (bind, _) = r.why(&t(name));
            assert_eq!(
                Some(bind.as_str()).filter(|b| *b != "main"),
                r.bind_for_table(&t(name))
            );
        }
        let rules = r.rules();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].pattern, "orders");
        assert!(rules[2].glob && rules[3].glob);
    }
}
