//! Token-scan fallback for statements sqlparser rejects or mis-parses.
//!
//! Owns: splitting a query string into statements on `;` outside quotes, dollar quotes, comments
//! and parentheses; and finding relation names in one statement's tokens without a parser: names
//! after `FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`, `ONLY`, `TRUNCATE`, `VACUUM`, `ANALYZE`,
//! `CLUSTER`, `LOCK`, `SEQUENCE`, `VIEW` (and `MATERIALIZED VIEW`), `INDEX` (`DROP/ALTER/REINDEX`),
//! `CREATE INDEX/TRIGGER/RULE/POLICY … ON`, `GRANT/REVOKE … ON`, `COMMENT ON COLUMN`, `REFERENCES`,
//! `COPY`, `OWNED BY`, `PARTITION OF`, `ATTACH/DETACH PARTITION`, `(LIKE …)`, `INHERITS (…)`,
//! `DELETE/MERGE … USING`, string literals in `nextval('…')`-like calls and `'…'::regclass`, and
//! the body of `DO $$ … $$` (scanned the same way).
//!
//! It is conservative: it may collect a name that is not a relation (an unmapped name goes to the
//! default bind, or turns the statement into a cross-bind rejection), but it must never miss a
//! relation the statement touches in the places listed above. It skips what is clearly not a
//! table: table functions in FROM (`generate_series(…)`), `COPY … FROM STDIN`, the `FROM` of
//! `EXTRACT/SUBSTRING/TRIM/OVERLAY(… FROM …)` and `IS DISTINCT FROM`.
//!
//! Must never: decide a bind; run sqlparser's parser (that is the caller's first try).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::name::TableName;
use super::tables::{Collected, REGCLASS_FUNCTIONS};

/// Unquoted words that never start a relation name where the scan looks for one.
const STOP: &[&str] = &[
    "all",
    "and",
    "array",
    "as",
    "between",
    "by",
    "cascade",
    "case",
    "cast",
    "collate",
    "cross",
    "current_date",
    "current_timestamp",
    "database",
    "default",
    "delete",
    "distinct",
    "domain",
    "else",
    "end",
    "except",
    "exists",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "function",
    "group",
    "having",
    "ilike",
    "in",
    "inner",
    "insert",
    "intersect",
    "interval",
    "into",
    "is",
    "join",
    "key",
    "language",
    "large",
    "lateral",
    "left",
    "like",
    "limit",
    "locked",
    "natural",
    "none",
    "not",
    "nowait",
    "null",
    "of",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "partition",
    "procedure",
    "program",
    "restrict",
    "returning",
    "right",
    "routine",
    "routines",
    "row",
    "schema",
    "select",
    "sequence",
    "sequences",
    "set",
    "share",
    "similar",
    "skip",
    "stdin",
    "stdout",
    "tables",
    "tablesample",
    "tablespace",
    "then",
    "to",
    "true",
    "type",
    "union",
    "update",
    "using",
    "values",
    "view",
    "when",
    "where",
    "window",
    "with",
];

/// Modifiers skipped before a name.
const MODS: &[&str] = &[
    "only",
    "if",
    "not",
    "exists",
    "concurrently",
    "table",
    "lateral",
    "verbose",
    "full",
    "freeze",
    "analyze",
    "analyse",
    "skip_locked",
    "name",
    "materialized",
    "temp",
    "temporary",
    "unlogged",
];

/// Functions with `FROM` inside their parentheses.
const FROM_FUNCTIONS: &[&str] = &["extract", "substring", "trim", "overlay", "normalize"];

/// How deep `DO $$ … $$` bodies are scanned inside each other.
const MAX_DO_DEPTH: usize = 4;

/// Tokens of a query string: sqlparser's tokenizer, or a crude lexer when it fails (then the
/// flag is true: string boundaries may differ from the cache key's, so the analysis must not be
/// shared across literal values).
pub(crate) fn tokenize(sql: &str) -> (Vec<Token>, bool) {
    match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() {
        Ok(t) => (t, false),
        Err(_) => (crude_tokens(sql), true),
    }
}

