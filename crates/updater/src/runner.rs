//! One service on the VM, for the updater's whole life: recover what a crash left, run the
//! installed version, install the desired one, roll back a version that does not start.
//!
//! [`ServiceRunner::open`] takes the service's directory (locked against a second
//! updater), kills whatever a crashed updater left running with the service's marker,
//! and reads the journal. [`ServiceRunner::run`] then follows a `watch` of the desired
//! version: each change that names neither the installed version nor the one that failed
//! is fetched through an [`ImageSource`] and installed by the plan loop of
//! [`crate::install`] (the version kept in `previous/` needs no image: it is swapped
//! back). The service's [`ServiceState`] is published on a `watch` channel at every step
//! and every supervisor change.
//!
//! At a self-update the runner is told to detach rather than stop: its supervisor gives
//! the run up alive ([`ServiceRunner::detach`]), and the next updater process opens the
//! service with that run ([`ServiceRunner::open_with`]), adopting it instead of killing
//! it as a leftover (see [`crate::handover`]). The updater's own service is a runner too
//! ([`ServiceRunner::open_self`]): its "start" is the handover to the new binary.
//!
//! - `execute` (private): doing each [`Action`] of the plan on the real directory and processes.
//! - `self_update` (private): the updater's own service: the probe and the handover as
//!   its start window.

mod execute;
mod self_update;

use execute::forward_status;

pub(crate) use self_update::running_from_exe;
pub use self_update::{SelfRole, Staged};

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use vupdate_backoff::Backoff;
use vupdate_core::service::ServiceInstance;
use vupdate_core::version::ClientVersion;

use crate::Error;
use crate::faults::FaultReports;
use crate::handover::LiveService;
use crate::images::ImageSource;
use crate::install::journal::{Journal, Step, Task};
use crate::install::plan::{Action, Limits, Memory, first_step, plan};
use crate::layout::{OWNER_ENV, ServiceDir};
use crate::logs::{LogOptions, LogPipeline, SpoolWriter};
use crate::state::{ServiceState, StateFeed};
use crate::supervisor::cgroup::{Cgroup, CgroupMode, cgroup_name};
use crate::supervisor::stop::end_tree;
use crate::supervisor::tree::TreeTracker;
use crate::supervisor::{
    ServiceStatus, Supervisor, SupervisorHandle, SupervisorOptions, adoptable,
};

/// How a service is installed and run; the same for every service of an updater.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerOptions {
    /// How long a new version must stay up to be kept.
    pub start_window: Duration,
    /// Failed start windows in a row that roll a version back.
    pub start_attempts: u32,
    /// How long one install or post-install command may run.
    pub command_timeout: Duration,
    /// The most bytes an image may unpack to.
    pub max_image_bytes: u64,
    /// How long processes a crashed updater left get after SIGTERM, before SIGKILL.
    pub leftover_grace: Duration,
    /// Restarts, cgroups and sampling of the supervisors.
    pub supervisor: SupervisorOptions,
    /// The in-memory parts of the log pipeline.
    pub log: LogOptions,
    /// The size at which the upload spool starts a new segment.
    pub spool_segment_bytes: u64,
    /// The most bytes the upload spool keeps.
    pub spool_max_bytes: u64,
    /// The most bytes the faults folder keeps.
    pub faults_max_bytes: u64,
    /// About the delay before fetching an image again after a failure (with jitter);
    /// doubled up to 32 times it.
    pub fetch_retry: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            start_window: Duration::from_secs(10),
            start_attempts: 3,
            command_timeout: Duration::from_secs(600),
            max_image_bytes: 4 * 1024 * 1024 * 1024,
            leftover_grace: Duration::from_secs(5),
            supervisor: SupervisorOptions::default(),
            log: LogOptions::default(),
            spool_segment_bytes: 8 * 1024 * 1024,
            spool_max_bytes: 1024 * 1024 * 1024,
            faults_max_bytes: crate::faults::DEFAULT_MAX_TOTAL_BYTES,
            fetch_retry: Duration::from_secs(5),
        }
    }
}

/// How an install ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The version is in `current/` and passed its start window.
    Installed,
    /// The version is not installed: it is the failed one and stays skipped while desired.
    Skipped,
    /// The version failed before the swap; the old version kept running.
    Aborted {
        /// What went wrong.
        error: String,
    },
    /// The version failed after the swap and the previous one was put back.
    RolledBack {
        /// What went wrong.
        error: String,
    },
    /// The version failed and there was nothing to roll back to: it stays, restarted.
    KeptFailing {
        /// What went wrong.
        error: String,
    },
}

