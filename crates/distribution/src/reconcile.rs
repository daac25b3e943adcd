//! The reconcile loop: every desired version gets an image.
//!
//! It follows the state in force (from the [`watcher`](crate::watcher)), asks the
//! [`images`](crate::images) store which images exist, lets the pure
//! [`plan_builds`](vupdate_core::reconcile::plan_builds) say what to build, and runs each
//! build as a [`task`](crate::tasks) through a [`BuildRunner`]. Builds of one service run one
//! at a time (a client build waits for its developer build), different services in
//! parallel up to a limit.
//!
//! A build that failed is not retried in a loop: it stays failed, visible in the status,
//! until the state in force changes (a new commit) or [`Reconciler::retry_failed`] is
//! called. Developer versions of other distributions (`jetto-…` on `orbit`) come from a
//! provider, so they are never built here.
//!
//! [`process`] holds the runner a real server uses: each build as a `vupdate builder`
//! child process in its own process group, talking to the server's API.

mod process;

pub use process::{BuilderProgram, ProcessRunner, ServerLink};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tracing::Instrument;
use vupdate_core::reconcile::{Build, BuildKey, plan_builds};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{Revision, State};

use crate::images::{ImageStore, ImageVersion};
use crate::tasks::{TaskContext, TaskId, TaskManager};
use crate::watcher::InForce;

/// The future a build returns: `Err` carries the message shown in the status.
pub type BuildFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One build the loop asks for: what to build, and the state commit that asks for it.
#[derive(Debug, Clone)]
pub struct BuildOrder {
    /// What to build.
    pub build: Build,
    /// The validated state of `revision`.
    pub state: Arc<State>,
    /// The state commit in force when the build was planned.
    pub revision: Revision,
}

/// Runs one build: [`ProcessRunner`] runs `vupdate builder` as a child process; tests
/// give their own.
pub trait BuildRunner: Send + Sync + 'static {
    /// Builds `build` from the settings in `state`, logging into `task`; on success the
    /// image is in the image store when the future ends.
    fn run(&self, build: Build, state: Arc<State>, task: TaskContext) -> BuildFuture;

    /// What the loop calls: [`run`](Self::run) with the state commit too. The default
    /// ignores the commit; a runner that reads the settings itself overrides this.
    fn run_order(&self, order: BuildOrder, task: TaskContext) -> BuildFuture {
        self.run(order.build, order.state, task)
    }

    /// Called once by the server before the loop starts, with how a builder reaches it
    /// (its URL and a Builder token); the default ignores it.
    fn attach(&self, _server: &ServerLink) {}
}

/// The runner in force until the builder exists: every build fails with a clear message.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuilderUnavailable;

/// The message a build fails with while no builder is configured.
pub const BUILDER_UNAVAILABLE: &str = "no builder is available on this distribution yet, so this version cannot be built; upload its image instead";

impl BuildRunner for BuilderUnavailable {
    fn run(&self, build: Build, _state: Arc<State>, task: TaskContext) -> BuildFuture {
        Box::pin(async move {
            let what = describe(&build);
            task.log(
                vupdate_core::log::Level::Error,
                "BUILD",
                &format!("{what}: {BUILDER_UNAVAILABLE}"),
            );
            Err(BUILDER_UNAVAILABLE.to_owned())
        })
    }
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// This distribution's name: developer versions of other distributions are not built here.
    pub distribution: String,
    /// How many builds may run at once (of different services).
    pub max_parallel_builds: usize,
    /// How often to look again even when nothing signalled a change (images removed by hand…).
    pub resync_interval: Duration,
}

/// Where one planned build stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    /// Planned, waiting for its service's other build or a free slot.
    Queued,
    /// Running as this task.
    Running {
        /// The build task.
        task: TaskId,
    },
    /// Failed in this task; not retried until the state changes or a retry is asked for.
    Failed {
        /// The build task, whose log says more.
        task: TaskId,
        /// Why it failed.
        message: String,
    },
}

/// What the loop is doing, for the status query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileStatus {
    /// The state commit the loop works on.
    pub commit: Option<String>,
    /// Every build the state needs that has no image yet, and where it stands.
    pub builds: BTreeMap<BuildKey, BuildState>,
}

impl ReconcileStatus {
    /// Whether every desired version has its image.
    pub fn is_synced(&self) -> bool {
        self.commit.is_some() && self.builds.is_empty()
    }
}

/// What the API needs of a running loop: its status, and asking it to look again or retry.
#[derive(Debug, Clone)]
pub struct ReconcileHandle {
    status: watch::Receiver<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
}

