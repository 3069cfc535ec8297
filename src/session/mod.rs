//! One client session: the message pump between a client and the binds it uses.
//!
//! Owns: the per-client state (leased backend connections, prepared statements and portals and the
//! bind each lives on, the transaction and its participants, the queue of responses still due),
//! and the loop that moves messages. The transaction logic is in [`txn`] (joining, control
//! statements, the commit protocol) and [`spanning`] (a Query or pipeline across binds); the one
//! interface to a bind's connection is [`conn`].
//!
//! The pump, in one paragraph: client messages are decoded only as far as routing needs
//! ([`client`]); each is forwarded raw to its bind, and an entry saying which responses are due is
//! queued ([`Pending`]). Backend frames are read only from the bind at the head of that queue and
//! relayed unchanged ([`relay`]), so responses reach the client in request order even when one
//! pipeline touches two binds. Answers bindproxy makes itself (errors, a deferred BEGIN) are queued
//! too, as [`Pending::Local`], and leave in order; so are the answers of MySQL/SQLite binds, which
//! bindproxy computes itself (`backend::translated`). Output to the client is batched: it is
//! written when the backend has nothing more buffered, at ReadyForQuery, or every 64 KiB of rows.
//!
//! The client is read even while one of its messages is held back for another bind (so that its
//! disconnect is seen, and its session and backend connections end with it); what it sends
//! meanwhile is buffered within `HELD_BUFFER_BYTES`, beyond which the session ends
//! (`ProxyError::ClientFlood`).
//! At most `MAX_PENDING` responses are due at once: a client that pipelines more is left unread
//! until answers come, as PostgreSQL leaves it. When the session ends, a connection that still owes
//! answers, is in a COPY, or received extended-protocol messages since the client's last Sync is
//! closed, never pooled.
//!
//! Shutdown (`crate::shutdown`): while the process drains, the session ends with FATAL 57P01 as
//! soon as it is quiet (no transaction open, no answer due, nothing held back); when it closes,
//! at once, after cancelling the statement running on a PostgreSQL bind (its connection is then
//! closed by [`Session::release_all`], so the server rolls the transaction back).
//!
//! The admin console (`crate::clients`, `crate::pause`): the session publishes what it does
//! (state, binds held, a multi-bind transaction) when that changes; `KILL` ends it as closing does
//! (FATAL 57P01, the statement running cancelled, connections given back or closed, so the open
//! transaction rolls back); a statement for a bind paused by `PAUSE` is held back, like a message
//! that waits for another bind, until the bind resumes, shutdown begins, or a CancelRequest gives
//! it up (57014; the cancel slot holds `InFlight::Paused` meanwhile).
//!
//! Reloads (`crate::reload`): the session follows the table map in force, except inside a
//! transaction, and gives back its leases on pools a reload retired once nothing of it is left
//! there ([`leases`]).
//!
//! Session state that spans binds lives here too: the client's startup settings and session-level
//! `SET`s, applied to every connection the session leases ([`params`]).
//!
//! A bind with read replicas has one more connection slot: the session's replica lease, kept in
//! a table of its own keyed by the primary's id ([`leases`]), which plain reads outside
//! transactions use ([`replica`]); the pump handles it as one more connection, and it never joins
//! a transaction.
//!
//! Invariants:
//! - A message for bind B is forwarded only when every response still due comes from B.
//! - Exactly one ReadyForQuery per client Sync or Query.
//! - No Sync is ever sent to a backend that the client did not send, except after bindproxy makes
//!   a statement fail on purpose inside an explicit transaction (see [`Session::fail_transaction`]).
//! - What a client sends is buffered within bounds: the held-back input (`HELD_BUFFER_BYTES`) and
//!   the Pending queue (`MAX_PENDING`); per-name state (statements, portals, SQL-level prepared
//!   names) grows only with the objects the client creates, as on PostgreSQL.

mod client;
mod conn;
mod copy;
mod leases;
mod observe;
pub(crate) mod params;
mod prepared;
mod relay;
mod replica;
mod search_path;
mod settings;
mod spanning;
mod txn;

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::backend::pg::PgPool;
use crate::backend::translated::{TranslatedBind, TranslatedConn};
use crate::backend::Bind;
use crate::clients::{ClientHandle, ClientState};
use crate::error::ProxyError;
use crate::frontend::cancel::{InFlight, Registration};
use crate::frontend::logsafe::Escaped;
use crate::frontend::startup::ClientHello;
use crate::net::{ReadHalf, WriteHalf};
use crate::protocol::{Frame, FrameError, FrameReader};
use crate::proxy::{BindId, Proxy};
use crate::shutdown::{SessionSignal, Stage};
use crate::sql::StatementKind;
use crate::tx::Transaction;
use conn::Conn;

pub use params::{initial_parameters, warm_up};

/// Output to the client is written at the latest when this much is buffered.
const CLIENT_FLUSH_BYTES: usize = 64 * 1024;

/// While a client message is held back (it waits for another bind's answers) the client is still
/// read, so that its disconnect is seen; this bounds what it may send meanwhile (one larger
/// message, up to `max_message_bytes`, is allowed to arrive whole). Beyond it the session ends.
const HELD_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// How long the last words to a client whose session ends may take to leave.
const FATAL_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many responses (entries of the Pending queue) may be due at once. A client that
/// pipelines more waits, unread, as it would on PostgreSQL (TCP backpressure): the queue, the
/// backends' write buffers and the cost of [`Session::blocked`] stay bounded.
const MAX_PENDING: usize = 1024;

/// How the pump reads its client while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientRead {
    /// Nothing is waiting to be dispatched: read it first.
    First,
    /// A message is held back for another bind: read it after the backends (its disconnect must
    /// be seen), within [`HELD_BUFFER_BYTES`].
    AfterBackends,
    /// The Pending queue is full: leave it unread until answers come.
    Paused,
}

