//! The state of each service as the distribution's `setServiceStates` takes it, and the
//! reporter that sends every service's state on a timer and at once on a change.
//!
//! Each service's runner publishes its [`ServiceState`] on a `watch` channel; the reporter
//! ([`report_states`]) reads all of them and hands [`InstanceState`]s to a [`StateSink`],
//! the network seam (the binary's GraphQL client in production).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use vupdate_core::service::{Role, ServiceInstance, ServiceName};
use vupdate_core::version::ClientVersion;

use crate::schedule::Schedule;

/// What a service is running and how it fares, with the field names of the API's
/// `StateInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// When this state was taken.
    pub time: DateTime<Utc>,
    /// When the running version was installed.
    pub install_time: Option<DateTime<Utc>>,
    /// When the current run started.
    pub start_time: Option<DateTime<Utc>>,
    /// The version in `current/`.
    pub version: Option<ClientVersion>,
    /// The version being installed, while an install is under way.
    pub update_to_version: Option<ClientVersion>,
    /// The last install failure, until a later install succeeds.
    pub update_error: Option<UpdateError>,
    /// Faults since the updater started this service (deliberate stops are not faults).
    pub failures_count: Option<u32>,
    /// The exit code of the last run; `128 + N` when signal N ended it.
    pub last_exit_code: Option<i32>,
    /// The version rolled back (it failed to start or to become healthy) and
    /// skipped while it is desired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_version: Option<ClientVersion>,
    /// Whether the service keeps failing without a stable run between (it is still
    /// restarted, with the longest backoff). The API has no field for it yet: the
    /// reporter sends it as a non-critical `updateError` when there is no other.
    pub crash_loop: bool,
    /// Why the health check last ended a run (with the probe's evidence), until a run is
    /// healthy again; reported like `crashLoop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<String>,
}

impl ServiceState {
    /// A state with nothing known, taken now.
    pub fn unknown() -> Self {
        ServiceState {
            time: Utc::now(),
            install_time: None,
            start_time: None,
            version: None,
            update_to_version: None,
            update_error: None,
            failures_count: None,
            last_exit_code: None,
            failed_version: None,
            crash_loop: false,
            unhealthy: None,
        }
    }

    /// The `updateError` to report: the install error, else a crash-loop notice, else
    /// why the health check ended the last run.
    pub fn reported_error(&self) -> Option<UpdateError> {
        self.update_error
            .clone()
            .or_else(|| {
                self.crash_loop.then(|| UpdateError {
                    critical: false,
                    error: format!(
                        "crash loop: the service keeps failing ({} faults)",
                        self.failures_count.unwrap_or(0)
                    ),
                })
            })
            .or_else(|| {
                self.unhealthy.as_ref().map(|reason| UpdateError {
                    critical: false,
                    error: format!("unhealthy, restarted: {reason}"),
                })
            })
    }
}

/// An install failure, as the API's `UpdateErrorInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateError {
    /// Whether the service is left without the desired version (rolled back, or nothing
    /// runs), rather than a retry being under way.
    pub critical: bool,
    /// What went wrong, naming the version, step and command.
    pub error: String,
}

/// One service's state as `setServiceStates` takes it (the VM's instance id is added by
/// the sink).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    /// The service, without its role.
    pub service: ServiceName,
    /// The role it runs in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The service's directory on the VM.
    pub directory: String,
    /// Its state.
    pub state: ServiceState,
}

/// Where the reporter sends states: the distribution's `setServiceStates` in the agent.
pub trait StateSink: Send + Sync {
    /// Why a report was not taken.
    type Error: Display + Send;

