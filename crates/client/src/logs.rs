//! Log lines: batches sent to `POST /logs/batches` (GraphQL `addLogs` on a distribution
//! from before that route), and [`LogSender`], which batches lines as they come.
//!
//! The distribution stores a batch whole or not at all and drops every line whose
//! `sequence` is at or below the last one it stored for the same source (service,
//! instance, directory, process), so a sender may resend a batch it is unsure about. A
//! [`LogSender`] numbers its lines from the current time in microseconds, so a later
//! process that gets the same process id still numbers above an earlier one.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use vupdate_backoff::Backoff;
use vupdate_core::log::Level;

use crate::error::ClientError;
use crate::{Client, transport};

/// The most lines the distribution takes in one `addLogs` call.
pub const MAX_BATCH: usize = 10_000;
/// The most bytes of one message the distribution takes; longer ones are cut.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The most bytes of encoded lines sent in one `addLogs` call: half the distribution's
/// default GraphQL body limit (`limits.requests.maxGraphqlBody`, 4 MiB), so a batch of
/// long lines is split rather than refused.
pub const MAX_BATCH_BYTES: usize = 2 << 20;

/// Where lines come from; with `task`, they belong to that task's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// The service, without its role (`builder` for build output).
    pub service: String,
    /// The role it runs in, if any.
    pub role: Option<String>,
    /// The instance (host) it runs on.
    pub instance: String,
    /// Its directory there.
    pub directory: String,
    /// Its process id.
    pub process: String,
    /// The task the lines belong to, if any.
    pub task: Option<String>,
}

/// One line to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// When it was written.
    pub time: DateTime<Utc>,
    /// Its level.
    #[serde(serialize_with = "level_name")]
    pub level: Level,
    /// The functional unit that wrote it (`BUILD`, `PROCESS`…).
    pub unit: String,
    /// The text.
    pub message: String,
    /// The sender's increasing number per source, so resends are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    /// For the last line of a task or process: whether it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_status: Option<bool>,
}

fn level_name<S: serde::Serializer>(level: &Level, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(level.as_str())
}

const ADD_LOGS: &str = "mutation($service: String!, $role: String, $instance: String!, $directory: String!, $process: String!, $task: String, $logs: [LogLineInput!]!) { addLogs(service: $service, role: $role, instance: $instance, directory: $directory, process: $process, task: $task, logs: $logs) }";

impl Client {
    /// Sends `lines` of `source` (in batches of at most [`MAX_BATCH`] lines and
    /// [`MAX_BATCH_BYTES`]); returns how many the distribution stored (lines it had
    /// already are not counted).
    pub async fn add_logs(
        &self,
        source: &LogSource,
        lines: &[LogLine],
    ) -> Result<usize, ClientError> {
        let mut stored = 0;
        for batch in batches(lines) {
            let batch = json!({
                "service": source.service,
                "role": source.role,
                "instance": source.instance,
                "directory": source.directory,
                "process": source.process,
                "task": source.task,
                "logs": batch,
            });
            stored += self.add_log_batch(batch).await?;
        }
        Ok(stored)
    }

    /// Sends one batch (`addLogs`'s arguments as a JSON object) by `POST /logs/batches`,
    /// or by GraphQL to a distribution without that route (which this client then
    /// remembers).
    async fn add_log_batch(&self, batch: serde_json::Value) -> Result<usize, ClientError> {
        if !self.logs_by_graphql.load(Ordering::Relaxed) {
            match self.post_log_batch(&batch).await {
                Err(ClientError::Refused {
                    status: 404 | 405, ..
                }) => self.logs_by_graphql.store(true, Ordering::Relaxed),
                sent => return sent,
            }
        }
        let data: serde_json::Value = self.graphql_repeatable(ADD_LOGS, batch).await?;
        data["addLogs"]
            .as_u64()
            .map(|count| count as usize)
            .ok_or_else(|| ClientError::Decode {
                what: "GraphQL `addLogs`".to_owned(),
                reason: format!("`addLogs` is not a count: {data}"),
            })
    }

    /// `POST /logs/batches`: sent once more when the server closed the connection without
    /// answering, as a batch stored twice is stored once (its lines' sequences).
    async fn post_log_batch(&self, batch: &serde_json::Value) -> Result<usize, ClientError> {
        let url = self.url("/logs/batches");
        let response = self.post_json(&url, batch.to_string(), true).await?;
        if !response.status().is_success() {
            return Err(transport::refused("POST", &url, response).await);
        }
        #[derive(serde::Deserialize)]
        struct Stored {
            stored: usize,
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|source| transport::transport("POST", &url, source))?;
        let answer: Stored = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: format!("POST {url}"),
            reason: format!("not a count of lines stored: {e}"),
        })?;
        Ok(answer.stored)
    }
}

