//! One service's log fan-out (tail, files, spool, live subscribers) and the pipe reader.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{NaiveDateTime, Utc};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Notify, broadcast};
use vupdate_core::log::LogLine;

use super::rotate::RotatingFile;
use super::spool::SpoolWriter;
use crate::Error;

/// Sizes of the in-memory parts of a log pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Lines kept for a fault report (the original's 500).
    pub tail_lines: usize,
    /// Lines a live subscriber may fall behind before it loses some.
    pub subscriber_capacity: usize,
    /// The longest line; a longer one is cut into pieces of this size.
    pub max_line_bytes: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            tail_lines: 500,
            subscriber_capacity: 1024,
            max_line_bytes: 64 * 1024,
        }
    }
}

/// A line as live subscribers see it: the line and the pid of the process that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLine {
    /// The pid of the run (group leader) the line came from.
    pub process: u32,
    /// The line.
    pub line: LogLine,
}

struct Outputs {
    tail: VecDeque<String>,
    file: Option<RotatingFile>,
    spool: Option<SpoolWriter>,
    upload: bool,
}

/// Where one service's lines go. Shared by its stdout and stderr readers, and kept across
/// its restarts and versions: the files of `writeLogs` belong to a version and are
/// swapped with [`LogPipeline::set_file`]; the spool belongs to the service.
pub struct LogPipeline {
    outputs: Mutex<Outputs>,
    tail_lines: usize,
    max_line_bytes: usize,
    /// Made at the first subscriber: its ring of `subscriber_capacity` slots is allocated
    /// whole, ~40 KB a service no one follows live would keep for nothing.
    live: OnceLock<broadcast::Sender<Arc<LiveLine>>>,
    subscriber_capacity: usize,
    wake: Option<Arc<Notify>>,
    write_errors: AtomicU64,
    lines: AtomicU64,
}