/// How a runner's [`ServiceRunner::run_until`] is to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Stop the service, tree-wide.
    Stop,
    /// Leave the service running for the next updater process and give its run up.
    Detach,
}

/// Called with each action before it is done (progress display, tests).
pub type ActionObserver = Box<dyn Fn(&Action) + Send + Sync>;

/// One service: its directory, journal, logs, faults, supervisor and state.
pub struct ServiceRunner {
    dir: ServiceDir,
    options: RunnerOptions,
    journal: Journal,
    memory: Memory,
    pipeline: Arc<LogPipeline>,
    faults: Arc<FaultReports>,
    supervisor: Option<SupervisorHandle>,
    state: Arc<watch::Sender<ServiceState>>,
    observer: Option<ActionObserver>,
    self_role: Option<SelfRole>,
    /// The desired version being followed, so a newer one ends a start window early.
    desired: Option<watch::Receiver<Option<ClientVersion>>>,
    _lock: File,
}

impl std::fmt::Debug for ServiceRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRunner")
            .field("dir", &self.dir)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl ServiceRunner {
    /// Opens the directory of `instance` under `work_dir` (absolute; created if needed),
    /// locks it, kills what a crashed updater left running for it and reads the journal.
    /// Nothing is started until [`ServiceRunner::recover`] or [`ServiceRunner::run`].
    pub async fn open(
        work_dir: &std::path::Path,
        instance: ServiceInstance,
        options: RunnerOptions,
    ) -> Result<ServiceRunner, Error> {
        Self::open_with(work_dir, instance, options, None).await
    }

    /// Like [`ServiceRunner::open`], but adopts the run `live` hands over from the
    /// previous updater process when it is alive, this process's child and of the
    /// installed version: its supervisor goes on with it (same pid, same pipes). A run
    /// that cannot be adopted is killed like a leftover.
    pub async fn open_with(
        work_dir: &std::path::Path,
        instance: ServiceInstance,
        options: RunnerOptions,
        live: Option<LiveService>,
    ) -> Result<ServiceRunner, Error> {
        let dir = ServiceDir::new(work_dir, instance);
        fs::create_dir_all(dir.root()).map_err(Error::io("create", dir.root()))?;
        let lock_path = dir.lock();
        let lock = File::create(&lock_path).map_err(Error::io("create", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: lock_path }),
            Err(fs::TryLockError::Error(error)) => {
                return Err(Error::io("lock", &lock_path)(error));
            }
        }
        let adopting = live.as_ref().is_some_and(|live| {
            live.directory == dir.root()
                && live.run.as_ref().is_some_and(|run| adoptable(&run.record))
        });
        kill_leftovers(&dir, &options, !adopting).await;
        let journal = Journal::load(&dir.journal())?.recovered();
        let spool = SpoolWriter::open(
            &dir.spool(),
            options.spool_segment_bytes,
            options.spool_max_bytes,
        )?;
        let pipeline = Arc::new(LogPipeline::new(Some(spool), options.log));
        let faults = Arc::new(FaultReports::open(&dir.faults(), options.faults_max_bytes)?);
        let (state, _) = watch::channel(ServiceState::unknown());
        let mut runner = ServiceRunner {
            dir,
            options,
            journal,
            memory: Memory::default(),
            pipeline,
            faults,
            supervisor: None,
            state: Arc::new(state),
            observer: None,
            self_role: None,
            desired: None,
            _lock: lock,
        };
        if let Some(live) = live.filter(|_| adopting) {
            runner.adopt(live).await;
        }
        runner.publish();
        Ok(runner)
    }

    /// Goes on supervising the alive run of `live` (checked by [`Self::open_with`]), or
    /// kills it when it is not of the installed version or runs nothing now.
    async fn adopt(&mut self, live: LiveService) {
        let Some(run) = live.run else {
            return;
        };
        let pid = run.record.pid;
        let installed = self
            .journal
            .current
            .as_ref()
            .map(|current| current.version.clone());
        let spec = match (&live.version, &installed) {
            (Some(version), Some(installed)) if version == installed => self
                .run_spec(version)
                .map(|spec| spec.map(|spec| (version.clone(), spec))),
            _ => Ok(None),
        };
        match spec {
            Ok(Some((version, spec))) => {
                let (handle, _events) = Supervisor::adopt(
                    spec,
                    self.pipeline.clone(),
                    Some(self.faults.clone()),
                    self.options.supervisor,
                    run,
                );
                tokio::spawn(forward_status(handle.status(), self.state.clone()));
                self.supervisor = Some(handle);
                self.memory.running = Some(version);
            }
            outcome => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "cannot read the rules of the adopted run");
                }
                tracing::warn!(
                    service = %self.dir.name(),
                    pid,
                    version = ?live.version,
                    ?installed,
                    "the handed-over run is not of the installed version: stopping it"
                );
                drop(run);
                kill_leftovers(&self.dir, &self.options, true).await;
            }
        }
    }

    /// The service's directory.
    pub fn dir(&self) -> &ServiceDir {
        &self.dir
    }

    /// The journal as it stands.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The service's log pipeline (its spool is `dir().spool()`, read by a log drain).
    pub fn pipeline(&self) -> Arc<LogPipeline> {
        self.pipeline.clone()
    }

    /// The service's fault reports (emptied by a fault uploader).
    pub fn faults(&self) -> Arc<FaultReports> {
        self.faults.clone()
    }

    /// The service's state, updated at every step and supervisor change.
    pub fn state(&self) -> watch::Receiver<ServiceState> {
        self.state.subscribe()
    }

    /// The state feed the state reporter takes.
    pub fn state_feed(&self) -> StateFeed {
        StateFeed {
            instance: self.dir.instance().clone(),
            directory: self.dir.root().display().to_string(),
            state: self.state(),
        }
    }

    /// The status of the running supervisor, if a version runs.
    pub fn supervisor_status(&self) -> Option<watch::Receiver<ServiceStatus>> {
        self.supervisor.as_ref().map(SupervisorHandle::status)
    }

    /// Sets a function called with each action before it is done.
    pub fn set_observer(&mut self, observer: ActionObserver) {
        self.observer = Some(observer);
    }

    /// Finishes or undoes an install a crash interrupted and starts the installed version.
    pub async fn recover(&mut self) -> Result<(), Error> {
        self.settle().await
    }

    /// Installs `version`, fetched from `images` unless its image is already here; returns
    /// how it ended. The version that failed last is skipped while it is the one asked for.
    pub async fn install<I: ImageSource>(
        &mut self,
        version: &ClientVersion,
        images: &I,
    ) -> Result<InstallOutcome, Error> {
        let span = tracing::info_span!("install", service = %self.dir.name(), version = %version);
        tracing::Instrument::instrument(self.install_inner(version, images), span).await
    }

    async fn install_inner<I: ImageSource>(
        &mut self,
        version: &ClientVersion,
        images: &I,
    ) -> Result<InstallOutcome, Error> {
        self.settle().await?;
        if self
            .journal
            .failed
            .as_ref()
            .is_some_and(|failed| &failed.version == version)
        {
            return Ok(InstallOutcome::Skipped);
        }
        if self
            .journal
            .current
            .as_ref()
            .is_some_and(|current| &current.version == version)
        {
            return Ok(InstallOutcome::Installed);
        }
        let disk = execute::read_disk(&self.dir, Some(version));
        let step = first_step(&self.journal, &disk, version);
        let image = self.dir.image(version);
        if step == Step::Stop {
            tracing::info!("the version is kept in previous/: swapping it back, no image needed");
        } else if !image.exists() {
            tracing::info!("fetching the image");
            images
                .fetch(&self.dir.instance().service, version, &image)
                .await
                .map_err(|error| {
                    let (instance, version) = (self.dir.name(), version.to_string());
                    if I::is_absent(&error) {
                        Error::ImageAbsent { instance, version }
                    } else {
                        let message = error.to_string();
                        Error::Fetch {
                            instance,
                            version,
                            message,
                        }
                    }
                })?;
        }
        let mut journal = self.journal.clone();
        journal.task = Some(Task {
            to: version.clone(),
            step,
            started: Utc::now(),
            start_failures: 0,
        });
        self.write(journal)?;
        self.settle().await?;
        let journal = &self.journal;
        let error = journal
            .update_error
            .as_ref()
            .map(|error| error.error.clone())
            .unwrap_or_default();
        let failed = journal
            .failed
            .as_ref()
            .is_some_and(|failed| &failed.version == version);
        let current = journal.current.as_ref().map(|current| &current.version);
        Ok(match (current == Some(version), failed) {
            (true, false) => InstallOutcome::Installed,
            (true, true) => InstallOutcome::KeptFailing { error },
            (false, _) if error.contains("rolling back") => InstallOutcome::RolledBack { error },
            (false, _) => InstallOutcome::Aborted { error },
        })
    }

    /// Follows `desired` until `shutdown` completes: recovers, then installs each desired
    /// version that is neither installed nor the failed one, retrying fetches with
    /// backoff; at shutdown stops the service (an install under way resumes at the next
    /// start, from its journal).
    pub async fn run<I: ImageSource>(
        self,
        desired: watch::Receiver<Option<ClientVersion>>,
        images: &I,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        self.run_until(desired, images, async {
            shutdown.await;
            Ending::Stop
        })
        .await
        .map(drop)
    }

    /// [`ServiceRunner::run`] until `end` says how to end: [`Ending::Stop`] stops the
    /// service; [`Ending::Detach`] leaves it running and returns its run for the next
    /// updater process (an install under way is cut short and resumes there, from the
    /// journal).
    pub async fn run_until<I: ImageSource>(
        mut self,
        mut desired: watch::Receiver<Option<ClientVersion>>,
        images: &I,
        end: impl std::future::Future<Output = Ending>,
    ) -> Result<Option<LiveService>, Error> {
        tokio::pin!(end);
        let (ending, result) = tokio::select! {
            ending = &mut end => (ending, Ok(())),
            result = self.follow(&mut desired, images) => (Ending::Stop, result),
        };
        match ending {
            Ending::Stop => {
                self.stop().await;
                result.map(|()| None)
            }
            Ending::Detach => Ok(Some(self.detach().await)),
        }
    }

    async fn follow<I: ImageSource>(
        &mut self,
        desired: &mut watch::Receiver<Option<ClientVersion>>,
        images: &I,
    ) -> Result<(), Error> {
        if let Err(error) = self.recover().await {
            tracing::error!(service = %self.dir.name(), %error, "recovery failed");
            self.report_error(&error);
        }
        let mut retry = Backoff::new(
            self.options.fetch_retry,
            self.options.fetch_retry.saturating_mul(32),
        );
        self.desired = Some(desired.clone());
        loop {
            let want = desired.borrow_and_update().clone();
            let mut wait = None;
            // A wake-up for the version already in place, or for the failed one still
            // desired (the distribution stored some image), has nothing to do.
            let in_place = want.as_ref().is_some_and(|want| {
                let journal = &self.journal;
                let current = journal.current.as_ref().map(|current| &current.version);
                let failed = journal.failed.as_ref().map(|failed| &failed.version);
                journal.task.is_none() && (current == Some(want) || failed == Some(want))
            });
            if let Some(want) = want.filter(|_| !in_place) {
                self.forget_failed_unless(&want)?;
                match self.install(&want, images).await {
                    Ok(outcome) => {
                        retry.reset();
                        tracing::info!(service = %self.dir.name(), version = %want, ?outcome, "install done");
                    }
                    Err(error) => {
                        let delay = retry.next_delay();
                        if matches!(error, Error::ImageAbsent { .. }) {
                            // Not an error: the version is still being built, and its image
                            // being stored wakes the updater (the desired list is sent again).
                            tracing::info!(service = %self.dir.name(), version = %want, retry_in = ?delay, "waiting for the image: the distribution has none yet");
                        } else {
                            tracing::warn!(service = %self.dir.name(), %error, retry_in = ?delay, "install failed; retrying");
                            self.report_error(&error);
                        }
                        wait = Some(delay);
                    }
                }
            }
            let changed = async {
                match wait {
                    Some(wait) => {
                        let _ = tokio::time::timeout(wait, desired.changed()).await;
                        Ok(())
                    }
                    None => desired.changed().await,
                }
            };
            if changed.await.is_err() {
                // The desired versions' sender is gone: keep running what runs.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The desired version moved away from the failed one: it may be tried again later.
    fn forget_failed_unless(&mut self, want: &ClientVersion) -> Result<(), Error> {
        if self
            .journal
            .failed
            .as_ref()
            .is_some_and(|failed| &failed.version != want)
        {
            let journal = Journal {
                failed: None,
                ..self.journal.clone()
            };
            self.write(journal)?;
        }
        Ok(())
    }

    /// Gives the running version's run up, alive, for the next updater process (see
    /// [`crate::supervisor::SupervisorHandle::detach`]); its lines read so far are flushed.
    pub async fn detach(&mut self) -> LiveService {
        let run = match self.supervisor.take() {
            Some(handle) => handle.detach().await,
            None => None,
        };
        self.pipeline.flush();
        LiveService {
            instance: self.dir.name(),
            directory: self.dir.root().to_owned(),
            version: self.memory.running.clone(),
            run,
        }
    }

    /// Stops the running version, tree-wide.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.supervisor.take() {
            handle.stop().await;
        }
        self.memory.running = None;
        self.publish();
    }

    /// Runs the plan loop until it is idle.
    async fn settle(&mut self) -> Result<(), Error> {
        let limits = Limits {
            start_attempts: self.options.start_attempts,
        };
        loop {
            let disk =
                execute::read_disk(&self.dir, self.journal.task.as_ref().map(|task| &task.to));
            let action = plan(&self.journal, &disk, &self.memory, limits, Utc::now());
            if action == Action::Idle {
                return Ok(());
            }
            if let Some(observer) = &self.observer {
                observer(&action);
            }
            tracing::debug!(service = %self.dir.name(), ?action, "install action");
            self.execute(action).await?;
            self.publish();
        }
    }

    fn write(&mut self, journal: Journal) -> Result<(), Error> {
        journal.store(&self.dir.journal())?;
        self.journal = journal;
        self.memory.next_step();
        self.publish();
        Ok(())
    }

    fn report_error(&self, error: &Error) {
        let error = error.to_string();
        self.state.send_modify(|state| {
            state.update_error = Some(crate::state::UpdateError {
                critical: false,
                error,
            });
        });
    }

    /// Publishes the state from the journal (the supervisor's part is forwarded by the
    /// task [`execute`] starts with each supervisor).
    fn publish(&self) {
        let journal = &self.journal;
        self.state.send_modify(|state| {
            state.time = Utc::now();
            state.version = journal
                .current
                .as_ref()
                .map(|current| current.version.clone());
            state.install_time = journal.current.as_ref().map(|current| current.install_time);
            state.update_to_version = journal.task.as_ref().map(|task| task.to.clone());
            state.update_error = journal.update_error.clone();
            state.failed_version = journal.failed.as_ref().map(|failed| failed.version.clone());
        });
    }
}

