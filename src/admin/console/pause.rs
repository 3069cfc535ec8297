//! `PAUSE [bind]` and `RESUME [bind]`: new statements for the bind (every bind without an
//! argument) wait at the gate (`crate::pause`) until it resumes; statements already running
//! finish. `PAUSE` answers once no session is running a statement while holding a connection of
//! a paused bind, or after [`PAUSE_WAIT`], saying how many still are.

use std::time::{Duration, Instant};

use super::answer::{Answer, ColType, Column};
use super::binds_named;
use crate::clients::ClientState;
use crate::error::ProxyError;
use crate::proxy::Proxy;
use std::sync::Arc;

pub const COLUMNS: &[Column] = &[("result", ColType::Text)];

/// How long `PAUSE` waits for the statements in flight.
pub const PAUSE_WAIT: Duration = Duration::from_secs(10);

fn names(binds: &[Arc<str>]) -> String {
    binds.iter().map(|b| &**b).collect::<Vec<_>>().join(", ")
}

/// Sessions running a statement (or in the middle of one) while holding one of `binds`.
fn busy(proxy: &Proxy, binds: &[Arc<str>]) -> usize {
    proxy
        .clients
        .list()
        .iter()
        .filter(|c| !c.identity.console && c.state() == ClientState::Active)
        .filter(|c| {
            c.binds()
                .iter()
                .any(|&b| binds.contains(&proxy.bind_name(b)))
        })
        .count()
}

pub async fn pause(proxy: &Proxy, bind: Option<&str>) -> Result<Answer, ProxyError> {
    let binds = binds_named(proxy, bind)?;
    proxy.pause.pause(&binds);
    let started = Instant::now();
    let mut running = busy(proxy, &binds);
    while running > 0 && started.elapsed() < PAUSE_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        running = busy(proxy, &binds);
    }
    let text = if running == 0 {
        format!("paused {}", names(&binds))
    } else {
        format!(
            "paused {}; {running} session(s) still running statements after {} s",
            names(&binds),
            PAUSE_WAIT.as_secs()
        )
    };
    Ok(Answer::message(COLUMNS, text, "PAUSE"))
}

pub fn resume(proxy: &Proxy, bind: Option<&str>) -> Result<Answer, ProxyError> {
    let binds = binds_named(proxy, bind)?;
    proxy.pause.resume(&binds);
    Ok(Answer::message(
        COLUMNS,
        format!("resumed {}", names(&binds)),
        "RESUME",
    ))
}
