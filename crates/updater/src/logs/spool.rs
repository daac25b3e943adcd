//! The upload spool: every line with a sequence number, on disk until acknowledged.
//!
//! Layout of a spool directory: segment files `<first sequence, 20 digits>.seg`, each an
//! append-only list of JSON lines `{"seq":N,"process":P,"time":…,"level":…,"unit":…,
//! "message":…}`, and `acked`, the highest sequence the sink has taken, replaced atomically
//! (write a temporary file, sync, rename). A segment is deleted once every line in it is
//! acknowledged (the segment being written never is). After a crash the writer continues
//! after the last complete line (a torn last line is cut off) and the reader restarts after
//! `acked`, so lines are sent at least once; the sequence lets the receiver drop repeats.
//!
//! The sequence is per service and only grows, across processes, versions and updater
//! restarts, so it is increasing for every `(service, instance, directory, process)`
//! source the distribution keys its dedup by.
//!
//! Lines reach the disk's page cache at each flush (they survive an updater crash, not a
//! power cut). The spool is capped in size: past the cap the oldest segments are dropped
//! with a warning, so a long outage cannot fill the disk.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vupdate_core::log::{Level, LogLine};

use crate::Error;

const ACKED: &str = "acked";
const ACKED_TMP: &str = "acked.tmp";
const SEGMENT_SUFFIX: &str = ".seg";

/// A log line and its sequence number in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledLine {
    /// The line's number: more than the line before, never reused in a spool.
    pub seq: u64,
    /// The pid of the service run that wrote it (the `process` of a log batch).
    pub process: u32,
    /// The line.
    pub line: LogLine,
}

#[derive(Serialize, Deserialize)]
struct Record<'a> {
    seq: u64,
    process: u32,
    time: NaiveDateTime,
    level: Level,
    #[serde(borrow)]
    unit: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// The segments of `dir` by first sequence, oldest first.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|name| name.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|number| number.parse().ok())
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// The acknowledged-up-to marker of `dir` (0 when nothing was acknowledged).
fn read_acked(dir: &Path) -> Result<u64, Error> {
    let path = dir.join(ACKED);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(path = %path.display(), "unreadable spool marker, resending from the start");
            0
        })),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(Error::io("read", path)(error)),
    }
}

fn parse_record(bytes: &[u8]) -> Option<SpooledLine> {
    let record: Record<'_> = serde_json::from_slice(bytes).ok()?;
    Some(SpooledLine {
        seq: record.seq,
        process: record.process,
        line: LogLine {
            time: record.time,
            level: record.level,
            unit: record.unit.into_owned(),
            message: record.message.into_owned(),
        },
    })
}

/// Appends lines to a spool directory.
#[derive(Debug)]
pub struct SpoolWriter {
    dir: PathBuf,
    segment_bytes: u64,
    max_bytes: u64,
    file: BufWriter<File>,
    path: PathBuf,
    size: u64,
    next_seq: u64,
    wake: Arc<Notify>,
    buffer: Vec<u8>,
}

impl SpoolWriter {
    /// Opens the spool in `dir` (created if needed), continuing the sequence after its last
    /// complete line; a new segment is started once one passes `segment_bytes`, and the
    /// oldest segments are dropped while all of them pass `max_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64, max_bytes: u64) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let mut next_seq = read_acked(dir)? + 1;
        if let Some((first, path)) = segments(dir)?.pop() {
            next_seq = next_seq
                .max(first)
                .max(recover_tail(&path)?.map_or(0, |last| last + 1));
        }
        let path = dir.join(segment_name(next_seq));
        let (file, size) = open_segment(&path)?;
        Ok(SpoolWriter {
            dir: dir.to_owned(),
            segment_bytes: segment_bytes.max(1),
            max_bytes,
            file,
            path,
            size,
            next_seq,
            wake: Arc::new(Notify::new()),
            buffer: Vec::with_capacity(256),
        })
    }

    /// The sequence number the next line gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Woken after each flush, for a drainer in this process to look at once.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Appends `line` written by process `process` (buffered until
    /// [`SpoolWriter::flush`]) and returns its sequence.
    pub fn append(&mut self, process: u32, line: &LogLine) -> Result<u64, Error> {
        if self.size >= self.segment_bytes {
            self.flush()?;
            self.path = self.dir.join(segment_name(self.next_seq));
            let (file, size) = open_segment(&self.path)?;
            self.file = file;
            self.size = size;
            self.enforce_cap()?;
        }
        let seq = self.next_seq;
        self.buffer.clear();
        let record = Record {
            seq,
            process,
            time: line.time,
            level: line.level,
            unit: Cow::Borrowed(&line.unit),
            message: Cow::Borrowed(&line.message),
        };
        serde_json::to_writer(&mut self.buffer, &record).expect("a record serializes to memory");
        self.buffer.push(b'\n');
        self.file
            .write_all(&self.buffer)
            .map_err(Error::io("write", &self.path))?;
        self.size += self.buffer.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes the buffered lines to the segment file and wakes the drainer.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.file.flush().map_err(Error::io("write", &self.path))?;
        self.wake.notify_one();
        Ok(())
    }

    /// Drops the oldest finished segments while the spool is above its cap.
    fn enforce_cap(&self) -> Result<(), Error> {
        let all = segments(&self.dir)?;
        let sizes: Vec<u64> = all
            .iter()
            .map(|(_, path)| fs::metadata(path).map_or(0, |meta| meta.len()))
            .collect();
        let mut total: u64 = sizes.iter().sum();
        for ((first, path), size) in all.iter().zip(sizes) {
            if total <= self.max_bytes || *path == self.path {
                break;
            }
            tracing::warn!(
                dir = %self.dir.display(),
                from_seq = first,
                "log spool over its cap: dropping the oldest lines not yet uploaded"
            );
            fs::remove_file(path).map_err(Error::io("remove", path))?;
            total -= size;
        }
        Ok(())
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "spool lines lost at close");
        }
    }
}