/// Kills what carries the service's markers (or sits in its cgroup): what a crashed
/// updater left running, whose output nobody reads any more. With `runs` false, only
/// install commands are (the run is being adopted).
async fn kill_leftovers(dir: &ServiceDir, options: &RunnerOptions, runs: bool) {
    let cgroup = (runs && options.supervisor.cgroups == CgroupMode::Auto)
        .then(|| Cgroup::create(&cgroup_name(&dir.name(), dir.root())).ok())
        .flatten();
    let owners = if runs {
        vec![dir.run_owner(), dir.command_owner()]
    } else {
        vec![dir.command_owner()]
    };
    for owner in owners {
        let mut tree = TreeTracker::leftovers(format!("{OWNER_ENV}={owner}"));
        let found = tree.scan(&cgroup.as_ref().map(Cgroup::pids).unwrap_or_default(), true);
        if found.running.is_empty() {
            continue;
        }
        let pids: Vec<i32> = found.running.iter().map(|info| info.pid).collect();
        tracing::warn!(service = %dir.name(), ?pids, "stopping processes a previous updater left");
        end_tree(
            &mut tree,
            cgroup.as_ref(),
            None,
            Signal::SIGTERM,
            options.leftover_grace,
        )
        .await;
    }
    if let Some(cgroup) = cgroup {
        let _ = cgroup.remove();
    }
}

/// Where each `writeLogs` history folder goes: `log.history/<version>-<time>[-failed]`.
pub(crate) fn history_dir(
    dir: &ServiceDir,
    version: &ClientVersion,
    started: chrono::DateTime<Utc>,
    failed: bool,
) -> PathBuf {
    let suffix = if failed { "-failed" } else { "" };
    dir.log_history().join(format!(
        "{version}-{}{suffix}",
        started.format("%Y%m%dT%H%M%S")
    ))
}
