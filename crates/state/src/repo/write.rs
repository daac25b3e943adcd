//! Writing: [`StateRepo::edit`] and [`StateRepo::revert`], and the one path both take to
//! move the branch (work tree, remote, local ref) without ever half-applying a change.

use chrono::Utc;
use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::PreviousValue;

use super::journal::Journal;
use super::{Author, Revision, StateRepo, git};
use crate::edit::StateEdit;
use crate::error::StateError;
use crate::files::FileSet;
use crate::model::State;

impl StateRepo {
    /// Makes `edit` as one commit on the branch, on top of `expected_parent`.
    ///
    /// - With a remote, fetches first; the branch tip must then be `expected_parent`
    ///   (any revision naming it), or the edit is refused as [`StateError::Stale`]: a change
    ///   is never merged blind over one the author has not seen.
    /// - The edited files must validate as a whole state, or nothing is written
    ///   ([`StateError::InvalidEdit`]). Only the touched file changes, by its smallest span.
    /// - An edit that changes nothing makes no commit and returns the tip as it is.
    /// - The commit has `author` as author and committer, and `message` as message.
    /// - Publishing, in this order: the work tree, when the branch is checked out in a
    ///   non-bare repository, is moved to the new commit (`git read-tree -m -u`; local changes
    ///   to a touched file refuse the edit with [`StateError::WorkTree`]); then, with a
    ///   remote, the commit is pushed with `git push --atomic --force-with-lease` (a
    ///   compare-and-swap on the remote; a rejection is [`StateError::PushRejected`] with
    ///   git's reason); then the local branch is swapped with a compare-and-swap. A failure
    ///   puts back what the earlier steps did: the local branch only moves once the remote
    ///   has accepted, so it never has to be rolled back.
    pub fn edit(
        &self,
        edit: StateEdit,
        expected_parent: &str,
        author: &Author,
        message: &str,
    ) -> Result<Revision, StateError> {
        let span = tracing::info_span!("state_edit", branch = %self.branch, parent = %expected_parent, commit = tracing::field::Empty);
        let _entered = span.enter();
        let repo = self.start_change()?;
        let parent = self.checked_parent(&repo, expected_parent)?;
        let Some(commit) = self.edit_commit(&repo, edit, parent, author, message)? else {
            tracing::info!("the edit changes nothing; no commit made");
            return self.revision(&repo, parent);
        };
        span.record("commit", tracing::field::display(commit));
        self.publish(&repo, parent, commit)?;
        tracing::info!(%commit, "edit committed");
        self.revision(&repo, commit)
    }

    /// Makes the edit that `make` gives for the branch tip's state, with the message it
    /// gives, as one commit on that tip, authored by `author`. When the branch moves
    /// meanwhile, `make` is asked again for the new tip, at most `attempts` times in all;
    /// `make` returning `None` (nothing to change there) makes no commit and returns
    /// `None`. For changes the distribution makes on its own, where no person saw a
    /// revision: they are computed from the newest state, never merged blind.
    pub fn edit_tip(
        &self,
        attempts: usize,
        author: &Author,
        make: impl FnMut(&State) -> Option<(StateEdit, String)>,
    ) -> Result<Option<Revision>, StateError> {
        self.on_tip(attempts, make, |edit, parent, message| {
            self.edit(edit, parent, author, message).map(Some)
        })
    }

    /// Runs `apply` with the edit `make` gives for the tip's state, on that tip; again on
    /// the new tip while `apply` finds the branch moved, at most `attempts` times.
    pub(super) fn on_tip(
        &self,
        attempts: usize,
        mut make: impl FnMut(&State) -> Option<(StateEdit, String)>,
        mut apply: impl FnMut(StateEdit, &str, &str) -> Result<Option<Revision>, StateError>,
    ) -> Result<Option<Revision>, StateError> {
        let mut parent = self.head()?.id;
        for _ in 0..attempts {
            let state = self.load(&parent)?;
            let Some((edit, message)) = make(&state) else {
                return Ok(None);
            };
            match apply(edit, &parent, &message) {
                Err(StateError::Stale { actual, .. }) => {
                    tracing::info!(tip = %actual, "the branch moved; making the change on the new tip");
                    parent = actual;
                }
                done => return done,
            }
        }
        Err(StateError::Stale {
            expected: parent,
            actual: format!("a tip that moved {attempts} times in a row"),
        })
    }