fn open_segment(path: &Path) -> Result<(BufWriter<File>, u64), Error> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    let size = file
        .metadata()
        .map_err(Error::io("read the size of", path))?
        .len();
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

/// Cuts a torn last line off the segment at `path` and returns its last sequence.
fn recover_tail(path: &Path) -> Result<Option<u64>, Error> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(Error::io("read", path))?;
    let complete = bytes
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |end| end + 1);
    if complete < bytes.len() {
        tracing::warn!(path = %path.display(), bytes = bytes.len() - complete, "cutting a torn spool line");
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| file.set_len(complete as u64))
            .map_err(Error::io("truncate", path))?;
    }
    Ok(bytes[..complete]
        .split(|byte| *byte == b'\n')
        .rev()
        .find_map(parse_record)
        .map(|record| record.seq))
}

/// Reads a spool directory from after its acknowledged marker.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    acked: u64,
    next_seq: u64,
    current: Option<(u64, BufReader<File>)>,
    finished: Option<u64>,
    partial: Vec<u8>,
}

impl SpoolReader {
    /// Opens the spool in `dir` (created if needed), positioned after the acknowledged line.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let acked = read_acked(dir)?;
        Ok(SpoolReader {
            dir: dir.to_owned(),
            acked,
            next_seq: acked + 1,
            current: None,
            finished: None,
            partial: Vec::new(),
        })
    }

    /// The highest sequence acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acked
    }

    /// Up to `max` lines written and not yet read, in order; empty when there are none now.
    pub fn read_batch(&mut self, max: usize) -> Result<Vec<SpooledLine>, Error> {
        let mut batch = Vec::new();
        while batch.len() < max {
            if self.current.is_none() && !self.open_next()? {
                break;
            }
            let read = self.read_available(&mut batch, max)?;
            if batch.len() >= max || read {
                continue;
            }
            // At the end of this segment: a later one means the writer moved on after
            // writing this one out, so read what came in meanwhile, then go on.
            let Some((first, _)) = &self.current else {
                break;
            };
            let first = *first;
            if !segments(&self.dir)?.iter().any(|(later, _)| *later > first) {
                break;
            }
            while batch.len() < max && self.read_available(&mut batch, max)? {}
            if batch.len() >= max {
                break;
            }
            if !self.partial.is_empty() {
                tracing::warn!(dir = %self.dir.display(), "dropping a torn spool line");
                self.partial.clear();
            }
            self.current = None;
            self.finished = Some(first);
        }
        Ok(batch)
    }

    /// Reads complete lines into `batch`; returns whether any byte was read.
    fn read_available(&mut self, batch: &mut Vec<SpooledLine>, max: usize) -> Result<bool, Error> {
        let Some((first, reader)) = &mut self.current else {
            return Ok(false);
        };
        let mut any = false;
        while batch.len() < max {
            let read = reader
                .read_until(b'\n', &mut self.partial)
                .map_err(Error::io("read", self.dir.join(segment_name(*first))))?;
            if read == 0 {
                break;
            }
            any = true;
            if self.partial.last() != Some(&b'\n') {
                break;
            }
            match parse_record(&self.partial) {
                Some(record) if record.seq >= self.next_seq => {
                    self.next_seq = record.seq + 1;
                    batch.push(record);
                }
                Some(_) => {}
                None => {
                    tracing::warn!(dir = %self.dir.display(), "skipping an unreadable spool line")
                }
            }
            self.partial.clear();
        }
        Ok(any)
    }

    /// Opens the segment holding `next_seq`, or the first after it; false when none.
    fn open_next(&mut self) -> Result<bool, Error> {
        let all = segments(&self.dir)?;
        let unread = |first: u64| self.finished.is_none_or(|done| first > done);
        // The segment holding next_seq is the last one starting at or before it.
        let chosen = all
            .iter()
            .rev()
            .find(|(first, _)| *first <= self.next_seq && unread(*first))
            .or_else(|| {
                all.iter()
                    .find(|(first, _)| *first > self.next_seq && unread(*first))
            });
        let Some((first, path)) = chosen else {
            return Ok(false);
        };
        let file = match File::open(path) {
            Ok(file) => file,
            // Dropped by the writer's cap between the listing and the open.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(Error::io("open", path)(error)),
        };
        self.current = Some((*first, BufReader::with_capacity(64 * 1024, file)));
        Ok(true)
    }

    /// Records that every line up to `seq` was taken by the sink, then deletes the
    /// segments that hold nothing else.
    pub fn acknowledge(&mut self, seq: u64) -> Result<(), Error> {
        if seq <= self.acked {
            return Ok(());
        }
        let tmp = self.dir.join(ACKED_TMP);
        let mut file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        file.write_all(seq.to_string().as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(Error::io("write", &tmp))?;
        let marker = self.dir.join(ACKED);
        fs::rename(&tmp, &marker).map_err(Error::io("rename", &tmp))?;
        self.acked = seq;
        let all = segments(&self.dir)?;
        for pair in all.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *next_first <= seq + 1 {
                match fs::remove_file(path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io("remove", path)(error));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine::parse(message, NaiveDateTime::MIN)
    }

    fn messages(batch: &[SpooledLine]) -> Vec<String> {
        batch
            .iter()
            .map(|spooled| spooled.line.message.clone())
            .collect()
    }

    #[test]
    fn lines_cross_segments_in_order_and_acked_segments_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SpoolWriter::open(dir.path(), 200, u64::MAX).expect("writer");
        for index in 0..30 {
            writer
                .append(4, &line(&format!("line {index}")))
                .expect("append");
        }
        writer.flush().expect("flush");
        assert!(segments(dir.path()).expect("list").len() > 3);
        let mut reader = SpoolReader::open(dir.path()).expect("reader");
        let first = reader.read_batch(12).expect("read");
        assert_eq!(first.first().map(|s| s.seq), Some(1));
        assert_eq!(first.last().map(|s| s.seq), Some(12));
        reader.acknowledge(12).expect("ack");
        let rest = reader.read_batch(100).expect("read");
        let expected: Vec<String> = (12..30).map(|index| format!("line {index}")).collect();
        assert_eq!(messages(&rest), expected);
        reader.acknowledge(30).expect("ack");
        // Only the segment being written is left.
        assert_eq!(segments(dir.path()).expect("list").len(), 1);
    }

    #[test]
    fn a_restart_resends_from_the_marker_and_continues_the_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut writer = SpoolWriter::open(dir.path(), 1 << 20, u64::MAX).expect("writer");
            for index in 0..5 {
                writer
                    .append(1, &line(&format!("a{index}")))
                    .expect("append");
            }
            writer.flush().expect("flush");
            let mut reader = SpoolReader::open(dir.path()).expect("reader");
            assert_eq!(reader.read_batch(10).expect("read").len(), 5);
            reader.acknowledge(3).expect("ack");
        }
        // A torn line, as a kill -9 in the middle of a write leaves it.
        let (_, last) = segments(dir.path()).expect("list").pop().expect("segment");
        OpenOptions::new()
            .append(true)
            .open(&last)
            .and_then(|mut file| file.write_all(b"{\"seq\":6,\"proc"))
            .expect("tear");
        let mut writer = SpoolWriter::open(dir.path(), 1 << 20, u64::MAX).expect("reopen");
        assert_eq!(writer.next_seq(), 6);
        writer.append(2, &line("b0")).expect("append");
        writer.flush().expect("flush");
        let mut reader = SpoolReader::open(dir.path()).expect("reader");
        let batch = reader.read_batch(10).expect("read");
        let got: Vec<(u64, u32, String)> = batch
            .iter()
            .map(|s| (s.seq, s.process, s.line.message.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 1, "a3".to_owned()),
                (5, 1, "a4".to_owned()),
                (6, 2, "b0".to_owned())
            ]
        );
    }

    #[test]
    fn the_cap_drops_the_oldest_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = SpoolWriter::open(dir.path(), 300, 1000).expect("writer");
        for index in 0..100 {
            writer
                .append(1, &line(&format!("line {index:03}")))
                .expect("append");
        }
        writer.flush().expect("flush");
        let total: u64 = segments(dir.path())
            .expect("list")
            .iter()
            .map(|(_, path)| fs::metadata(path).expect("meta").len())
            .sum();
        assert!(total <= 1000 + 400, "{total}");
        let mut reader = SpoolReader::open(dir.path()).expect("reader");
        let batch = reader.read_batch(1000).expect("read");
        // The newest lines are kept, in order, with no gap after the first kept one.
        assert_eq!(batch.last().map(|s| s.seq), Some(100));
        assert!(batch.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
        assert!(batch.len() < 100);
    }
}
