//! TEMPORARY STUB: replaced by the real analysis (branch `sql`).
use std::sync::Arc;
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}
impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}
impl TableName {
    pub fn is_catalog(&self) -> bool {
        self.name.starts_with("pg_")
            || matches!(
                self.schema.as_deref(),
                Some("pg_catalog") | Some("information_schema")
            )
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Release,
    RollbackTo,
    PrepareTransaction,
    Set,
    Show,
    Discard,
    Listen,
    Notify,
    Copy,
    Other,
}
#[derive(Debug)]
pub struct StatementInfo {
    pub tables: Vec<TableName>,
    pub kind: StatementKind,
}
#[derive(Debug)]
pub struct Analysis {
    pub statements: Vec<StatementInfo>,
    pub parsed: bool,
}
pub fn analyze_uncached(sql: &str) -> Analysis {
    use sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(stmts) => Analysis {
            parsed: true,
            statements: stmts
                .iter()
                .map(|s| {
                    let mut tables = vec![];
                    let _ = sqlparser::ast::visit_relations(s, |r| {
                        let parts: Vec<String> =
                            r.0.iter().map(|p| p.to_string().to_lowercase()).collect();
                        let t = if parts.len() >= 2 {
                            TableName {
                                schema: Some(parts[parts.len() - 2].clone()),
                                name: parts[parts.len() - 1].clone(),
                            }
                        } else {
                            TableName {
                                schema: None,
                                name: parts[0].clone(),
                            }
                        };
                        tables.push(t);
                        std::ops::ControlFlow::<()>::Continue(())
                    });
                    tables.sort();
                    tables.dedup();
                    let kind = match s {
                        sqlparser::ast::Statement::StartTransaction { .. } => StatementKind::Begin,
                        sqlparser::ast::Statement::Commit { .. } => StatementKind::Commit,
                        sqlparser::ast::Statement::Rollback {
                            savepoint: None, ..
                        } => StatementKind::Rollback,
                        _ => StatementKind::Other,
                    };
                    StatementInfo { tables, kind }
                })
                .collect(),
        },
        Err(_) => Analysis {
            parsed: false,
            statements: vec![StatementInfo {
                tables: vec![],
                kind: StatementKind::Other,
            }],
        },
    }
}
pub struct AnalysisCache;
impl AnalysisCache {
    pub fn new(_cap: usize) -> Self {
        AnalysisCache
    }
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        Arc::new(analyze_uncached(sql))
    }
}
