//! The `bindproxy` command: run the daemon, check a configuration, or show a statement's route.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use bindproxy::backend::Bind;
use bindproxy::config::{Config, CrossBind, LogFormat, LISTEN_ENV};
use bindproxy::proxy::Proxy;
use bindproxy::shutdown::Shutdown;
use bindproxy::sql::{analyze_uncached, Method};
use bindproxy::tx::recover::{detect_capabilities, pg_max_prepared, recover};
use bindproxy::tx::Capability;

#[derive(Parser)]
#[command(
    version,
    about = "A PostgreSQL-wire proxy that routes each statement to the database holding its tables"
)]
struct Cli {
    /// Configuration file (YAML). Without it, the embedded config.example.yaml is used.
    #[arg(long, short, env = "BINDPROXY_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address and port to listen on, e.g. 0.0.0.0:6432. Overrides the environment variable
    /// BINDPROXY_LISTEN, which overrides the file's `listen` (default 127.0.0.1:6432).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the configuration and connect to every bind.
    Check,
    /// Finish the prepared transactions a crash left in doubt (commit those with a commit
    /// decision in the log, roll back the rest), then exit. Refuses while a daemon holds the log.
    /// Exit status 0 when nothing is left in doubt, 1 otherwise.
    Recover,
    /// Print a SCRAM-SHA-256 verifier for a `users:` entry. The password is read from a prompt
    /// (asked twice, not echoed) or, when standard input is not a terminal, from its first line;
    /// never from the command line, where other users could see it.
    Passwd {
        /// The user name the entry is for.
        name: String,
    },
    /// Ask the running daemon's `admin_http` whether it is ready (`/readyz`): exit status 0 when
    /// every bind answers, 1 otherwise. For container health checks (the image has no curl).
    Ready,
    /// The one catalog over every bind (`catalog:`).
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Print the tables of a statement and the bind it goes to. Needs no server.
    Route {
        /// Print one JSON line.
        #[arg(long)]
        json: bool,
        /// The SQL statement(s).
        sql: String,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// Read every bind and render the catalog database again, then exit (a running daemon does
    /// this at start and keeps it in step with the DDL it relays).
    Sync,
}

/// BINDPROXY_LOG: a level (`debug`) applies to bindproxy's own logs only, so that the parser's
/// tracing stays quiet; a full filter (`bindproxy=debug,sqlparser=trace`) is taken as written.
fn log_filter() -> EnvFilter {
    match std::env::var("BINDPROXY_LOG") {
        Ok(v) if v.contains('=') => EnvFilter::new(v),
        Ok(v) if !v.is_empty() => EnvFilter::new(format!("warn,bindproxy={v}")),
        _ => EnvFilter::new("warn,bindproxy=info"),
    }
}

/// The configuration, with the listen address from `--listen` or BINDPROXY_LISTEN when given.
fn load(path: &Option<PathBuf>, listen: Option<&str>) -> Result<Config, String> {
    let mut config = match path {
        Some(p) => Config::load(p),
        None => Config::embedded(),
    }
    .map_err(|e| e.to_string())?;
    let env = match std::env::var(LISTEN_ENV) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(format!(
                "{LISTEN_ENV}: `{}` is not valid UTF-8",
                v.to_string_lossy()
            ))
        }
    };
    config
        .override_listen(listen, env.as_deref())
        .map_err(|e| e.to_string())?;
    Ok(config)
}

