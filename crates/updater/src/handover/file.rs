//! The handover file: what one updater process tells the next (the same pid, after
//! `execve`) about the runs it leaves running, and the in-memory form of the same runs,
//! which holds the pipe read ends themselves.
//!
//! The file is JSON, written atomically (a temporary file with mode 0600, synced, renamed
//! over, the folder synced): it holds the previous process's environment, since the
//! fallback must run exactly as the previous updater ran.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::version::ClientVersion;

use crate::Error;
use crate::install::journal::sync_parent;
use crate::supervisor::CgroupVersion;
use crate::supervisor::status::ExitInfo;

/// The version of the handover file's format; a new binary lists the formats it reads
/// in its probe reply, and is only executed when this one is among them.
pub const FORMAT: u32 = 1;

/// The whole handover file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverFile {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// The updater's pid: a file found by another process is stale and ignored.
    pub pid: u32,
    /// When it was written.
    pub written: DateTime<Utc>,
    /// The updater version that wrote it, when known.
    pub from_version: Option<ClientVersion>,
    /// The updater version it hands over to, when known.
    pub to_version: Option<ClientVersion>,
    /// How to run the previous updater again, should the new one fail before it is ready.
    pub fallback: ExecTarget,
    /// How long the new updater has to become ready before the fallback takes over.
    pub ready_window_ms: u64,
    /// Where the process that takes over says so ([`ReadyMarker`]).
    pub ready_file: PathBuf,
    /// Every service, with its run if one is alive.
    pub services: Vec<ServiceHandover>,
}

/// A program to replace the updater process with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecTarget {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (without the program name).
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
}

/// One service in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHandover {
    /// `service[-role]`.
    pub instance: String,
    /// The service's directory.
    pub directory: PathBuf,
    /// The version that runs.
    pub version: Option<ClientVersion>,
    /// Its run, when one is alive.
    pub run: Option<RunHandover>,
}

/// One live run in the file: its record and its pipes by descriptor number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunHandover {
    /// Everything but the pipes.
    #[serde(flatten)]
    pub record: RunRecord,
    /// Its standard output.
    pub stdout: Option<PipeHandover>,
    /// Its standard error.
    pub stderr: Option<PipeHandover>,
}

/// A pipe read end passed across `execve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeHandover {
    /// The descriptor number it has in the process after `execve` (inherited: its
    /// close-on-exec flag is cleared).
    pub fd: i32,
    /// The pipe's inode (`pipe:[N]`), so a descriptor number is never taken for another.
    pub inode: u64,
    /// The bytes of a line begun and not yet ended.
    pub pending: Vec<u8>,
}

/// What the next process needs to go on supervising a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The group leader (its group id is the same).
    pub pid: u32,
    /// Its start time after boot, in clock ticks: with the pid, it names the process.
    pub start_ticks: u64,
    /// Its cgroup, when it has one.
    pub cgroup: Option<CgroupRecord>,
    /// When the run started, as reported.
    pub start_time: Option<DateTime<Utc>>,
    /// Files changed since then belong to the run (fault reports take them).
    pub files_since: DateTime<Utc>,
    /// How long it had been up at the handover.
    pub uptime_ms: u64,
    /// Whether it had reached the stable uptime (the backoff was reset).
    pub stable: bool,
    /// Runs the supervisor had started.
    pub starts: u64,
    /// Faults so far.
    pub failures_total: u64,
    /// Faults in a row.
    pub failures_in_row: u32,
    /// Whether that makes a crash loop.
    pub crash_loop: bool,
    /// How the run before ended.
    pub last_exit: Option<ExitInfo>,
    /// Processes of its tree seen so far, as (pid, start ticks).
    pub seen: Vec<(i32, u64)>,
}

/// A run's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupRecord {
    /// Its directory.
    pub path: PathBuf,
    /// Its hierarchy.
    pub version: CgroupVersion,
}

/// One service handed over in memory: the file's record with the pipe read ends held.
#[derive(Debug)]
pub struct LiveService {
    /// `service[-role]`.
    pub instance: String,
    /// The service's directory.
    pub directory: PathBuf,
    /// The version that runs.
    pub version: Option<ClientVersion>,
    /// Its run, when one is alive.
    pub run: Option<LiveRun>,
}

/// One live run handed over in memory.
#[derive(Debug)]
pub struct LiveRun {
    /// Everything but the pipes.
    pub record: RunRecord,
    /// Its standard output, when it is still open.
    pub stdout: Option<LivePipe>,
    /// Its standard error, when it is still open.
    pub stderr: Option<LivePipe>,
}

/// A pipe read end and the unended line read from it.
#[derive(Debug)]
pub struct LivePipe {
    /// The read end.
    pub fd: OwnedFd,
    /// The bytes of a line begun and not yet ended.
    pub pending: Vec<u8>,
}

/// What the process that took over writes once it supervises every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyMarker {
    /// The updater's pid (the same before and after `execve`).
    pub pid: u32,
    /// The updater version that now runs, when known.
    pub version: Option<ClientVersion>,
    /// Whether it is the previous updater, back in charge after the new one failed.
    pub fallback: bool,
    /// Why the handover failed, when it did.
    pub failure: Option<String>,
    /// The services whose runs were adopted.
    pub adopted: Vec<String>,
    /// When it became ready.
    pub at: DateTime<Utc>,
}

/// Writes `value` as JSON to `path` atomically, readable by its owner only.
pub(crate) fn write_atomic(path: &Path, value: &impl Serialize) -> Result<(), Error> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).expect("handover records serialize");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename", &tmp))?;
    sync_parent(path)
}

/// Reads a handover file.
pub fn read(path: &Path) -> Result<HandoverFile, Error> {
    let bytes = fs::read(path).map_err(Error::io("read the handover file", path))?;
    serde_json::from_slice(&bytes).map_err(|error| Error::Handover {
        path: path.to_owned(),
        message: format!("unreadable handover file: {error}"),
    })
}

/// Removes `path`; a file already gone is fine.
pub(crate) fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io("remove", path)(error)),
    }
}
