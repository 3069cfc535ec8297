//! Recovery: finishing the prepared branches a crash (or a lost connection) left in doubt.
//!
//! Owns: which binds can prepare ([`detect_capabilities`]: `max_prepared_transactions` of each
//! PostgreSQL bind); start-up recovery ([`recover`]): every prepared branch of this instance
//! (`tx::gid::transaction_of`) is committed when the log holds its transaction's commit decision
//! and rolled back otherwise (presumed abort), then finished decisions are marked done and the log
//! is compacted; and the phase-2 retry of one branch ([`finish_in_background`]).
//!
//! Must never: touch a prepared transaction of another instance or of nobody's (its id is not
//! ours); roll back a branch whose transaction has a commit decision; mark a decision done while
//! one of its participants could not be examined; fail recovery as a whole because one bind is
//! unreachable (its decisions stay pending and the report says so).
//!
//! Runs only while this process holds the log's lock (`DecisionLog::lock`), before any session:
//! a prepared branch without a decision then cannot belong to a commit still under way.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::log::LogError;
use super::{gid, Capability};
use crate::backend::pg::PgPool;
use crate::backend::translated::EngineBind;
use crate::backend::Bind;
use crate::error::ProxyError;
use crate::proxy::{BindId, Proxy};

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("\"{0}\" is not a branch id bindproxy makes (1 to 64 letters, digits or _)")]
    BadBranchId(String),
}

/// What recovery did, bind by bind.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Commit decisions found pending in the log.
    pub decisions: usize,
    pub binds: Vec<BindReport>,
    /// Transactions whose decision was carried out everywhere and marked done.
    pub finished: Vec<String>,
    /// Decisions left pending, each with why.
    pub in_doubt: Vec<(String, String)>,
}

/// One bind's part of the report.
#[derive(Debug, Clone, Default)]
pub struct BindReport {
    pub bind: String,
    /// Branches committed (their transaction had a commit decision).
    pub committed: Vec<String>,
    /// Branches rolled back (no decision: presumed abort).
    pub rolled_back: Vec<String>,
    /// Branches that could not be finished, with the error.
    pub failed: Vec<(String, String)>,
    /// Why the bind was not examined: it cannot prepare (not a problem), or it is unreachable.
    pub skipped: Option<String>,
    /// The bind could not be examined (unreachable, or the listing failed).
    pub unreachable: Option<String>,
}

impl RecoveryReport {
    /// Nothing of this instance is left in doubt: every bind that can prepare was examined,
    /// every branch found was finished, every decision is done.
    pub fn is_clean(&self) -> bool {
        self.in_doubt.is_empty()
            && self
                .binds
                .iter()
                .all(|b| b.unreachable.is_none() && b.failed.is_empty())
    }

    pub fn committed(&self) -> usize {
        self.binds.iter().map(|b| b.committed.len()).sum()
    }

    pub fn rolled_back(&self) -> usize {
        self.binds.iter().map(|b| b.rolled_back.len()).sum()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "recovery: {} pending commit decision(s); {} branch(es) committed, {} rolled back; {} transaction(s) finished",
            self.decisions,
            self.committed(),
            self.rolled_back(),
            self.finished.len()
        )?;
        for b in &self.binds {
            if let Some(why) = &b.skipped {
                writeln!(f, "bind {}: skipped ({why})", b.bind)?;
                continue;
            }
            if let Some(why) = &b.unreachable {
                writeln!(
                    f,
                    "bind {}: NOT EXAMINED: {why} (its prepared branches stay in doubt; run `bindproxy recover` when it is back)",
                    b.bind
                )?;
                continue;
            }
            writeln!(
                f,
                "bind {}: {} committed, {} rolled back{}",
                b.bind,
                b.committed.len(),
                b.rolled_back.len(),
                if b.failed.is_empty() {
                    String::new()
                } else {
                    format!(", {} FAILED", b.failed.len())
                }
            )?;
            for (branch, why) in &b.failed {
                writeln!(f, "  branch {branch}: {why}")?;
            }
        }
        for (gid, why) in &self.in_doubt {
            writeln!(f, "in doubt: transaction {gid}: {why}")?;
        }
        Ok(())
    }
}

