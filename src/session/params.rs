//! Startup parameters: what the client is told at startup, and how each backend connection of the
//! session is given the client's settings.
//!
//! PostgreSQL lets a client set any setting in its startup packet (application_name, DateStyle,
//! search_path, `options=-c x=y`, …). Pooled connections are shared, so bindproxy applies the
//! client's settings to each connection it leases, with `set_config()`, and `DISCARD ALL` removes
//! them when the connection goes back.

use std::sync::Arc;

use crate::backend::Bind;
use crate::protocol::Frame;
use crate::proxy::Proxy;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &[
    "user",
    "database",
    "client_encoding",
    "replication",
    "options",
];

/// The settings a client asked for: its startup parameters plus those in `options`.
pub fn client_settings(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .cloned()
        .collect();
    if let Some((_, options)) = params.iter().find(|(k, _)| k == "options") {
        out.extend(parse_options(options));
    }
    out
}

/// `-c name=value`, `-cname=value` and `--name=value`, as PostgreSQL reads `options`
/// (backslash escapes a space).
pub fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("-c") {
            Some(rest.to_owned())
        } else {
            w.strip_prefix("--").map(str::to_owned)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            out.push((k.replace('-', "_"), v.to_owned()));
        }
    }
    out
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One simple query per setting, so that one bad setting does not undo the others.
pub fn setup_queries(params: &[(String, String)]) -> Vec<Frame> {
    client_settings(params)
        .into_iter()
        .map(|(k, v)| {
            let sql = format!(
                "SELECT pg_catalog.set_config({}, {}, false)",
                quote_literal(&k),
                quote_literal(&v)
            );
            super::query_frame(&sql)
        })
        .collect()
}

/// The ParameterStatus set a client is greeted with: the default bind's server values, with the
/// client's own settings where PostgreSQL reports them.
pub fn initial_parameters(proxy: &Proxy, params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = match proxy
        .binds
        .get(proxy.default_bind())
        .as_ref()
        .map(|s| &s.bind)
    {
        Some(Bind::Pg(pool)) => pool.server_params(),
        _ => None,
    }
    .unwrap_or_else(|| {
        [
            ("server_version", "15.0"),
            ("server_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "off"),
            ("application_name", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    });
    set(&mut out, "client_encoding", "UTF8");
    for (k, v) in client_settings(params) {
        if let Some(slot) = out
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(&k))
        {
            slot.1 = v;
        }
    }
    out
}

fn set(params: &mut Vec<(String, String)>, k: &str, v: &str) {
    match params.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_owned(),
        None => params.push((k.to_owned(), v.to_owned())),
    }
}

/// Opens one connection to the default bind in the background, to learn its ParameterStatus
/// values before the first client arrives.
pub fn warm_up(proxy: &Arc<Proxy>) {
    let Some(slot) = proxy.binds.get(proxy.default_bind()) else {
        return;
    };
    match &slot.bind {
        Bind::Pg(pool) => {
            let pool = pool.clone();
            tokio::spawn(async move {
                if let Err(e) = pool.connect().await {
                    tracing::warn!("{e}");
                }
            });
        }
        Bind::Translated(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_like_postgres() {
        assert_eq!(
            parse_options("-c search_path=a,b --statement-timeout=5s -cwork_mem=4MB -c x=a\\ b"),
            vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("work_mem".into(), "4MB".into()),
                ("x".into(), "a b".into()),
            ]
        );
    }
}