/// Logs to stderr, as text or (`log_format: json`) one JSON object per line.
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder
            // Colours only on a terminal: log files and `docker logs` stay plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Crash points of the two-phase commit, armed by the FAILPOINTS environment variable; only in
    // a binary built with `--features failpoints` (the test suite's).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    if let Some(Command::Passwd { name }) = &cli.command {
        // needs no configuration
        init_logs(LogFormat::Text);
        return passwd(name);
    }
    let config = match load(&cli.config, cli.listen.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(config.log_format);
    match cli.command.unwrap_or(Command::Run) {
        Command::Route { json, sql } => route(&config, json, &sql),
        Command::Passwd { name } => passwd(&name),
        Command::Check => runtime().block_on(check(config)),
        Command::Ready => ready(&config),
        Command::Recover => runtime().block_on(recover_command(config)),
        Command::Catalog {
            action: CatalogAction::Sync,
        } => runtime().block_on(catalog_sync(config)),
        Command::Run => {
            let rt = runtime();
            let code = rt.block_on(run(config));
            // Tasks still running (a background phase-2 retry) are dropped; recovery at the next
            // start finishes what they leave.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // headroom for the result types of long expression chains (translated binds), which are
        // resolved on the session's task; deep parse trees themselves go to their own threads
        .thread_stack_size(8 << 20)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bindproxy: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    }
}

/// `bindproxy ready`: GET /readyz from the daemon's own `admin_http`.
fn ready(config: &Config) -> ExitCode {
    use bindproxy::admin::probe;
    let Some(addr) = config.admin_http else {
        eprintln!(
            "bindproxy ready: admin_http is not set in {}: there is nothing to ask",
            config.source
        );
        return ExitCode::from(2);
    };
    match probe::get(
        probe::reachable(addr),
        "/readyz",
        std::time::Duration::from_secs(3),
    ) {
        Ok(answer) => {
            println!("{}", answer.body.trim_end());
            if answer.status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bindproxy ready: {e}");
            ExitCode::from(1)
        }
    }
}

/// `bindproxy passwd NAME`: a `users:` entry with a SCRAM-SHA-256 verifier, as PostgreSQL stores
/// one (4096 iterations, random salt), so the password itself is in no file.
fn passwd(name: &str) -> ExitCode {
    let password = match read_password(name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bindproxy passwd: {e}");
            return ExitCode::from(2);
        }
    };
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let entry = format!(
        "# under users: in the configuration\n  - name: {}\n    scram_verifier: \"{verifier}\"\n",
        serde_json::Value::from(name)
    );
    // a closed pipe (`| head`) is the reader's choice, not an error worth a panic
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), entry.as_bytes());
    ExitCode::SUCCESS
}

/// The password: from a prompt (twice, not echoed) on a terminal, else the first line of stdin.
fn read_password(name: &str) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

