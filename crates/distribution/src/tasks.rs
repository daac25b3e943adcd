//! Tasks: every asynchronous action (a build, an update) as a recorded, logged, cancellable unit.
//!
//! [`TaskManager::start`] records the task as active in the store, runs its work on tokio
//! with a [`TaskContext`] (log lines, cancellation signal, tracing span), and when the work
//! ends writes a last log line carrying `terminationStatus` and marks the task inactive
//! with its termination time and status. The failure message (or `cancelled`) is that last
//! log line: the task record has no message field.
//!
//! [`TaskManager::cancel`] fires the work's cancellation signal; work that has not ended
//! after the grace period is aborted. At start-up, [`TaskManager::recover_interrupted`]
//! marks the tasks a previous run left active as failed and returns them to be started
//! again.

mod context;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;
use vupdate_core::log::Level;
use vupdate_core::service::ServiceName;
use vupdate_store::model::tasks::{Task, TaskQuery};
use vupdate_store::{Store, StoreError};

pub use context::{LogOrigin, TaskContext};

use crate::metrics::Metrics;

/// A task's id: 32 hex digits, random.
pub type TaskId = String;

/// The message of the last log line of a task cancelled by [`TaskManager::cancel`].
pub const CANCELLED: &str = "cancelled";

/// The message of the last log line of a task a restart interrupted (its work is not
/// resumed: a build whose version is still desired and without an image is planned again
/// by the reconcile loop, as a new task).
pub const INTERRUPTED: &str = "interrupted by a restart of the distribution; work still needed (a build of a version still desired) runs again as a new task";

/// What went wrong managing tasks.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The store failed while recording a task.
    #[error("cannot record task {task}: {error}")]
    Store {
        /// The task id (or `*` for every active task).
        task: String,
        /// The store's error (boxed: it is large).
        error: Box<StoreError>,
    },
    /// No random id could be made.
    #[error("cannot make a task id: {0}")]
    Id(String),
    /// No task with this id is running in this process.
    #[error("task {0} is not running")]
    NotRunning(String),
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Whether it succeeded.
    pub succeeded: bool,
    /// Why it failed (`cancelled`, the work's error, a panic); `None` on success.
    pub message: Option<String>,
}

/// One running task, as the manager tracks it.
struct Running {
    cancel: watch::Sender<bool>,
    done: watch::Receiver<Option<TaskOutcome>>,
}

/// Starts, tracks and cancels tasks, recording them in the store. Cheap to clone.
#[derive(Clone)]
pub struct TaskManager {
    store: Store,
    origin: Arc<LogOrigin>,
    grace: Duration,
    running: Arc<Mutex<HashMap<TaskId, Running>>>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager")
            .field("store", &self.store.description())
            .field("origin", &self.origin)
            .field("grace", &self.grace)
            .finish()
    }
}

impl TaskManager {
    /// A manager writing tasks and their logs to `store`, log lines marked with `origin`;
    /// cancelled work that has not ended after `grace` is aborted.
    pub fn new(store: Store, origin: LogOrigin, grace: Duration) -> Self {
        TaskManager {
            store,
            origin: Arc::new(origin),
            grace,
            running: Arc::default(),
            metrics: None,
        }
    }

