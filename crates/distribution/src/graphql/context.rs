//! What every resolver reaches: the distribution's parts ([`ApiContext`]) and who is
//! calling ([`Caller`]), with the one role check, [`require`].

use std::sync::Arc;

use async_graphql::Context;
use tokio::sync::watch;
use vupdate_state::{Author, EditMode, Revision, State, StateEdit, StateError, StateRepo};
use vupdate_store::Store;

use crate::auth::{AccountDetails, AuthError, AuthService, Principal, Role};
use crate::consumers::ConsumerRecords;
use crate::faults::FaultFiles;
use crate::http::ApiError;
use crate::images::ImageStore;
use crate::intake::LogIntake;
use crate::mesh::MeshHandle;
use crate::reconcile::{BuildRunner, ReconcileHandle};
use crate::secrets::Secrets;
use crate::state_reports::StateReports;
use crate::tasks::TaskManager;
use crate::watcher::{InForce, WatchStatus, WatchTrigger};

/// The distribution's name, title and server version, as `distributionInfo` shows them.
#[derive(Debug, Clone)]
pub struct DistributionInfo {
    /// The distribution's name, e.g. `acme`.
    pub name: String,
    /// The title the dashboard shows.
    pub title: String,
    /// The instance the server runs on.
    pub instance: String,
}

/// The running distribution's parts, shared by every request; cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    /// Name, title, instance.
    pub info: DistributionInfo,
    /// Accounts and authentication.
    pub auth: AuthService,
    /// The store.
    pub store: Store,
    /// Version images.
    pub images: ImageStore,
    /// Asynchronous work.
    pub tasks: TaskManager,
    /// The state repo the watcher follows; edits are commits on it.
    pub repo: Arc<StateRepo>,
    /// The state in force (the newest valid commit).
    pub in_force: watch::Receiver<Option<InForce>>,
    /// What the watcher knows: commit in force, tip, last error.
    pub watch_status: watch::Receiver<WatchStatus>,
    /// Asks the watcher to look at the repo now (after the API made a commit).
    pub watch_trigger: WatchTrigger,
    /// The reconcile loop's status, wake and retry.
    pub reconcile: ReconcileHandle,
    /// Log batches from updaters and builders, stored once each.
    pub intake: LogIntake,
    /// Writes state reports, several to a transaction under load.
    pub state_reports: StateReports,
    /// Versions updaters rolled back: recorded, held back, reverted by policy.
    pub known_bad: crate::known_bad::KnownBad,
    /// Rollouts by waves: what each instance gets while a new version goes wave by wave.
    pub rollouts: crate::rollouts::Rollouts,
    /// The desired client list in force, rendered once per revision and known-bad set.
    pub(crate) desired_lists: super::desired_list::DesiredLists,
    /// Fault report archives.
    pub fault_files: FaultFiles,
    /// Named secrets (providers' access tokens).
    pub secrets: Secrets,
    /// What consumer distributions reported having installed.
    pub consumers: ConsumerRecords,
    /// The providers this distribution follows.
    pub mesh: MeshHandle,
    /// Runs builds (those of the reconcile loop, and those consumers ask for).
    pub builder: Arc<dyn BuildRunner>,
    /// How many versions of each kind are kept per service (`versions.maxHistorySize`).
    pub max_history: usize,
    /// How long a reported service state counts as alive (`expiration.serviceStates`).
    pub state_lifetime: std::time::Duration,
    /// The one-line install of updaters: enrolment tokens, the install line.
    pub install: crate::install::Installer,
    /// The server's own self-update: running, desired and last outcome.
    pub self_update: crate::self_update::SelfUpdates,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext")
            .field("info", &self.info)
            .field("repo", &self.repo.path())
            .finish_non_exhaustive()
    }
}