/// Where a prepared statement lives.
struct Stmt {
    /// Binds it has been prepared on (the last is current). Empty for a statement answered locally.
    prepared_on: Vec<BindId>,
    /// For a statement without tables (SET, COMMIT, SELECT 1 …): its Parse message, so it can be
    /// prepared again on whichever bind the transaction is on when it runs.
    floating: Option<Frame>,
    /// Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO): answered
    /// by bindproxy unless exactly one bind takes part in the transaction.
    control: Option<ControlStmt>,
    /// A catalog query or SHOW parsed inside a deferred BEGIN: it runs outside the transaction.
    outside_tx: bool,
    /// A SET without tables: its text, which every participant of the transaction it runs in
    /// gets too (`Session::spread_set`).
    set_sql: Option<String>,
    /// A query with tables: what it takes to route it again when a reload changed the table map
    /// since it was parsed (`Session::reroute`).
    reroute: Option<Reroute>,
    /// A replica-safe statement of a bind with replicas: that bind and its Parse message, so
    /// that each Bind can run it on the primary or the replica lease (`replica.rs`).
    reparse: Option<(BindId, Frame)>,
}

impl Stmt {
    /// The Parse message to prepare it again on another bind: a statement without tables, a
    /// query a reload re-routed, or a read that runs on a replica.
    fn requeue_parse(&self) -> Option<Frame> {
        self.floating
            .clone()
            .or_else(|| self.reroute.as_ref().map(|r| r.parse.clone()))
            .or_else(|| self.reparse.as_ref().map(|(_, f)| f.clone()))
    }
}

/// A named prepared query's Parse message (an owned copy) and the generation of the table map
/// that routed it. At Bind, a session whose map is newer routes the query again and, where the new
/// map sends it elsewhere, prepares it there quietly first, as it does for statements without
/// tables: a reload that moves a table moves prepared statements too.
struct Reroute {
    parse: Frame,
    generation: u64,
}

/// A transaction-control statement as the client wrote it.
#[derive(Debug, Clone)]
struct ControlStmt {
    kind: StatementKind,
    sql: String,
    /// The savepoint of SAVEPOINT / RELEASE / ROLLBACK TO, folded as PostgreSQL folds it.
    savepoint: Option<String>,
}

/// Where a portal lives.
enum Portal {
    Bind(BindId),
    Local(ControlStmt),
}

/// What the client hears of an error of bindproxy's own statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnErrors {
    /// Nothing: the error is expected (a forced failure) or harmless (a fanned-out DEALLOCATE).
    Ignore,
    /// A WARNING: the client's settings did not all reach this bind.
    Warn,
}

/// The client message whose ReadyForQuery a [`Pending::UntilReady`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// A simple Query. PostgreSQL ignores it while skipping to Sync after an extended-protocol
    /// error, and then no ReadyForQuery comes for it.
    Query,
    Sync,
}

/// A response (or group of responses) still due to the client, in request order.
enum Pending {
    /// Extended-protocol messages forwarded to `bind`: `due` more completion messages are expected.
    /// With `relay` false, they are dropped (bindproxy's own re-Parse of a statement).
    Extended { bind: BindId, due: u32, relay: bool },
    /// Relay everything from `bind` up to and including its ReadyForQuery; with `emit` false the
    /// ReadyForQuery itself is dropped (a Sync fanned out to several binds answers once).
    UntilReady {
        bind: BindId,
        emit: bool,
        answers: Request,
    },
    /// bindproxy's own statements on `bind` (session parameters, a deferred BEGIN, a forced
    /// failure): drop everything up to `ready` ReadyForQuerys; errors as `errors` says.
    Quiet {
        bind: BindId,
        ready: u32,
        errors: OwnErrors,
    },
    /// An answer made by bindproxy; with `ready`, a ReadyForQuery follows it.
    Local { bytes: BytesMut, ready: bool },
}

