//! The YAML configuration: where to listen, the binds (databases) and the table → bind map.
//!
//! Owns: reading the file, `${VAR}` substitution in URLs, parsing bind URLs (SQLAlchemy's forms are
//! accepted verbatim, driver suffixes included), and refusing a file that is wrong in any way, with
//! the file, the key and the problem named. Table patterns are validated by building the router.
//!
//! Must never: connect to anything. `bindproxy check` does that.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::backend::pg::tls::{PgTls, RootCert, SslMode};
use crate::backend::translated::mysql_tls::{is_tls_key, MySslMode, MyTls};
use crate::frontend::tls::{ServerTls, TlsMode};
use crate::router::Router;

/// The configuration embedded in the binary: used when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config.example.yaml");

/// A configuration that has passed every check.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (a path, or `<embedded>`), for messages.
    pub source: String,
    /// The file it was read from (None: the embedded configuration or text): what a reload
    /// reads again (`reload.rs`).
    pub path: Option<PathBuf>,
    pub listen: SocketAddr,
    /// Which setting gave `listen` (for the start-up log and `check`).
    pub listen_origin: ListenOrigin,
    pub default_bind: String,
    pub default_schema: String,
    /// Bind name → bind, in file order.
    pub binds: IndexMap<String, BindConfig>,
    /// (pattern, bind name) in file order.
    pub tables: Vec<(String, String)>,
    pub users: Vec<UserConfig>,
    /// How clients prove their password when `users` is not empty.
    pub auth_method: AuthMethod,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// How transactions that span binds commit.
    pub transactions: TransactionsConfig,
    /// Where the one catalog over every bind lives (`catalog:`).
    pub catalog: CatalogSetting,
    /// `discover: true`: a table no rule maps, found on exactly one bind, routes there.
    pub discover: bool,
    /// `tls:`: TLS for clients (certificate and key loaded at parse time), or None: SSLRequest
    /// is answered 'N'.
    pub tls: Option<ServerTls>,
    /// `max_client_conn`: past this many client sessions, a new client gets FATAL 53300 at
    /// startup (CancelRequests are still served). None: no limit.
    pub max_client_conn: Option<usize>,
    /// `admin_http`: where /healthz, /readyz and /metrics are served (None: nowhere).
    pub admin_http: Option<SocketAddr>,
    /// `admin_users`: who may use the admin console (database `bindproxy`). Empty: there is no
    /// console, and `bindproxy` is a database name like any other.
    pub admin_users: Vec<String>,
    /// `shutdown_timeout` (seconds): how long open transactions may run after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// `log_format`: text or JSON lines.
    pub log_format: LogFormat,
    /// Bind name → its read replicas (`binds.NAME.replicas`), for the PostgreSQL binds that list
    /// some, in file order.
    pub replicas: IndexMap<String, ReplicaConfig>,
}

/// The read replicas of one PostgreSQL bind (`replicas`, `replica_lag_max_ms`,
/// `read_your_writes_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// The replicas' URLs, parsed as bind URLs (same `sslmode` rules), in file order.
    pub targets: Vec<PgTarget>,
    /// A replica whose replay lags more than this is not used.
    pub lag_max: Duration,
    /// After a client writes to the bind, its reads stay on the primary this long.
    pub read_your_writes: Duration,
}

/// `catalog:`: the PostgreSQL database that holds a stub of every bind's tables, which answers
/// catalog queries (psql's `\d`, ORMs' reflection, pg_dump).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSetting {
    /// Not set: a database `bindproxy_catalog` (`bindproxy_catalog_<instance_id>` for another
    /// instance id) on the first PostgreSQL bind's server, created if missing; none when the only
    /// bind is one PostgreSQL bind (its own catalog is the whole truth).
    Auto,
    /// `catalog: off`: catalog queries go to the bind of the table they name, else the default bind.
    Off,
    /// `catalog: postgresql://…`.
    Url(Box<PgTarget>),
}

/// The name of the catalog bind, reserved: no configured bind may take it.
pub const CATALOG_BIND: &str = "bindproxy_catalog";

/// `log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

/// `shutdown_timeout` when the file does not set it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// `transactions:`: how a transaction whose statements went to several binds commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsConfig {
    pub cross_bind: CrossBind,
    /// Where the two-phase commit decision log lives (created if missing).
    pub log_dir: PathBuf,
    /// Carried in every global transaction id, so that instances sharing backends each recover
    /// only their own prepared transactions.
    pub instance_id: String,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            cross_bind: CrossBind::TwoPhase,
            log_dir: PathBuf::from(DEFAULT_TX_LOG_DIR),
            instance_id: DEFAULT_INSTANCE_ID.into(),
        }
    }
}

const DEFAULT_TX_LOG_DIR: &str = "data/txlog";
const DEFAULT_INSTANCE_ID: &str = "main";

/// `transactions.cross_bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossBind {
    /// Atomic: PREPARE TRANSACTION / XA PREPARE on every participant, a durable decision, then
    /// COMMIT PREPARED / XA COMMIT (at most one participant that cannot prepare commits last).
    TwoPhase,
    /// Flask-SQLAlchemy's behaviour: commit the participants one after another, in joining order.
    Sequential,
    /// A transaction stays on the bind of its first statement; another bind is an error.
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindConfig {
    pub name: String,
    pub url: BindUrl,
    pub pool_size: usize,
    pub checkout_timeout: Duration,
    pub connect_timeout: Duration,
}

