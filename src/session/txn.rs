//! The client's transaction inside the session: binds joining it, the control statements
//! bindproxy answers itself, and carrying out the commit plan of `tx::commit`.
//!
//! Owns: joining (a bind gets the client's BEGIN text, the transaction's preamble and its open
//! savepoints before its first statement), BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE /
//! ROLLBACK TO when they are not relayed (no participant yet, or several), and the commit
//! protocol: one-phase, sequential, or two-phase with a last resource and a durable decision.
//!
//! With exactly one participant, control statements are relayed to it as raw messages: the
//! single-bind transaction (pgbench, most ORM requests) costs nothing more than before.
//!
//! Must never: run a control step while any bind still owes the client answers (callers check
//! `Session::blocked(None)` first), answer COMMIT of a multi-bind transaction before its decision
//! is durable, or forget a prepared branch (a failed phase 2 is retried in the background).

use std::time::Instant;

use bytes::BytesMut;

use super::conn::{ident, Control, Outcome};
use super::{ControlStmt, Join, Session};
use crate::config::CrossBind;
use crate::error::ProxyError;
use crate::frontend::logsafe::Escaped;
use crate::metrics::TwoPhaseStep;
use crate::protocol::messages::{self, ErrorFields};
use crate::proxy::BindId;
use crate::sql::StatementKind;
use crate::tx::commit::{plan, CommitPlan};
use crate::tx::{gid, Capability, Origin, Phase, Transaction};

/// The two-phase steps run on several participants at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhaseStep {
    Prepare,
    CommitPrepared,
}

/// How a transaction ended, as the client's command tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Committed,
    RolledBack,
}

impl Session {
    /// The only participant, when there is exactly one: control statements are relayed there.
    pub(super) fn sole_participant(&self) -> Option<BindId> {
        match self.tx.as_ref().map(|t| t.participants.as_slice()) {
            Some([only]) => Some(only.bind),
            _ => None,
        }
    }

    /// The bind statements without tables of their own follow: the explicit transaction's first
    /// participant. In the implicit transaction of a Query or pipeline across binds they go where
    /// they would go outside a transaction (the default bind), as they did before it spanned binds.
    pub(super) fn tx_home(&self) -> Option<BindId> {
        self.tx
            .as_ref()
            .filter(|t| matches!(t.origin, Origin::Explicit { .. }))
            .and_then(Transaction::home)
    }

