//! The state watcher: follows the state repo; the newest valid commit is in force.
//!
//! [`StateWatcher::start`] opens the repo (cloning a remote one on first start, see
//! [`RepoSource`]) and runs a loop on tokio: it fetches (or, for a local repo, re-reads the
//! branch) every `poll_interval`, or at once when [`StateWatcher::trigger`] is called (the
//! `POST /hooks/git` webhook, and the distribution after its own commits), or, for a local
//! repo, when its refs change on disk (`changes`: file system notifications; the poll
//! stays as a safety net). Triggers that arrive during a check are coalesced into one
//! more check.
//!
//! Each new tip is loaded and validated. A valid one becomes [`InForce`], published on a
//! `watch` channel; an invalid one is recorded in [`WatchStatus::last_error`] (commit and
//! `file:line:column: message` problems) while the previous valid state stays in force,
//! until a later valid commit clears the error. A fetch that fails (remote unreachable) is
//! recorded in [`WatchStatus::fetch_error`] and retried with exponential backoff up to
//! `max_backoff`; the state in force is kept meanwhile.
//!
//! The loop stops when [`StateWatcher::shutdown`] is called or the watcher is dropped.

mod changes;
mod open;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use vupdate_backoff::Backoff;
use vupdate_state::{Problem, Revision, State, StateError, StateRepo};

/// What went wrong starting the watcher.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The repository cannot be cloned or opened, or has no `origin` remote.
    #[error("cannot open the state repo at {}: {error}", path.display())]
    Open {
        /// The repository's path.
        path: PathBuf,
        /// The state crate's error (boxed: it is large).
        error: Box<StateError>,
    },
    /// The blocking open was cancelled or panicked.
    #[error("opening the state repo stopped: {0}")]
    Join(String),
}

/// Where the state repo is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A repository on this machine (work tree or bare), read in place, never fetched.
    Local(PathBuf),
    /// A remote repository, kept as a bare clone at `directory` whose `origin` is `url`;
    /// cloned with the `git` program when `directory` does not exist yet.
    Remote {
        /// The remote's URL (any URL `git clone` accepts).
        url: String,
        /// Where the clone is kept.
        directory: PathBuf,
    },
}

/// How the watcher runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Where the state repo is.
    pub source: RepoSource,
    /// The branch holding the desired state.
    pub branch: String,
    /// How often to fetch when nothing triggers a check.
    pub poll_interval: Duration,
    /// The longest wait between retries while fetches fail.
    pub max_backoff: Duration,
    /// For a local repo: check at once when its refs change on disk (not only at each
    /// poll). The server turns it on; tests of the poll alone turn it off.
    pub watch_files: bool,
}

/// The state in force: the newest valid commit seen, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The commit.
    pub revision: Revision,
    /// Its validated state.
    pub state: Arc<State>,
}

/// A commit that does not validate and so is not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCommit {
    /// The commit id (hex).
    pub commit: String,
    /// Every problem; each displays as `file:line:column: message`.
    pub problems: Vec<Problem>,
}

/// What the watcher knows, for the status query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchStatus {
    /// The commit in force, if a valid one was seen.
    pub in_force: Option<String>,
    /// The branch tip last checked (valid or not).
    pub tip: Option<String>,
    /// The newest invalid tip, while no valid commit came after it.
    pub last_error: Option<InvalidCommit>,
    /// When the branch was last checked (fetched or re-read), successfully or not.
    pub last_fetch: Option<DateTime<Utc>>,
    /// Why the last check failed (remote unreachable, unreadable commit); `None` once one succeeds.
    pub fetch_error: Option<String>,
}

/// A cheap handle that asks the watcher to check the repo now (for the webhook).
#[derive(Debug, Clone)]
pub struct WatchTrigger(Arc<Notify>);

impl WatchTrigger {
    /// Asks for a check now; calls during a check are coalesced into one more check.
    pub fn trigger(&self) {
        self.0.notify_one();
    }
}