impl std::fmt::Debug for LogPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogPipeline")
            .field("lines", &self.lines.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl LogPipeline {
    /// A pipeline that may spool lines to `spool` (once [`LogPipeline::set_upload`] turns
    /// uploads on) and writes no files until [`LogPipeline::set_file`] gives one.
    pub fn new(spool: Option<SpoolWriter>, options: LogOptions) -> Self {
        let wake = spool.as_ref().map(SpoolWriter::wake);
        LogPipeline {
            outputs: Mutex::new(Outputs {
                tail: VecDeque::with_capacity(options.tail_lines.min(1024)),
                file: None,
                spool,
                upload: false,
            }),
            tail_lines: options.tail_lines,
            max_line_bytes: options.max_line_bytes.max(1),
            live: OnceLock::new(),
            subscriber_capacity: options.subscriber_capacity.max(1),
            wake,
            write_errors: AtomicU64::new(0),
            lines: AtomicU64::new(0),
        }
    }

    fn outputs(&self) -> MutexGuard<'_, Outputs> {
        // A panic while holding the lock leaves plain buffers behind; keep logging.
        self.outputs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the `writeLogs` file (or none) and returns the one it replaces, flushed, so the
    /// caller may move that file away.
    pub fn set_file(&self, file: Option<RotatingFile>) -> Option<RotatingFile> {
        let mut outputs = self.outputs();
        let mut old = std::mem::replace(&mut outputs.file, file);
        if let Some(old) = &mut old
            && let Err(error) = old.flush()
        {
            self.count_error(&error);
        }
        old
    }

    /// Turns `uploadLogs` on or off; lines go to the spool only while it is on (and the
    /// pipeline has a spool).
    pub fn set_upload(&self, upload: bool) {
        self.outputs().upload = upload;
    }

    /// Takes raw lines (without line endings) that process `process` wrote, received at
    /// `received`: parses each and hands it to every output. Never waits for a subscriber;
    /// file errors are counted and logged, never returned, so the service's output keeps
    /// being drained.
    pub fn push_lines<'a>(
        &self,
        raw: impl IntoIterator<Item = &'a str>,
        received: NaiveDateTime,
        process: u32,
    ) {
        let mut outputs = self.outputs();
        for raw in raw {
            self.push_locked(&mut outputs, LogLine::parse(raw, received), process);
        }
    }

    /// Takes one line the updater itself writes about the service (start, exit, restart).
    pub fn push(&self, line: LogLine, process: u32) {
        let mut outputs = self.outputs();
        self.push_locked(&mut outputs, line, process);
        drop(outputs);
        self.flush();
    }

    fn push_locked(&self, outputs: &mut Outputs, line: LogLine, process: u32) {
        let text = line.to_string();
        if let Some(file) = &mut outputs.file
            && let Err(error) = file.write_line(&text)
        {
            self.count_error(&error);
        }
        if outputs.upload
            && let Some(spool) = &mut outputs.spool
            && let Err(error) = spool.append(process, &line)
        {
            self.count_error(&error);
        }
        if self.tail_lines > 0 {
            if outputs.tail.len() == self.tail_lines {
                outputs.tail.pop_front();
            }
            outputs.tail.push_back(text);
        }
        self.lines.fetch_add(1, Ordering::Relaxed);
        // Nobody watching live is not an error.
        if let Some(live) = self.live.get()
            && live.receiver_count() > 0
        {
            let _ = live.send(Arc::new(LiveLine { process, line }));
        }
    }

    /// Writes buffered lines out to the files and the spool.
    pub fn flush(&self) {
        let mut outputs = self.outputs();
        if let Some(file) = &mut outputs.file
            && let Err(error) = file.flush()
        {
            self.count_error(&error);
        }
        if let Some(spool) = &mut outputs.spool
            && let Err(error) = spool.flush()
        {
            self.count_error(&error);
        }
    }

    fn count_error(&self, error: &Error) {
        let before = self.write_errors.fetch_add(1, Ordering::Relaxed);
        // Log the 1st, 2nd, 4th, 8th… failure, so a full disk does not flood the log.
        if (before + 1).is_power_of_two() {
            tracing::warn!(%error, errors = before + 1, "log output failed");
        }
    }

    /// The last lines, oldest first, formatted `date level unit message`.
    pub fn tail(&self) -> Vec<String> {
        self.outputs().tail.iter().cloned().collect()
    }

    /// Lines taken so far.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// File and spool writes that failed so far.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// The longest line [`pump`] hands over whole.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Woken when new lines reach the spool (`None` without a spool).
    pub fn spool_wake(&self) -> Option<Arc<Notify>> {
        self.wake.clone()
    }

    /// Follows the lines from now on; a subscriber that falls behind loses lines.
    pub fn subscribe(&self) -> LineSubscription {
        LineSubscription {
            receiver: self
                .live
                .get_or_init(|| broadcast::channel(self.subscriber_capacity).0)
                .subscribe(),
            dropped: 0,
        }
    }
}

/// A live view of a service's lines that may lose some, and counts them.
#[derive(Debug)]
pub struct LineSubscription {
    receiver: broadcast::Receiver<Arc<LiveLine>>,
    dropped: u64,
}

