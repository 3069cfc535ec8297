//! Every metric bindproxy exports, in one place: names, help texts, labels, units, histogram
//! buckets, and the small typed functions the code paths call (`metrics::statement(bind)`).
//!
//! Owns: the Prometheus recorder (`metrics-exporter-prometheus`, installed once by `run` with
//! [`install`], rendered by `admin`'s `/metrics` through the returned handle: the exporter opens no
//! listener of its own); the per-bind handles, registered at start (and by the reload that opens
//! a bind, [`register_bind`]) so that the statement path is one lock-free load and one atomic add
//! (no registry lookup, no string); the per-table counters, a copy-on-write map
//! ([`arc_swap`]) read without a lock, at most [`MAX_TABLES`] tables with a series of their own
//! (the rest count under the table `(other)`).
//!
//! Must never: format a string or take a lock per statement (errors, rare, may look a series up);
//! fail or panic when no recorder is installed (unit tests, `bindproxy route`, `check`): every
//! function is then a no-op.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, SharedString, Unit};
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::proxy::BindId;
use crate::sql::{Command, TableName};

/// Metric names. Counters end in `_total`, as Prometheus names them.
pub mod name {
    pub const CLIENT_CONNECTIONS: &str = "bindproxy_client_connections";
    pub const CLIENT_SESSIONS: &str = "bindproxy_client_sessions";
    pub const POOL_WAITING: &str = "bindproxy_pool_waiting_clients";
    pub const POOL_CHECKOUTS: &str = "bindproxy_pool_checkouts_total";
    pub const POOL_CHECKOUT_WAIT: &str = "bindproxy_pool_checkout_wait_seconds";
    pub const POOL_CONNECTIONS: &str = "bindproxy_pool_connections";
    pub const STATEMENTS: &str = "bindproxy_statements_total";
    pub const REPLICA_STATEMENTS: &str = "bindproxy_replica_statements_total";
    pub const ERRORS: &str = "bindproxy_errors_total";
    pub const CONNECT_FAILURES: &str = "bindproxy_backend_connect_failures_total";
    pub const TABLE_STATEMENTS: &str = "bindproxy_table_statements_total";
    pub const ROUTE_DECISIONS: &str = "bindproxy_route_decisions_total";
    pub const CROSS_BIND_REFUSALS: &str = "bindproxy_cross_bind_refusals_total";
    pub const TRANSACTIONS: &str = "bindproxy_transactions_total";
    pub const TWO_PHASE_COMMIT: &str = "bindproxy_two_phase_commit_seconds";
    pub const TWO_PHASE_STEP: &str = "bindproxy_two_phase_step_seconds";
    pub const IN_DOUBT: &str = "bindproxy_in_doubt_branches";
    pub const BIND_BYTES: &str = "bindproxy_bind_bytes_total";
}

/// Tables with a series of their own; later ones count under [`OTHER_TABLE`].
pub const MAX_TABLES: usize = 1000;
/// The `table` label of the tables beyond [`MAX_TABLES`].
pub const OTHER_TABLE: &str = "(other)";
/// The `bind` label of errors bindproxy found before any bind ran the statement (routing, parse).
pub const NO_BIND: &str = "(none)";

const CHECKOUT_WAIT_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];
const COMMIT_BUCKETS: &[f64] = &[0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The SQLSTATE classes of PostgreSQL (Appendix A), as static label values.
const CLASSES: &[&str] = &[
    "00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22", "23",
    "24", "25", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F", "40", "42",
    "44", "53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX",
];

/// How many binds took part in a client's transaction, for [`transaction_ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participants {
    None,
    One,
    Two,
    More,
}