/// Where a bind's database is and what kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindUrl {
    Postgres(PgTarget),
    /// A `mysql://` URL normalised for mysql_async (driver suffix and TLS keys removed), and what
    /// its TLS keys ask (`ssl_mode`, `ssl_ca`, …: `backend::translated::mysql_tls`).
    MySql {
        url: String,
        display: String,
        tls: MyTls,
    },
    /// `None` is an in-memory database, shared by every client of the bind.
    Sqlite {
        path: Option<PathBuf>,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// Extra startup parameters from the URL's query string (application_name, options, …).
    pub params: Vec<(String, String)>,
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey` (libpq's meanings; default `prefer`).
    pub tls: PgTls,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for PgTarget {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgresql://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )?;
        if self.tls.mode != SslMode::default() {
            write!(f, "?sslmode={}", self.tls.mode.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Display for BindUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindUrl::Postgres(t) => t.fmt(f),
            BindUrl::MySql { display, .. } => f.write_str(display),
            BindUrl::Sqlite { path: None } => f.write_str("sqlite:///:memory:"),
            BindUrl::Sqlite { path: Some(p) } => write!(f, "sqlite:///{}", p.display()),
        }
    }
}

/// Where the listen address came from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenOrigin {
    /// `--listen ADDR:PORT`.
    Flag,
    /// The `BINDPROXY_LISTEN` environment variable.
    Env,
    /// `listen:` in the configuration file.
    File,
    /// Nothing set it: [`DEFAULT_LISTEN`].
    Default,
}

impl fmt::Display for ListenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenOrigin::Flag => "--listen",
            ListenOrigin::Env => LISTEN_ENV,
            ListenOrigin::File => "the file's `listen`",
            ListenOrigin::Default => "the default",
        })
    }
}

/// The environment variable that overrides the file's `listen` (and is overridden by `--listen`).
pub const LISTEN_ENV: &str = "BINDPROXY_LISTEN";

/// Where bindproxy listens when neither the flag, the environment nor the file says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6432";

/// The password exchange asked of clients when `users:` is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum AuthMethod {
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "md5")]
    Md5,
}

/// A client login: a name and either a SCRAM-SHA-256 verifier or a password.
#[derive(Debug, Clone)]
pub struct UserConfig {
    pub name: String,
    pub secret: UserSecret,
}

#[derive(Clone)]
pub enum UserSecret {
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as in pg_authid.
    ScramVerifier(String),
    Password(String),
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserSecret::ScramVerifier(_) => f.write_str("ScramVerifier(..)"),
            UserSecret::Password(_) => f.write_str("Password(..)"),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: cannot read: {err}")]
    Read {
        source_name: String,
        err: std::io::Error,
    },
    /// The YAML parser refused the text. `hint` is added when the parser stopped at a colon, the
    /// usual sign of an unquoted value ending with `:` (`sqlite:///:memory:`).
    #[error("{source_name}: {err}{}", hint.map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Syntax {
        source_name: String,
        err: String,
        hint: Option<&'static str>,
    },
    #[error("{source_name}: {key}: {problem}")]
    Invalid {
        source_name: String,
        key: String,
        problem: String,
    },
    /// A table rule places relations in a schema that its bind cannot serve.
    #[error(transparent)]
    SchemaOnTranslatedBind(Box<UnservableRule>),
    /// `--listen` or `BINDPROXY_LISTEN` is not an address and port.
    #[error("{origin}: `{value}` is not an address:port ({err}); give an IP address and a port, e.g. 0.0.0.0:6432 or [::1]:6432")]
    Listen {
        origin: ListenOrigin,
        value: String,
        err: String,
    },
}

/// A table rule with a schema part (`audit.*`, `audit.events`, `*.log`) whose bind is MySQL/MariaDB
/// or SQLite: such a bind serves unqualified names and `public` only (`translate/`), so every
/// statement on the rule's relations would fail with `0A000`. Refused at load instead.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: tables.{pattern}: bind `{bind}` is {kind}, which has no schemas (it serves unqualified names and public only), so every statement on {what} would be refused; map {what} to a PostgreSQL bind, or drop the schema from the pattern (`{unqualified}`)")]
pub struct UnservableRule {
    pub source_name: String,
    /// The pattern as written.
    pub pattern: String,
    pub bind: String,
    /// `MySQL/MariaDB` or `SQLite`.
    pub kind: &'static str,
    /// What the rule names, in words (`schema audit`, `the schemas matching a*`).
    pub what: String,
    /// The pattern without its schema part.
    pub unqualified: String,
}

/// The hint for a YAML syntax error at a colon.
const COLON_HINT: &str = "quote URLs that end with ':' (e.g. cache: \"sqlite:///:memory:\")";

/// Whether a YAML syntax error looks like an unquoted value ending with a colon: the parser says
/// so in words ("mapping values are not allowed"), or it stopped at a `:` (in a flow mapping,
/// `{cache: sqlite:///:memory:}`, it reports a missing `,` or `}` there).
fn colon_hint(err: &serde_saphyr::Error, text: &str) -> Option<&'static str> {
    if err.to_string().contains("mapping values are not allowed") {
        return Some(COLON_HINT);
    }
    let loc = err.location()?;
    let line = text
        .lines()
        .nth(usize::try_from(loc.line()).ok()?.checked_sub(1)?)?;
    let col = usize::try_from(loc.column()).ok()?.checked_sub(1)?;
    (line.chars().nth(col) == Some(':')).then_some(COLON_HINT)
}

// ---------------------------------------------------------------------------------------------
// The file as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    default_bind: Option<String>,
    #[serde(default = "default_schema")]
    default_schema: String,
    binds: IndexMap<String, RawBind>,
    #[serde(default)]
    tables: IndexMap<String, String>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    auth_method: AuthMethod,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
    #[serde(default)]
    transactions: RawTransactions,
    catalog: Option<String>,
    #[serde(default)]
    discover: bool,
    tls: Option<RawTls>,
    max_client_conn: Option<usize>,
    admin_http: Option<String>,
    #[serde(default)]
    admin_users: Vec<String>,
    /// Seconds (a fraction is allowed).
    shutdown_timeout: Option<f64>,
    #[serde(default)]
    log_format: LogFormat,
}

/// `tls:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    #[serde(default)]
    mode: TlsMode,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransactions {
    cross_bind: Option<CrossBind>,
    log_dir: Option<PathBuf>,
    instance_id: Option<String>,
}

