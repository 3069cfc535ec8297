//! The decision log: the durable record that a multi-bind transaction committed.
//!
//! Owns: `<dir>/decisions.log`, append-only JSON lines — `{"commit":gid,"participants":[..]}`
//! (written and fsynced before phase 2 starts; sessions deciding at the same moment share one
//! fsync) and `{"done":gid}` (phase 2 finished everywhere, not synced); its compaction (an
//! atomic rewrite keeping only pending decisions); and `<dir>/lock`, the advisory lock one daemon
//! (or `bindproxy recover`) holds for its whole life.
//!
//! The file is opened lazily: a process that never commits across binds never touches the disk.
//! A torn last line (a crash in the middle of a write) is no decision: its `record_commit` never
//! returned, so no phase 2 ran and presumed abort is right. It is cut off before the next append.
//!
//! Must never: return from `record_commit` before the line is on disk; leave a partial line in
//! the middle of the file; block the runtime (blocking I/O runs in `spawn_blocking`).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// The log file's name inside `transactions.log_dir`.
pub const LOG_FILE: &str = "decisions.log";
/// The lock file's name inside `transactions.log_dir`.
pub const LOCK_FILE: &str = "lock";

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
    #[error("decision log directory {path} is in use by another bindproxy process (lock file {lock}{}); stop that process first, or give each instance its own transactions.log_dir", holder_text(.path, .lock))]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("decision log {path}, line {line}: {problem}; the file is damaged: repair or move it aside only after checking which prepared transactions must be committed")]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// ", held by pid N" when the lock file names its holder.
fn holder_text(_dir: &Path, lock: &Path) -> String {
    match std::fs::read_to_string(lock) {
        Ok(s) if !s.trim().is_empty() => format!(", held by pid {}", s.trim()),
        _ => String::new(),
    }
}

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Commit {
        commit: String,
        participants: Vec<String>,
    },
    Done {
        done: String,
    },
}

/// The log of one instance. Opened lazily: nothing touches the disk until the first decision.
#[derive(Debug)]
pub struct DecisionLog {
    dir: PathBuf,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when a batch has been written (and synced), or the writer's place is free.
    written: Condvar,
}

/// Group commit: appenders queue their lines; one of them (the writer) takes the whole queue,
/// writes and fsyncs it outside the lock, and wakes the others. Sessions committing at the same
/// moment share one fsync.
#[derive(Debug, Default)]
struct State {
    /// The open log, positioned at its end; None until the first append, while the writer has
    /// it, and after a failed write (the next append reopens and cuts any partial line).
    file: Option<File>,
    queue: Vec<u8>,
    /// Some line in the queue needs fsync.
    queue_sync: bool,
    /// The ticket of the last line queued.
    last_ticket: u64,
    /// Every ticket up to this one has been handled (written, or failed).
    handled: u64,
    /// A writer is at work outside the lock.
    writing: bool,
    /// Batches that failed: (first ticket, last ticket, error), the most recent ones.
    failed: Vec<(u64, u64, std::io::ErrorKind, String)>,
}

/// How many failed batches are remembered for their waiters.
const FAILED_KEPT: usize = 1024;

/// The daemon's exclusive hold on a log directory; released when dropped.
#[derive(Debug)]
pub struct LogLock {
    _file: File,
    path: PathBuf,
}

