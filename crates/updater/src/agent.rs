//! The whole updater on one VM: every service's runner, log drain and fault uploader, and
//! one state reporter, joined to the network through four seams ([`Seams`]) that the
//! binary implements with the distribution's API.
//!
//! The desired versions come in as one `watch` of the whole map (what the client's poll
//! or subscription of `clientDesiredVersions` yields); each runner follows its own
//! service's entry. A service missing from the map keeps running what it runs. Shutdown
//! is a broadcast (a `watch` of how to end) and completes when every task has ended, the
//! services stopped.
//!
//! The map's `updater` entry is the updater itself: a runner of its own installs it and,
//! once it is in `<workDirectory>/updater/current/`, stages it; [`Agent::self_update`]
//! then completes and the binary calls [`Agent::hand_over`], which detaches every run and
//! executes the new updater in this process (see [`crate::handover`]). The binary's
//! `main` goes:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vupdate_updater::{agent::*, config::UpdaterConfig, handover};
//! # async fn shutdown_signal() {}
//! # async fn example<I, L, F, S>(config: UpdaterConfig, desired: tokio::sync::watch::Receiver<DesiredVersions>, seams: Arc<Seams<I, L, F, S>>) -> Result<(), vupdate_updater::Error>
//! # where I: vupdate_updater::images::ImageSource + 'static, L: vupdate_updater::logs::LogSink + 'static,
//! #       F: vupdate_updater::faults::FaultUploader + 'static, S: vupdate_updater::state::StateSink + 'static {
//! // First of all in `main`, before threads and argument parsing (it may exit at once
//! // when the binary is probed):
//! let mut startup = handover::startup();
//! // … parse arguments, load the config (on an error: `startup.abandon(&reason)`) …
//! loop {
//!     let mut agent =
//!         Agent::start_with(&config, &config.services, desired.clone(), seams.clone(), startup)
//!             .await?;
//!     tokio::select! {
//!         () = shutdown_signal() => return agent.shutdown().await,
//!         staged = agent.self_update() => {
//!             // Returns only when the new binary could not be executed.
//!             let failed = agent.hand_over(staged).await;
//!             tracing::error!(error = %failed.error, "self-update failed; carrying on");
//!             startup = failed.resume;
//!         }
//!     }
//! }
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use vupdate_core::service::{ServiceInstance, ServiceName};
use vupdate_core::version::ClientVersion;

use crate::Error;
use crate::config::{SelfUpdateOptions, UpdaterConfig};
use crate::faults::{FaultUploader, UploadOptions, upload_faults};
use crate::handover::{
    self, Adoption, HANDOVER_FILE, HandoverFailed, Header, LiveService, READY_FILE, Startup,
    UPDATER_SERVICE,
};
use crate::images::ImageSource;
use crate::layout::{OWNER_ENV, ServiceDir};
use crate::logs::{LogSink, LogSource, SpoolReader, drain};
use crate::runner::{Ending, SelfRole, ServiceRunner, Staged};
use crate::schedule::Schedule;
use crate::state::{StateFeed, StateSink, report_states};
use crate::supervisor::cgroup::Cgroup;
use crate::supervisor::stop::end_tree;
use crate::supervisor::tree::TreeTracker;

/// The desired client version of each service, by service name (no role).
pub type DesiredVersions = BTreeMap<ServiceName, ClientVersion>;

/// The network seams: where images come from, and where logs, fault reports and states go.
#[derive(Debug)]
pub struct Seams<I, L, F, S> {
    /// Image downloads (`GET /images/client/{service}/{version}`).
    pub images: I,
    /// Log uploads (`POST /logs/batches`).
    pub logs: L,
    /// Fault report uploads (`PUT /faults/{id}`, then `addFaultReport`).
    pub faults: F,
    /// State reports (`setServiceStates`).
    pub states: S,
}