    /// Makes a commit that undoes `rev` on top of `expected_parent` (like `git revert`).
    ///
    /// The change is computed as a three-way merge of the trees: base = `rev`'s tree,
    /// ours = the tip's tree, theirs = `rev`'s parent's tree. Conflicts (a later commit
    /// changed the same lines) refuse the revert with the paths ([`StateError::RevertConflict`]).
    /// A merge commit needs [`revert_merge`](Self::revert_merge). The result must validate and
    /// is published like an edit. `message` defaults to git's `Revert "<summary>"` form.
    /// Reverting a change that is already undone makes no commit and returns the tip.
    pub fn revert(
        &self,
        rev: &str,
        expected_parent: &str,
        author: &Author,
        message: Option<&str>,
    ) -> Result<Revision, StateError> {
        self.revert_inner(rev, None, expected_parent, author, message, None)
    }

    /// Like [`revert`](Self::revert) for a merge commit: `mainline` (from 1) is the parent
    /// whose side is kept, as `git revert -m`; 1 is the branch the merge was made on.
    pub fn revert_merge(
        &self,
        rev: &str,
        mainline: usize,
        expected_parent: &str,
        author: &Author,
        message: Option<&str>,
    ) -> Result<Revision, StateError> {
        self.revert_inner(rev, Some(mainline), expected_parent, author, message, None)
    }

    /// Like [`revert`](Self::revert) (or [`revert_merge`](Self::revert_merge) with
    /// `mainline`), with the commit put on the proposal branch `branch` for review, as
    /// [`propose`](Self::propose) does; the followed branch does not move. `None`: the
    /// revert changes nothing.
    pub fn propose_revert(
        &self,
        rev: &str,
        mainline: Option<usize>,
        expected_parent: &str,
        branch: &str,
        author: &Author,
        message: Option<&str>,
    ) -> Result<Option<Revision>, StateError> {
        super::branch_reference(branch)?;
        let parent = self.resolve(expected_parent)?.id;
        let revision = self.revert_inner(
            rev,
            mainline,
            expected_parent,
            author,
            message,
            Some(branch),
        )?;
        Ok((revision.id != parent).then_some(revision))
    }