/// `max_prepared_transactions` of a PostgreSQL bind, over a fresh connection.
pub async fn pg_max_prepared(pool: &PgPool) -> Result<i64, ProxyError> {
    let mut conn = pool.connect().await?;
    let bad = |reason: String| ProxyError::BackendUnavailable {
        bind: pool.name.clone(),
        reason,
    };
    let rows = conn
        .query_text("SHOW max_prepared_transactions")
        .await
        .map_err(|e| bad(e.to_string()))?
        .map_err(bad)?;
    let text = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.clone())
        .ok_or_else(|| bad("SHOW max_prepared_transactions returned no value".into()))?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| bad(format!("max_prepared_transactions is {text:?}")))
}

/// Asks every PostgreSQL bind in force whether it can prepare (`max_prepared_transactions` > 0)
/// and records the answer in the bind registry. A bind that cannot be reached stays unknown.
pub async fn detect_capabilities(proxy: &Proxy) {
    let ids: Vec<BindId> = proxy.user_binds().into_iter().map(|(_, id)| id).collect();
    detect_capabilities_of(proxy, &ids).await
}

/// [`detect_capabilities`] for some binds (those a reload opened).
pub async fn detect_capabilities_of(proxy: &Proxy, ids: &[BindId]) {
    let asks = ids
        .iter()
        .filter(|i| proxy.is_user_bind(**i))
        .filter_map(|&i| match proxy.binds.get(i).as_ref().map(|s| &s.bind) {
            Some(Bind::Pg(p)) => Some((i, p.clone())),
            _ => None,
        })
        .map(|(i, p)| async move { (i, pg_max_prepared(&p).await) });
    for (i, answer) in futures::future::join_all(asks).await {
        let name = &proxy.bind_name(i);
        match answer {
            Ok(n) => {
                let c = if n > 0 {
                    Capability::TwoPhase
                } else {
                    Capability::LastResource
                };
                tracing::info!(bind = %name, max_prepared_transactions = n, capability = ?c, "two-phase commit capability");
                proxy.set_capability(i, c);
            }
            Err(e) => {
                tracing::warn!(bind = %name, error = %e, "cannot read max_prepared_transactions; the bind's two-phase capability stays unknown")
            }
        }
    }
}

/// Checks that `branch` can be written inside quotes as it is.
fn valid_branch(branch: &str) -> Result<(), TxError> {
    let ok = !branch.is_empty()
        && branch.len() <= 64
        && branch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(TxError::BadBranchId(branch.to_owned()))
    }
}