impl ApiContext {
    /// States reported before this are expired: instances that stopped reporting.
    pub fn states_alive_since(&self) -> chrono::DateTime<chrono::Utc> {
        self.store.now()
            - chrono::TimeDelta::from_std(self.state_lifetime).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Runs blocking work on the state repo (every gix call blocks) off the async threads.
    pub async fn with_repo<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&StateRepo) -> Result<T, StateError> + Send + 'static,
    {
        let repo = Arc::clone(&self.repo);
        tokio::task::spawn_blocking(move || work(&repo))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// The state at `revision`, or the state in force when `revision` is `None`.
    pub async fn state_at(&self, revision: Option<String>) -> Result<Arc<State>, ApiError> {
        match revision {
            None => Ok(self.state_in_force()?.state),
            Some(rev) => Ok(Arc::new(self.with_repo(move |repo| repo.load(&rev)).await?)),
        }
    }

    /// The state at `revision` as the base of an edit: when this server's clone does not
    /// know the revision yet (the user saw a newer remote), it fetches once and looks again.
    pub async fn state_for_edit(&self, revision: String) -> Result<Arc<State>, ApiError> {
        let state = self
            .with_repo(move |repo| match repo.load(&revision) {
                Err(StateError::UnknownRevision { .. }) if repo.remote().is_some() => {
                    repo.fetch()?;
                    repo.load(&revision)
                }
                other => other,
            })
            .await?;
        Ok(Arc::new(state))
    }

    /// The commit author for `principal`: the account's name and e-mail address (or
    /// `<account>@<distribution>` for accounts without one).
    pub async fn author_of(&self, principal: &Principal) -> Result<Author, ApiError> {
        let info = self.auth.account(&principal.account).await?;
        let email = match info.details {
            AccountDetails::User {
                email: Some(email), ..
            } if !email.is_empty() => email,
            _ => format!("{}@{}", info.account, self.info.name),
        };
        let name = if info.name.is_empty() {
            info.account
        } else {
            info.name
        };
        Ok(Author::new(name, email))
    }

    /// Makes `edit` as one commit by `principal` on top of `expected_revision`, with
    /// `comment` as the message: on the branch (and the watcher asked to put it in force
    /// now), or, when `policy.yaml` at that revision asks edits of the branch to be
    /// reviewed, on a new branch `vupdate/edit/...`.
    pub async fn commit_edit(
        &self,
        principal: &Principal,
        edit: StateEdit,
        expected_revision: String,
        comment: String,
    ) -> Result<Edited, ApiError> {
        let comment = commit_message(comment)?;
        let author = self.author_of(principal).await?;
        let edited = match self.edit_mode(&expected_revision).await? {
            EditMode::Commit => Edited::on_branch(
                self.with_repo(move |repo| repo.edit(edit, &expected_revision, &author, &comment))
                    .await?,
            ),
            EditMode::PullRequest => {
                let branch = proposal_branch(&principal.account);
                self.with_repo(move |repo| {
                    let made = repo.propose(
                        edit,
                        &expected_revision,
                        &branch,
                        &branch,
                        &author,
                        &comment,
                    )?;
                    Edited::proposed(repo, made, branch, &expected_revision)
                })
                .await?
            }
        };
        if edited.proposed_branch.is_none() {
            self.watch_trigger.trigger();
        } else {
            tracing::info!(branch = ?edited.proposed_branch, commit = %edited.revision.id, "edit proposed for review, as policy.yaml asks");
        }
        Ok(edited)
    }

    /// How `policy.yaml` at `revision` says edits of the followed branch are made.
    async fn edit_mode(&self, revision: &str) -> Result<EditMode, ApiError> {
        let state = self.state_for_edit(revision.to_owned()).await?;
        Ok(state.policy.edit_mode(self.repo.branch()))
    }

    /// Makes `edit` as one commit by `principal` on the branch tip (again on a newer tip
    /// when the branch moves meanwhile), for an edit that no other edit can conflict with.
    pub async fn commit_edit_on_tip(
        &self,
        principal: &Principal,
        edit: StateEdit,
        comment: String,
    ) -> Result<Revision, ApiError> {
        let comment = commit_message(comment)?;
        let author = self.author_of(principal).await?;
        let committed = self
            .with_repo(move |repo| {
                repo.edit_tip(TIP_ATTEMPTS, &author, |_| {
                    Some((edit.clone(), comment.clone()))
                })
            })
            .await?;
        self.watch_trigger.trigger();
        committed.ok_or_else(|| ApiError::internal("an edit of the tip made no commit"))
    }

    /// Makes a commit by `principal` that undoes `revision` on top of `expected_revision`
    /// (`mainline` picks the kept side of a merge, as `git revert -m`); on a branch for
    /// review when `policy.yaml` asks, as [`commit_edit`](Self::commit_edit).
    pub async fn commit_revert(
        &self,
        principal: &Principal,
        revision: String,
        mainline: Option<usize>,
        expected_revision: String,
        comment: Option<String>,
    ) -> Result<Edited, ApiError> {
        let comment = comment.map(commit_message).transpose()?;
        let author = self.author_of(principal).await?;
        let edited = match self.edit_mode(&expected_revision).await? {
            EditMode::Commit => Edited::on_branch(
                self.with_repo(move |repo| match mainline {
                    None => repo.revert(&revision, &expected_revision, &author, comment.as_deref()),
                    Some(mainline) => repo.revert_merge(
                        &revision,
                        mainline,
                        &expected_revision,
                        &author,
                        comment.as_deref(),
                    ),
                })
                .await?,
            ),
            EditMode::PullRequest => {
                let branch = proposal_branch(&principal.account);
                self.with_repo(move |repo| {
                    let made = repo.propose_revert(
                        &revision,
                        mainline,
                        &expected_revision,
                        &branch,
                        &author,
                        comment.as_deref(),
                    )?;
                    Edited::proposed(repo, made, branch, &expected_revision)
                })
                .await?
            }
        };
        if edited.proposed_branch.is_none() {
            self.watch_trigger.trigger();
        }
        Ok(edited)
    }

    /// The state in force, or `STATE_UNAVAILABLE` while no valid commit has been seen.
    pub fn state_in_force(&self) -> Result<InForce, ApiError> {
        self.in_force.borrow().clone().ok_or_else(|| {
            ApiError::unavailable(
                "STATE_UNAVAILABLE",
                "no valid commit of the state repo has been seen yet; see `status` for why",
            )
        })
    }
}

/// What an edit made: a commit on the followed branch, or one on a branch for review.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The commit (the branch tip, unchanged, when the edit changed nothing).
    pub revision: Revision,
    /// The branch `vupdate/edit/...` holding the commit for review, when `policy.yaml`
    /// asks for one.
    pub proposed_branch: Option<String>,
}

