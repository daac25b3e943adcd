//! [`StateRepo::propose`]: a change as a branch of its own, for a person to review and
//! merge (a pull request), instead of a commit on the followed branch.

use gix::refs::transaction::PreviousValue;

use super::{Author, Revision, StateRepo, branch_reference, git};
use crate::edit::StateEdit;
use crate::error::StateError;

impl StateRepo {
    /// Makes `edit` as one commit on top of `expected_parent` (the followed branch's tip:
    /// anything else is [`StateError::Stale`], as for [`edit`](Self::edit)) and puts it on
    /// the branch `branch`, created or replaced; the followed branch does not move.
    ///
    /// - The edited state must validate, or nothing is written ([`StateError::InvalidEdit`]).
    /// - An edit that changes nothing makes no branch and returns `None`.
    /// - With a remote, the branch is pushed there (forced: a newer proposal replaces an
    ///   older one of the same name) before the local branch is set.
    /// - Every other branch whose name starts with `replaces` (e.g. `vupdate/jetto/`) is
    ///   an older proposal this one replaces: it is deleted, on the remote too. A branch
    ///   already gone there (merged and deleted by a person) is not an error.
    pub fn propose(
        &self,
        edit: StateEdit,
        expected_parent: &str,
        branch: &str,
        replaces: &str,
        author: &Author,
        message: &str,
    ) -> Result<Option<Revision>, StateError> {
        let span = tracing::info_span!("state_propose", base = %self.branch, branch = %branch, parent = %expected_parent, commit = tracing::field::Empty);
        let _entered = span.enter();
        branch_reference(branch)?;
        let repo = self.start_change()?;
        let parent = self.checked_parent(&repo, expected_parent)?;
        let Some(commit) = self.edit_commit(&repo, edit, parent, author, message)? else {
            tracing::info!("the proposal changes nothing; no branch made");
            return Ok(None);
        };
        span.record("commit", tracing::field::display(commit));
        self.put_on_branch(&repo, commit, branch, replaces)?;
        self.revision(&repo, commit).map(Some)
    }

    /// Sets (and pushes, with a remote) the proposal branch `branch` to `commit`, deleting
    /// the older proposals it replaces (branches named `replaces…`).
    pub(super) fn put_on_branch(
        &self,
        repo: &gix::Repository,
        commit: gix::ObjectId,
        branch: &str,
        replaces: &str,
    ) -> Result<(), StateError> {
        let reference = branch_reference(branch)?;
        let replaced = self.proposals(repo, replaces)?;
        let replaced: Vec<String> = replaced.into_iter().filter(|b| b != branch).collect();
        if let Some(remote) = &self.remote {
            if let git::Ran::Failed(reason) =
                git::push_branch(repo.git_dir(), remote, &commit.to_string(), branch)?
            {
                return Err(StateError::PushRejected {
                    remote: remote.clone(),
                    branch: branch.to_owned(),
                    commit: commit.to_string(),
                    reason,
                });
            }
            if !replaced.is_empty()
                && let git::Ran::Failed(reason) =
                    git::delete_branches(repo.git_dir(), remote, &replaced)?
            {
                tracing::warn!(%reason, branches = ?replaced, "some replaced proposals were already gone from the remote");
            }
        }
        repo.reference(
            reference.as_str(),
            commit,
            PreviousValue::Any,
            format!("vupdate: proposal {commit}"),
        )
        .map_err(self.git_error(format!("setting branch {branch}")))?;
        for old in &replaced {
            let name = format!("refs/heads/{old}");
            if let Some(found) = repo
                .try_find_reference(name.as_str())
                .map_err(self.git_error(format!("reading reference {name}")))?
            {
                found.delete().map_err(|error| StateError::Git {
                    operation: format!("deleting branch {old}"),
                    path: self.path.clone(),
                    error: error.into(),
                })?;
            }
        }
        tracing::info!(%commit, replaced = ?replaced, "proposal pushed");
        Ok(())
    }

    /// [`propose`](Self::propose) the edit `make` gives for the branch tip's state, on that
    /// tip; when the branch moves meanwhile, `make` is asked again for the new tip (at
    /// most `attempts` times). `None`: `make` or the edit changes nothing.
    pub fn propose_tip(
        &self,
        attempts: usize,
        branch: &str,
        replaces: &str,
        author: &Author,
        make: impl FnMut(&crate::State) -> Option<(StateEdit, String)>,
    ) -> Result<Option<Revision>, StateError> {
        self.on_tip(attempts, make, |edit, parent, message| {
            self.propose(edit, parent, branch, replaces, author, message)
        })
    }

    /// The proposals made here (local branches named `prefix…`) not merged yet: their
    /// commit is not in the followed branch's history. Sorted by name.
    pub fn waiting_proposals(&self, prefix: &str) -> Result<Vec<(String, Revision)>, StateError> {
        let repo = self.local();
        let Some(tip) = self.try_tip(&repo)? else {
            return Ok(Vec::new());
        };
        let mut waiting = Vec::new();
        for branch in self.proposals(&repo, prefix)? {
            let Some(commit) = self.try_ref_tip(&repo, &format!("refs/heads/{branch}"))? else {
                continue;
            };
            if !self.ancestor(&repo, commit, tip)? {
                waiting.push((branch, self.revision(&repo, commit)?));
            }
        }
        Ok(waiting)
    }

    /// Whether `ancestor` is `descendant` or in its history.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, StateError> {
        let repo = self.local();
        let ancestor = self.resolve_id(&repo, ancestor)?;
        let descendant = self.resolve_id(&repo, descendant)?;
        self.ancestor(&repo, ancestor, descendant)
    }

    fn ancestor(
        &self,
        repo: &gix::Repository,
        ancestor: gix::ObjectId,
        descendant: gix::ObjectId,
    ) -> Result<bool, StateError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let base = repo
            .merge_base(ancestor, descendant)
            .map_err(self.git_error(format!(
                "finding the merge base of {ancestor} and {descendant}"
            )))?;
        Ok(base.is_some_and(|base| base.detach() == ancestor))
    }

    /// The local branches whose name starts with `prefix` (proposals made here), sorted.
    pub fn branches_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        self.proposals(&self.local(), prefix)
    }

    fn proposals(&self, repo: &gix::Repository, prefix: &str) -> Result<Vec<String>, StateError> {
        let what = || format!("listing branches {prefix}*");
        let platform = repo.references().map_err(self.git_error(what()))?;
        let mut names = Vec::new();
        for reference in platform.local_branches().map_err(|error| StateError::Git {
            operation: what(),
            path: self.path.clone(),
            error: error.into(),
        })? {
            let reference = reference.map_err(|error| StateError::Git {
                operation: what(),
                path: self.path.clone(),
                error: error.into(),
            })?;
            let name = reference.name().shorten().to_string();
            if name.starts_with(prefix) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}
