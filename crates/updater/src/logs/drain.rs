//! Emptying the spool into the distribution: batches by count or time, retries with
//! backoff while the sink fails, acknowledgement after each batch the sink took.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until};
use vupdate_backoff::Backoff;
use vupdate_core::service::ServiceInstance;

use super::spool::{SpoolReader, SpooledLine};
use crate::Error;

/// Which service's spool a batch comes from: what a log batch needs besides the lines (the
/// VM's instance id is the sink's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// The service and the role it runs in.
    pub instance: ServiceInstance,
    /// The service's directory on the VM.
    pub directory: String,
}

/// Where spooled lines go: the distribution's `POST /logs/batches` in the agent (one call per run of
/// consecutive lines of one `process`), a recorder in tests.
///
/// A batch holds increasing sequence numbers; after a failure or an updater restart the
/// same lines may come again, and the receiver drops those it has by sequence.
pub trait LogSink: Send + Sync {
    /// Why a batch was not taken.
    type Error: Display + Send;

    /// Delivers one batch of `source`'s lines; `Ok` means it is stored and may be
    /// forgotten here.
    fn send(
        &self,
        source: &LogSource,
        batch: &[SpooledLine],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How the drainer batches and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// The most lines in one batch.
    pub max_lines: usize,
    /// How long a batch that is not full waits for more lines after its first.
    pub max_wait: Duration,
    /// How often the spool is looked at when no writer in this process wakes the drainer
    /// (a drainer given a wake waits for it alone: every flush wakes it, and a wake
    /// that finds it busy is kept for its next wait).
    pub poll: Duration,
    /// About the delay after the first failed send (with jitter); it doubles after each
    /// failure in a row.
    pub retry_initial: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            max_lines: 1000,
            max_wait: Duration::from_millis(500),
            poll: Duration::from_secs(1),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// What a drainer did before it was shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainStats {
    /// Lines the sink took.
    pub lines: u64,
    /// Batches the sink took.
    pub batches: u64,
    /// Sends that failed and were retried.
    pub failures: u64,
}

/// Sends the spool's lines (of `source`) to `sink` until `shutdown` completes, starting after the
/// acknowledged marker. With `wake` (from [`super::SpoolWriter::wake`]) it looks at the
/// spool only when woken, so an idle service costs no wake-up; without, every
/// `options.poll`. Lines not acknowledged at shutdown stay in the spool for the next
/// drainer.
///
/// Spool reads are small reads of recently written (cached) local files, done inline.
pub async fn drain<S: LogSink>(
    mut reader: SpoolReader,
    source: &LogSource,
    sink: &S,
    wake: Option<Arc<Notify>>,
    options: DrainOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<DrainStats, Error> {
    tokio::pin!(shutdown);
    let polling = wake.is_none();
    let wake = wake.unwrap_or_default();
    let mut stats = DrainStats::default();
    loop {
        let mut batch = reader.read_batch(options.max_lines)?;
        if batch.is_empty() {
            tokio::select! {
                () = &mut shutdown => return Ok(stats),
                () = wake.notified() => {}
                () = sleep(options.poll), if polling => {}
            }
            continue;
        }
        let deadline = Instant::now() + options.max_wait;
        while batch.len() < options.max_lines && Instant::now() < deadline {
            let more = reader.read_batch(options.max_lines - batch.len())?;
            if more.is_empty() {
                tokio::select! {
                    () = &mut shutdown => return Ok(stats),
                    () = wake.notified() => {}
                    () = sleep_until(deadline) => {}
                }
            }
            batch.extend(more);
        }
        let mut backoff = Backoff::new(options.retry_initial, options.retry_max);
        loop {
            let sent = tokio::select! {
                () = &mut shutdown => return Ok(stats),
                sent = sink.send(source, &batch) => sent,
            };
            match sent {
                Ok(()) => break,
                Err(error) => {
                    stats.failures += 1;
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, lines = batch.len(), retry_in = ?delay, "log upload failed");
                    tokio::select! {
                        () = &mut shutdown => return Ok(stats),
                        () = sleep(delay) => {}
                    }
                }
            }
        }
        let last = batch.last().expect("a sent batch is not empty").seq;
        reader.acknowledge(last)?;
        stats.lines += batch.len() as u64;
        stats.batches += 1;
    }
}
