//! [`FileSet`]: the state repo's files in memory (path -> bytes), the one input of
//! [`State::parse`](crate::State::parse), filled from a directory, a commit, or a test.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::StateError;

/// The marker file every state repo has.
pub const MARKER: &str = "vupdate.yaml";

/// The files the schema defines at the top level of the repository.
pub const TOP_LEVEL_FILES: &[&str] = &[
    MARKER,
    "common.yaml",
    "profiles.yaml",
    "providers.yaml",
    "consumers.yaml",
    "tested.yaml",
    "rollout.yaml",
    "policy.yaml",
];

/// The folders whose whole content belongs to the schema (anything else in them is an error).
pub const SCHEMA_FOLDERS: &[&str] = &["desired", "services"];

/// A set of files keyed by their path relative to the repository root (`/` separators).
///
/// Loaders put in it only the paths the schema reads (see [`FileSet::is_schema_path`]), so a
/// README, CI configuration or anything else in the repository is never parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<String, Vec<u8>>,
}

impl FileSet {
    /// An empty set.
    pub fn new() -> Self {
        FileSet::default()
    }

    /// Adds or replaces a file, returning the old content.
    pub fn insert(
        &mut self,
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        self.files.insert(path.into(), bytes.into())
    }

    /// Removes a file, returning its content.
    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.files.remove(path)
    }

    /// The content of a file.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// All files in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files
            .iter()
            .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
    }

    /// How many files the set holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether a loader should read `path`: a top-level schema file, or any non-hidden file
    /// below `desired/` or `services/` (so a misplaced file there is reported, not ignored).
    pub fn is_schema_path(path: &str) -> bool {
        if TOP_LEVEL_FILES.contains(&path) {
            return true;
        }
        let mut parts = path.split('/');
        let top = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        SCHEMA_FOLDERS.contains(&top)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|part| !part.is_empty() && !part.starts_with('.'))
    }

    /// Reads the schema's files from a directory (a work tree); `.git` and hidden files are skipped.
    pub fn from_dir(root: &Path) -> Result<FileSet, StateError> {
        let mut set = FileSet::new();
        for name in TOP_LEVEL_FILES {
            let path = root.join(name);
            if path.is_file() {
                set.insert(*name, read(&path)?);
            }
        }
        for folder in SCHEMA_FOLDERS {
            let dir = root.join(folder);
            if dir.is_dir() {
                set.read_folder(&dir, folder)?;
            }
        }
        Ok(set)
    }

    fn read_folder(&mut self, dir: &Path, prefix: &str) -> Result<(), StateError> {
        let entries = std::fs::read_dir(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            error: source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| StateError::Io {
                path: dir.to_path_buf(),
                error: source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = format!("{prefix}/{name}");
            if path.is_dir() {
                self.read_folder(&path, &relative)?;
            } else {
                self.insert(relative, read(&path)?);
            }
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, StateError> {
    std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        error: source,
    })
}

impl<P: Into<String>, B: Into<Vec<u8>>> FromIterator<(P, B)> for FileSet {
    fn from_iter<I: IntoIterator<Item = (P, B)>>(iter: I) -> Self {
        let mut set = FileSet::new();
        for (path, bytes) in iter {
            set.insert(path, bytes);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_paths_are_the_top_level_files_and_the_two_folders() {
        for (path, expected) in [
            ("vupdate.yaml", true),
            ("profiles.yaml", true),
            ("README.md", false),
            (".gitlab-ci.yml", false),
            ("services/api.yaml", true),
            ("services/api.yml", true),
            ("services/nested/api.yaml", true),
            ("services/.gitkeep", false),
            ("desired/developer.yaml", true),
            ("desired", false),
            ("docs/services/api.yaml", false),
        ] {
            assert_eq!(FileSet::is_schema_path(path), expected, "{path}");
        }
    }
}
