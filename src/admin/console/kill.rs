//! `KILL <client id>`: ends that client's session with FATAL 57P01. The session ends itself at its
//! next wake (`ClientEntry::kill`), as it does when shutdown closes: the statement it runs is
//! cancelled, its connections are given back (rolled back) or closed, so its open transaction
//! rolls back; other clients carry on.

use super::answer::{Answer, ColType, Column};
use super::ConsoleError;
use crate::error::ProxyError;
use crate::proxy::Proxy;

pub const COLUMNS: &[Column] = &[("result", ColType::Text)];

/// `me` is the console's own session, which `KILL` may end too.
pub fn answer(proxy: &Proxy, id: i32, me: i32) -> Result<Answer, ProxyError> {
    let Some(client) = proxy.clients.get(id) else {
        return Err(ConsoleError::UnknownClient(id).into());
    };
    client.kill();
    let who = &client.identity;
    let text = if id == me {
        format!("killed client {id} (this session)")
    } else {
        format!(
            "killed client {id} (user {}, database {})",
            who.user, who.database
        )
    };
    Ok(Answer::message(COLUMNS, text, "KILL"))
}
