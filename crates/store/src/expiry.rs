//! Expiry: what the distribution's config says to forget, and when.
//!
//! [`Store::expire`] removes, for good: service logs and task logs past their ages, tasks
//! that ended long ago, fault reports past their age or beyond the newest N, service states
//! not refreshed within the expiration timeout (dead instances), and archived versions past
//! [`ARCHIVE_RETENTION`]. It takes `now` explicitly, so it is tested without waiting, and
//! it does not depend on MongoDB TTL indexes (a server's TTL monitor runs once a minute and
//! the test stand-in has none).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::doc::{Cond, Op, Val};
use crate::error::StoreError;
use crate::model::faults::{FAULT_REPORTS, FaultReport};
use crate::model::logs::{LOG_RECORDS, service_logs_before, task_logs_before};
use crate::model::states::{SERVICE_STATES, dead_before};
use crate::model::tasks::{ACTIVE, CREATION_TIME, TASKS};
use crate::store::{ARCHIVE_RETENTION, Store};

const DAY: u64 = 24 * 60 * 60;

/// How long each kind of record is kept (the distribution config's expiry settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Service log records (no task): default 7 days.
    pub service_logs: Duration,
    /// Task log records: default 365 days.
    pub task_logs: Duration,
    /// Ended tasks, by creation time: default 365 days.
    pub tasks: Duration,
    /// Fault reports, by fault time: default 7 days.
    pub fault_reports_age: Duration,
    /// The most fault reports kept (the newest): default 100.
    pub fault_reports_max_count: u64,
    /// Service states not refreshed for this long are dead and removed (the original's
    /// `serviceStates.expirationTimeout`): default 60 s.
    pub dead_states: Duration,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        ExpiryPolicy {
            service_logs: Duration::from_secs(7 * DAY),
            task_logs: Duration::from_secs(365 * DAY),
            tasks: Duration::from_secs(365 * DAY),
            fault_reports_age: Duration::from_secs(7 * DAY),
            fault_reports_max_count: 100,
            dead_states: Duration::from_secs(60),
        }
    }
}

/// What one expiry run removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpiryReport {
    /// Service log records.
    pub service_logs: u64,
    /// Task log records.
    pub task_logs: u64,
    /// Ended tasks.
    pub tasks: u64,
    /// Dead service states.
    pub dead_states: u64,
    /// Fault reports removed, current (by age or count) and archived; the caller deletes
    /// their archives from the blob store.
    pub fault_reports: Vec<FaultReport>,
    /// Archived versions (of every collection) past the restore window.
    pub archived: u64,
}

impl ExpiryReport {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == ExpiryReport::default()
    }
}

fn ago(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    now - TimeDelta::from_std(age).unwrap_or(TimeDelta::MAX)
}

/// Log lines an expiry removes per step: what a log batch waits for at most (about 10 ms;
/// their text index entries stay until their day goes whole).
const LOG_PURGE_CHUNK: usize = 1000;

impl Store {
    /// Removes the log lines matching `filter` for good, [`LOG_PURGE_CHUNK`] at a time,
    /// each step taking its turn with the log batches (first come, first served), so a
    /// batch waits at most one step however many lines go; then drops the text index's
    /// segments none of whose lines is left, in bounded steps on the index's own file
    /// (no turn of the writer's).
    async fn purge_logs(&self, filter: Vec<Cond>) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let deleted = {
                let _turn = self.log_writes().lock().await;
                self.backend()
                    .purge_some(&LOG_RECORDS, filter.clone(), LOG_PURGE_CHUNK)
                    .await?
            };
            removed += deleted;
            if deleted < LOG_PURGE_CHUNK as u64 {
                break;
            }
        }
        // The text index's segments whose lines all went (now or in a run cut short before
        // this step), dropped a bounded step at a time.
        while self.backend().prune_text(&LOG_RECORDS).await? {}
        Ok(removed)
    }

    /// Removes what `policy` says has expired at `now`; see the module documentation.
    pub async fn expire(
        &self,
        policy: &ExpiryPolicy,
        now: DateTime<Utc>,
    ) -> Result<ExpiryReport, StoreError> {
        let backend = self.backend();
        let mut report = ExpiryReport {
            service_logs: self
                .purge_logs(service_logs_before(ago(now, policy.service_logs)))
                .await?,
            task_logs: self
                .purge_logs(task_logs_before(ago(now, policy.task_logs)))
                .await?,
            tasks: backend
                .purge(
                    &TASKS,
                    vec![
                        Cond::Eq(&ACTIVE, Val::Bool(false)),
                        Cond::Cmp(&CREATION_TIME, Op::Lt, Val::time(ago(now, policy.tasks))),
                    ],
                )
                .await?,
            dead_states: backend
                .purge(&SERVICE_STATES, dead_before(ago(now, policy.dead_states)))
                .await?,
            ..ExpiryReport::default()
        };

        // Fault reports are read before they go: their archives live in the blob store.
        let old = crate::doc::Find {
            filter: crate::model::faults::before(ago(now, policy.fault_reports_age)),
            ..Default::default()
        };
        let mut expired: Vec<_> = self.find_records::<FaultReport>(old).await?;
        let excess = self
            .find_records::<FaultReport>(crate::model::faults::beyond_newest(
                policy.fault_reports_max_count,
            ))
            .await?;
        let seen: std::collections::HashSet<i64> = expired.iter().map(|r| r.sequence).collect();
        expired.extend(excess.into_iter().filter(|e| !seen.contains(&e.sequence)));
        if !expired.is_empty() {
            let sequences = expired.iter().map(|r| r.sequence).collect();
            backend
                .purge(&FAULT_REPORTS, vec![Cond::SequenceIn(sequences)])
                .await?;
        }
        report
            .fault_reports
            .extend(expired.into_iter().map(|r| r.record));

        let archive_cutoff = ago(now, ARCHIVE_RETENTION);
        for def in crate::COLLECTIONS {
            let removed = backend.purge_history(def, archive_cutoff).await?;
            report.archived += removed.len() as u64;
            if std::ptr::eq(*def, &FAULT_REPORTS) {
                for raw in removed {
                    report
                        .fault_reports
                        .push(Store::decode::<FaultReport>(raw)?.record);
                }
            }
        }
        if !report.is_empty() {
            tracing::info!(
                service_logs = report.service_logs,
                task_logs = report.task_logs,
                tasks = report.tasks,
                dead_states = report.dead_states,
                fault_reports = report.fault_reports.len(),
                archived = report.archived,
                "store expiry removed records"
            );
        }
        Ok(report)
    }
}
