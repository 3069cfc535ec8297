//! Global transaction ids: the name a multi-bind transaction's branches are prepared under.
//!
//! Owns: the format `bp_<instance>_<start>_<n>_<k>` — the configured `instance_id`, the moment
//! this process started (hex milliseconds, so a restarted instance never reuses an id), a
//! per-process counter, and the participant's position `k` (two PostgreSQL databases on one
//! server share one namespace of prepared transactions, so each branch needs its own name).
//!
//! Must never: produce an id that needs quoting in SQL (letters, digits and `_` only) or one
//! longer than MySQL's 64-byte XA limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes the ids of one bindproxy process.
#[derive(Debug)]
pub struct GidMaker {
    prefix: String,
    next: AtomicU64,
}

impl GidMaker {
    /// `instance` is checked by the configuration: 1–16 letters, digits or `_`.
    pub fn new(instance: &str) -> GidMaker {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        GidMaker {
            prefix: format!("{}{start:x}_", instance_prefix(instance)),
            next: AtomicU64::new(1),
        }
    }

    /// A new transaction id (without the participant suffix).
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:x}", self.prefix)
    }
}

/// What every id of `instance` starts with: how recovery recognises its own branches.
pub fn instance_prefix(instance: &str) -> String {
    format!("bp_{instance}_")
}

/// The id participant `k` of transaction `gid` is prepared under.
pub fn branch(gid: &str, k: usize) -> String {
    format!("{gid}_{k}")
}

/// The transaction id of a branch id, if it is one of `instance`'s.
pub fn transaction_of<'a>(branch_id: &'a str, instance: &str) -> Option<&'a str> {
    let rest = branch_id.strip_prefix(&instance_prefix(instance))?;
    // <start>_<n>_<k>
    let mut parts = rest.split('_');
    let ok = parts.next().is_some_and(is_hex)
        && parts.next().is_some_and(is_hex)
        && parts
            .next()
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_none();
    if !ok {
        return None;
    }
    branch_id.rfind('_').map(|i| &branch_id[..i])
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_stay_short() {
        let m = GidMaker::new("abcdefghijklmnop");
        let a = m.next();
        let b = m.next();
        assert_ne!(a, b);
        let br = branch(&a, 12);
        assert!(br.len() <= 64, "{br}");
        assert!(br.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
        assert_eq!(transaction_of(&br, "abcdefghijklmnop"), Some(a.as_str()));
        // another instance's, or not ours at all
        assert_eq!(transaction_of(&br, "abcdefghijklmno"), None);
        assert_eq!(transaction_of("bp_main_x_1_0", "main"), None);
        assert_eq!(transaction_of("bp_main_1f_1", "main"), None);
        assert_eq!(transaction_of("other", "main"), None);
    }
}
