//! `SHOW STATS`: per bind, statements, errors and bytes sent and received since start (the
//! atomic copies `crate::metrics` keeps beside its Prometheus series).

use super::answer::{Answer, ColType, Column, Value};
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[
    ("bind", ColType::Text),
    ("statements", ColType::Int8),
    ("errors", ColType::Int8),
    ("bytes_sent", ColType::Int8),
    ("bytes_received", ColType::Int8),
];

pub fn answer(proxy: &Proxy) -> Answer {
    let rows = proxy
        .bind_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let f = crate::metrics::figures(i);
            vec![
                name.as_str().into(),
                Value::from(f.statements),
                Value::from(f.errors),
                Value::from(f.bytes_sent),
                Value::from(f.bytes_received),
            ]
        })
        .collect();
    Answer::rows(COLUMNS, rows)
}
