//! Test harness: real PostgreSQL on 127.0.0.1:5432, a fresh pair of databases per test, and the
//! bindproxy binary started on a free port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

pub const PG: &str = "host=127.0.0.1 port=5432 user=postgres";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drops the databases of earlier test processes that died before cleaning up.
async fn sweep_dead_runs(admin: &Client) {
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bpt\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// A running bindproxy with its own databases; everything is removed on drop.
pub struct Proxy {
    child: Child,
    pub port: u16,
    pub dbs: Vec<String>,
    config_path: std::path::PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub async fn admin() -> Client {
    connect(PG).await
}

pub async fn connect(conninfo: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect with `{conninfo}`: {e} (is PostgreSQL running on 127.0.0.1:5432? run ./scripts/test.sh)"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

impl Proxy {
    /// Starts bindproxy with binds `main` (default) and `users`, plus `extra_yaml` appended to the
    /// `binds:` section and `tables` as the table map.
    pub async fn start(tables: &str, extra_binds: &str) -> Proxy {
        Proxy::start_with(tables, extra_binds, "", &[]).await
    }

    /// Like [`Proxy::start`], with `top_yaml` appended at the top level of the configuration
    /// (`users:`, `auth_method:`, …) and `env` set on the daemon's process.
    pub async fn start_with(
        tables: &str,
        extra_binds: &str,
        top_yaml: &str,
        env: &[(&str, &str)],
    ) -> Proxy {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("bpt_{}_{}", std::process::id(), n);
        let dbs = vec![format!("{tag}_main"), format!("{tag}_users")];
        let admin = admin().await;
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_dead_runs(&admin).await;
        }
        for db in &dbs {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
                .await
                .expect("drop database");
            admin
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .expect("create database");
        }
        let port = free_port();
        // Each daemon its own decision log and instance id: daemons of parallel tests must not
        // share the log's lock or recover each other's prepared transactions.
        let tx_dir = std::env::temp_dir().join(format!("{tag}-txlog"));
        let transactions = format!(
            "\ntransactions:\n  log_dir: {}\n  instance_id: t{port}\n",
            tx_dir.display()
        );
        // These daemons test routing and the protocol; the shadow catalog (a database per daemon)
        // is the Python suite's (tests/python/test_catalog*.py).
        let transactions = if top_yaml.contains("catalog:") {
            transactions
        } else {
            format!("{transactions}catalog: off\n")
        };
        let yaml = format!(
            "listen: 127.0.0.1:{port}\ndefault_bind: main\nbinds:\n  main: postgresql://postgres@127.0.0.1:5432/{}\n  users:\n    url: postgresql://postgres@127.0.0.1:5432/{}\n    pool_size: 4\n    checkout_timeout_ms: 800\n{extra_binds}tables:\n{tables}{top_yaml}{transactions}",
            dbs[0], dbs[1]
        );
        let config_path = std::env::temp_dir().join(format!("{tag}.yaml"));
        std::fs::write(&config_path, yaml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_bindproxy"))
            .arg("--config")
            .arg(&config_path)
            .env(
                "BINDPROXY_LOG",
                std::env::var("TEST_BINDPROXY_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bindproxy");
        // Forward the daemon's log to the test output (shown on failure).
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[bindproxy] {line}");
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "bindproxy did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy {
            child,
            port,
            dbs,
            config_path,
        }
    }

    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=app", self.port)
    }

    pub async fn client(&self) -> Client {
        connect(&self.conninfo()).await
    }

    /// `SELECT count(*) FROM <from>` run directly on one of the binds' databases (0 = main,
    /// 1 = users): where did the rows land?
    pub async fn count_on(&self, i: usize, from: &str) -> i64 {
        self.direct(i)
            .await
            .query_one(&format!("SELECT count(*) FROM {from}"), &[])
            .await
            .unwrap_or_else(|e| panic!("count on bind {i} of {from}: {e}"))
            .get(0)
    }

    /// A direct connection to one of the binds' databases (0 = main, 1 = users).
    pub async fn direct(&self, i: usize) -> Client {
        connect(&format!("{PG} dbname={}", self.dbs[i])).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        let dbs = self.dbs.clone();
        // Best effort: drop the databases on a fresh runtime thread.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok((c, conn)) = tokio_postgres::connect(PG, NoTls).await {
                        tokio::spawn(conn);
                        for db in dbs {
                            let _ = c
                                .batch_execute(&format!(
                                    "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                                ))
                                .await;
                        }
                    }
                });
            }
        })
        .join();
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no sqlstate: {e}"))
}
