//! Service states: `setServiceStates`, an updater's report of what each service instance
//! runs and how it fares. Each report replaces the instance's earlier one on the server.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::Client;
use crate::error::ClientError;

const SET_STATES: &str =
    "mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }";

/// The most states the distribution takes in one report.
pub const MAX_REPORT: usize = 10_000;

/// Why the last update of an instance failed (the API's `UpdateErrorInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateErrorReport {
    /// Whether the updater gave up on the version (rolled back, or nothing runs).
    pub critical: bool,
    /// What went wrong.
    pub error: String,
}

/// The state of one service instance (the API's `StateInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    /// When the state was taken.
    pub time: DateTime<Utc>,
    /// When the running version was installed.
    pub install_time: Option<DateTime<Utc>>,
    /// When the running process was started.
    pub start_time: Option<DateTime<Utc>>,
    /// The running version.
    pub version: Option<String>,
    /// The version being installed.
    pub update_to_version: Option<String>,
    /// The last update failure.
    pub update_error: Option<UpdateErrorReport>,
    /// Failures since the service was started by this updater.
    pub failures_count: Option<u32>,
    /// The exit code of the last run.
    pub last_exit_code: Option<i32>,
    /// The version the updater rolled back and skips while it is desired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_version: Option<String>,
}

/// One instance's state (the API's `ServiceStateInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStateReport {
    /// The instance (VM) id.
    pub instance: String,
    /// The service, without its role.
    pub service: String,
    /// The role it runs in; sent as `null` when none, so the distribution knows the
    /// service was not given as `name-role`.
    pub role: Option<String>,
    /// Its directory on the instance.
    pub directory: String,
    /// The state.
    pub state: StateReport,
    /// The state commit whose desired versions the updater has fully applied; left out
    /// when unknown (so servers from before it take the report).
    #[serde(rename = "stateCommit", skip_serializing_if = "Option::is_none")]
    pub state_commit: Option<String>,
    /// The instance's labels (`updater.yaml`); left out when it has none (so servers from
    /// before them take the report).
    #[serde(
        skip_serializing_if = "std::collections::BTreeMap::is_empty",
        serialize_with = "labels_as_list"
    )]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Labels as the API's `[LabelInput!]`: `{name, value}` by name.
fn labels_as_list<S: serde::Serializer>(
    labels: &std::collections::BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        labels
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value })),
    )
}

impl Client {
    /// Stores `states` (in reports of at most [`MAX_REPORT`]); returns how many were
    /// stored.
    pub async fn set_service_states(
        &self,
        states: &[ServiceStateReport],
    ) -> Result<usize, ClientError> {
        let mut stored = 0;
        for report in states.chunks(MAX_REPORT) {
            let data: serde_json::Value = self
                .graphql_repeatable(SET_STATES, json!({ "states": report }))
                .await?;
            stored += data["setServiceStates"]
                .as_u64()
                .ok_or_else(|| ClientError::Decode {
                    what: "GraphQL `setServiceStates`".to_owned(),
                    reason: format!("`setServiceStates` is not a count: {data}"),
                })? as usize;
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_as_the_schema_names_them() {
        let time = DateTime::from_timestamp(1_767_225_600, 0).expect("time");
        let report = ServiceStateReport {
            state_commit: None,
            labels: Default::default(),
            instance: "vm-1".to_owned(),
            service: "web".to_owned(),
            role: Some("eu".to_owned()),
            directory: "/srv/web-eu".to_owned(),
            state: StateReport {
                time,
                install_time: None,
                start_time: Some(time),
                version: Some("acme-1.0.0_1".to_owned()),
                update_to_version: None,
                update_error: Some(UpdateErrorReport {
                    critical: true,
                    error: "rolled back".to_owned(),
                }),
                failures_count: Some(2),
                last_exit_code: Some(137),
                failed_version: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&report).expect("json"),
            json!({"instance": "vm-1", "service": "web", "role": "eu", "directory": "/srv/web-eu", "state": {
                "time": "2026-01-01T00:00:00Z", "installTime": null, "startTime": "2026-01-01T00:00:00Z",
                "version": "acme-1.0.0_1", "updateToVersion": null,
                "updateError": {"critical": true, "error": "rolled back"},
                "failuresCount": 2, "lastExitCode": 137}})
        );
    }
}
