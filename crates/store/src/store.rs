//! [`Store`]: the one type the distribution holds. It wraps a backend, a clock and the
//! in-process log feed, and hands out one handle per collection.
//!
//! The handles are thin: each turns its typed calls into the generic operations below,
//! which validate records, call the backend and decode what comes back. So every rule
//! (history, restore window, ordering, validation) is written once for both backends.

mod accounts;
mod builds;
mod consumers;
mod enrolments;
mod faults;
mod group_commit;
mod in_force;
mod known_bad;
mod leases;
mod log_writes;
mod logs;
mod roles;
mod rollouts;
mod secrets;
mod states;
mod tasks;
mod text_index;
mod versions;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tokio::sync::broadcast;

pub use accounts::Accounts;
pub use builds::BuildStates;
pub use consumers::ConsumerReports;
pub use enrolments::{EnrolmentEntry, EnrolmentTokens};
pub use faults::FaultReports;
pub use in_force::CommitsInForce;
pub use known_bad::KnownBadVersions;
pub use leases::Leases;
pub use logs::Logs;
pub use roles::RoleSplit;
pub use rollouts::Rollouts;
pub use secrets::Secrets;
pub use states::ServiceStates;
pub use tasks::Tasks;
pub use versions::{ClientVersions, DeveloperVersions};

use crate::backend::{Backend, Raw};
use crate::body::Body;
use crate::clock::{Clock, SystemClock};
use crate::doc::{Cond, Find, Record, truncate_millis};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::logs::LogRecord;

/// How long a deleted or replaced version can be restored; afterwards the expiry job (and,
/// on MongoDB, a TTL index) removes it.
pub const ARCHIVE_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// How many inserted log batches the live feed buffers per follower before it lags.
const FEED_CAPACITY: usize = 1024;

/// A batch of log records as the live feed carries it.
pub(crate) type LogBatch = Arc<Vec<Stored<LogRecord>>>;

/// The distribution's store: cheap to clone, shared by every task of the server.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
}

