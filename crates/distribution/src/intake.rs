//! [`LogIntake`]: log lines sent by updaters and builders, stored once each.
//!
//! Senders deliver at least once (an updater resends what the server did not acknowledge),
//! so each line may carry the sender's own increasing sequence number per source (service,
//! role, instance, directory, process). The intake remembers the last number stored per source,
//! reads it from the store the first time it sees a source (so a restart forgets nothing),
//! and drops every line at or below it. Batches are stored whole or not at all.

use std::collections::HashMap;

use vupdate_core::service::{Role, ServiceName};
use vupdate_store::model::logs::LogRecord;
use vupdate_store::{Store, StoreError};

/// Where a batch of lines comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogSource {
    /// The service.
    pub service: ServiceName,
    /// The role it runs in, if any.
    pub role: Option<Role>,
    /// The instance (VM).
    pub instance: String,
    /// The service's directory there.
    pub directory: String,
    /// The process id.
    pub process: String,
}

/// Stores log batches, dropping lines a sender already delivered; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogIntake {
    store: Store,
    /// The last source sequence stored per source; one lock, since the store writes log
    /// batches one at a time anyway.
    last: std::sync::Arc<tokio::sync::Mutex<HashMap<LogSource, Option<i64>>>>,
}

impl LogIntake {
    /// An intake writing to `store`.
    pub fn new(store: Store) -> LogIntake {
        LogIntake {
            store,
            last: std::sync::Arc::default(),
        }
    }

    /// Forgets the last numbers read, so the next batch of each source reads them from the
    /// store again (after records were rewritten under another source, see
    /// [`crate::roles::split_stored`]).
    pub async fn forget(&self) {
        self.last.lock().await.clear();
    }

    /// Stores the lines of `records` (all from `source`) that were not stored before;
    /// returns how many were stored. Lines without a source sequence are always stored.
    pub async fn add(
        &self,
        source: LogSource,
        records: Vec<LogRecord>,
    ) -> Result<usize, StoreError> {
        let mut last = self.last.lock().await;
        let known = match last.get(&source) {
            Some(known) => *known,
            None => {
                let stored = self
                    .store
                    .logs()
                    .last_source_sequence(
                        &source.service,
                        source.role.as_ref(),
                        &source.instance,
                        &source.directory,
                        &source.process,
                    )
                    .await?;
                last.insert(source.clone(), stored);
                stored
            }
        };
        let mut newest = known;
        let fresh: Vec<LogRecord> = records
            .into_iter()
            .filter(|record| match record.source_sequence {
                None => true,
                Some(sequence) if newest.is_none_or(|n| sequence > n) => {
                    newest = Some(sequence);
                    true
                }
                Some(_) => false,
            })
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let count = fresh.len();
        self.store.logs().insert(fresh).await?;
        last.insert(source, newest);
        Ok(count)
    }
}
