//! The edit journal: what makes an edit of a checked-out branch whole again after a crash.
//!
//! Publishing an edit moves the work tree first and the branch last (see
//! [`StateRepo::edit`]). A process killed between the two leaves the work tree and index
//! at the new commit and the branch at the old one: the edit looks like a person's staged
//! change, and every later edit is refused because the touched file "has local changes".
//! So while the work tree is ahead of the branch, a journal file in the Git directory names
//! both commits; [`StateRepo::recover_interrupted_edit`] (the distribution calls it before
//! it follows the repo) puts the work tree back in line with the branch. The edit was never
//! acknowledged, so it ends out; with a remote that had already accepted it, the next fetch
//! brings it in, work tree included. Either way it is whole.

use std::path::PathBuf;

use super::{StateRepo, git};
use crate::error::StateError;

/// The journal's file name in the Git directory: `<old> <new>` commit ids.
const FILE: &str = "vupdate-edit-in-progress";

/// An open journal entry; dropping it (the edit done or undone) removes the file.
pub(super) struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Records that the work tree is about to move from `old` to `new`.
    pub(super) fn begin(
        repo: &gix::Repository,
        old: &str,
        new: &str,
    ) -> Result<Journal, StateError> {
        let path = repo.git_dir().join(FILE);
        write_synced(&path, format!("{old} {new}\n").as_bytes()).map_err(|source| {
            StateError::Io {
                path: path.clone(),
                error: source,
            }
        })?;
        Ok(Journal { path })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the edit journal; the next start of the distribution will");
        }
    }
}

fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What [`StateRepo::recover_interrupted_edit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The branch had moved: the edit was whole (in).
    Completed {
        /// The edit's commit.
        commit: String,
    },
    /// The branch had not moved: the work tree was put back to it (the edit is out).
    RolledBack {
        /// The branch tip the work tree is at again.
        branch: String,
        /// The edit's commit, no longer in the work tree.
        commit: String,
    },
    /// The branch is at neither commit (moved by someone since): the work tree is left as
    /// it is, for a person to look at.
    LeftAlone {
        /// The branch tip now.
        branch: String,
        /// The edit's commit.
        commit: String,
    },
}

impl StateRepo {
    /// Makes an edit that a crash interrupted whole again (see the module doc); `None`
    /// when no edit was interrupted. Call it before anything else edits the repo.
    pub fn recover_interrupted_edit(&self) -> Result<Option<Recovery>, StateError> {
        let repo = self.local();
        let path = repo.git_dir().join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path,
                    error: source,
                });
            }
        };
        let mut ids = text.split_whitespace();
        let (Some(old), Some(new)) = (ids.next(), ids.next()) else {
            tracing::warn!(path = %path.display(), "an unreadable edit journal was removed");
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        };
        let (old, new) = (old.to_owned(), new.to_owned());
        let tip = self
            .try_tip(&repo)?
            .map(|tip| tip.to_string())
            .unwrap_or_default();
        let recovery = if tip == new {
            Recovery::Completed { commit: new }
        } else if tip == old {
            if let Some(dir) = self.checked_out_workdir(&repo)? {
                // From the edit back to the branch; files already at the branch stay.
                git::advance_work_tree(&dir, &new, &old)?;
            }
            Recovery::RolledBack {
                branch: old,
                commit: new,
            }
        } else {
            Recovery::LeftAlone {
                branch: tip,
                commit: new,
            }
        };
        std::fs::remove_file(&path).map_err(|source| StateError::Io {
            path,
            error: source,
        })?;
        Ok(Some(recovery))
    }
}