impl LogLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl DecisionLog {
    pub fn new(dir: &Path) -> DecisionLog {
        DecisionLog {
            dir: dir.to_owned(),
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                path: dir.join(LOG_FILE),
                state: Mutex::new(State::default()),
                written: Condvar::new(),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file (it may not exist yet).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends "gid committed, with these participants" and fsyncs before returning.
    pub async fn record_commit(&self, gid: &str, participants: &[String]) -> Result<(), LogError> {
        let entry = Entry::Commit {
            commit: gid.to_owned(),
            participants: participants.to_vec(),
        };
        self.append(entry, true).await
    }

    /// Appends "gid is finished on every participant" (no fsync needed: recovery of a finished
    /// transaction finds nothing prepared and only compacts).
    pub async fn record_done(&self, gid: &str) -> Result<(), LogError> {
        self.append(
            Entry::Done {
                done: gid.to_owned(),
            },
            false,
        )
        .await
    }

    async fn append(&self, entry: Entry, sync: bool) -> Result<(), LogError> {
        let mut line = serde_json::to_vec(&entry).map_err(|e| self.inner.io(e.into()))?;
        line.push(b'\n');
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || inner.append_blocking(&line, sync)).await {
            Ok(r) => r,
            Err(e) => Err(self.inner.io(std::io::Error::other(e))),
        }
    }

    /// Commit decisions not yet marked done, in the order they were made.
    pub fn pending(&self) -> Result<Vec<Decision>, LogError> {
        self.inner.read_pending()
    }

    /// Rewrites the log atomically (temporary file, fsync, rename, fsync of the directory) with
    /// only the pending decisions. Returns how many remain. Nothing to do when there is no log.
    pub async fn compact(&self) -> Result<usize, LogError> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || inner.compact_blocking()).await {
            Ok(r) => r,
            Err(e) => Err(self.inner.io(std::io::Error::other(e))),
        }
    }

    /// Takes the exclusive lock on `<dir>/lock` (creating the directory), for the life of the
    /// returned guard. `LogError::Locked` when another process holds it.
    pub fn lock(&self) -> Result<LogLock, LogError> {
        let lock = self.dir.join(LOCK_FILE);
        let io = |err| LogError::Io {
            path: lock.clone(),
            err,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LogError::Locked {
                    path: self.dir.clone(),
                    lock,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message a second process prints.
        let pid = std::process::id().to_string();
        file.set_len(0).map_err(io)?;
        file.write_all(pid.as_bytes()).map_err(io)?;
        Ok(LogLock {
            _file: file,
            path: lock,
        })
    }
}

impl Inner {
    fn io(&self, err: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            err,
        }
    }

    /// Opens the log for appending, creating the directory, and cuts a torn last line.
    fn open(&self) -> Result<File, LogError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        let len = f.metadata().map_err(|e| self.io(e))?.len();
        if len > 0 {
            let mut data = Vec::with_capacity(len as usize);
            f.read_to_end(&mut data).map_err(|e| self.io(e))?;
            let keep = data
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            if keep as u64 != len {
                f.set_len(keep as u64).map_err(|e| self.io(e))?;
                f.sync_data().map_err(|e| self.io(e))?;
            }
        }
        f.seek(SeekFrom::End(0)).map_err(|e| self.io(e))?;
        Ok(f)
    }

    fn lock_state(&self) -> Result<MutexGuard<'_, State>, LogError> {
        self.state
            .lock()
            .map_err(|_| self.io(std::io::Error::other("decision log mutex poisoned")))
    }

    fn append_blocking(&self, line: &[u8], sync: bool) -> Result<(), LogError> {
        let mut st = self.lock_state()?;
        st.last_ticket += 1;
        let ticket = st.last_ticket;
        st.queue.extend_from_slice(line);
        st.queue_sync |= sync;
        loop {
            if st.handled >= ticket {
                return match st.failed.iter().find(|f| f.0 <= ticket && ticket <= f.1) {
                    Some((_, _, kind, msg)) => {
                        Err(self.io(std::io::Error::new(*kind, msg.clone())))
                    }
                    None => Ok(()),
                };
            }
            if st.writing {
                st = self
                    .written
                    .wait(st)
                    .map_err(|_| self.io(std::io::Error::other("decision log mutex poisoned")))?;
                continue;
            }
            // Become the writer of everything queued so far.
            st.writing = true;
            let batch = std::mem::take(&mut st.queue);
            let batch_sync = std::mem::take(&mut st.queue_sync);
            let (first, last) = (st.handled + 1, st.last_ticket);
            let file = st.file.take();
            drop(st);
            let (file, result) = self.write_batch(file, &batch, batch_sync);
            st = self.lock_state()?;
            st.file = file;
            if let Err(e) = result {
                if st.failed.len() >= FAILED_KEPT {
                    st.failed.remove(0);
                }
                st.failed.push((first, last, e.kind(), e.to_string()));
            }
            st.handled = last;
            st.writing = false;
            self.written.notify_all();
        }
    }

    /// Writes (and fsyncs) one batch. On failure the batch is taken back (best effort) so that a
    /// commit the caller reports as failed does not come back as a decision at recovery, and the
    /// file is closed: the next append reopens it and cuts any partial line.
    fn write_batch(
        &self,
        file: Option<File>,
        batch: &[u8],
        sync: bool,
    ) -> (Option<File>, std::io::Result<()>) {
        let mut f = match file {
            Some(f) => f,
            None => match self.open() {
                Ok(f) => f,
                Err(LogError::Io { err, .. }) => return (None, Err(err)),
                Err(e) => return (None, Err(std::io::Error::other(e.to_string()))),
            },
        };
        let start = match f.stream_position() {
            Ok(p) => p,
            Err(e) => return (None, Err(e)),
        };
        let written = f
            .write_all(batch)
            .and_then(|()| if sync { f.sync_data() } else { Ok(()) });
        match written {
            Ok(()) => (Some(f), Ok(())),
            Err(e) => {
                let _ = f.set_len(start).and_then(|()| f.sync_data());
                (None, Err(e))
            }
        }
    }

    fn read_pending(&self) -> Result<Vec<Decision>, LogError> {
        let data = match std::fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        parse(&data, &self.path)
    }

    fn compact_blocking(&self) -> Result<usize, LogError> {
        // Not while a writer is at work: its lines go to the file being replaced.
        let mut st = self.lock_state()?;
        while st.writing {
            st = self
                .written
                .wait(st)
                .map_err(|_| self.io(std::io::Error::other("decision log mutex poisoned")))?;
        }
        let pending = self.read_pending()?;
        if !self.path.exists() {
            return Ok(0);
        }
        let tmp = self.dir.join(format!("{LOG_FILE}.tmp"));
        let tio = |err| LogError::Io {
            path: tmp.clone(),
            err,
        };
        let mut out = Vec::new();
        for d in &pending {
            let entry = Entry::Commit {
                commit: d.gid.clone(),
                participants: d.participants.clone(),
            };
            serde_json::to_writer(&mut out, &entry).map_err(|e| tio(e.into()))?;
            out.push(b'\n');
        }
        {
            let mut f = File::create(&tmp).map_err(tio)?;
            f.write_all(&out).map_err(tio)?;
            f.sync_all().map_err(tio)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        let dir = File::open(&self.dir).map_err(|err| LogError::Io {
            path: self.dir.clone(),
            err,
        })?;
        dir.sync_all().map_err(|err| LogError::Io {
            path: self.dir.clone(),
            err,
        })?;
        // The old handle points at the replaced file.
        st.file = None;
        Ok(pending.len())
    }
}

