//! What a supervisor tells the rest of the agent: its status (a `watch`, always the newest)
//! and its events (a `broadcast`, for logs and tests).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::version::ClientVersion;

use super::conditions::Condition;

/// How a run of the service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    /// The pid of the run's group leader.
    pub pid: u32,
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// When the supervisor saw it end.
    pub at: DateTime<Utc>,
}

impl ExitInfo {
    /// The exit code as a shell reports it: the code, or `128 + N` for signal N.
    pub fn shell_code(&self) -> Option<i32> {
        self.code.or(self.signal.map(|signal| 128 + signal))
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "signal {signal}"),
            (None, None) => f.write_str("unknown exit"),
        }
    }
}

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunState {
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Ended by a fault, waiting to be started again.
    Backoff,
    /// Ended by a fault and not restarted (`restartOnFault: false`).
    Exited,
    /// Being stopped on request.
    Stopping,
    /// Stopped on request; the supervisor is done.
    Stopped,
}

/// How a run's health check stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// Not healthy yet: within its start window.
    Starting,
    /// Passed `healthyAfter` probes in a row and has not failed `unhealthyAfter` since.
    Healthy,
    /// Ended for its health check (the reason, with the probe's evidence); a new run
    /// starts again as [`Health::Starting`].
    Unhealthy(String),
}

/// The service's status, as the state report needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// `service[-role]`.
    pub instance: String,
    /// The version that runs.
    pub version: Option<ClientVersion>,
    /// Where it is in its life.
    pub state: RunState,
    /// The group leader's pid while it runs.
    pub pid: Option<u32>,
    /// The run's cgroup, when the machine gave one.
    pub cgroup: Option<PathBuf>,
    /// When the current (or last) run started.
    pub start_time: Option<DateTime<Utc>>,
    /// Runs started by this supervisor.
    pub starts: u64,
    /// Faults seen by this supervisor (deliberate stops are not faults).
    pub failures_total: u64,
    /// Faults without a stable run between.
    pub failures_in_row: u32,
    /// Whether the faults in a row reached the policy's crash-loop threshold.
    pub crash_loop: bool,
    /// How the last run ended.
    pub last_exit: Option<ExitInfo>,
    /// Its health check's verdict; `None` without a health check.
    pub health: Option<Health>,
}

/// Something that happened to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A run started.
    Started {
        /// Its group leader's pid.
        pid: u32,
    },
    /// A run handed over by the previous updater process is supervised from now on.
    Adopted {
        /// Its group leader's pid.
        pid: u32,
    },
    /// The program could not be started (counted as a fault).
    SpawnFailed {
        /// Why.
        message: String,
    },
    /// A restart condition was passed; the run is being ended.
    ConditionExceeded {
        /// Which one.
        condition: Condition,
    },
    /// A run ended.
    Exited {
        /// How.
        exit: ExitInfo,
        /// Whether it was a fault (not a requested stop).
        fault: bool,
    },
    /// A fault report was written.
    FaultReport {
        /// The zip file.
        path: PathBuf,
    },
    /// The next run starts after `wait`.
    RestartScheduled {
        /// The backoff delay: the least time between the failed run's start and the next.
        delay: Duration,
        /// How long from now the next run starts: what is left of `delay` after the
        /// failed run's uptime (zero once the run outlived it).
        wait: Duration,
        /// Faults in a row so far.
        failures_in_row: u32,
    },
    /// The run has stayed up for the policy's stable uptime: the backoff is reset.
    Stable,
    /// The run passed its health check's `healthyAfter` probes in a row.
    Healthy,
    /// The service stopped on request; no further run follows.
    Stopped,
}