struct Inner {
    backend: crate::observe::Timed,
    description: String,
    feed: broadcast::Sender<LogBatch>,
    /// The writer's turn (`group_commit`), first come, first served: held from sequence
    /// reservation to broadcast, so the feed carries log records in `_sequence` order and
    /// a follower can drop what it has already seen by number.
    log_writes: tokio::sync::Mutex<()>,
    /// Log batches waiting for a writer turn.
    log_queue: group_commit::Queue<LogRecord>,
    /// State reports waiting for a writer turn.
    state_queue: group_commit::Queue<crate::model::states::ServiceStateRecord>,
    /// Whether the writer's turns are scheduled to look at the queues again: set by the
    /// write that spawns them (or by the turns going on), cleared as they take the lock
    /// (`group_commit`).
    turn_pending: std::sync::atomic::AtomicBool,
    /// Log lines written since the text index last caught up (`text_index`).
    unindexed: std::sync::atomic::AtomicUsize,
    /// Whether a text index catch-up runs.
    indexing: std::sync::atomic::AtomicBool,
    /// The runtime the store was opened on, where its own tasks run (see [`Store::spawn`]).
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.description)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn new(backend: Box<dyn Backend>, description: String) -> Store {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Store {
            inner: Arc::new(Inner {
                backend: crate::observe::Timed::new(backend),
                description,
                feed,
                log_writes: tokio::sync::Mutex::new(()),
                log_queue: group_commit::Queue::default(),
                state_queue: group_commit::Queue::default(),
                turn_pending: std::sync::atomic::AtomicBool::new(false),
                unindexed: std::sync::atomic::AtomicUsize::new(0),
                indexing: std::sync::atomic::AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// Runs `task` on the runtime the store was opened on, whichever runtime the caller
    /// is on: a writer's turn spawned by a caller on a busy runtime of its own (the
    /// distribution's thread for log uploads) would otherwise be polled there between
    /// that runtime's work, and while it holds the write lock the state reports queued
    /// for it would wait too. That runtime must outlive the store (every program opens and
    /// uses its store on one): a turn spawned on a runtime shut down would never answer
    /// its batch.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.runtime.spawn(task)
    }

    /// Starts indexing, in the background, the log lines a file holds that are not yet in
    /// its text index (lines written before it had one).
    pub(crate) fn start_text_index(&self) {
        text_index::start(self);
    }

    /// The same store, reading "now" from `clock` (tests and simulations).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Store {
        Store {
            inner: self.inner.clone(),
            clock,
        }
    }

    /// Sets the one observer that is told the duration of every store operation (a
    /// server's metrics); returns false, changing nothing, when one is set already.
    pub fn set_observer(&self, observer: Arc<dyn crate::observe::StoreObserver>) -> bool {
        self.inner.backend.set_observer(observer)
    }

    /// The store's current time, as its clock says.
    pub fn now(&self) -> DateTime<Utc> {
        truncate_millis(self.clock.now())
    }

    /// What the store runs on, e.g. `sqlite:/var/lib/vupdate/store.sqlite`.
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// Accounts.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    /// Developer version records.
    pub fn developer_versions(&self) -> DeveloperVersions<'_> {
        DeveloperVersions::new(self)
    }

    /// Client version records.
    pub fn client_versions(&self) -> ClientVersions<'_> {
        ClientVersions::new(self)
    }

    /// Tasks.
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks::new(self)
    }

    /// Log records, with the live feed.
    pub fn logs(&self) -> Logs<'_> {
        Logs::new(self)
    }

    /// Service states.
    pub fn service_states(&self) -> ServiceStates<'_> {
        ServiceStates::new(self)
    }

    /// What each consumer distribution last reported having installed.
    pub fn consumer_reports(&self) -> ConsumerReports<'_> {
        ConsumerReports::new(self)
    }

    /// Named secrets, sealed by the distribution.
    pub fn secrets(&self) -> Secrets<'_> {
        Secrets::new(self)
    }

    /// Enrolment tokens and the uses spent of each.
    pub fn enrolment_tokens(&self) -> EnrolmentTokens<'_> {
        EnrolmentTokens::new(self)
    }

    /// Known-bad versions.
    pub fn known_bad_versions(&self) -> KnownBadVersions<'_> {
        KnownBadVersions::new(self)
    }

    /// Rollouts by waves.
    pub fn rollouts(&self) -> Rollouts<'_> {
        Rollouts::new(self)
    }

    /// Named leases: which of several processes on this store does the work that runs once.
    pub fn leases(&self) -> Leases<'_> {
        Leases::new(self)
    }

    /// Each distribution's commit in force, as its lease holder last recorded it.
    pub fn commits_in_force(&self) -> CommitsInForce<'_> {
        CommitsInForce::new(self)
    }

    /// Fault reports.
    pub fn fault_reports(&self) -> FaultReports<'_> {
        FaultReports::new(self)
    }

    /// Build states and their history.
    pub fn build_states(&self) -> BuildStates<'_> {
        BuildStates::new(self)
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &self.inner.backend
    }

    pub(crate) fn feed(&self) -> &broadcast::Sender<LogBatch> {
        &self.inner.feed
    }

    /// The writer's turns (`group_commit`): log groups, text index chunks, expiry steps.
    pub(crate) fn log_writes(&self) -> group_commit::Turns<'_> {
        group_commit::Turns(self)
    }

    /// Validates every record first, so an invalid one stops the batch before anything is
    /// written; then converts them.
    fn docs<R: Record>(records: &[R]) -> Result<Vec<crate::doc::Doc>, StoreError> {
        records
            .iter()
            .enumerate()
            .map(|(i, r)| r.to_doc(i))
            .collect()
    }

    fn stored<R: Record>(
        docs: Vec<crate::doc::Doc>,
        sequences: Vec<i64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<R>>, StoreError> {
        docs.into_iter()
            .zip(sequences)
            .map(|(doc, sequence)| {
                Ok(Stored {
                    sequence,
                    modify_time: now,
                    archive_time: None,
                    record: R::from_body(Body::Json(Value::Object(doc.body)), sequence)?,
                })
            })
            .collect()
    }

    /// Adds new records, all or nothing.
    pub(crate) async fn insert_records<R: Record>(
        &self,
        records: &[R],
    ) -> Result<Vec<Stored<R>>, StoreError> {
        let docs = Self::docs(records)?;
        let now = self.now();
        let sequences = self.backend().insert(R::DEF, docs.clone(), now).await?;
        Self::stored(docs, sequences, now)
    }

    /// Adds or replaces records by key.
    pub(crate) async fn put_records<R: Record>(
        &self,
        records: &[R],
    ) -> Result<Vec<Stored<R>>, StoreError> {
        let docs = Self::docs(records)?;
        let now = self.now();
        let sequences = self.backend().put(R::DEF, docs.clone(), now).await?;
        Self::stored(docs, sequences, now)
    }

    /// Replaces `record` only while its key's current version is `expected` (`None`: while
    /// there is none); `None` when another write came first (nothing written).
    pub(crate) async fn put_record_if<R: Record>(
        &self,
        record: &R,
        expected: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let doc = record.to_doc(0)?;
        self.backend()
            .put_if(R::DEF, doc, expected, self.now())
            .await
    }

    pub(crate) fn decode<R: Record>(raw: Raw) -> Result<Stored<R>, StoreError> {
        Ok(Stored {
            sequence: raw.sequence,
            modify_time: raw.modify_time,
            archive_time: raw.archive_time,
            record: R::from_body(raw.body, raw.sequence)?,
        })
    }

    /// Current records.
    pub(crate) async fn find_records<R: Record>(
        &self,
        find: Find,
    ) -> Result<Vec<Stored<R>>, StoreError> {
        self.backend()
            .find(R::DEF, find)
            .await?
            .into_iter()
            .map(Self::decode)
            .collect()
    }

    /// The first current record matching `filter`.
    pub(crate) async fn first_record<R: Record>(
        &self,
        filter: Vec<Cond>,
    ) -> Result<Option<Stored<R>>, StoreError> {
        let find = Find {
            filter,
            limit: Some(1),
            ..Find::default()
        };
        Ok(self.find_records(find).await?.into_iter().next())
    }

    /// Archives the current records matching `filter`; returns how many.
    pub(crate) async fn archive_records<R: Record>(
        &self,
        filter: Vec<Cond>,
    ) -> Result<u64, StoreError> {
        self.backend().archive(R::DEF, filter, self.now()).await
    }

    /// Every version of the records matching `filter`, archived and current, oldest first.
    pub(crate) async fn history_records<R: Record>(
        &self,
        filter: Vec<Cond>,
    ) -> Result<Vec<Stored<R>>, StoreError> {
        let mut versions: Vec<Stored<R>> = self
            .backend()
            .history(R::DEF, filter.clone())
            .await?
            .into_iter()
            .map(Self::decode)
            .collect::<Result<_, _>>()?;
        versions.extend(
            self.find_records::<R>(Find {
                filter,
                ..Find::default()
            })
            .await?,
        );
        versions.sort_by_key(|v| v.sequence);
        Ok(versions)
    }

    /// Makes archived version `sequence` current again, within [`ARCHIVE_RETENTION`].
    pub(crate) async fn restore_record<R: Record>(
        &self,
        sequence: i64,
    ) -> Result<Stored<R>, StoreError> {
        let now = self.now();
        let window = TimeDelta::from_std(ARCHIVE_RETENTION).unwrap_or(TimeDelta::MAX);
        let restored = self
            .backend()
            .restore(R::DEF, sequence, now, now - window)
            .await?;
        let find = Find {
            filter: vec![Cond::SequenceIn(vec![restored])],
            limit: Some(1),
            ..Find::default()
        };
        self.find_records(find)
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound {
                collection: R::DEF.name,
                key: format!("#{restored}"),
            })
    }
}