impl Participants {
    pub fn of(n: usize) -> Participants {
        match n {
            0 => Participants::None,
            1 => Participants::One,
            2 => Participants::Two,
            _ => Participants::More,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
    const LABELS: [&'static str; 4] = ["0", "1", "2", "3+"];
}

/// What client sessions are doing, as `/metrics` shows it (the admin console's sessions excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStateLabel {
    /// Waiting for the client, no transaction open.
    Idle,
    /// Waiting for the client inside a transaction.
    IdleInTransaction,
    /// Answers are due: a statement runs (or waits for a pool's connection).
    Active,
    /// A statement waits for a bind paused by the admin console.
    Paused,
}

impl ClientStateLabel {
    const LABELS: [&'static str; 4] = ["idle", "idle_in_transaction", "active", "paused"];
}

/// The sessions in each state, counted when `/metrics` is scraped (not on the statement path).
pub fn client_states(counts: [usize; 4]) {
    if let Some(r) = registry() {
        for (gauge, n) in r.client_states.iter().zip(counts) {
            gauge.set(n as f64);
        }
    }
}

/// The steps of a two-phase COMMIT, timed one by one in [`name::TWO_PHASE_STEP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoPhaseStep {
    /// PREPARE TRANSACTION / XA PREPARE on every participant that can prepare, at once.
    Prepare,
    /// The participants that cannot prepare commit, one after another (the decision).
    LastResource,
    /// The commit decision written to the decision log and fsync'd.
    DecisionLog,
    /// COMMIT PREPARED / XA COMMIT on every prepared branch, at once.
    CommitPrepared,
}

impl TwoPhaseStep {
    const LABELS: [&'static str; 4] = [
        "prepare",
        "last_resource",
        "decision_log",
        "commit_prepared",
    ];
    fn index(self) -> usize {
        self as usize
    }
}

struct BindMetrics {
    name: SharedString,
    checkouts: Counter,
    checkout_wait: Histogram,
    waiting: Gauge,
    statements: Counter,
    /// Those of `statements` a read replica ran.
    replica_statements: Counter,
    connect_failures: Counter,
    in_use: Gauge,
    idle: Gauge,
    bytes_sent: Counter,
    bytes_received: Counter,
    /// Sessions waiting for a connection now (the gauge's copy).
    waiting_now: AtomicU64,
    /// Copies of the figures the admin console shows (`SHOW STATS`, `SHOW POOLS`): the recorder's
    /// handles cannot be read back.
    tally: BindTally,
}

/// Per-bind figures kept as plain atomics beside the recorder's series (one relaxed add each).
#[derive(Default)]
struct BindTally {
    statements: AtomicU64,
    errors: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    checkouts: AtomicU64,
    /// Sum of checkout waits, in microseconds.
    wait_us: AtomicU64,
}

/// One bind's figures since start, for the admin console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindFigures {
    /// Statements (Query or Execute) sent to the bind.
    pub statements: u64,
    /// Errors sent to clients from this bind.
    pub errors: u64,
    /// Bytes of client messages sent to the bind (translated binds: the SQL text).
    pub bytes_sent: u64,
    /// Bytes of answers received from the bind (translated binds: the PostgreSQL answer made).
    pub bytes_received: u64,
    /// Connections leased.
    pub checkouts: u64,
    /// Total time sessions waited for a connection, in microseconds.
    pub wait_us: u64,
    /// Sessions waiting for a connection now.
    pub waiting: u64,
}

/// Per-table counters: table → its label and (bind, command) → counter. Replaced whole when a
/// table or a (bind, command) pair is seen for the first time; read with one atomic load otherwise.
type TableMap = HashMap<TableName, TableSeries>;

#[derive(Clone)]
struct TableSeries {
    /// The `table` label, also handed to sessions for their error log lines.
    label: Arc<str>,
    counters: HashMap<(BindId, Command), Counter>,
}

struct Tables {
    map: ArcSwap<TableMap>,
    /// Serialises the (rare) copies that add a series.
    grow: Mutex<()>,
}

struct Registry {
    /// By bind id. Handles live as long as the process, like the ids they belong to (never
    /// reused, `registry.rs`); a reload that opens a bind appends one ([`register_bind`]).
    binds: ArcSwap<Vec<&'static BindMetrics>>,
    /// Serialises the (rare) copies that add a bind.
    binds_grow: Mutex<()>,
    clients: Gauge,
    /// By [`ClientStateLabel`], set when `/metrics` is scraped.
    client_states: [Gauge; 4],
    route_parsed: Counter,
    route_cached: Counter,
    cross_bind: Counter,
    transactions: [Counter; 4],
    two_phase: Histogram,
    two_phase_steps: [Histogram; 4],
    in_doubt: Gauge,
    tables: Tables,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder and registers every
/// series that exists from the start. Once per process; the handle renders the exposition.
pub fn install(bind_names: &[String]) -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(name::POOL_CHECKOUT_WAIT.into()),
            CHECKOUT_WAIT_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(name::TWO_PHASE_COMMIT.into()), COMMIT_BUCKETS)
        })
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(name::TWO_PHASE_STEP.into()), COMMIT_BUCKETS)
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    let binds = bind_names.iter().map(|n| bind_metrics(n)).collect();
    let tx = |i: usize| ::metrics::counter!(name::TRANSACTIONS, "participants" => Participants::LABELS[i]);
    let registry = Registry {
        binds: ArcSwap::from_pointee(binds),
        binds_grow: Mutex::new(()),
        clients: ::metrics::gauge!(name::CLIENT_CONNECTIONS),
        client_states: ClientStateLabel::LABELS
            .map(|state| ::metrics::gauge!(name::CLIENT_SESSIONS, "state" => state)),
        route_parsed: ::metrics::counter!(name::ROUTE_DECISIONS, "source" => "parsed"),
        route_cached: ::metrics::counter!(name::ROUTE_DECISIONS, "source" => "cache"),
        cross_bind: ::metrics::counter!(name::CROSS_BIND_REFUSALS),
        transactions: [tx(0), tx(1), tx(2), tx(3)],
        two_phase: ::metrics::histogram!(name::TWO_PHASE_COMMIT),
        two_phase_steps: TwoPhaseStep::LABELS
            .map(|step| ::metrics::histogram!(name::TWO_PHASE_STEP, "step" => step)),
        in_doubt: ::metrics::gauge!(name::IN_DOUBT),
        tables: Tables {
            map: ArcSwap::from_pointee(HashMap::new()),
            grow: Mutex::new(()),
        },
    };
    REGISTRY
        .set(registry)
        .map_err(|_| "metrics are installed already".to_string())?;
    Ok(handle)
}