impl ReconcileHandle {
    /// The loop's current status.
    pub fn status(&self) -> ReconcileStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every new status.
    pub fn subscribe(&self) -> watch::Receiver<ReconcileStatus> {
        self.status.clone()
    }

    /// Asks the loop to look again now (e.g. after an image was uploaded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Forgets failed builds so they are tried again.
    pub fn retry_failed(&self) {
        self.retry.notify_one();
    }
}

/// A running reconcile loop; dropping it stops the loop (its stop sender goes away).
#[derive(Debug)]
pub struct Reconciler {
    status: watch::Receiver<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Reconciler {
    /// Starts the loop over the state in force; it looks at once.
    pub fn start(
        config: ReconcileConfig,
        in_force: watch::Receiver<Option<InForce>>,
        images: ImageStore,
        tasks: TaskManager,
        runner: Arc<dyn BuildRunner>,
    ) -> Reconciler {
        let (status_tx, status) = watch::channel(ReconcileStatus::default());
        let wake = Arc::new(Notify::new());
        let retry = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let state = Loop {
            config,
            in_force,
            images,
            tasks,
            runner,
            status: status_tx,
            wake: Arc::clone(&wake),
            retry: Arc::clone(&retry),
            stopped,
            done_tx,
            done_rx,
            commit: None,
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
        };
        let task = tokio::spawn(state.run().instrument(tracing::info_span!("reconcile")));
        Reconciler {
            status,
            wake,
            retry,
            stop,
            task,
        }
    }

    /// The loop's current status.
    pub fn status(&self) -> ReconcileStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every new status.
    pub fn subscribe(&self) -> watch::Receiver<ReconcileStatus> {
        self.status.clone()
    }

    /// A cheap handle on the status, wake and retry, for the API.
    pub fn handle(&self) -> ReconcileHandle {
        ReconcileHandle {
            status: self.status.clone(),
            wake: Arc::clone(&self.wake),
            retry: Arc::clone(&self.retry),
        }
    }

    /// Asks the loop to look again now (e.g. after an image was uploaded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Forgets failed builds so they are tried again (the "retry by hand" of the status page).
    pub fn retry_failed(&self) {
        self.retry.notify_one();
    }

    /// Stops the loop; running build tasks go on until they end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A build that ended: its key, its task, and the failure message if it failed.
type Done = (BuildKey, TaskId, Option<String>);

struct Loop {
    config: ReconcileConfig,
    in_force: watch::Receiver<Option<InForce>>,
    images: ImageStore,
    tasks: TaskManager,
    runner: Arc<dyn BuildRunner>,
    status: watch::Sender<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
    stopped: watch::Receiver<bool>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    commit: Option<String>,
    running: BTreeMap<BuildKey, TaskId>,
    failed: BTreeMap<BuildKey, (TaskId, String)>,
}

impl Loop {
    async fn run(mut self) {
        let mut resync = tokio::time::interval(self.config.resync_interval);
        loop {
            self.step().await;
            tokio::select! {
                changed = self.in_force.changed() => if changed.is_err() { break },
                Some(done) = self.done_rx.recv() => self.ended(done),
                () = self.wake.notified() => {}
                () = self.retry.notified() => self.failed.clear(),
                _ = resync.tick() => {}
                _ = self.stopped.changed() => break,
            }
        }
    }

    fn ended(&mut self, (key, task, failure): Done) {
        self.running.remove(&key);
        if let Some(message) = failure {
            tracing::warn!(%task, build = %describe_key(&key), %message, "build failed; not retried until the state changes");
            self.failed.insert(key, (task, message));
        }
    }

    /// Looks at the state in force and starts what it needs; publishes the status.
    async fn step(&mut self) {
        let Some(in_force) = self.in_force.borrow_and_update().clone() else {
            return;
        };
        if self.commit.as_deref() != Some(in_force.revision.id.as_str()) {
            // A new commit is a new chance for every build that failed on the old one.
            self.failed.clear();
            self.commit = Some(in_force.revision.id.clone());
        }
        let state = Arc::clone(&in_force.state);
        let plan = match self.plan(&state).await {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(%error, "cannot read the image store; will look again");
                return;
            }
        };
        for build in &plan {
            self.start_if_possible(build, &in_force).await;
        }
        self.publish(&plan);
    }

    async fn plan(&self, state: &State) -> Result<Vec<Build>, crate::images::ImageError> {
        let desired = &state.desired.developer;
        let clients = state.effective_client_versions();
        let mut have_developer = BTreeSet::new();
        let mut have_client = BTreeSet::new();
        let developers = desired
            .iter()
            .chain(clients.iter().map(|(s, c)| (s, &c.developer)));
        for (service, version) in developers {
            if version.distribution != self.config.distribution
                || self
                    .has(service, ImageVersion::Developer(version.clone()))
                    .await?
            {
                have_developer.insert((service.clone(), version.clone()));
            }
        }
        for (service, version) in &clients {
            if self
                .has(service, ImageVersion::Client(version.clone()))
                .await?
            {
                have_client.insert((service.clone(), version.clone()));
            }
        }
        let failed = self.failed.keys().cloned().collect();
        Ok(plan_builds(
            desired,
            &clients,
            &|s: &ServiceName, v: &DeveloperVersion| {
                have_developer.contains(&(s.clone(), v.clone()))
            },
            &|s: &ServiceName, v: &ClientVersion| have_client.contains(&(s.clone(), v.clone())),
            &failed,
        ))
    }

    async fn has(
        &self,
        service: &ServiceName,
        version: ImageVersion,
    ) -> Result<bool, crate::images::ImageError> {
        Ok(self.images.info(service, &version).await?.is_some())
    }

    async fn start_if_possible(&mut self, build: &Build, in_force: &InForce) {
        let key = build.key();
        let service_busy = self
            .running
            .keys()
            .any(|running| key_service(running) == build.service());
        if service_busy || self.running.len() >= self.config.max_parallel_builds {
            return;
        }
        let (task_type, version) = match build {
            Build::Developer { version, .. } => ("BuildDeveloperVersion", version.to_string()),
            Build::Client { version, .. } => ("BuildClientVersion", version.to_string()),
        };
        let commit = self.commit.clone().unwrap_or_default();
        let parameters = BTreeMap::from([
            ("service".to_owned(), build.service().to_string()),
            ("version".to_owned(), version),
            ("commit".to_owned(), commit),
        ]);
        // The failure message is kept here too: a build can end before anyone waits on it.
        let failure = Arc::new(Mutex::new(None::<String>));
        let work = {
            let order = BuildOrder {
                build: build.clone(),
                state: Arc::clone(&in_force.state),
                revision: in_force.revision.clone(),
            };
            let (runner, failure) = (Arc::clone(&self.runner), Arc::clone(&failure));
            move |context: TaskContext| async move {
                let result = runner.run_order(order, context).await;
                if let Err(message) = &result {
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
                }
                result
            }
        };
        let started = self
            .tasks
            .start(task_type, parameters, vec![build.service().clone()], work)
            .await;
        let task = match started {
            Ok(task) => task,
            Err(error) => {
                tracing::error!(%error, build = %describe_key(&key), "cannot start a build task; will look again");
                return;
            }
        };
        tracing::info!(%task, build = %describe(build), "build started");
        self.running.insert(key.clone(), task.clone());
        let (tasks, done) = (self.tasks.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            let outcome = tasks.wait(&task).await;
            let kept = failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let failure = match outcome {
                Ok(outcome) if outcome.succeeded => None,
                Ok(outcome) => Some(
                    kept.or(outcome.message)
                        .unwrap_or_else(|| "the build failed; see its task log".to_owned()),
                ),
                Err(error) => Some(format!("the build task could not be followed: {error}")),
            };
            let _ = done.send((key, task, failure));
        });
    }