fn default_schema() -> String {
    "public".into()
}
fn default_max_message_bytes() -> usize {
    256 << 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBindOptions {
    url: String,
    #[serde(default = "default_pool_size")]
    pool_size: usize,
    #[serde(default = "default_checkout_timeout_ms")]
    checkout_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    connect_timeout_ms: u64,
    /// Read replicas of a PostgreSQL bind.
    #[serde(default)]
    replicas: Vec<String>,
    #[serde(default = "default_replica_lag_max_ms")]
    replica_lag_max_ms: u64,
    #[serde(default = "default_read_your_writes_ms")]
    read_your_writes_ms: u64,
}

fn default_pool_size() -> usize {
    20
}
fn default_checkout_timeout_ms() -> u64 {
    5_000
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_replica_lag_max_ms() -> u64 {
    1_000
}
fn default_read_your_writes_ms() -> u64 {
    1_000
}

/// A bind is either a URL string or a map of options (like SQLALCHEMY_BINDS' dict form).
struct RawBind(RawBindOptions);

impl<'de> Deserialize<'de> for RawBind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a database URL or a map with `url` and pool options")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBind, E> {
                Ok(RawBind(RawBindOptions {
                    url: v.to_owned(),
                    pool_size: default_pool_size(),
                    checkout_timeout_ms: default_checkout_timeout_ms(),
                    connect_timeout_ms: default_connect_timeout_ms(),
                    replicas: Vec::new(),
                    replica_lag_max_ms: default_replica_lag_max_ms(),
                    read_your_writes_ms: default_read_your_writes_ms(),
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawBind, A::Error> {
                RawBindOptions::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawBind)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    scram_verifier: Option<String>,
    password_env: Option<String>,
}

/// Checks `transactions:`. The instance id ends up inside global transaction ids, which MySQL
/// limits to 64 bytes and which are written into SQL: letters, digits and `_`, at most 16. It may
/// name `${VAR}`s (a pod's ordinal: every instance sharing servers needs its own id).
fn transactions_config(
    raw: RawTransactions,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TransactionsConfig, ConfigError> {
    let d = TransactionsConfig::default();
    let instance_id = match raw.instance_id {
        Some(id) => substitute_env(&id, env).map_err(|problem| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key: "transactions.instance_id".into(),
            problem,
        })?,
        None => d.instance_id,
    };
    let valid = !instance_id.is_empty()
        && instance_id.len() <= 16
        && instance_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key: "transactions.instance_id".into(),
            problem: format!("{instance_id:?}: use 1 to 16 letters, digits or _"),
        });
    }
    Ok(TransactionsConfig {
        cross_bind: raw.cross_bind.unwrap_or(d.cross_bind),
        log_dir: raw.log_dir.unwrap_or(d.log_dir),
        instance_id,
    })
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            source_name: source_name.clone(),
            err,
        })?;
        let mut config = Config::parse(&text, &source_name, &|k| std::env::var(k).ok())?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// The configuration compiled into the binary (config.example.yaml).
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED_DEFAULT, "<embedded config.example.yaml>", &|k| {
            std::env::var(k).ok()
        })
    }

    /// Parses and checks YAML text. `env` looks up `${VAR}` references.
    pub fn parse(
        text: &str,
        source_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            err: e.to_string(),
            hint: colon_hint(&e, text),
        })?;

        let (listen, listen_origin) = match &raw.listen {
            Some(l) => (
                l.parse::<SocketAddr>().map_err(|e| {
                    invalid("listen", format!("`{l}` is not an address:port ({e})"))
                })?,
                ListenOrigin::File,
            ),
            None => (
                DEFAULT_LISTEN
                    .parse::<SocketAddr>()
                    .map_err(|e| invalid("listen", format!("the default: {e}")))?,
                ListenOrigin::Default,
            ),
        };
        let admin_http = match &raw.admin_http {
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|e| {
                invalid("admin_http", format!("`{a}` is not an address:port ({e})"))
            })?),
            None => None,
        };
        let shutdown_timeout = match raw.shutdown_timeout {
            None => DEFAULT_SHUTDOWN_TIMEOUT,
            Some(s) => Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| *d <= Duration::from_secs(24 * 3600))
                .ok_or_else(|| {
                    invalid(
                        "shutdown_timeout",
                        format!("`{s}` is not a number of seconds between 0 and 86400"),
                    )
                })?,
        };
        if raw.binds.is_empty() {
            return Err(invalid("binds", "at least one bind is required".into()));
        }
        let mut binds = IndexMap::new();
        let mut replicas = IndexMap::new();
        for (name, RawBind(opts)) in raw.binds {
            let key = format!("binds.{name}");
            if name.is_empty() {
                return Err(invalid("binds", "a bind name is empty".into()));
            }
            if name == CATALOG_BIND {
                return Err(invalid(
                    &key,
                    format!("the name {CATALOG_BIND} is reserved for the catalog database"),
                ));
            }
            let url = substitute_env(&opts.url, env).map_err(|p| invalid(&key, p))?;
            let url = parse_bind_url(&url).map_err(|p| invalid(&format!("{key}.url"), p))?;
            if opts.pool_size == 0 {
                return Err(invalid(
                    &format!("{key}.pool_size"),
                    "must be at least 1".into(),
                ));
            }
            if let Some(r) =
                replica_config(&key, &url, &opts, env).map_err(|(k, p)| invalid(&k, p))?
            {
                replicas.insert(name.clone(), r);
            }
            binds.insert(
                name.clone(),
                BindConfig {
                    name,
                    url,
                    pool_size: opts.pool_size,
                    checkout_timeout: Duration::from_millis(opts.checkout_timeout_ms),
                    connect_timeout: Duration::from_millis(opts.connect_timeout_ms),
                },
            );
        }
        let default_bind = match raw.default_bind {
            Some(b) if binds.contains_key(&b) => b,
            Some(b) => {
                return Err(invalid(
                    "default_bind",
                    format!(
                        "bind `{b}` is not defined under `binds` (defined: {})",
                        names(&binds)
                    ),
                ))
            }
            None if binds.len() == 1 => binds.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err(invalid(
                    "default_bind",
                    "required when there is more than one bind".into(),
                ))
            }
        };
        let mut tables = Vec::new();
        for (pattern, bind) in raw.tables {
            if !binds.contains_key(&bind) {
                return Err(invalid(
                    &format!("tables.{pattern}"),
                    format!(
                        "bind `{bind}` is not defined under `binds` (defined: {})",
                        names(&binds)
                    ),
                ));
            }
            tables.push((pattern, bind));
        }
        Router::new(&tables, &default_bind, &raw.default_schema)
            .map_err(|e| invalid("tables", e.to_string()))?;
        for (pattern, bind) in &tables {
            // every rule's bind was checked to exist above
            let Some(bind_config) = binds.get(bind) else {
                continue;
            };
            check_rule_servable(pattern, bind_config, &raw.default_schema).map_err(|r| {
                ConfigError::SchemaOnTranslatedBind(Box::new(UnservableRule {
                    source_name: source_name.to_owned(),
                    pattern: pattern.clone(),
                    bind: bind.clone(),
                    kind: r.kind,
                    what: r.what,
                    unqualified: r.unqualified,
                }))
            })?;
        }

        let mut users = Vec::new();
        for (i, u) in raw.users.into_iter().enumerate() {
            let key = format!("users[{i}] ({})", u.name);
            let secret = match (u.scram_verifier, u.password_env) {
                (Some(v), None) => {
                    if raw.auth_method == AuthMethod::Md5 {
                        return Err(invalid(
                            &key,
                            "auth_method md5 needs the password itself (password_env): a scram_verifier cannot answer an MD5 challenge".into(),
                        ));
                    }
                    if let Err(e) = crate::frontend::auth::parse_scram_verifier(&v) {
                        return Err(invalid(&key, format!("scram_verifier {e}")));
                    }
                    UserSecret::ScramVerifier(v)
                }
                (None, Some(var)) => UserSecret::Password(env(&var).ok_or_else(|| {
                    invalid(&key, format!("environment variable {var} is not set"))
                })?),
                _ => {
                    return Err(invalid(
                        &key,
                        "give exactly one of scram_verifier or password_env".into(),
                    ))
                }
            };
            users.push(UserConfig {
                name: u.name,
                secret,
            });
        }

        let tls = match raw.tls {
            None => None,
            Some(t) => Some(
                ServerTls::load(&t.cert, &t.key, t.mode)
                    .map_err(|e| invalid(e.key(), e.to_string()))?,
            ),
        };

        for (i, name) in raw.admin_users.iter().enumerate() {
            let key = format!("admin_users[{i}]");
            if name.is_empty() {
                return Err(invalid(&key, "empty user name".into()));
            }
            if !users.is_empty() && !users.iter().any(|u| &u.name == name) {
                return Err(invalid(
                    &key,
                    format!("user {name:?} is not in `users:`, so it could never log in"),
                ));
            }
        }

        if raw.max_client_conn == Some(0) {
            return Err(invalid("max_client_conn", "must be at least 1".into()));
        }

        let config = Config {
            tls,
            max_client_conn: raw.max_client_conn,
            admin_http,
            admin_users: raw.admin_users,
            shutdown_timeout,
            log_format: raw.log_format,
            source: source_name.to_owned(),
            path: None,
            listen,
            listen_origin,
            default_bind,
            default_schema: raw.default_schema,
            binds,
            replicas,
            tables,
            users,
            auth_method: raw.auth_method,
            max_message_bytes: raw.max_message_bytes.max(1024),
            transactions: transactions_config(raw.transactions, source_name, env)?,
            discover: raw.discover,
            catalog: match raw.catalog.as_deref().map(str::trim) {
                None | Some("") | Some("auto") => CatalogSetting::Auto,
                Some("off") => CatalogSetting::Off,
                Some(url) => {
                    let url = substitute_env(url, env).map_err(|p| invalid("catalog", p))?;
                    match parse_bind_url(&url).map_err(|p| invalid("catalog", p))? {
                        BindUrl::Postgres(t) => CatalogSetting::Url(Box::new(t)),
                        _ => {
                            return Err(invalid(
                                "catalog",
                                "must be a PostgreSQL URL (postgresql://…), `auto` or `off`".into(),
                            ))
                        }
                    }
                }
            },
        };
        if config.discover && config.catalog_target().is_none() {
            return Err(invalid(
                "discover",
                "needs a catalog database to read the binds' tables from: set `catalog:` to a PostgreSQL URL".into(),
            ));
        }
        Ok(config)
    }

    /// No PostgreSQL server to hold the catalog (every bind is MySQL or SQLite) and the catalog is
    /// not off: the embedded catalog answers catalog queries.
    pub fn catalog_embedded(&self) -> bool {
        self.catalog == CatalogSetting::Auto
            && !self
                .binds
                .values()
                .any(|b| matches!(b.url, BindUrl::Postgres(_)))
    }

    /// The PostgreSQL database of the shadow catalog, if there is one (see [`CatalogSetting`]).
    pub fn catalog_target(&self) -> Option<PgTarget> {
        match &self.catalog {
            CatalogSetting::Off => None,
            CatalogSetting::Url(t) => Some((**t).clone()),
            CatalogSetting::Auto => {
                let mut pg = self.binds.values().filter_map(|b| match &b.url {
                    BindUrl::Postgres(t) => Some(t),
                    _ => None,
                });
                let first = pg.next()?;
                if self.binds.len() == 1 {
                    return None;
                }
                let mut t = first.clone();
                t.database = if self.transactions.instance_id == DEFAULT_INSTANCE_ID {
                    CATALOG_BIND.to_owned()
                } else {
                    format!(
                        "{CATALOG_BIND}_{}",
                        self.transactions.instance_id.to_lowercase()
                    )
                };
                Some(t)
            }
        }
    }

    /// The router built from this configuration's table map (checked at load, so it cannot fail).
    pub fn router(&self) -> Router {
        match Router::new(&self.tables, &self.default_bind, &self.default_schema) {
            Ok(r) => r
                .with_binds(self.binds.keys())
                .with_catalog_binds(
                    self.binds
                        .iter()
                        .filter(|(_, b)| matches!(b.url, BindUrl::Postgres(_)))
                        .map(|(name, _)| name.as_str()),
                )
                .with_catalog(
                    (self.catalog_target().is_some() || self.catalog_embedded())
                        .then_some(CATALOG_BIND),
                ),
            Err(e) => panic!("table map was validated at load: {e}"),
        }
    }
}

