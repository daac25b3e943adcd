//! [`LogIntake`]: log lines sent by updaters and builders, stored once each.
//!
//! Senders deliver at least once (an updater resends what the server did not acknowledge),
//! so each line may carry the sender's own increasing sequence number per source (service,
//! role, instance, directory, process). The intake remembers the last number stored per source,
//! reads it from the store the first time it sees a source (so a restart forgets nothing),
//! and drops every line at or below it. Batches are stored whole or not at all. A source
//! that sends nothing for 10 minutes is forgotten (read from the store again if it
//! comes back): every restart of a service is a new source (its process id), and a server
//! that runs for months must not remember every process that ever sent a line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

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

/// The last source sequence stored of one source: unknown until read from the store.
type Last = Arc<tokio::sync::Mutex<Option<Option<i64>>>>;

/// How long a source may send nothing before it is forgotten: updaters ship every few
/// seconds, so only sources that are gone (a process restarted, an instance removed) stay
/// quiet this long; one that comes back costs one read of the store.
const FORGET_AFTER: Duration = Duration::from_secs(10 * 60);

/// The sources known, and when the quiet ones were last looked for.
#[derive(Debug)]
struct Sources {
    known: HashMap<LogSource, Known>,
    swept: Instant,
    /// [`FORGET_AFTER`], shorter in tests.
    forget_after: Duration,
}

/// One source's last number and when a batch of it last came.
#[derive(Debug)]
struct Known {
    last: Last,
    used: Instant,
}

impl Sources {
    fn new(forget_after: Duration) -> Sources {
        Sources {
            known: HashMap::new(),
            swept: Instant::now(),
            forget_after,
        }
    }

    /// The lock of `source`'s last number; forgets the quiet sources first, at most once
    /// per `forget_after`. A source whose lock someone holds (or waits for) is kept: its
    /// batch is being stored, and a second lock would let another batch of it in.
    fn last(&mut self, source: &LogSource) -> Last {
        let now = Instant::now();
        if now.duration_since(self.swept) >= self.forget_after {
            let forget_after = self.forget_after;
            self.known.retain(|_, known| {
                Arc::strong_count(&known.last) > 1 || now.duration_since(known.used) < forget_after
            });
            self.swept = now;
        }
        let known = self.known.entry(source.clone()).or_insert_with(|| Known {
            last: Last::default(),
            used: now,
        });
        known.used = now;
        Arc::clone(&known.last)
    }
}

/// Stores log batches, dropping lines a sender already delivered; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogIntake {
    store: Store,
    /// The last source sequence stored per source, each behind a lock of its own held
    /// while that source's batch is stored, so batches of different sources reach the
    /// store together (and share its group commit) while one source's are stored in turn.
    sources: Arc<Mutex<Sources>>,
    /// Held shared by every batch being stored, alone by [`LogIntake::forget`].
    epoch: Arc<tokio::sync::RwLock<()>>,
}

impl LogIntake {
    /// An intake writing to `store`.
    pub fn new(store: Store) -> LogIntake {
        LogIntake::forgetting_after(store, FORGET_AFTER)
    }

