//! TEMPORARY STUB: replaced by the real router (branch `sql`).
use crate::sql::{Analysis, TableName};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);
pub struct Router {
    rules: Vec<(String, String)>,
    default_bind: String,
}
pub struct Route {
    pub bind: Option<String>,
    pub tables: Vec<(TableName, String)>,
}
#[derive(Debug)]
pub struct CrossBind {
    pub tables: Vec<(TableName, String)>,
}
impl std::fmt::Display for CrossBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statement touches several binds: {}",
            self.tables
                .iter()
                .map(|(t, b)| format!("{t} → {b}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
impl Router {
    pub fn new(
        rules: &[(String, String)],
        default_bind: &str,
        _default_schema: &str,
    ) -> Result<Router, RuleError> {
        for (p, _) in rules {
            if p.contains('[') {
                return Err(RuleError(format!("bad pattern {p}")));
            }
        }
        Ok(Router {
            rules: rules.to_vec(),
            default_bind: default_bind.into(),
        })
    }
    pub fn bind_for_table(&self, t: &TableName) -> Option<&str> {
        self.rules
            .iter()
            .find(|(p, _)| {
                *p == t.name
                    || p.strip_suffix('*')
                        .is_some_and(|pre| t.name.starts_with(pre))
            })
            .map(|(_, b)| b.as_str())
    }
    pub fn route(&self, a: &Analysis) -> Result<Route, CrossBind> {
        let mut tables = vec![];
        for s in &a.statements {
            for t in &s.tables {
                let b = if t.is_catalog() {
                    self.default_bind.clone()
                } else {
                    self.bind_for_table(t)
                        .unwrap_or(&self.default_bind)
                        .to_string()
                };
                tables.push((t.clone(), b));
            }
        }
        let mut binds: Vec<&String> = tables.iter().map(|(_, b)| b).collect();
        binds.sort();
        binds.dedup();
        match binds.len() {
            0 => Ok(Route { bind: None, tables }),
            1 => Ok(Route {
                bind: Some(binds[0].clone()),
                tables,
            }),
            _ => Err(CrossBind { tables }),
        }
    }
}
