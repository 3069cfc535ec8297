//! The shape of a catalog query: its PostgreSQL tokens with every value taken out.
//!
//! Owns: reducing a query text to a key that is the same for every run of the same client query
//! (psql's table oid and name pattern, SQLAlchemy's names and oids, whether psycopg2 put them in
//! as literals or psycopg sent them as `$n`), and the values taken out, in text order. A list of
//! values (`IN ('r','p')`, `ARRAY[$1, $2]`, `IN (16388, 16398)`) is one slot holding the list, so
//! the key does not depend on how many names a client asks about.
//!
//! Must never: lose a value or merge two different queries into one key: every token but values is
//! kept (keywords and unquoted names lower-cased, as PostgreSQL reads them).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::translate::TranslateError;

/// One value taken out of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string literal (its value, unescaped).
    Text(String),
    /// A number literal, as written.
    Number(String),
    /// `true` / `false` (psycopg2 writes SQLAlchemy's boolean parameters so).
    Bool(bool),
    /// `$n`: the client's parameter n-1 (0-based), with the type of a `::type` cast right after
    /// it, if any (`varchar`, `int4`, `int2`).
    Param(usize, Option<&'static str>),
}

/// One slot of the key: a value, or a list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    One(Value),
    List(Vec<Value>),
}

#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The tokens, single-space separated, values as `?` (lists as `?*`).
    pub key: String,
    pub slots: Vec<Slot>,
    /// The highest `$n` seen.
    pub n_params: usize,
}

enum Tok {
    Word(String),
    Val(Value),
    List(Vec<Value>),
}

/// The type a `::name` cast after a parameter gives it.
fn cast_type(word: &str) -> Option<&'static str> {
    match word {
        "varchar" => Some("varchar"),
        "integer" | "int4" => Some("int4"),
        "smallint" | "int2" => Some("int2"),
        "bigint" | "int8" => Some("int8"),
        "text" => Some("text"),
        _ => None,
    }
}

impl Shape {
    pub(crate) fn of(sql: &str) -> Result<Shape, TranslateError> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .map_err(|e| TranslateError::Parse(e.to_string()))?;
        let mut toks: Vec<Tok> = Vec::with_capacity(tokens.len());
        let mut n_params = 0usize;
        for t in tokens {
            match t {
                Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab) => {}
                Token::Whitespace(_) | Token::EOF => {}
                Token::SemiColon => {}
                Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => {
                    toks.push(Tok::Val(Value::Text(s)))
                }
                Token::Number(n, _) => toks.push(Tok::Val(Value::Number(n))),
                Token::Placeholder(p) => {
                    let n: usize = p
                        .strip_prefix('$')
                        .and_then(|d| d.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| TranslateError::Invalid(format!("bad parameter {p}")))?;
                    n_params = n_params.max(n);
                    toks.push(Tok::Val(Value::Param(n - 1, None)));
                }
                Token::Word(w)
                    if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("true") =>
                {
                    toks.push(Tok::Val(Value::Bool(true)))
                }
                Token::Word(w)
                    if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("false") =>
                {
                    toks.push(Tok::Val(Value::Bool(false)))
                }
                Token::Word(w) => {
                    let text = match w.quote_style {
                        Some(q) => format!("{q}{}{q}", w.value),
                        None => w.value.to_lowercase(),
                    };
                    // `value::type` with a plain type (SQLAlchemy's psycopg dialect casts its
                    // parameters, the psycopg2 one does not): the cast goes, a parameter keeps it
                    // as its type.
                    if let Some(ty) = cast_type(&text) {
                        let n = toks.len();
                        if n >= 2 && matches!(&toks[n - 1], Tok::Word(c) if c == "::") {
                            if let Tok::Val(v) = &mut toks[n - 2] {
                                if let Value::Param(_, t @ None) = v {
                                    *t = Some(ty);
                                }
                                toks.pop();
                                continue;
                            }
                        }
                    }
                    toks.push(Tok::Word(text));
                }
                other => toks.push(Tok::Word(other.to_string())),
            }
        }
        let toks = collapse_lists(toks);
        let mut key = String::with_capacity(sql.len());
        let mut slots = Vec::new();
        for t in toks {
            if !key.is_empty() {
                key.push(' ');
            }
            match t {
                Tok::Word(w) => key.push_str(&w),
                Tok::Val(v) => {
                    key.push('?');
                    slots.push(Slot::One(v));
                }
                Tok::List(l) => {
                    key.push_str("?*");
                    slots.push(Slot::List(l));
                }
            }
        }
        Ok(Shape {
            key,
            slots,
            n_params,
        })
    }
}