impl Config {
    /// Applies the listen address's higher-precedence settings: `flag` (`--listen`) beats `env`
    /// (`BINDPROXY_LISTEN`), which beats the file's `listen`, which beats [`DEFAULT_LISTEN`]. An
    /// empty environment value counts as unset; any other value must be an address:port.
    pub fn override_listen(
        &mut self,
        flag: Option<&str>,
        env: Option<&str>,
    ) -> Result<(), ConfigError> {
        let (value, origin) = match (flag, env) {
            (Some(v), _) => (v, ListenOrigin::Flag),
            (None, Some(v)) if !v.is_empty() => (v, ListenOrigin::Env),
            _ => return Ok(()),
        };
        self.listen = value
            .trim()
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::Listen {
                origin,
                value: value.to_owned(),
                err: e.to_string(),
            })?;
        self.listen_origin = origin;
        Ok(())
    }
}

/// Why a rule's bind cannot serve what the rule names (see [`check_rule_servable`]).
struct Unservable {
    kind: &'static str,
    what: String,
    unqualified: String,
}

/// Splits a table pattern (already validated by [`Router::new`]) at its first `.` outside double
/// quotes: `(schema part as written, name part)`, or `None` for a pattern without a schema.
fn split_schema(pattern: &str) -> Option<(&str, &str)> {
    let mut in_quotes = false;
    for (i, c) in pattern.char_indices() {
        match c {
            // a doubled quote inside quotes toggles twice: still inside
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => return Some((&pattern[..i], &pattern[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A MySQL/MariaDB or SQLite bind runs statements through `translate/`, which accepts a relation
/// named without a schema or in `public` and refuses every other schema (`0A000 schema-qualified
/// name outside public`). A rule with an explicit schema part sends that schema's relations to
/// its bind, so the schema must be one the bind can serve: `public`, or the default schema (which
/// unqualified names, and so unqualified rules, already mean). A schema glob (`*.log`, `a*.x`) can
/// match any schema and is refused on such a bind.
fn check_rule_servable(
    pattern: &str,
    bind: &BindConfig,
    default_schema: &str,
) -> Result<(), Unservable> {
    let kind = match bind.url {
        BindUrl::Postgres(_) => return Ok(()),
        BindUrl::MySql { .. } => "MySQL/MariaDB",
        BindUrl::Sqlite { .. } => "SQLite",
    };
    let Some((schema, name)) = split_schema(pattern.trim()) else {
        return Ok(());
    };
    let schema = schema.trim();
    let (text, quoted) = match schema.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => (inner.replace("\"\"", "\""), true),
        None => (schema.to_owned(), false),
    };
    let folded = crate::sql::name::fold_ident(&text, quoted);
    let is_glob = folded.contains(['*', '?', '[']);
    if !is_glob && (folded == "public" || folded == default_schema) {
        return Ok(());
    }
    let what = if is_glob {
        format!("the schemas matching {folded}")
    } else {
        format!("schema {folded}")
    };
    Err(Unservable {
        kind,
        what,
        unqualified: name.trim().to_owned(),
    })
}

fn names(binds: &IndexMap<String, BindConfig>) -> String {
    binds.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Replaces `${VAR}` with the variable's value, percent-encoded so that a password with `@`, `/` or
/// `%` in it is taken verbatim; a missing variable is an error.
fn substitute_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
        let var = &after[..end];
        let value = env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `replicas` of a bind, checked: PostgreSQL URLs for a PostgreSQL bind (the same engine as
/// the primary), parsed as bind URLs are. Errors are (key, problem).
fn replica_config(
    key: &str,
    primary: &BindUrl,
    opts: &RawBindOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ReplicaConfig>, (String, String)> {
    if opts.replicas.is_empty() {
        return Ok(None);
    }
    if !matches!(primary, BindUrl::Postgres(_)) {
        return Err((
            format!("{key}.replicas"),
            "read replicas are supported for PostgreSQL binds only".into(),
        ));
    }
    let mut targets = Vec::with_capacity(opts.replicas.len());
    for (i, r) in opts.replicas.iter().enumerate() {
        let k = format!("{key}.replicas[{i}]");
        let url = substitute_env(r, env).map_err(|p| (k.clone(), p))?;
        match parse_bind_url(&url).map_err(|p| (k.clone(), p))? {
            BindUrl::Postgres(t) => targets.push(t),
            _ => {
                return Err((
                    k,
                    "a replica must be the same engine as its primary: a PostgreSQL URL (postgresql://…)".into(),
                ))
            }
        }
    }
    Ok(Some(ReplicaConfig {
        targets,
        lag_max: Duration::from_millis(opts.replica_lag_max_ms),
        read_your_writes: Duration::from_millis(opts.read_your_writes_ms),
    }))
}

/// Parses a bind URL in any form SQLAlchemy accepts for the three supported kinds.
pub fn parse_bind_url(s: &str) -> Result<BindUrl, String> {
    let (scheme, rest) = s.split_once("://").ok_or_else(|| {
        format!(
            "`{}` is not a URL (expected e.g. postgresql://user@host/db)",
            redact(s)
        )
    })?;
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    match base.as_str() {
        "postgresql" | "postgres" => parse_pg_url(&format!("postgresql://{rest}")).map(BindUrl::Postgres),
        "mysql" | "mariadb" => {
            let url = format!("mysql://{rest}");
            let mut parsed = url::Url::parse(&url).map_err(|e| format!("malformed URL `{}`: {e}", redact(s)))?;
            let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
            let tls = MyTls::from_query(&pairs)?;
            let kept: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| !is_tls_key(k)).collect();
            if kept.is_empty() {
                parsed.set_query(None);
            } else {
                parsed.query_pairs_mut().clear().extend_pairs(kept);
            }
            let url = parsed.to_string();
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{}` names no host", redact(s)));
            }
            if parsed.path().trim_start_matches('/').is_empty() {
                return Err(format!("`{}` names no database", redact(s)));
            }
            let display = format!(
                "mysql://{}@{}:{}{}",
                parsed.username(),
                parsed.host_str().unwrap_or_default(),
                parsed.port().unwrap_or(3306),
                parsed.path()
            );
            let display = match tls.mode {
                MySslMode::Disabled => display,
                m => format!("{display}?ssl_mode={}", m.as_str()),
            };
            Ok(BindUrl::MySql { url, display, tls })
        }
        "sqlite" => {
            // SQLAlchemy: sqlite:// and sqlite:///:memory: are in memory; sqlite:///rel.db is relative
            // to the working directory; sqlite:////abs.db is absolute.
            let path = rest.split('?').next().unwrap_or("");
            match path {
                "" | "/:memory:" => Ok(BindUrl::Sqlite { path: None }),
                p if p.starts_with('/') => {
                    let p = &p[1..];
                    if p.is_empty() {
                        return Err(format!("`{s}` names no file"));
                    }
                    Ok(BindUrl::Sqlite {
                        path: Some(PathBuf::from(p)),
                    })
                }
                _ => Err(format!(
                    "`{s}`: a SQLite URL is sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite:///:memory:"
                )),
            }
        }
        other => Err(format!(
            "unsupported database kind `{other}` in `{}` (supported: postgresql, mysql, mariadb, sqlite)",
            redact(s)
        )),
    }
}

fn parse_pg_url(s: &str) -> Result<PgTarget, String> {
    let u = url::Url::parse(s).map_err(|e| format!("malformed URL `{}`: {e}", redact(s)))?;
    let decode = |v: &str| {
        percent_decode(v).ok_or_else(|| format!("bad percent-encoding in `{}`", redact(s)))
    };
    let mut host = u.host_str().unwrap_or("").to_owned();
    let mut params = Vec::new();
    let mut user = decode(u.username())?;
    let mut port = u.port().unwrap_or(5432);
    let mut sslmode = SslMode::default();
    let (mut rootcert, mut cert, mut key) = (None, None, None);
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "host" => host = v.into_owned(),
            "port" => {
                port = v
                    .parse()
                    .map_err(|_| format!("bad port `{v}` in `{}`", redact(s)))?
            }
            "user" => user = v.into_owned(),
            "sslmode" => {
                sslmode = SslMode::parse(&v).ok_or_else(|| {
                    format!("bad sslmode `{v}` (use disable, allow, prefer, require, verify-ca or verify-full)")
                })?
            }
            "sslrootcert" if v == "system" => rootcert = Some(RootCert::System),
            "sslrootcert" => rootcert = Some(RootCert::File(PathBuf::from(v.as_ref()))),
            "sslcert" => cert = Some(PathBuf::from(v.as_ref())),
            "sslkey" => key = Some(PathBuf::from(v.as_ref())),
            // libpq options that change nothing here: compression is gone from PostgreSQL, and
            // rustls sends SNI for host names (never for IP addresses) and negotiates TLS 1.2/1.3.
            "sslcompression" | "sslsni" | "connect_timeout" => {}
            other if other.starts_with("ssl") => {
                return Err(format!(
                    "`{other}` is not supported on a bind URL (supported: sslmode, sslrootcert, sslcert, sslkey)"
                ))
            }
            _ => params.push((k.into_owned(), v.into_owned())),
        }
    }
    if host.is_empty() {
        return Err(format!("`{}` names no host", redact(s)));
    }
    if user.is_empty() {
        user = "postgres".into();
    }
    let database = decode(u.path().trim_start_matches('/'))?;
    if database.is_empty() {
        return Err(format!("`{}` names no database", redact(s)));
    }
    let password = match u.password() {
        Some(p) => Some(decode(p)?),
        None => None,
    };
    let tls = PgTls::new(sslmode, rootcert, cert, key)?;
    Ok(PgTarget {
        host,
        port,
        user,
        password,
        database,
        params,
        tls,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A URL with its password replaced, for messages.
fn redact(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.yaml", &|k| {
            (k == "PW").then(|| "s3cr%t".to_string())
        })
    }

    #[test]
    fn instance_id_takes_environment_variables() {
        let base = "binds:\n  main: postgresql://h/db\n";
        let env = |k: &str| match k {
            "POD_INDEX" => Some("3".to_string()),
            "BAD" => Some("a-b".to_string()),
            _ => None,
        };
        let c = Config::parse(
            &format!("{base}transactions:\n  instance_id: shop_${{POD_INDEX}}\n"),
            "t.yaml",
            &env,
        )
        .unwrap();
        assert_eq!(c.transactions.instance_id, "shop_3");
        for (id, problem) in [
            ("shop_${MISSING}", "MISSING is not set"),
            ("x${BAD}", "use 1 to 16 letters"),
        ] {
            let text = format!("{base}transactions:\n  instance_id: \"{id}\"\n");
            let e = Config::parse(&text, "t.yaml", &env)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("transactions.instance_id") && e.contains(problem),
                "{e}"
            );
        }
    }

    #[test]
    fn auth_method_and_users() {
        let base = "binds:\n  main: postgresql://h/db\n";
        let v = "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w0=:3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w0=";
        let c = parse(&format!(
            "{base}users:\n  - name: a\n    scram_verifier: \"{v}\"\n"
        ))
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ScramSha256);
        let c = parse(&format!(
            "{base}auth_method: md5\nusers:\n  - name: a\n    password_env: PW\n"
        ))
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::Md5);
        let e = parse(&format!(
            "{base}auth_method: md5\nusers:\n  - name: a\n    scram_verifier: \"{v}\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("users[0] (a)") && e.contains("md5"), "{e}");
        let e = parse(&format!("{base}auth_method: plain\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scram-sha-256"), "{e}");
        let e = parse(&format!(
            "{base}users:\n  - name: a\n    scram_verifier: \"SCRAM-SHA-256$4096:c2FsdA==$xx:yy\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("users[0] (a)") && !e.contains("$xx"), "{e}");
    }

    #[test]
    fn admin_users() {
        let base = "binds:\n  main: postgresql://h/db\n";
        assert!(parse(base).unwrap().admin_users.is_empty());
        let c = parse(&format!("{base}admin_users: [ops, root]\n")).unwrap();
        assert_eq!(c.admin_users, vec!["ops".to_string(), "root".to_string()]);
        let e = parse(&format!(
            "{base}users:\n  - name: a\n    password_env: PW\nadmin_users: [ops]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("admin_users[0]") && e.contains("ops"), "{e}");
    }

    #[test]
    fn operations_keys() {
        let base = "binds:\n  main: postgresql://h/db\n";
        let c = parse(base).unwrap();
        assert_eq!(c.admin_http, None);
        assert_eq!(c.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT);
        assert_eq!(c.log_format, LogFormat::Text);
        let c = parse(&format!(
            "{base}admin_http: 127.0.0.1:9930\nshutdown_timeout: 2.5\nlog_format: json\n"
        ))
        .unwrap();
        assert_eq!(c.admin_http, Some("127.0.0.1:9930".parse().unwrap()));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(2500));
        assert_eq!(c.log_format, LogFormat::Json);
        for (bad, key) in [
            ("admin_http: localhost\n", "admin_http"),
            ("shutdown_timeout: -1\n", "shutdown_timeout"),
            ("log_format: xml\n", "json"),
        ] {
            let e = parse(&format!("{base}{bad}")).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn accepts_sqlalchemy_urls_and_options() {
        let c = parse(
            "default_bind: main\nbinds:\n  main: postgresql+psycopg2://app:${PW}@db.local:5433/shop\n  users:\n    url: postgres://postgres@127.0.0.1/shop_users\n    pool_size: 3\n  logs: mysql+pymysql://root@127.0.0.1/logs\n  mem: \"sqlite:///:memory:\"\n  file: sqlite:////var/lib/x.db\n  rel: sqlite:///data/app.db\ntables:\n  users: users\n  \"user_*\": users\n",
        )
        .unwrap();
        let BindUrl::Postgres(pg) = &c.binds["main"].url else {
            panic!()
        };
        assert_eq!((pg.port, pg.password.as_deref()), (5433, Some("s3cr%t")));
        assert_eq!(c.binds["users"].pool_size, 3);
        assert_eq!(c.binds["mem"].url, BindUrl::Sqlite { path: None });
        assert_eq!(
            c.binds["file"].url,
            BindUrl::Sqlite {
                path: Some("/var/lib/x.db".into())
            }
        );
        assert_eq!(
            c.binds["rel"].url,
            BindUrl::Sqlite {
                path: Some("data/app.db".into())
            }
        );
        assert!(matches!(c.binds["logs"].url, BindUrl::MySql { .. }));
    }

    #[test]
    fn refuses_with_file_key_and_problem() {
        let e = parse("binds:\n  main: postgresql://h/db\n  x: postgresql://h/db2\ndefault_bind: main\ntables:\n  users: nope\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test.yaml") && e.contains("tables.users") && e.contains("nope"),
            "{e}"
        );
        let e = parse("binds:\n  main: postgresql://h/db\nlisten_port: 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_port"), "{e}");
        let e = parse("binds:\n  main:\n    url: postgresql://h/db\n    poolsize: 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("poolsize"), "{e}");
        let e = parse("binds:\n  main: oracle://h/db\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("binds.main.url") && e.contains("oracle"), "{e}");
        let e = parse("binds:\n  main: postgresql://h/db\ntables:\n  \"a[\": main\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a["), "{e}");
        let e = parse("binds:\n  main: postgresql://u:${NOPE}@h/db\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE"), "{e}");
    }

    #[test]
    fn replicas_are_parsed_and_checked() {
        let c = parse("binds:\n  main:\n    url: postgresql://h/db\n    replicas: [\"postgresql+psycopg://r1:5433/db?sslmode=require\", postgres://r2/db]\n    replica_lag_max_ms: 250\n")
            .unwrap();
        let r = &c.replicas["main"];
        assert_eq!(r.targets.len(), 2);
        assert_eq!(
            (r.targets[0].host.as_str(), r.targets[0].port),
            ("r1", 5433)
        );
        assert_eq!(r.targets[0].tls.mode.as_str(), "require");
        assert_eq!(r.lag_max, Duration::from_millis(250));
        assert_eq!(r.read_your_writes, Duration::from_millis(1000));
        assert!(parse("binds:\n  main: postgresql://h/db\n")
            .unwrap()
            .replicas
            .is_empty());
        for (yaml, key, problem) in [
            (
                "binds:\n  main:\n    url: postgresql://h/db\n    replicas: [mysql://root@r/db]\n",
                "binds.main.replicas[0]",
                "same engine",
            ),
            (
                "binds:\n  main:\n    url: mysql://root@h/db\n    replicas: [mysql://root@r/db]\n",
                "binds.main.replicas",
                "PostgreSQL binds only",
            ),
            (
                "binds:\n  main:\n    url: postgresql://h/db\n    replicas: [\"postgresql://r/db?sslmode=verify-ca\"]\n",
                "binds.main.replicas[0]",
                "sslrootcert",
            ),
        ] {
            let e = parse(yaml).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(problem), "{e}");
        }
    }

    const TRANSLATED: &str = "default_bind: main\nbinds:\n  main: postgresql://h/db\n  logs: mysql://root@h/logs\n  lite: sqlite:///data/x.db\n";

    fn with_rule(pattern: &str, bind: &str) -> Result<Config, ConfigError> {
        parse(&format!("{TRANSLATED}tables:\n  '{pattern}': {bind}\n"))
    }

    #[test]
    fn schema_rules_on_translated_binds_are_refused() {
        let e = with_rule("audit.*", "logs").unwrap_err();
        assert!(
            matches!(e, ConfigError::SchemaOnTranslatedBind(ref r) if r.bind == "logs"),
            "{e:?}"
        );
        let e = e.to_string();
        for part in [
            "test.yaml",
            "tables.audit.*",
            "`logs`",
            "MySQL/MariaDB",
            "schema audit",
            "PostgreSQL bind",
            "drop the schema",
            "(`*`)",
        ] {
            assert!(e.contains(part), "{part:?} missing from {e}");
        }
        let e = with_rule("audit.events", "lite").unwrap_err().to_string();
        assert!(
            e.contains("tables.audit.events") && e.contains("SQLite") && e.contains("(`events`)"),
            "{e}"
        );
        // a schema glob can match schemas the bind cannot serve
        for p in [
            "*.log_*",
            "pub*.x",
            "\"Public\".x",
            "\"a.b\".x",
            "pg_catalog.x",
        ] {
            assert!(with_rule(p, "lite").is_err(), "{p} accepted on SQLite");
            assert!(with_rule(p, "logs").is_err(), "{p} accepted on MySQL");
        }
        // what they can serve
        for p in [
            "events",
            "log_*",
            "public.events",
            "PUBLIC.*",
            "\"public\".x",
            "\"a.b\"",
        ] {
            with_rule(p, "lite").unwrap_or_else(|e| panic!("{p}: {e}"));
            with_rule(p, "logs").unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        // PostgreSQL binds serve every schema
        with_rule("audit.*", "main").unwrap();
        with_rule("*.*", "main").unwrap();
        // the default schema is what unqualified names mean: `app.x` is the rule `x`
        let c = parse(&format!(
            "{TRANSLATED}default_schema: app\ntables:\n  app.x: lite\n  public.y: lite\n"
        ));
        c.unwrap();
        let e = parse(&format!(
            "{TRANSLATED}default_schema: app\ntables:\n  audit.x: lite\n"
        ))
        .unwrap_err();
        assert!(matches!(e, ConfigError::SchemaOnTranslatedBind(_)), "{e}");
    }

    /// The rule refuses exactly the schemas the translator refuses (default schema `public`).
    #[test]
    fn schema_refusal_matches_the_translator() {
        use crate::translate::{rewrite_sql, Target};
        for schema in [
            "audit",
            "public",
            "PUBLIC",
            "\"public\"",
            "\"Public\"",
            "Audit",
            "\"x y\"",
        ] {
            for (bind, target) in [("logs", Target::MySql), ("lite", Target::Sqlite)] {
                let translator = rewrite_sql(&format!("SELECT * FROM {schema}.t"), target).is_ok();
                let config = with_rule(&format!("{schema}.t"), bind).is_ok();
                assert_eq!(config, translator, "{schema} on {bind}");
            }
        }
    }

    #[test]
    fn colon_at_the_end_of_a_value_gets_a_hint() {
        for text in [
            "binds:\n  cache: sqlite:///:memory:\n",
            "binds:\n  main: sqlite:///a.db\n  cache: sqlite:///:memory: # shared\ndefault_bind: main\n",
            "binds: {cache: sqlite:///:memory:}\n",
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, ConfigError::Syntax { hint: Some(_), .. }), "{text}: {e:?}");
            let e = e.to_string();
            assert!(
                e.contains("test.yaml")
                    && e.contains("hint: quote URLs that end with ':' (e.g. cache: \"sqlite:///:memory:\")"),
                "{e}"
            );
        }
        // quoted, it loads; other syntax errors get no hint
        parse("binds:\n  cache: \"sqlite:///:memory:\"\n").unwrap();
        let e = parse("binds:\n  cache: [a\n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { hint: None, .. }), "{e:?}");
        assert!(!e.to_string().contains("hint"), "{e}");
    }

    #[test]
    fn listen_precedence() {
        let base = "binds:\n  main: sqlite://\n";
        let c = parse(base).unwrap();
        assert_eq!(
            (c.listen.to_string(), c.listen_origin),
            ("127.0.0.1:6432".into(), ListenOrigin::Default)
        );
        let mut c = parse(&format!("{base}listen: 127.0.0.1:7001\n")).unwrap();
        assert_eq!(c.listen_origin, ListenOrigin::File);
        c.override_listen(None, None).unwrap();
        c.override_listen(None, Some("")).unwrap(); // empty: unset
        assert_eq!(
            (c.listen.to_string(), c.listen_origin),
            ("127.0.0.1:7001".into(), ListenOrigin::File)
        );
        c.override_listen(None, Some("0.0.0.0:7002")).unwrap();
        assert_eq!(
            (c.listen.to_string(), c.listen_origin),
            ("0.0.0.0:7002".into(), ListenOrigin::Env)
        );
        c.override_listen(Some("[::1]:7003"), Some("0.0.0.0:7002"))
            .unwrap();
        assert_eq!(
            (c.listen.to_string(), c.listen_origin),
            ("[::1]:7003".into(), ListenOrigin::Flag)
        );
        for (flag, env, origin) in [
            (Some("localhost"), None, "--listen"),
            (Some(""), Some("127.0.0.1:1"), "--listen"),
            (None, Some("127.0.0.1"), "BINDPROXY_LISTEN"),
            (None, Some("127.0.0.1:99999"), "BINDPROXY_LISTEN"),
        ] {
            let mut c = parse(base).unwrap();
            let e = c.override_listen(flag, env).unwrap_err().to_string();
            assert!(e.starts_with(origin) && e.contains("address:port"), "{e}");
            assert_eq!(c.listen_origin, ListenOrigin::Default, "unchanged on error");
        }
    }

    #[test]
    fn bind_url_tls_options() {
        let pg = |url: &str| match parse(&format!("binds:\n  main: \"{url}\"\n")) {
            Ok(c) => match &c.binds["main"].url {
                BindUrl::Postgres(t) => Ok(t.clone()),
                other => panic!("{other:?}"),
            },
            Err(e) => Err(e.to_string()),
        };
        // libpq's default, and nothing of the ssl options reaches the startup packet
        let t = pg("postgresql://u@h/db?application_name=x").unwrap();
        assert_eq!(t.tls.mode, SslMode::Prefer);
        let t = pg("postgresql+psycopg://u@h/db?sslmode=require&sslcompression=0&sslsni=1&application_name=x")
            .unwrap();
        assert_eq!(t.tls.mode, SslMode::Require);
        assert_eq!(
            t.params,
            vec![("application_name".to_string(), "x".to_string())]
        );
        assert!(t.to_string().ends_with("?sslmode=require"), "{t}");
        let t = pg("postgres://u@h/db?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(
            (t.tls.mode, t.tls.rootcert.clone()),
            (SslMode::VerifyFull, Some(RootCert::System))
        );
        assert_eq!(
            pg("postgresql://u@h/db?sslmode=disable").unwrap().tls.mode,
            SslMode::Disable
        );
        for (url, needle) in [
            (
                "postgresql://u@h/db?sslmode=verify-ca",
                "sslmode=verify-ca needs sslrootcert",
            ),
            (
                "postgresql://u@h/db?sslmode=Require",
                "bad sslmode `Require`",
            ),
            ("postgresql://u@h/db?sslcrl=/x", "`sslcrl` is not supported"),
            (
                "postgresql://u@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
            (
                "postgresql://u@h/db?sslkey=/k.pem",
                "sslcert and sslkey go together",
            ),
        ] {
            let e = pg(url).unwrap_err();
            assert!(
                e.contains("binds.main.url") && e.contains(needle),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn client_tls_and_max_client_conn() {
        let base = "binds:\n  main: sqlite://\n";
        let c = parse(base).unwrap();
        assert!(c.tls.is_none() && c.max_client_conn.is_none());
        let e = parse(&format!(
            "{base}tls:\n  cert: /nonexistent/server.crt\n  key: /nonexistent/server.key\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tls.cert") && e.contains("/nonexistent/server.crt"),
            "{e}"
        );
        let e = parse(&format!(
            "{base}tls:\n  cert: a\n  key: b\n  mode: always\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("prefer") && e.contains("require"), "{e}");
        assert_eq!(
            parse(&format!("{base}max_client_conn: 5\n"))
                .unwrap()
                .max_client_conn,
            Some(5)
        );
        let e = parse(&format!("{base}max_client_conn: 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_client_conn") && e.contains("at least 1"),
            "{e}"
        );
    }

    #[test]
    fn embedded_default_is_valid() {
        Config::embedded().unwrap();
    }
}