/// A running state watcher; dropping it stops the loop.
#[derive(Debug)]
pub struct StateWatcher {
    repo: Arc<StateRepo>,
    trigger: WatchTrigger,
    in_force: watch::Receiver<Option<InForce>>,
    status: watch::Receiver<WatchStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The file system watch of a local repo's refs, while it runs.
    _changes: Option<changes::RefWatch>,
}

impl StateWatcher {
    /// Opens (or first clones) the repo and starts the loop; the first check runs at once.
    pub async fn start(config: WatchConfig) -> Result<StateWatcher, WatchError> {
        let source = config.source.clone();
        let branch = config.branch.clone();
        let repo = tokio::task::spawn_blocking(move || open::open(&source, &branch))
            .await
            .map_err(|e| WatchError::Join(e.to_string()))??;
        let repo = Arc::new(repo);
        let trigger = WatchTrigger(Arc::new(Notify::new()));
        let watch_files = config.watch_files && matches!(config.source, RepoSource::Local(_));
        let changes = watch_files
            .then(|| changes::watch_refs(&repo.refs_directory(), Arc::clone(&trigger.0)))
            .flatten();
        let (in_force_tx, in_force) = watch::channel(None);
        let (status_tx, status) = watch::channel(WatchStatus::default());
        let (stop, stopped) = watch::channel(false);
        let watch_loop = Loop {
            repo: Arc::clone(&repo),
            config,
            trigger: Arc::clone(&trigger.0),
            in_force: in_force_tx,
            status: status_tx,
            stopped,
        };
        let span = tracing::info_span!("state_watcher", branch = %repo.branch());
        let task = tokio::spawn(tracing::Instrument::instrument(watch_loop.run(), span));
        Ok(StateWatcher {
            repo,
            trigger,
            in_force,
            status,
            stop,
            task,
            _changes: changes,
        })
    }

    /// The repository watched, for the distribution's own edits (call [`Self::trigger`] after).
    pub fn repo(&self) -> Arc<StateRepo> {
        Arc::clone(&self.repo)
    }

    /// Asks for a check now (coalesced with other requests).
    pub fn trigger(&self) {
        self.trigger.trigger();
    }

    /// A handle to trigger checks from elsewhere (the webhook).
    pub fn trigger_handle(&self) -> WatchTrigger {
        self.trigger.clone()
    }

    /// The state in force now, if a valid commit was seen.
    pub fn in_force(&self) -> Option<InForce> {
        self.in_force.borrow().clone()
    }

    /// Follows the state in force: changes each time a new valid commit comes into force.
    pub fn subscribe(&self) -> watch::Receiver<Option<InForce>> {
        self.in_force.clone()
    }

    /// The status now.
    pub fn status(&self) -> WatchStatus {
        self.status.borrow().clone()
    }

    /// Follows the status: changes after every check.
    pub fn subscribe_status(&self) -> watch::Receiver<WatchStatus> {
        self.status.clone()
    }

    /// Stops the loop and waits for it to end (a check under way is finished first).
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the state watcher stopped abnormally");
        }
    }
}

/// The loop's side of the watcher.
struct Loop {
    repo: Arc<StateRepo>,
    config: WatchConfig,
    trigger: Arc<Notify>,
    in_force: watch::Sender<Option<InForce>>,
    status: watch::Sender<WatchStatus>,
    stopped: watch::Receiver<bool>,
}

/// What one check found.
enum Checked {
    /// The tip is the one already handled.
    Same,
    /// A new valid tip.
    Valid(InForce),
    /// A new invalid tip, and (when nothing was in force yet) the newest valid ancestor.
    Invalid(InvalidCommit, Option<InForce>),
}

/// How far back a first check looks for a valid commit when the tip is invalid.
const MAX_FALLBACK_DEPTH: usize = 100;

