//! Opening the watched repo: in place, or as a bare clone of a remote made on first start.
//!
//! A remote repo is kept as `git clone --bare`: no work tree to keep in step, and
//! [`StateRepo::fetch`] fast-forwards the local branch itself. A bare clone has no fetch
//! refspec, so the usual one is added to make `origin/<branch>` tracking refs normal.

use std::path::Path;
use std::process::Command;

use vupdate_state::StateRepo;

use super::{RepoSource, WatchError};

/// Opens the repo `source` names on `branch`, cloning it first when needed; blocking.
pub(super) fn open(source: &RepoSource, branch: &str) -> Result<StateRepo, WatchError> {
    let open_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WatchError::Open {
            path,
            source: Box::new(source),
        }
    };
    match source {
        RepoSource::Local(path) => StateRepo::open(path, branch).map_err(open_error(path)),
        RepoSource::Remote { url, directory } => {
            if !directory.exists() {
                clone(url, directory)?;
            }
            StateRepo::open(directory, branch)
                .and_then(|repo| repo.with_remote("origin"))
                .map_err(open_error(directory))
        }
    }
}

fn clone(url: &str, directory: &Path) -> Result<(), WatchError> {
    let fail = |reason: String| WatchError::Clone {
        url: url.to_owned(),
        directory: directory.to_path_buf(),
        reason,
    };
    tracing::info!(%url, directory = %directory.display(), "cloning the state repo");
    // Clone next to the target and rename, so a failed clone leaves no half repository
    // that the next start would take for a good one.
    let partial = directory.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| fail(e.to_string()))?;
    }
    if let Some(parent) = directory.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    git(&[
        "clone".as_ref(),
        "--quiet".as_ref(),
        "--bare".as_ref(),
        url.as_ref(),
        partial.as_os_str(),
    ])
    .map_err(fail)?;
    git(&[
        "-C".as_ref(),
        partial.as_os_str(),
        "config".as_ref(),
        "remote.origin.fetch".as_ref(),
        "+refs/heads/*:refs/remotes/origin/*".as_ref(),
    ])
    .map_err(fail)?;
    std::fs::rename(&partial, directory).map_err(|e| fail(e.to_string()))
}

fn git(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let output = Command::new("git")
        .args(args)
        // A server must never wait for a password prompt.
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
