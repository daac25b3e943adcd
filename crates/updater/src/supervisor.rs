//! Running one version of one service: start it, watch it, restart it, stop it.
//!
//! A [`Supervisor`] is a task that owns the service's runs, driven by a loop over a closed
//! `Event` enum (in the private `event_loop`): a control message from its [`SupervisorHandle`], the exit of
//! the run's group leader, a sampling tick, the end of a backoff delay, a run becoming
//! stable. Each run:
//!
//! - is started by the crate's `spawn` module in its own process group with the service's ownership
//!   marker, and put in its own cgroup where the machine gives one ([`cgroup`]); the
//!   updater is a child subreaper, so orphans of the service are re-parented to it;
//! - has its stdout and stderr pumped line by line into the service's [`LogPipeline`];
//! - is sampled every `checkTimeoutMs` (or every few seconds without restart conditions):
//!   its process tree (`tree`) is followed, and memory and CPU ([`conditions`]) checked;
//! - on a restart condition, is ended with the stop signal (SIGQUIT with `makeCore`), then
//!   SIGKILL after the grace period; that counts as a fault and is always restarted;
//! - on an unexpected exit, has what is left of its tree stopped, a fault report written
//!   ([`crate::faults`]) and, with `restartOnFault`, is started again after a backoff
//!   ([`backoff`]) that resets after a stable uptime and never gives up;
//! - on a stop, gets the configured signal, a grace period, then SIGKILL of every process
//!   of its tree that is left, repeated until none is, so no child survives, including a
//!   `setsid` double-forked grandchild that ignores SIGTERM;
//! - at a self-update, is detached ([`SupervisorHandle::detach`]: its pipes stop being
//!   read, the leader is neither killed nor reaped) and adopted by a new supervisor in the
//!   next updater process ([`Supervisor::adopt`]), see [`crate::handover`].
//!
//! - `tree`: the process tree of a run (private), over `vupdate-process`'s table of `/proc`.
//! - [`cgroup`]: the per-service cgroup. [`conditions`]: memory and CPU conditions.
//! - [`health`]: health probes (`runService.healthCheck`) and their passes and failures
//!   in a row; a run that is not healthy within its start window, or that fails
//!   `unhealthyAfter` probes once healthy, is ended like a restart condition.
//! - [`backoff`]: the restart policy. [`status`]: the status and events it publishes.
//! - `stop`: ending a tree. `event_loop`: the loop. `leader`: the group leader, spawned
//!   or adopted (all private).

pub mod backoff;
pub mod cgroup;
pub mod conditions;
mod event_loop;
pub mod health;
pub(crate) mod leader;
pub mod status;
pub(crate) mod stop;
pub(crate) mod tree;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vupdate_core::service::ServiceInstance;
use vupdate_core::update::RunService;
use vupdate_core::version::ClientVersion;

use crate::faults::FaultReports;
use crate::handover::{LiveRun, RunRecord};
use crate::logs::LogPipeline;

pub use backoff::{RestartPolicy, RestartTracker};
pub use cgroup::{CgroupMode, CgroupVersion};
pub use conditions::Condition;
pub use status::{ExitInfo, Health, RunState, ServiceEvent, ServiceStatus};

/// What to run: one version of one service.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The service and role.
    pub instance: ServiceInstance,
    /// The service's directory (`<workDirectory>/<service[-role]>`), for the fault report.
    pub service_dir: PathBuf,
    /// The directory it runs in (`current/`).
    pub directory: PathBuf,
    /// The version, for the status and the fault report.
    pub version: Option<ClientVersion>,
    /// When the version was installed, for the fault report's state.
    pub install_time: Option<DateTime<Utc>>,
    /// The run rules, macros already expanded.
    pub run: RunService,
    /// The ownership marker value given to every process of the run.
    pub owner: String,
}

/// How a supervisor restarts, samples and isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorOptions {
    /// The restart backoff and crash-loop threshold.
    pub restart: RestartPolicy,
    /// Whether runs get a cgroup.
    pub cgroups: CgroupMode,
    /// How often the tree is sampled when the service has no restart conditions.
    pub sample_interval: Duration,
    /// How long the output of an ended run may still be read before it is cut off.
    pub output_grace: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            restart: RestartPolicy::default(),
            cgroups: CgroupMode::Auto,
            sample_interval: Duration::from_secs(5),
            output_grace: Duration::from_secs(2),
        }
    }
}

/// What a supervisor is told by its handle.
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop the run and end; the reply is sent once nothing of it runs.
    Stop(oneshot::Sender<()>),
    /// Stop the run and start a new one at once.
    Restart,
    /// Give the run up, alive, for the next updater process, and end.
    Detach(oneshot::Sender<Option<LiveRun>>),
}

/// The control side of a running supervisor.
#[derive(Debug)]
pub struct SupervisorHandle {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<ServiceStatus>,
    events: broadcast::Sender<ServiceEvent>,
    task: JoinHandle<()>,
}

