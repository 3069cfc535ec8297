//! Bounding how deep a statement nests, before anything recursive sees it.
//!
//! Owns: [`nesting`], an iterative estimate over the token stream of how deep the parsed tree will
//! be, the limits the translator accepts, and [`on_deep_stack`], which runs the recursive stages
//! (parse, walk, render, drop) of a statement that nests deeply on a thread with a stack sized for
//! the limit.
//!
//! Why: sqlparser parses `a OR b OR c …` and `1 + 1 + …` in a loop but builds a left-deep tree, and
//! everything after the parser — clone, the walk, the identifier visitor, Display, Drop — recurses
//! once per level. An 850-term sum overflowed a 2 MiB tokio worker stack, and Rust aborts the
//! whole process on stack overflow. Parentheses, subqueries and prefix operators are bounded by
//! the parser's own recursion limit ([`PARSER_RECURSION_LIMIT`]); operator chains are not, hence the
//! estimate.
//!
//! Limits (docs/sql-subset.md): the estimate may be at most [`MAX_NESTING`]; statements estimated
//! above [`INLINE_NESTING`] are translated on a thread with a [`DEEP_STACK_BYTES`] stack (a 1000-way
//! `OR` of `id = k`, ordinary ORM traffic, estimates about 2000 and works). The stack is reserved,
//! not committed: only the pages the recursion touches cost memory.
//!
//! Must never: recurse, or estimate below the real depth of the tree sqlparser builds (it may
//! overestimate: every binary operator of a chain counts, whatever its precedence).

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::{Result, TranslateError};

/// The largest accepted [`nesting`] estimate.
pub const MAX_NESTING: usize = 2_000;
/// Estimates up to this run on the caller's stack (a tokio worker's 2 MiB).
pub const INLINE_NESTING: usize = 100;
/// The stack of the thread that translates deeper statements: enough for [`MAX_NESTING`] levels in
/// every recursive stage of a debug build, with room to spare.
pub const DEEP_STACK_BYTES: usize = 256 << 20;
/// sqlparser's limit on nested parentheses, subqueries and prefix operators (its default).
pub const PARSER_RECURSION_LIMIT: usize = 50;

/// An upper estimate of the depth of the tree the tokens parse to: the largest, over the token
/// stream, of the open parentheses plus the operators chained at each open level since its last
/// comma.
pub fn nesting(tokens: &[TokenWithSpan]) -> usize {
    // Operators chained at each open parenthesis level (the first entry: the top level).
    let mut levels: Vec<usize> = vec![0];
    // Sum of `levels` plus the number of open parentheses.
    let mut current = 0usize;
    let mut max = 0usize;
    for t in tokens {
        match &t.token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                levels.push(0);
                current += 1;
            }
            Token::RParen | Token::RBracket | Token::RBrace if levels.len() > 1 => {
                let chained = levels.pop().unwrap_or(0);
                current = current.saturating_sub(chained + 1);
            }
            Token::Comma => {
                if let Some(last) = levels.last_mut() {
                    current = current.saturating_sub(*last);
                    *last = 0;
                }
            }
            Token::SemiColon => {
                levels.clear();
                levels.push(0);
                current = 0;
            }
            tok if chains(tok) => {
                if let Some(last) = levels.last_mut() {
                    *last += 1;
                }
                current += 1;
            }
            _ => {}
        }
        max = max.max(current);
    }
    max
}

/// Tokens that may add a level to the tree when repeated: binary and prefix operators, casts,
/// set operations.
fn chains(t: &Token) -> bool {
    match t {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::SIMILAR
                | Keyword::OVERLAPS
                | Keyword::XOR
                | Keyword::DIV
        ),
        Token::Whitespace(_)
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::EscapedStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_)
        | Token::Period
        | Token::Colon
        | Token::EOF => false,
        // Every operator token: `+ - * / % || = <> < > <= >= :: ->` and the rest.
        _ => true,
    }
}

/// Refuses an estimate above [`MAX_NESTING`].
pub fn check(depth: usize) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(TranslateError::TooDeep {
            depth,
            limit: MAX_NESTING,
        });
    }
    Ok(())
}

/// Runs `f` here when `depth` is at most [`INLINE_NESTING`], else on a scoped thread with a
/// [`DEEP_STACK_BYTES`] stack (the caller waits: the work is CPU-bound either way). A thread that
/// cannot be started, or that panics, is an error, not a crash.
pub fn on_deep_stack<T: Send>(depth: usize, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    if depth <= INLINE_NESTING {
        return f();
    }
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("bindproxy-deep-translate".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(s, f);
        match spawned {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(TranslateError::Invalid(
                    "the translator failed on this statement".into(),
                ))
            }),
            Err(e) => Err(TranslateError::Invalid(format!(
                "no thread to translate a deeply nested statement: {e}"
            ))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn est(sql: &str) -> usize {
        let toks = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        nesting(&toks)
    }

    #[test]
    fn estimates() {
        assert_eq!(est("SELECT 1"), 0);
        assert_eq!(est("SELECT 1 + 1 + 1"), 2);
        // Commas separate siblings: a long IN list or VALUES list stays shallow.
        let list: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert!(
            est(&format!(
                "SELECT * FROM t WHERE id IN ({})",
                list.join(", ")
            )) <= 3
        );
        let ors: Vec<String> = (0..1000).map(|i| format!("id = {i}")).collect();
        let d = est(&format!("SELECT * FROM t WHERE {}", ors.join(" OR ")));
        assert!((1999..=2001).contains(&d), "{d}");
        assert!(est("SELECT ((((1))))") >= 4);
        // Operators inside literals do not count.
        assert_eq!(est("SELECT '1+1+1+1', $$a-b-c$$"), 0);
    }
}
