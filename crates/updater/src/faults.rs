//! Fault reports: on an unexpected exit, a zip of the service's state (`fault.json`), the
//! last log lines (`tail.log`) and the files matching `faultFilesMatch` (`files/…`), kept
//! in `<service[-role]>/faults/<id>.zip` until a [`FaultUploader`] has sent it.
//!
//! A report is written to a hidden temporary file, synced and renamed into place, so a
//! listed report is always whole and survives an updater restart; temporaries a crash left
//! are removed at open. Only files changed since the run started are attached (a core
//! dump of an older crash is not sent again), each at most the folder's cap. The folder is
//! capped in total size, oldest reports deleted first.
//!
//! - [`upload`]: the uploader seam and the task that empties the folder through it.

pub mod upload;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vupdate_core::update::Pattern;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::Error;
use crate::state::ServiceState;

pub use upload::{FaultUploader, UploadOptions, upload_faults};

/// The default cap of a faults folder (the original's 1000 MB).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1000 * 1024 * 1024;

/// The zip entry holding [`FaultInfo`].
pub const INFO_ENTRY: &str = "fault.json";
/// The zip entry holding the log tail, one line each.
pub const TAIL_ENTRY: &str = "tail.log";
/// The zip folder holding the matched files.
pub const FILES_DIR: &str = "files/";

const TMP_PREFIX: &str = ".tmp-";

/// Why the service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "detail")]
pub enum FaultReason {
    /// It exited or was killed by something else than the updater.
    Exited,
    /// The updater ended it for passing a restart condition (described).
    Condition(String),
    /// It could not be started at all (the error).
    SpawnFailed(String),
}

/// A file attached to a report, as the API's `FaultFileInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultFile {
    /// The path inside the zip (`files/core`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What `fault.json` holds: what the API's `FaultInfoInput` needs (the VM's instance id
/// is added by the uploader) and the details of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultInfo {
    /// The report's id (`[A-Za-z0-9_-]`, 8 to 64 characters), also its file name.
    pub id: String,
    /// When the fault happened.
    pub time: DateTime<Utc>,
    /// The service.
    pub service: String,
    /// Its role, if any.
    pub service_role: Option<String>,
    /// The service's directory on the VM.
    pub service_directory: String,
    /// The service's state when it ended.
    pub state: ServiceState,
    /// Why it ended.
    pub reason: FaultReason,
    /// The pid of the run.
    pub pid: Option<u32>,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The command that ran.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The attached files.
    pub files: Vec<FaultFile>,
    /// Matching files left out for their size.
    pub skipped_files: Vec<FaultFile>,
}

/// What goes into one report besides its info.
#[derive(Debug)]
pub struct FaultReport<'a> {
    /// The last log lines, oldest first.
    pub log_tail: &'a [String],
    /// The folder searched for files to attach (the service's working directory).
    pub files_dir: &'a Path,
    /// Which file names (whole name) to attach.
    pub files_match: &'a Pattern,
    /// Only files modified at or after this time are attached (the run's start).
    pub files_since: SystemTime,
}

/// A report waiting to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFault {
    /// The report's id.
    pub id: String,
    /// The zip file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

impl PendingFault {
    /// Reads `fault.json` and `tail.log` back from the zip.
    pub fn read(&self) -> Result<(FaultInfo, Vec<String>), Error> {
        let file = File::open(&self.path).map_err(Error::io("open", &self.path))?;
        let mut archive = zip::ZipArchive::new(file).map_err(Error::zip(&self.path))?;
        let mut text = String::new();
        archive
            .by_name(INFO_ENTRY)
            .map_err(Error::zip(&self.path))?
            .read_to_string(&mut text)
            .map_err(Error::io("read", &self.path))?;
        let info = serde_json::from_str(&text).map_err(|error| Error::Io {
            action: "parse fault.json of",
            path: self.path.clone(),
            error: error.into(),
        })?;
        let mut tail = String::new();
        archive
            .by_name(TAIL_ENTRY)
            .map_err(Error::zip(&self.path))?
            .read_to_string(&mut tail)
            .map_err(Error::io("read", &self.path))?;
        Ok((info, tail.lines().map(str::to_owned).collect()))
    }
}

/// A new, unique report id: the UTC time to the millisecond and 8 random hex digits,
/// so ids sort by age and do not collide across VMs.
pub fn new_fault_id(time: DateTime<Utc>) -> String {
    let mut random = [0u8; 4];
    // Without randomness the id is still unique on this VM by its time.
    let _ = getrandom::fill(&mut random);
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{hex}", time.format("%Y%m%dT%H%M%S%3fZ"))
}

/// The faults folder of one service.
#[derive(Debug)]
pub struct FaultReports {
    dir: PathBuf,
    max_total_bytes: u64,
    written: Arc<Notify>,
}

