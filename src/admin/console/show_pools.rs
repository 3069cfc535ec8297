//! `SHOW POOLS`: per bind, connections leased and idle, sessions waiting for one, checkouts since
//! start and the total time sessions waited; then each read replica's pool (leased and idle).

use super::answer::{Answer, ColType, Column, Value};
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[
    ("bind", ColType::Text),
    ("in_use", ColType::Int8),
    ("idle", ColType::Int8),
    ("waiting", ColType::Int8),
    ("checkouts", ColType::Int8),
    ("total_wait_us", ColType::Int8),
];

pub fn answer(proxy: &Proxy) -> Answer {
    let mut rows: Vec<Vec<Value>> = proxy
        .binds
        .iter()
        .zip(&proxy.bind_names)
        .enumerate()
        .map(|(i, (bind, name))| {
            let (in_use, idle) = bind.pool_usage();
            let f = crate::metrics::figures(i);
            vec![
                name.as_str().into(),
                Value::from(in_use),
                Value::from(idle),
                Value::from(f.waiting),
                Value::from(f.checkouts),
                Value::from(f.wait_us),
            ]
        })
        .collect();
    // each read replica's own pool, after the binds (`main (replica 1)`); its checkouts are not
    // counted apart from its bind's
    for r in proxy.replicas.iter().flatten().flat_map(|s| &s.replicas) {
        let (in_use, idle) = r.pool.usage();
        rows.push(vec![
            r.pool.name.as_str().into(),
            Value::from(in_use),
            Value::from(idle),
            Value::Null,
            Value::Null,
            Value::Null,
        ]);
    }
    Answer::rows(COLUMNS, rows)
}
