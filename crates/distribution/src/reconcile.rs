//! The reconcile loop: every desired version gets an image.
//!
//! It follows the state in force (from the [`watcher`](crate::watcher)), asks the
//! [`images`](crate::images) store which images exist, lets the pure [`plan_builds`] say
//! what to build, and runs each build as a [`task`](crate::tasks) through a
//! [`BuildRunner`]. Builds of one service run one at a time (a client build waits for its
//! developer build), different services in parallel up to a limit.
//!
//! A build that failed is not retried in a loop: it stays failed, visible in the status,
//! until the state in force changes (a new commit) or [`Reconciler::retry_failed`] is
//! called. Developer versions of other distributions (`jetto-…` on `orbit`) come from a
//! provider, so they are never built here.
//!
//! Client generations: given a [`GenerationLink`] (the store and the state repo), the loop
//! also starts a `BuildClientGeneration` task for each service whose client settings in
//! force differ from what the newest client version of its developer version was made
//! from ([`plan_generation_checks`] says which; `generation` runs one). A new generation
//! is committed to `desired/client.yaml` by the distribution; a check that found the
//! content unchanged is remembered for that (service, developer version, settings hash)
//! and never repeated by itself, one that failed until the state changes or a retry;
//! [`ReconcileHandle::rebuild_client`] asks for one by hand (a settings repository
//! changed, which Git in the state repo cannot show).
//!
//! `process` holds the runner a real server uses: each build as a `vupdate builder`
//! child process in its own process group, talking to the server's API.

mod generation;
mod process;

pub(crate) use generation::newest_record;
pub use generation::{GenerationLink, GenerationOutcome, distribution_author};
pub(crate) use process::requester;
pub use process::{BuilderProgram, ProcessRunner, ServerLink};
pub use vupdate_state::{client_settings_hash, service_settings_hash};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::Instrument;
use vupdate_core::reconcile::generations::{
    ClientInForce, NewestRecord, generation_key, plan_generation_checks,
};
use vupdate_core::reconcile::{Build, BuildKey, plan_builds};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{Revision, State};

use crate::images::{ImageStore, ImageVersion};
use crate::leadership::Leadership;
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

    /// Runs a build a consumer distribution asked for (`runBuilder`), with the consumer's
    /// settings and against the consumer's API, logging into `task` here; the default
    /// refuses.
    fn run_for_consumer(&self, build: ConsumerBuild, task: TaskContext) -> BuildFuture {
        Box::pin(async move {
            let message = format!(
                "{} for consumer `{}`: this distribution runs no builds for consumers",
                describe(&build.build),
                build.consumer
            );
            task.log(vupdate_core::log::Level::Error, "BUILD", &message);
            Err(message)
        })
    }
}

/// A build a consumer distribution asked this one to run (`runBuilder`): its builder
/// reads the consumer's settings at the consumer's commit and sends everything to the
/// consumer's API, with a Builder token of the consumer's.
#[derive(Clone)]
pub struct ConsumerBuild {
    /// What to build.
    pub build: Build,
    /// The consumer distribution (its account here).
    pub consumer: String,
    /// Its URL, from `consumers.yaml` here.
    pub url: String,
    /// Its Builder token; in the child's environment only, never logged or shown.
    token: String,
    /// Its state commit whose settings the build uses.
    pub commit: String,
    /// Its task, whose log gets the build's lines.
    pub task: String,
    /// Who asked for the build there.
    pub author: String,
    /// Why.
    pub comment: String,
}

impl ConsumerBuild {
    /// A build for `consumer` at `url`, with its Builder `token`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        build: Build,
        consumer: String,
        url: String,
        token: String,
        commit: String,
        task: String,
        author: String,
        comment: String,
    ) -> ConsumerBuild {
        ConsumerBuild {
            build,
            consumer,
            url,
            token,
            commit,
            task,
            author,
            comment,
        }
    }

    /// The consumer's Builder token, for the child's environment.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for ConsumerBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("ConsumerBuild")
            .field("build", &self.build)
            .field("consumer", &self.consumer)
            .field("url", &self.url)
            .field("commit", &self.commit)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
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

