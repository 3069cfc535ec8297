//! The admin console: database `bindproxy`, for the users of `admin_users`, over the PostgreSQL
//! protocol (psql, psycopg, any driver), as pgbouncer's and PgDog's.
//!
//! Owns: the console's session (simple Query, and the extended protocol with the command run at
//! Bind), the parse of its commands ([`command`]), one file per command, the answers as result
//! sets ([`answer`]), the info log line per command (user, command) and the console's errors
//! ([`ConsoleError`], mapped to SQLSTATE in `error.rs`). Who may open it is decided by the
//! listener (`frontend/listener`, FATAL 28000 for anyone else).
//!
//! Must never: touch a bind for a client, or reach into a client's session: commands read what the
//! registries publish (`crate::clients`, `crate::metrics`, the pools, the router) and act through
//! flags (`crate::pause`, `ClientEntry::kill`) that sessions look at themselves.

pub mod answer;
pub mod command;
pub mod explain_route;
pub mod kill;
pub mod pause;
pub mod reload;
pub mod show_binds;
pub mod show_clients;
pub mod show_pools;
pub mod show_stats;
pub mod show_tables;
pub mod show_transactions;

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::clients::{ClientHandle, ClientState};
use crate::error::ProxyError;
use crate::frontend::logsafe::Escaped;
use crate::frontend::startup::ClientHello;
use crate::protocol::messages::{self, Bind, Execute, Parse, Target};
use crate::protocol::{Frame, FrameError, FrameReader};
use crate::proxy::Proxy;
use crate::session::SessionError;
use crate::shutdown::{SessionSignal, Stage};
use answer::Answer;
pub use command::{Command, COMMANDS};

/// The database name of the console.
pub const DATABASE: &str = "bindproxy";

/// The hint of an unknown command.
pub const COMMANDS_HINT: &str = "Commands: SHOW BINDS, SHOW POOLS, SHOW CLIENTS, SHOW TABLES, SHOW STATS, SHOW TRANSACTIONS, EXPLAIN ROUTE <sql>, RELOAD, PAUSE [bind], RESUME [bind], KILL <client id>.";

/// A console command that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "unknown admin console command {command:?}; the commands are: {}",
        COMMANDS
    )]
    Unknown { command: String },
    #[error("{0}")]
    BadArgument(String),
    #[error("bind \"{0}\" does not exist")]
    UnknownBind(String),
    #[error("no client session with id {0} (see SHOW CLIENTS)")]
    UnknownClient(i32),
    #[error("the admin console takes no parameters")]
    NoParameters,
    #[error("RELOAD failed, the running configuration is kept: {0}")]
    Reload(String),
    #[error("cannot read the decision log: {0}")]
    DecisionLog(String),
}

/// Whether a client asking for `database` as `user` gets the console: `Some(true)` yes,
/// `Some(false)` refused (FATAL 28000), `None` an ordinary session (no `admin_users`, or another
/// database).
pub fn admission(admin_users: &[String], user: &str, database: &str) -> Option<bool> {
    if admin_users.is_empty() || database != DATABASE {
        return None;
    }
    Some(admin_users.iter().any(|u| u == user))
}

/// A portal: the answer of its command, run at Bind, and the formats asked for.
struct Portal {
    answer: Option<Answer>,
    formats: Vec<i16>,
}

/// One console session.
struct Console {
    proxy: Arc<Proxy>,
    me: ClientHandle,
    user: String,
    /// Extended protocol: statement name → its command (None: an empty query).
    statements: HashMap<String, Option<Command>>,
    portals: HashMap<String, Portal>,
    /// After an extended-protocol error: skip until Sync.
    skipping: bool,
    out: BytesMut,
}

