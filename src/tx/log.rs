//! The decision log: the durable record that a multi-bind transaction committed.
//!
//! STUB — being written (append + fsync, compaction, lock against a second process).

use std::path::{Path, PathBuf};

/// A commit decision that has not been carried out on every participant yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The transaction id (`tx::gid`), without participant suffix.
    pub gid: String,
    /// Names of the participating binds, in joining order (branch k = participants[k]).
    pub participants: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("decision log {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("decision log {path} is in use by another bindproxy process (pid file {lock}); give each instance its own transactions.log_dir")]
    Locked { path: PathBuf, lock: PathBuf },
}

/// The log of one instance. Opened lazily: nothing touches the disk until the first decision.
#[derive(Debug)]
pub struct DecisionLog {
    dir: PathBuf,
}

impl DecisionLog {
    pub fn new(dir: &Path) -> DecisionLog {
        DecisionLog {
            dir: dir.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends "gid committed, with these participants" and fsyncs before returning.
    pub async fn record_commit(&self, _gid: &str, _participants: &[String]) -> Result<(), LogError> {
        Ok(())
    }

    /// Appends "gid is finished on every participant" (no fsync needed: recovery of a finished
    /// transaction finds nothing prepared and only compacts).
    pub async fn record_done(&self, _gid: &str) -> Result<(), LogError> {
        Ok(())
    }

    /// Commit decisions not yet marked done.
    pub fn pending(&self) -> Result<Vec<Decision>, LogError> {
        Ok(Vec::new())
    }
}