/// Splits tokens into statements at `;` outside parentheses. Each range excludes the `;`.
pub(crate) fn split(tokens: &[Token]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon if depth == 0 => {
                out.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(start..tokens.len());
    out
}

/// The significant tokens (no whitespace or comments).
pub(crate) fn significant(tokens: &[Token]) -> Vec<&Token> {
    tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect()
}

/// Scans one statement's significant tokens for relation names.
pub(crate) fn scan(sig: &[&Token]) -> Collected {
    let mut s = Scan {
        sig,
        out: Collected::default(),
        do_depth: 0,
    };
    s.run();
    s.out
}

fn scan_nested(body: &str, do_depth: usize, out: &mut Collected) {
    let (tokens, _) = tokenize(body);
    for range in split(&tokens) {
        let sig = significant(&tokens[range]);
        let mut s = Scan {
            sig: &sig,
            out: Collected::default(),
            do_depth,
        };
        s.run();
        out.tables.append(&mut s.out.tables);
        out.literal_names |= s.out.literal_names;
    }
}

struct Scan<'a, 't> {
    sig: &'a [&'t Token],
    out: Collected,
    do_depth: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Paren {
    FromFunction,
    Other,
}

fn in_list(w: &str, list: &[&str]) -> bool {
    list.iter().any(|k| w.eq_ignore_ascii_case(k))
}

impl<'t> Scan<'_, 't> {
    fn tok(&self, i: usize) -> Option<&'t Token> {
        self.sig.get(i).copied()
    }

    /// An unquoted word.
    fn kw_at(&self, i: usize) -> Option<&'t str> {
        match self.tok(i) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.as_str()),
            _ => None,
        }
    }

    fn is_kw(&self, i: usize, k: &str) -> bool {
        self.kw_at(i).is_some_and(|w| w.eq_ignore_ascii_case(k))
    }

    fn is(&self, i: usize, t: &Token) -> bool {
        self.tok(i) == Some(t)
    }

    /// Index after the parenthesised group opening at `i`.
    fn skip_group(&self, i: usize) -> usize {
        let mut depth = 0usize;
        let mut j = i;
        while let Some(t) = self.tok(j) {
            match t {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    }

    /// Reads `word(.word)*` at `i` after skipping `mods`; returns the parts and the next index.
    fn read_parts(&self, i: usize, mods: &[&str]) -> Option<(Vec<(&'t str, bool)>, usize)> {
        let mut j = i;
        while self.kw_at(j).is_some_and(|w| in_list(w, mods)) {
            j += 1;
        }
        let mut parts = Vec::new();
        match self.tok(j) {
            Some(Token::Word(w)) => {
                if w.quote_style.is_none() && in_list(&w.value, STOP) {
                    return None;
                }
                parts.push((w.value.as_str(), w.quote_style.is_some()));
            }
            _ => return None,
        }
        j += 1;
        while self.is(j, &Token::Period) {
            match self.tok(j + 1) {
                Some(Token::Word(w)) => parts.push((w.value.as_str(), w.quote_style.is_some())),
                _ => break,
            }
            j += 2;
        }
        Some((parts, j))
    }

    fn push_parts(&mut self, parts: Vec<(&str, bool)>) {
        if let Some(t) = TableName::from_parts(parts) {
            self.out.tables.push(t);
        }
    }

    /// One relation name at `i`; returns the index after it.
    fn name(&mut self, i: usize, mods: &[&str]) -> Option<usize> {
        let (parts, j) = self.read_parts(i, mods)?;
        self.push_parts(parts);
        Some(j)
    }

    /// `table.column` or `schema.table.column` at `i` → the table.
    fn column_owner(&mut self, i: usize) {
        if let Some((mut parts, _)) = self.read_parts(i, &[]) {
            if parts.len() >= 2 {
                parts.pop();
                self.push_parts(parts);
            }
        }
    }

    /// `a [*] [(cols)], b …`
    fn name_list(&mut self, i: usize, mods: &[&str]) {
        let mut j = i;
        loop {
            // VACUUM (VERBOSE) t / ANALYZE (SKIP_LOCKED) t: option list before the name
            while self.kw_at(j).is_some_and(|w| in_list(w, mods)) {
                j += 1;
            }
            if self.is(j, &Token::LParen) {
                j = self.skip_group(j);
            }
            let Some(next) = self.name(j, mods) else {
                return;
            };
            j = next;
            if self.is(j, &Token::Mul) {
                j += 1;
            }
            if self.is(j, &Token::LParen) {
                j = self.skip_group(j);
            }
            if self.is(j, &Token::Comma) {
                j += 1;
            } else {
                return;
            }
        }
    }

    /// A FROM list: `a x, b AS y (c1, c2), LATERAL f(…), (SELECT …) z, ONLY c *`.
    fn relation_list(&mut self, i: usize) {
        let mut j = i;
        loop {
            while self
                .kw_at(j)
                .is_some_and(|w| in_list(w, &["only", "lateral"]))
            {
                j += 1;
            }
            if self.is_kw(j, "rows") && self.is_kw(j + 1, "from") && self.is(j + 2, &Token::LParen)
            {
                // ROWS FROM (f(…), g(…)): table functions
                j = self.skip_group(j + 2);
            } else if self.is(j, &Token::LParen) {
                j = self.skip_group(j);
            } else if let Some((parts, next)) = self.read_parts(j, &[]) {
                if self.is(next, &Token::LParen) {
                    // a table function
                    j = self.skip_group(next);
                } else {
                    self.push_parts(parts);
                    j = next;
                }
            } else {
                return;
            }
            if self.is(j, &Token::Mul) {
                j += 1;
            }
            // alias
            if self.is_kw(j, "as") {
                j += 1;
            }
            match self.tok(j) {
                Some(Token::Word(w)) if w.quote_style.is_some() || !in_list(&w.value, STOP) => {
                    j += 1;
                    if self.is(j, &Token::LParen) {
                        j = self.skip_group(j);
                    }
                }
                _ => {}
            }
            if self.is(j, &Token::Comma) {
                j += 1;
            } else {
                return;
            }
        }
    }

    /// A string literal at `i` read as a relation name.
    fn literal_at(&mut self, i: usize) {
        let text = match self.tok(i) {
            Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s)) => s,
            _ => return,
        };
        self.out.literal_names = true;
        if let Some(t) = TableName::parse_regclass(text) {
            self.out.tables.push(t);
        }
    }

    fn run(&mut self) {
        let head = self.kw_at(0).unwrap_or("").to_ascii_lowercase();
        // the object word of CREATE/DROP/ALTER/COMMENT …
        let mut o = 1;
        while self.kw_at(o).is_some_and(|w| {
            in_list(
                w,
                &[
                    "or",
                    "replace",
                    "unique",
                    "temp",
                    "temporary",
                    "unlogged",
                    "constraint",
                    "global",
                    "local",
                    "materialized",
                    "recursive",
                    "foreign",
                ],
            )
        }) {
            o += 1;
        }
        let object = self.kw_at(o).unwrap_or("").to_ascii_lowercase();
        let on_introduces = matches!(head.as_str(), "grant" | "revoke")
            || (matches!(head.as_str(), "create" | "drop" | "alter")
                && matches!(object.as_str(), "index" | "trigger" | "rule" | "policy"));
        let mut seen_on = false;
        let mut parens: Vec<Paren> = Vec::new();

        for i in 0..self.sig.len() {
            let Some(tok) = self.tok(i) else { break };
            match tok {
                Token::LParen => {
                    let from_fn = self
                        .kw_at(i.wrapping_sub(1))
                        .is_some_and(|w| in_list(w, FROM_FUNCTIONS));
                    parens.push(if from_fn {
                        Paren::FromFunction
                    } else {
                        Paren::Other
                    });
                    continue;
                }
                Token::RParen => {
                    parens.pop();
                    continue;
                }
                Token::SingleQuotedString(_) | Token::EscapedStringLiteral(_) => {
                    // 'x'::regclass, 'x'::pg_catalog.regclass
                    if self.is(i + 1, &Token::DoubleColon) {
                        let ty =
                            if self.is_kw(i + 2, "pg_catalog") && self.is(i + 3, &Token::Period) {
                                i + 4
                            } else {
                                i + 2
                            };
                        if self.is_kw(ty, "regclass") {
                            self.literal_at(i);
                        }
                    }
                    continue;
                }
                Token::DollarQuotedString(body) => {
                    let after_do = self.is_kw(i.wrapping_sub(1), "do")
                        || (self.is_kw(i.wrapping_sub(3), "do")
                            && self.is_kw(i.wrapping_sub(2), "language"));
                    if after_do && self.do_depth < MAX_DO_DEPTH {
                        let mut nested = Collected::default();
                        scan_nested(&body.value, self.do_depth + 1, &mut nested);
                        self.out.tables.append(&mut nested.tables);
                        self.out.literal_names |= nested.literal_names;
                    }
                    continue;
                }
                Token::Word(_) => {}
                _ => continue,
            }
            let Some(w) = self.kw_at(i) else { continue };
            let w = w.to_ascii_lowercase();
            let prev = self.kw_at(i.wrapping_sub(1)).map(str::to_ascii_lowercase);
            let prev = prev.as_deref().unwrap_or("");
            match w.as_str() {
                "from" => {
                    let in_from_fn = parens.last() == Some(&Paren::FromFunction);
                    let copy_source = head == "copy" && parens.is_empty();
                    if prev != "distinct" && !in_from_fn && !copy_source {
                        self.relation_list(i + 1);
                    }
                }
                "join" => self.relation_list(i + 1),
                "using" => {
                    if matches!(head.as_str(), "delete" | "merge" | "with") {
                        self.relation_list(i + 1);
                    }
                }
                "into" => {
                    self.name(i + 1, &["only"]);
                }
                "update" => {
                    let blocked_prev = matches!(
                        prev,
                        "for"
                            | "key"
                            | "do"
                            | "before"
                            | "after"
                            | "of"
                            | "grant"
                            | "revoke"
                            | "on"
                            | "instead"
                            | "then"
                    ) || self.is(i.wrapping_sub(1), &Token::Comma);
                    if !blocked_prev {
                        self.name(i + 1, &["only"]);
                    }
                }
                "table" | "truncate" | "lock" | "vacuum" | "analyze" | "analyse" | "sequence"
                | "view" => {
                    self.name_list(i + 1, MODS);
                }
                "only" | "cluster" | "references" => {
                    self.name(i + 1, MODS);
                }
                "index" => {
                    if head != "create" {
                        self.name_list(i + 1, MODS);
                    }
                }
                "copy" => {
                    if i == 0 {
                        self.name(i + 1, &[]);
                    }
                }
                "on" => {
                    if head == "create" && object == "rule" && !seen_on && self.is_kw(i + 2, "to") {
                        // CREATE RULE r AS ON event TO table
                        seen_on = true;
                        self.name(i + 3, &["only"]);
                    } else if head == "comment" && self.is_kw(i + 1, "column") {
                        self.column_owner(i + 2);
                    } else if on_introduces && !seen_on && parens.is_empty() {
                        seen_on = true;
                        if matches!(head.as_str(), "grant" | "revoke") {
                            self.name_list(i + 1, &["table", "only"]);
                        } else {
                            self.name(i + 1, &["table", "only"]);
                        }
                    }
                }
                "by" => {
                    if prev == "owned" {
                        self.column_owner(i + 1);
                    }
                }
                "partition" => {
                    if self.is_kw(i + 1, "of") {
                        self.name(i + 2, &[]);
                    } else if matches!(prev, "attach" | "detach") {
                        self.name(i + 1, &[]);
                    }
                }
                "like" => {
                    let after_paren = matches!(
                        self.tok(i.wrapping_sub(1)),
                        Some(Token::LParen | Token::Comma)
                    );
                    if head == "create" && after_paren {
                        self.name(i + 1, &[]);
                    }
                }
                "inherits" => {
                    if self.is(i + 1, &Token::LParen) {
                        self.name_list(i + 2, &[]);
                    }
                }
                _ => {
                    if in_list(&w, REGCLASS_FUNCTIONS) && self.is(i + 1, &Token::LParen) {
                        self.literal_at(i + 2);
                    }
                }
            }
        }
    }
}

