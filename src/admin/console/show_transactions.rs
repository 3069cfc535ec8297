//! `SHOW TRANSACTIONS`: the open transactions over several binds (session, participants and each
//! one's phase, as the sessions publish them), and the in-doubt ones: commit decisions in the
//! decision log not yet carried out on every participant.

use super::answer::{Answer, ColType, Column, Value};
use super::ConsoleError;
use crate::error::ProxyError;
use crate::proxy::Proxy;
use crate::tx::Phase;

pub const COLUMNS: &[Column] = &[
    ("kind", ColType::Text),
    ("client", ColType::Int8),
    ("transaction", ColType::Text),
    ("participants", ColType::Text),
];

fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Active => "active",
        Phase::Prepared => "prepared",
        Phase::Committed => "committed",
        Phase::RolledBack => "rolled back",
    }
}

pub fn answer(proxy: &Proxy) -> Result<Answer, ProxyError> {
    let mut rows = Vec::new();
    for c in proxy.clients.list() {
        let Some(t) = c.transaction() else { continue };
        let parts: Vec<String> = t
            .iter()
            .map(|(b, p)| {
                let name = proxy.bind_name(*b);
                format!("{name} ({})", phase(*p))
            })
            .collect();
        rows.push(vec![
            "open".into(),
            Value::Int(i64::from(c.pid)),
            Value::Null,
            parts.join(", ").into(),
        ]);
    }
    let pending = proxy
        .tx
        .log
        .pending()
        .map_err(|e| ConsoleError::DecisionLog(e.to_string()))?;
    for d in pending {
        rows.push(vec![
            "in doubt (commit decided)".into(),
            Value::Null,
            d.gid.into(),
            d.participants.join(", ").into(),
        ]);
    }
    Ok(Answer::rows(COLUMNS, rows))
}