impl SupervisorHandle {
    /// The status, updated on every change.
    pub fn status(&self) -> watch::Receiver<ServiceStatus> {
        self.status.clone()
    }

    /// Follows the events from now on (see [`Supervisor::start`] for all of them).
    pub fn events(&self) -> broadcast::Receiver<ServiceEvent> {
        self.events.subscribe()
    }

    /// Stops the service tree-wide and waits until nothing of it runs; returns the final
    /// status.
    pub async fn stop(self) -> ServiceStatus {
        let (reply, replied) = oneshot::channel();
        if self.control.send(Control::Stop(reply)).await.is_ok() {
            let _ = replied.await;
        }
        if let Err(error) = self.task.await {
            tracing::error!(%error, "supervisor task failed");
        }
        self.status.borrow().clone()
    }

    /// Gives the run up for the next updater process and ends the supervisor: its pipes
    /// are no longer read (what was read is in the pipeline, flushed), and the leader is
    /// neither killed nor reaped. `None` when no run is alive (between restarts).
    pub async fn detach(self) -> Option<LiveRun> {
        let (reply, replied) = oneshot::channel();
        if self.control.send(Control::Detach(reply)).await.is_err() {
            return None;
        }
        let live = replied.await.ok().flatten();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "supervisor task failed");
        }
        live
    }

    /// Stops the run and starts a new one at once.
    pub async fn restart(&self) {
        let _ = self.control.send(Control::Restart).await;
    }
}

/// Starts and watches one version of one service.
#[derive(Debug)]
pub struct Supervisor;

impl Supervisor {
    /// Starts `spec` at once in a new task; lines go to `pipeline`, fault reports to
    /// `faults`. Returns the handle and a receiver that sees every event from the start.
    /// Dropping the handle stops the service as [`SupervisorHandle::stop`] does.
    pub fn start(
        spec: RunSpec,
        pipeline: Arc<LogPipeline>,
        faults: Option<Arc<FaultReports>>,
        options: SupervisorOptions,
    ) -> (SupervisorHandle, broadcast::Receiver<ServiceEvent>) {
        Self::launch(spec, pipeline, faults, options, None)
    }

    /// Like [`Supervisor::start`], but goes on with `run`, handed over by the previous
    /// updater process (see [`adoptable`]), instead of starting one: its first event is
    /// [`ServiceEvent::Adopted`].
    pub fn adopt(
        spec: RunSpec,
        pipeline: Arc<LogPipeline>,
        faults: Option<Arc<FaultReports>>,
        options: SupervisorOptions,
        run: LiveRun,
    ) -> (SupervisorHandle, broadcast::Receiver<ServiceEvent>) {
        Self::launch(spec, pipeline, faults, options, Some(run))
    }

    fn launch(
        spec: RunSpec,
        pipeline: Arc<LogPipeline>,
        faults: Option<Arc<FaultReports>>,
        options: SupervisorOptions,
        adopt: Option<LiveRun>,
    ) -> (SupervisorHandle, broadcast::Receiver<ServiceEvent>) {
        become_subreaper_once();
        let spec_instance = spec.instance.clone();
        let spec_version = spec.version.clone();
        let (control, commands) = mpsc::channel(8);
        let (events, first_events) = broadcast::channel(256);
        let initial = ServiceStatus {
            instance: spec.instance.to_string(),
            version: spec.version.clone(),
            state: RunState::Starting,
            pid: None,
            cgroup: None,
            start_time: None,
            starts: 0,
            failures_total: 0,
            failures_in_row: 0,
            crash_loop: false,
            last_exit: None,
            health: None,
        };
        let (status_sender, status) = watch::channel(initial);
        let looper = event_loop::Looper::new(
            spec,
            pipeline,
            faults,
            options,
            status_sender,
            events.clone(),
        );
        let span = tracing::info_span!(
            "supervise",
            service = %spec_instance,
            version = spec_version.as_ref().map(tracing::field::display),
        );
        let task = tokio::spawn(tracing::Instrument::instrument(
            looper.run(commands, adopt),
            span,
        ));
        (
            SupervisorHandle {
                control,
                status,
                events,
                task,
            },
            first_events,
        )
    }
}

/// Whether the run `record` describes can be adopted by this process: its leader is this
/// process's child (alive, or ended and not yet reaped) with the same start time, so the
/// pid was not reused.
pub fn adoptable(record: &RunRecord) -> bool {
    let Ok(pid) = i32::try_from(record.pid) else {
        return false;
    };
    vupdate_process::table::read(pid).is_some_and(|info| {
        info.ppid == i32::try_from(std::process::id()).expect("Linux pids fit in i32")
            && info.start_ticks == record.start_ticks
    })
}

/// Makes this process the child subreaper of its descendants, once: an orphan of a
/// service (a `setsid` grandchild whose parent exited) is re-parented to the updater
/// rather than to init, so it can still be found, measured and killed.
fn become_subreaper_once() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if let Err(error) = tree::become_subreaper() {
            tracing::warn!(%error, "cannot become a child subreaper; orphans are found by their marker only");
        }
    });
}