/// A lexer for text sqlparser's tokenizer rejects: words, quoted identifiers, strings,
/// punctuation; comments and dollar quotes are skipped or kept whole. Good enough for the scan.
fn crude_tokens(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                out.push(Token::Whitespace(Whitespace::Space));
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push(Token::Whitespace(Whitespace::Space));
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(Token::Whitespace(Whitespace::Space));
            }
            b'\'' | b'"' => {
                let q = c;
                let mut s = String::new();
                let mut j = i + 1;
                let mut start = j;
                while j < b.len() {
                    if b[j] == q {
                        s.push_str(&sql[start..j]);
                        if b.get(j + 1) == Some(&q) {
                            s.push(q as char);
                            j += 2;
                            start = j;
                            continue;
                        }
                        break;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    s.push_str(&sql[start.min(b.len())..]);
                }
                out.push(if q == b'"' {
                    Token::make_word(&s, Some('"'))
                } else {
                    Token::SingleQuotedString(s)
                });
                i = j + 1;
            }
            b'(' => {
                out.push(Token::LParen);
                i += 1;
            }
            b')' => {
                out.push(Token::RParen);
                i += 1;
            }
            b',' => {
                out.push(Token::Comma);
                i += 1;
            }
            b'.' => {
                out.push(Token::Period);
                i += 1;
            }
            b';' => {
                out.push(Token::SemiColon);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                out.push(Token::DoubleColon);
                i += 2;
            }
            _ if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                out.push(Token::make_word(&sql[start..i], None));
            }
            _ => {
                // any other character, whole (never split a UTF-8 sequence)
                let ch = sql[i..].chars().next().unwrap_or(' ');
                out.push(Token::Char(ch));
                i += ch.len_utf8().max(1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        let (tokens, _) = tokenize(sql);
        let mut out: Vec<String> = split(&tokens)
            .into_iter()
            .flat_map(|r| scan(&significant(&tokens[r])).tables)
            .map(|t| t.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn utility_statements() {
        assert_eq!(names("VACUUM ANALYZE users"), ["users"]);
        assert_eq!(
            names("VACUUM (VERBOSE, ANALYZE) users, s.o"),
            ["s.o", "users"]
        );
        assert_eq!(names("VACUUM"), Vec::<String>::new());
        assert_eq!(names("ANALYZE users (a, b), orders"), ["orders", "users"]);
        assert_eq!(names("CLUSTER users USING users_pkey"), ["users"]);
        assert_eq!(names("REINDEX TABLE users"), ["users"]);
        assert_eq!(
            names("REINDEX INDEX CONCURRENTLY users_name_idx"),
            ["users_name_idx"]
        );
        assert_eq!(
            names("REFRESH MATERIALIZED VIEW CONCURRENTLY public.mv"),
            ["public.mv"]
        );
        assert_eq!(names("TABLE users"), ["users"]);
        assert_eq!(names("CHECKPOINT"), Vec::<String>::new());
        assert_eq!(names("MOVE NEXT IN c1"), Vec::<String>::new());
        assert_eq!(names("PREPARE TRANSACTION 'x'"), Vec::<String>::new());
        assert_eq!(
            names("DROP INDEX CONCURRENTLY IF EXISTS a_idx, b_idx"),
            ["a_idx", "b_idx"]
        );
        assert_eq!(names("TRUNCATE TABLE ONLY a, b *"), ["a", "b"]);
        assert_eq!(names("LOCK TABLE ONLY a IN SHARE MODE"), ["a"]);
    }

    #[test]
    fn sequences() {
        assert_eq!(
            names("CREATE SEQUENCE public.orders_id_seq START WITH 1 NO MINVALUE CACHE 1"),
            ["public.orders_id_seq"]
        );
        assert_eq!(
            names("ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id"),
            ["public.orders", "public.orders_id_seq"]
        );
        assert_eq!(names("ALTER SEQUENCE s OWNED BY t.id"), ["s", "t"]);
        assert_eq!(names("ALTER SEQUENCE s OWNED BY NONE"), ["s"]);
        assert_eq!(
            names("ALTER TABLE public.docs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.docs_id_seq START WITH 1 NO MINVALUE)"),
            ["public.docs", "public.docs_id_seq"]
        );
        assert_eq!(
            names("SELECT nextval('a_seq') FOR NO KEY UPDATE"),
            ["a_seq"]
        );
        assert_eq!(
            names("SELECT 'x'::pg_catalog.regclass BETWEEN SYMMETRIC 1 AND 2"),
            ["x"]
        );
    }

    #[test]
    fn selects() {
        assert_eq!(names("SELECT * FROM ONLY users"), ["users"]);
        assert_eq!(
            names("SELECT * FROM a x, b AS y(c), generate_series(1,2) g, LATERAL (SELECT * FROM c) z JOIN d ON true FOR NO KEY UPDATE"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            names("SELECT EXTRACT(EPOCH FROM ts), substring(s FROM 2), a IS DISTINCT FROM b FROM t WHERE x BETWEEN SYMMETRIC 1 AND 2"),
            ["t"]
        );
        assert_eq!(
            names("SELECT x::text COLLATE \"C\" FROM t ORDER BY 1"),
            ["t"]
        );
        assert_eq!(names("SELECT * FROM a FOR UPDATE OF a"), ["a"]);
        assert_eq!(
            names("SELECT * FROM ROWS FROM (f(1), g(2)) AS x, t FOR KEY SHARE"),
            ["t"]
        );
        assert_eq!(
            names("SELECT * FROM \"MixedCase\".\"T\" WHERE x IN (SELECT y FROM s.u)"),
            ["\"MixedCase\".\"T\"", "s.u"]
        );
    }

    #[test]
    fn dml_and_ddl() {
        assert_eq!(
            names("INSERT INTO a (x) OVERRIDING SYSTEM VALUE SELECT x FROM b"),
            ["a", "b"]
        );
        assert_eq!(
            names("UPDATE ONLY a SET x = 1 FROM b WHERE a.id = b.id"),
            ["a", "b"]
        );
        assert_eq!(names("DELETE FROM a USING b WHERE a.id = b.id"), ["a", "b"]);
        assert_eq!(
            names("INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1"),
            ["a"]
        );
        assert_eq!(
            names("CREATE TABLE c (LIKE users INCLUDING ALL)"),
            ["c", "users"]
        );
        assert_eq!(
            names("CREATE TABLE c (id int REFERENCES p(id)) INHERITS (q, s.r)"),
            ["c", "p", "q", "s.r"]
        );
        assert_eq!(names("ALTER TABLE ONLY public.meas ATTACH PARTITION public.meas_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"), ["public.meas", "public.meas_2024"]);
        assert_eq!(
            names("CREATE TABLE m1 PARTITION OF m FOR VALUES IN (1)"),
            ["m", "m1"]
        );
        assert_eq!(names("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY t USING btree (x) WHERE y"), ["t"]);
        assert_eq!(
            names(
                "CREATE TRIGGER g AFTER INSERT OR UPDATE ON s.t FOR EACH ROW EXECUTE FUNCTION f()"
            ),
            ["s.t"]
        );
        assert_eq!(names("GRANT SELECT, UPDATE ON a, b TO r"), ["a", "b"]);
        assert_eq!(
            names("CREATE RULE r AS ON INSERT TO t DO INSTEAD INSERT INTO u VALUES (NEW.*)"),
            ["t", "u"]
        );
        assert_eq!(
            names("CREATE OR REPLACE RULE r AS ON UPDATE TO s.t DO ALSO NOTHING"),
            ["s.t"]
        );
        assert_eq!(names("GRANT USAGE ON SEQUENCE s TO r"), ["s"]);
        assert_eq!(
            names("GRANT EXECUTE ON FUNCTION f() TO r"),
            Vec::<String>::new()
        );
        assert_eq!(names("COMMENT ON COLUMN s.t.c IS 'x'"), ["s.t"]);
        assert_eq!(names("COMMENT ON TABLE t IS 'x'"), ["t"]);
        assert_eq!(names("COPY t (a, b) FROM STDIN WITH (FORMAT csv)"), ["t"]);
        assert_eq!(names("COPY (SELECT * FROM t) TO STDOUT"), ["t"]);
        assert_eq!(names("COPY t FROM PROGRAM 'cat x'"), ["t"]);
        assert_eq!(
            names("MERGE INTO a USING b ON a.k = b.k WHEN MATCHED THEN UPDATE SET x = 1"),
            ["a", "b"]
        );
        assert_eq!(
            names("CREATE MATERIALIZED VIEW public.mv AS SELECT a FROM public.o WITH NO DATA"),
            ["public.mv", "public.o"]
        );
    }

    #[test]
    fn do_blocks() {
        assert_eq!(
            names("DO $$ BEGIN RAISE NOTICE 'hi'; END $$"),
            Vec::<String>::new()
        );
        assert_eq!(
            names("DO $x$ BEGIN UPDATE a SET v = 1; DELETE FROM b; END $x$"),
            ["a", "b"]
        );
        assert_eq!(
            names("DO LANGUAGE plpgsql $$ BEGIN INSERT INTO c VALUES (1); END $$"),
            ["c"]
        );
    }

    #[test]
    fn crude_lexer() {
        let toks =
            crude_tokens("SELECT * FROM \"A\"\"b\" JOIN x.y -- c\n /* d /* e */ */ ; 'it''s' ü");
        assert!(toks.contains(&Token::make_word("A\"b", Some('"'))));
        assert!(toks.contains(&Token::SingleQuotedString("it's".into())));
        assert!(toks.contains(&Token::SemiColon));
        let sig: Vec<&Token> = toks
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        let c = scan(&sig);
        assert_eq!(c.tables.len(), 2);
        // unterminated input must not panic
        let _ = crude_tokens("SELECT 'abc");
        let _ = crude_tokens("SELECT \"abc");
        let _ = crude_tokens("/* x");
    }

    #[test]
    fn split_statements() {
        let (toks, _) = tokenize(
            "SELECT 1; SELECT ';' FROM t; CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2)",
        );
        assert_eq!(split(&toks).len(), 3);
        let (toks, _) = tokenize("");
        assert_eq!(split(&toks).len(), 1);
    }
}
