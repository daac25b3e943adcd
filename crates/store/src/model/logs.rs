//! Log records: one line of a service's or a task's log, as an updater or the builder sends it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vupdate_core::log::Level;
use vupdate_core::service::{Role, ServiceName};

use crate::doc::{
    CollectionDef, Cond, Doc, FieldDef, FieldKind, Find, Op, Record, SortKey, TextDef, Val,
    contains_ignoring_case, truncate_millis,
};
use crate::error::StoreError;

/// The longest message the store accepts; senders cut longer lines.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// The service that wrote it, without its role (`builder` for build tasks).
    pub service: ServiceName,
    /// The role the service runs in, if any (records written before roles had their own
    /// field have none; see [`crate::Store::split_legacy_roles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The instance (VM) it ran on.
    pub instance: String,
    /// The service's directory on that instance.
    pub directory: String,
    /// The process id.
    pub process: String,
    /// The task it belongs to, for task logs.
    pub task: Option<String>,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// Its level.
    pub level: Level,
    /// The functional unit that wrote it.
    pub unit: String,
    /// The message.
    pub message: String,
    /// For the last line of a task or process: whether it succeeded.
    pub termination_status: Option<bool>,
    /// The sender's own sequence number of the line, increasing per source (service,
    /// role, instance, directory, process); lets a receiver drop lines sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sequence: Option<i64>,
}

/// Which log records to read; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this service (in any role, unless `role` is given).
    pub service: Option<ServiceName>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only this instance.
    pub instance: Option<String>,
    /// Only this directory.
    pub directory: Option<String>,
    /// Only this process.
    pub process: Option<String>,
    /// Only this task's log.
    pub task: Option<String>,
    /// Only this level and the more severe ones.
    pub min_level: Option<Level>,
    /// Written at or after.
    pub from_time: Option<DateTime<Utc>>,
    /// Written at or before.
    pub to_time: Option<DateTime<Utc>>,
    /// Only messages containing this text, ignoring case (Unicode lower-casing).
    pub text: Option<String>,
    /// Only records stored after this `_sequence`.
    pub after_sequence: Option<i64>,
    /// Only records stored before this `_sequence` (for paging backwards).
    pub before_sequence: Option<i64>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// A field of log records that [`crate::Logs::distinct`] can list the values of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    /// Services (without their roles).
    Service,
    /// Roles.
    Role,
    /// Instances.
    Instance,
    /// Directories.
    Directory,
    /// Processes.
    Process,
    /// Tasks.
    Task,
    /// Levels.
    Level,
}

pub(crate) static SERVICE: FieldDef = FieldDef::new("service", "service", FieldKind::Str);
pub(crate) static INSTANCE: FieldDef = FieldDef::new("instance", "instance", FieldKind::Str);
pub(crate) static DIRECTORY: FieldDef = FieldDef::new("directory", "directory", FieldKind::Str);
pub(crate) static PROCESS: FieldDef = FieldDef::new("process", "process", FieldKind::Str);
pub(crate) static TASK: FieldDef = FieldDef::new("task", "task", FieldKind::Str);
pub(crate) static TIME: FieldDef = FieldDef::new("time", "time", FieldKind::Time);
pub(crate) static LEVEL: FieldDef = FieldDef::few("level", "level", FieldKind::Str);
pub(crate) static UNIT: FieldDef = FieldDef::new("unit", "unit", FieldKind::Str);
pub(crate) static MESSAGE: FieldDef = FieldDef::new("message", "message", FieldKind::Str);
pub(crate) static ROLE: FieldDef = FieldDef::new("role", "role", FieldKind::Str);

/// The fields that tell one sender's lines apart (see [`LogRecord::source_sequence`]).
const SOURCE: &[&FieldDef] = &[&SERVICE, &INSTANCE, &DIRECTORY, &PROCESS, &ROLE];

pub(crate) static LOG_RECORDS: CollectionDef = CollectionDef {
    name: "log_records",
    fields: &[
        &SERVICE, &INSTANCE, &DIRECTORY, &PROCESS, &TASK, &TIME, &LEVEL, &UNIT, &MESSAGE, &ROLE,
    ],
    key: &[],
    // Newest first by service, by service and level (one range per level, merged: see
    // the SQLite backend's `find`; SQLite keeps no index by service alone, it merges the
    // service's ranges of every level: see `sqlite::merge`), by service and instance, by
    // task, and overall;
    // directory and process filters narrow the rows read from the service-and-instance
    // index. Service logs, most lines, have no task and no entry in the task index. The
    // last is one source's lines in `_sequence` order: its newest line, which the
    // receiver's de-duplication reads once per source (`Logs::last_source_sequence`),
    // without reading the instance's other lines (see `newest`).
    indexes: &[
        &[&SERVICE, &TIME],
        &[&SERVICE, &LEVEL, &TIME],
        &[&SERVICE, &INSTANCE, &TIME],
        &[&TASK, &TIME],
        &[&TIME],
        SOURCE,
    ],
    present_only: &[&TASK],
    history: false,
    logs_db: true,
    text: Some(&TEXT),
    // Asked only for one source's newest line: on SQLite a table of each source's newest
    // line, written once per source per write, not an index entry per line.
    newest: Some(SOURCE),
};

