//! Build states: the last build of each service and target, and their history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;

use crate::doc::{CollectionDef, Cond, FieldDef, FieldKind, Record, Val};

/// What a build makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuildTarget {
    /// A developer version.
    DeveloperVersion,
    /// A client version.
    ClientVersion,
}

impl BuildTarget {
    fn as_str(self) -> &'static str {
        match self {
            BuildTarget::DeveloperVersion => "DeveloperVersion",
            BuildTarget::ClientVersion => "ClientVersion",
        }
    }
}

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuildStatus {
    /// Running.
    InProcess,
    /// Finished and stored.
    Success,
    /// Failed or interrupted.
    Failure,
}

impl BuildStatus {
    fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProcess => "InProcess",
            BuildStatus::Success => "Success",
            BuildStatus::Failure => "Failure",
        }
    }
}

/// The state of the last build of a service for a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildState {
    /// The service.
    pub service: ServiceName,
    /// What is built.
    pub target: BuildTarget,
    /// Who asked for it.
    pub author: String,
    /// The version being built.
    pub version: String,
    /// The author's comment.
    pub comment: String,
    /// The build's task.
    pub task: Option<String>,
    /// Where it is.
    pub status: BuildStatus,
    /// When the status was set.
    pub time: DateTime<Utc>,
}

pub(crate) static SERVICE: FieldDef = FieldDef::new("service", "service", FieldKind::Str);
pub(crate) static TARGET: FieldDef = FieldDef::new("target", "target", FieldKind::Str);
pub(crate) static STATUS: FieldDef = FieldDef::new("status", "status", FieldKind::Str);

/// Keyed by service and target (the original indexed a `targets` field that does not exist).
pub(crate) static BUILD_STATES: CollectionDef = CollectionDef {
    name: "build_states",
    fields: &[&SERVICE, &TARGET, &STATUS],
    key: &[&SERVICE, &TARGET],
    indexes: &[&[&STATUS]],
    history: true,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for BuildState {
    const DEF: &'static CollectionDef = &BUILD_STATES;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(self.service.as_str()),
            Val::str(self.target.as_str()),
            Val::str(self.status.as_str()),
        ]
    }
}

/// Build states of `service` and `target`, each optional.
pub(crate) fn filter(service: Option<&ServiceName>, target: Option<BuildTarget>) -> Vec<Cond> {
    let mut filter = Vec::new();
    if let Some(s) = service {
        filter.push(Cond::Eq(&SERVICE, Val::str(s.as_str())));
    }
    if let Some(t) = target {
        filter.push(Cond::Eq(&TARGET, Val::str(t.as_str())));
    }
    filter
}

/// Builds still marked as running.
pub(crate) fn in_process() -> Vec<Cond> {
    vec![Cond::Eq(&STATUS, Val::str(BuildStatus::InProcess.as_str()))]
}