    /// True when a BEGIN is open but no statement has gone to a bind yet.
    pub(super) fn tx_deferred(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.participants.is_empty())
    }

    /// True when a statement for `bind` must be refused with 25P02: the transaction has failed
    /// and `bind` is not its only participant (which refuses by itself, as PostgreSQL).
    pub(super) fn refused_by_failure(&self, bind: BindId) -> bool {
        self.client_status() == b'E' && self.sole_participant() != Some(bind)
    }

    /// A SAVEPOINT, RELEASE or ROLLBACK TO relayed to the only participant: the transaction's
    /// savepoint stack follows, so that a bind joining later gets the same savepoints.
    pub(super) fn follow_relayed_control(&mut self, c: &ControlStmt) {
        let (Some(t), Some(name)) = (&mut self.tx, &c.savepoint) else {
            return;
        };
        match c.kind {
            StatementKind::Savepoint => t.savepoint(name),
            StatementKind::Release => {
                t.release(name);
            }
            StatementKind::RollbackTo => {
                t.rollback_to(name);
            }
            _ => {}
        }
    }

    /// True when a SET now must reach every participant: an explicit transaction has begun on
    /// a bind (before that, a SET joins with the BEGIN as part of the preamble).
    pub(super) fn spreads_settings(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| {
            matches!(t.origin, Origin::Explicit { .. }) && !t.participants.is_empty()
        })
    }

    /// A SET inside a transaction runs on `on` (the transaction's first bind): the other
    /// participants get it too, and so do binds that join later (its preamble), so that every
    /// bind sees the same settings — a `SET LOCAL search_path` must not leave a bind resolving
    /// names differently from the routing. The caller has made sure no answers are due.
    pub(super) async fn spread_set(&mut self, sql: &str, on: BindId) -> Result<(), ProxyError> {
        const MAX_PREAMBLE: usize = 1024;
        let Some(t) = &mut self.tx else { return Ok(()) };
        if t.preamble.len() >= MAX_PREAMBLE {
            return Err(ProxyError::FeatureNotSupported(format!(
                "more than {MAX_PREAMBLE} SET statements in one transaction across binds"
            )));
        }
        t.preamble.push(sql.to_owned());
        let others: Vec<BindId> = t.binds().into_iter().filter(|&b| b != on).collect();
        let mut notices = BytesMut::new();
        for b in others {
            self.control_on(b, Control::Run(sql), &mut notices).await?;
        }
        if !notices.is_empty() {
            self.local(notices, false);
        }
        Ok(())
    }

    /// A new transaction (BEGIN, or the implicit one of a Query that spans binds).
    pub(super) fn open_transaction(&mut self, origin: Origin) {
        let gid = self.proxy.tx.gids.next();
        self.tx = Some(Transaction::new(origin, gid));
    }

    /// A bind reported an open transaction that bindproxy did not open (the client's own BEGIN
    /// inside a multi-statement Query): follow it.
    pub(super) fn adopt_transaction(&mut self, bind: BindId) {
        if self.tx.is_none() {
            self.open_transaction(Origin::Explicit {
                begin: "BEGIN".into(),
            });
        }
        if let Some(t) = &mut self.tx {
            t.join(bind);
        }
    }

    /// Makes `bind` a participant of the open transaction, if there is one and `join` says so.
    pub(super) async fn join(&mut self, bind: BindId, join: Join) -> Result<(), ProxyError> {
        let Some(t) = &self.tx else { return Ok(()) };
        if join == Join::Outside || t.has(bind) {
            return Ok(());
        }
        if self.proxy.tx.mode == CrossBind::Reject {
            if let Some(open) = t.home() {
                return Err(ProxyError::CrossBindTransaction {
                    open: self.proxy.bind_name(open).to_string(),
                    wanted: self.proxy.bind_name(bind).to_string(),
                    tables: "transactions.cross_bind is reject".into(),
                });
            }
        }
        let begin = match &t.origin {
            Origin::Explicit { begin } => begin.clone(),
            Origin::Implicit | Origin::Pipeline => "BEGIN".to_owned(),
        };
        let preamble = t.preamble.clone();
        let savepoints: Vec<String> = t.savepoints.iter().map(|s| s.name.clone()).collect();
        let use_xa = self.proxy.tx.mode == CrossBind::TwoPhase
            && self.proxy.capability(bind) == Some(Capability::TwoPhase);
        let Some(t) = &mut self.tx else { return Ok(()) };
        let k = t.join(bind);
        let branch = gid::branch(&t.gid, k);
        if let Some(super::Conn::Pg(_)) = &self.conns[bind] {
            // One Query, relayed like the client's own and answered quietly: no extra round trip.
            let mut sql = begin;
            for s in &preamble {
                sql.push_str("; ");
                sql.push_str(s);
            }
            for name in &savepoints {
                sql.push_str("; SAVEPOINT ");
                sql.push_str(&ident(name));
            }
            self.send(bind, super::query_frame(&sql).raw());
            self.pending.push_back(super::Pending::Quiet {
                bind,
                ready: 1,
                errors: super::OwnErrors::Warn,
            });
            return Ok(());
        }
        let name = self.proxy.bind_name(bind).to_string();
        let mut notices = BytesMut::new();
        // A MySQL/SQLite bind takes its transaction's modes at its start: SET TRANSACTION sent
        // before any bind joined becomes part of its BEGIN.
        let (begin, preamble) = modes_into_begin(begin, preamble);
        let mut steps = vec![Control::Begin {
            sql: &begin,
            xa: use_xa.then_some(branch.as_str()),
        }];
        steps.extend(preamble.iter().map(|s| Control::Run(s)));
        steps.extend(savepoints.iter().map(|n| Control::Savepoint(n)));
        let mut result = Ok(());
        if let Some(c) = &mut self.conns[bind] {
            for step in steps {
                if let Err(e) = c.control(step, &name, &mut notices).await {
                    result = Err(e);
                    break;
                }
            }
        }
        if !notices.is_empty() {
            self.local(notices, false);
        }
        result
    }

    /// A transaction-control statement bindproxy answers itself: no transaction is open, none
    /// has reached a bind yet, or several binds take part. The caller has made sure that no
    /// answers are due (`blocked(None)`).
    pub(super) async fn control_stmt(
        &mut self,
        c: &ControlStmt,
        ready: bool,
    ) -> Result<(), ProxyError> {
        let mut out = BytesMut::new();
        let tag = match c.kind {
            StatementKind::Begin => {
                match &mut self.tx {
                    None => self.open_transaction(Origin::Explicit {
                        begin: c.sql.clone(),
                    }),
                    // A BEGIN inside a multi-statement Query or a pipeline turns its implicit
                    // transaction into an explicit one, as in PostgreSQL.
                    Some(t) if matches!(t.origin, Origin::Implicit | Origin::Pipeline) => {
                        t.origin = Origin::Explicit {
                            begin: "BEGIN".into(),
                        }
                    }
                    Some(_) => warning(
                        &mut out,
                        "25001",
                        "there is already a transaction in progress",
                    ),
                }
                if starts_with_word(&c.sql, "start") {
                    "START TRANSACTION"
                } else {
                    "BEGIN"
                }
            }
            StatementKind::Commit | StatementKind::Rollback => {
                if self.tx.is_none() {
                    warning(&mut out, "25P01", "there is no transaction in progress");
                    if c.kind == StatementKind::Commit {
                        "COMMIT"
                    } else {
                        "ROLLBACK"
                    }
                } else {
                    if c.kind == StatementKind::Commit {
                        // read-your-writes counts from the COMMIT on every bind it commits
                        let binds = self.tx.as_ref().map(|t| t.binds()).unwrap_or_default();
                        for b in binds {
                            self.note_write(b);
                        }
                    }
                    let ended = if c.kind == StatementKind::Commit {
                        self.commit(&mut out).await
                    } else {
                        self.rollback_all(&mut out).await;
                        Ok(Ended::RolledBack)
                    };
                    match ended {
                        Ok(Ended::Committed) => "COMMIT",
                        Ok(Ended::RolledBack) => "ROLLBACK",
                        Err(e) => {
                            // notices of the commit first, then its error (the caller's)
                            if !out.is_empty() {
                                self.local(out, false);
                            }
                            return Err(e);
                        }
                    }
                }
            }
            StatementKind::Savepoint
            | StatementKind::Release
            | StatementKind::RollbackTo
            | StatementKind::Set => return self.savepoint_stmt(c, ready, out).await,
            _ => "",
        };
        messages::command_complete(&mut out, tag);
        self.local(out, ready);
        Ok(())
    }

    /// SAVEPOINT, RELEASE, ROLLBACK TO (on every participant), or a SET before any bind joined
    /// (it joins with the BEGIN).
    async fn savepoint_stmt(
        &mut self,
        c: &ControlStmt,
        ready: bool,
        mut out: BytesMut,
    ) -> Result<(), ProxyError> {
        let tag = match c.kind {
            StatementKind::Savepoint => "SAVEPOINT",
            StatementKind::Release => "RELEASE",
            StatementKind::Set => "SET",
            _ => "ROLLBACK",
        };
        let Some(t) = &mut self.tx else {
            return Err(ProxyError::NoTransactionBlock(tag));
        };
        if c.kind == StatementKind::Set {
            if t.failed {
                return Err(ProxyError::InFailedTransaction);
            }
            t.preamble.push(c.sql.clone());
            messages::command_complete(&mut out, tag);
            self.local(out, ready);
            return Ok(());
        }
        let name = c.savepoint.clone().unwrap_or_default();
        if t.failed && c.kind != StatementKind::RollbackTo {
            return Err(ProxyError::InFailedTransaction);
        }
        let known = t.savepoints.iter().any(|s| s.name == name);
        if c.kind != StatementKind::Savepoint && !known {
            return Err(ProxyError::NoSuchSavepoint(name));
        }
        let binds = t.binds();
        let mut failure = None;
        for b in binds {
            let step = match c.kind {
                StatementKind::Savepoint => Control::Savepoint(&name),
                StatementKind::Release => Control::Release(&name),
                _ => Control::RollbackTo(&name),
            };
            if let Err(e) = self.control_on(b, step, &mut out).await {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(t) = &mut self.tx {
            match c.kind {
                StatementKind::Savepoint => t.savepoint(&name),
                StatementKind::Release => {
                    t.release(&name);
                }
                _ => {
                    t.rollback_to(&name);
                }
            }
        }
        messages::command_complete(&mut out, tag);
        self.local(out, ready);
        Ok(())
    }

    /// One control step on a participant's connection. A connection lost on the way is
    /// forgotten (the transaction's work there is gone).
    async fn control_on(
        &mut self,
        bind: BindId,
        step: Control<'_>,
        notices: &mut BytesMut,
    ) -> Result<Outcome, ProxyError> {
        let name = self.proxy.bind_name(bind).to_string();
        let Some(c) = &mut self.conns[bind] else {
            return Err(ProxyError::BackendLost {
                bind: name,
                reason: "the connection was lost earlier in this transaction".into(),
            });
        };
        let r = c.control(step, &name, notices).await;
        if let Err(ProxyError::BackendLost { reason, .. }) = &r {
            let reason = reason.clone();
            self.drop_conn(bind, &reason);
        }
        r
    }

    /// Runs phase 1 or 2 on several participants at once (each is its own connection, mostly
    /// to its own server): the connections are taken out of the session for the duration, and
    /// put back. Results are in the order of `branches`. A connection lost on the way is
    /// forgotten, as in [`Session::control_on`].
    async fn control_all(
        &mut self,
        branches: &[(BindId, String)],
        step: PhaseStep,
        out: &mut BytesMut,
    ) -> Vec<(BindId, Result<Outcome, ProxyError>)> {
        let mut taken: Vec<(BindId, Option<super::Conn>, String, BytesMut)> = branches
            .iter()
            .map(|(b, _)| {
                (
                    *b,
                    self.conns[*b].take(),
                    self.proxy.bind_name(*b).to_string(),
                    BytesMut::new(),
                )
            })
            .collect();
        let futures = taken.iter_mut().zip(branches).enumerate().map(
            |(i, ((b, conn, name, notices), (_, branch)))| async move {
                if i > 0 && step == PhaseStep::CommitPrepared {
                    // the first branch's COMMIT PREPARED is on its way, the others' are not
                    fail::fail_point!("tx::mid_commit", |_| std::process::abort());
                }
                let control = match step {
                    PhaseStep::Prepare => Control::Prepare(branch),
                    PhaseStep::CommitPrepared => Control::CommitPrepared(branch),
                };
                let r = match conn {
                    Some(c) => c.control(control, name, notices).await,
                    None => Err(ProxyError::BackendLost {
                        bind: name.clone(),
                        reason: "the connection was lost earlier in this transaction".into(),
                    }),
                };
                (*b, r)
            },
        );
        let results = futures::future::join_all(futures).await;
        for (b, conn, _, notices) in taken {
            out.extend_from_slice(&notices);
            self.conns[b] = conn;
        }
        for (b, r) in &results {
            if let Err(ProxyError::BackendLost { reason, .. }) = r {
                let reason = reason.clone();
                self.drop_conn(*b, &reason);
            }
        }
        results
    }

    /// Forgets a connection that broke during a control step (it is closed, never pooled).
    fn drop_conn(&mut self, bind: BindId, reason: &str) {
        tracing::warn!(bind = %self.proxy.bind_name(bind), "backend connection lost: {}", Escaped(reason));
        if let Some(super::Conn::Pg(mut lease)) = self.conns[bind].take() {
            lease.broken = true;
            crate::backend::pg::PgPool::release(lease);
        }
        self.forget_statements_on(bind);
    }

    /// ROLLBACK on every participant; the transaction is over.
    pub(super) async fn rollback_all(&mut self, notices: &mut BytesMut) {
        let Some(t) = self.tx.take() else { return };
        crate::metrics::transaction_ended(crate::metrics::Participants::of(t.participants.len()));
        for p in &t.participants {
            let _ = self.control_on(p.bind, Control::Rollback, notices).await;
        }
    }

    /// COMMIT of the open transaction, by the plan `tx::commit` makes for it. The transaction
    /// is over afterwards, whatever happened.
    pub(super) async fn commit(&mut self, out: &mut BytesMut) -> Result<Ended, ProxyError> {
        if self.client_status() == b'E' {
            self.rollback_all(out).await;
            return Ok(Ended::RolledBack);
        }
        self.learn_capabilities().await;
        let Some(t) = self.tx.take() else {
            return Ok(Ended::Committed);
        };
        crate::metrics::transaction_ended(crate::metrics::Participants::of(t.participants.len()));
        let proxy = &self.proxy;
        let plan = plan(&t, proxy.tx.mode, |b| {
            if t.one_phase.contains(&b) {
                return Capability::LastResource;
            }
            proxy.capability(b).unwrap_or(Capability::LastResource)
        });
        match plan {
            CommitPlan::Nothing => Ok(Ended::Committed),
            CommitPlan::OnePhase(b) => match self.control_on(b, Control::Commit, out).await? {
                Outcome::RolledBack => Ok(Ended::RolledBack),
                _ => Ok(Ended::Committed),
            },
            CommitPlan::Sequential(binds) => self.commit_sequential(&binds, out).await,
            CommitPlan::TwoPhase {
                prepare,
                last,
                not_atomic,
            } => {
                if not_atomic {
                    let names = self.names(&last);
                    warning(
                        out,
                        "01000",
                        &format!(
                            "binds {} cannot prepare (two-phase commit): they were committed one after another, not atomically with each other",
                            names.join(", ")
                        ),
                    );
                }
                let started = Instant::now();
                let ended = self.commit_two_phase(t, prepare, last, out).await;
                crate::metrics::two_phase_commit(started.elapsed());
                ended
            }
        }
    }

    /// Asks PostgreSQL participants whose capability is unknown (no start-up check ran) whether
    /// they can prepare.
    async fn learn_capabilities(&mut self) {
        let Some(t) = &self.tx else { return };
        if t.participants.len() < 2 {
            return;
        }
        for b in t.binds() {
            if self.proxy.capability(b).is_some() {
                continue;
            }
            let Some(super::Conn::Pg(lease)) = &mut self.conns[b] else {
                continue;
            };
            let shown = lease
                .conn
                .query_text("SHOW max_prepared_transactions")
                .await;
            if let Ok(Ok(rows)) = shown {
                let n = rows.first().and_then(|r| r.first()).cloned().flatten();
                let n = n.and_then(|n| n.trim().parse::<u32>().ok()).unwrap_or(0);
                let c = if n > 0 {
                    Capability::TwoPhase
                } else {
                    Capability::LastResource
                };
                self.proxy.set_capability(b, c);
            }
        }
    }

    fn names(&self, binds: &[BindId]) -> Vec<String> {
        binds
            .iter()
            .map(|&b| format!("\"{}\"", self.proxy.bind_name(b)))
            .collect()
    }

    /// `sequential`: COMMIT each participant in joining order. A failure rolls back the rest and
    /// says which binds committed.
    async fn commit_sequential(
        &mut self,
        binds: &[BindId],
        out: &mut BytesMut,
    ) -> Result<Ended, ProxyError> {
        for (i, &b) in binds.iter().enumerate() {
            let failed = match self.control_on(b, Control::Commit, out).await {
                Ok(Outcome::RolledBack) => Some(ProxyError::InFailedTransaction),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            let Some(cause) = failed else { continue };
            for &rest in &binds[i + 1..] {
                let _ = self.control_on(rest, Control::Rollback, out).await;
            }
            if i == 0 {
                return Err(cause);
            }
            return Err(ProxyError::PartialCommit {
                failed: self.proxy.bind_name(b).to_string(),
                cause: Box::new(cause),
                committed: binds[..i]
                    .iter()
                    .map(|&c| self.proxy.bind_name(c).to_string())
                    .collect(),
                rolled_back: binds[i..]
                    .iter()
                    .map(|&c| self.proxy.bind_name(c).to_string())
                    .collect(),
            });
        }
        Ok(Ended::Committed)
    }

    /// Two-phase commit: prepare, let the last resources decide, log the decision durably, then
    /// commit the prepared branches.
    async fn commit_two_phase(
        &mut self,
        mut t: Transaction,
        prepare: Vec<BindId>,
        last: Vec<BindId>,
        out: &mut BytesMut,
    ) -> Result<Ended, ProxyError> {
        // Phase 1, on every participant at once: their round trips and fsyncs overlap.
        let branches: Vec<(BindId, String)> = prepare
            .iter()
            .map(|&b| (b, t.branch_id(b).unwrap_or_default()))
            .collect();
        let step = Instant::now();
        let results = self.control_all(&branches, PhaseStep::Prepare, out).await;
        crate::metrics::two_phase_step(TwoPhaseStep::Prepare, step.elapsed());
        let mut failure = None;
        for (b, r) in results {
            match r {
                Ok(Outcome::NothingPrepared) => set_phase(&mut t, b, Phase::Committed),
                Ok(_) => set_phase(&mut t, b, Phase::Prepared),
                Err(e) => {
                    // The failing participant has rolled back by itself (PostgreSQL ends the
                    // transaction when PREPARE fails).
                    set_phase(&mut t, b, Phase::RolledBack);
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            self.abort_prepared(&mut t, out).await;
            return Err(e);
        }
        fail::fail_point!("tx::after_prepare", |_| std::process::abort());
        // The last resources: the first one's outcome is the decision. It carries that decision
        // in its own transaction (a row in its decision table), so that recovery can tell, after
        // a crash before the decision reaches the log, whether it committed.
        let step = Instant::now();
        let marker = match (prepare.is_empty(), last.first()) {
            (false, Some(&lr)) => self.write_marker(lr, &t.gid, out).await,
            _ => None,
        };
        for (i, &b) in last.iter().enumerate() {
            let failed = match self.control_on(b, Control::Commit, out).await {
                Ok(Outcome::RolledBack) => Some(ProxyError::InFailedTransaction),
                Ok(_) => {
                    set_phase(&mut t, b, Phase::Committed);
                    None
                }
                Err(e) => Some(e),
            };
            let Some(cause) = failed else { continue };
            set_phase(&mut t, b, Phase::RolledBack);
            if i == 0 {
                self.abort_prepared(&mut t, out).await;
                return Err(cause);
            }
            // Earlier last resources committed: the decision was commit. Finish it, and say
            // which bind did not follow.
            for &rest in &last[i + 1..] {
                let _ = self.control_on(rest, Control::Rollback, out).await;
                set_phase(&mut t, rest, Phase::RolledBack);
            }
            let _ = self.decide_and_finish(&mut t, out).await;
            return Err(ProxyError::PartialCommit {
                failed: self.proxy.bind_name(b).to_string(),
                cause: Box::new(cause),
                committed: self.bind_names_in(&t, Phase::Committed),
                rolled_back: self.bind_names_in(&t, Phase::RolledBack),
            });
        }
        if !last.is_empty() {
            crate::metrics::two_phase_step(TwoPhaseStep::LastResource, step.elapsed());
        }
        fail::fail_point!("tx::after_last_resource", |_| std::process::abort());
        self.decide_and_finish(&mut t, out).await?;
        if let Some(lr) = marker {
            // The decision is in the log now; the last resource's copy can go.
            let delete = crate::tx::marker::delete_sql(&t.gid);
            if let Err(e) = self.control_on(lr, Control::Run(&delete), out).await {
                tracing::debug!(gid = %t.gid, "could not delete the decision row: {e}");
            }
        }
        Ok(Ended::Committed)
    }

    /// Writes the decision row into the last resource's transaction, under a savepoint. Returns
    /// the bind when it is there; when it cannot be written (a read-only transaction, a MySQL bind
    /// that refuses DDL inside its transaction), the savepoint undoes the attempt and the commit
    /// goes on without it.
    async fn write_marker(&mut self, lr: BindId, gid: &str, out: &mut BytesMut) -> Option<BindId> {
        const SP: &str = "bindproxy_decision";
        let insert = crate::tx::marker::insert_sql(gid);
        if self
            .control_on(lr, Control::Savepoint(SP), out)
            .await
            .is_err()
        {
            return None;
        }
        let mut ignored = BytesMut::new();
        for sql in [crate::tx::marker::CREATE, insert.as_str()] {
            if let Err(e) = self.control_on(lr, Control::Run(sql), &mut ignored).await {
                tracing::warn!(bind = %self.proxy.bind_name(lr), gid, "the last resource cannot hold the commit decision ({e}); a crash before the decision is logged would roll back the other binds");
                let _ = self.control_on(lr, Control::RollbackTo(SP), out).await;
                let _ = self.control_on(lr, Control::Release(SP), out).await;
                return None;
            }
        }
        let _ = self.control_on(lr, Control::Release(SP), out).await;
        Some(lr)
    }

    fn bind_names_in(&self, t: &Transaction, phase: Phase) -> Vec<String> {
        t.participants
            .iter()
            .filter(|p| p.phase == phase)
            .map(|p| self.proxy.bind_name(p.bind).to_string())
            .collect()
    }

    /// The decision is commit: make it durable, then phase 2. Without a last resource, a
    /// decision that cannot be written rolls everything back instead.
    async fn decide_and_finish(
        &mut self,
        t: &mut Transaction,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let prepared: Vec<BindId> = t
            .participants
            .iter()
            .filter(|p| p.phase == Phase::Prepared)
            .map(|p| p.bind)
            .collect();
        if prepared.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = t
            .participants
            .iter()
            .map(|p| self.proxy.bind_name(p.bind).to_string())
            .collect();
        let last_resource_committed = t
            .participants
            .iter()
            .any(|p| p.phase == Phase::Committed && !prepared.contains(&p.bind));
        let step = Instant::now();
        let logged = self.proxy.tx.log.record_commit(&t.gid, &names).await;
        crate::metrics::two_phase_step(TwoPhaseStep::DecisionLog, step.elapsed());
        if let Err(e) = logged {
            if !last_resource_committed {
                self.abort_prepared(t, out).await;
                return Err(ProxyError::DecisionNotDurable(e.to_string()));
            }
            // A last resource already committed: the decision stands, even unlogged.
            tracing::error!(gid = %t.gid, "commit decision could not be logged: {e}; committing anyway");
        }
        fail::fail_point!("tx::after_decision", |_| std::process::abort());
        // Phase 2, on every prepared branch at once.
        let branches: Vec<(BindId, String)> = prepared
            .iter()
            .map(|&b| (b, t.branch_id(b).unwrap_or_default()))
            .collect();
        let mut all_done = true;
        let step = Instant::now();
        let results = self
            .control_all(&branches, PhaseStep::CommitPrepared, out)
            .await;
        crate::metrics::two_phase_step(TwoPhaseStep::CommitPrepared, step.elapsed());
        for (b, r) in results {
            match r {
                Ok(_) => set_phase(t, b, Phase::Committed),
                Err(e) => {
                    all_done = false;
                    let branch = t.branch_id(b).unwrap_or_default();
                    tracing::warn!(gid = %t.gid, bind = %self.proxy.bind_name(b), "COMMIT PREPARED failed, retrying in the background: {e}");
                    crate::tx::recover::finish_in_background(self.proxy.clone(), b, branch, true)
                        .await;
                }
            }
        }
        if all_done {
            if let Err(e) = self.proxy.tx.log.record_done(&t.gid).await {
                tracing::warn!(gid = %t.gid, "could not mark the transaction done in the decision log: {e}");
            }
        }
        Ok(())
    }

    /// The decision is rollback: roll back every prepared branch and every open participant.
    async fn abort_prepared(&mut self, t: &mut Transaction, out: &mut BytesMut) {
        let parts: Vec<(BindId, Phase)> =
            t.participants.iter().map(|p| (p.bind, p.phase)).collect();
        for (b, phase) in parts {
            match phase {
                Phase::Prepared => {
                    let branch = t.branch_id(b).unwrap_or_default();
                    if self
                        .control_on(b, Control::RollbackPrepared(&branch), out)
                        .await
                        .is_err()
                    {
                        crate::tx::recover::finish_in_background(
                            self.proxy.clone(),
                            b,
                            branch,
                            false,
                        )
                        .await;
                    }
                }
                Phase::Active => {
                    let _ = self.control_on(b, Control::Rollback, out).await;
                }
                Phase::Committed | Phase::RolledBack => continue,
            }
            set_phase(t, b, Phase::RolledBack);
        }
    }
}

/// `BEGIN` + `SET TRANSACTION ISOLATION LEVEL x` → `BEGIN ISOLATION LEVEL x` (PostgreSQL's
/// grammar takes the modes of both forms); other preamble statements stay as they are.
fn modes_into_begin(mut begin: String, preamble: Vec<String>) -> (String, Vec<String>) {
    // psql sends `BEGIN;`: the modes go before the semicolon.
    begin.truncate(begin.trim_end().trim_end_matches(';').trim_end().len());
    let mut rest = Vec::new();
    for s in preamble {
        let t = s.trim_start();
        match t.get(..16) {
            Some(p) if p.eq_ignore_ascii_case("set transaction ") => {
                begin.push(' ');
                begin.push_str(t[16..].trim_end().trim_end_matches(';'));
            }
            _ => rest.push(s),
        }
    }
    (begin, rest)
}

fn set_phase(t: &mut Transaction, bind: BindId, phase: Phase) {
    if let Some(p) = t.participants.iter_mut().find(|p| p.bind == bind) {
        p.phase = phase;
    }
}

fn starts_with_word(sql: &str, w: &str) -> bool {
    sql.trim_start()
        .get(..w.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(w))
}

/// A WARNING notice, as PostgreSQL sends for BEGIN inside a transaction.
fn warning(out: &mut BytesMut, code: &str, message: &str) {
    messages::notice_response(
        out,
        &ErrorFields {
            severity: "WARNING",
            code,
            message,
            detail: None,
            hint: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::modes_into_begin;

    #[test]
    fn set_transaction_joins_psqls_begin() {
        let (begin, rest) = modes_into_begin(
            "BEGIN;".into(),
            vec![
                "SET TRANSACTION READ ONLY;".into(),
                "SET LOCAL x = 1".into(),
            ],
        );
        assert_eq!(begin, "BEGIN READ ONLY");
        assert_eq!(rest, ["SET LOCAL x = 1"]);
    }
}
