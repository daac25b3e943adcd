//! Backup and restore of a distribution's data (`vupdate distribution backup --to DIR`,
//! `vupdate distribution restore --from DIR`).
//!
//! A backup is a directory: `manifest.json` (what it holds and where from), `store.sqlite`
//! (SQLite's online backup: one committed state, taken while the server runs), `jwt.key`,
//! and `data/` with the image store (content-addressed blobs and their refs, hard links
//! kept), fault reports, private files, an older server's enrolment token file (now in the
//! store) and `secrets/` when present. Not
//! the state repo's clone: Git history lives in the state repo, and a restored server
//! clones it again from the URL the manifest names. The store is copied first, so every
//! image a version record names is in the copy (images are written before their records
//! and never change). With MongoDB, the backup holds the files and says how to dump the
//! database.
//!
//! A restore refuses a data directory a server runs on ([`SERVER_LOCK`] is held) or that
//! holds anything; it fills a staging directory beside it and renames it into place, so a
//! failed restore leaves nothing.
//!
//! A backup may also be one file, a zip archive of that directory (`archive`):
//! [`backup_to_file`] packs it, [`restore_from_file`] unpacks it beside the data
//! directory and restores from there.

mod archive;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vupdate_store::StoreConfig;

use crate::config::{DistributionConfig, StateRepoSource};

/// The file a running server holds locked in its data directory.
pub const SERVER_LOCK: &str = "server.lock";
/// The parts of the data directory a backup copies (when present).
const DATA_PARTS: [&str; 7] = [
    "images",
    "faults",
    "private",
    crate::enrolment::FILE_NAME,
    "secrets",
    // The Git host's webhook keeps working after a restore.
    crate::webhook::FILE_NAME,
    // A self-signed certificate's key: a restored server keeps its pin.
    "tls",
];
/// Never copied: uploads in progress.
const SKIPPED: [&str; 1] = ["images/tmp"];
/// The manifest's format.
const FORMAT: u32 = 1;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The store could not be copied.
    #[error("cannot copy the store: {error}")]
    Store {
        /// Why.
        error: vupdate_store::StoreError,
    },
    /// What the user asked for cannot be done as asked.
    #[error("{0}")]
    Refused(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |error| BackupError::Io {
        what,
        path: path.to_owned(),
        error,
    }
}

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest's format.
    pub format: u32,
    /// The distribution's name.
    pub distribution: String,
    /// When the backup was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The state repo (URL or path) a restored server follows; its history is not here.
    pub state_repo: String,
    /// Whether `store.sqlite` is here (false with MongoDB: dump it with `mongodump`).
    pub sqlite: bool,
    /// Files copied and their bytes (hard links counted once).
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// The lock of a running server on `data_directory`, taken at start and held until exit.
pub fn lock_data_directory(data_directory: &Path) -> std::io::Result<fs::File> {
    let path = data_directory.join(SERVER_LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            format!(
                "another server runs on the data directory {} (it holds {SERVER_LOCK})",
                data_directory.display()
            ),
        )),
        Err(fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Whether a server runs on `data_directory` now.
fn server_running(data_directory: &Path) -> Result<bool, BackupError> {
    let path = data_directory.join(SERVER_LOCK);
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(io("cannot open", &path)(error)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(fs::TryLockError::WouldBlock) => Ok(true),
        Err(fs::TryLockError::Error(error)) => Err(io("cannot check the lock", &path)(error)),
    }
}

/// Copies files and directories, keeping hard links between copied files.
#[derive(Default)]
struct Copier {
    copied: HashMap<(u64, u64), PathBuf>,
    files: u64,
    bytes: u64,
}

impl Copier {
    fn tree(&mut self, from: &Path, to: &Path, skip: &[PathBuf]) -> Result<(), BackupError> {
        if skip.iter().any(|s| s == from) {
            return Ok(());
        }
        let meta = fs::symlink_metadata(from).map_err(io("cannot read", from))?;
        if meta.is_dir() {
            fs::create_dir_all(to).map_err(io("cannot create", to))?;
            fs::set_permissions(to, meta.permissions())
                .map_err(io("cannot set the mode of", to))?;
            let mut entries: Vec<_> = fs::read_dir(from)
                .map_err(io("cannot list", from))?
                .collect::<Result<_, _>>()
                .map_err(io("cannot list", from))?;
            entries.sort_by_key(fs::DirEntry::file_name);
            for entry in entries {
                self.tree(&entry.path(), &to.join(entry.file_name()), skip)?;
            }
            return Ok(());
        }
        if !meta.is_file() {
            return Ok(());
        }
        let key = (meta.dev(), meta.ino());
        if let Some(first) = self.copied.get(&key)
            && fs::hard_link(first, to).is_ok()
        {
            return Ok(());
        }
        fs::copy(from, to).map_err(io("cannot copy", from))?;
        self.files += 1;
        self.bytes += meta.len();
        if meta.nlink() > 1 {
            self.copied.insert(key, to.to_owned());
        }
        Ok(())
    }
}

fn state_repo(config: &DistributionConfig) -> String {
    match &config.state_repo.source {
        StateRepoSource::Url(url) => url.clone(),
        StateRepoSource::Path(path) => path.display().to_string(),
    }
}

/// Backs up the data of the distribution `config` describes into the new directory `to`,
/// while its server may run.
pub fn backup(config: &DistributionConfig, to: &Path) -> Result<Manifest, BackupError> {
    if to.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists already: give a new directory",
            to.display()
        )));
    }
    let staging = staging_path(to);
    let result = (|| {
        fs::create_dir_all(&staging).map_err(io("cannot create", &staging))?;
        let sqlite = match &config.store {
            StoreConfig::Sqlite { path } => {
                vupdate_store::backup_sqlite(path, &staging.join("store.sqlite"))
                    .map_err(|error| BackupError::Store { error })?;
                true
            }
            StoreConfig::Mongo { .. } => false,
        };
        let mut copier = Copier::default();
        if config.jwt_key_file.exists() {
            copier.tree(&config.jwt_key_file, &staging.join("jwt.key"), &[])?;
        }
        let data = &config.data_directory;
        let skip: Vec<PathBuf> = SKIPPED.iter().map(|s| data.join(s)).collect();
        for part in DATA_PARTS {
            if data.join(part).exists() {
                copier.tree(&data.join(part), &staging.join("data").join(part), &skip)?;
            }
        }
        let manifest = Manifest {
            format: FORMAT,
            distribution: config.name.to_string(),
            created_at: chrono::Utc::now(),
            state_repo: state_repo(config),
            sqlite,
            files: copier.files,
            bytes: copier.bytes,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Refused(format!("cannot write the manifest: {e}")))?;
        let path = staging.join("manifest.json");
        fs::write(&path, text).map_err(io("cannot write", &path))?;
        fs::rename(&staging, to).map_err(io("cannot move the backup into", to))?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Backs up as [`backup`] does, into the new zip archive `file`.
pub fn backup_to_file(config: &DistributionConfig, file: &Path) -> Result<Manifest, BackupError> {
    if file.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists already: give a new file",
            file.display()
        )));
    }
    let dir = unpacked_path(file);
    let _ = fs::remove_dir_all(&dir);
    let result = backup(config, &dir).and_then(|manifest| {
        archive::pack(&dir, file)?;
        Ok(manifest)
    });
    let _ = fs::remove_dir_all(&dir);
    result
}

