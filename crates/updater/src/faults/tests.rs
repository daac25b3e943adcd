//! Fault report files: content, atomic placement, listing after a restart, the size cap,
//! and the upload task.

use std::sync::Mutex;
use std::time::Duration;

use super::*;

fn info(id: &str) -> FaultInfo {
    FaultInfo {
        id: id.to_owned(),
        time: Utc::now(),
        service: "svc".to_owned(),
        service_role: Some("role".to_owned()),
        service_directory: "/srv/svc-role".to_owned(),
        state: ServiceState::unknown(),
        reason: FaultReason::Exited,
        pid: Some(42),
        exit_code: Some(3),
        signal: None,
        command: "./run.sh".to_owned(),
        args: vec!["--port".to_owned(), "1".to_owned()],
        files: Vec::new(),
        skipped_files: Vec::new(),
    }
}

fn report<'a>(tail: &'a [String], dir: &'a Path, pattern: &'a Pattern) -> FaultReport<'a> {
    FaultReport {
        log_tail: tail,
        files_dir: dir,
        files_match: pattern,
        files_since: SystemTime::UNIX_EPOCH,
    }
}

fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(File::open(path).expect("open zip")).expect("zip");
    (0..archive.len())
        .map(|index| {
            let mut entry = archive.by_index(index).expect("entry");
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read entry");
            (entry.name().expect("name").into_owned(), bytes)
        })
        .collect()
}

#[test]
fn a_report_holds_state_tail_and_matching_files_only() {
    let work = tempfile::tempdir().expect("tempdir");
    let service_dir = work.path().join("current");
    fs::create_dir_all(service_dir.join("sub")).expect("mkdir");
    fs::write(service_dir.join("core"), b"CORE").expect("write");
    fs::write(service_dir.join("core.1234"), b"CORE2").expect("write");
    fs::write(service_dir.join("notcore"), b"no").expect("write");
    fs::write(service_dir.join("sub").join("core"), b"nested").expect("write");
    let reports =
        FaultReports::open(&work.path().join("faults"), DEFAULT_MAX_TOTAL_BYTES).expect("open");
    let tail = vec!["first line".to_owned(), "last line".to_owned()];
    let pattern = Pattern::new(r"core(\.\d+)?").expect("regex");
    let path = reports
        .write(
            info("20260101T000000000Z-00000001"),
            &report(&tail, &service_dir, &pattern),
        )
        .expect("write");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("20260101T000000000Z-00000001.zip")
    );
    let found = entries(&path);
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [INFO_ENTRY, TAIL_ENTRY, "files/core", "files/core.1234"]
    );
    let back: FaultInfo = serde_json::from_slice(&found[0].1).expect("fault.json");
    assert_eq!(
        back.files,
        [
            FaultFile {
                path: "files/core".to_owned(),
                size: 4
            },
            FaultFile {
                path: "files/core.1234".to_owned(),
                size: 5
            }
        ]
    );
    assert_eq!(found[1].1, b"first line\nlast line\n");
    assert_eq!(found[2].1, b"CORE");
    let pending = reports.pending().expect("pending");
    let (read_info, read_tail) = pending[0].read().expect("read back");
    assert_eq!(read_info, back);
    assert_eq!(read_tail, tail);
}

#[test]
fn files_older_than_the_run_are_not_attached() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("core"), b"old crash").expect("write");
    let reports =
        FaultReports::open(&work.path().join("faults"), DEFAULT_MAX_TOTAL_BYTES).expect("open");
    let pattern = Pattern::new("core").expect("regex");
    let mut later = report(&[], work.path(), &pattern);
    later.files_since = SystemTime::now() + Duration::from_secs(3600);
    let path = reports
        .write(info("20260101T000000000Z-0000000a"), &later)
        .expect("write");
    let names: Vec<String> = entries(&path).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, [INFO_ENTRY, TAIL_ENTRY]);
}

