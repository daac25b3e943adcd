//! Service output: captured line by line, parsed, kept, rotated and spooled for upload.
//!
//! The path of one line: [`pump`] reads a child's stdout or stderr in chunks and never
//! waits for anyone downstream; each line becomes a [`LogLine`](vupdate_core::log::LogLine)
//! (lines outside the format are kept whole as `INFO PLAIN`) and goes, under one lock, to
//! the in-memory tail (for fault reports), the rotating files of `writeLogs`
//! ([`RotatingFile`]), the upload spool of `uploadLogs` ([`SpoolWriter`]), and to in-memory
//! subscribers, who may fall behind and then lose lines (counted per subscriber), since a
//! slow reader must never slow the service. The spool is the one path that loses nothing:
//! [`drain()`] reads it with a [`SpoolReader`], sends batches through a [`LogSink`] (the
//! distribution's `POST /logs/batches`, wired by the binary), retries with backoff and acknowledges.
//!
//! - [`rotate`]: size-based rotation by rename and reopen.
//! - [`spool`]: append-only numbered segments and the acknowledged-up-to marker.
//! - [`mod@drain`]: the sink trait and the task that empties the spool into it.
//! - [`pipeline`]: the fan-out of one service's lines and the pipe reader.

pub mod drain;
pub mod pipeline;
pub mod rotate;
pub mod spool;

pub use drain::{DrainOptions, DrainStats, LogSink, LogSource, drain};
pub use pipeline::{LineSubscription, LogOptions, LogPipeline, pump};
pub use rotate::RotatingFile;
pub use spool::{SpoolReader, SpoolWriter, SpooledLine};