fn route(config: &Config, json: bool, sql: &str) -> ExitCode {
    let router = config.router();
    let analysis = analyze_uncached(sql);
    let split_lists = config.transactions.cross_bind != bindproxy::config::CrossBind::Reject;
    match bindproxy::admin::console::explain_route::place_all(&router, &analysis, sql, split_lists)
    {
        Ok(placed) => {
            let binds: Vec<String> = placed.iter().map(|p| p.bind.clone()).collect();
            let mut tables: Vec<String> = placed
                .iter()
                .flat_map(|p| p.route.tables.iter())
                .map(|(t, _)| {
                    bindproxy::admin::console::explain_route::qualified(t, &config.default_schema)
                })
                .collect();
            tables.sort();
            tables.dedup();
            let bind = binds.first().cloned().unwrap_or_default();
            if json {
                // Field order as documented: tables first; `statements` only when the statements of
                // the string go to several binds.
                let mut out = serde_json::json!({ "tables": tables, "bind": bind });
                if placed.len() > 1 {
                    out["statements"] = serde_json::Value::from(binds);
                }
                println!("{out}");
            } else {
                println!(
                    "tables: {}",
                    if tables.is_empty() {
                        "(none)".to_string()
                    } else {
                        tables.join(", ")
                    }
                );
                let how = match analysis.method {
                    Method::Parsed => "",
                    Method::BulkHead => "   (a large INSERT … VALUES: routed by its head)",
                    Method::Reduced => "   (a large statement: lists of literals collapsed first)",
                };
                if placed.len() > 1 {
                    println!(
                        "bind:   {}   (statement by statement, in one transaction)",
                        binds.join(", ")
                    );
                } else {
                    println!("bind:   {bind}{how}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = e.sqlstate().to_owned();
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": e.to_string(), "sqlstate": code })
                );
            } else {
                println!("error (SQLSTATE {code}): {e}");
            }
            ExitCode::from(1)
        }
    }
}

async fn check(config: Config) -> ExitCode {
    println!("{}: configuration is valid", config.source);
    println!("listen: {} (from {})", config.listen, config.listen_origin);
    let proxy = match Proxy::new(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let mut ok = true;
    for (name, i) in proxy.user_binds() {
        let Some(slot) = proxy.binds.get(i) else {
            continue;
        };
        let bind = &slot.bind;
        match bind.check().await {
            Ok(version) => {
                println!("bind {name}: ok ({version})");
                println!("  two-phase commit: {}", two_phase_text(bind).await);
            }
            Err(e) => {
                ok = false;
                println!("bind {name}: FAILED: {e}");
            }
        }
        // a replica that cannot be reached is reported, not fatal: the primary serves its reads
        for r in slot.replicas.iter().flat_map(|s| &s.replicas) {
            match r.pool.connect().await {
                Ok(_) => println!("  replica {}: ok", r.pool.target()),
                Err(e) => println!(
                    "  replica {}: unreachable ({e}); its reads go to the primary",
                    r.pool.target()
                ),
            }
        }
    }
    match &proxy.catalog {
        Some(c) => println!("catalog: {} (every bind's tables, synced at start)", c.store),
        None => println!("catalog: none (catalog queries go to the bind of the table they name, else the default bind)"),
    }
    let tx = &proxy.config.transactions;
    println!(
        "transactions: cross_bind {}, instance_id {}, log_dir {}",
        cross_bind_name(tx.cross_bind),
        tx.instance_id,
        tx.log_dir.display()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Whether a bind can take part in two-phase commit, for `check`.
async fn two_phase_text(bind: &Bind) -> String {
    const LAST: &str = "it can only be the last resource of a multi-bind transaction";
    match bind {
        Bind::Pg(p) => match pg_max_prepared(p).await {
            Ok(n) if n > 0 => format!("yes (max_prepared_transactions = {n})"),
            Ok(n) => format!("no (max_prepared_transactions = {n}): {LAST}"),
            Err(e) => format!("unknown ({e})"),
        },
        Bind::Translated(t) if t.is_mysql() => "yes (XA)".into(),
        Bind::Translated(_) => format!("no (SQLite): {LAST}"),
    }
}

fn cross_bind_name(c: CrossBind) -> &'static str {
    match c {
        CrossBind::TwoPhase => "two_phase",
        CrossBind::Sequential => "sequential",
        CrossBind::Reject => "reject",
    }
}

/// `bindproxy catalog sync`.
async fn catalog_sync(config: Config) -> ExitCode {
    let proxy = match Proxy::new(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(c) = &proxy.catalog else {
        eprintln!("bindproxy catalog sync: there is no catalog database (`catalog: off`, or the only bind is one PostgreSQL bind)");
        return ExitCode::from(2);
    };
    match bindproxy::catalog::shadow::sync_once(&proxy).await {
        Ok(s) if s.unread.is_empty() => {
            println!("catalog {}: {} tables", c.store, s.tables);
            ExitCode::SUCCESS
        }
        Ok(s) => {
            println!(
                "catalog {}: {} tables; could not read bind(s) {}",
                c.store,
                s.tables,
                s.unread.join(", ")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bindproxy catalog sync: {e}");
            ExitCode::from(1)
        }
    }
}

/// `bindproxy recover`.
async fn recover_command(config: Config) -> ExitCode {
    let proxy = match Proxy::new(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let _lock = match proxy.tx.log.lock() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bindproxy recover: {e}");
            return ExitCode::from(2);
        }
    };
    detect_capabilities(&proxy).await;
    match recover(&proxy).await {
        Ok(report) => {
            print!("{report}");
            if report.is_clean() {
                println!("nothing is left in doubt");
                ExitCode::SUCCESS
            } else {
                println!("prepared transactions may still be in doubt: run `bindproxy recover` again when every bind is reachable");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bindproxy recover: {e}");
            ExitCode::from(1)
        }
    }
}

/// Start-up work on transactions before the daemon listens: finish what a crash left prepared,
/// and say which binds can take part in two-phase commit.
async fn recover_at_start(proxy: &Proxy) -> Result<(), String> {
    detect_capabilities(proxy).await;
    let report = recover(proxy).await.map_err(|e| e.to_string())?;
    // The summary always; a bind's line only when something happened there.
    for line in report.to_string().lines() {
        let quiet = line.ends_with(": 0 committed, 0 rolled back") || line.contains(": skipped (");
        if !quiet {
            tracing::info!("{line}");
        }
    }
    if !report.is_clean() {
        tracing::warn!(
            log_dir = %proxy.tx.log.dir().display(),
            "some prepared transactions stay in doubt (a bind was unreachable or a branch could not be finished); they hold locks on their rows until `bindproxy recover` or the next start finishes them"
        );
    }
    let mut last_resources = Vec::new();
    for (name, i) in proxy.user_binds() {
        let Some(slot) = proxy.binds.get(i) else {
            continue;
        };
        let why = match (&slot.bind, proxy.capability(i)) {
            (_, Some(Capability::TwoPhase)) | (_, None) => continue,
            (Bind::Pg(_), Some(Capability::LastResource)) => "max_prepared_transactions = 0",
            (Bind::Translated(_), Some(Capability::LastResource)) => "SQLite",
        };
        tracing::info!("bind {name} cannot prepare ({why}): it can only be the last resource of a multi-bind transaction");
        last_resources.push(name.clone());
    }
    if last_resources.len() >= 2 && proxy.tx.mode == CrossBind::TwoPhase {
        tracing::warn!(
            binds = ?last_resources,
            "several binds cannot prepare: their commits are not atomic with each other (only one last resource can follow the decision of a two-phase commit)"
        );
    }
    Ok(())
}

async fn run(config: Config) -> ExitCode {
    let listen = config.listen;
    let listen_from = config.listen_origin.to_string();
    let source = config.source.clone();
    let admin_http = config.admin_http;
    let shutdown_timeout = config.shutdown_timeout;
    let proxy = match Proxy::new(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    // Held until the daemon exits: `bindproxy recover` and a second daemon on the same log refuse.
    let _log_lock = match proxy.tx.log.lock() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bindproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let bind_names: Vec<String> = proxy
        .binds
        .all()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    let metrics = match bindproxy::metrics::install(&bind_names) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("bindproxy: cannot set up metrics: {e}");
            return ExitCode::from(1);
        }
    };
    // read replicas: each bind's lag check, once a second, for as long as the daemon runs
    proxy.start_replica_monitors();
    if let Err(e) = recover_at_start(&proxy).await {
        eprintln!("bindproxy: recovery of prepared transactions failed: {e}");
        return ExitCode::from(2);
    }
    if let Some(c) = &proxy.catalog {
        match bindproxy::catalog::shadow::start(&proxy).await {
            Ok(s) => {
                let _ = c.syncer.set(s);
            }
            Err(e) => {
                eprintln!("bindproxy: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // SIGHUP reloads (`reload`): the file again, the table map and binds swapped, the catalog
    // synced again.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            let weak = std::sync::Arc::downgrade(&proxy);
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let Some(proxy) = weak.upgrade() else { break };
                    match bindproxy::reload::reload(&proxy).await {
                        Ok(report) => tracing::info!(%report, "SIGHUP: reloaded"),
                        Err(e) => tracing::warn!(
                            error = %e,
                            "SIGHUP: reload failed; the running configuration stays"
                        ),
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP: reload only by restart"),
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bindproxy: cannot listen on {listen} (from {listen_from}): {e}");
            return ExitCode::from(1);
        }
    };
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bindproxy: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let mut background = tokio::task::JoinSet::new();
    if let Some(addr) = admin_http {
        let admin_listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bindproxy: cannot listen on {addr} (admin_http): {e}");
                return ExitCode::from(1);
            }
        };
        let admin = bindproxy::admin::Admin::new(proxy.clone(), shutdown.clone(), metrics.clone());
        tracing::info!(addr = %admin_listener.local_addr().unwrap_or(addr), "admin_http: /healthz /readyz /metrics");
        background.spawn(bindproxy::admin::serve(
            std::sync::Arc::new(admin),
            admin_listener,
        ));
    }
    // Without the exporter's own listener, its histograms are drained here.
    background.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            metrics.run_upkeep();
        }
    });
    tracing::info!(%listen, from = %listen_from, config = %source, binds = ?bind_names, "bindproxy listening");
    let serving = bindproxy::frontend::listener::serve(proxy, listener, shutdown.clone());
    tokio::pin!(serving);
    let signal = tokio::select! {
        r = &mut serving => {
            if let Err(e) = r { eprintln!("bindproxy: {e}"); return ExitCode::from(1); }
            return ExitCode::SUCCESS;
        }
        s = signals.next() => s,
    };
    // The listener stays open during the drain, refusing new sessions with 57P03 (and serving
    // CancelRequests); open sessions end when their transaction does.
    tracing::info!(
        signal,
        sessions = shutdown.sessions(),
        timeout_secs = shutdown_timeout.as_secs_f32(),
        "shutting down: waiting for open transactions"
    );
    shutdown.drain();
    let drained = tokio::select! {
        _ = shutdown.all_sessions_ended() => true,
        _ = tokio::time::sleep(shutdown_timeout) => false,
        s = signals.next() => {
            tracing::warn!(signal = s, "second signal: exiting at once");
            std::process::exit(1);
        }
        // the listener keeps answering (refusing) in the meantime; it ends only on an error
        _ = &mut serving => false,
    };
    if !drained {
        tracing::info!(
            sessions = shutdown.sessions(),
            "shutdown_timeout passed: cancelling and closing the remaining sessions"
        );
        shutdown.close();
        tokio::select! {
            _ = tokio::time::timeout(CLOSE_GRACE, shutdown.all_sessions_ended()) => {}
            s = signals.next() => {
                tracing::warn!(signal = s, "second signal: exiting at once");
                std::process::exit(1);
            }
        }
    }
    background.abort_all();
    tracing::info!("bindproxy stopped");
    ExitCode::SUCCESS
}

/// After `shutdown_timeout`, how long the sessions get to say FATAL and give back their
/// connections.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// SIGTERM and SIGINT.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The name of the next signal.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