    /// Sends the states of every service; `Ok` means they were stored.
    fn send(
        &self,
        states: &[InstanceState],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One service's state channel, as a runner hands it out.
#[derive(Debug, Clone)]
pub struct StateFeed {
    /// The service and the role it runs in.
    pub instance: ServiceInstance,
    /// The service's directory on the VM.
    pub directory: String,
    /// Its state, updated by the runner.
    pub state: watch::Receiver<ServiceState>,
}

/// Sends every feed's state to `sink` at once, then at each tick of `interval` on
/// `schedule` (with whatever else falls due then) and soon after any change (changes
/// within `settle` are sent together), until `shutdown` completes. A failed send is
/// logged and retried at the next tick or change; states are snapshots, so only the
/// newest matters.
pub async fn report_states<S: StateSink>(
    mut feeds: Vec<StateFeed>,
    sink: &S,
    schedule: Schedule,
    interval: Duration,
    settle: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut next_tick = tokio::time::Instant::now();
    loop {
        let changed = async {
            if feeds.is_empty() {
                return std::future::pending().await;
            }
            let waits = feeds.iter_mut().map(|feed| Box::pin(feed.state.changed()));
            // A closed channel means its runner ended; the others still report.
            let _ = futures_select_all(waits).await;
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep_until(next_tick) => {}
            () = changed => tokio::time::sleep(settle).await,
        }
        let states: Vec<InstanceState> = feeds
            .iter_mut()
            .map(|feed| {
                let mut state = feed.state.borrow_and_update().clone();
                state.time = Utc::now();
                InstanceState {
                    service: feed.instance.service.clone(),
                    role: feed.instance.role.clone(),
                    directory: feed.directory.clone(),
                    state,
                }
            })
            .collect();
        feeds.retain(|feed| feed.state.has_changed().is_ok());
        if let Err(error) = sink.send(&states).await {
            tracing::warn!(%error, services = states.len(), "state report failed");
        }
        next_tick = schedule.next(interval);
    }
}

/// Completes when the first of `futures` does.
async fn futures_select_all<F: Future + Unpin>(futures: impl Iterator<Item = F>) -> F::Output {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for future in &mut futures {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(future).poll(cx) {
                return std::task::Poll::Ready(output);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        reports: Mutex<Vec<Vec<InstanceState>>>,
    }

    impl StateSink for Recorder {
        type Error = String;
        async fn send(&self, states: &[InstanceState]) -> Result<(), String> {
            self.reports
                .lock()
                .expect("recorder lock")
                .push(states.to_vec());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_on_the_interval_and_at_once_on_a_change() {
        let (sender, receiver) = watch::channel(ServiceState::unknown());
        let feeds = vec![StateFeed {
            instance: ServiceInstance {
                service: "web".parse().expect("name"),
                role: Some("eu".parse().expect("role")),
            },
            directory: "/srv/web-eu".to_owned(),
            state: receiver,
        }];
        let sink = Recorder::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let reporter = report_states(
            feeds,
            &sink,
            Schedule::starting_now(),
            Duration::from_secs(10),
            Duration::from_millis(100),
            async {
                let _ = stopped.await;
            },
        );
        let driver = async {
            // The first report goes at once; the next one 10 s later.
            tokio::time::sleep(Duration::from_secs(15)).await;
            sender.send_modify(|state| state.failures_count = Some(2));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = stop.send(());
        };
        tokio::join!(reporter, driver);
        let reports = sink.reports.lock().expect("recorder lock");
        let failures: Vec<Option<u32>> = reports
            .iter()
            .map(|report| report[0].state.failures_count)
            .collect();
        assert_eq!(failures, [None, None, Some(2)]);
        let sent = &reports[2][0];
        assert_eq!(
            (sent.service.as_str(), sent.role.as_ref().map(Role::as_str)),
            ("web", Some("eu")),
            "service and role apart"
        );
    }

    #[test]
    fn a_crash_loop_is_reported_as_a_non_critical_error() {
        let mut state = ServiceState::unknown();
        assert_eq!(state.reported_error(), None);
        state.crash_loop = true;
        state.failures_count = Some(7);
        let error = state.reported_error().expect("reported");
        assert!(
            !error.critical && error.error.contains("7 faults"),
            "{error:?}"
        );
        state.update_error = Some(UpdateError {
            critical: true,
            error: "rolled back".to_owned(),
        });
        assert_eq!(
            state.reported_error().map(|e| e.error),
            Some("rolled back".to_owned())
        );
    }
}
