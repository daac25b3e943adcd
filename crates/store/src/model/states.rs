//! Service states: what an updater reports about each service instance it runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::{Role, ServiceName};
use vupdate_core::version::ClientVersion;

use crate::doc::{CollectionDef, Cond, FieldDef, FieldKind, Find, Op, Record, SortKey, Val};

/// Why the last update of an instance failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateError {
    /// Whether the updater gave up on the version.
    pub critical: bool,
    /// What went wrong.
    pub error: String,
}

/// The state of one service instance at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    /// When the state was taken; a state not refreshed for the expiration timeout is dead.
    pub time: DateTime<Utc>,
    /// When the running version was installed.
    pub install_time: Option<DateTime<Utc>>,
    /// When the process was started.
    pub start_time: Option<DateTime<Utc>>,
    /// The running version.
    pub version: Option<ClientVersion>,
    /// The version being installed.
    pub update_to_version: Option<ClientVersion>,
    /// The last update failure.
    pub update_error: Option<UpdateError>,
    /// Failures since the last start.
    pub failures_count: Option<u32>,
    /// The exit code of the last run.
    pub last_exit_code: Option<i32>,
    /// The version the updater rolled back and skips while it is desired (it failed
    /// to start or to become healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_version: Option<ClientVersion>,
}

/// A service state with where it comes from; the key is distribution, instance, service
/// and directory (the directory of a service in a role has the role in its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStateRecord {
    /// The distribution the instance belongs to (this one, or a consumer).
    pub distribution: String,
    /// The instance (VM).
    pub instance: String,
    /// The service, without its role.
    pub service: ServiceName,
    /// The role the service runs in, if any (records written before roles had their own
    /// field have none; see [`crate::Store::split_legacy_roles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The service's directory on the instance.
    pub directory: String,
    /// The state.
    pub state: ServiceState,
    /// The state commit whose desired client versions the updater had fully applied when
    /// it reported (records from updaters that do not say have none: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_commit: Option<String>,
    /// The instance's labels from its `updater.yaml` (records from updaters that send none
    /// have none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Which states to list; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateQuery {
    /// Only this distribution.
    pub distribution: Option<String>,
    /// Only this service (in any role, unless `role` is given).
    pub service: Option<ServiceName>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only this instance.
    pub instance: Option<String>,
    /// Only this directory.
    pub directory: Option<String>,
    /// Only states written after this `_sequence` (an upload cursor).
    pub after_sequence: Option<i64>,
}

pub(crate) static DISTRIBUTION: FieldDef =
    FieldDef::new("distribution", "distribution", FieldKind::Str);
pub(crate) static INSTANCE: FieldDef = FieldDef::new("instance", "instance", FieldKind::Str);
pub(crate) static SERVICE: FieldDef = FieldDef::new("service", "service", FieldKind::Str);
pub(crate) static DIRECTORY: FieldDef = FieldDef::new("directory", "directory", FieldKind::Str);
pub(crate) static STATE_TIME: FieldDef = FieldDef::new("state.time", "state_time", FieldKind::Time);
pub(crate) static ROLE: FieldDef = FieldDef::new("role", "role", FieldKind::Str);

/// No history: a state is replaced every few seconds, and the original's 60 s TTL on
/// `state.time` removed replaced versions as fast.
pub(crate) static SERVICE_STATES: CollectionDef = CollectionDef {
    name: "service_states",
    fields: &[
        &DISTRIBUTION,
        &INSTANCE,
        &SERVICE,
        &DIRECTORY,
        &STATE_TIME,
        &ROLE,
    ],
    key: &[&DISTRIBUTION, &INSTANCE, &SERVICE, &DIRECTORY],
    indexes: &[&[&DISTRIBUTION, &SERVICE, &INSTANCE], &[&STATE_TIME]],
    history: false,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for ServiceStateRecord {
    const DEF: &'static CollectionDef = &SERVICE_STATES;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.distribution),
            Val::str(&self.instance),
            Val::str(self.service.as_str()),
            Val::str(&self.directory),
            Val::time(self.state.time),
            Val::opt_str(self.role.as_ref().map(Role::as_str)),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.distribution.is_empty() || self.instance.is_empty() || self.directory.is_empty() {
            return Err(format!(
                "state of `{}`: distribution, instance and directory must not be empty",
                self.service
            ));
        }
        Ok(())
    }
}

impl StateQuery {
    pub(crate) fn to_find(&self) -> Find {
        let mut filter = Vec::new();
        let mut eq = |field: &'static FieldDef, value: Option<&str>| {
            if let Some(v) = value {
                filter.push(Cond::Eq(field, Val::str(v)));
            }
        };
        eq(&DISTRIBUTION, self.distribution.as_deref());
        eq(&SERVICE, self.service.as_ref().map(ServiceName::as_str));
        eq(&ROLE, self.role.as_ref().map(Role::as_str));
        eq(&INSTANCE, self.instance.as_deref());
        eq(&DIRECTORY, self.directory.as_deref());
        if let Some(after) = self.after_sequence {
            filter.push(Cond::Sequence(Op::Gt, after));
        }
        // An upload cursor reads in storage order; people read by name.
        let sort = if self.after_sequence.is_some() {
            vec![(SortKey::Sequence, false)]
        } else {
            vec![
                (SortKey::Field(&DISTRIBUTION), false),
                (SortKey::Field(&SERVICE), false),
                (SortKey::Field(&ROLE), false),
                (SortKey::Field(&INSTANCE), false),
                (SortKey::Field(&DIRECTORY), false),
            ]
        };
        Find {
            filter,
            sort,
            skip: 0,
            limit: None,
        }
    }
}

/// States not refreshed since `time`.
pub(crate) fn dead_before(time: DateTime<Utc>) -> Vec<Cond> {
    vec![Cond::Cmp(&STATE_TIME, Op::Lt, Val::time(time))]
}