/// Messages are searched through the text index; service and task logs are segmented
/// apart, as they expire at different ages; a search within a service asks for its lines.
static TEXT: TextDef = TextDef {
    field: &MESSAGE,
    time: &TIME,
    apart: &TASK,
    within: &SERVICE,
};

impl Record for LogRecord {
    const DEF: &'static CollectionDef = &LOG_RECORDS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(self.service.as_str()),
            Val::str(&self.instance),
            Val::str(&self.directory),
            Val::str(&self.process),
            Val::opt_str(self.task.as_deref()),
            Val::time(self.time),
            Val::str(self.level.as_str()),
            Val::str(&self.unit),
            Val::str(&self.message),
            Val::opt_str(self.role.as_ref().map(Role::as_str)),
        ]
    }

    /// The body holds only the members without a column: both backends store the declared
    /// fields from their values (SQLite in columns, MongoDB at their paths), so a line is
    /// not serialised whole (a tenth of a line's write, with its allocations).
    fn to_doc(&self, index: usize) -> Result<Doc, StoreError> {
        self.validate().map_err(|reason| StoreError::Invalid {
            collection: LOG_RECORDS.name,
            index,
            reason,
        })?;
        // Every member named, so a new one cannot be forgotten here.
        let LogRecord {
            service: _,
            role: _,
            instance: _,
            directory: _,
            process: _,
            task: _,
            time: _,
            level: _,
            unit: _,
            message: _,
            termination_status,
            source_sequence,
        } = self;
        let mut body = Map::new();
        body.insert(
            "terminationStatus".to_owned(),
            termination_status.map_or(Value::Null, Value::Bool),
        );
        if let Some(sequence) = source_sequence {
            body.insert("sourceSequence".to_owned(), Value::from(*sequence));
        }
        Ok(Doc {
            body,
            fields: self.fields(),
            prepared: None,
        })
    }

    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("instance", &self.instance),
            ("directory", &self.directory),
            ("process", &self.process),
            ("unit", &self.unit),
        ] {
            if value.is_empty() {
                return Err(format!("the {name} is empty"));
            }
        }
        if self.task.as_deref() == Some("") {
            return Err("the task id is empty (leave it out for service logs)".to_owned());
        }
        if self.message.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "the message is {} bytes, more than the {MAX_MESSAGE_BYTES} allowed (cut long lines before sending)",
                self.message.len()
            ));
        }
        Ok(())
    }
}

impl LogQuery {
    /// The levels the query accepts, least severe first.
    fn levels(&self) -> Option<Vec<Level>> {
        self.min_level
            .map(|min| Level::ALL.into_iter().filter(|l| *l >= min).collect())
    }

    /// Whether `record`, stored as `sequence`, passes every filter except the limit. This
    /// is the definition the live feed uses; the backends' queries implement the same.
    pub fn matches(&self, sequence: i64, record: &LogRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let time = truncate_millis(record.time);
        self.service.as_ref().is_none_or(|s| *s == record.service)
            && self
                .role
                .as_ref()
                .is_none_or(|r| record.role.as_ref() == Some(r))
            && eq(&self.instance, &record.instance)
            && eq(&self.directory, &record.directory)
            && eq(&self.process, &record.process)
            && self
                .task
                .as_ref()
                .is_none_or(|t| record.task.as_ref() == Some(t))
            && self.min_level.is_none_or(|min| record.level >= min)
            && self
                .from_time
                .is_none_or(|from| time >= truncate_millis(from))
            && self.to_time.is_none_or(|to| time <= truncate_millis(to))
            && self
                .text
                .as_deref()
                .is_none_or(|text| contains_ignoring_case(&record.message, text))
            && self.after_sequence.is_none_or(|after| sequence > after)
            && self.before_sequence.is_none_or(|before| sequence < before)
    }

