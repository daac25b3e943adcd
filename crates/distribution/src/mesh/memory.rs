//! What a provider's workers keep across restarts, as small JSON files under
//! `<dataDirectory>/mesh/`, each replaced whole (written beside itself and renamed):
//! `<provider>.json` says which offer was acted on (so a restart never commits or proposes
//! it twice) and the proposal waiting for review; `<provider>.upload.json` holds the upload
//! cursors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A change pushed to a branch for review (`autoUpdate: pullRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// The branch, `vupdate/<provider>/<revision>`.
    pub branch: String,
    /// Its commit.
    pub commit: String,
    /// The provider's revision it takes.
    pub revision: String,
    /// Service -> client version it desires.
    pub versions: BTreeMap<String, String>,
}

/// The offer side's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferMemory {
    /// The provider's revision whose offer was last committed or proposed.
    pub acted: Option<String>,
    /// The last proposal.
    pub proposal: Option<Proposal>,
}

/// The upload side's memory: how far states and fault reports were sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursors {
    /// The `_sequence` of the last state record the provider acknowledged.
    pub states: i64,
    /// The `_sequence` of the last fault report the provider acknowledged.
    pub faults: i64,
}

/// The files of one provider.
#[derive(Debug, Clone)]
pub struct MemoryFiles {
    offer: PathBuf,
    upload: PathBuf,
}

impl MemoryFiles {
    /// The files of `provider` under `data_directory/mesh` (created when missing).
    pub fn new(data_directory: &Path, provider: &str) -> std::io::Result<MemoryFiles> {
        let dir = data_directory.join("mesh");
        std::fs::create_dir_all(&dir)?;
        Ok(MemoryFiles {
            offer: dir.join(format!("{provider}.json")),
            upload: dir.join(format!("{provider}.upload.json")),
        })
    }

    /// The offer side's memory (empty when there is none yet).
    pub fn offer(&self) -> OfferMemory {
        load(&self.offer)
    }

    /// Replaces the offer side's memory.
    pub fn set_offer(&self, memory: &OfferMemory) -> std::io::Result<()> {
        save(&self.offer, memory)
    }

    /// The upload cursors (0 when nothing was sent yet).
    pub fn cursors(&self) -> Cursors {
        load(&self.upload)
    }

    /// Replaces the upload cursors.
    pub fn set_cursors(&self, cursors: &Cursors) -> std::io::Result<()> {
        save(&self.upload, cursors)
    }
}

fn load<T: DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(file = %path.display(), %error, "ignoring an unreadable memory file; starting afresh");
            T::default()
        }),
        Err(_) => T::default(),
    }
}

fn save<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_survives_a_restart_and_a_torn_file_starts_afresh() {
        let data = tempfile::TempDir::new().expect("dir");
        let files = MemoryFiles::new(data.path(), "jetto").expect("files");
        assert_eq!(files.offer(), OfferMemory::default());
        let memory = OfferMemory {
            acted: Some("abc".into()),
            proposal: None,
        };
        files.set_offer(&memory).expect("save");
        files
            .set_cursors(&Cursors {
                states: 7,
                faults: 2,
            })
            .expect("save");
        let again = MemoryFiles::new(data.path(), "jetto").expect("files");
        assert_eq!(again.offer(), memory);
        assert_eq!(again.cursors().states, 7);
        std::fs::write(data.path().join("mesh/jetto.upload.json"), "{\"states\": 9").expect("torn");
        assert_eq!(again.cursors(), Cursors::default());
    }
}
