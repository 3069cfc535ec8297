//! `SHOW POOLS`: per bind, connections leased and idle, sessions waiting for one, checkouts since
//! start and the total time sessions waited.

use super::answer::{Answer, ColType, Column, Value};
use super::binds_in_force;
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
    let rows = in_force
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
    Answer::rows(COLUMNS, rows)
}