/// `( v , v … )` and `[ v , … ]` → one list token between the brackets, so a list of one and of
/// many read the same (plain casts of the values are gone already; other casts end the list).
fn collapse_lists(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let open = matches!(&toks[i], Tok::Word(w) if w == "(" || w == "[");
        if open {
            if let Some((values, cast, end)) = list_at(&toks, i + 1) {
                if let Tok::Word(w) = &toks[i] {
                    out.push(Tok::Word(w.clone()));
                }
                out.push(Tok::List(values));
                if let Some(c) = cast {
                    out.push(Tok::Word("::".into()));
                    out.push(Tok::Word(c));
                }
                if let Tok::Word(w) = &toks[end] {
                    out.push(Tok::Word(w.clone()));
                }
                i = end + 1;
                continue;
            }
        }
        out.push(match &toks[i] {
            Tok::Word(w) => Tok::Word(w.clone()),
            Tok::Val(v) => Tok::Val(v.clone()),
            Tok::List(l) => Tok::List(l.clone()),
        });
        i += 1;
    }
    out
}

/// A list of values starting at `i`, all with the same cast (or none), ending at a closing bracket:
/// (values, cast, index of the closing bracket).
fn list_at(toks: &[Tok], mut i: usize) -> Option<(Vec<Value>, Option<String>, usize)> {
    let mut values = Vec::new();
    let mut cast: Option<Option<String>> = None;
    loop {
        let Some(Tok::Val(v)) = toks.get(i) else {
            return None;
        };
        values.push(v.clone());
        i += 1;
        let this_cast = match (toks.get(i), toks.get(i + 1)) {
            (Some(Tok::Word(c)), Some(Tok::Word(t))) if c == "::" => {
                i += 2;
                Some(t.clone())
            }
            _ => None,
        };
        match &cast {
            None => cast = Some(this_cast),
            Some(c) if *c == this_cast => {}
            Some(_) => return None,
        }
        match toks.get(i) {
            Some(Tok::Word(w)) if w == "," => i += 1,
            Some(Tok::Word(w)) if w == ")" || w == "]" => return Some((values, cast.flatten(), i)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_parameters_share_a_shape() {
        let a = Shape::of("SELECT relname FROM pg_class WHERE relname IN ('a'::VARCHAR, 'b'::VARCHAR) AND relkind = 'r'")
            .unwrap();
        let b = Shape::of(
            "select relname\n from pg_class where relname in ($1::VARCHAR) and relkind = $2",
        )
        .unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(
            a.slots[0],
            Slot::List(vec![Value::Text("a".into()), Value::Text("b".into())])
        );
        assert_eq!(
            b.slots[0],
            Slot::List(vec![Value::Param(0, Some("varchar"))])
        );
        assert_eq!(b.slots[1], Slot::One(Value::Param(1, None)));
        assert_eq!(b.n_params, 2);
    }

    #[test]
    fn quoted_names_keep_their_case_and_values_their_text() {
        let a = Shape::of("SELECT \"Name\" FROM t WHERE x = E'a\\nb'").unwrap();
        assert!(a.key.contains("\"Name\""), "{}", a.key);
        assert_eq!(a.slots, vec![Slot::One(Value::Text("a\nb".into()))]);
        assert_ne!(
            Shape::of("SELECT a FROM t").unwrap().key,
            Shape::of("SELECT b FROM t").unwrap().key
        );
    }
}
