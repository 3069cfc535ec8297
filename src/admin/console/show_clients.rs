//! `SHOW CLIENTS`: one row per client session (console sessions included): its id (the
//! BackendKeyData process id, what `KILL` takes), user, database, application name, address, TLS,
//! start time, state and the binds it holds connections of.

use super::answer::{Answer, ColType, Column, Value};
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[
    ("id", ColType::Int8),
    ("user", ColType::Text),
    ("database", ColType::Text),
    ("application_name", ColType::Text),
    ("address", ColType::Text),
    ("tls", ColType::Text),
    ("connected_since", ColType::Text),
    ("state", ColType::Text),
    ("binds", ColType::Text),
];

pub fn answer(proxy: &Proxy) -> Answer {
    let rows = proxy
        .clients
        .list()
        .iter()
        .map(|c| {
            let who = &c.identity;
            let binds: Vec<String> = c
                .binds()
                .into_iter()
                .map(|b| String::from(&*proxy.bind_name(b)))
                .collect();
            let since = chrono::DateTime::<chrono::Utc>::from(c.since)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            vec![
                Value::Int(i64::from(c.pid)),
                who.user.as_str().into(),
                who.database.as_str().into(),
                who.application_name.as_str().into(),
                Value::from(who.peer.map(|p| p.to_string())),
                who.tls.into(),
                since.into(),
                if who.console {
                    "console".into()
                } else {
                    c.state().as_str().into()
                },
                binds.join(", ").into(),
            ]
        })
        .collect();
    Answer::rows(COLUMNS, rows)
}
