//! Group commit and the writer's turns, for log batches and state reports alike.
//!
//! A fleet sends many small writes at once: 10,000 updaters send 1,000 state reports and
//! about as many log batches a second. Writes that arrive while one is being written wait
//! in a [`Queue`] of their kind and go into the store together in the next transaction, so
//! they cost one commit, not one each.
//!
//! The writer's turns take the store's write lock ([`Turns`], first come, first served,
//! shared with the log expiry's steps) one at a time. Whoever takes the lock first writes
//! the state reports waiting; a writer turn then writes one group of log batches of at
//! most [`LOG_GROUP_LINES`] lines and lets the lock go. So a state report waits for at
//! most the one write in progress, however many log lines are queued, and a backlog of
//! log lines is written in bounded steps. (The text index is written beside the writer,
//! in a file of its own: see `text_index`.)
//!
//! One task runs the turns while anything waits, and a queued write spawns it only when it
//! is not scheduled: a task per write, as before, kept an idle task for every report and
//! batch queued for the lock while log lines always waited (at 50,000 instances 6,500 a
//! second were spawned and they ended at the writer's pace: the server's memory grew 3–4
//! MiB a second).
//!
//! Each batch keeps its own guarantees: it was validated whole before it was queued, it is
//! answered only once its transaction committed, and if a group's write fails its batches
//! are written again one by one, so a batch fails only for its own sake. The turns run as
//! tasks of their own, so a caller that goes away (a cancelled request) leaves no batch
//! unanswered.
//!
//! Log batches are admitted only while fewer than [`MAX_WAITING_LINES`] lines wait: past
//! it the writer is behind, and a batch waits for room at most [`ADMISSION_WAIT`], then is
//! refused ([`StoreError::Busy`]) for its sender to keep and send again later, instead of
//! holding its lines and its request without bound. While it waits it holds its records
//! only: the documents the writer binds are made once it has room (under a backlog, the
//! batches waiting are most of what the server holds). State reports are small and always
//! admitted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::doc::{Doc, Record};
use crate::error::StoreError;
use crate::model::logs::LogRecord;
use crate::model::states::ServiceStateRecord;
use crate::store::Store;

/// The most log lines one turn writes in one transaction: a few ms of the writer (its
/// rows and indexes), the longest a state report waits behind log lines.
pub(crate) const LOG_GROUP_LINES: usize = 1_000;
/// The most states one turn writes (a report is never split).
const STATE_GROUP_RECORDS: usize = 2_000;
/// The log lines that may wait for the writer before new batches wait for room: about a
/// second of the writer's work, and a few tens of MiB.
pub(crate) const MAX_WAITING_LINES: usize = 20_000;
/// How long a log batch waits for room before it is refused: a refused batch comes again
/// and is read again, which costs the CPU the writer and the state reports need, while a
/// waiting one costs only its memory (bounded by the server's requests in progress).
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A kind of record written in groups.
pub(crate) trait Grouped: Record {
    /// Whether a batch adds or replaces by key (`put`), rather than only adds (`insert`).
    const REPLACE: bool;

    /// The store's queue of this kind.
    fn queue(store: &Store) -> &Queue<Self>;

    /// In the writer's turn, once `records` committed with `sequences` at `now`, before
    /// the next write: what must follow each commit in order (log lines: the live feed).
    fn committed(store: &Store, records: Vec<Self>, sequences: &[i64], now: DateTime<Utc>);
}

/// A committed batch: its records' `_sequence`s, in order, and the commit's time.
pub(crate) struct Committed {
    pub sequences: Vec<i64>,
    pub now: DateTime<Utc>,
}