/// Restores as [`restore`] does, from the zip archive `file` made by [`backup_to_file`].
pub fn restore_from_file(
    config: &DistributionConfig,
    file: &Path,
) -> Result<Manifest, BackupError> {
    let dir = unpacked_path(&config.data_directory);
    let _ = fs::remove_dir_all(&dir);
    let result = archive::unpack(file, &dir).and_then(|()| restore(config, &dir));
    let _ = fs::remove_dir_all(&dir);
    result
}

/// A working directory beside `path`, removed when done.
fn unpacked_path(path: &Path) -> PathBuf {
    beside(path, "vupdate-unpacked")
}

/// Where `path` is made before it is renamed into place.
fn staging_path(path: &Path) -> PathBuf {
    beside(path, "vupdate-partial")
}

/// The hidden name `.<name>.<suffix>` beside `path`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Whether `path` is missing or an empty directory.
fn is_empty(path: &Path) -> Result<bool, BackupError> {
    match fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(io("cannot list", path)(error)),
    }
}

/// Restores the backup `from` as the data of the distribution `config` describes; refuses
/// a data directory a server runs on or that holds anything.
pub fn restore(config: &DistributionConfig, from: &Path) -> Result<Manifest, BackupError> {
    let path = from.join("manifest.json");
    let text = fs::read(&path).map_err(io("cannot read the backup's manifest", &path))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        BackupError::Refused(format!(
            "{}: not a vupdate backup manifest ({e})",
            path.display()
        ))
    })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Refused(format!(
            "{}: backup format {} is not the format {FORMAT} this program reads",
            path.display(),
            manifest.format
        )));
    }
    let data = &config.data_directory;
    if server_running(data)? {
        return Err(BackupError::Refused(format!(
            "a server runs on {}: stop it first (a restore never overwrites a running server's data)",
            data.display()
        )));
    }
    if !is_empty(data)? {
        return Err(BackupError::Refused(format!(
            "{} holds data already: restore into an empty or new directory",
            data.display()
        )));
    }
    let sqlite_path = match (&config.store, manifest.sqlite) {
        (StoreConfig::Sqlite { path }, true) => Some(path.clone()),
        (StoreConfig::Sqlite { .. }, false) => {
            return Err(BackupError::Refused(
                "the backup holds no SQLite store (it was made with MongoDB): configure the same MongoDB".to_owned(),
            ));
        }
        (StoreConfig::Mongo { .. }, _) => None,
    };
    for outside in sqlite_path.iter().chain([&config.jwt_key_file]) {
        if !outside.starts_with(data) && outside.exists() {
            return Err(BackupError::Refused(format!(
                "{} exists already: a restore never overwrites data",
                outside.display()
            )));
        }
    }
    let staging = staging_path(data);
    let _ = fs::remove_dir_all(&staging);
    let result = (|| {
        let mut copier = Copier::default();
        let inside = |path: &Path| match path.strip_prefix(data) {
            Ok(rest) => staging.join(rest),
            Err(_) => path.to_owned(),
        };
        if from.join("data").exists() {
            copier.tree(&from.join("data"), &staging, &[])?;
        } else {
            fs::create_dir_all(&staging).map_err(io("cannot create", &staging))?;
        }
        if let Some(path) = &sqlite_path {
            let target = inside(path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
            }
            copier.tree(&from.join("store.sqlite"), &target, &[])?;
        }
        if from.join("jwt.key").exists() {
            copier.tree(&from.join("jwt.key"), &inside(&config.jwt_key_file), &[])?;
        }
        if data.exists() {
            fs::remove_dir(data).map_err(io("cannot replace the empty directory", data))?;
        } else if let Some(parent) = data.parent() {
            fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
        }
        fs::rename(&staging, data).map_err(io("cannot move the restored data into", data))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| manifest)
}