/// One attempt to COMMIT PREPARED / XA COMMIT (`commit`) or ROLLBACK PREPARED / XA ROLLBACK
/// `branch` on `bind`, over a fresh connection. A branch the server does not know (any more) is
/// not an error: it was finished already.
pub async fn finish_branch(bind: &Bind, branch: &str, commit: bool) -> Result<(), ProxyError> {
    valid_branch(branch).map_err(|e| ProxyError::Protocol(e.to_string()))?;
    match bind {
        Bind::Pg(p) => {
            let sql = if commit {
                format!("COMMIT PREPARED '{branch}'")
            } else {
                format!("ROLLBACK PREPARED '{branch}'")
            };
            let mut conn = p.connect().await?;
            let lost = |reason: String| ProxyError::BackendLost {
                bind: p.name.clone(),
                reason,
            };
            match conn.run_quiet(&[&sql]).await {
                Ok(None) => Ok(()),
                // undefined_object: no prepared transaction of that name
                Ok(Some(e)) if e.ends_with("(SQLSTATE 42704)") => Ok(()),
                Ok(Some(e)) => Err(ProxyError::Backend {
                    code: sqlstate_of(&e).unwrap_or("XX000").into(),
                    message: format!("{sql}: {e}"),
                    detail: Some(format!("bind \"{}\"", p.name)),
                }),
                Err(e) => Err(lost(e.to_string())),
            }
        }
        Bind::Translated(t) => {
            let EngineBind::MySql(my) = &t.engine else {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "bind \"{}\" is SQLite: it has no prepared transactions",
                    t.name()
                )));
            };
            let sql = if commit {
                format!("XA COMMIT '{branch}'")
            } else {
                format!("XA ROLLBACK '{branch}'")
            };
            let mut conn = my.get(t.name()).await?;
            let r = conn.batch(&sql).await;
            conn.give_back(false).await;
            match r {
                Ok(()) => Ok(()),
                // XAER_NOTA: unknown XID
                Err(ProxyError::Backend { code, .. }) if code == "XAE04" => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// "… (SQLSTATE 40001)" → "40001".
fn sqlstate_of(message: &str) -> Option<&str> {
    let code = message.strip_suffix(')')?.rsplit("(SQLSTATE ").next()?;
    (code.len() == 5).then_some(code)
}

/// The ids of every prepared transaction `bind` shows (PostgreSQL: of its database; MySQL: of
/// its server, XA RECOVER). Other instances' ids included: the caller filters.
async fn prepared_on(proxy: &Proxy, bind: BindId) -> Result<Vec<String>, ProxyError> {
    let mut ids = list_prepared(proxy, bind).await?;
    ids.sort();
    Ok(ids)
}

async fn list_prepared(proxy: &Proxy, bind: BindId) -> Result<Vec<String>, ProxyError> {
    let name = proxy.bind_name(bind);
    let unavailable = |reason: String| ProxyError::BackendUnavailable {
        bind: name.to_string(),
        reason,
    };
    let slot = proxy
        .binds
        .get(bind)
        .ok_or_else(|| unavailable("no such bind".into()))?;
    match &slot.bind {
        Bind::Pg(p) => {
            let mut conn = p.connect().await?;
            let rows = conn
                .query_text("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect())
        }
        Bind::Translated(t) if t.is_mysql() => {
            let cfg = slot
                .config
                .as_ref()
                .ok_or_else(|| unavailable("not in the configuration".into()))?;
            // the URL's options with its TLS (`ssl_mode`, `ssl_ca`), as the bind's pool uses them
            let opts = t
                .mysql_direct_opts()
                .ok_or_else(|| unavailable("not a MySQL bind".into()))?;
            let mut conn =
                match tokio::time::timeout(cfg.connect_timeout, mysql_async::Conn::new(opts)).await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(unavailable(e.to_string())),
                    Err(_) => {
                        return Err(unavailable(format!(
                            "no connection within {} ms",
                            cfg.connect_timeout.as_millis()
                        )))
                    }
                };
            let rows: Vec<mysql_async::Row> = conn
                .query("XA RECOVER")
                .await
                .map_err(|e| unavailable(format!("XA RECOVER: {e}")))?;
            let _ = conn.disconnect().await;
            let mut out = Vec::new();
            for row in rows {
                let format_id: Option<i64> = row.get_opt(0).and_then(Result::ok);
                let gtrid_len: Option<usize> = row.get_opt(1).and_then(Result::ok);
                let bqual_len: Option<usize> = row.get_opt(2).and_then(Result::ok);
                let data: Option<Vec<u8>> = row.get_opt(3).and_then(Result::ok);
                // bindproxy's branches: XA START '<id>' (format 1, empty bqual)
                if let (Some(1), Some(g), Some(0), Some(data)) =
                    (format_id, gtrid_len, bqual_len, data)
                {
                    if let Some(Ok(id)) = data.get(..g).map(std::str::from_utf8) {
                        out.push(id.to_owned());
                    }
                }
            }
            Ok(out)
        }
        Bind::Translated(_) => Ok(Vec::new()),
    }
}

/// Finishes every prepared branch of this instance: committed when its transaction has a commit
/// decision, rolled back otherwise; then marks finished decisions done and compacts the log.
pub async fn recover(proxy: &Proxy) -> Result<RecoveryReport, TxError> {
    let log = &proxy.tx.log;
    let pending = log.pending()?;
    let decided: HashMap<&str, &[String]> = pending
        .iter()
        .map(|d| (d.gid.as_str(), d.participants.as_slice()))
        .collect();
    let mut report = RecoveryReport {
        decisions: pending.len(),
        ..RecoveryReport::default()
    };
    // Transactions whose last resource committed before their decision reached the log.
    let marked = last_resource_decisions(proxy).await;
    // Binds not examined, and transactions with a branch that could not be finished.
    let mut unexamined: HashSet<String> = HashSet::new();
    let mut failed: HashSet<String> = HashSet::new();
    for (name, i) in proxy.user_binds() {
        let Some(slot) = proxy.binds.get(i) else {
            continue;
        };
        let bind = &slot.bind;
        let mut br = BindReport {
            bind: name.clone(),
            ..BindReport::default()
        };
        if let Bind::Translated(t) = bind {
            if !t.is_mysql() {
                br.skipped = Some("SQLite: cannot prepare".into());
                report.binds.push(br);
                continue;
            }
        }
        let ids = match prepared_on(proxy, i).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(bind = %name, error = %e, "recovery: cannot list prepared transactions");
                br.unreachable = Some(e.to_string());
                unexamined.insert(name);
                report.binds.push(br);
                continue;
            }
        };
        for branch in ids {
            let Some(txid) = gid::transaction_of(&branch, &proxy.tx.instance) else {
                continue;
            };
            let commit = decided.contains_key(txid) || marked.iter().any(|(_, g)| g == txid);
            match finish_branch(bind, &branch, commit).await {
                Ok(()) => {
                    tracing::info!(bind = %name, %branch, action = if commit { "committed" } else { "rolled back" }, "recovery: prepared branch finished");
                    if commit {
                        br.committed.push(branch);
                    } else {
                        br.rolled_back.push(branch);
                    }
                }
                Err(e) => {
                    tracing::warn!(bind = %name, %branch, commit, error = %e, "recovery: cannot finish a prepared branch");
                    failed.insert(txid.to_owned());
                    br.failed.push((branch, e.to_string()));
                }
            }
        }
        report.binds.push(br);
    }
    for d in &pending {
        let mut why = Vec::new();
        for p in &d.participants {
            match proxy.bind_id(p) {
                None => why.push(format!("bind {p} is no longer configured")),
                Some(_) if unexamined.contains(p) => why.push(format!("bind {p} was unreachable")),
                Some(_) => {}
            }
        }
        if failed.contains(&d.gid) {
            why.push("a branch could not be committed".into());
        }
        if why.is_empty() {
            log.record_done(&d.gid).await?;
            report.finished.push(d.gid.clone());
        } else {
            report.in_doubt.push((d.gid.clone(), why.join("; ")));
        }
    }
    // The last resources' copies of decisions whose branches are all finished can go.
    for (bind, txid) in &marked {
        if !failed.contains(txid) {
            forget_last_resource_decision(proxy, *bind, txid).await;
        }
    }
    log.compact().await?;
    Ok(report)
}

