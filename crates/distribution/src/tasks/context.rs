//! [`TaskContext`]: what a task's work gets (log lines, the cancellation signal), and the
//! writer that stores its log lines in batches.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use vupdate_core::log::Level;
use vupdate_core::service::ServiceName;
use vupdate_store::Store;
use vupdate_store::model::logs::LogRecord;

/// The most log lines stored in one insert.
const BATCH: usize = 256;

/// Where task log lines come from: the fields every log record needs besides the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOrigin {
    /// The service writing them (e.g. `distribution`, or `builder` for build tasks).
    pub service: ServiceName,
    /// The instance (host) it runs on.
    pub instance: String,
    /// Its directory on that instance.
    pub directory: String,
    /// Its process id.
    pub process: String,
}

impl LogOrigin {
    /// A task log record from this origin.
    pub(super) fn record(
        &self,
        task: &str,
        time: DateTime<Utc>,
        level: Level,
        unit: &str,
        message: &str,
        termination_status: Option<bool>,
    ) -> LogRecord {
        LogRecord {
            service: self.service.clone(),
            role: None,
            instance: self.instance.clone(),
            directory: self.directory.clone(),
            process: self.process.clone(),
            task: Some(task.to_owned()),
            time,
            level,
            unit: if unit.is_empty() { "task" } else { unit }.to_owned(),
            message: message.to_owned(),
            termination_status,
            source_sequence: None,
        }
    }
}

enum Message {
    // Boxed: a record is large beside a close.
    Line(Box<LogRecord>),
    Close(oneshot::Sender<()>),
}

/// What a task's work is given: its id, a log, and the cancellation signal. Cheap to clone.
#[derive(Clone)]
pub struct TaskContext {
    id: String,
    store: Store,
    origin: Arc<LogOrigin>,
    lines: mpsc::UnboundedSender<Message>,
    cancelled: watch::Receiver<bool>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Stores a task's log lines in batches until closed.
pub(super) struct LogWriter {
    handle: tokio::task::JoinHandle<()>,
}

impl TaskContext {
    /// A context for task `id` and the writer that stores its lines.
    pub(super) fn new(
        id: String,
        store: Store,
        origin: Arc<LogOrigin>,
        cancelled: watch::Receiver<bool>,
    ) -> (TaskContext, LogWriter) {
        let (lines, receiver) = mpsc::unbounded_channel();
        let handle = tokio::spawn(write_lines(store.clone(), id.clone(), receiver));
        let context = TaskContext {
            id,
            store,
            origin,
            lines,
            cancelled,
        };
        (context, LogWriter { handle })
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a line to the task's log (stored shortly after, in order; never blocks).
    pub fn log(&self, level: Level, unit: &str, message: &str) {
        self.send(level, unit, message, None);
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Returns once the task is cancelled (never, if it is not).
    pub async fn cancelled(&self) {
        let mut cancelled = self.cancelled.clone();
        if cancelled.wait_for(|c| *c).await.is_err() {
            // The manager is gone without cancelling: the task is never cancelled.
            std::future::pending::<()>().await;
        }
    }

    /// The last line, with the termination status.
    pub(super) fn log_end(&self, level: Level, message: &str, succeeded: bool) {
        self.send(level, "task", message, Some(succeeded));
    }

    fn send(&self, level: Level, unit: &str, message: &str, status: Option<bool>) {
        let record = self
            .origin
            .record(&self.id, self.store.now(), level, unit, message, status);
        // After the task ended the writer is closed: a lingering clone's lines are dropped.
        let _ = self.lines.send(Message::Line(Box::new(record)));
    }
}

impl LogWriter {
    /// Stores every line sent before this call, then stops the writer.
    pub(super) async fn close(self, context: &TaskContext) {
        let (done, stored) = oneshot::channel();
        if context.lines.send(Message::Close(done)).is_ok() {
            let _ = stored.await;
        }
        let _ = self.handle.await;
    }
}

async fn write_lines(store: Store, task: String, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut closed = None;
    while closed.is_none() {
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Line(record) => batch.push(*record),
                Message::Close(done) => {
                    closed = Some(done);
                    break;
                }
            }
            if batch.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty()
            && let Err(error) = store.logs().insert(batch).await
        {
            // A log line must not fail the task; the error goes to the process log.
            tracing::error!(%task, %error, "cannot store task log lines");
        }
    }
    if let Some(done) = closed {
        let _ = done.send(());
    }
}
