//! `SHOW POOLS`: per bind, connections leased and idle, sessions waiting for one, checkouts since
//! start and the total time sessions waited; then each read replica's pool (leased and idle).

use super::answer::{Answer, ColType, Column, Value};
use super::binds_in_force;
use std::sync::Arc;

use crate::backend::pg::ReplicaSet;
use crate::proxy::Proxy;
use crate::registry::Standing;

pub const COLUMNS: &[Column] = &[
    ("bind", ColType::Text),
    ("in_use", ColType::Int8),
    ("idle", ColType::Int8),
    ("waiting", ColType::Int8),
    ("checkouts", ColType::Int8),
    ("total_wait_us", ColType::Int8),
];

pub fn answer(proxy: &Proxy) -> Answer {
    // the binds in force, then pools a reload retired that still have connections out
    let in_force = binds_in_force(proxy);
    let draining = proxy
        .binds
        .all()
        .iter()
        .filter(|slot| slot.standing() != Standing::Serving && slot.bind.pool_usage().0 > 0)
        .cloned()
        .collect::<Vec<_>>();
    let mut rows: Vec<Vec<Value>> = in_force
        .iter()
        .map(|slot| (slot, String::from(&*slot.name)))
        .chain(
            draining
                .iter()
                .map(|slot| (slot, format!("{} (draining)", slot.name))),
        )
        .map(|(slot, name)| {
            let (in_use, idle) = slot.bind.pool_usage();
            let f = crate::metrics::figures(slot.id);
            vec![
                name.into(),
                Value::from(in_use),
                Value::from(idle),
                Value::from(f.waiting),
                Value::from(f.checkouts),
                Value::from(f.wait_us),
            ]
        })
        .collect();
    // each read replica's own pool, after the binds (`main (replica 1)`), then those of retired
    // slots that still have connections out; its checkouts are not counted apart from its bind's
    let draining_sets = draining_replicas(proxy);
    let replica_pools = in_force
        .iter()
        .filter_map(|slot| slot.replicas.as_ref())
        .flat_map(|set| set.replicas.iter().map(|r| (r, false)))
        .chain(
            draining_sets
                .iter()
                .flat_map(|set| set.replicas.iter().map(|r| (r, true))),
        );
    for (r, drains) in replica_pools {
        let (in_use, idle) = r.pool.usage();
        if drains && in_use == 0 {
            continue;
        }
        let name = if drains {
            format!("{} (draining)", r.pool.name)
        } else {
            r.pool.name.clone()
        };
        rows.push(vec![
            name.into(),
            Value::from(in_use),
            Value::from(idle),
            Value::Null,
            Value::Null,
            Value::Null,
        ]);
    }
    Answer::rows(COLUMNS, rows)
}

/// The replica sets of slots a reload retired.
fn draining_replicas(proxy: &Proxy) -> Vec<Arc<ReplicaSet>> {
    proxy
        .binds
        .all()
        .iter()
        .filter(|slot| slot.standing() != Standing::Serving)
        .filter_map(|slot| slot.replicas.clone())
        .collect()
}