/// A running updater.
#[derive(Debug)]
pub struct Agent {
    end: watch::Sender<Option<Ending>>,
    tasks: JoinSet<Result<Option<LiveService>, Error>>,
    feeds: Vec<StateFeed>,
    staged: watch::Receiver<Option<Staged>>,
    updater_dir: ServiceDir,
    self_update: SelfUpdateOptions,
}

/// Completes once `end` says to end, one way or the other (or its sender is gone).
async fn stopped(end: watch::Receiver<Option<Ending>>) {
    ending(end).await;
}

/// How `end` says to end, once it does ([`Ending::Stop`] when its sender is gone).
async fn ending(mut end: watch::Receiver<Option<Ending>>) -> Ending {
    match end.wait_for(Option::is_some).await {
        Ok(ending) => ending.unwrap_or(Ending::Stop),
        Err(_) => Ending::Stop,
    }
}

impl Agent {
    /// Opens every service of `services` under the config's work directory (each locked,
    /// with what a crashed updater left killed) and starts the tasks: per service its
    /// runner (which recovers, then follows `desired`), log drain and fault uploader; the
    /// updater's own runner (its `updater` entry); and the state reporter for all.
    pub async fn start<I, L, F, S>(
        config: &UpdaterConfig,
        services: &[ServiceInstance],
        desired: watch::Receiver<DesiredVersions>,
        seams: Arc<Seams<I, L, F, S>>,
    ) -> Result<Agent, Error>
    where
        I: ImageSource + 'static,
        L: LogSink + 'static,
        F: FaultUploader + 'static,
        S: StateSink + 'static,
    {
        Self::start_with(config, services, desired, seams, Startup::Fresh).await
    }