/// A validated batch waiting for its turn.
struct Batch<R> {
    records: Vec<R>,
    docs: Vec<Doc>,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

/// Batches of one kind waiting for the writer, oldest first.
pub(crate) struct Queue<R> {
    batches: Mutex<VecDeque<Batch<R>>>,
    /// Records in `batches`.
    waiting: AtomicUsize,
    /// Told each time a turn takes batches, for the batches waiting to be admitted.
    room: tokio::sync::Notify,
}

impl<R> Default for Queue<R> {
    fn default() -> Self {
        Queue {
            batches: Mutex::default(),
            waiting: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
        }
    }
}

impl<R: Grouped> Queue<R> {
    /// How many records wait for the writer.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// How many records are queued (reserved room not counted).
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|batch| batch.records.len())
            .sum()
    }

    /// Counts `records` as waiting unless `bound` records or more already wait; then says
    /// how many. The batch itself follows with [`Queue::push`].
    fn reserve(&self, records: usize, bound: usize) -> Result<(), usize> {
        let _batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = self.waiting.load(Ordering::Acquire);
        if waiting >= bound {
            return Err(waiting);
        }
        self.waiting.store(waiting + records, Ordering::Release);
        Ok(())
    }

    /// Gives back room reserved for a batch that will not come.
    fn release(&self, records: usize) {
        self.waiting.fetch_sub(records, Ordering::AcqRel);
        self.room.notify_waiters();
    }

    /// Queues `batch`, its records already counted by [`Queue::reserve`].
    fn push(&self, batch: Batch<R>) {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(batch);
    }

    /// Whether no batch is queued.
    fn is_empty(&self) -> bool {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Whole batches from the front: at least one (when any waits), and no more than
    /// `max` records in all unless the first alone has more.
    fn take(&self, max: usize) -> Vec<Batch<R>> {
        let mut batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
        let mut group = Vec::new();
        let mut records = 0;
        while let Some(next) = batches.front() {
            if !group.is_empty() && records + next.records.len() > max {
                break;
            }
            records += next.records.len();
            group.extend(batches.pop_front());
        }
        self.waiting.fetch_sub(records, Ordering::AcqRel);
        if records > 0 {
            self.room.notify_waiters();
        }
        group
    }
}

/// Queues `records` for a writer turn and waits until they committed. A log batch waits
/// for room (see [`MAX_WAITING_LINES`]), and is refused with [`StoreError::Busy`] when none
/// is made within [`ADMISSION_WAIT`], nothing of it queued. Its documents are made by
/// `make_docs` only once it has room: a batch waiting for room holds its records alone.
pub(crate) async fn submit<R: Grouped>(
    store: &Store,
    records: Vec<R>,
    make_docs: impl FnOnce(&[R]) -> Result<Vec<Doc>, StoreError>,
) -> Result<Committed, StoreError> {
    if records.is_empty() {
        return Ok(Committed {
            sequences: Vec::new(),
            now: store.now(),
        });
    }
    let bound = if R::REPLACE {
        usize::MAX
    } else {
        MAX_WAITING_LINES
    };
    let queue = R::queue(store);
    let deadline = tokio::time::Instant::now() + ADMISSION_WAIT;
    loop {
        // Listening before looking, so room made in between is not missed.
        let room = queue.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        match queue.reserve(records.len(), bound) {
            Ok(()) => break,
            Err(waiting) => {
                if tokio::time::timeout_at(deadline, room).await.is_err() {
                    return Err(StoreError::Busy {
                        collection: R::DEF.name,
                        waiting,
                    });
                }
            }
        }
    }
    // Nothing awaits from here until the batch is queued, so a caller that goes away
    // cannot leave its room reserved.
    let mut docs = match make_docs(&records) {
        Ok(docs) => docs,
        Err(error) => {
            queue.release(records.len());
            return Err(error);
        }
    };
    // What can be done before the writer's turn is done here, on the caller's task: the
    // writer works for every caller in turn.
    store.backend().prepare(R::DEF, &mut docs);
    let (reply, answer) = oneshot::channel();
    queue.push(Batch {
        records,
        docs,
        reply,
    });
    schedule_turn(store);
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Task {
            collection: R::DEF.name,
            reason: "the write ended without answering".to_owned(),
        })
    })
}