/// `lines` in order, cut into batches of at most [`MAX_BATCH`] lines and
/// [`MAX_BATCH_BYTES`] of JSON (a line larger than that alone goes alone).
fn batches(lines: &[LogLine]) -> Vec<&[LogLine]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, line) in lines.iter().enumerate() {
        let size = serde_json::to_vec(line).map_or(line.message.len(), |json| json.len());
        if index > start && (index - start == MAX_BATCH || bytes + size > MAX_BATCH_BYTES) {
            batches.push(&lines[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < lines.len() {
        batches.push(&lines[start..]);
    }
    batches
}

/// The longest wait before a batch is sent again while the distribution is away.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(5);

/// How a [`LogSender`] batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSenderOptions {
    /// The longest a line waits before its batch is sent; default 200 ms.
    pub interval: Duration,
    /// A batch is sent as soon as it has this many lines; default 100.
    pub max_lines: usize,
    /// The most lines kept while the distribution cannot be reached; beyond, the oldest
    /// are dropped (and counted). Default 100,000.
    pub max_queue: usize,
}

impl Default for LogSenderOptions {
    fn default() -> Self {
        LogSenderOptions {
            interval: Duration::from_millis(200),
            max_lines: 100,
            max_queue: 100_000,
        }
    }
}

/// What a [`LogSender`] did, when closed.
#[derive(Debug, Default)]
pub struct LogSenderReport {
    /// Lines the distribution stored.
    pub sent: usize,
    /// Lines given up on (queue full, refused, or still unsent at the close deadline).
    pub dropped: usize,
    /// The last error, if a batch failed.
    pub last_error: Option<ClientError>,
}

enum Message {
    Line(LogLine),
    Close,
}

/// Sends lines of one source in the background: a batch every `interval` or every
/// `max_lines` lines, in order, resending a batch while the distribution is away.
///
/// [`LogSender::line`] never blocks, so it can be called from a build's output loop.
pub struct LogSender {
    lines: mpsc::UnboundedSender<Message>,
    worker: tokio::task::JoinHandle<()>,
    progress: Arc<Mutex<Progress>>,
    next: AtomicI64,
}

/// What the worker has done so far; read at close, also when the worker is stopped.
#[derive(Default)]
struct Progress {
    sent: usize,
    dropped: usize,
    queued: usize,
    last_error: Option<ClientError>,
}

impl std::fmt::Debug for LogSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSender").finish_non_exhaustive()
    }
}

impl LogSender {
    /// Starts a sender of `source`'s lines through `client` on the current tokio runtime.
    pub fn start(client: Client, source: LogSource, options: LogSenderOptions) -> LogSender {
        let (lines, receiver) = mpsc::unbounded_channel();
        let progress = Arc::new(Mutex::new(Progress::default()));
        let worker = tokio::spawn(run(
            client,
            source,
            options,
            receiver,
            Arc::clone(&progress),
        ));
        LogSender {
            lines,
            worker,
            progress,
            next: AtomicI64::new(Utc::now().timestamp_micros()),
        }
    }

    /// Queues a line written now.
    pub fn line(&self, level: Level, unit: &str, message: &str) {
        self.push(level, unit, message, None);
    }

    /// Queues a line with a termination status (the last line of a process).
    pub fn last_line(&self, level: Level, unit: &str, message: &str, succeeded: bool) {
        self.push(level, unit, message, Some(succeeded));
    }

    fn push(&self, level: Level, unit: &str, message: &str, termination_status: Option<bool>) {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        let line = LogLine {
            time: Utc::now(),
            level,
            unit: unit.to_owned(),
            message: cut_message(message).to_owned(),
            sequence: Some(sequence),
            termination_status,
        };
        // After close the worker is gone; a late line has nowhere to go.
        let _ = self.lines.send(Message::Line(line));
    }

