//! The install journal, `journal.json`: what is installed, what was before it, which
//! version failed, and the install under way with its step. It is the only state an
//! install keeps between steps, and it is replaced atomically (write a temporary file,
//! sync it, rename it over, sync the folder), so after a crash it holds either the state
//! before a step's write or after it, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::version::ClientVersion;

use crate::Error;
use crate::state::UpdateError;

/// A version in a slot, and when it was installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    /// The version.
    pub version: ClientVersion,
    /// When it was swapped into `current/`.
    pub install_time: DateTime<Utc>,
}

/// A version that is not installed again until the desired version changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedVersion {
    /// The version.
    pub version: ClientVersion,
    /// When it failed.
    pub time: DateTime<Utc>,
}

/// The steps of an install, in order; the rollback steps follow a failed start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Unpack the image to `new/` (the old version keeps running).
    Unpack,
    /// Run `installCommands` in `new/` (the old version keeps running).
    InstallCommands,
    /// Stop the old version's process tree.
    Stop,
    /// Move the old version's `writeLogs` files to `log.history/`.
    MoveLogs,
    /// Make `new/` the `current/` one and the old one `previous/`.
    Swap,
    /// Run `postInstallCommands` in `current/`.
    PostInstall,
    /// Start the new version and watch its start window.
    Start,
    /// Stop the new version, which failed.
    RollbackStop,
    /// Move its logs to `log.history/`, marked failed.
    RollbackMoveLogs,
    /// Put `previous/` back as `current/`.
    RollbackSwap,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 10] = [
        Step::Unpack,
        Step::InstallCommands,
        Step::Stop,
        Step::MoveLogs,
        Step::Swap,
        Step::PostInstall,
        Step::Start,
        Step::RollbackStop,
        Step::RollbackMoveLogs,
        Step::RollbackSwap,
    ];

    /// The step's name as written in the journal.
    pub fn name(self) -> &'static str {
        match self {
            Step::Unpack => "unpack",
            Step::InstallCommands => "installCommands",
            Step::Stop => "stop",
            Step::MoveLogs => "moveLogs",
            Step::Swap => "swap",
            Step::PostInstall => "postInstall",
            Step::Start => "start",
            Step::RollbackStop => "rollbackStop",
            Step::RollbackMoveLogs => "rollbackMoveLogs",
            Step::RollbackSwap => "rollbackSwap",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An install under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The version being installed.
    pub to: ClientVersion,
    /// The step it is at.
    pub step: Step,
    /// When it began (names its `log.history` folder, so a redone move goes to the same).
    pub started: DateTime<Utc>,
    /// Start windows the new version failed in a row.
    pub start_failures: u32,
}

/// The whole journal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// The version in `current/` once the running install (if any) is done or undone.
    pub current: Option<Installed>,
    /// The version in `previous/`, kept for rollback.
    pub previous: Option<Installed>,
    /// The last version that failed, not retried while it stays desired.
    pub failed: Option<FailedVersion>,
    /// The last install error, cleared by a successful install.
    pub update_error: Option<UpdateError>,
    /// The install under way.
    pub task: Option<Task>,
}

impl Journal {
    /// Reads the journal at `path`; a missing file is an empty journal (nothing installed).
    pub fn load(path: &Path) -> Result<Journal, Error> {
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| Error::Journal {
                path: path.to_owned(),
                message: error.to_string(),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(error) => Err(Error::io("read", path)(error)),
        }
    }

    /// Replaces the journal at `path` atomically and durably.
    pub fn store(&self, path: &Path) -> Result<(), Error> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("the journal serializes");
        let mut file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::io("write", &tmp))?;
        fs::rename(&tmp, path).map_err(Error::io("rename", &tmp))?;
        sync_parent(path)
    }

    /// The journal as a new process finds it: a step that cannot be resumed halfway is
    /// rewound (install commands may have half-changed `new/`, so it is unpacked again).
    pub fn recovered(mut self) -> Journal {
        if let Some(task) = &mut self.task
            && task.step == Step::InstallCommands
        {
            task.step = Step::Unpack;
        }
        self
    }
}

/// Syncs the folder holding `path`, so a rename in it survives a power cut.
pub(crate) fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(Error::io("sync", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_back_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.json");
        assert_eq!(Journal::load(&path).expect("load"), Journal::default());
        let journal = Journal {
            current: Some(Installed {
                version: "acme-1.0.0".parse().expect("version"),
                install_time: Utc::now(),
            }),
            task: Some(Task {
                to: "acme-1.0.1_2".parse().expect("version"),
                step: Step::Swap,
                started: Utc::now(),
                start_failures: 1,
            }),
            ..Journal::default()
        };
        journal.store(&path).expect("store");
        assert_eq!(Journal::load(&path).expect("load"), journal);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_broken_journal_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.json");
        fs::write(&path, "{ not json").expect("write");
        let error = Journal::load(&path).expect_err("broken");
        assert!(error.to_string().contains("journal.json"), "{error}");
    }

    #[test]
    fn only_install_commands_are_rewound() {
        for step in Step::ALL {
            let journal = Journal {
                task: Some(Task {
                    to: "acme-2.0.0".parse().expect("version"),
                    step,
                    started: Utc::now(),
                    start_failures: 0,
                }),
                ..Journal::default()
            };
            let recovered = journal.recovered().task.expect("task").step;
            let expected = if step == Step::InstallCommands {
                Step::Unpack
            } else {
                step
            };
            assert_eq!(recovered, expected);
        }
    }
}
