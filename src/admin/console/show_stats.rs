//! `SHOW STATS`: per bind, statements, errors and bytes sent and received since start (the
//! atomic copies `crate::metrics` keeps beside its Prometheus series).

use super::answer::{Answer, ColType, Column, Value};
use super::binds_in_force;
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[
    ("bind", ColType::Text),
    ("statements", ColType::Int8),
    ("errors", ColType::Int8),
    ("bytes_sent", ColType::Int8),
    ("bytes_received", ColType::Int8),
];

pub fn answer(proxy: &Proxy) -> Answer {
    let rows = binds_in_force(proxy)
        .iter()
        .map(|slot| {
            let f = crate::metrics::figures(slot.id);
            vec![
                (*slot.name).into(),
                Value::from(f.statements),
                Value::from(f.errors),
                Value::from(f.bytes_sent),
                Value::from(f.bytes_received),
            ]
        })
        .collect();
    Answer::rows(COLUMNS, rows)
}
