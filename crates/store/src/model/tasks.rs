//! Tasks: asynchronous work (builds, updates) with an id, a type, parameters, the services
//! it concerns, and whether it is still running.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;

use crate::doc::{CollectionDef, Cond, FieldDef, FieldKind, Find, Op, Record, SortKey, Val};

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id, unique; stored as `task`, the original's field name.
    #[serde(rename = "task")]
    pub id: String,
    /// Its type, e.g. `BuildDeveloperVersion`.
    #[serde(rename = "type")]
    pub task_type: String,
    /// Its parameters by name.
    pub parameters: BTreeMap<String, String>,
    /// The services it concerns.
    pub services: Vec<ServiceName>,
    /// When it was created.
    pub creation_time: DateTime<Utc>,
    /// Whether it is still running.
    pub active: bool,
    /// When it ended.
    pub termination_time: Option<DateTime<Utc>>,
    /// Whether it succeeded, once it ended.
    pub termination_status: Option<bool>,
}

/// Which tasks to list, newest first; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only this task.
    pub id: Option<String>,
    /// Only tasks of this type.
    pub task_type: Option<String>,
    /// Only tasks concerning this service.
    pub service: Option<ServiceName>,
    /// Only running tasks.
    pub only_active: bool,
    /// Created at or after.
    pub from_time: Option<DateTime<Utc>>,
    /// Created at or before.
    pub to_time: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: Option<u64>,
}

pub(crate) static ID: FieldDef = FieldDef::new("task", "task", FieldKind::Str);
pub(crate) static TYPE: FieldDef = FieldDef::new("type", "type", FieldKind::Str);
pub(crate) static SERVICES: FieldDef = FieldDef::new("services", "services", FieldKind::StrList);
pub(crate) static CREATION_TIME: FieldDef =
    FieldDef::new("creationTime", "creation_time", FieldKind::Time);
pub(crate) static ACTIVE: FieldDef = FieldDef::new("active", "active", FieldKind::Bool);

pub(crate) static TASKS: CollectionDef = CollectionDef {
    name: "tasks",
    fields: &[&ID, &TYPE, &SERVICES, &CREATION_TIME, &ACTIVE],
    key: &[&ID],
    indexes: &[&[&CREATION_TIME], &[&TYPE, &CREATION_TIME], &[&ACTIVE]],
    history: true,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for Task {
    const DEF: &'static CollectionDef = &TASKS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.id),
            Val::str(&self.task_type),
            Val::StrList(
                self.services
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            ),
            Val::time(self.creation_time),
            Val::Bool(self.active),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() || self.task_type.is_empty() {
            return Err("a task needs an id and a type".to_owned());
        }
        Ok(())
    }
}

impl TaskQuery {
    pub(crate) fn to_find(&self) -> Find {
        let mut filter = Vec::new();
        if let Some(id) = &self.id {
            filter.push(Cond::Eq(&ID, Val::str(id)));
        }
        if let Some(t) = &self.task_type {
            filter.push(Cond::Eq(&TYPE, Val::str(t)));
        }
        if let Some(s) = &self.service {
            filter.push(Cond::Has(&SERVICES, s.as_str().to_owned()));
        }
        if self.only_active {
            filter.push(Cond::Eq(&ACTIVE, Val::Bool(true)));
        }
        if let Some(t) = self.from_time {
            filter.push(Cond::Cmp(&CREATION_TIME, Op::Gte, Val::time(t)));
        }
        if let Some(t) = self.to_time {
            filter.push(Cond::Cmp(&CREATION_TIME, Op::Lte, Val::time(t)));
        }
        Find {
            filter,
            sort: vec![(SortKey::Field(&CREATION_TIME), true)],
            skip: 0,
            limit: self.limit,
        }
    }
}
