//! GraphQL shapes of the store's records that several parts share: service states (as
//! updaters send them and people read them) and log lines.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_core::version::ClientVersion;
use vupdate_store::Stored;
use vupdate_store::model::logs::LogRecord;
use vupdate_store::model::states::{ServiceState, UpdateError};

use super::types::parse_arg;
use crate::http::ApiError;

/// Why the last update of an instance failed.
#[derive(SimpleObject, InputObject, Debug, Clone)]
#[graphql(input_name = "UpdateErrorInput")]
pub struct UpdateFailure {
    /// Whether the updater gave up on the version.
    pub critical: bool,
    /// What went wrong.
    pub error: String,
}

/// One label of an instance (`labels` in its `updater.yaml`).
#[derive(SimpleObject, InputObject, Debug, Clone, PartialEq, Eq)]
#[graphql(input_name = "LabelInput")]
pub struct Label {
    /// The label's name (`ring`).
    pub name: String,
    /// Its value (`canary`).
    pub value: String,
}

impl Label {
    /// `labels` as the API lists them, by name.
    pub fn list(labels: &std::collections::BTreeMap<String, String>) -> Vec<Label> {
        labels
            .iter()
            .map(|(name, value)| Label {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// The labels of argument `at` as a map: names and values non-empty, each name once.
    pub fn map(
        at: &str,
        labels: Vec<Label>,
    ) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
        let mut map = std::collections::BTreeMap::new();
        for label in labels {
            if label.name.trim().is_empty() || label.value.trim().is_empty() {
                return Err(ApiError::bad_request(format!(
                    "argument `{at}`: label `{}` needs a non-empty name and value",
                    label.name
                )));
            }
            if map.insert(label.name.clone(), label.value).is_some() {
                return Err(ApiError::bad_request(format!(
                    "argument `{at}`: label `{}` is given twice",
                    label.name
                )));
            }
        }
        Ok(map)
    }
}

/// The state of one service instance at one time.
#[derive(SimpleObject, Debug, Clone)]
pub struct InstanceState {
    /// When the state was taken.
    pub time: DateTime<Utc>,
    /// When the running version was installed.
    pub install_time: Option<DateTime<Utc>>,
    /// When the process was started.
    pub start_time: Option<DateTime<Utc>>,
    /// The running version.
    pub version: Option<String>,
    /// The version being installed.
    pub update_to_version: Option<String>,
    /// The last update failure.
    pub update_error: Option<UpdateFailure>,
    /// Failures since the last start.
    pub failures_count: Option<u32>,
    /// The exit code of the last run.
    pub last_exit_code: Option<i32>,
    /// The version the updater rolled back and skips while it is desired.
    pub failed_version: Option<String>,
}

impl From<ServiceState> for InstanceState {
    fn from(state: ServiceState) -> InstanceState {
        InstanceState {
            time: state.time,
            install_time: state.install_time,
            start_time: state.start_time,
            version: state.version.map(|v| v.to_string()),
            update_to_version: state.update_to_version.map(|v| v.to_string()),
            update_error: state.update_error.map(|e| UpdateFailure {
                critical: e.critical,
                error: e.error,
            }),
            failures_count: state.failures_count,
            last_exit_code: state.last_exit_code,
            failed_version: state.failed_version.map(|v| v.to_string()),
        }
    }
}

/// The state of one service instance, as an updater reports it.
#[derive(InputObject, Debug, Clone)]
pub struct StateInput {
    /// When the state was taken.
    pub time: DateTime<Utc>,
    /// When the running version was installed.
    pub install_time: Option<DateTime<Utc>>,
    /// When the process was started.
    pub start_time: Option<DateTime<Utc>>,
    /// The running version.
    pub version: Option<String>,
    /// The version being installed.
    pub update_to_version: Option<String>,
    /// The last update failure.
    pub update_error: Option<UpdateFailure>,
    /// Failures since the last start.
    pub failures_count: Option<u32>,
    /// The exit code of the last run.
    pub last_exit_code: Option<i32>,
    /// The version the updater rolled back and skips while it is desired.
    pub failed_version: Option<String>,
}

impl StateInput {
    /// The store's state; `argument` names where it came from in errors.
    pub fn into_state(self, argument: &str) -> Result<ServiceState, ApiError> {
        let version =
            |name: &str, text: Option<String>| -> Result<Option<ClientVersion>, ApiError> {
                text.map(|t| parse_arg(&format!("{argument}.{name}"), &t))
                    .transpose()
            };
        Ok(ServiceState {
            time: self.time,
            install_time: self.install_time,
            start_time: self.start_time,
            version: version("version", self.version)?,
            update_to_version: version("updateToVersion", self.update_to_version)?,
            update_error: self.update_error.map(|e| UpdateError {
                critical: e.critical,
                error: e.error,
            }),
            failures_count: self.failures_count,
            last_exit_code: self.last_exit_code,
            failed_version: version("failedVersion", self.failed_version)?,
        })
    }
}

/// One stored log line.
#[derive(SimpleObject, Debug, Clone)]
pub struct LogLine {
    /// Its place in the store (increasing); page and follow by it.
    pub sequence: i64,
    /// The service that wrote it, without its role.
    pub service: String,
    /// The role the service runs in, if any.
    pub role: Option<String>,
    /// The instance it ran on.
    pub instance: String,
    /// The service's directory there.
    pub directory: String,
    /// The process id.
    pub process: String,
    /// The task it belongs to, for task logs.
    pub task: Option<String>,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// Its level.
    pub level: String,
    /// The functional unit that wrote it.
    pub unit: String,
    /// The message.
    pub message: String,
    /// For the last line of a task or process: whether it succeeded.
    pub termination_status: Option<bool>,
}

impl From<Stored<LogRecord>> for LogLine {
    fn from(stored: Stored<LogRecord>) -> LogLine {
        let r = stored.record;
        LogLine {
            sequence: stored.sequence,
            service: r.service.to_string(),
            role: r.role.map(|role| role.to_string()),
            instance: r.instance,
            directory: r.directory,
            process: r.process,
            task: r.task,
            time: r.time,
            level: r.level.as_str().to_owned(),
            unit: r.unit,
            message: r.message,
            termination_status: r.termination_status,
        }
    }
}