/// The store's write lock, taken one turn at a time, first come, first served.
pub(crate) struct Turns<'a>(pub(crate) &'a Store);

impl<'a> Turns<'a> {
    /// Waits for the writer's turn, then first writes the state reports waiting, so a
    /// report waits for at most the one write in progress (a log group or an expiry
    /// step), never for every turn queued before it.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'a, ()> {
        let store = self.0;
        let turn = store.inner.log_writes.lock().await;
        write(
            store,
            ServiceStateRecord::queue(store).take(STATE_GROUP_RECORDS),
        )
        .await;
        turn
    }
}

/// Spawns the writer's turns unless they are scheduled already.
fn schedule_turn(store: &Store) {
    if !store.inner.turn_pending.swap(true, Ordering::AcqRel) {
        let writer = store.clone();
        store.spawn(async move { turns(&writer).await });
    }
}

/// The writer's turns, one task for all: each takes the lock (writing the state reports
/// waiting, see [`Turns::lock`]), writes one bounded group of log batches and lets the
/// lock go, so the expiry waiting for it takes its steps in between; until nothing waits.
async fn turns(store: &Store) {
    loop {
        {
            let _turn = store.log_writes().lock().await;
            // Acquire: every write queued by a submitter that saw a turn scheduled is taken
            // below or by the next turn; one queued after this schedules a turn itself.
            store.inner.turn_pending.swap(false, Ordering::AcqRel);
            write(store, LogRecord::queue(store).take(LOG_GROUP_LINES)).await;
        }
        // Batches queued, not room reserved: a reserved batch schedules its own turn.
        let idle =
            LogRecord::queue(store).is_empty() && ServiceStateRecord::queue(store).is_empty();
        if idle || store.inner.turn_pending.swap(true, Ordering::AcqRel) {
            return;
        }
    }
}

/// Writes `group` in one transaction, or each batch alone when that fails.
async fn write<R: Grouped>(store: &Store, mut group: Vec<Batch<R>>) {
    if group.len() > 1 {
        let docs = group
            .iter_mut()
            .flat_map(|batch| std::mem::take(&mut batch.docs))
            .collect();
        let now = store.now();
        match backend_write::<R>(store, docs, now).await {
            Ok(sequences) => {
                let mut sequences = sequences.into_iter();
                for batch in group {
                    let mine = sequences.by_ref().take(batch.records.len()).collect();
                    answer(store, batch, Ok(mine), now);
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, collection = R::DEF.name, batches = group.len(), "a group of batches failed; writing them one by one");
            }
        }
    }
    for mut batch in group {
        // A batch whose documents went into a failed group is converted again.
        let docs = if batch.docs.is_empty() {
            match Store::docs(&batch.records) {
                Ok(docs) => docs,
                Err(error) => {
                    let _ = batch.reply.send(Err(error));
                    continue;
                }
            }
        } else {
            std::mem::take(&mut batch.docs)
        };
        let now = store.now();
        let written = backend_write::<R>(store, docs, now).await;
        answer(store, batch, written, now);
    }
}

async fn backend_write<R: Grouped>(
    store: &Store,
    docs: Vec<Doc>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    if R::REPLACE {
        store.backend().put(R::DEF, docs, now).await
    } else {
        store.backend().insert(R::DEF, docs, now).await
    }
}

