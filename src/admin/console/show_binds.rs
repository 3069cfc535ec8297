//! `SHOW BINDS`: each bind's name, engine, URL (never its password), pool size, two-phase
//! capability, state (running or paused) and whether it answers now.

use super::answer::{Answer, ColType, Column, Value};
use super::binds_in_force;
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
    let slots = binds_in_force(proxy);
    let checks = slots.iter().map(|slot| async move {
        match tokio::time::timeout(CHECK_TIMEOUT, slot.bind.check()).await {
            Ok(Ok(_)) => "yes".to_owned(),
            Ok(Err(e)) => format!("no: {e}"),
            Err(_) => format!("no: no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        }
    });
    let reachable = futures::future::join_all(checks).await;
    let rows = slots
        .iter()
        .zip(reachable)
        .map(|(slot, reachable)| {
            let url = match (&slot.config, &proxy.catalog) {
                (Some(c), _) => c.url.to_string(),
                (None, Some(c)) => c.store.to_string(),
                (None, None) => String::new(),
            };
            let size = slot.config.as_ref().map(|c| c.pool_size);
            let capability = if proxy.is_user_bind(slot.id) {
                match slot.capability() {
                    Some(Capability::TwoPhase) => "two-phase",
                    Some(Capability::LastResource) => "last resource",
                    None => "not known yet",
                }
            } else {
                "catalog"
            };
            let state = if proxy.pause.is_paused(&slot.name) {
                "paused"
            } else {
                "running"
            };
            vec![
                (*slot.name).into(),
                slot.bind.engine().into(),
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