/// Why a client generation check asked for by hand did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildRefused {
    /// No valid state commit is in force yet.
    #[error("no valid commit of the state repo is in force yet; see `status` for why")]
    NoState,
    /// The service has no client version in force.
    #[error(
        "service `{0}` has no client version in force (neither desired/client.yaml nor a `self` profile with a desired developer version names it)"
    )]
    NotDesired(ServiceName),
    /// The state does not declare the service.
    #[error("service `{0}` is not declared in the state repo (no services/{0}.yaml)")]
    NotDeclared(ServiceName),
    /// The client version in force has no image yet: its own build comes first.
    #[error(
        "client version {version} of {service} has no image yet; its build uses the client settings in force, so there is nothing to check"
    )]
    NoImage {
        /// The service.
        service: ServiceName,
        /// Its client version in force.
        version: ClientVersion,
    },
    /// Another build of the service runs (its builds share a work directory).
    #[error("a build of {service} runs (task {task}); ask again when it ends")]
    Busy {
        /// The service.
        service: ServiceName,
        /// The running task.
        task: TaskId,
    },
    /// Every build slot is taken.
    #[error("all {0} build slots are busy; ask again when a build ends")]
    NoSlot(usize),
    /// This loop has no store and state repo to check generations with.
    #[error(
        "this distribution does not check client generations (no store or state repo was given to its reconcile loop)"
    )]
    Unavailable,
    /// The task could not be started.
    #[error("cannot start the check: {0}")]
    Start(String),
    /// The loop stopped.
    #[error("the reconcile loop is stopping")]
    Stopped,
}

/// Client versions wanted although no desired list names them yet, by who wants them (a
/// provider whose offer needs its client images before it is committed).
type Wanted = Arc<Mutex<BTreeMap<String, BTreeMap<ServiceName, ClientVersion>>>>;

/// What the API asks of the loop and waits for.
#[derive(Debug)]
enum Request {
    /// A generation check of this service now, whatever the stamps say.
    Rebuild(ServiceName, oneshot::Sender<Result<TaskId, RebuildRefused>>),
}

/// What the API needs of a running loop: its status, and asking it to look again or retry.
#[derive(Debug, Clone)]
pub struct ReconcileHandle {
    status: watch::Receiver<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
    requests: mpsc::UnboundedSender<Request>,
    wanted: Wanted,
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

    /// Asks for the client images of `clients` although no desired list names them (yet):
    /// what `source` (e.g. `provider jetto`) wants replaces what it wanted before; an
    /// empty list withdraws it. Their developer images must exist here, else they wait.
    pub fn want_clients(&self, source: &str, clients: BTreeMap<ServiceName, ClientVersion>) {
        let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = if clients.is_empty() {
            wanted.remove(source).is_some()
        } else {
            wanted.insert(source.to_owned(), clients.clone()) != Some(clients)
        };
        drop(wanted);
        if changed {
            self.wake.notify_one();
        }
    }

    /// Starts a client generation check of `service` now (a settings repository changed,
    /// which the state repo cannot show), whatever the stamps and the memory of earlier
    /// checks say; returns its task id.
    pub async fn rebuild_client(&self, service: ServiceName) -> Result<TaskId, RebuildRefused> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Rebuild(service, reply))
            .map_err(|_| RebuildRefused::Stopped)?;
        answer.await.map_err(|_| RebuildRefused::Stopped)?
    }
}

