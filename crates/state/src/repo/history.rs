//! [`StateRepo::history`] and [`StateRepo::diff`]: how the desired versions changed.

use std::collections::HashMap;

use gix::ObjectId;
use gix::revision::walk::Sorting;
use gix::traverse::commit::simple::CommitTimeOrder;

use super::{HistoryEntry, StateRepo};
use crate::diff::DesiredDiff;
use crate::error::StateError;
use crate::model::Desired;
use crate::validate::{DESIRED_CLIENT, DESIRED_DEVELOPER};

const DESIRED_FILES: [&str; 2] = [DESIRED_DEVELOPER, DESIRED_CLIENT];

impl StateRepo {
    /// Up to `limit` revisions of the branch, newest first, that changed
    /// `desired/developer.yaml` or `desired/client.yaml`, with the lists at each.
    ///
    /// A commit counts when a file differs from its parent; a merge counts only when the
    /// file differs from every parent (it resolved something itself), as `git log` shows
    /// history by default, so a change merged from a pull request appears once, as the
    /// commit that made it.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StateError> {
        let repo = self.local();
        let tip = self.tip(&repo)?;
        let walk = repo
            .rev_walk([tip])
            .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
            .all()
            .map_err(self.git_error("walking the history"))?;
        let mut blobs: HashMap<ObjectId, Vec<Option<ObjectId>>> = HashMap::new();
        let mut desired_blobs = |id: ObjectId| -> Result<Vec<Option<ObjectId>>, StateError> {
            if let Some(known) = blobs.get(&id) {
                return Ok(known.clone());
            }
            let tree = self.tree_of(&repo, id)?;
            let ids = self.blob_ids(&repo, tree, &DESIRED_FILES)?;
            blobs.insert(id, ids.clone());
            Ok(ids)
        };
        let mut entries = Vec::new();
        for info in walk {
            if entries.len() >= limit {
                break;
            }
            let info = info.map_err(self.git_error("walking the history"))?;
            let here = desired_blobs(info.id)?;
            let parents: Vec<ObjectId> = info.parent_ids().map(|p| p.detach()).collect();
            let changed = if parents.is_empty() {
                [here[0].is_some(), here[1].is_some()]
            } else {
                let mut changed = [true, true];
                for parent in &parents {
                    let there = desired_blobs(*parent)?;
                    for (file, flag) in changed.iter_mut().enumerate() {
                        *flag &= here[file] != there[file];
                    }
                }
                changed
            };
            if !changed.contains(&true) {
                continue;
            }
            let tree = self.tree_of(&repo, info.id)?;
            let files = self.files_at_paths(&repo, tree, &DESIRED_FILES)?;
            entries.push(HistoryEntry {
                revision: self.revision(&repo, info.id)?,
                developer_changed: changed[0],
                client_changed: changed[1],
                desired: Desired::parse(&files),
            });
        }
        Ok(entries)
    }

    /// The per-service changes of both desired lists from `from_rev` to `to_rev`.
    pub fn diff(&self, from_rev: &str, to_rev: &str) -> Result<DesiredDiff, StateError> {
        let repo = self.local();
        let from = self.desired_at(&repo, from_rev)?;
        let to = self.desired_at(&repo, to_rev)?;
        Ok(Desired::diff(&from, &to))
    }

    fn desired_at(&self, repo: &gix::Repository, rev: &str) -> Result<Desired, StateError> {
        let id = self.resolve_id(repo, rev)?;
        let tree = self.tree_of(repo, id)?;
        let files = self.files_at_paths(repo, tree, &DESIRED_FILES)?;
        Desired::parse(&files).map_err(|errors| StateError::InvalidCommit {
            commit: id.to_string(),
            errors,
        })
    }
}