    fn publish(&self, plan: &[Build]) {
        let builds = plan
            .iter()
            .map(|build| {
                let key = build.key();
                let state = match self.running.get(&key) {
                    Some(task) => BuildState::Running { task: task.clone() },
                    None => BuildState::Queued,
                };
                (key, state)
            })
            // The plan leaves failed builds out (and what they block); show them as failed.
            .chain(self.failed.iter().map(|(key, (task, message))| {
                (
                    key.clone(),
                    BuildState::Failed {
                        task: task.clone(),
                        message: message.clone(),
                    },
                )
            }))
            .collect();
        self.status.send_replace(ReconcileStatus {
            commit: self.commit.clone(),
            builds,
        });
    }
}

fn key_service(key: &BuildKey) -> &ServiceName {
    match key {
        BuildKey::Developer(service, _) | BuildKey::Client(service, _) => service,
    }
}

fn describe_key(key: &BuildKey) -> String {
    match key {
        BuildKey::Developer(service, version) => {
            format!("developer version {version} of {service}")
        }
        BuildKey::Client(service, version) => format!("client version {version} of {service}"),
    }
}

fn describe(build: &Build) -> String {
    match build {
        Build::Developer { service, version } => {
            format!("developer version {version} of {service}")
        }
        Build::Client {
            service, version, ..
        } => format!("client version {version} of {service}"),
    }
}

#[cfg(test)]
mod tests;