#[test]
fn reports_survive_reopening_and_stale_temporaries_go() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("faults");
    let pattern = Pattern::new("core").expect("regex");
    let first = {
        let reports = FaultReports::open(&dir, DEFAULT_MAX_TOTAL_BYTES).expect("open");
        reports
            .write(
                info("20260101T000000000Z-00000002"),
                &report(&[], work.path(), &pattern),
            )
            .expect("write")
    };
    fs::write(dir.join(".tmp-crashed.zip"), b"half").expect("write");
    let reports = FaultReports::open(&dir, DEFAULT_MAX_TOTAL_BYTES).expect("reopen");
    let pending = reports.pending().expect("pending");
    assert_eq!(
        pending.iter().map(|fault| &fault.path).collect::<Vec<_>>(),
        [&first]
    );
    assert!(!dir.join(".tmp-crashed.zip").exists());
    reports.remove(&pending[0]).expect("remove");
    assert!(reports.pending().expect("pending").is_empty());
}

#[test]
fn the_cap_deletes_the_oldest_reports_first() {
    let work = tempfile::tempdir().expect("tempdir");
    let pattern = Pattern::new("core").expect("regex");
    // Incompressible-ish tail lines make each report a few KiB.
    let tail: Vec<String> = (0..200u64)
        .map(|n| format!("{:x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    let probe = FaultReports::open(&work.path().join("probe"), u64::MAX).expect("open");
    let probe_path = probe
        .write(
            info("20260101T000000000Z-000000ff"),
            &report(&tail, work.path(), &pattern),
        )
        .expect("write");
    let size = fs::metadata(probe_path).expect("size").len();
    let reports =
        FaultReports::open(&work.path().join("faults"), size * 3 + size / 2).expect("open");
    let mut written = Vec::new();
    for index in 0..5 {
        let id = format!("20260101T00000{index}000Z-00000000");
        written.push(
            reports
                .write(info(&id), &report(&tail, work.path(), &pattern))
                .expect("write"),
        );
    }
    let pending: Vec<PathBuf> = reports
        .pending()
        .expect("pending")
        .into_iter()
        .map(|fault| fault.path)
        .collect();
    assert_eq!(pending, written[2..]);
}

#[test]
fn ids_sort_by_time_and_fit_the_api() {
    let early = new_fault_id(Utc::now());
    let late = new_fault_id(Utc::now() + chrono::Duration::seconds(1));
    assert!(early < late);
    for id in [&early, &late] {
        assert!((8..=64).contains(&id.len()), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
    }
}

struct FlakyUploader {
    failures_left: Mutex<u32>,
    taken: Mutex<Vec<String>>,
}

impl FaultUploader for FlakyUploader {
    type Error = String;
    async fn upload(&self, fault: &PendingFault) -> Result<(), String> {
        let mut failures = self.failures_left.lock().expect("lock");
        if *failures > 0 {
            *failures -= 1;
            return Err("distribution away".to_owned());
        }
        fault.read().map_err(|error| error.to_string())?;
        self.taken.lock().expect("lock").push(fault.id.clone());
        Ok(())
    }
}

#[tokio::test]
async fn the_uploader_retries_and_deletes_only_what_was_taken() {
    let work = tempfile::tempdir().expect("tempdir");
    let reports =
        FaultReports::open(&work.path().join("faults"), DEFAULT_MAX_TOTAL_BYTES).expect("open");
    let pattern = Pattern::new("core").expect("regex");
    for id in [
        "20260101T000000000Z-00000001",
        "20260101T000001000Z-00000001",
    ] {
        reports
            .write(info(id), &report(&[], work.path(), &pattern))
            .expect("write");
    }
    let uploader = FlakyUploader {
        failures_left: Mutex::new(2),
        taken: Mutex::new(Vec::new()),
    };
    let options = UploadOptions {
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = async {
        while !reports.pending().expect("pending").is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let uploaded = upload_faults(&reports, &uploader, options, done)
        .await
        .expect("upload");
    assert_eq!(uploaded, 2);
    assert_eq!(
        *uploader.taken.lock().expect("lock"),
        [
            "20260101T000000000Z-00000001",
            "20260101T000001000Z-00000001"
        ]
    );
}