    /// The store the lines go to.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    fn forgetting_after(store: Store, forget_after: Duration) -> LogIntake {
        LogIntake {
            store,
            sources: Arc::new(Mutex::new(Sources::new(forget_after))),
            epoch: Arc::default(),
        }
    }

    /// Forgets the last numbers read, so the next batch of each source reads them from the
    /// store again (after records were rewritten under another source, see
    /// [`crate::roles::split_stored`]); waits for the batches being stored.
    pub async fn forget(&self) {
        let _alone = self.epoch.write().await;
        self.sources().known.clear();
    }

    /// The lock of `source`'s last number.
    fn last(&self, source: &LogSource) -> Last {
        self.sources().last(source)
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the lines of `records` (all from `source`) that were not stored before;
    /// returns how many were stored. Lines without a source sequence are always stored.
    pub async fn add(
        &self,
        source: LogSource,
        mut records: Vec<LogRecord>,
    ) -> Result<usize, StoreError> {
        let _epoch = self.epoch.read().await;
        let entry = self.last(&source);
        let mut last = entry.lock().await;
        let known = match *last {
            Some(known) => known,
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
                *last = Some(stored);
                stored
            }
        };
        let mut newest = known;
        // In place: a batch waiting for the store holds its records once.
        records.retain(|record| match record.source_sequence {
            None => true,
            Some(sequence) if newest.is_none_or(|n| sequence > n) => {
                newest = Some(sequence);
                true
            }
            Some(_) => false,
        });
        if records.is_empty() {
            return Ok(0);
        }
        let count = records.len();
        self.store.logs().insert(records).await?;
        *last = Some(newest);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vupdate_core::log::Level;
    use vupdate_store::StoreConfig;
    use vupdate_store::model::logs::LogQuery;

    use super::*;

    fn source(instance: &str) -> LogSource {
        LogSource {
            service: "api".parse().expect("service"),
            role: None,
            instance: instance.to_owned(),
            directory: "/srv/api".to_owned(),
            process: "main".to_owned(),
        }
    }

    fn lines(source: &LogSource, sequences: std::ops::RangeInclusive<i64>) -> Vec<LogRecord> {
        sequences
            .map(|sequence| LogRecord {
                service: source.service.clone(),
                role: None,
                instance: source.instance.clone(),
                directory: source.directory.clone(),
                process: source.process.clone(),
                task: None,
                time: chrono::Utc::now(),
                level: Level::Info,
                unit: "http".to_owned(),
                message: format!("line {sequence}"),
                termination_status: None,
                source_sequence: Some(sequence),
            })
            .collect()
    }

    async fn intake(dir: &tempfile::TempDir) -> LogIntake {
        let store = vupdate_store::open(&StoreConfig::Sqlite {
            path: dir.path().join("store.sqlite"),
        })
        .await
        .expect("store");
        LogIntake::new(store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_batch_is_stored_while_another_source_batch_is_held() {
        let dir = tempfile::tempdir().expect("dir");
        let intake = intake(&dir).await;
        let (a, b) = (source("vm-a"), source("vm-b"));
        // vm-a's batch in the middle of being stored holds vm-a's lock.
        let held = intake.last(&a);
        let _storing_a = held.lock().await;
        let stored = tokio::time::timeout(
            Duration::from_secs(60),
            intake.add(b.clone(), lines(&b, 1..=100)),
        )
        .await
        .expect("vm-b's batch does not wait for vm-a's")
        .expect("stored");
        assert_eq!(stored, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_sent_many_times_at_once_is_stored_once_and_forget_reads_the_store_again() {
        let dir = tempfile::tempdir().expect("dir");
        let intake = intake(&dir).await;
        let a = source("vm-a");
        let sends: Vec<_> = (0..10)
            .map(|_| {
                let (intake, a) = (intake.clone(), a.clone());
                tokio::spawn(async move { intake.add(a.clone(), lines(&a, 1..=100)).await })
            })
            .collect();
        let mut stored = 0;
        for send in sends {
            stored += send.await.expect("join").expect("stored");
        }
        assert_eq!(stored, 100, "every line once");
        intake.forget().await;
        assert_eq!(
            intake
                .add(a.clone(), lines(&a, 50..=150))
                .await
                .expect("stored"),
            50
        );
        let query = LogQuery::default();
        assert_eq!(intake.store.logs().count(&query).await.expect("count"), 150);
    }

    /// An intake for which every source not being stored is quiet for long enough.
    async fn forgetting_at_once(dir: &tempfile::TempDir) -> LogIntake {
        LogIntake::forgetting_after(intake(dir).await.store, Duration::ZERO)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_source_is_forgotten_and_its_last_number_read_from_the_store_again() {
        let dir = tempfile::tempdir().expect("dir");
        let intake = forgetting_at_once(&dir).await;
        let (a, b) = (source("vm-a"), source("vm-b"));
        assert_eq!(
            intake.add(a.clone(), lines(&a, 1..=100)).await.expect("a"),
            100
        );
        assert_eq!(
            intake.add(b.clone(), lines(&b, 1..=10)).await.expect("b"),
            10
        );
        assert_eq!(intake.sources().known.len(), 1, "vm-a is forgotten");
        assert_eq!(
            intake
                .add(a.clone(), lines(&a, 50..=150))
                .await
                .expect("a again"),
            50,
            "vm-a's lines up to 100 are known from the store"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_whose_batch_is_being_stored_is_not_forgotten() {
        let dir = tempfile::tempdir().expect("dir");
        let intake = forgetting_at_once(&dir).await;
        let (a, b) = (source("vm-a"), source("vm-b"));
        let held = intake.last(&a);
        let _storing_a = held.lock().await;
        assert_eq!(
            intake.add(b.clone(), lines(&b, 1..=10)).await.expect("b"),
            10
        );
        assert!(
            Arc::ptr_eq(&held, &intake.last(&a)),
            "a second batch of vm-a waits for the same lock"
        );
    }
}
