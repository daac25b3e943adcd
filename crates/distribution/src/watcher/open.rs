//! Opening the watched repo: in place, or as the state crate's bare clone of a remote.

use std::path::Path;

use vupdate_state::StateRepo;

use super::{RepoSource, WatchError};

/// Opens the repo `source` names on `branch`, cloning it first when needed; blocking.
pub(super) fn open(source: &RepoSource, branch: &str) -> Result<StateRepo, WatchError> {
    let (path, opened) = match source {
        RepoSource::Local(path) => (path, StateRepo::open(path, branch)),
        RepoSource::Remote { url, directory } => {
            (directory, StateRepo::open_clone(url, directory, branch))
        }
    };
    opened.map_err(|source| WatchError::Open {
        path: Path::to_path_buf(path),
        error: Box::new(source),
    })
}