    /// The same manager, counting the tasks it starts and ends in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Marks the tasks still active in the store (left by a previous run: call this before
    /// starting any task) as failed with a last log line [`INTERRUPTED`], and
    /// returns them as they were, so the reconcile loop can start them again.
    pub async fn recover_interrupted(&self) -> Result<Vec<Task>, TaskError> {
        let store_error = |source| TaskError::Store {
            task: "*".to_owned(),
            error: Box::new(source),
        };
        let active = self
            .store
            .tasks()
            .query(&TaskQuery {
                only_active: true,
                ..TaskQuery::default()
            })
            .await
            .map_err(store_error)?;
        let mut interrupted = Vec::with_capacity(active.len());
        let ours = self.running();
        // Tasks this manager runs are active for a good reason: called late, leave them be.
        for task in active.into_iter().map(|stored| stored.record) {
            if ours.contains(&task.id) {
                continue;
            }
            tracing::warn!(task = %task.id, r#type = %task.task_type, "{INTERRUPTED}");
            let line = self.origin.record(
                &task.id,
                self.store.now(),
                Level::Error,
                "tasks",
                INTERRUPTED,
                Some(false),
            );
            self.store
                .logs()
                .insert(vec![line])
                .await
                .map_err(|source| TaskError::Store {
                    task: task.id.clone(),
                    error: Box::new(source),
                })?;
            self.finish_record(&task, false).await?;
            interrupted.push(task);
        }
        Ok(interrupted)
    }

    /// Records a new active task and runs `work` on tokio; returns its id at once.
    pub async fn start<W, F>(
        &self,
        task_type: &str,
        parameters: BTreeMap<String, String>,
        services: Vec<ServiceName>,
        work: W,
    ) -> Result<TaskId, TaskError>
    where
        W: FnOnce(TaskContext) -> F + Send + 'static,
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let id = new_id()?;
        let task = Task {
            id: id.clone(),
            task_type: task_type.to_owned(),
            parameters,
            services,
            creation_time: self.store.now(),
            active: true,
            termination_time: None,
            termination_status: None,
        };
        self.store
            .tasks()
            .add(task.clone())
            .await
            .map_err(|source| TaskError::Store {
                task: id.clone(),
                error: Box::new(source),
            })?;
        let (cancel, cancelled) = watch::channel(false);
        let (done_tx, done) = watch::channel(None);
        let (context, writer) = TaskContext::new(
            id.clone(),
            self.store.clone(),
            Arc::clone(&self.origin),
            cancelled.clone(),
        );
        self.lock().insert(id.clone(), Running { cancel, done });
        if let Some(metrics) = &self.metrics {
            metrics.task_started(task_type);
        }
        let span = tracing::info_span!("task", id = %id, r#type = %task_type);
        let manager = self.clone();
        tokio::spawn(
            async move {
                let outcome = manager.supervise(work(context.clone()), cancelled).await;
                manager.finish(&task, &context, writer, &outcome).await;
                manager.lock().remove(&task.id);
                // Nobody waiting is fine: the outcome is in the store too.
                let _ = done_tx.send(Some(outcome));
            }
            .instrument(span),
        );
        Ok(id)
    }

    /// Fires the cancellation signal of a running task; it ends as failed, `cancelled`.
    pub fn cancel(&self, id: &str) -> Result<(), TaskError> {
        let running = self.lock();
        let task = running
            .get(id)
            .ok_or_else(|| TaskError::NotRunning(id.to_owned()))?;
        task.cancel.send_replace(true);
        Ok(())
    }

    /// The ids of the tasks running in this process, sorted.
    pub fn running(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Waits for a task started by this manager to end and returns how it ended; a task
    /// that already ended is read from the store (with no message).
    pub async fn wait(&self, id: &str) -> Result<TaskOutcome, TaskError> {
        let done = self.lock().get(id).map(|r| r.done.clone());
        if let Some(mut done) = done
            && let Ok(outcome) = done.wait_for(Option::is_some).await
            && let Some(outcome) = outcome.clone()
        {
            return Ok(outcome);
        }
        let stored = self
            .store
            .tasks()
            .get(id)
            .await
            .map_err(|source| TaskError::Store {
                task: id.to_owned(),
                error: Box::new(source),
            })?
            .ok_or_else(|| TaskError::NotRunning(id.to_owned()))?;
        match stored.record.termination_status {
            Some(succeeded) if !stored.record.active => Ok(TaskOutcome {
                succeeded,
                message: None,
            }),
            _ => Err(TaskError::NotRunning(id.to_owned())),
        }
    }

    /// Runs the work until it ends, or until the grace period after a cancellation.
    async fn supervise<F>(&self, work: F, mut cancelled: watch::Receiver<bool>) -> TaskOutcome
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let mut handle = tokio::spawn(work.in_current_span());
        let joined = tokio::select! {
            joined = &mut handle => joined,
            _ = async {
                if cancelled.wait_for(|c| *c).await.is_err() {
                    // The sender lives in `running` until this task ends: not reached.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(self.grace).await;
            } => {
                handle.abort();
                handle.await
            }
        };
        if *cancelled.borrow() {
            return TaskOutcome {
                succeeded: false,
                message: Some(CANCELLED.to_owned()),
            };
        }
        match joined {
            Ok(Ok(())) => TaskOutcome {
                succeeded: true,
                message: None,
            },
            Ok(Err(message)) => TaskOutcome {
                succeeded: false,
                message: Some(message),
            },
            Err(error) => TaskOutcome {
                succeeded: false,
                message: Some(format!("the task's work stopped: {error}")),
            },
        }
    }

    /// Writes the last log line, flushes the log and marks the record ended.
    async fn finish(
        &self,
        task: &Task,
        context: &TaskContext,
        writer: context::LogWriter,
        outcome: &TaskOutcome,
    ) {
        let (level, message) = match &outcome.message {
            None => (Level::Info, "task succeeded".to_owned()),
            Some(message) => (Level::Error, format!("task failed: {message}")),
        };
        context.log_end(level, &message, outcome.succeeded);
        if let Some(metrics) = &self.metrics {
            metrics.task_ended(&task.task_type, outcome.succeeded);
        }
        writer.close(context).await;
        if let Err(error) = self.finish_record(task, outcome.succeeded).await {
            // The task has ended either way; the next start-up's recovery will mark it failed.
            tracing::error!(%error, "cannot record the end of the task");
        }
    }

    async fn finish_record(&self, task: &Task, succeeded: bool) -> Result<(), TaskError> {
        let ended = Task {
            active: false,
            termination_time: Some(self.store.now()),
            termination_status: Some(succeeded),
            ..task.clone()
        };
        self.store
            .tasks()
            .put(ended)
            .await
            .map(|_| ())
            .map_err(|source| TaskError::Store {
                task: task.id.clone(),
                error: Box::new(source),
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Running>> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new random task id.
fn new_id() -> Result<TaskId, TaskError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TaskError::Id(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
