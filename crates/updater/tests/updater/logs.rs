//! 100,000 sequence-numbered lines from a real service through rotation and the upload
//! spool, drained by a sink that fails, half-fails (stores then errors, so the batch comes
//! again) and is restarted midway: after dedup by sequence every line arrives once, in
//! order; the rotated files hold them all too.

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vupdate_core::update::WriteLogs;
use vupdate_updater::logs::{
    DrainOptions, LogOptions, LogPipeline, LogSink, LogSource, RotatingFile, SpoolReader,
    SpoolWriter, SpooledLine, drain,
};
use vupdate_updater::supervisor::{CgroupMode, Supervisor, SupervisorOptions};

use crate::support::*;

const LINES: u64 = 100_000;

/// Records what it takes; every 5th send fails before storing and every 7th after.
#[derive(Default)]
struct FlakySink {
    sends: Mutex<u64>,
    stored: Mutex<Vec<(u64, String)>>,
}

impl LogSink for FlakySink {
    type Error = String;

    async fn send(&self, source: &LogSource, batch: &[SpooledLine]) -> Result<(), String> {
        assert_eq!(source.instance.to_string(), "gen");
        let send = {
            let mut sends = self.sends.lock().expect("lock");
            *sends += 1;
            *sends
        };
        if send % 5 == 0 {
            return Err("distribution away".to_owned());
        }
        self.stored.lock().expect("lock").extend(
            batch
                .iter()
                .map(|spooled| (spooled.seq, spooled.line.message.clone())),
        );
        if send % 7 == 0 {
            return Err("timed out after storing".to_owned());
        }
        Ok(())
    }
}

impl FlakySink {
    fn numbered_lines(&self) -> usize {
        self.stored
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, message)| message.starts_with("line "))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_lines_arrive_complete_through_rotation_and_an_unreliable_sink() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut run = sh(&format!(
        "seq 1 {LINES} | sed 's/^/line /'; while :; do sleep 1; done"
    ));
    let write_logs = WriteLogs {
        directory: "logs".to_owned(),
        file_prefix: "gen".to_owned(),
        max_file_size_mb: 1,
        max_files_count: 50,
    };
    run.write_logs = Some(write_logs.clone());
    run.upload_logs = true;
    let (dir, spec) = spec(work.path(), "gen", run);
    let spool = SpoolWriter::open(&dir.spool(), 256 * 1024, u64::MAX).expect("spool");
    let pipeline = Arc::new(LogPipeline::new(Some(spool), LogOptions::default()));
    pipeline.set_file(Some(
        RotatingFile::from_settings(&dir.current(), &write_logs).expect("log file"),
    ));
    pipeline.set_upload(true);
    let wake = pipeline.spool_wake();
    let sink = FlakySink::default();
    let options = DrainOptions {
        max_lines: 1000,
        max_wait: Duration::from_millis(20),
        poll: Duration::from_millis(50),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
    };
    let supervisor_options = SupervisorOptions {
        cgroups: CgroupMode::Off,
        ..SupervisorOptions::default()
    };
    let (handle, _events) = Supervisor::start(spec, pipeline.clone(), None, supervisor_options);

    // The first drainer stops partway, as an updater restart would stop it.
    let source = LogSource {
        instance: dir.instance().clone(),
        directory: dir.root().display().to_string(),
    };
    let reader = SpoolReader::open(&dir.spool()).expect("reader");
    let first = drain(reader, &source, &sink, wake.clone(), options, async {
        while sink.numbered_lines() < 30_000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("first drainer");
    assert!(first.failures > 0, "the sink failed some sends: {first:?}");
    // A new reader starts from the acknowledged marker on disk.
    let reader = SpoolReader::open(&dir.spool()).expect("reader after the restart");
    let second = drain(reader, &source, &sink, wake, options, async {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let stored = sink.stored.lock().expect("lock").clone();
            let mut seen: Vec<u64> = stored
                .iter()
                .filter(|(_, message)| message.starts_with("line "))
                .map(|(seq, _)| *seq)
                .collect();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() as u64 >= LINES {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} lines arrived",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("second drainer");
    handle.stop().await;

    // Dedup by sequence as the distribution does, then every line once and in order.
    let mut stored = sink.stored.lock().expect("lock").clone();
    let total_received = stored.len();
    stored.sort_by_key(|(seq, _)| *seq);
    stored.dedup_by_key(|(seq, _)| *seq);
    assert!(
        total_received > stored.len(),
        "some batches came twice (at-least-once)"
    );
    let numbered: Vec<&str> = stored
        .iter()
        .map(|(_, message)| message.as_str())
        .filter(|message| message.starts_with("line "))
        .collect();
    assert_eq!(numbered.len() as u64, LINES);
    for (index, message) in numbered.iter().enumerate() {
        assert_eq!(*message, format!("line {}", index + 1));
    }
    println!("first drainer {first:?}, second {second:?}, received {total_received}");

    // The rotated files, oldest first, hold every line too.
    let files = RotatingFile::files(&dir.current().join("logs"), "gen");
    assert!(files.len() >= 3, "the files rotated: {files:?}");
    let mut next = 1u64;
    for file in files.iter().rev() {
        for line in fs::read_to_string(file).expect("log file").lines() {
            if let Some((_, number)) = line.split_once(" INFO PLAIN line ") {
                assert_eq!(
                    number.parse::<u64>().expect("number"),
                    next,
                    "in {}",
                    file.display()
                );
                next += 1;
            }
        }
        assert!(fs::metadata(file).expect("size").len() <= 1024 * 1024);
    }
    assert_eq!(next, LINES + 1);
}
