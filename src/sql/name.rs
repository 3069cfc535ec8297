//! Table names as PostgreSQL sees them.
//!
//! Owns: the [`TableName`] type, PostgreSQL identifier folding (unquoted identifiers fold to lower
//! case and are truncated to 63 bytes; quoted ones keep their case), the catalog test and the
//! naming conventions PostgreSQL uses for the sequences, indexes and constraints it names itself
//! (`orders_id_seq`, `orders_pkey`, …).
//!
//! Must never: look at the routing rules or decide a bind; parse SQL.

use std::fmt;

/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are truncated.
const MAX_IDENT_BYTES: usize = 63;

/// A relation named by a statement: a table, view, sequence or index, optionally schema-qualified.
///
/// Both parts are stored *after* PostgreSQL identifier folding, so `Users` and `users` are equal and
/// `"Users"` is different.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TableName {
    /// The schema, when the statement named one (`public.users`); a catalog/database part of a
    /// three-part name is dropped.
    pub schema: Option<String>,
    /// The relation name.
    pub name: String,
}

/// Suffixes PostgreSQL appends to the name of the table when it names a sequence, an index or a
/// constraint itself (`<table>_<col>_seq`, `<table>_pkey`, `<table>_<col>_key`, `<table>_<col>_idx`,
/// `<table>_<col>_fkey`, `<table>_<col>_excl`, `<table>_<col>_check`).
const OWNED_SUFFIXES: &[&str] = &["_seq", "_pkey", "_key", "_idx", "_fkey", "_excl", "_check"];

impl TableName {
    /// An already-folded name.
    pub fn new(schema: Option<&str>, name: &str) -> TableName {
        TableName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// Builds a name from identifier parts as written (`(text, quoted)`), folding each part.
    /// One part is a bare name, two are `schema.name`, and with three or more the last two are
    /// kept (`db.schema.name`). Returns `None` for zero parts.
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = (&'a str, bool)>) -> Option<TableName> {
        let mut schema = None;
        let mut name: Option<String> = None;
        for (text, quoted) in parts {
            schema = name.take();
            name = Some(fold_ident(text, quoted));
        }
        name.map(|name| TableName { schema, name })
    }

    /// Parses a name the way PostgreSQL's `regclass` input does: `orders`, `public.orders`,
    /// `"Mixed Case"`, `public."Mixed Case"`. Returns `None` when the text is not a name (empty,
    /// a number such as an OID, unbalanced quotes, stray characters).
    pub fn parse_regclass(text: &str) -> Option<TableName> {
        let text = text.trim();
        if text.is_empty() || text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut parts: Vec<(String, bool)> = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            // one identifier
            let mut ident = String::new();
            let quoted = chars.peek() == Some(&'"');
            if quoted {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            ident.push('"');
                        }
                        Some('"') => break,
                        Some(c) => ident.push(c),
                        None => return None,
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' || c.is_whitespace() {
                        break;
                    }
                    if c == '"' || !(c.is_alphanumeric() || c == '_' || c == '$') {
                        return None;
                    }
                    ident.push(c);
                    chars.next();
                }
            }
            if ident.is_empty() {
                return None;
            }
            parts.push((ident, quoted));
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                None => break,
                Some('.') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some(_) => return None,
            }
        }
        if parts.len() > 3 {
            return None;
        }
        TableName::from_parts(parts.iter().map(|(t, q)| (t.as_str(), *q)))
    }

    /// True for PostgreSQL's own relations: anything in `pg_catalog`, `information_schema` or
    /// another `pg_*` system schema (`pg_toast`), and unqualified `pg_*` names.
    pub fn is_catalog(&self) -> bool {
        match &self.schema {
            Some(s) => s == "information_schema" || s.starts_with("pg_"),
            None => self.name.starts_with("pg_"),
        }
    }

    /// Possible owning tables of a sequence, index or constraint that PostgreSQL named itself,
    /// most specific first, same schema as `self`.
    ///
    /// PostgreSQL names the sequence of a `serial` column `<table>_<col>_seq`, the primary key
    /// `<table>_pkey` and other indexes/constraints `<table>_<col…>_{key,idx,fkey,excl,check}`.
    /// The suffix is stripped and every shorter `_`-separated prefix is a candidate:
    /// `orders_id_seq` → `orders_id`, `orders`; `order_items_order_id_fkey` → `order_items_order_id`,
    /// `order_items_order`, `order_items`, `order`. A name without such a suffix has no candidates.
    /// The router tries them in order when the name itself is unmapped; the first mapped one wins.
    pub fn serial_owner_candidates(&self) -> Vec<TableName> {
        let mut out = Vec::new();
        let Some(stem) = OWNED_SUFFIXES
            .iter()
            .find_map(|suffix| self.name.strip_suffix(suffix))
        else {
            return out;
        };
        let mut stem = stem;
        while !stem.is_empty() {
            out.push(TableName {
                schema: self.schema.clone(),
                name: stem.to_owned(),
            });
            match stem.rfind('_') {
                Some(i) => stem = &stem[..i],
                None => break,
            }
        }
        out
    }
}

