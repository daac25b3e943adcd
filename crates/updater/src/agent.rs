//! The whole updater on one VM: every service's runner, log drain and fault uploader, and
//! one state reporter, joined to the network through four seams ([`Seams`]) that the
//! binary implements with the distribution's API.
//!
//! The desired versions come in as one `watch` of the whole map (what the client's poll
//! or subscription of `clientDesiredVersions` yields); each runner follows its own
//! service's entry. A service missing from the map keeps running what it runs. Shutdown
//! is a broadcast (a `watch` flag) and completes when every task has ended, the services
//! stopped.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use vupdate_core::service::{ServiceInstance, ServiceName};
use vupdate_core::version::ClientVersion;

use crate::Error;
use crate::config::UpdaterConfig;
use crate::faults::{FaultUploader, UploadOptions, upload_faults};
use crate::images::ImageSource;
use crate::logs::{LogSink, LogSource, SpoolReader, drain};
use crate::runner::ServiceRunner;
use crate::state::{StateFeed, StateSink, report_states};

/// The desired client version of each service, by service name (no role).
pub type DesiredVersions = BTreeMap<ServiceName, ClientVersion>;

/// The network seams: where images come from, and where logs, fault reports and states go.
#[derive(Debug)]
pub struct Seams<I, L, F, S> {
    /// Image downloads (`GET /images/client/{service}/{version}`).
    pub images: I,
    /// Log uploads (`addLogs`).
    pub logs: L,
    /// Fault report uploads (`PUT /faults/{id}`, then `addFaultReport`).
    pub faults: F,
    /// State reports (`setServiceStates`).
    pub states: S,
}

/// A running updater.
#[derive(Debug)]
pub struct Agent {
    stop: watch::Sender<bool>,
    tasks: JoinSet<Result<(), Error>>,
    feeds: Vec<StateFeed>,
}

/// Completes once `stop` says so (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

impl Agent {
    /// Opens every service of `services` under the config's work directory (each locked,
    /// with what a crashed updater left killed) and starts the tasks: per service its
    /// runner (which recovers, then follows `desired`), log drain and fault uploader; and
    /// the state reporter for all.
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
        let mut runners = Vec::new();
        for instance in services {
            runners.push(
                ServiceRunner::open(
                    &config.work_directory,
                    instance.clone(),
                    config.runner.clone(),
                )
                .await?,
            );
        }
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut feeds = Vec::new();
        for runner in runners {
            let dir = runner.dir().clone();
            let name = dir.name();
            feeds.push(runner.state_feed());
            let wake = runner.pipeline().spool_wake();
            let faults = runner.faults();
            let (one, one_rx) = watch::channel(None);
            tasks.spawn(follow_service(
                desired.clone(),
                dir.instance().service.clone(),
                one,
                stopped(stop_rx.clone()),
            ));
            let images_seams = seams.clone();
            let until = stopped(stop_rx.clone());
            tasks.spawn(async move { runner.run(one_rx, &images_seams.images, until).await });
            let source = LogSource {
                service: name.clone(),
                directory: dir.root().display().to_string(),
            };
            let reader = SpoolReader::open(&dir.spool())?;
            let (log_seams, options, until) =
                (seams.clone(), config.drain, stopped(stop_rx.clone()));
            tasks.spawn(async move {
                drain(reader, &source, &log_seams.logs, wake, options, until)
                    .await
                    .map(drop)
            });
            let (fault_seams, until) = (seams.clone(), stopped(stop_rx.clone()));
            tasks.spawn(async move {
                upload_faults(
                    &faults,
                    &fault_seams.faults,
                    UploadOptions::default(),
                    until,
                )
                .await
                .map(drop)
            });
        }
        let (state_seams, until, interval) =
            (seams.clone(), stopped(stop_rx), config.state_interval);
        let report_feeds = feeds.clone();
        tasks.spawn(async move {
            report_states(
                report_feeds,
                &state_seams.states,
                interval,
                Duration::from_millis(200),
                until,
            )
            .await;
            Ok(())
        });
        Ok(Agent { stop, tasks, feeds })
    }

    /// Every service's state feed.
    pub fn states(&self) -> &[StateFeed] {
        &self.feeds
    }

    /// Stops every service and task and waits for them; returns the first error a task
    /// ended with.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        let mut first = Ok(());
        while let Some(ended) = self.tasks.join_next().await {
            match ended {
                Ok(Ok(())) => {}
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

/// Keeps `one` at `service`'s entry of `all` until `until` completes.
async fn follow_service(
    mut all: watch::Receiver<DesiredVersions>,
    service: ServiceName,
    one: watch::Sender<Option<ClientVersion>>,
    until: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(until);
    loop {
        let version = all.borrow_and_update().get(&service).cloned();
        if version.is_some() {
            one.send_if_modified(|current| {
                let changed = *current != version;
                *current = version;
                changed
            });
        }
        tokio::select! {
            () = &mut until => return Ok(()),
            changed = all.changed() => if changed.is_err() { return Ok(()) },
        }
    }
}