/// Phase 2 of `branch` on `bind` after the session's connection failed: retried in its own task
/// over fresh connections (100 ms, doubling up to 10 s, for as long as it takes) until it
/// succeeds or the branch is no longer prepared.
pub async fn finish_in_background(proxy: Arc<Proxy>, bind: BindId, branch: String, commit: bool) {
    tokio::spawn(async move {
        let _in_doubt = crate::metrics::in_doubt();
        let name = proxy.bind_name(bind);
        let Some(slot) = proxy.binds.get(bind) else {
            tracing::error!(bind, %branch, "phase 2 retry: no such bind");
            return;
        };
        let mut delay = Duration::from_millis(100);
        loop {
            match finish_branch(&slot.bind, &branch, commit).await {
                Ok(()) => {
                    tracing::info!(bind = %name, %branch, commit, "phase 2 finished in the background");
                    return;
                }
                Err(e) => {
                    if let Ok(ids) = prepared_on(&proxy, bind).await {
                        if !ids.contains(&branch) {
                            tracing::info!(bind = %name, %branch, "phase 2 retry: the branch is no longer prepared");
                            return;
                        }
                    }
                    tracing::warn!(bind = %name, %branch, commit, error = %e, retry_in_ms = delay.as_millis() as u64, "phase 2 failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    });
}

/// Binds that can only be a last resource: SQLite, and PostgreSQL without prepared transactions.
fn last_resources(proxy: &Proxy) -> Vec<BindId> {
    proxy
        .user_binds()
        .into_iter()
        .map(|(_, id)| id)
        .filter(|&i| proxy.capability(i) == Some(Capability::LastResource))
        .collect()
}

/// (bind, transaction id) of every decision row of this instance in a last resource's
/// `bindproxy_decisions` table (`tx::marker`). A bind without the table has none.
async fn last_resource_decisions(proxy: &Proxy) -> Vec<(BindId, String)> {
    let mut found = Vec::new();
    let prefix = gid::instance_prefix(&proxy.tx.instance);
    for i in last_resources(proxy) {
        let Some(slot) = proxy.binds.get(i) else {
            continue;
        };
        let rows = match &slot.bind {
            Bind::Pg(pool) => match pool.connect().await {
                Ok(mut conn) => match conn.query_text(super::marker::SELECT).await {
                    Ok(Ok(rows)) => rows
                        .into_iter()
                        .filter_map(|r| r.into_iter().next().flatten())
                        .collect(),
                    _ => Vec::new(),
                },
                Err(_) => Vec::new(),
            },
            Bind::Translated(t) => {
                match crate::backend::translated::TranslatedBind::checkout(t).await {
                    Ok(mut conn) => {
                        let mut out = bytes::BytesMut::new();
                        let rows = match conn.query(super::marker::SELECT, &mut out).await {
                            Ok(()) => first_columns(&out),
                            Err(_) => Vec::new(),
                        };
                        conn.release().await;
                        rows
                    }
                    Err(_) => Vec::new(),
                }
            }
        };
        found.extend(
            rows.into_iter()
                .filter(|g| g.starts_with(&prefix))
                .map(|g| (i, g)),
        );
    }
    found
}

/// Deletes a decision row from a last resource once its transaction is finished everywhere.
async fn forget_last_resource_decision(proxy: &Proxy, bind: BindId, txid: &str) {
    let sql = super::marker::delete_sql(txid);
    let Some(slot) = proxy.binds.get(bind) else {
        return;
    };
    match &slot.bind {
        Bind::Pg(pool) => {
            if let Ok(mut conn) = pool.connect().await {
                let _ = conn.query_text(&sql).await;
            }
        }
        Bind::Translated(t) => {
            if let Ok(mut conn) = crate::backend::translated::TranslatedBind::checkout(t).await {
                let _ = conn.query(&sql, &mut bytes::BytesMut::new()).await;
                conn.release().await;
            }
        }
    }
}

/// The first column (as text) of every DataRow in a buffer of PostgreSQL messages.
fn first_columns(buf: &[u8]) -> Vec<String> {
    crate::protocol::frame::messages(buf)
        .filter(|(tag, _)| *tag == b'D')
        .filter_map(|(_, raw)| crate::backend::pg::conn::data_row(&raw[5..]))
        .filter_map(|row| row.into_iter().next().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_ids_are_checked_before_they_meet_sql() {
        assert!(valid_branch("bp_main_18f_1_0").is_ok());
        assert!(valid_branch("x'; DROP TABLE t; --").is_err());
        assert!(valid_branch("").is_err());
        assert!(valid_branch(&"a".repeat(65)).is_err());
    }

    #[test]
    fn sqlstate_from_a_message() {
        assert_eq!(sqlstate_of("boom (SQLSTATE 40001)"), Some("40001"));
        assert_eq!(sqlstate_of("boom"), None);
    }

    #[test]
    fn a_clean_report_has_nothing_in_doubt() {
        let mut r = RecoveryReport::default();
        assert!(r.is_clean());
        r.binds.push(BindReport {
            bind: "a".into(),
            unreachable: Some("down".into()),
            ..BindReport::default()
        });
        assert!(!r.is_clean());
        assert!(r.to_string().contains("bind a: NOT EXAMINED: down"));
    }
}