impl Loop {
    async fn run(mut self) {
        let poll = self.config.poll_interval;
        let mut backoff = failure_backoff(poll, self.config.max_backoff);
        loop {
            let known = self.status.borrow().tip.clone();
            let nothing_in_force = self.in_force.borrow().is_none();
            let repo = Arc::clone(&self.repo);
            let checked = tokio::task::spawn_blocking(move || {
                check(&repo, known.as_deref(), nothing_in_force)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the check stopped: {e}")));
            let delay = if checked.is_ok() {
                backoff.reset();
                poll
            } else {
                backoff.next_delay().max(poll)
            };
            self.record(checked);
            tokio::select! {
                changed = self.stopped.wait_for(|stop| *stop) => {
                    // Either shutdown was asked, or the watcher was dropped: stop both ways.
                    let _ = changed;
                    return;
                }
                () = self.trigger.notified() => tracing::debug!("check triggered"),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn record(&self, checked: Result<(String, Checked), String>) {
        let now = Utc::now();
        // The state goes out before the status, so whoever sees the status of a new
        // commit finds that commit's state in force.
        if let Ok((_, Checked::Valid(in_force) | Checked::Invalid(_, Some(in_force)))) = &checked {
            self.in_force.send_replace(Some(in_force.clone()));
        }
        self.status.send_modify(|status| {
            status.last_fetch = Some(now);
            match checked {
                Err(error) => {
                    tracing::warn!(%error, "cannot check the state repo");
                    status.fetch_error = Some(error);
                }
                Ok((tip, found)) => {
                    status.fetch_error = None;
                    status.tip = Some(tip);
                    match found {
                        Checked::Same => {}
                        Checked::Valid(in_force) => {
                            tracing::info!(commit = %in_force.revision.id, "new state in force");
                            status.in_force = Some(in_force.revision.id.clone());
                            status.last_error = None;
                        }
                        Checked::Invalid(invalid, fallback) => {
                            if let Some(in_force) = fallback {
                                tracing::info!(commit = %in_force.revision.id, "the newest valid commit before the invalid tip is in force");
                                status.in_force = Some(in_force.revision.id.clone());
                            }
                            tracing::warn!(
                                commit = %invalid.commit,
                                problems = invalid.problems.len(),
                                "the new state commit is invalid; the previous state stays in force"
                            );
                            status.last_error = Some(invalid);
                        }
                    }
                }
            }
        });
    }
}

/// Fetches (when there is a remote) and loads the tip if it is not `known`; blocking. When
/// nothing is in force yet (a first start) and the tip is invalid, the newest valid commit
/// on the tip's first-parent line is put in force instead, so a server started after a bad
/// push still serves the last good state.
fn check(
    repo: &StateRepo,
    known: Option<&str>,
    nothing_in_force: bool,
) -> Result<(String, Checked), String> {
    let tip = match repo.remote() {
        Some(_) => repo.fetch(),
        None => repo.head(),
    }
    .map_err(|e| e.to_string())?;
    if known == Some(tip.id.as_str()) {
        return Ok((tip.id, Checked::Same));
    }
    let found = match repo.load(&tip.id) {
        Ok(state) => Checked::Valid(InForce {
            revision: tip.clone(),
            state: Arc::new(state),
        }),
        Err(StateError::InvalidCommit { commit, errors }) => {
            let fallback = if nothing_in_force {
                newest_valid_ancestor(repo, &tip)
            } else {
                None
            };
            Checked::Invalid(
                InvalidCommit {
                    commit,
                    problems: errors.problems().to_vec(),
                },
                fallback,
            )
        }
        Err(other) => return Err(other.to_string()),
    };
    Ok((tip.id, found))
}

/// The newest commit before `tip` (first parents only) whose state is valid.
fn newest_valid_ancestor(repo: &StateRepo, tip: &Revision) -> Option<InForce> {
    let mut parent = tip.parents.first().cloned();
    for _ in 0..MAX_FALLBACK_DEPTH {
        let revision = repo.resolve(&parent?).ok()?;
        match repo.load(&revision.id) {
            Ok(state) => {
                return Some(InForce {
                    revision,
                    state: Arc::new(state),
                });
            }
            Err(StateError::InvalidCommit { .. }) => parent = revision.parents.first().cloned(),
            Err(_) => return None,
        }
    }
    None
}

/// The waits after failed checks: about twice the poll interval after the first, doubled
/// per further failure up to `max`, with jitter, and never below the poll interval.
fn failure_backoff(poll: Duration, max: Duration) -> Backoff {
    Backoff::new(poll.saturating_mul(2), max.max(poll))
}

#[cfg(test)]
mod tests;