impl Edited {
    fn on_branch(revision: Revision) -> Edited {
        Edited {
            revision,
            proposed_branch: None,
        }
    }

    /// A proposal made on `branch`; one that changed nothing made no branch and answers
    /// with the unchanged `expected` revision, as a direct edit does.
    fn proposed(
        repo: &StateRepo,
        made: Option<Revision>,
        branch: String,
        expected: &str,
    ) -> Result<Edited, StateError> {
        Ok(match made {
            Some(revision) => Edited {
                revision,
                proposed_branch: Some(branch),
            },
            None => Edited::on_branch(repo.resolve(expected)?),
        })
    }
}

/// The prefix of the branches edits go to under a pull-request policy.
pub const PROPOSAL_PREFIX: &str = "vupdate/edit/";

/// A new proposal branch for an edit by `account`: `vupdate/edit/<account>/<UTC time>`
/// (to the microsecond: two edits of one account never share a branch).
fn proposal_branch(account: &str) -> String {
    let account: String = account
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let time = chrono::Utc::now().format("%Y%m%d-%H%M%S-%6f");
    format!("{PROPOSAL_PREFIX}{account}/{time}")
}

/// How many times an edit of the tip is tried on a branch that keeps moving.
pub const TIP_ATTEMPTS: usize = 5;

/// Who is calling, as the transport found out before the operation ran.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials were sent: only public fields answer.
    Anonymous,
    /// A valid session or access token.
    Known(Principal),
    /// Credentials were sent and refused (expired, revoked, unknown account…).
    Refused {
        /// The auth error's stable code.
        code: &'static str,
        /// Its message.
        message: String,
    },
}

impl Caller {
    /// The caller for an authentication outcome.
    pub fn from_outcome(outcome: Result<Principal, AuthError>) -> Caller {
        match outcome {
            Ok(principal) => Caller::Known(principal),
            Err(error) => {
                let api = ApiError::from(error);
                Caller::Refused {
                    code: api.code(),
                    message: api.message().to_owned(),
                }
            }
        }
    }

    /// The principal whatever its role, even with a password change pending (for
    /// `whoAmI` and changing one's own password).
    pub fn signed_in(&self) -> Result<&Principal, ApiError> {
        match self {
            Caller::Known(principal) => Ok(principal),
            Caller::Anonymous => Err(ApiError::unauthenticated(
                "log in first: send `Authorization: Bearer <token>`",
            )),
            Caller::Refused { code, message } => Err(ApiError::refused(code, message.clone())),
        }
    }

    /// The principal when its role is one of `allowed` and no password change is pending.
    pub fn require(&self, allowed: &[Role]) -> Result<&Principal, ApiError> {
        let principal = self.signed_in()?;
        principal.require(allowed)?;
        Ok(principal)
    }
}

/// The calling principal if its role is one of `allowed`; the check every resolver of a
/// protected field makes first.
pub fn require<'a>(ctx: &Context<'a>, allowed: &[Role]) -> async_graphql::Result<&'a Principal> {
    caller(ctx).require(allowed).map_err(ApiError::into_graphql)
}

/// The caller of this request ([`Caller::Anonymous`] when the transport put none).
pub fn caller<'a>(ctx: &Context<'a>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&Caller::Anonymous)
}

/// The address the request came from, when known (for throttling failed logins).
pub fn client_address(ctx: &Context<'_>) -> Option<std::net::IpAddr> {
    ctx.data_opt::<crate::http::ClientAddress>()
        .and_then(|client| client.0)
}

/// The distribution's parts.
pub fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    ctx.data_unchecked::<ApiContext>()
}

/// A commit message from a user's comment: trimmed, and not empty.
fn commit_message(comment: String) -> Result<String, ApiError> {
    let trimmed = comment.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "argument `comment`: say why you make this change; it becomes the commit message",
        ));
    }
    Ok(trimmed.to_owned())
}
