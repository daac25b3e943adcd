//! [`StateRepo`]: the state repo as a Git repository, bare or with a work tree.
//!
//! Reading never touches a work tree: files are read from the commit's tree, so any
//! revision can be loaded while the branch moves. Writing builds blobs, a tree and a commit
//! with gix, then moves the branch with a compare-and-swap (see [`StateRepo::edit`]).
//!
//! gix's `Repository` is not `Sync`; a `StateRepo` keeps the thread-safe handle and makes a
//! thread-local one per call, so it can be shared (`Arc<StateRepo>`) and used from
//! `spawn_blocking`. Every call blocks.

mod clone;
mod git;
mod history;
mod journal;
mod propose;
mod read;
mod remote;
mod revision;
mod write;

use std::path::{Path, PathBuf};

pub use journal::Recovery;
pub use revision::{Author, HistoryEntry, Revision};

use crate::error::StateError;
use crate::model::State;

/// A state repo on disk, the branch that holds the desired state, and optionally the
/// remote that branch is shared through.
pub struct StateRepo {
    repo: gix::ThreadSafeRepository,
    path: PathBuf,
    branch: String,
    reference: String,
    remote: Option<String>,
}

impl std::fmt::Debug for StateRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRepo")
            .field("path", &self.path)
            .field("branch", &self.branch)
            .field("remote", &self.remote)
            .finish()
    }
}

impl StateRepo {
    /// Opens the repository at `path` (a work tree, its `.git`, or a bare repository) to
    /// work on `branch`. The branch need not exist yet (a later [`fetch`](Self::fetch) can
    /// create it from the remote).
    pub fn open(path: impl AsRef<Path>, branch: &str) -> Result<StateRepo, StateError> {
        let path = path.as_ref().to_path_buf();
        let reference = branch_reference(branch)?;
        let repo = gix::open(&path).map_err(|error| StateError::Open {
            path: path.clone(),
            error: Box::new(error),
        })?;
        Ok(StateRepo {
            repo: repo.into_sync(),
            path,
            branch: branch.to_owned(),
            reference,
            remote: None,
        })
    }

    /// Shares the branch through the remote `name` (e.g. `origin`): edits and reverts fetch
    /// from it first and push to it, and [`fetch`](Self::fetch) brings the branch up to it.
    pub fn with_remote(mut self, name: &str) -> Result<StateRepo, StateError> {
        let repo = self.local();
        if repo.find_remote(name).is_err() {
            return Err(StateError::RemoteNotFound {
                remote: name.to_owned(),
                path: self.path.clone(),
            });
        }
        self.remote = Some(name.to_owned());
        Ok(self)
    }

    /// The path the repository was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Git directory that holds the repository's refs (`<work tree>/.git`, the
    /// repository itself when bare, the main one of a linked work tree): a change of the
    /// branch shows as a change under its `refs/` or of its `packed-refs`.
    pub fn refs_directory(&self) -> PathBuf {
        self.repo.to_thread_local().common_dir().to_path_buf()
    }

    /// The branch that holds the desired state.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The remote set with [`with_remote`](Self::with_remote), if any.
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// The commit a revision names: a commit id (full or abbreviated), a branch, a tag, or
    /// any Git revision expression such as `main~2`.
    pub fn resolve(&self, rev: &str) -> Result<Revision, StateError> {
        let repo = self.local();
        let id = self.resolve_id(&repo, rev)?;
        self.revision(&repo, id)
    }

    /// The branch tip, as the local branch has it (call [`fetch`](Self::fetch) first to
    /// catch up with the remote).
    pub fn head(&self) -> Result<Revision, StateError> {
        let repo = self.local();
        let tip = self.tip(&repo)?;
        self.revision(&repo, tip)
    }

    /// Loads and validates the state at a revision, reading the commit's tree (no checkout).
    pub fn load(&self, rev: &str) -> Result<State, StateError> {
        let repo = self.local();
        let id = self.resolve_id(&repo, rev)?;
        let tree = self.tree_of(&repo, id)?;
        let files = self.files_in_tree(&repo, tree)?;
        State::parse(&files).map_err(|errors| StateError::InvalidCommit {
            commit: id.to_string(),
            errors,
        })
    }

    fn local(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        // Loading reads thousands of small blobs and trees; a cache avoids re-decoding.
        repo.object_cache_size_if_unset(8 * 1024 * 1024);
        repo
    }

    /// Wraps a gix error with what was being done.
    fn git_error<E>(&self, operation: impl Into<String>) -> impl FnOnce(E) -> StateError + '_
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let operation = operation.into();
        move |error| StateError::Git {
            operation,
            path: self.path.clone(),
            error: Box::new(error),
        }
    }
}

/// The reference of `branch` (`refs/heads/<branch>`), refused when Git would refuse the name.
fn branch_reference(branch: &str) -> Result<String, StateError> {
    let reference = format!("refs/heads/{branch}");
    gix::validate::reference::name(reference.as_str().into()).map_err(|error| {
        StateError::BadBranchName {
            branch: branch.to_owned(),
            reason: error.to_string(),
        }
    })?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_repo_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::StateRepo>();
    }
}
