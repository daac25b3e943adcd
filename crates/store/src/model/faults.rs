//! Fault reports: what an updater sends when a service crashes: the instance's state, the
//! last log lines and the list of files in the report's archive (the archive itself is in
//! the distribution's blob store).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::{Role, ServiceName};

use crate::doc::{CollectionDef, Cond, FieldDef, FieldKind, Find, Op, Record, SortKey, Val};
use crate::model::states::ServiceState;

/// The most log lines a report keeps.
pub const MAX_LOG_TAIL_LINES: usize = 500;

/// What a fault report says about the crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultInfo {
    /// When the fault happened.
    pub time: DateTime<Utc>,
    /// The instance (VM).
    pub instance: String,
    /// The service, without its role.
    pub service: ServiceName,
    /// The role it ran in, if any.
    pub service_role: Option<Role>,
    /// The service's directory on the instance.
    pub service_directory: String,
    /// The instance's state at the fault.
    pub state: ServiceState,
    /// The last log lines, at most [`MAX_LOG_TAIL_LINES`].
    pub log_tail: Vec<String>,
}

/// A file inside the report's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultFile {
    /// Its path inside the archive (relative, no `..`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A fault report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultReport {
    /// The distribution the instance belongs to.
    pub distribution: String,
    /// The report's id, unique within the distribution; stored as `fault`, the original's
    /// field name.
    #[serde(rename = "fault")]
    pub id: String,
    /// What happened.
    pub info: FaultInfo,
    /// The files of its archive.
    pub files: Vec<FaultFile>,
}

/// Which fault reports to list, newest first; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultQuery {
    /// Only the report with this id (exactly).
    pub id: Option<String>,
    /// Only this distribution.
    pub distribution: Option<String>,
    /// Only this service (in any role, unless `role` is given).
    pub service: Option<ServiceName>,
    /// Only this role.
    pub role: Option<Role>,
    /// Faults at or after.
    pub from_time: Option<DateTime<Utc>>,
    /// Faults at or before.
    pub to_time: Option<DateTime<Utc>>,
    /// Only reports stored after this `_sequence` (an upload cursor).
    pub after_sequence: Option<i64>,
    /// At most this many.
    pub limit: Option<u64>,
}

pub(crate) static DISTRIBUTION: FieldDef =
    FieldDef::new("distribution", "distribution", FieldKind::Str);
pub(crate) static ID: FieldDef = FieldDef::new("fault", "fault", FieldKind::Str);
pub(crate) static SERVICE: FieldDef = FieldDef::new("info.service", "info_service", FieldKind::Str);
pub(crate) static TIME: FieldDef = FieldDef::new("info.time", "info_time", FieldKind::Time);
pub(crate) static ROLE: FieldDef =
    FieldDef::new("info.serviceRole", "info_service_role", FieldKind::Str);

pub(crate) static FAULT_REPORTS: CollectionDef = CollectionDef {
    name: "fault_reports",
    fields: &[&DISTRIBUTION, &ID, &SERVICE, &TIME, &ROLE],
    key: &[&DISTRIBUTION, &ID],
    indexes: &[&[&TIME], &[&DISTRIBUTION, &SERVICE, &TIME]],
    history: true,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for FaultReport {
    const DEF: &'static CollectionDef = &FAULT_REPORTS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.distribution),
            Val::str(&self.id),
            Val::str(self.info.service.as_str()),
            Val::time(self.info.time),
            Val::opt_str(self.info.service_role.as_ref().map(Role::as_str)),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.distribution.is_empty() || self.id.is_empty() {
            return Err("a fault report needs a distribution and an id".to_owned());
        }
        if self.info.log_tail.len() > MAX_LOG_TAIL_LINES {
            return Err(format!(
                "fault report `{}` has {} log lines, more than {MAX_LOG_TAIL_LINES}",
                self.id,
                self.info.log_tail.len()
            ));
        }
        for file in &self.files {
            let escapes = file.path.is_empty()
                || file.path.starts_with('/')
                || file.path.split(['/', '\\']).any(|part| part == "..");
            if escapes {
                return Err(format!(
                    "fault report `{}`: file path `{}` must be relative and must not contain `..`",
                    self.id, file.path
                ));
            }
        }
        Ok(())
    }
}

impl FaultQuery {
    pub(crate) fn filter(&self) -> Vec<Cond> {
        let mut filter = Vec::new();
        if let Some(id) = &self.id {
            filter.push(Cond::Eq(&ID, Val::str(id)));
        }
        if let Some(d) = &self.distribution {
            filter.push(Cond::Eq(&DISTRIBUTION, Val::str(d)));
        }
        if let Some(s) = &self.service {
            filter.push(Cond::Eq(&SERVICE, Val::str(s.as_str())));
        }
        if let Some(r) = &self.role {
            filter.push(Cond::Eq(&ROLE, Val::str(r.as_str())));
        }
        if let Some(t) = self.from_time {
            filter.push(Cond::Cmp(&TIME, Op::Gte, Val::time(t)));
        }
        if let Some(t) = self.to_time {
            filter.push(Cond::Cmp(&TIME, Op::Lte, Val::time(t)));
        }
        if let Some(after) = self.after_sequence {
            filter.push(Cond::Sequence(Op::Gt, after));
        }
        filter
    }

    pub(crate) fn to_find(&self) -> Find {
        let sort = if self.after_sequence.is_some() {
            vec![(SortKey::Sequence, false)]
        } else {
            vec![(SortKey::Field(&TIME), true)]
        };
        Find {
            filter: self.filter(),
            sort,
            skip: 0,
            limit: self.limit,
        }
    }
}

/// Reports of faults before `time`.
pub(crate) fn before(time: DateTime<Utc>) -> Vec<Cond> {
    vec![Cond::Cmp(&TIME, Op::Lt, Val::time(time))]
}

/// The reports past the newest `keep`, newest first.
pub(crate) fn beyond_newest(keep: u64) -> Find {
    Find {
        filter: Vec::new(),
        sort: vec![(SortKey::Field(&TIME), true)],
        skip: keep,
        limit: None,
    }
}

/// Sorted by fault time, ascending or descending, one document.
pub(crate) fn by_time(filter: Vec<Cond>, descending: bool) -> Find {
    Find {
        filter,
        sort: vec![(SortKey::Field(&TIME), descending)],
        skip: 0,
        limit: Some(1),
    }
}
