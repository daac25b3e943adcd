//! [`StateRepo::open_clone`]: a server's own bare clone of a remote state repo, made on
//! first use; and [`StateRepo::checked_out_branch`] for tools that default to it.

use std::path::{Path, PathBuf};

use super::StateRepo;
use super::git::{self, Ran};
use crate::error::StateError;

impl StateRepo {
    /// Opens the bare clone of `url` kept at `directory` on `branch`, with `origin` as its
    /// remote; clones it first (with the `git` program) when `directory` does not exist.
    ///
    /// A bare clone has no work tree to keep in step: [`fetch`](Self::fetch) fast-forwards
    /// the branch itself. The clone is made next to `directory` and renamed into place, so
    /// a failed clone leaves nothing that a later start would take for a good repository.
    ///
    /// The clone belongs to one server, so the lock files in it when it is opened were
    /// left by a server killed while it moved a ref (`refs/heads/main.lock`, …); they are
    /// removed, or every later fetch and edit of that ref would be refused.
    pub fn open_clone(url: &str, directory: &Path, branch: &str) -> Result<StateRepo, StateError> {
        if directory.exists() {
            remove_stale_locks(directory)?;
        } else {
            clone(url, directory)?;
        }
        StateRepo::open(directory, branch)?.with_remote("origin")
    }

    /// The branch checked out in the repository at `path` (`HEAD` of a bare repository),
    /// or `None` when `HEAD` is detached or the path is not a repository.
    pub fn checked_out_branch(path: &Path) -> Option<String> {
        let head = gix::open(path).ok()?.head_name().ok()??;
        Some(head.shorten().to_string())
    }
}

/// Removes every `*.lock` file in the Git directory `dir` outside `objects/`.
fn remove_stale_locks(dir: &Path) -> Result<(), StateError> {
    let io = |path: &Path| {
        let path: PathBuf = path.to_path_buf();
        move |source| StateError::Io {
            path,
            error: source,
        }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "objects") {
                remove_stale_locks(&path)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "lock") {
            tracing::warn!(path = %path.display(), "removed a lock file a killed server left in its clone of the state repo");
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn clone(url: &str, directory: &Path) -> Result<(), StateError> {
    // `git clone` runs in the parent folder: a relative target would be taken from there,
    // a second time.
    let directory = &std::path::absolute(directory).map_err(|source| StateError::Io {
        path: directory.to_path_buf(),
        error: source,
    })?;
    let fail = |reason: String| StateError::Clone {
        url: url.to_owned(),
        directory: directory.to_path_buf(),
        reason,
    };
    tracing::info!(%url, directory = %directory.display(), "cloning the state repo");
    let partial = directory.with_extension("partial");
    let io = |path: &Path| {
        let path: PathBuf = path.to_path_buf();
        move |source| StateError::Io {
            path,
            error: source,
        }
    };
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    let parent = directory.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let target = partial
        .to_str()
        .ok_or_else(|| fail(format!("the path {} is not UTF-8", partial.display())))?;
    if let Ran::Failed(reason) = git::clone_bare(url, target, parent)? {
        // git may leave a partial directory behind; it is not a repository to keep.
        let _ = std::fs::remove_dir_all(&partial);
        return Err(fail(reason));
    }
    std::fs::rename(&partial, directory).map_err(io(directory))
}
