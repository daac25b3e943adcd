//! Opening the watched repo: in place, or as the state crate's bare clone of a remote.

use std::path::Path;

use vupdate_state::{Recovery, StateRepo};

use super::{RepoSource, WatchError};

/// Opens the repo `source` names on `branch`, cloning it first when needed; blocking.
pub(super) fn open(source: &RepoSource, branch: &str) -> Result<StateRepo, WatchError> {
    let (path, opened) = match source {
        RepoSource::Local(path) => (path, StateRepo::open(path, branch)),
        RepoSource::Remote { url, directory } => {
            (directory, StateRepo::open_clone(url, directory, branch))
        }
    };
    let open_error = |source| WatchError::Open {
        path: Path::to_path_buf(path),
        error: Box::new(source),
    };
    let repo = opened.map_err(open_error)?;
    // An edit a crash cut between the work tree and the branch is made whole before
    // anything reads or edits the repo. Reading never needs the work tree, so a recovery
    // that fails (a person changed the touched file since) is said, not fatal.
    match repo.recover_interrupted_edit() {
        Ok(None | Some(Recovery::Completed { .. })) => {}
        Err(error) => tracing::error!(
            path = %path.display(), %error,
            "cannot put back the work tree of an edit interrupted by a crash; edits are refused until `git status` there is clean"
        ),
        Ok(Some(Recovery::RolledBack { branch, commit })) => tracing::warn!(
            path = %path.display(), %branch, %commit,
            "an edit interrupted by a crash was never acknowledged: the work tree is back at the branch"
        ),
        Ok(Some(Recovery::LeftAlone { branch, commit })) => tracing::error!(
            path = %path.display(), %branch, %commit,
            "an edit was interrupted by a crash and the branch has moved since: the work tree was left as it is; check it with `git status`"
        ),
    }
    Ok(repo)
}