    pub(crate) fn filter(&self) -> Vec<Cond> {
        let mut filter = Vec::new();
        let mut eq = |field: &'static FieldDef, value: &Option<String>| {
            if let Some(v) = value {
                filter.push(Cond::Eq(field, Val::str(v)));
            }
        };
        eq(
            &SERVICE,
            &self.service.as_ref().map(|s| s.as_str().to_owned()),
        );
        eq(&ROLE, &self.role.as_ref().map(|r| r.as_str().to_owned()));
        eq(&INSTANCE, &self.instance);
        eq(&DIRECTORY, &self.directory);
        eq(&PROCESS, &self.process);
        eq(&TASK, &self.task);
        if let Some(levels) = self.levels() {
            filter.push(Cond::In(
                &LEVEL,
                levels.into_iter().map(|l| Val::str(l.as_str())).collect(),
            ));
        }
        if let Some(t) = self.from_time {
            filter.push(Cond::Cmp(&TIME, Op::Gte, Val::time(t)));
        }
        if let Some(t) = self.to_time {
            filter.push(Cond::Cmp(&TIME, Op::Lte, Val::time(t)));
        }
        if let Some(text) = self.text.as_deref().filter(|t| !t.is_empty()) {
            filter.push(Cond::ContainsCi(&MESSAGE, text.to_owned()));
        }
        if let Some(after) = self.after_sequence {
            filter.push(Cond::Sequence(Op::Gt, after));
        }
        if let Some(before) = self.before_sequence {
            filter.push(Cond::Sequence(Op::Lt, before));
        }
        filter
    }

    /// Newest first: by time, then by `_sequence`.
    pub(crate) fn newest_first(&self) -> Find {
        Find {
            filter: self.filter(),
            sort: vec![(SortKey::Field(&TIME), true)],
            skip: 0,
            limit: self.limit,
        }
    }

    /// In storage order: by `_sequence`, ascending.
    pub(crate) fn in_sequence(&self, limit: u64) -> Find {
        Find {
            filter: self.filter(),
            sort: vec![(SortKey::Sequence, false)],
            skip: 0,
            limit: Some(limit),
        }
    }
}

impl LogField {
    pub(crate) fn def(self) -> &'static FieldDef {
        match self {
            LogField::Service => &SERVICE,
            LogField::Role => &ROLE,
            LogField::Instance => &INSTANCE,
            LogField::Directory => &DIRECTORY,
            LogField::Process => &PROCESS,
            LogField::Task => &TASK,
            LogField::Level => &LEVEL,
        }
    }
}

/// Service logs (no task) and task logs, as expiry treats them apart.
pub(crate) fn service_logs_before(time: DateTime<Utc>) -> Vec<Cond> {
    vec![
        Cond::Eq(&TASK, Val::Null),
        Cond::Cmp(&TIME, Op::Lt, Val::time(time)),
    ]
}

/// Task logs written before `time`.
pub(crate) fn task_logs_before(time: DateTime<Utc>) -> Vec<Cond> {
    vec![
        Cond::Cmp(&TIME, Op::Lt, Val::time(time)),
        Cond::NotNull(&TASK),
    ]
}

/// `count` lines of service `api` from `instance`'s `/srv/api`, a request each
/// (`GET /orders/{k} 200`), numbered from 1 in their source: what the store's tests write.
#[cfg(test)]
pub(crate) fn sample_lines(instance: &str, count: usize) -> Vec<LogRecord> {
    (0..count)
        .map(|k| LogRecord {
            service: "api".parse().expect("service"),
            role: None,
            instance: instance.to_owned(),
            directory: "/srv/api".to_owned(),
            process: "main".to_owned(),
            task: None,
            time: chrono::Utc::now(),
            level: Level::Info,
            unit: "http".to_owned(),
            message: format!("GET /orders/{k} 200"),
            termination_status: None,
            source_sequence: Some(k as i64 + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::remove_path;

    /// What a line's document holds, whole: its body with the declared fields put back.
    fn whole(doc: Doc) -> Map<String, Value> {
        let mut body = doc.body;
        for (field, value) in LOG_RECORDS.fields.iter().zip(doc.fields) {
            crate::doc::set_path(&mut body, field.path, value.to_json());
        }
        body
    }

    #[test]
    fn a_line_document_holds_what_the_generic_one_holds() {
        let line = |task: Option<&str>, role: Option<&str>, status, sequence| LogRecord {
            service: "api".parse().expect("a name"),
            role: role.map(|r| r.parse().expect("a role")),
            instance: "vm-1".to_owned(),
            directory: "/srv/api".to_owned(),
            process: "42".to_owned(),
            task: task.map(str::to_owned),
            time: DateTime::from_timestamp_nanos(1_767_225_600_123_456_789),
            level: Level::Warn,
            unit: "main".to_owned(),
            message: "disk full".to_owned(),
            termination_status: status,
            source_sequence: sequence,
        };
        for record in [
            line(None, None, None, None),
            line(Some("task-1"), Some("eu"), Some(true), Some(7)),
        ] {
            let mut generic = match serde_json::to_value(&record).expect("json") {
                Value::Object(map) => map,
                other => panic!("an object: {other}"),
            };
            for field in LOG_RECORDS.fields {
                remove_path(&mut generic, field.path);
            }
            let fields = record.fields();
            let generic = whole(Doc {
                body: generic,
                fields,
                prepared: None,
            });
            assert_eq!(whole(record.to_doc(0).expect("a document")), generic);
        }
    }
}