    /// [`Agent::start`], adopting the runs a handover brings (`startup` from
    /// [`handover::startup`], or the `resume` of a [`HandoverFailed`]) instead of
    /// killing them: once every service is open, the adoption is made ready. An error
    /// before that drops the adoption, which hands back to the previous updater.
    pub async fn start_with<I, L, F, S>(
        config: &UpdaterConfig,
        services: &[ServiceInstance],
        desired: watch::Receiver<DesiredVersions>,
        seams: Arc<Seams<I, L, F, S>>,
        startup: Startup,
    ) -> Result<Agent, Error>
    where
        I: ImageSource + 'static,
        L: LogSink + 'static,
        F: FaultUploader + 'static,
        S: StateSink + 'static,
    {
        if let Some(reserved) = services
            .iter()
            .find(|instance| instance.service.as_str() == UPDATER_SERVICE)
        {
            return Err(Error::ReservedService {
                name: reserved.to_string(),
            });
        }
        let updater_instance = ServiceInstance {
            service: UPDATER_SERVICE
                .parse()
                .expect("the updater's service name is valid"),
            role: None,
        };
        let updater_dir = ServiceDir::new(&config.work_directory, updater_instance);
        let mut adoption: Option<Box<Adoption>> = match startup {
            Startup::Fresh => None,
            Startup::Adopt(adoption) => Some(adoption),
        };
        let (running, failed) = match &adoption {
            Some(adoption) => (
                adoption.running_version().cloned(),
                adoption
                    .failed_handover()
                    .and_then(|(version, reason)| Some((version?.clone(), reason.to_owned()))),
            ),
            None => {
                let stale = handover::stale_handover(&updater_dir.root().join(HANDOVER_FILE));
                let failed = stale.and_then(|file| {
                    let version = file.to_version?;
                    let reason = format!(
                        "the updater process ended during its handover to {version} (it never became ready)"
                    );
                    Some((version, reason))
                });
                (crate::runner::running_from_exe(&updater_dir), failed)
            }
        };
        let mut runners = Vec::new();
        let mut adopted = Vec::new();
        for instance in services {
            let name = instance.to_string();
            let live = adoption
                .as_mut()
                .and_then(|adoption| adoption.take_service(&name));
            let had_run = live.as_ref().is_some_and(|live| live.run.is_some());
            let runner = ServiceRunner::open_with(
                &config.work_directory,
                instance.clone(),
                config.runner.clone(),
                live,
            )
            .await?;
            if had_run && runner.supervisor_status().is_some() {
                adopted.push(name);
            }
            runners.push(runner);
        }
        if let Some(adoption) = adoption.as_mut() {
            for service in adoption.take_rest() {
                stop_unclaimed(service, config).await;
            }
        }
        // The new binary is probed with the arguments it will be executed with.
        let probe_args = handover::this_process_args().unwrap_or_default();
        let (staged_tx, staged) = watch::channel(None);
        let self_runner = ServiceRunner::open_self(
            &config.work_directory,
            config.runner.clone(),
            SelfRole {
                running,
                failed,
                staged: staged_tx,
                probe_args,
                probe_timeout: config.self_update.probe_timeout,
                handover_wait: config.self_update.handover_wait,
            },
        )
        .await?;
        if let Some(adoption) = adoption {
            adoption.ready(adopted)?;
        }
        let (end, end_rx) = watch::channel(None);
        let mut tasks = JoinSet::new();
        let mut feeds = Vec::new();
        for runner in runners {
            let dir = runner.dir().clone();
            feeds.push(runner.state_feed());
            let wake = runner.pipeline().spool_wake();
            let faults = runner.faults();
            let (one, one_rx) = watch::channel(None);
            tasks.spawn(follow_service(
                desired.clone(),
                dir.instance().service.clone(),
                one,
                stopped(end_rx.clone()),
            ));
            let images_seams = seams.clone();
            let until = ending(end_rx.clone());
            tasks.spawn(async move { runner.run_until(one_rx, &images_seams.images, until).await });
            let source = LogSource {
                instance: dir.instance().clone(),
                directory: dir.root().display().to_string(),
            };
            let reader = SpoolReader::open(&dir.spool())?;
            let (log_seams, options, until) =
                (seams.clone(), config.drain, stopped(end_rx.clone()));
            tasks.spawn(async move {
                drain(reader, &source, &log_seams.logs, wake, options, until)
                    .await
                    .map(|_| None)
            });
            let (fault_seams, until) = (seams.clone(), stopped(end_rx.clone()));
            tasks.spawn(async move {
                upload_faults(
                    &faults,
                    &fault_seams.faults,
                    UploadOptions::default(),
                    until,
                )
                .await
                .map(|_| None)
            });
        }
        feeds.push(self_runner.state_feed());
        let (one, one_rx) = watch::channel(None);
        tasks.spawn(follow_service(
            desired.clone(),
            self_runner.dir().instance().service.clone(),
            one,
            stopped(end_rx.clone()),
        ));
        let (images_seams, until) = (seams.clone(), ending(end_rx.clone()));
        tasks.spawn(async move {
            // The updater's own runner has no run to hand over.
            self_runner
                .run_until(one_rx, &images_seams.images, until)
                .await
                .map(|_| None)
        });
        let (state_seams, until, interval) =
            (seams.clone(), stopped(end_rx), config.state_interval);
        let report_feeds = feeds.clone();
        tasks.spawn(async move {
            report_states(
                report_feeds,
                &state_seams.states,
                Schedule::process(),
                interval,
                Duration::from_millis(200),
                until,
            )
            .await;
            Ok(None)
        });
        Ok(Agent {
            end,
            tasks,
            feeds,
            staged,
            updater_dir,
            self_update: config.self_update,
        })
    }

    /// Every service's state feed.
    pub fn states(&self) -> &[StateFeed] {
        &self.feeds
    }