/// The handles of one bind, registered with the recorder (a bind name's series are shared by
/// every slot of that name: a reload that replaces a bind keeps counting on them).
fn bind_metrics(n: &str) -> &'static BindMetrics {
    let name = SharedString::from_shared(Arc::<str>::from(n));
    let l = [("bind", name.clone())];
    Box::leak(Box::new(BindMetrics {
        checkouts: ::metrics::counter!(name::POOL_CHECKOUTS, &l),
        checkout_wait: ::metrics::histogram!(name::POOL_CHECKOUT_WAIT, &l),
        waiting: ::metrics::gauge!(name::POOL_WAITING, &l),
        statements: ::metrics::counter!(name::STATEMENTS, &l),
        replica_statements: ::metrics::counter!(name::REPLICA_STATEMENTS, &l),
        connect_failures: ::metrics::counter!(name::CONNECT_FAILURES, &l),
        in_use: ::metrics::gauge!(name::POOL_CONNECTIONS, "bind" => name.clone(), "state" => "in_use"),
        idle: ::metrics::gauge!(name::POOL_CONNECTIONS, "bind" => name.clone(), "state" => "idle"),
        bytes_sent: ::metrics::counter!(name::BIND_BYTES, "bind" => name.clone(), "direction" => "sent"),
        bytes_received: ::metrics::counter!(name::BIND_BYTES, "bind" => name.clone(), "direction" => "received"),
        tally: BindTally::default(),
        waiting_now: AtomicU64::new(0),
        name,
    }))
}