    /// Sends what is queued, waiting at most `deadline` for the distribution, then stops;
    /// lines still unsent then count as dropped.
    pub async fn close(self, deadline: Duration) -> LogSenderReport {
        let LogSender {
            lines,
            mut worker,
            progress,
            ..
        } = self;
        let _ = lines.send(Message::Close);
        if tokio::time::timeout(deadline, &mut worker).await.is_err() {
            worker.abort();
            let _ = worker.await;
        }
        let mut state = lock(&progress);
        LogSenderReport {
            sent: state.sent,
            dropped: state.dropped + state.queued,
            last_error: state.last_error.take(),
        }
    }
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    // Counters only: a panic while holding the lock leaves them usable.
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary (the distribution
/// refuses longer ones).
pub fn cut_message(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

async fn run(
    client: Client,
    source: LogSource,
    options: LogSenderOptions,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    progress: Arc<Mutex<Progress>>,
) {
    let mut queue: VecDeque<LogLine> = VecDeque::new();
    let mut open = true;
    let mut backoff = Backoff::new(options.interval, MAX_RESEND_DELAY);
    loop {
        // Gather until a batch is full, the interval passed, or the sender closed.
        if open {
            let deadline = tokio::time::sleep(options.interval);
            tokio::pin!(deadline);
            while queue.len() < options.max_lines {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Some(Message::Line(line)) => queue.push_back(line),
                        Some(Message::Close) | None => { open = false; break; }
                    },
                    () = &mut deadline => break,
                }
            }
        }
        let mut dropped = 0;
        while queue.len() > options.max_queue {
            queue.pop_front();
            dropped += 1;
        }
        {
            let mut state = lock(&progress);
            state.dropped += dropped;
            state.queued = queue.len();
        }
        if queue.is_empty() {
            if open {
                continue;
            }
            return;
        }
        let take = queue.len().min(MAX_BATCH);
        let batch: Vec<LogLine> = queue.iter().take(take).cloned().collect();
        let result = client.add_logs(&source, &batch).await;
        let resend = {
            let mut state = lock(&progress);
            let resend = match result {
                Ok(stored) => {
                    queue.drain(..take);
                    state.sent += stored;
                    backoff.reset();
                    false
                }
                Err(error) if error.is_transient() => {
                    tracing::debug!(%error, lines = batch.len(), "cannot send log lines yet; will resend");
                    state.last_error = Some(error);
                    true
                }
                Err(error) => {
                    // Refused (a bad line, a revoked token): resending would be refused again.
                    tracing::warn!(%error, lines = batch.len(), "log lines refused; dropped");
                    queue.drain(..take);
                    state.dropped += take;
                    state.last_error = Some(error);
                    false
                }
            };
            state.queued = queue.len();
            resend
        };
        if resend {
            tokio::time::sleep(backoff.next_delay()).await;
            // Lines that came meanwhile join the queue without waiting another interval.
            while let Ok(message) = receiver.try_recv() {
                match message {
                    Message::Line(line) => queue.push_back(line),
                    Message::Close => open = false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_serialize_as_the_schema_names_them() {
        let line = LogLine {
            time: DateTime::from_timestamp(1_767_225_600, 0).expect("time"),
            level: Level::Warn,
            unit: "BUILD".to_owned(),
            message: "hello".to_owned(),
            sequence: Some(7),
            termination_status: None,
        };
        assert_eq!(
            serde_json::to_value(&line).expect("json"),
            json!({"time": "2026-01-01T00:00:00Z", "level": "WARN", "unit": "BUILD", "message": "hello", "sequence": 7})
        );
    }

    #[test]
    fn batches_stay_under_the_line_and_byte_limits() {
        let line = |message: String| LogLine {
            time: DateTime::from_timestamp(1_767_225_600, 0).expect("time"),
            level: Level::Info,
            unit: "PLAIN".to_owned(),
            message,
            sequence: None,
            termination_status: None,
        };
        let short: Vec<LogLine> = (0..MAX_BATCH + 5).map(|n| line(n.to_string())).collect();
        let sizes: Vec<usize> = batches(&short).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [MAX_BATCH, 5]);
        // Long lines: a batch takes as many as fit in MAX_BATCH_BYTES, in order.
        let long: Vec<LogLine> = (0..7)
            .map(|_| line("x".repeat(MAX_MESSAGE_BYTES)))
            .collect();
        let split = batches(&long);
        assert_eq!(
            split.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [1, 1, 1, 1, 1, 1, 1]
        );
        let medium: Vec<LogLine> = (0..10).map(|_| line("y".repeat(500 << 10))).collect();
        let split = batches(&medium);
        assert!(
            split
                .iter()
                .all(|b| serde_json::to_vec(b).expect("json").len() <= MAX_BATCH_BYTES)
        );
        assert_eq!(split.iter().map(|b| b.len()).sum::<usize>(), 10);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = cut_message(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.len() > MAX_MESSAGE_BYTES - 2);
        assert_eq!(cut_message("short"), "short");
    }
}