/// Pending decisions of a log's bytes. A last line without its newline is torn and ignored.
fn parse(data: &[u8], path: &Path) -> Result<Vec<Decision>, LogError> {
    let complete = match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => &data[..i],
        None => return Ok(Vec::new()),
    };
    let mut order: Vec<Decision> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: Entry = serde_json::from_slice(line).map_err(|e| LogError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            problem: format!("not a decision ({e})"),
        })?;
        match entry {
            Entry::Commit {
                commit,
                participants,
            } => {
                done.remove(&commit);
                order.retain(|d| d.gid != commit);
                order.push(Decision {
                    gid: commit,
                    participants,
                });
            }
            Entry::Done { done: gid } => {
                done.insert(gid);
            }
        }
    }
    order.retain(|d| !done.contains(&d.gid));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!(
            "bp_txlog_{tag}_{}_{n}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn lazy_append_pending_done_compact() {
        let dir = tempdir("basic");
        let log = DecisionLog::new(&dir);
        assert!(log.pending().unwrap().is_empty());
        assert!(!dir.exists(), "nothing touches the disk before a decision");
        assert_eq!(log.compact().await.unwrap(), 0);
        assert!(!dir.exists());

        log.record_commit("g1", &names(&["a", "b"])).await.unwrap();
        log.record_commit("g2", &names(&["b", "c"])).await.unwrap();
        log.record_done("g1").await.unwrap();
        let p = log.pending().unwrap();
        assert_eq!(
            p,
            vec![Decision {
                gid: "g2".into(),
                participants: names(&["b", "c"])
            }]
        );
        // A second reader (recovery in another process) sees the same.
        assert_eq!(DecisionLog::new(&dir).pending().unwrap(), p);

        assert_eq!(log.compact().await.unwrap(), 1);
        let text = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"commit\":\"g2\""), "{text}");
        // Appends after compaction go to the new file.
        log.record_commit("g3", &names(&["a"])).await.unwrap();
        log.record_done("g2").await.unwrap();
        let p = log.pending().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].gid, "g3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn torn_last_line_is_ignored_and_cut() {
        let dir = tempdir("torn");
        let log = DecisionLog::new(&dir);
        log.record_commit("g1", &names(&["a", "b"])).await.unwrap();
        let path = dir.join(LOG_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"commit\":\"g2\",\"partici").unwrap();
        drop(f);
        let fresh = DecisionLog::new(&dir);
        let p = fresh.pending().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].gid, "g1");
        // The next append (by a new process) cuts the torn tail first.
        fresh.record_commit("g3", &names(&["b"])).await.unwrap();
        let p: Vec<String> = fresh
            .pending()
            .unwrap()
            .into_iter()
            .map(|d| d.gid)
            .collect();
        assert_eq!(p, vec!["g1", "g3"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_bad_line_in_the_middle_is_an_error_naming_file_and_line() {
        let dir = tempdir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(LOG_FILE),
            "{\"commit\":\"g1\",\"participants\":[\"a\"]}\ngarbage\n{\"done\":\"g1\"}\n",
        )
        .unwrap();
        let err = DecisionLog::new(&dir).pending().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LogError::Corrupt { line: 2, .. }), "{msg}");
        assert!(
            msg.contains("decisions.log") && msg.contains("line 2"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_are_all_recorded() {
        let dir = tempdir("concurrent");
        let log = Arc::new(DecisionLog::new(&dir));
        let mut tasks = Vec::new();
        for i in 0..32 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                log.record_commit(&format!("g{i}"), &names(&["a", "b"]))
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    log.record_done(&format!("g{i}")).await.unwrap();
                }
            }));
        }
        // Compactions racing the appends lose nothing.
        for _ in 0..4 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                log.compact().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let p = log.pending().unwrap();
        assert_eq!(p.len(), 16);
        assert!(p
            .iter()
            .all(|d| d.gid[1..].parse::<u32>().unwrap() % 2 == 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempdir("lock");
        let log = DecisionLog::new(&dir);
        let held = log.lock().unwrap();
        let err = DecisionLog::new(&dir).lock().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LogError::Locked { .. }), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        let again = DecisionLog::new(&dir).lock().unwrap();
        assert_eq!(again.path(), dir.join(LOCK_FILE));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