    fn revert_inner(
        &self,
        rev: &str,
        mainline: Option<usize>,
        expected_parent: &str,
        author: &Author,
        message: Option<&str>,
        proposal: Option<&str>,
    ) -> Result<Revision, StateError> {
        let span = tracing::info_span!("state_revert", branch = %self.branch, parent = %expected_parent, reverted = %rev, commit = tracing::field::Empty);
        let _entered = span.enter();
        let repo = self.start_change()?;
        let parent = self.checked_parent(&repo, expected_parent)?;
        let target = self.resolve_id(&repo, rev)?;
        let parents = self.parents(&repo, target)?;
        let base_parent = match (parents.len(), mainline) {
            (0, _) => {
                return Err(StateError::RevertRootCommit {
                    commit: target.to_string(),
                });
            }
            (1, None) => parents[0],
            (n, None) => {
                return Err(StateError::RevertMergeCommit {
                    commit: target.to_string(),
                    parents: n,
                });
            }
            (n, Some(m)) if m == 0 || m > n || (n == 1 && m != 1) => {
                return Err(StateError::BadMainline {
                    commit: target.to_string(),
                    mainline: m,
                    parents: n,
                });
            }
            (_, Some(m)) => parents[m - 1],
        };
        let target_tree = self.tree_of(&repo, target)?;
        let parent_tree = self.tree_of(&repo, parent)?;
        let undo_tree = self.tree_of(&repo, base_parent)?;
        let tree = self.merge_for_revert(&repo, target, target_tree, parent_tree, undo_tree)?;
        if tree == parent_tree {
            tracing::info!("the revert changes nothing; no commit made");
            return self.revision(&repo, parent);
        }
        let files = self.files_in_tree(&repo, tree)?;
        State::parse(&files).map_err(|errors| StateError::InvalidEdit {
            parent: parent.to_string(),
            errors,
        })?;
        let reverted = self.revision(&repo, target)?;
        let default_message;
        let message = match message {
            Some(message) => message,
            None => {
                let mut text = format!(
                    "Revert \"{}\"\n\nThis reverts commit {target}",
                    reverted.summary
                );
                if parents.len() > 1 {
                    text.push_str(&format!(", reversing\nchanges made to {base_parent}"));
                }
                text.push_str(".\n");
                default_message = text;
                &default_message
            }
        };
        let commit = self.write_commit(&repo, tree, &[parent], author, message)?;
        span.record("commit", tracing::field::display(commit));
        match proposal {
            // The branch's name says what it holds: this revert alone.
            Some(branch) => self.put_on_branch(&repo, commit, branch, branch)?,
            None => self.publish(&repo, parent, commit)?,
        }
        tracing::info!(%commit, reverted = %target, proposal = ?proposal, "revert committed");
        self.revision(&repo, commit)
    }

