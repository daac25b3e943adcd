//! [`StateError`]: everything that can go wrong reading, editing or syncing a state repo.

use std::path::PathBuf;

use vupdate_core::error_chain::Chain;

use crate::problems::ValidationErrors;

/// A boxed underlying error (from gix or the OS); its type is not part of the API.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a state repo operation failed; each variant names the path, branch or commit involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The path is not a Git repository, or it could not be opened.
    #[error("cannot open the state repo at {path}: {}", Chain(&**error))]
    Open {
        /// The path given.
        path: PathBuf,
        /// Why.
        error: Cause,
    },
    /// A file or directory could not be read or written.
    #[error("cannot access {path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The branch name is not a valid Git branch name.
    #[error("`{branch}` is not a valid branch name: {reason}")]
    BadBranchName {
        /// The name given.
        branch: String,
        /// What Git says is wrong with it.
        reason: String,
    },
    /// The branch does not exist in the repository.
    #[error(
        "branch `{branch}` does not exist in the state repo at {path} (fetch it, or create it with a first commit)"
    )]
    BranchNotFound {
        /// The branch.
        branch: String,
        /// The repository.
        path: PathBuf,
    },
    /// The remote is not configured in the repository.
    #[error(
        "remote `{remote}` is not configured in the state repo at {path} (see `git remote -v`)"
    )]
    RemoteNotFound {
        /// The remote name.
        remote: String,
        /// The repository.
        path: PathBuf,
    },
    /// An operation needs a remote and none was set with `StateRepo::with_remote`.
    #[error("no remote is set for the state repo at {path}")]
    NoRemote {
        /// The repository.
        path: PathBuf,
    },
    /// A revision does not name a commit of the repository.
    #[error("revision `{rev}` does not name a commit: {reason}")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
        /// Why it could not be resolved.
        reason: String,
    },
    /// The files at a commit do not validate.
    #[error("the state at commit {commit} is not valid:\n{errors}")]
    InvalidCommit {
        /// The commit id (hex).
        commit: String,
        /// Every problem found.
        errors: ValidationErrors,
    },
    /// The files of a directory do not validate.
    #[error("the state in {path} is not valid:\n{errors}")]
    InvalidDirectory {
        /// The directory.
        path: PathBuf,
        /// Every problem found.
        errors: ValidationErrors,
    },
    /// An edit or revert would produce a state that does not validate; nothing was written.
    #[error(
        "the change on top of commit {parent} would make the state invalid, so nothing was written:\n{errors}"
    )]
    InvalidEdit {
        /// The commit the change was made on (hex).
        parent: String,
        /// Every problem the changed state would have.
        errors: ValidationErrors,
    },
    /// The branch moved since the revision the change was made on: reload and try again.
    #[error(
        "the state changed since you read it: branch tip is {actual}, not {expected}; reload and make the change again"
    )]
    Stale {
        /// The revision the caller based the change on (hex).
        expected: String,
        /// The branch tip now (hex).
        actual: String,
    },
    /// A revert does not apply cleanly to the branch tip.
    #[error("reverting commit {commit} conflicts with later changes in: {}; edit those files by hand instead", paths.join(", "))]
    RevertConflict {
        /// The commit to revert (hex).
        commit: String,
        /// The files in conflict.
        paths: Vec<String>,
    },
    /// A merge commit was given to `revert` without a mainline.
    #[error(
        "commit {commit} is a merge of {parents} parents: use `revert_merge` with the mainline parent (1 for the branch it was merged into)"
    )]
    RevertMergeCommit {
        /// The merge commit (hex).
        commit: String,
        /// How many parents it has.
        parents: usize,
    },
    /// The mainline given does not fit the commit's parents.
    #[error(
        "commit {commit} has {parents} parent(s), so mainline {mainline} does not exist (they are numbered from 1)"
    )]
    BadMainline {
        /// The commit (hex).
        commit: String,
        /// The mainline given.
        mainline: usize,
        /// How many parents the commit has.
        parents: usize,
    },
    /// A root commit has no parent to revert to.
    #[error("commit {commit} has no parent, so there is nothing to revert it to")]
    RevertRootCommit {
        /// The commit (hex).
        commit: String,
    },
    /// Cloning a remote state repo failed; nothing was left at `directory`.
    #[error("cannot clone the state repo {url} into {}: {reason}", directory.display())]
    Clone {
        /// The remote's URL.
        url: String,
        /// Where the clone was to be kept.
        directory: PathBuf,
        /// What git said.
        reason: String,
    },
    /// Fetching from the remote failed.
    #[error("fetching branch `{branch}` from remote `{remote}` failed: {reason}")]
    Fetch {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
        /// Why.
        reason: String,
    },
    /// The local branch has commits the remote does not; it is left alone.
    #[error(
        "local branch `{branch}` ({local}) is not behind `{remote}/{branch}` ({remote_tip}); it holds commits the remote lacks: reset it to the remote after checking them"
    )]
    Diverged {
        /// The branch.
        branch: String,
        /// The remote.
        remote: String,
        /// The local tip (hex).
        local: String,
        /// The remote tip (hex).
        remote_tip: String,
    },
    /// The remote refused the push; the local branch and work tree are as before.
    #[error(
        "pushing commit {commit} to `{remote}` branch `{branch}` was rejected; nothing changed locally: {reason}"
    )]
    PushRejected {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
        /// The commit that was not pushed (hex).
        commit: String,
        /// What git said.
        reason: String,
    },
    /// The checked-out work tree could not be brought to the new commit (local changes to
    /// the files the change touches); nothing was changed.
    #[error(
        "the work tree at {workdir} has local changes that the change would overwrite; commit or discard them first: {reason}"
    )]
    WorkTree {
        /// The work tree.
        workdir: PathBuf,
        /// What git said.
        reason: String,
    },
    /// The folder `git` was to run in does not exist (or is not a folder).
    #[error("cannot run `git {args}` in {}: no such folder", dir.display())]
    GitDirectory {
        /// The arguments.
        args: String,
        /// The folder.
        dir: PathBuf,
    },
    /// The `git` program could not be run.
    #[error("cannot run `git {args}`: {error} (is git installed and on PATH?)")]
    GitProgram {
        /// The arguments.
        args: String,
        /// Why.
        error: std::io::Error,
    },
    /// A Git operation failed in a way not covered above.
    #[error("{operation} failed in the state repo at {path}: {}", Chain(&**error))]
    Git {
        /// What was being done, e.g. "reading commit 1a2b3c".
        operation: String,
        /// The repository.
        path: PathBuf,
        /// The underlying error.
        error: Cause,
    },
}

impl StateError {
    /// Whether the error comes from what a person gave (a path, branch, revision, edit or
    /// commit) rather than from the machine or the network: a command exits with 2 then.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StateError::InvalidCommit { .. }
                | StateError::InvalidDirectory { .. }
                | StateError::InvalidEdit { .. }
                | StateError::Stale { .. }
                | StateError::UnknownRevision { .. }
                | StateError::BadBranchName { .. }
                | StateError::BranchNotFound { .. }
                | StateError::RemoteNotFound { .. }
                | StateError::RevertConflict { .. }
                | StateError::RevertMergeCommit { .. }
                | StateError::BadMainline { .. }
                | StateError::RevertRootCommit { .. }
        )
    }
}
