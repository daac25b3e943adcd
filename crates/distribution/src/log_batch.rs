//! One batch of log lines as a sender sends it: the arguments of GraphQL `addLogs`, or
//! the body of `POST /logs/batches` (the same members, read by serde straight from the bytes),
//! checked and stored the same way whichever way it came.

use async_graphql::{InputObject, MaybeUndefined};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::watch;
use vupdate_core::log::Level;
use vupdate_core::paths::clean_directory;
use vupdate_store::model::logs::{LogRecord, MAX_MESSAGE_BYTES};

use crate::auth::{Principal, Role};
use crate::graphql::{check_reported_instance, parse_arg};
use crate::http::ApiError;
use crate::intake::{LogIntake, LogSource};
use crate::leadership::fence_builder;
use crate::roles::{read_instance, split_in_force};
use crate::watcher::InForce;

/// Who sends logs: updaters (service logs) and builders (task logs).
pub(crate) const SENDERS: &[Role] = &[Role::Administrator, Role::Updater, Role::Builder];
/// The most lines one batch may carry.
const MAX_BATCH: usize = 10_000;

/// Lines of one process, and where they come from.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogBatch {
    /// The service, without its role (or `name-role` when `role` is left out).
    pub service: String,
    /// The role the service runs in; null for none; left out, read from `service`.
    #[serde(default)]
    pub role: MaybeUndefined<String>,
    /// The instance (VM).
    pub instance: String,
    /// The service's directory there.
    pub directory: String,
    /// The process id.
    pub process: String,
    /// The task the lines belong to, if any.
    #[serde(default)]
    pub task: Option<String>,
    /// The lines, oldest first.
    pub logs: Vec<LogLineInput>,
}

/// One line as a sender sends it.
#[derive(InputObject, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogLineInput {
    /// The sender's sequence number, increasing per source; lines at or below the last
    /// stored one are dropped, so resending a batch is safe.
    #[serde(default)]
    sequence: Option<i64>,
    /// When it was written.
    time: DateTime<Utc>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    level: String,
    /// The functional unit that wrote it.
    unit: String,
    /// The message.
    message: String,
    /// For the last line of a task or process: whether it succeeded.
    #[serde(default)]
    termination_status: Option<bool>,
}

impl LogBatch {
    /// Stores the batch's new lines (all or nothing) for `principal`; returns how many
    /// were new. `in_force` tells a `name-role` service apart when `role` is left out.
    pub(crate) async fn store(
        self,
        principal: &Principal,
        in_force: &watch::Receiver<Option<InForce>>,
        intake: &LogIntake,
    ) -> Result<usize, ApiError> {
        principal.require(SENDERS)?;
        check_reported_instance(principal, "instance", &self.instance)?;
        // A lease holder's builder adds to its task's log only while that lease is in
        // force, as it uploads and records: a builder a dead holder left running does not
        // write after the task the new holder marked interrupted.
        fence_builder(intake.store(), principal).await?;
        let (source, records) = self.records(in_force)?;
        Ok(intake.add(source, records).await?)
    }

    /// The batch's source and its lines as records, or what is wrong with it.
    fn records(
        self,
        in_force: &watch::Receiver<Option<InForce>>,
    ) -> Result<(LogSource, Vec<LogRecord>), ApiError> {
        if self.logs.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!(
                "argument `logs`: {} lines in one batch, more than the {MAX_BATCH} allowed; send smaller batches",
                self.logs.len()
            )));
        }
        let in_force = in_force.borrow().clone();
        let (service, role) = read_instance("service", &self.service, self.role, |name| {
            split_in_force(&in_force, name)
        })?;
        let source = LogSource {
            service,
            role,
            instance: self.instance,
            directory: clean_directory(&self.directory),
            process: self.process,
        };
        let task = self.task;
        // Collected into a vector of the batch's length: collecting `Result`s grows it by
        // doubling, and batches waiting for the store held up to twice their records' room.
        let mut records = Vec::with_capacity(self.logs.len());
        for (index, line) in self.logs.into_iter().enumerate() {
            let level: Level = parse_arg(&format!("logs[{index}].level"), &line.level)?;
            if line.message.len() > MAX_MESSAGE_BYTES {
                return Err(ApiError::bad_request(format!(
                    "argument `logs[{index}].message`: {} bytes, more than the {MAX_MESSAGE_BYTES} allowed; cut long lines",
                    line.message.len()
                )));
            }
            records.push(LogRecord {
                service: source.service.clone(),
                role: source.role.clone(),
                instance: source.instance.clone(),
                directory: source.directory.clone(),
                process: source.process.clone(),
                task: task.clone(),
                time: line.time,
                level,
                unit: line.unit,
                message: line.message,
                termination_status: line.termination_status,
                source_sequence: line.sequence,
            });
        }
        Ok((source, records))
    }
}