/// A reload opened bind `id` named `name`: its handles are registered (ids come in order; a
/// gap, which cannot happen, is filled with the same handles).
pub fn register_bind(id: BindId, name: &str) {
    let Some(r) = registry() else { return };
    let _grow = r.binds_grow.lock().unwrap_or_else(|p| p.into_inner());
    let current = r.binds.load_full();
    if current.len() > id {
        return;
    }
    let m = bind_metrics(name);
    let mut next: Vec<&'static BindMetrics> = (*current).clone();
    while next.len() <= id {
        next.push(m);
    }
    r.binds.store(Arc::new(next));
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        name::CLIENT_CONNECTIONS,
        "Client sessions open now (after authentication)."
    );
    describe_gauge!(
        name::CLIENT_SESSIONS,
        "Client sessions by state: idle, idle_in_transaction, active, paused (at the last scrape)."
    );
    describe_gauge!(
        name::POOL_WAITING,
        "Sessions waiting for a connection of this bind's pool."
    );
    describe_counter!(
        name::POOL_CHECKOUTS,
        "Connections leased from this bind's pool."
    );
    describe_histogram!(
        name::POOL_CHECKOUT_WAIT,
        Unit::Seconds,
        "Time a session waited for a connection of this bind (including opening it)."
    );
    describe_gauge!(
        name::POOL_CONNECTIONS,
        "Connections of this bind's pool: in_use (leased or being cleaned) and idle (open, unleased; PostgreSQL binds)."
    );
    describe_counter!(
        name::STATEMENTS,
        "Statements (Query or Execute) sent to this bind (its primary or a read replica)."
    );
    describe_counter!(
        name::REPLICA_STATEMENTS,
        "Statements (Query or Execute) of this bind run on one of its read replicas."
    );
    describe_counter!(
        name::ERRORS,
        "Errors sent to clients, by bind and SQLSTATE class."
    );
    describe_counter!(
        name::CONNECT_FAILURES,
        "Failed attempts to open a connection to this bind."
    );
    describe_counter!(
        name::TABLE_STATEMENTS,
        "Statements routed, per table named and kind (a Parse counts once, like a Query)."
    );
    describe_counter!(
        name::ROUTE_DECISIONS,
        "Query strings analysed for routing: parsed, or the analysis cache's answer."
    );
    describe_counter!(
        name::CROSS_BIND_REFUSALS,
        "Statements refused because their tables are on several binds."
    );
    describe_counter!(
        name::TRANSACTIONS,
        "Client transactions ended, by the number of binds that took part."
    );
    describe_histogram!(
        name::TWO_PHASE_COMMIT,
        Unit::Seconds,
        "COMMIT of a multi-bind transaction by two-phase commit, from PREPARE to the client's answer."
    );
    describe_histogram!(
        name::TWO_PHASE_STEP,
        Unit::Seconds,
        "One step of a two-phase COMMIT: prepare, last_resource, decision_log, commit_prepared."
    );
    describe_counter!(
        name::BIND_BYTES,
        "Bytes sent to this bind (client messages; the SQL text for MySQL/SQLite binds) and received from it (its answers; for MySQL/SQLite binds the PostgreSQL answer made from them)."
    );
    describe_gauge!(
        name::IN_DOUBT,
        "Prepared branches whose commit or rollback is being retried in the background."
    );
}

fn registry() -> Option<&'static Registry> {
    REGISTRY.get()
}

fn bind(b: BindId) -> Option<&'static BindMetrics> {
    registry()?.binds.load().get(b).copied()
}

/// A client session started; the guard counts it until it is dropped.
pub fn client_connected() -> ClientGuard {
    if let Some(r) = registry() {
        r.clients.increment(1.0);
    }
    ClientGuard(())
}

/// One open client session in [`name::CLIENT_CONNECTIONS`].
pub struct ClientGuard(());

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if let Some(r) = registry() {
            r.clients.decrement(1.0);
        }
    }
}

/// A session starts waiting for a connection of `b`; the guard ends the wait when dropped and
/// records its length with [`CheckoutWait::done`].
pub fn checkout_started(b: BindId) -> CheckoutWait {
    let m = bind(b);
    if let Some(m) = m {
        m.waiting.increment(1.0);
        m.waiting_now.fetch_add(1, Ordering::Relaxed);
    }
    CheckoutWait {
        bind: m,
        started: std::time::Instant::now(),
    }
}

/// A session waiting for a pool (see [`checkout_started`]).
pub struct CheckoutWait {
    bind: Option<&'static BindMetrics>,
    started: std::time::Instant,
}