/// Hands a committed batch to [`Grouped::committed`] and answers its caller.
fn answer<R: Grouped>(
    store: &Store,
    batch: Batch<R>,
    written: Result<Vec<i64>, StoreError>,
    now: DateTime<Utc>,
) {
    let written = written.map(|sequences| {
        R::committed(store, batch.records, &sequences, now);
        Committed { sequences, now }
    });
    // A caller that went away needs no answer.
    let _ = batch.reply.send(written);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use vupdate_test_support::Patience;

    use super::*;
    use crate::model::logs::sample_lines;
    use crate::model::states::{ServiceState, StateQuery};
    use crate::observe::StoreObserver;

    /// The writes the backend made, in order: (`insert` or `put`, collection, ok).
    #[derive(Default)]
    struct Writes(Mutex<Vec<(&'static str, &'static str, bool)>>);

    impl StoreObserver for Writes {
        fn operation(
            &self,
            operation: &'static str,
            collection: &'static str,
            _: Duration,
            ok: bool,
        ) {
            if matches!(operation, "insert" | "put") {
                self.0
                    .lock()
                    .expect("writes")
                    .push((operation, collection, ok));
            }
        }
    }

    impl Writes {
        /// The writes since the last call.
        fn taken(&self) -> Vec<(&'static str, &'static str, bool)> {
            std::mem::take(&mut *self.0.lock().expect("writes"))
        }
    }

    async fn store(dir: &tempfile::TempDir) -> (Store, Arc<Writes>) {
        let store = crate::open(&crate::StoreConfig::Sqlite {
            path: dir.path().join("store.sqlite"),
        })
        .await
        .expect("store");
        let writes = Arc::new(Writes::default());
        assert!(store.set_observer(writes.clone()));
        (store, writes)
    }

    fn report(instance: &str) -> Vec<ServiceStateRecord> {
        ["api", "web", "db"]
            .iter()
            .map(|service| ServiceStateRecord {
                distribution: "acme".to_owned(),
                instance: instance.to_owned(),
                service: service.parse().expect("service"),
                role: None,
                directory: format!("/srv/{service}"),
                state: ServiceState {
                    time: Utc::now(),
                    install_time: None,
                    start_time: None,
                    version: Some("acme-1.0.0".parse().expect("version")),
                    update_to_version: None,
                    update_error: None,
                    failures_count: Some(0),
                    last_exit_code: None,
                    failed_version: None,
                },
                state_commit: None,
                labels: Default::default(),
            })
            .collect()
    }

    type Answer<T> = tokio::task::JoinHandle<Result<T, StoreError>>;

    /// Sets a report of each of `instances`, each from a task of its own.
    fn spawn_reports(
        store: &Store,
        instances: impl IntoIterator<Item = String>,
    ) -> Vec<Answer<Vec<crate::model::Stored<ServiceStateRecord>>>> {
        instances
            .into_iter()
            .map(|instance| {
                let store = store.clone();
                tokio::spawn(async move { store.service_states().set(report(&instance)).await })
            })
            .collect()
    }

    /// Inserts `count` batches of `size` lines (of vm-0, vm-1, …), each from a task of its own.
    fn spawn_batches(store: &Store, count: usize, size: usize) -> Vec<Answer<Vec<i64>>> {
        (0..count)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .logs()
                        .insert(sample_lines(&format!("vm-{i}"), size))
                        .await
                })
            })
            .collect()
    }

    /// Waits until `records` records of the kind `R` are queued for the writer.
    async fn until_waiting<R: Grouped>(store: &Store, records: usize) {
        Patience::up_to(Duration::from_secs(30))
            .every(Duration::from_millis(5))
            .eventually(&format!("{records} {} waiting", R::DEF.name), || async {
                (R::queue(store).queued() == records).then_some(())
            })
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_sent_together_share_one_transaction_and_each_is_answered_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writes) = store(&dir).await;
        // The writer's turn is held, so the 50 reports all wait for the next one.
        let turn = store.log_writes().lock().await;
        let sends = spawn_reports(&store, (0..50).map(|i| format!("vm-{i}")));
        until_waiting::<ServiceStateRecord>(&store, 150).await;
        assert!(writes.taken().is_empty(), "nothing written before the turn");
        drop(turn);
        let mut sequences = Vec::new();
        for send in sends {
            let stored = send.await.expect("join").expect("stored");
            assert_eq!(stored.len(), 3);
            sequences.extend(stored.iter().map(|s| s.sequence));
        }
        assert_eq!(
            writes.taken(),
            [("put", "service_states", true)],
            "one transaction"
        );
        sequences.sort_unstable();
        sequences.dedup();
        assert_eq!(sequences.len(), 150, "every state its own sequence");
        let found = store
            .service_states()
            .query(&StateQuery::default())
            .await
            .expect("query");
        assert_eq!(found.len(), 150);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_for_a_held_writer_spawn_one_turn_not_one_each() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _writes) = store(&dir).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let turn = store.log_writes().lock().await;
        let reports = spawn_reports(&store, (0..200).map(|i| format!("vm-{i}")));
        let batches = spawn_batches(&store, 100, 10);
        until_waiting::<ServiceStateRecord>(&store, 600).await;
        until_waiting::<LogRecord>(&store, 1000).await;
        // The 300 senders' own tasks, and the turns: one waits for the lock (with a turn
        // per write there were 300 more, each kept until its turn came).
        let turns = metrics.num_alive_tasks().saturating_sub(before + 300);
        assert!(turns <= 2, "{turns} writer turns wait for the lock");
        drop(turn);
        for report in reports {
            assert_eq!(report.await.expect("join").expect("stored").len(), 3);
        }
        for batch in batches {
            assert_eq!(batch.await.expect("join").expect("stored").len(), 10);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_report_the_store_refuses_fails_alone_and_the_others_of_its_group_are_stored() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writes) = store(&dir).await;
        // A write of vm-bad fails in SQLite itself, after validation (SQLite reports the
        // trigger's abort as a constraint, which the store reads as a duplicate).
        let other = rusqlite::Connection::open(dir.path().join("store.sqlite")).expect("open");
        other
            .execute_batch(
                "CREATE TRIGGER refuse_vm_bad BEFORE INSERT ON service_states \
                 WHEN NEW.instance = 'vm-bad' BEGIN SELECT RAISE(ABORT, 'vm-bad refused'); END;",
            )
            .expect("trigger");
        let turn = store.log_writes().lock().await;
        let sends = spawn_reports(&store, ["vm-1", "vm-bad", "vm-2"].map(str::to_owned));
        until_waiting::<ServiceStateRecord>(&store, 9).await;
        drop(turn);
        let mut answers = Vec::new();
        for send in sends {
            answers.push(send.await.expect("join").map(|stored| stored.len()));
        }
        assert_eq!(answers[0].as_ref().ok(), Some(&3));
        assert_eq!(answers[2].as_ref().ok(), Some(&3));
        let refused = answers[1].as_ref().expect_err("vm-bad refused").to_string();
        assert!(refused.contains("acme/vm-bad/"), "{refused}");
        // The group failed whole, then each report was written alone.
        let written = writes.taken();
        assert_eq!(written.len(), 4, "{written:?}");
        assert_eq!(written[0], ("put", "service_states", false));
        assert_eq!(
            written.iter().filter(|(_, _, ok)| *ok).count(),
            2,
            "{written:?}"
        );
        let found = store
            .service_states()
            .query(&StateQuery::default())
            .await
            .expect("query");
        let instances: std::collections::BTreeSet<_> =
            found.iter().map(|s| s.record.instance.as_str()).collect();
        assert_eq!(found.len(), 6);
        assert_eq!(instances, ["vm-1", "vm-2"].into());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_report_goes_before_queued_log_lines_which_are_written_in_bounded_groups() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writes) = store(&dir).await;
        let turn = store.log_writes().lock().await;
        // 10 batches of 1,000 lines queued first, then one report.
        let batches = spawn_batches(&store, 10, 1000);
        until_waiting::<LogRecord>(&store, 10_000).await;
        let report = spawn_reports(&store, ["vm-1".to_owned()]).remove(0);
        until_waiting::<ServiceStateRecord>(&store, 3).await;
        drop(turn);
        report.await.expect("join").expect("report stored");
        for batch in batches {
            assert_eq!(
                batch.await.expect("join").expect("lines stored").len(),
                1000
            );
        }
        // The report went first, then the lines in groups of at most LOG_GROUP_LINES.
        let mut expected = vec![("put", "service_states", true)];
        expected.extend([("insert", "log_records", true); 10_000 / LOG_GROUP_LINES]);
        assert_eq!(writes.taken(), expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whoever_takes_the_write_lock_writes_the_reports_waiting_first() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, writes) = store(&dir).await;
        // A report queued without a turn of its own yet.
        let records = report("vm-1");
        let docs = Store::docs(&records).expect("docs");
        let (reply, mut answer) = oneshot::channel();
        let batch = Batch {
            records,
            docs,
            reply,
        };
        let queue = ServiceStateRecord::queue(&store);
        assert!(queue.reserve(batch.records.len(), usize::MAX).is_ok());
        queue.push(batch);
        // As an expiry step takes its turn.
        let _turn = store.log_writes().lock().await;
        let committed = answer
            .try_recv()
            .expect("answered before the lock was handed over")
            .expect("stored");
        assert_eq!(committed.sequences.len(), 3);
        assert_eq!(writes.taken(), [("put", "service_states", true)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_batch_waiting_for_room_makes_its_documents_only_once_it_has_room() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _writes) = store(&dir).await;
        let turn = store.log_writes().lock().await;
        let admitted = spawn_batches(&store, MAX_WAITING_LINES / 1000, 1000);
        until_waiting::<LogRecord>(&store, MAX_WAITING_LINES).await;
        let made = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = tokio::spawn({
            let (store, made) = (store.clone(), made.clone());
            async move {
                submit(&store, sample_lines("vm-late", 10), |records| {
                    made.store(true, Ordering::Release);
                    Store::docs(records)
                })
                .await
            }
        });
        // Waiting for room, a batch holds its records, not their documents as well: under
        // a backlog that is most of what a server holds.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !made.load(Ordering::Acquire),
            "documents made before there was room"
        );
        drop(turn);
        for batch in admitted {
            batch.await.expect("join").expect("stored");
        }
        let committed = late
            .await
            .expect("join")
            .expect("stored once there was room");
        assert_eq!(committed.sequences.len(), 10);
        assert!(made.load(Ordering::Acquire));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_lines_past_the_bound_are_refused_busy_and_taken_once_the_writer_caught_up() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _writes) = store(&dir).await;
        let turn = store.log_writes().lock().await;
        let batch = 1000;
        let admitted = spawn_batches(&store, MAX_WAITING_LINES / batch, batch);
        until_waiting::<LogRecord>(&store, MAX_WAITING_LINES).await;
        // Refused after waiting for room, while the writer is still held: nothing of it
        // is queued.
        let refused = store.logs().insert(sample_lines("vm-late", batch)).await;
        match refused {
            Err(StoreError::Busy {
                collection,
                waiting,
            }) => {
                assert_eq!((collection, waiting), ("log_records", MAX_WAITING_LINES));
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(LogRecord::queue(&store).waiting(), MAX_WAITING_LINES);
        // One more waits for room, and is taken once the writer goes on.
        let waits_for_room = spawn_batches(&store, 1, batch).remove(0);
        // A state report is still taken.
        let report = spawn_reports(&store, ["vm-1".to_owned()]).remove(0);
        until_waiting::<ServiceStateRecord>(&store, 3).await;
        drop(turn);
        report.await.expect("join").expect("report stored");
        for batch in admitted {
            batch.await.expect("join").expect("admitted lines stored");
        }
        waits_for_room
            .await
            .expect("join")
            .expect("taken once there was room");
        // Sent again once the writer caught up, the batch is taken.
        let again = store
            .logs()
            .insert(sample_lines("vm-late", batch))
            .await
            .expect("taken");
        assert_eq!(again.len(), batch);
        let query = crate::model::logs::LogQuery::default();
        assert_eq!(
            store.logs().count(&query).await.expect("count"),
            (MAX_WAITING_LINES + 2 * batch) as u64
        );
    }
}
