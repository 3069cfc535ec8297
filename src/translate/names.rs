//! Identifier quoting and placeholder numbering.
//!
//! Owns: the `VisitorMut` pass that, after [`super::walk`] has rewritten the tree, quotes every
//! identifier for the target (backticks on MySQL, double quotes on SQLite; unquoted PostgreSQL names
//! are folded to lower case first, as PostgreSQL does), renders string literals itself (sqlparser's
//! Display does not escape a quote after a backslash) and turns each `$n` into a marker; and the final
//! step that turns markers in the rendered text into `?` while recording the parameter order.
//! Must never: change anything but identifiers' spelling and placeholders.

use std::ops::ControlFlow;

use sqlparser::ast::{Ident, Value, ValueWithSpan, VisitMut, VisitorMut};

use super::error::{Result, TranslateError};
use super::Target;

/// Quote style that marks an identifier the walker wants printed verbatim (function names, keywords
/// such as DEFAULT, type names). The pass below turns it into an unquoted identifier.
pub(crate) const RAW: char = '\u{1}';
/// Marker character around a placeholder number in rendered text. PostgreSQL text cannot contain NUL,
/// so a marker can only come from a placeholder.
const MARK: char = '\u{0}';

/// An identifier printed verbatim (never quoted).
pub(crate) fn raw(name: &str) -> Ident {
    Ident {
        value: name.to_string(),
        quote_style: Some(RAW),
        span: sqlparser::tokenizer::Span::empty(),
    }
}

/// PostgreSQL's folding of an identifier: unquoted names are lower case.
pub(crate) fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        None => ident.value.to_lowercase(),
        _ => ident.value.clone(),
    }
}

/// Quote an already-folded name for the target.
pub(crate) fn quote(name: &str, target: Target) -> String {
    match target {
        Target::MySql => format!("`{}`", name.replace('`', "``")),
        Target::Sqlite => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// A string literal for both targets: every `'` doubled, nothing else escaped (MySQL sessions run
/// with `NO_BACKSLASH_ESCAPES`). Carried in the tree as a `Placeholder`, which Display prints
/// verbatim; [`literal_value`] reads it back.
pub(crate) fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The value of a literal made by [`string_literal`] (`None` for other placeholders).
pub(crate) fn literal_value(placeholder: &str) -> Option<String> {
    let inner = placeholder.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// Parse `$n` into the 0-based parameter index.
pub(crate) fn placeholder_index(p: &str) -> Result<usize> {
    let n: usize = p
        .strip_prefix('$')
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| TranslateError::unsupported(format!("placeholder {p} (only $n)")))?;
    n.checked_sub(1)
        .ok_or_else(|| TranslateError::Invalid("there is no parameter $0".into()))
}

struct Normalize {
    target: Target,
    error: Option<TranslateError>,
}

impl VisitorMut for Normalize {
    type Break = ();

    fn pre_visit_ident(&mut self, ident: &mut Ident) -> ControlFlow<()> {
        if ident.quote_style == Some(RAW) {
            ident.quote_style = None;
        } else {
            // Quoted here, printed verbatim: sqlparser's Display leaves a quote after a backslash
            // (and a doubled quote) unescaped, which would let a name out of its quotes.
            ident.value = quote(&fold(ident), self.target);
            ident.quote_style = None;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        if let Value::SingleQuotedString(s) = &value.value {
            // Same reason as for names: `a\'` or `''` inside a value would come out unescaped.
            value.value = Value::Placeholder(string_literal(s));
            return ControlFlow::Continue(());
        }
        if let Value::Placeholder(p) = &mut value.value {
            if p.starts_with(MARK) {
                return ControlFlow::Continue(());
            }
            match placeholder_index(p) {
                Ok(i) => *p = format!("{MARK}{i}{MARK}"),
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Quote identifiers and mark placeholders in any AST node.
pub(crate) fn normalize<T: VisitMut>(node: &mut T, target: Target) -> Result<()> {
    let mut v = Normalize {
        target,
        error: None,
    };
    let _ = node.visit(&mut v);
    match v.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Replace placeholder markers in rendered SQL by `?`, returning the parameter index of each `?`.
pub(crate) fn finish(rendered: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(rendered.len());
    let mut params = Vec::new();
    let mut parts = rendered.split(MARK);
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // After the first piece, pieces alternate: number, text, number, text, …
    let mut is_number = true;
    for piece in parts {
        if is_number {
            out.push('?');
            params.push(piece.parse().unwrap_or(usize::MAX));
        } else {
            out.push_str(piece);
        }
        is_number = !is_number;
    }
    (out, params)
}