impl Pending {
    fn bind(&self) -> Option<BindId> {
        match self {
            Pending::Extended { bind, .. }
            | Pending::UntilReady { bind, .. }
            | Pending::Quiet { bind, .. } => Some(*bind),
            Pending::Local { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client protocol error: {0}")]
    Protocol(String),
    #[error("client i/o: {0}")]
    ClientIo(#[from] std::io::Error),
    /// The session must end with this error, sent to the client as FATAL.
    #[error("{0}")]
    Fatal(ProxyError),
}

pub struct Session {
    proxy: Arc<Proxy>,
    /// The client's stream, plain or TLS (`net`).
    client: FrameReader<ReadHalf>,
    client_tx: WriteHalf,
    out: BytesMut,
    /// Connections held, by bind slot (`leases.rs`).
    conns: leases::Leases,
    /// The table map the session follows: the one in force, pinned while a transaction is open
    /// (`leases.rs`).
    live: Arc<crate::proxy::Live>,
    /// A reload happened, or some lease is on a slot a reload retired and waits to be given
    /// back (`leases.rs`).
    retired_leases: bool,
    /// Wakes the pump after a reload.
    reload: crate::proxy::ReloadSignal,
    /// Simple queries that give a new backend connection this client's startup parameters.
    setup: Vec<Frame>,
    /// The client's startup settings, for MySQL/SQLite binds (which answer SHOW themselves).
    settings: Vec<(String, String)>,
    /// The client's login user and database name, for `current_user`/`current_database()` on
    /// MySQL/SQLite binds.
    identity: (String, String),
    /// Session-level settings the client changed, replayed on every connection it opens later.
    session_sets: settings::SessionSettings,
    /// The bind the last catalog query naming a mapped table went to (see `Session::target`).
    catalog_bind: Option<BindId>,
    /// DDL sent to binds and not yet handed to the shadow catalog: it is, once the session is
    /// out of any transaction (`catalog::shadow` checks what really committed).
    /// DDL for the shadow catalog, each with the session's `setbacks` when it was noted
    /// (`hand_ddl_to_catalog`).
    catalog_ddl: Vec<(u64, crate::catalog::shadow::Ddl)>,
    /// Errors sent to the client and ROLLBACK / ROLLBACK TO statements routed so far
    /// (`observe_error`, `follow_search_path`): after one, earlier DDL may not have happened.
    setbacks: std::sync::atomic::AtomicU64,
    /// The `search_path` last set on the catalog bind's connection (see `align_catalog_path`).
    catalog_path: Option<Vec<String>>,
    /// ParameterStatus values the client has been told.
    shown: HashMap<String, String>,
    statements: HashMap<String, Stmt>,
    /// SQL-level prepared statements (`PREPARE name AS …`) and the bind each was prepared on.
    sql_prepared: HashMap<String, BindId>,
    portals: HashMap<String, Portal>,
    /// The client's transaction, if one is open (explicit, or the implicit one of a Query or
    /// pipeline that spans binds): its participants, savepoints and failed state (`tx/`).
    tx: Option<Transaction>,
    /// The `search_path` unqualified names resolve along (typed, see `search_path.rs`).
    search_path: search_path::SearchPath,
    pending: VecDeque<Pending>,
    /// After an error in an extended-protocol pipeline: discard messages until Sync.
    skipping: bool,
    /// Binds sent extended-protocol messages since the last Sync.
    touched: Vec<BindId>,
    /// A client message that must wait for responses from another bind first.
    held: Option<Frame>,
    /// The bind a COPY FROM STDIN runs on: CopyData/CopyDone/CopyFail go there.
    copy_bind: Option<BindId>,
    /// A Flush was sent to the bind blocking `held`.
    flush_sent: bool,
    registration: Registration,
    /// The bind whose PostgreSQL connection the pump put in the cancel slot (a MySQL/SQLite
    /// connection is there only while its statement runs: [`Session::cancellable`]).
    in_flight: Option<BindId>,
    /// The process's shutdown stage, as this session follows it.
    shutdown: SessionSignal,
    /// The client's address, for log lines.
    peer: Option<std::net::SocketAddr>,
    /// The first table of the statement routed last, for the log line of an error.
    last_table: Option<Arc<str>>,
    /// Per bind with replicas (by the primary's id): which replica its lease is on, the last
    /// write, the temporary-relation pin (`replica.rs`).
    replica: HashMap<BindId, replica::ReplicaLease>,
    /// This session in the registry of live sessions (admin console).
    me: ClientHandle,
    /// What was last published there: state, binds held (bit per bind), multi-bind transaction.
    published: Published,
    /// The bind (its name), paused by the admin console, that the held message waits for.
    paused_on: Option<Arc<str>>,
    /// The held message waits at the pause gate (its CancelRequest is [`InFlight::Paused`]).
    at_gate: bool,
}

/// What the session last told the registry of live sessions, so that it only writes on change.
#[derive(Default)]
struct Published {
    state: Option<ClientState>,
    binds: Vec<bool>,
    transaction: Option<Vec<(BindId, crate::tx::Phase)>>,
}

enum Wake {
    Client(Result<usize, FrameError>),
    Backend(BindId, Result<usize, FrameError>),
    /// The shutdown stage moved on, or the admin console asked the session to end.
    Shutdown,
    /// The bind the held message waits for was resumed.
    Resumed,
    /// A reload swapped the table map.
    Reload,
}

impl Session {
    pub fn new(
        proxy: Arc<Proxy>,
        hello: ClientHello,
        registration: Registration,
        shutdown: SessionSignal,
        me: ClientHandle,
    ) -> Session {
        let peer = hello.stream.peer_addr().ok();
        let (rd, wr) = hello.stream.into_split();
        let max = proxy.config.max_message_bytes;
        let setup = params::setup_queries(&hello.params);
        let settings = params::client_settings(&hello.params);
        let shown = params::initial_parameters(&proxy, &hello.params)
            .into_iter()
            .collect();
        let n = proxy.binds.len();
        let live = proxy.live_full();
        let search_path = search_path::SearchPath::from_startup(&settings, &hello.user);
        Session {
            client: FrameReader::new(rd, hello.read_buf, max),
            client_tx: wr,
            out: BytesMut::with_capacity(16 * 1024),
            conns: leases::Leases::with_slots(n),
            live,
            retired_leases: false,
            reload: proxy.reload_signal(),
            setup,
            settings,
            identity: (hello.user.clone(), hello.database.clone()),
            session_sets: settings::SessionSettings::default(),
            catalog_bind: None,
            catalog_ddl: Vec::new(),
            setbacks: std::sync::atomic::AtomicU64::new(0),
            catalog_path: None,
            shown,
            statements: HashMap::new(),
            sql_prepared: HashMap::new(),
            portals: HashMap::new(),
            tx: None,
            search_path,
            pending: VecDeque::new(),
            skipping: false,
            touched: Vec::new(),
            held: None,
            copy_bind: None,
            flush_sent: false,
            registration,
            in_flight: None,
            shutdown,
            peer,
            last_table: None,
            replica: HashMap::new(),
            me,
            published: Published::default(),
            paused_on: None,
            at_gate: false,
            proxy,
        }
    }

    /// Runs the session until the client leaves, then gives every connection back.
    pub async fn run(mut self) -> Result<(), SessionError> {
        let result = self.pump().await;
        // Connections go back first: a client that does not read must not keep them.
        self.release_all();
        self.hand_ddl_to_catalog(true);
        let fatal = match &result {
            Err(SessionError::Protocol(msg)) => Some(ProxyError::Protocol(msg.clone())),
            _ => None,
        };
        let fatal = match &result {
            Err(SessionError::Fatal(e)) => Some(e),
            _ => fatal.as_ref(),
        };
        if let Some(e) = fatal {
            e.write_with_severity(&mut self.out, "FATAL");
            let _ = tokio::time::timeout(FATAL_WRITE_TIMEOUT, self.write_client()).await;
        }
        result
    }

    async fn pump(&mut self) -> Result<(), SessionError> {
        loop {
            self.drain_backends().await?;
            if self.client.has_buffered_frame() {
                // MySQL/SQLite statements run inside dispatch
                self.publish_state(ClientState::Active);
            }
            if !self.dispatch_client().await? {
                return Ok(());
            }
            self.flush_backends().await;
            self.drain_backends().await?;
            self.update_cancel_slot();
            // before the client hears that its DDL is done: its next catalog query sees it
            self.hand_ddl_to_catalog(false);
            if self.retired_leases {
                self.follow_reloads();
            }
            self.write_client().await?;
            self.check_shutdown().await?;
            self.publish();
            match self.wait().await {
                Wake::Client(Ok(0)) => return Ok(()),
                Wake::Client(Ok(_)) => self.check_held_buffer()?,
                Wake::Client(Err(FrameError::Io(e))) => return Err(SessionError::ClientIo(e)),
                Wake::Client(Err(FrameError::Truncated)) => return Ok(()),
                Wake::Client(Err(e)) => return Err(SessionError::Protocol(e.to_string())),
                // New bytes are handled at the top of the loop.
                Wake::Backend(bind, Ok(n)) if n > 0 => {
                    crate::metrics::bytes_received(self.proxy.primary_of(bind), n)
                }
                Wake::Backend(bind, Ok(_)) => {
                    self.backend_lost(bind, "server closed the connection".into())
                }
                Wake::Backend(bind, Err(e)) => self.backend_lost(bind, e.to_string()),
                // Looked at at the top of the loop.
                Wake::Shutdown | Wake::Resumed => {}
                Wake::Reload => self.retired_leases = true,
            }
        }
    }

    /// Hands the DDL the session ran to the shadow catalog once no transaction is open and no
    /// answer is due (or the session ended).
    fn hand_ddl_to_catalog(&mut self, ended: bool) {
        if self.catalog_ddl.is_empty() || !(ended || (self.tx.is_none() && self.pending.is_empty()))
        {
            return;
        }
        // A DDL followed by an error the client heard or a ROLLBACK may not have happened (the
        // statement failed, or its transaction rolled back): the catalog reads those relations
        // from their bind instead of replaying the text.
        let setbacks = self.setbacks.load(std::sync::atomic::Ordering::Relaxed);
        let ddl = std::mem::take(&mut self.catalog_ddl)
            .into_iter()
            .map(|(before, mut d)| {
                if setbacks > before {
                    d.outcome = crate::catalog::shadow::DdlOutcome::ReadFromBind;
                }
                d
            })
            .collect();
        if let Some(s) = self.proxy.syncer() {
            s.replay(ddl);
        }
    }

    /// Waits until the shadow catalog has taken in every DDL handed to it so far.
    async fn catalog_caught_up(&self) {
        if let Some(s) = self.proxy.syncer() {
            s.wait(s.queued()).await;
        }
    }

    /// Ends the session when the process is shutting down and this session may go: at once when
    /// closing (the statement running on a PostgreSQL bind is cancelled first, before the process
    /// exits), when it is quiet while draining (see the module's doc).
    async fn check_shutdown(&mut self) -> Result<(), SessionError> {
        if self.me.entry.killed() {
            if let Some(running) = self.head_bind().and_then(|b| self.pg_in_flight(b)) {
                let _ = tokio::time::timeout(FATAL_WRITE_TIMEOUT, running.cancel()).await;
            }
            return Err(SessionError::Fatal(ProxyError::Killed));
        }
        match self.shutdown.stage() {
            Stage::Running => Ok(()),
            Stage::Draining if !self.quiet() => Ok(()),
            Stage::Draining => Err(SessionError::Fatal(ProxyError::AdminShutdown)),
            Stage::Closing => {
                if let Some(running) = self.head_bind().and_then(|b| self.pg_in_flight(b)) {
                    let _ = tokio::time::timeout(FATAL_WRITE_TIMEOUT, running.cancel()).await;
                }
                Err(SessionError::Fatal(ProxyError::AdminShutdown))
            }
        }
    }

    /// No transaction open, no answer due, nothing held back, no COPY or unsynced pipeline.
    fn quiet(&self) -> bool {
        self.tx.is_none()
            && self.pending.is_empty()
            && self.held.is_none()
            && self.copy_bind.is_none()
            && self.touched.is_empty()
            && self.client.buffered() == 0
    }

    /// Waits until the client or a backend that may speak now has sent something.
    ///
    /// The client is read even while one of its messages is held back: that is how its
    /// disconnect is noticed (a session that stopped reading would keep its backend connections
    /// forever). What it sends meanwhile is only buffered, within [`HELD_BUFFER_BYTES`].
    async fn wait(&mut self) -> Wake {
        let head = self.head_bind();
        let read = self.client_read();
        let paused_on = self.paused_on.clone();
        if !self.at_gate {
            // a cancel that came after the wait at the pause gate ended: void (and it must not
            // wake this wait again and again)
            self.me.entry.take_cancel_wait();
        }
        let Session {
            client,
            conns,
            shutdown,
            me,
            reload,
            proxy,
            ..
        } = self;
        let woken = poll_fn(|cx| {
            if shutdown.poll_changed(cx).is_ready() || me.entry.poll_woken(cx) {
                return Poll::Ready(Wake::Shutdown);
            }
            if reload.poll_reloaded(proxy, cx).is_ready() {
                return Poll::Ready(Wake::Reload);
            }
            if read == ClientRead::First {
                if let Poll::Ready(r) = client.poll_fill(cx) {
                    return Poll::Ready(Wake::Client(r));
                }
            }
            if let Some(w) = poll_backends(conns, head, cx) {
                return Poll::Ready(w);
            }
            if read == ClientRead::AfterBackends {
                if let Poll::Ready(r) = client.poll_fill(cx) {
                    return Poll::Ready(Wake::Client(r));
                }
            }
            Poll::Pending
        });
        match paused_on {
            None => woken.await,
            Some(bind) => tokio::select! {
                w = woken => w,
                () = proxy.pause.resumed(&bind) => Wake::Resumed,
            },
        }
    }

    /// The pause gate for a statement on `bind` (None: every bind, for a statement across binds):
    /// `Some(Blocked)` while the admin console has it paused (never once shutdown has begun: the
    /// drain must not wait for a RESUME), `Some(Done)` when a CancelRequest gave the wait up (the
    /// client gets 57014), None to go on.
    /// A replica slot waits when its bind is paused.
    fn gate(&mut self, bind: Option<BindId>, simple: bool) -> Option<client::Step> {
        let bind = bind.map(|b| self.proxy.primary_of(b));
        let paused = match bind {
            _ if !self.proxy.pause.any() => None,
            Some(b) => {
                let name = self.proxy.bind_name(b);
                self.proxy.pause.is_paused(&name).then_some(name)
            }
            None => self.proxy.pause.paused_binds().into_iter().next(),
        };
        let Some(b) = paused.filter(|_| self.shutdown.stage() == Stage::Running) else {
            if self.at_gate {
                self.leave_gate();
            }
            return None;
        };
        if !self.at_gate {
            self.at_gate = true;
            // a new wait: a cancel meant for an earlier one is void
            self.me.entry.take_cancel_wait();
            if let Ok(mut slot) = self.registration.slot.lock() {
                *slot = Some(InFlight::Paused(self.me.entry.clone()));
            }
            self.in_flight = None;
        } else if self.me.entry.take_cancel_wait() {
            self.leave_gate();
            self.refuse(ProxyError::QueryCanceled, simple);
            return Some(client::Step::Done);
        }
        self.paused_on = Some(b);
        Some(client::Step::Blocked)
    }

    /// The statement no longer waits at the pause gate: a CancelRequest for it is void.
    fn leave_gate(&mut self) {
        self.at_gate = false;
        let mut slot = match self.registration.slot.lock() {
            Ok(s) => s,
            Err(_) => return,
        };
        if matches!(*slot, Some(InFlight::Paused(_))) {
            *slot = None;
            self.me.entry.take_cancel_wait();
        }
    }

    fn publish_state(&mut self, state: ClientState) {
        if self.published.state != Some(state) {
            self.me.entry.set_state(state);
            self.published.state = Some(state);
        }
    }

    /// Tells the registry of live sessions what changed since last time.
    fn publish(&mut self) {
        let state = if self.paused_on.is_some() {
            ClientState::Waiting
        } else if !self.pending.is_empty() || self.held.is_some() {
            ClientState::Active
        } else if self.tx.is_some() {
            ClientState::InTransaction
        } else {
            ClientState::Idle
        };
        self.publish_state(state);
        let held = self.conns.iter().map(Option::is_some);
        if !held.clone().eq(self.published.binds.iter().copied()) {
            self.published.binds = held.collect();
            // a replica lease shows as its bind
            let mut binds: Vec<BindId> = self
                .conns
                .keys()
                .filter(|&i| self.conns[i].is_some())
                .map(crate::registry::primary_of)
                .collect();
            binds.sort_unstable();
            binds.dedup();
            self.me.entry.set_binds(binds);
        }
        let multi = self.tx.as_ref().filter(|t| t.participants.len() > 1);
        let changed = match (multi, &self.published.transaction) {
            (None, None) => false,
            (Some(t), Some(p)) => {
                t.participants.len() != p.len()
                    || t.participants
                        .iter()
                        .zip(p)
                        .any(|(a, (b, ph))| a.bind != *b || a.phase != *ph)
            }
            _ => true,
        };
        if changed {
            let view = multi.map(|t| {
                t.participants
                    .iter()
                    .map(|p| (p.bind, p.phase))
                    .collect::<Vec<_>>()
            });
            self.me.entry.set_transaction(view.clone());
            self.published.transaction = view;
        }
    }

    fn client_read(&self) -> ClientRead {
        if self.held.is_some() {
            // The backends come first: a flooding client cannot starve them.
            ClientRead::AfterBackends
        } else if self.pending_full() {
            ClientRead::Paused
        } else {
            ClientRead::First
        }
    }

    /// True when no more client messages may be dispatched until some answers have come.
    fn pending_full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Ends the session when the client has sent more than a session may buffer while one of its
    /// messages waits for another bind.
    fn check_held_buffer(&self) -> Result<(), SessionError> {
        if self.held.is_none() {
            return Ok(());
        }
        // One message larger than the bound may come whole, if its declared length is allowed.
        let largest = self.proxy.config.max_message_bytes.saturating_add(1);
        let next = self
            .client
            .next_frame_size()
            .filter(|&n| n <= largest)
            .unwrap_or(0);
        let allowed = HELD_BUFFER_BYTES.max(next);
        if self.client.buffered() <= allowed {
            return Ok(());
        }
        let bind = self
            .head_bind()
            .map(|b| self.proxy.bind_name(b).to_string())
            .unwrap_or_default();
        Err(SessionError::Fatal(ProxyError::ClientFlood {
            bind,
            limit: HELD_BUFFER_BYTES,
        }))
    }

    /// The bind whose response is due next, if any.
    fn head_bind(&self) -> Option<BindId> {
        self.pending.iter().find_map(Pending::bind)
    }

    /// True when a message for `bind` (None: handled locally) must wait for other responses.
    fn blocked(&self, bind: Option<BindId>) -> bool {
        self.pending
            .iter()
            .any(|p| p.bind().is_some_and(|b| Some(b) != bind))
    }

    async fn write_client(&mut self) -> Result<(), SessionError> {
        if !self.out.is_empty() {
            self.client_tx.write_all(&self.out).await?;
            // A no-op on a plain stream; TLS records may wait in the TLS layer until it.
            self.client_tx.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn flush_backends(&mut self) {
        for i in self.conns.keys() {
            let failed = match self.conns[i].as_mut().and_then(Conn::pg) {
                Some(l) => l.conn.flush().await.err(),
                None => None,
            };
            if let Some(e) = failed {
                self.backend_lost(i, e.to_string());
            }
        }
    }

    /// Publishes the connection running this session's statement, for CancelRequests.
    fn update_cancel_slot(&mut self) {
        let head = self.head_bind();
        if head == self.in_flight {
            return;
        }
        self.in_flight = head;
        let target = head.and_then(|b| self.pg_in_flight(b));
        if let Ok(mut slot) = self.registration.slot.lock() {
            *slot = target;
        }
    }

    /// The MySQL/SQLite connection of `bind`, published in the cancel slot for the statement the
    /// caller runs on it now (translated statements run inside dispatch, before the pump's
    /// [`Session::update_cancel_slot`]); [`Session::cancel_done`] clears the slot when it ends.
    fn cancellable(&mut self, bind: BindId) -> Option<&mut TranslatedConn> {
        let Some(Conn::Translated(t)) = &mut self.conns[bind] else {
            return None;
        };
        let handle = t.cancel_handle().map(InFlight::from);
        if let Ok(mut slot) = self.registration.slot.lock() {
            *slot = handle;
        }
        // the pump publishes its head bind again from scratch
        self.in_flight = None;
        Some(t)
    }

    /// What a CancelRequest needs to stop the statement running on `bind`'s PostgreSQL connection.
    fn pg_in_flight(&self, bind: BindId) -> Option<InFlight> {
        match &self.conns[bind] {
            Some(Conn::Pg(l)) => Some(InFlight::Pg {
                addr: l.conn.addr,
                pid: l.conn.backend_pid,
                secret: l.conn.backend_secret.clone(),
            }),
            _ => None,
        }
    }

    /// Publishes the PostgreSQL connection of `bind` in the cancel slot, for a statement the
    /// session awaits inside dispatch (a piece of a Query across binds); [`Session::cancel_done`]
    /// clears it.
    fn publish_pg_cancel(&mut self, bind: BindId) {
        let target = self.pg_in_flight(bind);
        if let Ok(mut slot) = self.registration.slot.lock() {
            *slot = target;
        }
        self.in_flight = None;
    }

    /// The statement of [`Session::cancellable`] ended: a cancel that comes now does nothing.
    fn cancel_done(&mut self) {
        let old = self
            .registration
            .slot
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        if let Some(old) = old {
            old.retire();
        }
        self.in_flight = None;
    }

    /// The transaction status the client is told in ReadyForQuery: failed when bindproxy failed
    /// it or any participant is in its failed state.
    fn client_status(&self) -> u8 {
        let Some(t) = &self.tx else { return b'I' };
        let failed = t.failed
            || t.participants.iter().any(|p| {
                self.conns[p.bind]
                    .as_ref()
                    .is_none_or(|c| c.status() == b'E')
            });
        if failed {
            b'E'
        } else {
            b'T'
        }
    }

    /// Makes sure this session holds a connection to `bind`; a new one gets the client's startup
    /// parameters and session-level settings. With `join`, a bind that is not yet a participant
    /// of the open transaction joins it (`txn.rs`).
    async fn ensure_conn(&mut self, bind: BindId, join: Join) -> Result<(), ProxyError> {
        if Some(bind) == self.proxy.catalog_bind() {
            // Answers from other binds come before a statement for the catalog is dispatched
            // (`Session::blocked`), so the DDL they answered has run: hand it over first.
            if self.tx.is_none() {
                self.hand_ddl_to_catalog(true);
            }
            self.catalog_caught_up().await;
        }
        if self.conns[bind].is_none() {
            if crate::registry::is_replica_lease(bind) {
                // a replica lease is taken by `read_target`, which sends nothing there without one
                return Err(ProxyError::BackendUnavailable {
                    bind: self.proxy.bind_name(bind).to_string(),
                    reason: "the read replica's connection is gone".into(),
                });
            }
            self.check_leasable(bind)?;
            let Some(slot) = self.proxy.binds.get(bind) else {
                return Err(ProxyError::BindRetired {
                    bind: self.proxy.bind_name(bind).to_string(),
                    why: crate::registry::Retired::Removed,
                });
            };
            let wait = crate::metrics::checkout_started(bind);
            let lease = match &slot.bind {
                Bind::Pg(pool) => checked_out(wait, PgPool::checkout(pool).await)?,
                Bind::Translated(t) => {
                    let mut conn = checked_out(wait, TranslatedBind::checkout(t).await)?;
                    for (k, v) in &self.settings {
                        conn.apply_startup_parameter(k, v);
                    }
                    conn.set_identity(&self.identity.0, &self.identity.1);
                    let mut warnings = BytesMut::new();
                    for sql in self.session_sets.statements() {
                        if let Err(e) = conn.query(sql, &mut BytesMut::new()).await {
                            replay_warning(&mut warnings, &self.proxy.bind_name(bind), &e);
                        }
                    }
                    if !warnings.is_empty() {
                        self.local(warnings, false);
                    }
                    self.conns[bind] = Some(Conn::Translated(Box::new(conn)));
                    return self.join(bind, join).await;
                }
            };
            self.install_pg_lease(bind, lease);
            if Some(bind) == self.proxy.catalog_bind() {
                self.catalog_path = None;
            }
        }
        if Some(bind) == self.proxy.catalog_bind() {
            self.align_catalog_path(bind);
        }
        self.join(bind, join).await
    }

    /// A new PostgreSQL lease in `slot` (a bind's, or a replica lease): it gets the client's
    /// startup parameters and session-level settings first, answered quietly.
    fn install_pg_lease(&mut self, slot: BindId, mut lease: crate::backend::pg::PgLease) {
        let n = (self.setup.len() + self.session_sets.len()) as u32;
        for q in &self.setup {
            lease.conn.wbuf.extend_from_slice(q.raw());
        }
        for sql in self.session_sets.statements() {
            lease.conn.wbuf.extend_from_slice(query_frame(sql).raw());
        }
        self.conns[slot] = Some(Conn::Pg(lease));
        if n > 0 {
            self.pending.push_back(Pending::Quiet {
                bind: slot,
                ready: n,
                errors: OwnErrors::Warn,
            });
        }
    }

    /// The catalog bind is never in the client's transaction, so the `SET`s made inside one do
    /// not reach it: before each statement it gets the session's `search_path` as it is now, so
    /// that `pg_table_is_visible` and unqualified names answer as the client expects.
    fn align_catalog_path(&mut self, bind: BindId) {
        if !matches!(self.conns[bind], Some(Conn::Pg(_))) {
            // the embedded catalog shows `public` and `pg_catalog` whatever the path
            return;
        }
        let path = self.search_path.resolved();
        if self.catalog_path.as_ref() == Some(&path) {
            return;
        }
        let value = path
            .iter()
            .map(|s| conn::ident(s))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT pg_catalog.set_config('search_path', '{}', false)",
            value.replace('\'', "''")
        );
        self.send(bind, query_frame(&sql).raw());
        self.pending.push_back(Pending::Quiet {
            bind,
            ready: 1,
            errors: OwnErrors::Warn,
        });
        self.catalog_path = Some(path);
    }

    /// The MySQL/SQLite connection of `bind`, if that is what this session holds there.
    fn translated(&mut self, bind: BindId) -> Option<&mut TranslatedConn> {
        match &mut self.conns[bind] {
            Some(Conn::Translated(t)) => Some(t),
            _ => None,
        }
    }

    /// Queues the answer of a MySQL/SQLite bind, and follows its transaction status.
    fn translated_answer(
        &mut self,
        bind: BindId,
        mut out: BytesMut,
        result: Result<(), ProxyError>,
        simple: bool,
    ) {
        crate::metrics::bytes_received(self.proxy.primary_of(bind), out.len());
        if let Err(e) = result {
            self.observe_error(Some(bind), e.sqlstate(), &e.to_string());
            e.write_to(&mut out);
            if !simple {
                self.skipping = true;
                self.pipeline_failed();
            }
        }
        // Mid-pipeline a MySQL/SQLite connection may be in its implicit transaction: only the
        // status after a Query (or Sync, see `on_sync`) says what the client's transaction is.
        if simple {
            if let Some(c) = &self.conns[bind] {
                let status = c.status();
                self.follow_status(bind, status);
            }
        }
        self.local(out, simple);
    }

    /// Queues raw bytes for a bind's connection (which [`Session::ensure_conn`] opened).
    fn send(&mut self, bind: BindId, raw: &[u8]) {
        if let Some(l) = self.conns[bind].as_mut().and_then(Conn::pg) {
            l.conn.wbuf.extend_from_slice(raw);
            crate::metrics::bytes_sent(self.proxy.primary_of(bind), raw.len());
        }
        self.flush_sent = false;
    }

    /// Queues an answer of bindproxy's own.
    fn local(&mut self, bytes: BytesMut, ready: bool) {
        self.pending.push_back(Pending::Local { bytes, ready });
    }

    /// Reports an error bindproxy found itself. Inside a transaction the transaction fails, as it
    /// would in PostgreSQL; in an extended-protocol pipeline the rest is skipped until Sync.
    fn refuse(&mut self, err: ProxyError, simple: bool) {
        tracing::debug!("refused: {}", Escaped(&err.to_string()));
        self.observe_refusal(&err);
        self.fail_transaction();
        let mut bytes = BytesMut::new();
        err.write_to(&mut bytes);
        if !simple {
            self.skipping = true;
        }
        self.local(bytes, simple);
    }

    /// Puts the open transaction into PostgreSQL's failed state ('E': everything is refused until
    /// ROLLBACK). With exactly one participant, whose COMMIT and ROLLBACK TO are relayed, that
    /// participant itself must be in that state, so that COMMIT rolls back and ROLLBACK TO
    /// SAVEPOINT recovers exactly as PostgreSQL does: on a PostgreSQL bind bindproxy makes a
    /// statement fail there (a Parse that cannot parse, then Sync, both answered quietly).
    fn fail_transaction(&mut self) {
        self.search_path.transaction_failed();
        let Some(t) = &mut self.tx else { return };
        t.failed = true;
        let [only] = t.participants.as_slice() else {
            return;
        };
        let b = only.bind;
        if let Some(t) = self.translated(b) {
            t.fail_transaction();
            return;
        }
        let mut raw = BytesMut::new();
        let parse = Frame::new(
            b'P',
            b"\0bindproxy refused a statement in this transaction\0\0\0",
        );
        raw.extend_from_slice(parse.raw());
        raw.extend_from_slice(Frame::new(b'S', b"").raw());
        self.send(b, &raw);
        self.pending.push_back(Pending::Quiet {
            bind: b,
            ready: 1,
            errors: OwnErrors::Ignore,
        });
    }

    /// A backend connection died or broke the protocol: tell the client, forget the connection,
    /// and keep the session going for the other binds.
    fn backend_lost(&mut self, bind: BindId, reason: String) {
        let name = self.proxy.bind_name(bind).to_string();
        tracing::warn!(bind = %name, "backend connection lost: {}", Escaped(&reason));
        if let Some(Conn::Pg(mut lease)) = self.conns[bind].take() {
            lease.broken = true;
            PgPool::release(lease);
        }
        let err = ProxyError::BackendLost { bind: name, reason };
        self.observe_refusal(&err);
        let mut bytes = BytesMut::new();
        err.write_to(&mut bytes);
        // Replace what the dead connection owed with the error, keeping the client's count of
        // ReadyForQuery right.
        let mut reported = false;
        let mut lost_extended = false;
        let mut rebuilt = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            match p {
                Pending::Extended { bind: b, .. } if b == bind => {
                    if !reported {
                        rebuilt.push_back(Pending::Local {
                            bytes: bytes.clone(),
                            ready: false,
                        });
                        reported = true;
                        lost_extended = true;
                    }
                }
                Pending::UntilReady { bind: b, emit, .. } if b == bind => {
                    if !reported {
                        rebuilt.push_back(Pending::Local {
                            bytes: bytes.clone(),
                            ready: emit,
                        });
                        reported = true;
                    } else if emit {
                        rebuilt.push_back(Pending::Local {
                            bytes: BytesMut::new(),
                            ready: true,
                        });
                    }
                }
                Pending::Quiet { bind: b, .. } if b == bind => {}
                other => rebuilt.push_back(other),
            }
        }
        self.pending = rebuilt;
        if lost_extended {
            self.skip_until_sync();
        }
        self.touched.retain(|&b| b != bind);
        self.forget_statements_on(bind);
        if self.copy_bind == Some(bind) {
            self.copy_bind = None;
        }
        let participant = self.tx.as_ref().is_some_and(|t| t.has(bind));
        if let (true, Some(t)) = (participant, &mut self.tx) {
            // The transaction's work on that bind is gone with its connection: the client must
            // roll back.
            t.participants.retain(|p| p.bind != bind);
            t.failed = true;
            if !reported {
                // Nothing was in flight: tell the client at its next statement.
                self.local(bytes, false);
            }
        }
    }

    /// Gives every connection back at the end of the session. A PostgreSQL connection whose state
    /// is unknown is closed, never pooled: one that still owes answers (a statement running, a
    /// COPY in progress), or that received extended-protocol messages since the client's last
    /// Sync (its implicit transaction must not be committed by a Sync bindproxy would invent).
    fn release_all(&mut self) {
        for (i, c) in self.conns.iter_mut() {
            let Some(conn) = c.take() else { continue };
            let mut lease = match conn {
                Conn::Translated(t) => {
                    tokio::spawn(t.release());
                    continue;
                }
                Conn::Pg(lease) => lease,
            };
            {
                let in_flight = self.pending.iter().any(|p| p.bind() == Some(i));
                let unsynced = self.touched.contains(&i) || self.copy_bind == Some(i);
                if unsynced {
                    lease.broken = true;
                }
                if in_flight {
                    lease.broken = true;
                    let (addr, pid, secret) = (
                        lease.conn.addr,
                        lease.conn.backend_pid,
                        lease.conn.backend_secret.clone(),
                    );
                    tokio::spawn(async move {
                        let _ = crate::backend::pg::PgConn::cancel(addr, pid, &secret).await;
                    });
                }
                PgPool::release(lease);
            }
        }
        if let Ok(mut slot) = self.registration.slot.lock() {
            *slot = None;
        }
    }
}

/// Counts a checkout's outcome in the bind's metrics.
fn checked_out<T>(
    wait: crate::metrics::CheckoutWait,
    r: Result<T, ProxyError>,
) -> Result<T, ProxyError> {
    use crate::metrics::Checkout;
    wait.done(match &r {
        Ok(_) => Checkout::Leased,
        Err(ProxyError::BackendUnavailable { .. }) => Checkout::ConnectFailed,
        Err(_) => Checkout::Failed,
    });
    r
}

/// Polls the backend connections that may speak now: while responses are due, only the bind that
/// owes the next one (others are left unread: backpressure); when idle, every connection may send
/// notices or notifications.
fn poll_backends(
    conns: &mut leases::Leases,
    head: Option<BindId>,
    cx: &mut std::task::Context<'_>,
) -> Option<Wake> {
    for (i, c) in conns.iter_mut() {
        if head.is_some_and(|h| h != i) {
            continue;
        }
        if let Some(l) = c.as_mut().and_then(Conn::pg) {
            if let Poll::Ready(r) = l.conn.reader.poll_fill(cx) {
                return Some(Wake::Backend(i, r));
            }
        }
    }
    None
}

/// Whether a statement joins the open transaction on its bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// It is part of the transaction.
    Transaction,
    /// It runs outside (a catalog query or SHOW before the transaction's first statement, a
    /// Describe).
    Outside,
}

/// A WARNING for a session setting that a bind reached later could not take: the client's
/// session is not the same there, and it should know.
fn replay_warning(out: &mut BytesMut, bind: &str, e: &ProxyError) {
    crate::protocol::messages::notice_response(
        out,
        &crate::protocol::messages::ErrorFields {
            severity: "WARNING",
            code: e.sqlstate(),
            message: &format!("bind \"{bind}\" did not take a setting of this session: {e}"),
            detail: None,
            hint: None,
        },
    );
}

/// A simple Query message for `sql`.
fn query_frame(sql: &str) -> Frame {
    let mut body = Vec::with_capacity(sql.len() + 1);
    body.extend_from_slice(sql.as_bytes());
    body.push(0);
    Frame::new(b'Q', &body)
}