impl LineSubscription {
    /// The next line, or `None` once the pipeline is gone.
    pub async fn recv(&mut self) -> Option<Arc<LiveLine>> {
        loop {
            match self.receiver.recv().await {
                Ok(line) => return Some(line),
                Err(broadcast::error::RecvError::Lagged(lost)) => self.dropped += lost,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Lines this subscriber lost by falling behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Reads `reader` (the stdout or stderr of process `process`) to its end, handing complete
/// lines to `pipeline` after each read and flushing, so a line reaches the files and the
/// spool as soon as it is read. A line longer than the pipeline's maximum is cut. Returns
/// the number of lines.
pub async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    pipeline: &LogPipeline,
    process: u32,
) -> std::io::Result<u64> {
    let end = pump_until(
        reader,
        pipeline,
        process,
        Vec::new(),
        std::future::pending(),
    )
    .await;
    match end.error {
        Some(error) => Err(error),
        None => Ok(end.lines),
    }
}

/// The most one read of a service's output takes (a pipe holds 64 KiB by default).
const READ_CHUNK: usize = 16 * 1024;

/// How a [`pump_until`] ended.
#[derive(Debug)]
pub(crate) struct PumpEnd<R> {
    /// The reader, when the pump was stopped before the end of its input (so another
    /// reader, e.g. the next updater process, can go on from the same place).
    pub reader: Option<R>,
    /// The bytes of a line begun and not yet ended when it stopped (empty at the end of
    /// the input, where a last unended line is handed over as a line).
    pub pending: Vec<u8>,
    /// Lines handed to the pipeline.
    pub lines: u64,
    /// The read error that ended it, if one did.
    pub error: Option<std::io::Error>,
}

/// [`pump`], starting with `pending` (a line begun before, e.g. by the previous updater
/// process) and stopping as soon as `stop` completes: then the complete lines read so far
/// are in the pipeline (flushed), and the reader and the bytes of an unended line are
/// given back, so nothing read is lost and no line is cut in two.
pub(crate) async fn pump_until<R: AsyncRead + Unpin>(
    mut reader: R,
    pipeline: &LogPipeline,
    process: u32,
    mut pending: Vec<u8>,
    stop: impl std::future::Future<Output = ()>,
) -> PumpEnd<R> {
    tokio::pin!(stop);
    let max_line_bytes = pipeline.max_line_bytes();
    let mut count = 0u64;
    loop {
        // Read straight after the unended line: no second buffer to fill and copy from
        // (two 64 KiB buffers per pipe before, 2.5 MB for ten quiet services).
        pending.reserve(READ_CHUNK);
        let read = tokio::select! {
            // Stop first: what is not read yet stays in the pipe for the next reader.
            biased;
            () = &mut stop => {
                return PumpEnd { reader: Some(reader), pending, lines: count, error: None };
            }
            read = reader.read_buf(&mut pending) => read,
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                return PumpEnd {
                    reader: None,
                    pending,
                    lines: count,
                    error: Some(error),
                };
            }
        };
        let at_end = read == 0;
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|byte| *byte == b'\n') {
            let mut line = &pending[start..start + end];
            // A line with no end in sight is cut so memory stays bounded.
            while line.len() > max_line_bytes {
                lines.push(&line[..max_line_bytes]);
                line = &line[max_line_bytes..];
            }
            lines.push(line);
            start += end + 1;
        }
        let mut rest = &pending[start..];
        while rest.len() >= max_line_bytes || (at_end && !rest.is_empty()) {
            let cut = rest.len().min(max_line_bytes);
            lines.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let consumed = pending.len() - rest.len();
        if !lines.is_empty() {
            count += lines.len() as u64;
            let texts: Vec<_> = lines
                .iter()
                .map(|bytes| String::from_utf8_lossy(bytes))
                .collect();
            pipeline.push_lines(
                texts.iter().map(|text| text.as_ref()),
                Utc::now().naive_utc(),
                process,
            );
            pipeline.flush();
        }
        pending.drain(..consumed);
        // What a long line grew is given back once it is handed on.
        if pending.capacity() > 4 * READ_CHUNK {
            pending.shrink_to(READ_CHUNK.max(pending.len()));
        }
        if at_end {
            return PumpEnd {
                reader: None,
                pending,
                lines: count,
                error: None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vupdate_core::log::{Level, PLAIN_UNIT};

    fn options(tail_lines: usize, subscriber_capacity: usize, max_line_bytes: usize) -> LogOptions {
        LogOptions {
            tail_lines,
            subscriber_capacity,
            max_line_bytes,
        }
    }

    #[tokio::test]
    async fn splits_parses_and_keeps_a_bounded_tail() {
        let pipeline = LogPipeline::new(None, options(3, 16, 1024));
        let input: &[u8] =
            b"2026-11-25 10:01:02.345 WARN db slow\nplain one\n\nlast without newline";
        let count = pump(input, &pipeline, 7).await.expect("pump");
        assert_eq!(count, 4);
        let tail = pipeline.tail();
        assert_eq!(tail.len(), 3);
        assert!(tail[0].ends_with(" INFO PLAIN plain one"), "{tail:?}");
        assert!(tail[1].ends_with(" INFO PLAIN"), "{tail:?}");
        assert!(
            tail[2].ends_with(" INFO PLAIN last without newline"),
            "{tail:?}"
        );
    }

    #[tokio::test]
    async fn cuts_overlong_lines() {
        let pipeline = LogPipeline::new(None, options(10, 16, 10));
        let mut live = pipeline.subscribe();
        let input = format!("{}\nok\n{}", "x".repeat(25), "y".repeat(12));
        assert_eq!(pump(input.as_bytes(), &pipeline, 1).await.expect("pump"), 6);
        let mut messages = Vec::new();
        for _ in 0..6 {
            let live_line = live.recv().await.expect("line");
            let line = &live_line.line;
            assert_eq!((line.level, line.unit.as_str()), (Level::Info, PLAIN_UNIT));
            assert_eq!(live_line.process, 1);
            messages.push(line.message.clone());
        }
        assert_eq!(
            messages,
            [
                "x".repeat(10),
                "x".repeat(10),
                "x".repeat(5),
                "ok".to_owned(),
                "y".repeat(10),
                "y".repeat(2)
            ]
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_counted_lines_and_never_blocks() {
        let pipeline = LogPipeline::new(None, options(10, 4, 1024));
        let mut slow = pipeline.subscribe();
        let input: String = (0..100).map(|index| format!("line {index}\n")).collect();
        assert_eq!(
            pump(input.as_bytes(), &pipeline, 1).await.expect("pump"),
            100
        );
        drop(pipeline);
        let mut received = Vec::new();
        while let Some(line) = slow.recv().await {
            received.push(line.line.message.clone());
        }
        assert_eq!(received, ["line 96", "line 97", "line 98", "line 99"]);
        assert_eq!(slow.dropped(), 96);
    }

    #[tokio::test]
    async fn lines_reach_the_spool_only_while_uploads_are_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = SpoolWriter::open(dir.path(), 1 << 20, u64::MAX).expect("spool");
        let pipeline = LogPipeline::new(Some(spool), LogOptions::default());
        pump(&b"before\n"[..], &pipeline, 1).await.expect("pump");
        pipeline.set_upload(true);
        pump(&b"during\n"[..], &pipeline, 2).await.expect("pump");
        pipeline.set_upload(false);
        pump(&b"after\n"[..], &pipeline, 3).await.expect("pump");
        let mut reader = super::super::SpoolReader::open(dir.path()).expect("reader");
        let lines = reader.read_batch(10).expect("read");
        let got: Vec<(u64, u32, &str)> = lines
            .iter()
            .map(|spooled| (spooled.seq, spooled.process, spooled.line.message.as_str()))
            .collect();
        assert_eq!(got, [(1, 2, "during")]);
    }

    #[tokio::test]
    async fn a_stopped_pump_gives_back_its_reader_and_the_unended_line() {
        let pipeline = LogPipeline::new(None, options(10, 16, 1024));
        let (mut writer, reader) = tokio::io::duplex(1024);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pumping = async {
            pump_until(reader, &pipeline, 1, b"begun ".to_vec(), async {
                let _ = stopped.await;
            })
            .await
        };
        let writing = async {
            use tokio::io::AsyncWriteExt;
            writer.write_all(b"before\nhalf a li").await.expect("write");
            // Let the pump read it all before it is stopped.
            for _ in 0..100 {
                if pipeline.lines() == 1 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let _ = stop.send(());
            writer
        };
        let (end, mut writer) = tokio::join!(pumping, writing);
        assert!(end.error.is_none());
        assert_eq!(end.lines, 1);
        assert_eq!(String::from_utf8_lossy(&end.pending), "half a li");
        let tail = pipeline.tail();
        assert!(tail[0].ends_with(" INFO PLAIN begun before"), "{tail:?}");
        // The next reader goes on from the same reader and the unended line.
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"ne\n").await.expect("write");
        drop(writer);
        let reader = end.reader.expect("the reader comes back");
        let end = pump_until(reader, &pipeline, 1, end.pending, std::future::pending()).await;
        assert!(end.reader.is_none() && end.pending.is_empty());
        let tail = pipeline.tail();
        assert!(tail[1].ends_with(" INFO PLAIN half a line"), "{tail:?}");
    }
}
