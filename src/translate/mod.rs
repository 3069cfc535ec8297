//! TEMPORARY STUB: replaced by the real dialect rewrite (branch `xlate`).
//!
//! Only what the translated-bind tests need: statement splitting, `$n` → `?`, the statement kind from
//! the first keyword, naive parameter hints (`col = $n`, `INSERT INTO t (cols) VALUES ($1, …)`), and
//! `RETURNING` passed through unchanged.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    MySql,
    Sqlite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    CreateTable,
    DropTable,
    CreateIndex,
    Begin,
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    pub table: String,
    pub column: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returning {
    /// The engine returns the rows itself.
    Native,
}

#[derive(Debug, Clone)]
pub struct Rewritten {
    pub sql: String,
    pub params: Vec<usize>,
    pub kind: Kind,
    pub returning: Option<Returning>,
    pub param_hints: Vec<Option<ColumnRef>>,
    pub pg_types: Vec<Option<u32>>,
    pub tag_hint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("syntax error: {0}")]
    Parse(String),
    #[error("{construct} is not supported on this bind")]
    Unsupported { construct: String },
}

fn split(sql: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut q: Option<char> = None;
    for c in sql.chars() {
        match q {
            Some(qc) => {
                cur.push(c);
                if c == qc {
                    q = None;
                }
            }
            None if c == '\'' || c == '"' => {
                q = Some(c);
                cur.push(c);
            }
            None if c == ';' => out.push(std::mem::take(&mut cur)),
            None => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_string())
        .collect()
}

pub fn rewrite_sql(sql: &str, target: Target) -> Result<Vec<Rewritten>, TranslateError> {
    let _ = target;
    let mut all = vec![];
    for stmt in split(sql) {
        let w = words(&stmt);
        let up: Vec<String> = w.iter().map(|x| x.to_ascii_uppercase()).collect();
        let first = up.first().cloned().unwrap_or_default();
        let second = up.get(1).cloned().unwrap_or_default();
        let kind = match first.as_str() {
            "SELECT" | "WITH" | "VALUES" => Kind::Select,
            "INSERT" => Kind::Insert,
            "UPDATE" => Kind::Update,
            "DELETE" => Kind::Delete,
            "CREATE" if up.contains(&"TABLE".to_string()) => Kind::CreateTable,
            "CREATE" if up.contains(&"INDEX".to_string()) => Kind::CreateIndex,
            "DROP" if second == "TABLE" => Kind::DropTable,
            "BEGIN" | "START" => Kind::Begin,
            "COMMIT" | "END" => Kind::Commit,
            "ROLLBACK" | "ABORT" if up.contains(&"TO".to_string()) => {
                Kind::RollbackTo(w.last().cloned().unwrap_or_default().to_lowercase())
            }
            "ROLLBACK" | "ABORT" => Kind::Rollback,
            "SAVEPOINT" => Kind::Savepoint(second.to_lowercase()),
            "RELEASE" => Kind::Release(w.last().cloned().unwrap_or_default().to_lowercase()),
            "" => return Err(TranslateError::Parse("empty".into())),
            _ => Kind::Other,
        };
        if first == "LISTEN" || first == "COPY" {
            return Err(TranslateError::Unsupported { construct: first });
        }
        // $n → ?
        let mut out = String::new();
        let mut params = vec![];
        let mut q: Option<char> = None;
        let chars: Vec<char> = stmt.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if let Some(qc) = q {
                out.push(c);
                if c == qc {
                    q = None;
                }
                i += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                q = Some(c);
                out.push(c);
                i += 1;
                continue;
            }
            if c == '$' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit() {
                let mut j = i + 1;
                let mut n = 0usize;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    n = n * 10 + chars[j].to_digit(10).unwrap_or(0) as usize;
                    j += 1;
                }
                params.push(n.saturating_sub(1));
                out.push('?');
                // skip a ::type cast after a placeholder
                i = j;
                continue;
            }
            out.push(c);
            i += 1;
        }
        let nparams = params.iter().map(|p| p + 1).max().unwrap_or(0);
        let mut hints: Vec<Option<ColumnRef>> = vec![None; nparams];
        // table: word after FROM / INTO / UPDATE
        let table = up
            .iter()
            .position(|x| x == "FROM" || x == "INTO" || x == "UPDATE")
            .and_then(|p| w.get(p + 1))
            .map(|t| t.to_lowercase());
        if let Some(table) = &table {
            if kind == Kind::Insert {
                if let (Some(open), Some(vals)) = (stmt.find('('), up.iter().position(|x| x == "VALUES")) {
                    let close = stmt[open..].find(')').map(|c| open + c).unwrap_or(open);
                    let cols: Vec<String> = words(&stmt[open + 1..close]);
                    let placeholders: Vec<&String> = w[vals + 1..].iter().collect();
                    for (ci, ph) in placeholders.iter().enumerate() {
                        if let Some(n) = ph.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                            if let (Some(col), Some(slot)) = (cols.get(ci), hints.get_mut(n.saturating_sub(1))) {
                                *slot = Some(ColumnRef { table: table.clone(), column: col.to_lowercase() });
                            }
                        }
                    }
                }
            }
            // col = $n
            let toks: Vec<&str> = stmt.split_whitespace().collect();
            for k in 0..toks.len().saturating_sub(2) {
                if ["=", "<", ">", "<=", ">=", "<>", "!="].contains(&toks[k + 1]) {
                    if let Some(n) = toks[k + 2]
                        .trim_end_matches([',', ')'])
                        .strip_prefix('$')
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        let col = toks[k].trim_start_matches('(').rsplit('.').next().unwrap_or("");
                        if let Some(slot) = hints.get_mut(n.saturating_sub(1)) {
                            *slot = Some(ColumnRef { table: table.clone(), column: col.to_lowercase().trim_matches('"').to_string() });
                        }
                    }
                }
            }
        }
        let returning = up.contains(&"RETURNING".to_string()).then_some(Returning::Native);
        all.push(Rewritten {
            sql: out.trim().to_string(),
            params,
            kind,
            returning,
            param_hints: hints,
            pg_types: vec![None; nparams],
            tag_hint: None,
        });
    }
    Ok(all)
}
