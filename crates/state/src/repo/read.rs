//! Reading commits and trees: revisions, the branch tip, and a tree's schema files.

use chrono::{DateTime, FixedOffset};
use gix::ObjectId;

use super::{Author, Revision, StateRepo};
use crate::error::StateError;
use crate::files::{FileSet, SCHEMA_FOLDERS, TOP_LEVEL_FILES};

impl StateRepo {
    /// The commit a revision expression names.
    pub(super) fn resolve_id(
        &self,
        repo: &gix::Repository,
        rev: &str,
    ) -> Result<ObjectId, StateError> {
        let unknown = |reason: String| StateError::UnknownRevision {
            rev: rev.to_owned(),
            reason,
        };
        let id = repo
            .rev_parse_single(rev)
            .map_err(|e| unknown(e.to_string()))?;
        let commit = id
            .object()
            .map_err(|e| unknown(e.to_string()))?
            .peel_to_commit()
            .map_err(|e| unknown(e.to_string()))?;
        Ok(commit.id)
    }

    /// The local branch tip.
    pub(super) fn tip(&self, repo: &gix::Repository) -> Result<ObjectId, StateError> {
        self.try_tip(repo)?
            .ok_or_else(|| StateError::BranchNotFound {
                branch: self.branch.clone(),
                path: self.path.clone(),
            })
    }

    /// The tip of a reference, `None` when it does not exist.
    pub(super) fn try_ref_tip(
        &self,
        repo: &gix::Repository,
        name: &str,
    ) -> Result<Option<ObjectId>, StateError> {
        let reference = repo
            .try_find_reference(name)
            .map_err(self.git_error(format!("reading reference {name}")))?;
        match reference {
            None => Ok(None),
            Some(mut reference) => {
                let id = reference
                    .peel_to_id()
                    .map_err(self.git_error(format!("peeling reference {name}")))?;
                Ok(Some(id.detach()))
            }
        }
    }

    pub(super) fn try_tip(&self, repo: &gix::Repository) -> Result<Option<ObjectId>, StateError> {
        self.try_ref_tip(repo, &self.reference)
    }

    /// Everything the API says about a commit.
    pub(super) fn revision(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
    ) -> Result<Revision, StateError> {
        let what = || format!("reading commit {id}");
        let commit = repo.find_commit(id).map_err(self.git_error(what()))?;
        let author = commit.author().map_err(self.git_error(what()))?.trim();
        let time = author.time().map_err(self.git_error(what()))?;
        let summary = commit
            .message()
            .map_err(self.git_error(what()))?
            .summary()
            .to_string();
        Ok(Revision {
            id: id.to_string(),
            author: Author::new(author.name.to_string(), author.email.to_string()),
            time: to_chrono(time),
            summary,
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        })
    }

    /// The parents of a commit.
    pub(super) fn parents(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
    ) -> Result<Vec<ObjectId>, StateError> {
        let commit = repo
            .find_commit(id)
            .map_err(self.git_error(format!("reading commit {id}")))?;
        Ok(commit.parent_ids().map(|p| p.detach()).collect())
    }

    /// The root tree of a commit.
    pub(super) fn tree_of(
        &self,
        repo: &gix::Repository,
        commit: ObjectId,
    ) -> Result<ObjectId, StateError> {
        let what = || format!("reading the tree of commit {commit}");
        let commit = repo.find_commit(commit).map_err(self.git_error(what()))?;
        Ok(commit.tree_id().map_err(self.git_error(what()))?.detach())
    }

    /// The schema's files in a tree: the top-level schema files and everything (not hidden)
    /// under `desired/` and `services/`.
    pub(super) fn files_in_tree(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
    ) -> Result<FileSet, StateError> {
        let mut files = FileSet::new();
        self.collect(repo, tree, "", &mut files)?;
        Ok(files)
    }

    fn collect(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        prefix: &str,
        files: &mut FileSet,
    ) -> Result<(), StateError> {
        let what = || format!("reading tree {tree}");
        let tree = repo.find_tree(tree).map_err(self.git_error(what()))?;
        for entry in tree.iter() {
            let entry = entry.map_err(self.git_error(what()))?;
            let name = entry.filename().to_string();
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let mode = entry.mode();
            if mode.is_tree() {
                let descend = if prefix.is_empty() {
                    SCHEMA_FOLDERS.contains(&name.as_str())
                } else {
                    !name.starts_with('.')
                };
                if descend {
                    self.collect(repo, entry.object_id(), &path, files)?;
                }
            } else if mode.is_blob() {
                let wanted = if prefix.is_empty() {
                    TOP_LEVEL_FILES.contains(&name.as_str())
                } else {
                    FileSet::is_schema_path(&path)
                };
                if wanted {
                    let id = entry.object_id();
                    let mut blob = repo
                        .find_blob(id)
                        .map_err(self.git_error(format!("reading {path} ({id})")))?;
                    files.insert(path, blob.take_data());
                }
            }
        }
        Ok(())
    }

    /// The blob ids of `paths` in a tree (`None` where absent), to tell which files changed.
    pub(super) fn blob_ids(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        paths: &[&str],
    ) -> Result<Vec<Option<ObjectId>>, StateError> {
        let what = || format!("reading tree {tree}");
        let tree = repo.find_tree(tree).map_err(self.git_error(what()))?;
        paths
            .iter()
            .map(|path| {
                let entry = tree
                    .lookup_entry_by_path(path)
                    .map_err(self.git_error(what()))?;
                Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
            })
            .collect()
    }

    /// The files at `paths` of a tree (absent ones skipped).
    pub(super) fn files_at_paths(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        paths: &[&str],
    ) -> Result<FileSet, StateError> {
        let mut files = FileSet::new();
        for (path, id) in paths.iter().zip(self.blob_ids(repo, tree, paths)?) {
            if let Some(id) = id {
                let mut blob = repo
                    .find_blob(id)
                    .map_err(self.git_error(format!("reading {path} ({id})")))?;
                files.insert(*path, blob.take_data());
            }
        }
        Ok(files)
    }
}

/// A Git time (seconds and offset) as a chrono time with that offset.
pub(super) fn to_chrono(time: gix::date::Time) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(time.offset)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("0 is a valid offset"));
    DateTime::from_timestamp(time.seconds, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
}