impl FaultReports {
    /// Opens (creating) the folder `dir`, capped at `max_total_bytes`; removes temporary
    /// files a crash left.
    pub fn open(dir: &Path, max_total_bytes: u64) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
            let entry = entry.map_err(Error::io("list", dir))?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(Error::io("remove", &path))?;
            }
        }
        Ok(FaultReports {
            dir: dir.to_owned(),
            max_total_bytes,
            written: Arc::new(Notify::new()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Woken after each report written, for the uploader.
    pub fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    /// Writes one report (its `files` are filled in here) and returns its path; then
    /// deletes the oldest reports while the folder is above its cap (the new one is kept).
    pub fn write(&self, mut info: FaultInfo, report: &FaultReport<'_>) -> Result<PathBuf, Error> {
        let path = self.dir.join(format!("{}.zip", info.id));
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}.zip", info.id));
        let (files, skipped) = matching_files(report, self.max_total_bytes)?;
        info.files = files
            .iter()
            .map(|(name, size, _)| FaultFile {
                path: format!("{FILES_DIR}{name}"),
                size: *size,
            })
            .collect();
        info.skipped_files = skipped;
        if let Err(error) = write_zip(&tmp, &info, report.log_tail, &files) {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
        self.enforce_cap(&path)?;
        self.written.notify_one();
        Ok(path)
    }

    /// The reports waiting, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingFault>, Error> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))? {
            let entry = entry.map_err(Error::io("list", &self.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(id) = name.strip_suffix(".zip") else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let size = entry
                .metadata()
                .map_err(Error::io("read the size of", &path))?
                .len();
            found.push(PendingFault {
                id: id.to_owned(),
                path,
                size,
            });
        }
        // Ids start with the UTC time, so they sort by age.
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    /// Deletes a report (after its upload).
    pub fn remove(&self, fault: &PendingFault) -> Result<(), Error> {
        match fs::remove_file(&fault.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(Error::io("remove", &fault.path)(error))
            }
            _ => Ok(()),
        }
    }

    fn enforce_cap(&self, keep: &Path) -> Result<(), Error> {
        let pending = self.pending()?;
        let mut total: u64 = pending.iter().map(|fault| fault.size).sum();
        for fault in pending {
            if total <= self.max_total_bytes {
                break;
            }
            if fault.path != keep {
                tracing::warn!(path = %fault.path.display(), "faults folder full: deleting the oldest report");
                self.remove(&fault)?;
                total -= fault.size;
            }
        }
        Ok(())
    }
}

fn write_zip(
    path: &Path,
    info: &FaultInfo,
    log_tail: &[String],
    files: &[(String, u64, PathBuf)],
) -> Result<(), Error> {
    let file = File::create(path).map_err(Error::io("create", path))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file(INFO_ENTRY, options)
        .map_err(Error::zip(path))?;
    serde_json::to_writer_pretty(&mut zip, info)
        .map_err(|error| Error::io("write", path)(error.into()))?;
    zip.start_file(TAIL_ENTRY, options)
        .map_err(Error::zip(path))?;
    for line in log_tail {
        zip.write_all(line.as_bytes())
            .and_then(|()| zip.write_all(b"\n"))
            .map_err(Error::io("write", path))?;
    }
    for (name, _, attached) in files {
        zip.start_file(format!("{FILES_DIR}{name}"), options)
            .map_err(Error::zip(path))?;
        let mut source = File::open(attached).map_err(Error::io("open", attached))?;
        io::copy(&mut source, &mut zip).map_err(Error::io("read", attached))?;
    }
    let writer = zip.finish().map_err(Error::zip(path))?;
    let file = writer
        .into_inner()
        .map_err(|error| Error::io("write", path)(error.into_error()))?;
    file.sync_all().map_err(Error::io("sync", path))
}

/// Regular files directly in the report's folder whose whole name matches, changed since
/// the run started, by name: `(name, size, path)` to attach, and those over `max_bytes`.
#[allow(clippy::type_complexity)]
fn matching_files(
    report: &FaultReport<'_>,
    max_bytes: u64,
) -> Result<(Vec<(String, u64, PathBuf)>, Vec<FaultFile>), Error> {
    let dir = report.files_dir;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new()));
        }
        Err(error) => return Err(Error::io("list", dir)(error)),
    };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut total = 0u64;
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !report.files_match.matches_whole(&name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let recent = meta
            .modified()
            .is_ok_and(|modified| modified >= report.files_since);
        if !meta.is_file() || !recent {
            continue;
        }
        if total + meta.len() > max_bytes {
            skipped.push(FaultFile {
                path: format!("{FILES_DIR}{name}"),
                size: meta.len(),
            });
            continue;
        }
        total += meta.len();
        files.push((name, meta.len(), entry.path()));
    }
    files.sort();
    Ok((files, skipped))
}

#[cfg(test)]
mod tests;