/// Runs a console session until the client leaves, `KILL` or shutdown.
pub async fn run(
    proxy: Arc<Proxy>,
    hello: ClientHello,
    mut signal: SessionSignal,
    me: ClientHandle,
) -> Result<(), SessionError> {
    let (rd, mut wr) = hello.stream.into_split();
    let mut reader = FrameReader::new(rd, hello.read_buf, proxy.config.max_message_bytes);
    let mut console = Console {
        proxy,
        me,
        user: hello.user,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
        out: BytesMut::new(),
    };
    let result = async {
        loop {
            loop {
                let frame = reader
                    .try_next()
                    .map_err(|e| SessionError::Protocol(e.to_string()))?;
                let Some(frame) = frame else { break };
                console.me.entry.set_state(ClientState::Active);
                if !console.on_frame(&frame).await? {
                    return Ok(());
                }
            }
            console.me.entry.set_state(ClientState::Idle);
            if !console.out.is_empty() {
                wr.write_all(&console.out).await?;
                wr.flush().await?;
                console.out.clear();
            }
            let entry = console.me.entry.clone();
            let woken = poll_fn(|cx| {
                if signal.poll_changed(cx).is_ready() || entry.poll_woken(cx) {
                    return Poll::Ready(None);
                }
                reader.poll_fill(cx).map(Some)
            })
            .await;
            match woken {
                None if entry.killed() => return Err(SessionError::Fatal(ProxyError::Killed)),
                None if signal.stage() != Stage::Running => {
                    return Err(SessionError::Fatal(ProxyError::AdminShutdown))
                }
                None => {}
                Some(Ok(0)) | Some(Err(FrameError::Truncated)) => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(FrameError::Io(e))) => return Err(SessionError::ClientIo(e)),
                Some(Err(e)) => return Err(SessionError::Protocol(e.to_string())),
            }
        }
    }
    .await;
    let fatal = match &result {
        Err(SessionError::Fatal(e)) => Some(e),
        _ => None,
    };
    let protocol = match &result {
        Err(SessionError::Protocol(m)) => Some(ProxyError::Protocol(m.clone())),
        _ => None,
    };
    if let Some(e) = fatal.or(protocol.as_ref()) {
        let mut out = BytesMut::new();
        e.write_with_severity(&mut out, "FATAL");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            wr.write_all(&out).await?;
            wr.flush().await
        })
        .await;
    }
    result
}

impl Console {
    /// Handles one client message; false when the client ends the session.
    async fn on_frame(&mut self, f: &Frame) -> Result<bool, SessionError> {
        let malformed = |e: messages::Malformed| SessionError::Protocol(e.to_string());
        let tag = f.tag();
        if self.skipping && !matches!(tag, b'S' | b'X') {
            return Ok(true);
        }
        match tag {
            b'Q' => {
                let sql = messages::decode_query(f.body()).map_err(malformed)?;
                match Command::parse(sql) {
                    Ok(None) => messages::empty(&mut self.out, b'I'),
                    Ok(Some(cmd)) => match self.execute(&cmd).await {
                        Ok(a) => a.write(&mut self.out),
                        Err(e) => e.write_to(&mut self.out),
                    },
                    Err(e) => self.refused(sql, e.into()),
                }
                messages::ready_for_query(&mut self.out, b'I');
            }
            b'P' => {
                let p = Parse::decode(f.body()).map_err(malformed)?;
                match Command::parse(p.query) {
                    Ok(cmd) => {
                        self.statements.insert(p.name.to_owned(), cmd);
                        messages::empty(&mut self.out, b'1');
                    }
                    Err(e) => {
                        self.refused(p.query, e.into());
                        self.skipping = true;
                    }
                }
            }
            b'B' => {
                let b = Bind::decode(f.body()).map_err(malformed)?;
                let answer = match self.statements.get(b.statement) {
                    None => Err(ProxyError::UnknownStatement(b.statement.to_owned())),
                    Some(_) if !b.params.is_empty() => Err(ConsoleError::NoParameters.into()),
                    Some(None) => Ok(None),
                    Some(Some(cmd)) => {
                        let cmd = cmd.clone();
                        self.execute(&cmd).await.map(Some)
                    }
                };
                match answer {
                    Ok(answer) => {
                        self.portals.insert(
                            b.portal.to_owned(),
                            Portal {
                                answer,
                                formats: b.result_formats.clone(),
                            },
                        );
                        messages::empty(&mut self.out, b'2');
                    }
                    Err(e) => {
                        e.write_to(&mut self.out);
                        self.skipping = true;
                    }
                }
            }
            b'D' => {
                let t = Target::decode(f.body(), "Describe").map_err(malformed)?;
                if t.kind == b'S' {
                    match self.statements.get(t.name) {
                        Some(cmd) => {
                            messages::parameter_description(&mut self.out, &[]);
                            let cols = cmd.as_ref().map_or(&[][..], Command::columns);
                            Answer::describe(cols, &[], &mut self.out);
                        }
                        None => self.fail(ProxyError::UnknownStatement(t.name.to_owned())),
                    }
                } else {
                    match self.portals.get(t.name) {
                        Some(p) => {
                            let cols = p.answer.as_ref().map_or(&[][..], |a| a.columns);
                            Answer::describe(cols, &p.formats, &mut self.out);
                        }
                        None => self.fail(ProxyError::UnknownPortal(t.name.to_owned())),
                    }
                }
            }
            b'E' => {
                let e = Execute::decode(f.body()).map_err(malformed)?;
                match self.portals.get(e.portal) {
                    Some(Portal {
                        answer: Some(a),
                        formats,
                    }) => a.write_rows(formats, &mut self.out),
                    Some(Portal { answer: None, .. }) => messages::empty(&mut self.out, b'I'),
                    None => self.fail(ProxyError::UnknownPortal(e.portal.to_owned())),
                }
            }
            b'C' => {
                let t = Target::decode(f.body(), "Close").map_err(malformed)?;
                if t.kind == b'S' {
                    self.statements.remove(t.name);
                } else {
                    self.portals.remove(t.name);
                }
                messages::empty(&mut self.out, b'3');
            }
            b'S' => {
                self.skipping = false;
                self.portals.remove("");
                messages::ready_for_query(&mut self.out, b'I');
            }
            b'H' => {}
            b'X' => return Ok(false),
            other => {
                return Err(SessionError::Protocol(format!(
                    "the admin console does not take message type {:?} (0x{other:02x})",
                    other as char
                )))
            }
        }
        Ok(true)
    }

