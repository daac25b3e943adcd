//! Log throughput of the updater, printed as figures: lines per second (wall clock and per
//! CPU-second, i.e. per core) through parsing alone, through the whole pipeline (pipe
//! reader, parse, tail, rotating `writeLogs` files, upload spool), and out of the spool
//! (read and acknowledge, as the drain does). Target: at least 40,000 lines/s per core.
//!
//! `cargo bench -p vupdate-updater --bench logs`; `LOG_BENCH_LINES` sets the line count
//! (default 500,000).

use std::time::Instant;

use chrono::NaiveDateTime;
use vupdate_core::log::LogLine;
use vupdate_updater::logs::{
    LogOptions, LogPipeline, RotatingFile, SpoolReader, SpoolWriter, pump,
};

/// CPU time of this process (user + system), in seconds, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

fn report(what: &str, lines: u64, wall: f64, cpu: f64) {
    println!(
        "{what:<44} {lines:>9} lines  {:>10.0} lines/s wall  {:>10.0} lines/s per CPU-second  ({wall:.2} s wall, {cpu:.2} s CPU)",
        lines as f64 / wall,
        lines as f64 / cpu.max(0.01),
    );
}

fn input(lines: u64) -> Vec<u8> {
    let mut text = String::with_capacity(lines as usize * 90);
    for index in 0..lines {
        if index % 2 == 0 {
            text.push_str(&format!(
                "2026-11-25 10:01:02.{:03} INFO http request {index} served in 3 ms for /api/v1/items\n",
                index % 1000
            ));
        } else {
            text.push_str(&format!(
                "plain output line {index} from a service that ignores the format\n"
            ));
        }
    }
    text.into_bytes()
}

fn main() {
    let lines: u64 = std::env::var("LOG_BENCH_LINES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(500_000);
    let data = input(lines);
    println!(
        "log throughput, {lines} lines of about {} bytes",
        data.len() as u64 / lines
    );

    // Parsing alone.
    let text = std::str::from_utf8(&data).expect("utf-8");
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut structured = 0u64;
    for line in text.lines() {
        let parsed = LogLine::parse(line, NaiveDateTime::MIN);
        structured += u64::from(parsed.unit != vupdate_core::log::PLAIN_UNIT);
    }
    assert_eq!(structured, lines.div_ceil(2));
    report(
        "parse",
        lines,
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
    );

    // The whole pipeline: pipe reader, parse, tail, rotation (4 MB x 5), spool.
    let dir = tempfile::tempdir().expect("tempdir");
    let spool =
        SpoolWriter::open(&dir.path().join("spool"), 8 * 1024 * 1024, u64::MAX).expect("spool");
    let pipeline = LogPipeline::new(Some(spool), LogOptions::default());
    pipeline.set_file(Some(
        RotatingFile::open(&dir.path().join("logs"), "bench", 4 * 1024 * 1024, 5)
            .expect("log file"),
    ));
    pipeline.set_upload(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    // A pipe delivers at most 64 KiB per read; so does this reader.
    let reader = ChunkedReader {
        data: &data,
        chunk: 64 * 1024,
    };
    let counted = runtime.block_on(pump(reader, &pipeline, 1)).expect("pump");
    pipeline.flush();
    assert_eq!(counted, lines);
    report(
        "pump + parse + tail + rotate + spool",
        lines,
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
    );
    let rotated = RotatingFile::files(&dir.path().join("logs"), "bench").len();
    drop(pipeline);

    // Out of the spool, as the drain reads and acknowledges it.
    let mut reader = SpoolReader::open(&dir.path().join("spool")).expect("reader");
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut read = 0u64;
    loop {
        let batch = reader.read_batch(1000).expect("read");
        let Some(last) = batch.last() else { break };
        reader.acknowledge(last.seq).expect("ack");
        read += batch.len() as u64;
    }
    assert_eq!(read, lines);
    report(
        "spool read + acknowledge (batches of 1000)",
        read,
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
    );
    println!("rotated files kept: {rotated}");
}

/// Hands out `data` in chunks, as a pipe does.
struct ChunkedReader<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl tokio::io::AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let take = self.data.len().min(self.chunk).min(buf.remaining());
        let (head, rest) = self.data.split_at(take);
        buf.put_slice(head);
        self.data = rest;
        std::task::Poll::Ready(Ok(()))
    }
}