/// A running reconcile loop; dropping it stops the loop (its stop sender goes away).
#[derive(Debug)]
pub struct Reconciler {
    status: watch::Receiver<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
    requests: mpsc::UnboundedSender<Request>,
    wanted: Wanted,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Reconciler {
    /// [`Reconciler::start_leased`] holding the lease for good, as a single server does.
    #[cfg(test)]
    pub fn start(
        config: ReconcileConfig,
        in_force: watch::Receiver<Option<InForce>>,
        images: ImageStore,
        tasks: TaskManager,
        runner: Arc<dyn BuildRunner>,
        generations: Option<GenerationLink>,
    ) -> Reconciler {
        let leadership = Leadership::sole(&config.distribution);
        Self::start_leased(
            config,
            in_force,
            images,
            tasks,
            runner,
            generations,
            leadership,
        )
    }

    /// Starts the loop over the state in force; it looks at once. It builds only while
    /// `leadership` holds the lease (a single server's is held for good), cancels its
    /// builds when the lease is lost, and plans everything again (failed builds included)
    /// when it takes the lease. With `generations`, it also checks client generations when
    /// client settings change.
    pub fn start_leased(
        config: ReconcileConfig,
        in_force: watch::Receiver<Option<InForce>>,
        images: ImageStore,
        tasks: TaskManager,
        runner: Arc<dyn BuildRunner>,
        generations: Option<GenerationLink>,
        leadership: Leadership,
    ) -> Reconciler {
        let (status_tx, status) = watch::channel(ReconcileStatus::default());
        let wake = Arc::new(Notify::new());
        let retry = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let wanted = Wanted::default();
        let state = Loop {
            lease: leadership.subscribe(),
            leadership,
            wanted: Arc::clone(&wanted),
            config,
            in_force,
            images,
            tasks,
            runner,
            generations,
            status: status_tx,
            wake: Arc::clone(&wake),
            retry: Arc::clone(&retry),
            requests: requests_rx,
            stopped,
            done_tx,
            done_rx,
            commit: None,
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
            settled: BTreeSet::new(),
        };
        let task = tokio::spawn(state.run().instrument(tracing::info_span!("reconcile")));
        Reconciler {
            status,
            wake,
            retry,
            requests,
            wanted,
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
            requests: self.requests.clone(),
            wanted: Arc::clone(&self.wanted),
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
    /// Whether this replica holds the lease; the loop builds only while it does.
    leadership: Leadership,
    lease: watch::Receiver<Option<vupdate_store::Lease>>,
    wanted: Wanted,
    config: ReconcileConfig,
    in_force: watch::Receiver<Option<InForce>>,
    images: ImageStore,
    tasks: TaskManager,
    runner: Arc<dyn BuildRunner>,
    generations: Option<GenerationLink>,
    status: watch::Sender<ReconcileStatus>,
    wake: Arc<Notify>,
    retry: Arc<Notify>,
    requests: mpsc::UnboundedReceiver<Request>,
    stopped: watch::Receiver<bool>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    commit: Option<String>,
    running: BTreeMap<BuildKey, TaskId>,
    failed: BTreeMap<BuildKey, (TaskId, String)>,
    /// Generation checks that ended well (unchanged, or a new generation made): never
    /// repeated by themselves, whatever commit comes, only by hand.
    settled: BTreeSet<BuildKey>,
}

impl Loop {
    async fn run(mut self) {
        let mut resync = tokio::time::interval(self.config.resync_interval);
        loop {
            self.step().await;
            tokio::select! {
                changed = self.in_force.changed() => if changed.is_err() { break },
                Some(done) = self.done_rx.recv() => self.ended(done),
                Some(request) = self.requests.recv() => self.answer(request).await,
                () = self.wake.notified() => {}
                () = self.retry.notified() => self.failed.clear(),
                changed = self.lease.changed() => if changed.is_ok() { self.lease_changed() },
                _ = resync.tick() => {}
                _ = self.stopped.changed() => break,
            }
        }
    }

    /// On a take-over every build is planned again; on a loss the running ones stop (the
    /// new holder runs them again).
    fn lease_changed(&mut self) {
        if self.lease.borrow_and_update().is_some() {
            self.failed.clear();
            return;
        }
        for (key, task) in &self.running {
            tracing::warn!(%task, build = %describe_key(key), "lease lost: cancelling the build; the replica that took the lease over runs it again");
            if let Err(error) = self.tasks.cancel(task) {
                tracing::warn!(%task, %error, "cannot cancel the build");
            }
        }
    }

    fn ended(&mut self, (key, task, failure): Done) {
        self.running.remove(&key);
        match failure {
            Some(message) => {
                tracing::warn!(%task, build = %describe_key(&key), %message, "build failed; not retried until the state changes");
                self.failed.insert(key, (task, message));
            }
            None if matches!(key, BuildKey::Generation(..)) => {
                self.settled.insert(key);
            }
            None => {}
        }
    }

    /// Looks at the state in force and starts what it needs; publishes the status.
    async fn step(&mut self) {
        let Some(in_force) = self.in_force.borrow_and_update().clone() else {
            return;
        };
        if !self.leadership.is_held() {
            // Another replica builds (its tasks are in the store); this one plans nothing,
            // so its status is not "synced".
            self.status.send_replace(ReconcileStatus::default());
            return;
        }
        if self.commit.as_deref() != Some(in_force.revision.id.as_str()) {
            // A new commit is a new chance for every build that failed on the old one.
            self.failed.clear();
            self.commit = Some(in_force.revision.id.clone());
        }
        let state = Arc::clone(&in_force.state);
        let plan = match self.plan(&state).await {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(%error, "cannot read the image store or the version records; will look again");
                return;
            }
        };
        for build in &plan {
            let _ = self.start_if_possible(build, &in_force, false).await;
        }
        self.publish(&plan);
    }

    async fn plan(&mut self, state: &State) -> Result<Vec<Build>, String> {
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
        let failed: BTreeSet<BuildKey> = self.failed.keys().cloned().collect();
        let mut plan = plan_builds(
            desired,
            &clients,
            &|s: &ServiceName, v: &DeveloperVersion| {
                have_developer.contains(&(s.clone(), v.clone()))
            },
            &|s: &ServiceName, v: &ClientVersion| have_client.contains(&(s.clone(), v.clone())),
            &failed,
        );
        plan.extend(self.wanted_builds(&plan, &failed).await?);
        if self.generations.is_some() {
            let mut in_force = BTreeMap::new();
            for (service, version) in &clients {
                let has_image = have_client.contains(&(service.clone(), version.clone()));
                if let Some(facts) = self
                    .client_in_force(state, service, version, has_image)
                    .await?
                {
                    in_force.insert(service.clone(), facts);
                }
            }
            // What was settled for a developer version no longer in force is let go.
            self.settled.retain(|key| match key {
                BuildKey::Generation(service, developer, _) => in_force
                    .get(service)
                    .is_some_and(|facts| &facts.version.developer == developer),
                _ => false,
            });
            plan.extend(plan_generation_checks(
                &in_force,
                &failed,
                &self.settled,
                &BTreeSet::new(),
            ));
        }
        Ok(plan)
    }

    /// Client builds of the versions wanted beside the desired lists (see
    /// [`ReconcileHandle::want_clients`]) that are not planned already, have no image and
    /// did not fail, and whose developer image is here.
    async fn wanted_builds(
        &self,
        planned: &[Build],
        failed: &BTreeSet<BuildKey>,
    ) -> Result<Vec<Build>, String> {
        let wanted: BTreeSet<(ServiceName, ClientVersion)> = self
            .wanted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flat_map(|list| list.iter().map(|(s, v)| (s.clone(), v.clone())))
            .collect();
        let mut builds = Vec::new();
        for (service, version) in wanted {
            let build = Build::Client {
                service: service.clone(),
                from: version.developer.clone(),
                version: version.clone(),
            };
            if planned.contains(&build) || failed.contains(&build.key()) {
                continue;
            }
            let developer = ImageVersion::Developer(version.developer.clone());
            if self.has(&service, ImageVersion::Client(version)).await?
                || !self.has(&service, developer).await?
            {
                continue;
            }
            builds.push(build);
        }
        Ok(builds)
    }

    /// What a generation check of `service` needs to know; `None` when the state does not
    /// declare the service (its client build would fail and say so).
    async fn client_in_force(
        &self,
        state: &State,
        service: &ServiceName,
        version: &ClientVersion,
        has_image: bool,
    ) -> Result<Option<ClientInForce>, String> {
        let Some(link) = &self.generations else {
            return Ok(None);
        };
        let Some(settings) = service_settings_hash(state, service) else {
            return Ok(None);
        };
        let newest = if has_image {
            let record = generation::newest_record(&link.store, service, &version.developer)
                .await
                .map_err(|error| error.to_string())?;
            match record {
                None => NewestRecord::Missing,
                Some(record) => match record.settings {
                    None => NewestRecord::Unstamped,
                    Some(stamp) => NewestRecord::Stamped(stamp.hash),
                },
            }
        } else {
            NewestRecord::Missing
        };
        Ok(Some(ClientInForce {
            version: version.clone(),
            has_image,
            settings,
            newest,
        }))
    }

    async fn has(&self, service: &ServiceName, version: ImageVersion) -> Result<bool, String> {
        Ok(self
            .images
            .info(service, &version)
            .await
            .map_err(|error| error.to_string())?
            .is_some())
    }

    /// A generation check of one service asked for by hand.
    async fn answer(&mut self, request: Request) {
        let Request::Rebuild(service, reply) = request;
        let answer = self.rebuild(&service).await;
        match &answer {
            Ok(task) => {
                tracing::info!(%service, %task, "client generation check asked for by hand")
            }
            Err(refused) => {
                tracing::info!(%service, %refused, "client generation check by hand refused")
            }
        }
        // The loop's next step publishes the status with the check in it.
        let _ = reply.send(answer);
    }

    async fn rebuild(&mut self, service: &ServiceName) -> Result<TaskId, RebuildRefused> {
        if self.generations.is_none() {
            return Err(RebuildRefused::Unavailable);
        }
        let in_force = self
            .in_force
            .borrow()
            .clone()
            .ok_or(RebuildRefused::NoState)?;
        let state = Arc::clone(&in_force.state);
        let version = state
            .effective_client_versions()
            .remove(service)
            .ok_or_else(|| RebuildRefused::NotDesired(service.clone()))?;
        let has_image = self
            .has(service, ImageVersion::Client(version.clone()))
            .await
            .map_err(RebuildRefused::Start)?;
        if !has_image {
            return Err(RebuildRefused::NoImage {
                service: service.clone(),
                version,
            });
        }
        let facts = self
            .client_in_force(&state, service, &version, has_image)
            .await
            .map_err(RebuildRefused::Start)?
            .ok_or_else(|| RebuildRefused::NotDeclared(service.clone()))?;
        let services = BTreeMap::from([(service.clone(), facts)]);
        let forced = BTreeSet::from([service.clone()]);
        let check = plan_generation_checks(&services, &BTreeSet::new(), &BTreeSet::new(), &forced)
            .into_iter()
            .next()
            .ok_or_else(|| RebuildRefused::Start("nothing to check".to_owned()))?;
        if let Some((_, task)) = self
            .running
            .iter()
            .find(|(key, _)| key.service() == service)
        {
            return Err(RebuildRefused::Busy {
                service: service.clone(),
                task: task.clone(),
            });
        }
        if self.running.len() >= self.config.max_parallel_builds {
            return Err(RebuildRefused::NoSlot(self.config.max_parallel_builds));
        }
        // By hand, what earlier checks found for this service is forgotten.
        let key = generation_key(service, &services[service]);
        self.settled
            .retain(|k| k.service() != service || !matches!(k, BuildKey::Generation(..)));
        self.failed.remove(&key);
        if self.commit.as_deref() != Some(in_force.revision.id.as_str()) {
            self.failed.clear();
            self.commit = Some(in_force.revision.id.clone());
        }
        self.start_if_possible(&check, &in_force, true)
            .await
            .map_err(RebuildRefused::Start)?
            .ok_or_else(|| RebuildRefused::Start("the loop could not start it".to_owned()))
    }

    /// Starts `build` unless its service is busy or every slot is taken; its task id when
    /// started. `forced`: a generation check asked for by hand.
    async fn start_if_possible(
        &mut self,
        build: &Build,
        in_force: &InForce,
        forced: bool,
    ) -> Result<Option<TaskId>, String> {
        let key = build.key();
        let service_busy = self
            .running
            .keys()
            .any(|running| running.service() == build.service());
        if service_busy || self.running.len() >= self.config.max_parallel_builds {
            return Ok(None);
        }
        let commit = self.commit.clone().unwrap_or_default();
        let mut parameters = BTreeMap::from([
            ("service".to_owned(), build.service().to_string()),
            ("commit".to_owned(), commit),
        ]);
        let task_type = match build {
            Build::Developer { version, .. } => {
                parameters.insert("version".to_owned(), version.to_string());
                "BuildDeveloperVersion"
            }
            Build::Client { version, .. } => {
                parameters.insert("version".to_owned(), version.to_string());
                "BuildClientVersion"
            }
            Build::Generation {
                current, settings, ..
            } => {
                parameters.insert("version".to_owned(), current.to_string());
                parameters.insert("developerVersion".to_owned(), current.developer.to_string());
                parameters.insert("settings".to_owned(), settings.clone());
                parameters.insert("byHand".to_owned(), forced.to_string());
                "BuildClientGeneration"
            }
        };
        // The failure message is kept here too: a build can end before anyone waits on it.
        let failure = Arc::new(Mutex::new(None::<String>));
        let order = BuildOrder {
            build: build.clone(),
            state: Arc::clone(&in_force.state),
            revision: in_force.revision.clone(),
        };
        let (runner, kept) = (Arc::clone(&self.runner), Arc::clone(&failure));
        let generations = self.generations.clone();
        let distribution = self.config.distribution.clone();
        let leadership = self.leadership.clone();
        let work = move |context: TaskContext| async move {
            let result = match (&order.build, generations) {
                (Build::Generation { .. }, Some(link)) => generation::run(
                    link,
                    distribution,
                    leadership,
                    runner,
                    order,
                    forced,
                    context,
                )
                .await
                .map(drop),
                (Build::Generation { .. }, None) => {
                    Err("this distribution does not check client generations".to_owned())
                }
                _ => runner.run_order(order, context).await,
            };
            if let Err(message) = &result {
                *kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
            }
            result
        };
        // A holder paused past its lease (or cut off from the store) that wakes up here
        // still believes it holds: the store says whether it does.
        if let Err(error) = self.leadership.fence().await {
            tracing::warn!(%error, build = %describe_key(&key), "not starting the build: this replica no longer holds the lease");
            return Err(error.to_string());
        }
        let task = self
            .tasks
            .start(task_type, parameters, vec![build.service().clone()], work)
            .await
            .map_err(|error| {
                tracing::error!(%error, build = %describe_key(&key), "cannot start a build task; will look again");
                error.to_string()
            })?;
        tracing::info!(%task, build = %describe(build), "build started");
        self.running.insert(key.clone(), task.clone());
        let (tasks, done, started) = (self.tasks.clone(), self.done_tx.clone(), task.clone());
        tokio::spawn(async move {
            let outcome = tasks.wait(&started).await;
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
            let _ = done.send((key, started, failure));
        });
        Ok(Some(task))
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
            // A check asked for by hand is not in the plan while it runs.
            .chain(
                self.running
                    .iter()
                    .map(|(key, task)| (key.clone(), BuildState::Running { task: task.clone() })),
            )
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

fn describe_key(key: &BuildKey) -> String {
    match key {
        BuildKey::Developer(service, version) => {
            format!("developer version {version} of {service}")
        }
        BuildKey::Client(service, version) => format!("client version {version} of {service}"),
        BuildKey::Generation(service, developer, settings) => {
            format!("client generation check of {developer} of {service} for settings {settings}")
        }
    }
}

/// What a build makes, for messages: `developer version … of …`.
pub(crate) fn describe(build: &Build) -> String {
    match build {
        Build::Developer { service, version } => {
            format!("developer version {version} of {service}")
        }
        Build::Client {
            service, version, ..
        } => format!("client version {version} of {service}"),
        Build::Generation {
            service, current, ..
        } => format!(
            "client generation check of {} of {service} (in force: {current})",
            current.developer
        ),
    }
}

#[cfg(test)]
mod generation_tests;
#[cfg(test)]
mod tests;
