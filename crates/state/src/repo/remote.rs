//! [`StateRepo::fetch`]: bring the branch up to the remote (gix fetch, then fast-forward).

use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::refs::transaction::PreviousValue;

use super::{Revision, StateRepo, git};
use crate::error::StateError;

impl StateRepo {
    /// Fetches the branch from the remote set with [`with_remote`](Self::with_remote) and
    /// fast-forwards the local branch (and its checked-out work tree) to it; creates the
    /// local branch when it does not exist yet. Returns the new tip.
    ///
    /// Uses gix's own fetch for local paths, `file://`, `git://` and ssh (which run
    /// `git-upload-pack`, so git must be installed, as for push). For `http(s)://` remotes it
    /// runs `git fetch` instead: gix speaks http only with a TLS and http client compiled in,
    /// which this crate leaves out to keep builds small, and git brings the machine's
    /// credential helpers along. A local branch that is ahead of or diverged from the
    /// remote is left alone and reported as [`StateError::Diverged`].
    pub fn fetch(&self) -> Result<Revision, StateError> {
        let remote_name = self.remote.as_deref().ok_or_else(|| StateError::NoRemote {
            path: self.path.clone(),
        })?;
        let span = tracing::info_span!("state_fetch", branch = %self.branch, remote = %remote_name);
        let _entered = span.enter();
        let repo = self.local();
        let tracking = format!("refs/remotes/{remote_name}/{}", self.branch);
        let fail = |reason: String| StateError::Fetch {
            remote: remote_name.to_owned(),
            branch: self.branch.clone(),
            reason,
        };
        let spec = format!("+{}:{tracking}", self.reference);
        let remote = repo
            .find_remote(remote_name)
            .map_err(|e| fail(e.to_string()))?;
        let over_http = remote
            .url(gix::remote::Direction::Fetch)
            .is_some_and(|url| {
                matches!(url.scheme, gix::url::Scheme::Http | gix::url::Scheme::Https)
            });
        if over_http {
            tracing::debug!("fetching over http(s) with the git program");
            if let git::Ran::Failed(reason) = git::fetch(repo.git_dir(), remote_name, &spec)? {
                return Err(fail(reason));
            }
        } else {
            let spec = gix::refspec::parse(
                spec.as_bytes().as_bstr(),
                gix::refspec::parse::Operation::Fetch,
            )
            .map_err(|e| fail(e.to_string()))?
            .to_owned();
            let options = gix::remote::ref_map::Options {
                extra_refspecs: vec![spec],
                ..Default::default()
            };
            remote
                .connect(gix::remote::Direction::Fetch)
                .map_err(|e| fail(e.to_string()))?
                .prepare_fetch(gix::progress::Discard, options)
                .map_err(|e| fail(e.to_string()))?
                .receive(gix::progress::Discard, &AtomicBool::new(false))
                .map_err(|e| fail(e.to_string()))?;
        }
        let remote_tip = self
            .try_ref_tip(&repo, &tracking)?
            .ok_or_else(|| fail(format!("the remote has no branch `{}`", self.branch)))?;
        match self.try_tip(&repo)? {
            None => {
                repo.reference(
                    self.reference.as_str(),
                    remote_tip,
                    PreviousValue::MustNotExist,
                    "vupdate: branch from the remote",
                )
                .map_err(self.git_error(format!("creating branch {}", self.branch)))?;
                tracing::info!(tip = %remote_tip, "local branch created from the remote");
            }
            Some(local) if local == remote_tip => {}
            Some(local) => {
                let base = repo
                    .merge_base(local, remote_tip)
                    .map_err(self.git_error(format!("comparing {local} with {remote_tip}")))?
                    .map(|id| id.detach());
                if base != Some(local) {
                    return Err(StateError::Diverged {
                        branch: self.branch.clone(),
                        remote: remote_name.to_owned(),
                        local: local.to_string(),
                        remote_tip: remote_tip.to_string(),
                    });
                }
                self.advance_local(&repo, local, remote_tip)?;
                tracing::info!(from = %local, to = %remote_tip, "fast-forwarded to the remote");
            }
        }
        self.revision(&repo, remote_tip)
    }
}
