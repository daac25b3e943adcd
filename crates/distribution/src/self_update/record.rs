//! `<data>/self-update.json`: which client version of `distribution` this server runs, the
//! swap under way (the marker the new binary confirms or the next start rolls back), the
//! last self-update's outcome, and the version refused until the desired one changes.
//! Written whole through a temporary file renamed into place, so a crash leaves the old
//! file or the new one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SelfUpdateError;

/// The file's name in the data directory.
pub const RECORD_FILE: &str = "self-update.json";

/// Everything self-update remembers between processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfUpdateRecord {
    /// The client version of `distribution` whose binary runs (none: installed by hand).
    pub running: Option<String>,
    /// A swap whose new binary has not confirmed itself yet.
    pub pending: Option<Pending>,
    /// How the last self-update ended.
    pub last: Option<Outcome>,
    /// A version that failed, not tried again while it stays the desired one.
    pub refused: Option<String>,
    /// The replicas' turn this server took for its swap ([`super::turn`]), released by
    /// whichever process ends the swap; absent on a sole server and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<HeldTurn>,
}

/// The store's self-update lease as taken for one swap: enough for another process of this
/// server (the new binary, or the previous one after a rollback) to release it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldTurn {
    /// The holder id of the process that took it.
    pub holder: String,
    /// Its fencing token.
    pub token: i64,
}

/// A swap under way: written before the `execve`, cleared by the new binary once healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The version swapped in.
    pub version: String,
    /// The version it replaced (none: installed by hand).
    pub from: Option<String>,
    /// The program's path (the new binary now).
    pub binary: PathBuf,
    /// The binary it replaced, put back on a rollback.
    pub previous: PathBuf,
    /// The new binary's inode: a start that finds another file at `binary` knows the swap
    /// was cut before its rename.
    pub inode: u64,
    /// When the swap began (the old process stopped taking requests).
    pub swapped_at: DateTime<Utc>,
    /// The new binary must be healthy before this, or it is rolled back.
    pub deadline: DateTime<Utc>,
    /// Set by the new binary's first start: a second start means it died unconfirmed.
    pub started: bool,
}

/// How a self-update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeKind {
    /// The new binary serves.
    Succeeded,
    /// The new binary could not be fetched, verified or staged; the old one runs on.
    FetchFailed,
    /// The new binary failed its probe and was never swapped in.
    ProbeFailed,
    /// The new binary could not be put in place (e.g. a read-only directory); the old
    /// one runs on.
    SwapFailed,
    /// The new binary did not become healthy; the previous one was put back.
    RolledBack,
}

/// The end of one self-update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The version it went to.
    pub version: String,
    /// The version it came from.
    pub from: Option<String>,
    /// How it ended.
    pub kind: OutcomeKind,
    /// Why it failed, or what happened.
    pub message: String,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// What self-update should do about the desired version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Nothing: none desired, already running, or refused while it stays desired.
    Nothing,
    /// Install this version.
    Update(String),
}

impl SelfUpdateRecord {
    /// What to do when `desired` is the desired client version of `distribution`; a
    /// refusal is forgotten as soon as another version is desired.
    pub fn want(&mut self, desired: Option<&str>) -> Want {
        if self.refused.is_some() && self.refused.as_deref() != desired {
            self.refused = None;
        }
        if self.pending.is_some() {
            // A swapped-in binary has not confirmed yet: it is not swapped again meanwhile.
            return Want::Nothing;
        }
        match desired {
            None => Want::Nothing,
            Some(version) if self.running.as_deref() == Some(version) => Want::Nothing,
            Some(version) if self.refused.as_deref() == Some(version) => Want::Nothing,
            Some(version) => Want::Update(version.to_owned()),
        }
    }

    /// Records a failure to reach `version`, refused until another version is desired.
    pub fn fail(&mut self, version: &str, kind: OutcomeKind, message: String, at: DateTime<Utc>) {
        self.last = Some(Outcome {
            version: version.to_owned(),
            from: self.running.clone(),
            kind,
            message,
            at,
        });
        self.refused = Some(version.to_owned());
    }
}

/// The record in `data_directory` (empty when there is none yet).
pub fn load(data_directory: &Path) -> Result<SelfUpdateRecord, SelfUpdateError> {
    let path = data_directory.join(RECORD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| SelfUpdateError::Record {
            path,
            error: error.to_string(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(SelfUpdateRecord::default())
        }
        Err(error) => Err(SelfUpdateError::Record {
            path,
            error: error.to_string(),
        }),
    }
}

/// Writes `record` into `data_directory`, whole or not at all.
pub fn save(data_directory: &Path, record: &SelfUpdateRecord) -> Result<(), SelfUpdateError> {
    let path = data_directory.join(RECORD_FILE);
    let fail = |error: std::io::Error| SelfUpdateError::Record {
        path: path.clone(),
        error: error.to_string(),
    };
    let json = serde_json::to_vec_pretty(record).expect("the record serialises");
    let mut file = tempfile::NamedTempFile::new_in(data_directory).map_err(fail)?;
    file.write_all(&json).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(&path).map_err(|error| fail(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(running: Option<&str>, refused: Option<&str>) -> SelfUpdateRecord {
        SelfUpdateRecord {
            running: running.map(str::to_owned),
            refused: refused.map(str::to_owned),
            ..SelfUpdateRecord::default()
        }
    }

    #[test]
    fn a_version_is_wanted_unless_it_runs_or_was_refused_while_it_stays_desired() {
        let update = |v: &str| Want::Update(v.to_owned());
        for (mut record, desired, want, refused_after) in [
            (record(None, None), None, Want::Nothing, None),
            (record(None, None), Some("a-1"), update("a-1"), None),
            (record(Some("a-1"), None), Some("a-1"), Want::Nothing, None),
            (record(Some("a-1"), None), Some("a-2"), update("a-2"), None),
            (
                record(Some("a-1"), Some("a-2")),
                Some("a-2"),
                Want::Nothing,
                Some("a-2"),
            ),
            // Another desired version forgets the refusal, so going back retries it.
            (
                record(Some("a-1"), Some("a-2")),
                Some("a-3"),
                update("a-3"),
                None,
            ),
            (record(Some("a-1"), Some("a-2")), None, Want::Nothing, None),
            (
                SelfUpdateRecord {
                    pending: Some(Pending {
                        version: "a-2".into(),
                        from: Some("a-1".into()),
                        binary: "/bin/vupdate".into(),
                        previous: "/bin/vupdate.previous".into(),
                        inode: 1,
                        swapped_at: DateTime::UNIX_EPOCH,
                        deadline: DateTime::UNIX_EPOCH,
                        started: true,
                    }),
                    ..record(Some("a-1"), None)
                },
                Some("a-2"),
                Want::Nothing,
                None,
            ),
        ] {
            assert_eq!(record.want(desired), want, "{record:?} {desired:?}");
            assert_eq!(record.refused.as_deref(), refused_after, "{desired:?}");
        }
    }

    #[test]
    fn the_record_is_written_whole_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("none"), SelfUpdateRecord::default());
        let mut written = record(Some("acme-1.0.0"), None);
        written.fail(
            "acme-2.0.0",
            OutcomeKind::ProbeFailed,
            "exit 3".into(),
            Utc::now(),
        );
        save(dir.path(), &written).expect("save");
        assert_eq!(load(dir.path()).expect("load"), written);
        std::fs::write(dir.path().join(RECORD_FILE), b"{").expect("corrupt");
        let error = load(dir.path()).expect_err("corrupt");
        assert!(error.to_string().contains(RECORD_FILE), "{error}");
    }
}