/// How a checkout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkout {
    Leased,
    /// The bind's server could not be reached.
    ConnectFailed,
    /// Pool exhausted or another error.
    Failed,
}

impl CheckoutWait {
    pub fn done(self, outcome: Checkout) {
        let Some(m) = self.bind else { return };
        let waited = self.started.elapsed();
        m.checkout_wait.record(waited);
        m.tally.wait_us.fetch_add(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match outcome {
            Checkout::Leased => {
                m.checkouts.increment(1);
                m.tally.checkouts.fetch_add(1, Ordering::Relaxed);
            }
            Checkout::ConnectFailed => m.connect_failures.increment(1),
            Checkout::Failed => {}
        }
    }
}

impl Drop for CheckoutWait {
    fn drop(&mut self) {
        if let Some(m) = self.bind {
            m.waiting.decrement(1.0);
            m.waiting_now.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A statement (Query or Execute) was sent to bind `b` (its primary).
pub fn statement(b: BindId) {
    if let Some(m) = bind(b) {
        m.statements.increment(1);
        m.tally.statements.fetch_add(1, Ordering::Relaxed);
    }
}

/// `n` bytes were sent to bind `b`.
pub fn bytes_sent(b: BindId, n: usize) {
    if let Some(m) = bind(b) {
        m.bytes_sent.increment(n as u64);
        m.tally.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// `n` bytes were received from bind `b`.
pub fn bytes_received(b: BindId, n: usize) {
    if let Some(m) = bind(b) {
        m.bytes_received.increment(n as u64);
        m.tally
            .bytes_received
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Bind `b`'s figures since start (all zero when no recorder is installed).
pub fn figures(b: BindId) -> BindFigures {
    let Some(m) = bind(b) else {
        return BindFigures::default();
    };
    let t = &m.tally;
    BindFigures {
        statements: t.statements.load(Ordering::Relaxed),
        errors: t.errors.load(Ordering::Relaxed),
        bytes_sent: t.bytes_sent.load(Ordering::Relaxed),
        bytes_received: t.bytes_received.load(Ordering::Relaxed),
        checkouts: t.checkouts.load(Ordering::Relaxed),
        wait_us: t.wait_us.load(Ordering::Relaxed),
        waiting: m.waiting_now.load(Ordering::Relaxed),
    }
}

/// A statement (Query or Execute) of bind `b` was sent to one of its read replicas: it counts in
/// both [`name::STATEMENTS`] and [`name::REPLICA_STATEMENTS`].
pub fn replica_statement(b: BindId) {
    if let Some(m) = bind(b) {
        m.statements.increment(1);
        m.replica_statements.increment(1);
    }
}

/// A statement naming `table` with command `cmd` was routed to bind `b`. Returns the table's
/// label (cheap to keep: shared).
pub fn table_statement(b: BindId, table: &TableName, cmd: Command) -> Option<Arc<str>> {
    let r = registry()?;
    if let Some(t) = r.tables.map.load().get(table) {
        if let Some(c) = t.counters.get(&(b, cmd)) {
            c.increment(1);
            return Some(t.label.clone());
        }
    }
    let (counter, label) = table_series(r, b, table, cmd);
    counter.increment(1);
    Some(label)
}

/// Registers the series of a (bind, table, command) seen for the first time (or finds it, if
/// another session just did).
#[cold]
fn table_series(r: &Registry, b: BindId, table: &TableName, cmd: Command) -> (Counter, Arc<str>) {
    let _grow = r.tables.grow.lock().unwrap_or_else(|p| p.into_inner());
    let current = r.tables.map.load_full();
    let key = if current.contains_key(table) || current.len() < MAX_TABLES {
        table.clone()
    } else {
        TableName {
            schema: None,
            name: OTHER_TABLE.into(),
        }
    };
    let label = match current.get(&key) {
        Some(t) => {
            if let Some(c) = t.counters.get(&(b, cmd)) {
                return (c.clone(), t.label.clone());
            }
            t.label.clone()
        }
        None => Arc::from(key.to_string()),
    };
    let bind_label = bind(b)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| SharedString::const_str(NO_BIND));
    let counter = ::metrics::counter!(
        name::TABLE_STATEMENTS,
        "bind" => bind_label,
        "table" => SharedString::from_shared(label.clone()),
        "kind" => cmd.as_str()
    );
    let mut next: TableMap = (*current).clone();
    next.entry(key)
        .or_insert_with(|| TableSeries {
            label: label.clone(),
            counters: HashMap::new(),
        })
        .counters
        .insert((b, cmd), counter.clone());
    r.tables.map.store(Arc::new(next));
    (counter, label)
}

/// An error with `sqlstate` went to a client; `b` is the bind it came from, None when bindproxy
/// refused the statement before any bind ran it.
pub fn error(b: Option<BindId>, sqlstate: &str) {
    if registry().is_none() {
        return;
    }
    let class = sqlstate
        .get(..2)
        .and_then(|c| CLASSES.iter().find(|k| **k == c))
        .copied()
        .unwrap_or("other");
    let handles = b.and_then(bind);
    if let Some(m) = handles {
        m.tally.errors.fetch_add(1, Ordering::Relaxed);
    }
    let bind_label = handles
        .map(|m| m.name.clone())
        .unwrap_or_else(|| SharedString::const_str(NO_BIND));
    ::metrics::counter!(name::ERRORS, "bind" => bind_label, "class" => class).increment(1);
}

/// A query string's analysis came from PostgreSQL's parser (`parsed`) or from the cache.
pub fn route_decision(parsed: bool) {
    if let Some(r) = registry() {
        if parsed {
            r.route_parsed.increment(1);
        } else {
            r.route_cached.increment(1);
        }
    }
}

/// A statement was refused because its tables are on several binds.
pub fn cross_bind_refused() {
    if let Some(r) = registry() {
        r.cross_bind.increment(1);
    }
}

/// A client transaction ended (committed or rolled back) with `n` participating binds.
pub fn transaction_ended(n: Participants) {
    if let Some(r) = registry() {
        r.transactions[n.index()].increment(1);
    }
}

/// A two-phase COMMIT took `d`, from its first PREPARE to the client's answer.
pub fn two_phase_commit(d: Duration) {
    if let Some(r) = registry() {
        r.two_phase.record(d);
    }
}

/// One step of a two-phase COMMIT took `d`.
pub fn two_phase_step(step: TwoPhaseStep, d: Duration) {
    if let Some(r) = registry() {
        r.two_phase_steps[step.index()].record(d);
    }
}

/// A prepared branch is left to the background retry; the guard counts it until it is finished.
pub fn in_doubt() -> InDoubtGuard {
    if let Some(r) = registry() {
        r.in_doubt.increment(1.0);
    }
    InDoubtGuard(())
}

/// One branch in [`name::IN_DOUBT`].
pub struct InDoubtGuard(());

impl Drop for InDoubtGuard {
    fn drop(&mut self) {
        if let Some(r) = registry() {
            r.in_doubt.decrement(1.0);
        }
    }
}

/// The state of one bind's pool, set just before a scrape renders it (the pool's own counters,
/// so the statement path pays nothing for these gauges).
pub fn pool_state(b: BindId, in_use: usize, idle: Option<usize>) {
    if let Some(m) = bind(b) {
        m.in_use.set(in_use as f64);
        if let Some(idle) = idle {
            m.idle.set(idle as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_recorder_everything_is_a_no_op() {
        statement(0);
        bytes_sent(0, 10);
        bytes_received(0, 10);
        assert_eq!(figures(0), BindFigures::default());
        table_statement(
            0,
            &TableName {
                schema: None,
                name: "t".into(),
            },
            Command::Select,
        );
        error(Some(3), "42P01");
        error(None, "x");
        let w = checkout_started(7);
        w.done(Checkout::Leased);
        drop(client_connected());
        transaction_ended(Participants::of(5));
        assert_eq!(Participants::of(5), Participants::More);
        assert_eq!(Participants::LABELS[Participants::of(2).index()], "2");
    }
}