    /// An extended-protocol error: the rest is skipped until Sync.
    fn fail(&mut self, e: ProxyError) {
        e.write_to(&mut self.out);
        self.skipping = true;
    }

    /// A command that could not be parsed: logged, and the error answered.
    fn refused(&mut self, text: &str, e: ProxyError) {
        tracing::info!(
            user = %Escaped(&self.user),
            command = %Escaped(text.trim()),
            "admin console: refused: {e}"
        );
        e.write_to(&mut self.out);
    }

    async fn execute(&self, cmd: &Command) -> Result<Answer, ProxyError> {
        tracing::info!(
            user = %Escaped(&self.user),
            command = %Escaped(&format!("{cmd:?}")),
            "admin console command"
        );
        let p = &self.proxy;
        match cmd {
            Command::ShowBinds => Ok(show_binds::answer(p).await),
            Command::ShowPools => Ok(show_pools::answer(p)),
            Command::ShowClients => Ok(show_clients::answer(p)),
            Command::ShowTables => Ok(show_tables::answer(p).await),
            Command::ShowStats => Ok(show_stats::answer(p)),
            Command::ShowTransactions => show_transactions::answer(p),
            Command::ExplainRoute(sql) => explain_route::answer(p, sql),
            Command::Reload => reload::answer(p).await,
            Command::Pause(bind) => pause::pause(p, bind.as_deref()).await,
            Command::Resume(bind) => pause::resume(p, bind.as_deref()),
            Command::Kill(id) => kill::answer(p, *id, self.me.entry.pid),
        }
    }
}

/// The binds a command names: that one (an error if unknown), or every bind clients use.
/// The binds in force: the configured ones in file order, then the catalog bind.
pub(crate) fn binds_in_force(proxy: &Proxy) -> Vec<std::sync::Arc<crate::registry::BindSlot>> {
    proxy
        .user_binds()
        .into_iter()
        .map(|(_, id)| id)
        .chain(proxy.catalog_bind())
        .filter_map(|id| proxy.binds.get(id))
        .collect()
}

pub(crate) fn binds_named(
    proxy: &Proxy,
    name: Option<&str>,
) -> Result<Vec<std::sync::Arc<str>>, ConsoleError> {
    match name {
        Some(n) => match proxy.bind_id(n) {
            Some(b) if proxy.is_user_bind(b) => Ok(vec![proxy.bind_name(b)]),
            _ => Err(ConsoleError::UnknownBind(n.to_owned())),
        },
        None => Ok(proxy
            .user_binds()
            .into_iter()
            .map(|(n, _)| n.into())
            .collect()),
    }
}