    fn merge_for_revert(
        &self,
        repo: &gix::Repository,
        target: ObjectId,
        base: ObjectId,
        ours: ObjectId,
        theirs: ObjectId,
    ) -> Result<ObjectId, StateError> {
        use gix::merge::blob::builtin_driver::text::Labels;
        use gix::merge::tree::TreatAsUnresolved;
        let what = || format!("merging trees to revert commit {target}");
        let options = repo.tree_merge_options().map_err(self.git_error(what()))?;
        let labels = Labels {
            ancestor: Some("reverted commit".into()),
            current: Some("branch tip".into()),
            other: Some("parent of reverted commit".into()),
        };
        let mut outcome = repo
            .merge_trees(base, ours, theirs, labels, options)
            .map_err(self.git_error(what()))?;
        let how = TreatAsUnresolved::git();
        if outcome.has_unresolved_conflicts(how) {
            let mut paths: Vec<String> = outcome
                .conflicts
                .iter()
                .filter(|c| c.is_unresolved(how))
                .map(|c| c.ours.location().to_str_lossy().into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            return Err(StateError::RevertConflict {
                commit: target.to_string(),
                paths,
            });
        }
        Ok(outcome
            .tree
            .write()
            .map_err(self.git_error(what()))?
            .detach())
    }

    /// The commit (written, on no branch yet) that makes `edit` on top of `parent` with
    /// `author` and `message`, after the edited state validated as a whole; `None` when the
    /// edit changes nothing.
    pub(super) fn edit_commit(
        &self,
        repo: &gix::Repository,
        edit: StateEdit,
        parent: ObjectId,
        author: &Author,
        message: &str,
    ) -> Result<Option<ObjectId>, StateError> {
        let parent_tree = self.tree_of(repo, parent)?;
        let files = self.files_in_tree(repo, parent_tree)?;
        let edited = edit
            .apply(&files, Utc::now())
            .map_err(|errors| StateError::InvalidEdit {
                parent: parent.to_string(),
                errors,
            })?;
        if edited == files {
            return Ok(None);
        }
        State::parse(&edited).map_err(|errors| StateError::InvalidEdit {
            parent: parent.to_string(),
            errors,
        })?;
        let tree = self.write_tree(repo, parent_tree, &files, &edited)?;
        self.write_commit(repo, tree, &[parent], author, message)
            .map(Some)
    }

    /// Fetches when a remote is set, and returns the repository handle to change it with.
    pub(super) fn start_change(&self) -> Result<gix::Repository, StateError> {
        if self.remote.is_some() {
            self.fetch()?;
        }
        Ok(self.local())
    }

    /// The tip, when it is the commit `expected` names; [`StateError::Stale`] otherwise.
    pub(super) fn checked_parent(
        &self,
        repo: &gix::Repository,
        expected: &str,
    ) -> Result<ObjectId, StateError> {
        let tip = self.tip(repo)?;
        let expected_id = match self.resolve_id(repo, expected) {
            Ok(id) => id,
            // A commit the author saw that this clone does not know is stale by definition.
            Err(_) => {
                return Err(StateError::Stale {
                    expected: expected.to_owned(),
                    actual: tip.to_string(),
                });
            }
        };
        if expected_id != tip {
            return Err(StateError::Stale {
                expected: expected_id.to_string(),
                actual: tip.to_string(),
            });
        }
        Ok(tip)
    }

    /// The parent tree with every file that differs between `old` and `new` replaced.
    fn write_tree(
        &self,
        repo: &gix::Repository,
        parent_tree: ObjectId,
        old: &FileSet,
        new: &FileSet,
    ) -> Result<ObjectId, StateError> {
        let what = || "writing the edited tree".to_owned();
        let mut editor = repo
            .edit_tree(parent_tree)
            .map_err(self.git_error(what()))?;
        for (path, bytes) in new.iter() {
            if old.get(path) != Some(bytes) {
                let blob = repo
                    .write_blob(bytes)
                    .map_err(self.git_error(format!("writing {path}")))?;
                editor
                    .upsert(path, EntryKind::Blob, blob)
                    .map_err(self.git_error(format!("placing {path}")))?;
            }
        }
        for (path, _) in old.iter() {
            if new.get(path).is_none() {
                editor
                    .remove(path)
                    .map_err(self.git_error(format!("removing {path}")))?;
            }
        }
        Ok(editor.write().map_err(self.git_error(what()))?.detach())
    }

    fn write_commit(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        parents: &[ObjectId],
        author: &Author,
        message: &str,
    ) -> Result<ObjectId, StateError> {
        // Signatures are passed explicitly: `commit()` would need user.name/email in the
        // configuration, which servers and CI machines often lack.
        let signature = gix::actor::Signature {
            name: author.name.as_str().into(),
            email: author.email.as_str().into(),
            time: gix::date::Time::now_local_or_utc(),
        };
        let mut buf = gix::date::parse::TimeBuf::default();
        let signature = signature.to_ref(&mut buf);
        let commit = repo
            .new_commit_as(signature, signature, message, tree, parents.iter().copied())
            .map_err(self.git_error("writing the commit"))?;
        Ok(commit.id)
    }

    /// Moves the branch from `old` to `new`: the checked-out work tree first (refusing on
    /// local changes to touched files), then the remote (an atomic compare-and-swap push),
    /// then the local ref (compare-and-swap; already at `new` because a fetch brought the
    /// pushed commit in first counts as done). A failure undoes the earlier steps, so the
    /// branch, the work tree and the remote are either all at `new` or as they were.
    fn publish(
        &self,
        repo: &gix::Repository,
        old: ObjectId,
        new: ObjectId,
    ) -> Result<(), StateError> {
        let (old_hex, new_hex) = (old.to_string(), new.to_string());
        let workdir = self.checked_out_workdir(repo)?;
        // Open while the work tree is ahead of the branch; every return below closes it.
        let _journal = match &workdir {
            Some(dir) => {
                let journal = Journal::begin(repo, &old_hex, &new_hex)?;
                git::advance_work_tree(dir, &old_hex, &new_hex)?;
                Some(journal)
            }
            None => None,
        };
        vupdate_crashpoint::reached("state.edit.work-tree-advanced");
        let undo_work_tree = || {
            if let Some(dir) = &workdir
                && let Err(error) = git::advance_work_tree(dir, &new_hex, &old_hex)
            {
                tracing::error!(%error, "could not put the work tree back after a failed change");
            }
        };
        if let Some(remote) = &self.remote {
            let span = tracing::info_span!("state_push", branch = %self.branch, remote = %remote, old = %old_hex, new = %new_hex);
            let _entered = span.enter();
            match git::push(repo.git_dir(), remote, &self.branch, &old_hex, &new_hex)? {
                git::Ran::Ok => {
                    tracing::info!("pushed");
                    vupdate_crashpoint::reached("state.edit.pushed");
                    let tracking = format!("refs/remotes/{remote}/{}", self.branch);
                    if let Err(error) = repo.reference(
                        tracking.as_str(),
                        new,
                        PreviousValue::Any,
                        "vupdate: pushed",
                    ) {
                        tracing::warn!(%error, "pushed, but the remote-tracking ref was not updated; the next fetch will");
                    }
                }
                git::Ran::Failed(reason) => {
                    tracing::warn!(%reason, "push rejected");
                    undo_work_tree();
                    return Err(StateError::PushRejected {
                        remote: remote.clone(),
                        branch: self.branch.clone(),
                        commit: new_hex,
                        reason,
                    });
                }
            }
        }
        let expected = PreviousValue::MustExistAndMatch(gix::refs::Target::Object(old));
        if let Err(error) = repo.reference(
            self.reference.as_str(),
            new,
            expected,
            format!("vupdate: {new_hex}"),
        ) {
            let actual = self.try_tip(repo)?;
            if actual == Some(new) {
                // A fetch (the server's watcher) between the push and here already moved
                // the branch, and its work tree, to the very commit pushed: done.
                tracing::info!("a fetch had already brought the branch to the pushed commit");
                return Ok(());
            }
            undo_work_tree();
            let actual = actual.map(|t| t.to_string()).unwrap_or_default();
            tracing::warn!(%error, %actual, "the branch moved while the change was made");
            return Err(StateError::Stale {
                expected: old_hex,
                actual,
            });
        }
        Ok(())
    }

    /// The work tree when this branch is checked out in it (HEAD points at the branch).
    pub(super) fn checked_out_workdir(
        &self,
        repo: &gix::Repository,
    ) -> Result<Option<std::path::PathBuf>, StateError> {
        let Some(workdir) = repo.workdir() else {
            return Ok(None);
        };
        let head = repo.head_name().map_err(self.git_error("reading HEAD"))?;
        let on_branch =
            head.is_some_and(|name| name.as_bstr() == self.reference.as_bytes().as_bstr());
        Ok(on_branch.then(|| workdir.to_path_buf()))
    }

    /// Moves the local branch from `old` to `new` (work tree included), for fetch.
    pub(super) fn advance_local(
        &self,
        repo: &gix::Repository,
        old: ObjectId,
        new: ObjectId,
    ) -> Result<(), StateError> {
        let (old_hex, new_hex) = (old.to_string(), new.to_string());
        let workdir = self.checked_out_workdir(repo)?;
        if let Some(dir) = &workdir {
            git::advance_work_tree(dir, &old_hex, &new_hex)?;
        }
        let expected = PreviousValue::MustExistAndMatch(gix::refs::Target::Object(old));
        if let Err(error) = repo.reference(
            self.reference.as_str(),
            new,
            expected,
            "vupdate: fast-forward to the remote",
        ) {
            if let Some(dir) = &workdir {
                let _ = git::advance_work_tree(dir, &new_hex, &old_hex);
            }
            let actual = self
                .try_tip(repo)?
                .map(|t| t.to_string())
                .unwrap_or_default();
            tracing::warn!(%error, "the branch moved during fetch");
            return Err(StateError::Stale {
                expected: old_hex,
                actual,
            });
        }
        Ok(())
    }
}
