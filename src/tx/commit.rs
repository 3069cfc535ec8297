//! How a transaction's participants commit: the plan, decided from the mode and what each bind
//! can do. The session carries it out (`session/txn.rs`); this file only decides.
//!
//! Must never: plan more than one last resource as atomic: with two or more participants that
//! cannot prepare, the plan says so ([`CommitPlan::TwoPhase::not_atomic`]) and the client is warned.

use super::{Capability, Transaction};
use crate::config::CrossBind;
use crate::proxy::BindId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitPlan {
    /// Nothing ran anywhere: answer COMMIT.
    Nothing,
    /// One participant: a plain COMMIT (the hot path: no log, no extra round trip).
    OnePhase(BindId),
    /// `sequential`: COMMIT each, in joining order.
    Sequential(Vec<BindId>),
    /// `two_phase`: prepare `prepare`, then commit `last` one after another (the first of them is
    /// the last resource: its outcome is the decision), log the decision, then commit the
    /// prepared branches.
    TwoPhase {
        prepare: Vec<BindId>,
        last: Vec<BindId>,
        /// Two or more participants cannot prepare: their commits are not atomic with each
        /// other, and the client is told which.
        not_atomic: bool,
    },
}

/// The plan for committing `tx`. `capability` answers for every participant (a PostgreSQL bind
/// whose capability is unknown is asked before planning).
pub fn plan(
    tx: &Transaction,
    mode: CrossBind,
    capability: impl Fn(BindId) -> Capability,
) -> CommitPlan {
    let binds = tx.binds();
    match binds.as_slice() {
        [] => return CommitPlan::Nothing,
        [one] => return CommitPlan::OnePhase(*one),
        _ => {}
    }
    match mode {
        // `reject` never lets a second bind join; if one did, commit it like `sequential`.
        CrossBind::Sequential | CrossBind::Reject => CommitPlan::Sequential(binds),
        CrossBind::TwoPhase => {
            let (prepare, last): (Vec<BindId>, Vec<BindId>) = binds
                .into_iter()
                .partition(|&b| capability(b) == Capability::TwoPhase);
            CommitPlan::TwoPhase {
                not_atomic: last.len() > 1,
                prepare,
                last,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Origin;

    fn tx(binds: &[BindId]) -> Transaction {
        let mut t = Transaction::new(Origin::Implicit, "g".into());
        for &b in binds {
            t.join(b);
        }
        t
    }

    #[test]
    fn plans_follow_mode_and_capability() {
        // binds 0, 1: can prepare; 2, 3: cannot
        let cap = |b: BindId| {
            if b < 2 {
                Capability::TwoPhase
            } else {
                Capability::LastResource
            }
        };
        assert_eq!(
            plan(&tx(&[]), CrossBind::TwoPhase, cap),
            CommitPlan::Nothing
        );
        assert_eq!(
            plan(&tx(&[2]), CrossBind::TwoPhase, cap),
            CommitPlan::OnePhase(2)
        );
        assert_eq!(
            plan(&tx(&[2, 0, 1]), CrossBind::TwoPhase, cap),
            CommitPlan::TwoPhase {
                prepare: vec![0, 1],
                last: vec![2],
                not_atomic: false
            }
        );
        assert_eq!(
            plan(&tx(&[3, 0, 2]), CrossBind::TwoPhase, cap),
            CommitPlan::TwoPhase {
                prepare: vec![0],
                last: vec![3, 2],
                not_atomic: true
            }
        );
        assert_eq!(
            plan(&tx(&[1, 0]), CrossBind::Sequential, cap),
            CommitPlan::Sequential(vec![1, 0])
        );
    }
}