/// Folds one identifier as PostgreSQL does: unquoted → ASCII lower case; both truncated to 63 bytes.
pub fn fold_ident(text: &str, quoted: bool) -> String {
    let mut s = if quoted {
        text.to_owned()
    } else {
        text.to_ascii_lowercase()
    };
    if s.len() > MAX_IDENT_BYTES {
        let mut end = MAX_IDENT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Writes an identifier, quoted only when it would not read back the same unquoted.
fn write_ident(f: &mut fmt::Formatter<'_>, ident: &str) -> fmt::Result {
    let plain = !ident.is_empty()
        && !ident.starts_with(|c: char| c.is_ascii_digit() || c == '$')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        f.write_str(ident)
    } else {
        write!(f, "\"{}\"", ident.replace('"', "\"\""))
    }
}

/// `schema.name` or `name`; a part that would not read back the same unquoted (upper case, spaces)
/// is double-quoted like PostgreSQL's `quote_ident`: `reporting."Daily Stats"`.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write_ident(f, schema)?;
            f.write_str(".")?;
        }
        write_ident(f, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: Option<&str>, n: &str) -> TableName {
        TableName::new(s, n)
    }

    #[test]
    fn folding() {
        assert_eq!(fold_ident("Users", false), "users");
        assert_eq!(fold_ident("Users", true), "Users");
        let long = "a".repeat(70);
        assert_eq!(fold_ident(&long, false).len(), 63);
        let multi = "é".repeat(40); // 80 bytes
        let folded = fold_ident(&multi, true);
        assert!(folded.len() <= 63 && folded.is_char_boundary(folded.len()));
    }

    #[test]
    fn from_parts() {
        assert_eq!(
            TableName::from_parts([("Public", false), ("Users", true)]),
            Some(t(Some("public"), "Users"))
        );
        assert_eq!(
            TableName::from_parts([("db", false), ("s", false), ("x", false)]),
            Some(t(Some("s"), "x"))
        );
        assert_eq!(TableName::from_parts([]), None);
    }

    #[test]
    fn display() {
        assert_eq!(t(None, "users").to_string(), "users");
        assert_eq!(t(Some("public"), "users").to_string(), "public.users");
        assert_eq!(
            t(Some("reporting"), "Daily Stats").to_string(),
            "reporting.\"Daily Stats\""
        );
        assert_eq!(t(None, "a\"b").to_string(), "\"a\"\"b\"");
    }

    #[test]
    fn catalog() {
        assert!(t(Some("pg_catalog"), "pg_class").is_catalog());
        assert!(t(Some("pg_catalog"), "anything").is_catalog());
        assert!(t(Some("information_schema"), "columns").is_catalog());
        assert!(t(None, "pg_type").is_catalog());
        assert!(!t(Some("public"), "pg_type").is_catalog());
        assert!(!t(None, "users").is_catalog());
    }

    #[test]
    fn regclass() {
        assert_eq!(
            TableName::parse_regclass("public.orders_id_seq"),
            Some(t(Some("public"), "orders_id_seq"))
        );
        assert_eq!(TableName::parse_regclass("Orders"), Some(t(None, "orders")));
        assert_eq!(
            TableName::parse_regclass("\"My \"\"T\"\"\""),
            Some(t(None, "My \"T\""))
        );
        assert_eq!(
            TableName::parse_regclass(" reporting . \"Daily Stats\" "),
            Some(t(Some("reporting"), "Daily Stats"))
        );
        assert_eq!(TableName::parse_regclass("16385"), None);
        assert_eq!(TableName::parse_regclass(""), None);
        assert_eq!(TableName::parse_regclass("a b"), None);
        assert_eq!(TableName::parse_regclass("\"open"), None);
        assert_eq!(TableName::parse_regclass("a..b"), None);
    }

    #[test]
    fn owner_candidates() {
        let c = t(None, "orders_id_seq").serial_owner_candidates();
        assert_eq!(c, vec![t(None, "orders_id"), t(None, "orders")]);
        let c = t(Some("public"), "users_pkey").serial_owner_candidates();
        assert_eq!(c, vec![t(Some("public"), "users")]);
        let c = t(None, "sa_book_author_id_fkey").serial_owner_candidates();
        assert_eq!(
            c,
            vec![
                t(None, "sa_book_author_id"),
                t(None, "sa_book_author"),
                t(None, "sa_book"),
                t(None, "sa")
            ]
        );
        assert!(t(None, "orders").serial_owner_candidates().is_empty());
        assert!(t(None, "_seq").serial_owner_candidates().is_empty());
    }
}
