//! `SHOW BINDS`: each bind's name, engine, URL (never its password), pool size, two-phase
//! capability, state (running or paused) and whether it answers now.

use super::answer::{Answer, ColType, Column, Value};
use crate::admin::ready::CHECK_TIMEOUT;
use crate::proxy::Proxy;
use crate::tx::Capability;

pub const COLUMNS: &[Column] = &[
    ("name", ColType::Text),
    ("engine", ColType::Text),
    ("url", ColType::Text),
    ("pool_size", ColType::Int8),
    ("capability", ColType::Text),
    ("state", ColType::Text),
    ("reachable", ColType::Text),
];

pub async fn answer(proxy: &Proxy) -> Answer {
    let checks = proxy.binds.iter().map(|b| async move {
        match tokio::time::timeout(CHECK_TIMEOUT, b.check()).await {
            Ok(Ok(_)) => "yes".to_owned(),
            Ok(Err(e)) => format!("no: {e}"),
            Err(_) => format!("no: no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        }
    });
    let reachable = futures::future::join_all(checks).await;
    let rows = proxy
        .binds
        .iter()
        .zip(&proxy.bind_names)
        .zip(reachable)
        .enumerate()
        .map(|(i, ((bind, name), reachable))| {
            let cfg = proxy.config.binds.get(name);
            let url = match (cfg, &proxy.catalog) {
                (Some(c), _) => c.url.to_string(),
                (None, Some(c)) => c.store.to_string(),
                (None, None) => String::new(),
            };
            let size = cfg.map(|c| c.pool_size);
            let capability = if proxy.is_user_bind(i) {
                match proxy.tx.capability(i) {
                    Some(Capability::TwoPhase) => "two-phase",
                    Some(Capability::LastResource) => "last resource",
                    None => "not known yet",
                }
            } else {
                "catalog"
            };
            let state = if proxy.pause.is_paused(i) {
                "paused"
            } else {
                "running"
            };
            vec![
                name.as_str().into(),
                bind.engine().into(),
                url.into(),
                Value::from(size),
                capability.into(),
                state.into(),
                reachable.into(),
            ]
        })
        .collect();
    Answer::rows(COLUMNS, rows)
}