    /// Completes when a new updater version is installed and probed: call
    /// [`Agent::hand_over`] with it. Cancel-safe.
    pub async fn self_update(&mut self) -> Staged {
        loop {
            if let Some(staged) = self.staged.borrow_and_update().clone() {
                return staged;
            }
            if self.staged.changed().await.is_err() {
                // The updater's runner is gone: no self-update will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Hands every run over to the `staged` updater: detaches them (services keep
    /// running, their lines so far flushed), writes the handover file and executes the
    /// new binary in this process. Returns only when that could not happen, with the
    /// runs back to adopt in this process (`resume`, for [`Agent::start_with`], which
    /// then rolls the updater's install back).
    pub async fn hand_over(self, staged: Staged) -> HandoverFailed {
        let span = tracing::info_span!("handover", version = %staged.version, binary = %staged.binary.display());
        let _entered = span.enter();
        let Agent {
            end,
            mut tasks,
            updater_dir,
            self_update,
            ..
        } = self;
        let _ = end.send(Some(Ending::Detach));
        let mut live = Vec::new();
        while let Some(ended) = tasks.join_next().await {
            match ended {
                Ok(Ok(Some(service))) => live.push(service),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => tracing::error!(%error, "updater task failed"),
                Err(error) => tracing::error!(%error, "updater task panicked"),
            }
        }
        let path = updater_dir.root().join(HANDOVER_FILE);
        let header = |fallback| Header {
            from_version: staged.from.clone(),
            to_version: Some(staged.version.clone()),
            fallback,
            ready_window: self_update.ready_window,
            ready_file: updater_dir.root().join(READY_FILE),
        };
        let targets = std::env::current_exe().ok().and_then(|exe| {
            Some((
                handover::this_process(&exe)?,
                handover::this_process(&staged.binary)?,
            ))
        });
        let Some((fallback, target)) = targets else {
            let error = Error::Handover {
                path: path.clone(),
                message: "this process's own binary or arguments cannot be named (not UTF-8?)"
                    .to_owned(),
            };
            let empty = handover::ExecTarget {
                program: std::path::PathBuf::new(),
                args: Vec::new(),
                env: Vec::new(),
            };
            let resume = Startup::Adopt(Box::new(Adoption::in_process(
                header(empty),
                live,
                error.to_string(),
            )));
            return HandoverFailed { error, resume };
        };
        tracing::info!(services = live.len(), "handing over to the new updater");
        match handover::prepare(&path, header(fallback), live) {
            Ok(prepared) => prepared.exec(&target),
            Err(failed) => *failed,
        }
    }

    /// Stops every service and task and waits for them; returns the first error a task
    /// ended with.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.end.send(Some(Ending::Stop));
        let mut first = Ok(());
        while let Some(ended) = self.tasks.join_next().await {
            match ended {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "updater task failed");
                    if first.is_ok() {
                        first = Err(error);
                    }
                }
                Err(error) => tracing::error!(%error, "updater task panicked"),
            }
        }
        first
    }
}

/// Stops the run of a handed-over service that is no longer configured.
async fn stop_unclaimed(service: LiveService, config: &UpdaterConfig) {
    let Some(run) = service.run else {
        return;
    };
    tracing::warn!(service = %service.instance, pid = run.record.pid, "stopping a handed-over service that is no longer configured");
    let cgroup = run
        .record
        .cgroup
        .map(|cgroup| Cgroup::existing(cgroup.path, cgroup.version));
    let mut tree = TreeTracker::leftovers(format!("{OWNER_ENV}={}", service.directory.display()));
    end_tree(
        &mut tree,
        cgroup.as_ref(),
        None,
        nix::sys::signal::Signal::SIGTERM,
        config.runner.leftover_grace,
    )
    .await;
}

/// Keeps `one` at `service`'s entry of `all` until `until` completes.
async fn follow_service(
    mut all: watch::Receiver<DesiredVersions>,
    service: ServiceName,
    one: watch::Sender<Option<ClientVersion>>,
    until: impl Future<Output = ()>,
) -> Result<Option<LiveService>, Error> {
    tokio::pin!(until);
    loop {
        let version = all.borrow_and_update().get(&service).cloned();
        if version.is_some() {
            // Sent even when unchanged: the map is touched when the distribution stores an
            // image, and a runner waiting for its version's image must try again then.
            one.send_replace(version);
        }
        tokio::select! {
            () = &mut until => return Ok(None),
            changed = all.changed() => if changed.is_err() { return Ok(None) },
        }
    }
}
