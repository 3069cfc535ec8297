//! `SHOW TABLES`: the live table → bind map. One row per rule of `tables:` (the pattern, its bind),
//! and, when there is a catalog, one per table found on a bind now: where the router sends it,
//! the rule that decided, and the bind it was found on (the two differ for a table that exists
//! on a bind the map does not send it to).

use super::answer::{Answer, ColType, Column, Value};
use crate::proxy::Proxy;
use crate::sql::TableName;

pub const COLUMNS: &[Column] = &[
    ("table", ColType::Text),
    ("bind", ColType::Text),
    ("rule", ColType::Text),
    ("found_on", ColType::Text),
];

/// How long reading one bind's tables may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn answer(proxy: &Proxy) -> Answer {
    let live = proxy.live_full();
    let mut rows: Vec<Vec<Value>> = live
        .router
        .rules()
        .into_iter()
        .map(|r| {
            let kind = if r.glob { "glob rule" } else { "rule" };
            vec![
                r.pattern.clone().into(),
                r.bind.into(),
                format!("{kind} {}", r.pattern).into(),
                Value::Null,
            ]
        })
        .collect();
    if proxy.catalog.is_some() {
        let slots = proxy
            .user_binds()
            .into_iter()
            .filter_map(|(_, id)| proxy.binds.get(id));
        let reads = slots.map(|slot| async move {
            let read = crate::catalog::read::read_bind(&slot.bind);
            let read = tokio::time::timeout(READ_TIMEOUT, read)
                .await
                .map_err(|_| format!("no answer within {} s", READ_TIMEOUT.as_secs()))
                .and_then(|r| r.map_err(|e| e.to_string()));
            (slot, read)
        });
        let mut found: Vec<(String, Vec<Value>)> = Vec::new();
        for (slot, read) in futures::future::join_all(reads).await {
            let on = String::from(&*slot.name);
            match read {
                Ok(schema) => {
                    for t in schema.tables {
                        let s = t
                            .schema
                            .clone()
                            .unwrap_or_else(|| live.config.default_schema.clone());
                        let name = TableName::new(Some(&s), &t.name);
                        let (bind, why) = live.router.why(&name);
                        found.push((
                            name.to_string(),
                            vec![
                                name.to_string().into(),
                                bind.into(),
                                why.to_string().into(),
                                on.as_str().into(),
                            ],
                        ));
                    }
                }
                Err(e) => found.push((
                    String::new(),
                    vec![
                        Value::Null,
                        Value::Null,
                        format!("could not read the bind: {e}").into(),
                        on.into(),
                    ],
                )),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        rows.extend(found.into_iter().map(|(_, r)| r));
    }
    Answer::rows(COLUMNS, rows)
}
